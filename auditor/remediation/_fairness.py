"""What the discrimination remedies share: the adverse-impact findings they address, matched with
the groupings fairness.disparate_impact measured, and the proxies fairness.proxy named."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..analysis.group_metrics import DisparateImpactResult, Grouping

if TYPE_CHECKING:
    from ..findings import Finding
    from .base import RemedyInputs

DI = "fairness.disparate_impact"
PROXY = "fairness.proxy"
AIR = "adverse_impact_ratio"


@dataclass(frozen=True)
class ImpactTarget:
    """One grouping (protected column, or pair) with medium-or-high adverse-impact findings."""

    result: DisparateImpactResult  # as the check measured it on all test rows
    findings: tuple[Finding, ...]

    @property
    def grouping(self) -> Grouping:
        return self.result.grouping

    @property
    def name(self) -> str:
        return self.result.grouping.name

    @property
    def judged(self) -> tuple[str, ...]:
        """The groups the check judges (enough rows, not the reference): every one must reach the line."""
        return tuple(r.group for r in self.result.rows if r.eligible and not r.is_reference)


def air_findings(inputs: RemedyInputs) -> list[Finding]:
    """The medium-or-high adverse-impact findings (classification: they carry the ratio)."""
    return [f for f in inputs.findings_of(DI, "medium") if AIR in f.metrics]


def impact_targets(inputs: RemedyInputs) -> list[ImpactTarget]:
    """The groupings of the adverse-impact findings, in the check's order."""
    m = inputs.measurement(DI)
    found = air_findings(inputs)
    if m is None or not found:
        return []
    out = []
    for res in getattr(m, "rates", ()):
        g = res.grouping
        pairs = {g.part_pairs(x) for x in g.groups}
        mine = tuple(f for f in found if tuple(f.features) == g.columns and tuple(f.groups) in pairs)
        if mine:
            out.append(ImpactTarget(result=res, findings=mine))
    return out


def not_measured(inputs: RemedyInputs, check_id: str) -> str:
    """Why a check left no measurement, in a few words."""
    result = inputs.checks.get(check_id)
    if result is None:
        return f"{check_id} did not run"
    why = result.reason or result.error
    return f"{check_id} was {result.status.value}" + (f" ({why})" if why else "")


@dataclass(frozen=True)
class Proxies:
    """The model features fairness.proxy named (medium or high), the protected columns they stand
    in for, and the findings."""

    features: tuple[str, ...]
    protected: tuple[str, ...]
    findings: tuple[Finding, ...]


def named_proxies(inputs: RemedyInputs) -> Proxies:
    """Features of the medium-or-high proxy findings (a proxy for a protected column, or the
    protected column itself as a model input); the all-features reconstruction names none."""
    model_features = set(inputs.ctx.features)
    feats: list[str] = []
    protected: list[str] = []
    findings = []
    for f in inputs.findings_of(PROXY, "medium"):
        if not f.features or f.id.endswith("/all_features"):
            continue
        feat = f.features[0]
        if feat not in model_features:
            continue
        findings.append(f)
        if feat not in feats:
            feats.append(feat)
        col = f.features[1] if len(f.features) > 1 else feat
        if col not in protected:
            protected.append(col)
    return Proxies(features=tuple(feats), protected=tuple(protected), findings=tuple(findings))
