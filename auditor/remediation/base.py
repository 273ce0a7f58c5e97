"""Remedies (Hall's fourth step): what would fix a finding, computed and measured on held-out rows.

A remedy runs after every check, reads the checks' findings and measurements, and returns
``Remediation`` objects (each with ``before`` and ``after`` measured on the test rows) and the
``Artifact`` files to deploy (written under ``remediation/`` in the report folder). Like a check it
is one small class, found by itself in any module of ``auditor/remediation/``::

    @dataclass
    class ThresholdRemedy(Remedy):
        id: ClassVar[str] = "threshold"            # [remediation."threshold"] options, skip = ["threshold"]
        title: ClassVar[str] = "Decision threshold"
        order: ClassVar[int] = 1                    # place in the report's Remediation section
        max_rows: int = budget(20_000, "test rows the threshold sweep reads")

        def skip_reason(self, inputs: RemedyInputs) -> str | None: ...
        def run(self, inputs: RemedyInputs) -> RemedyOutput: ...

Numerics live in ``auditor/analysis/`` (pure functions returning frozen results); a remedy turns
them into plain-language ``Remediation`` objects and figure specs, never draws.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..checks.base import OptionSpec, budget, option_defaults, option_specs, required, setting, threshold
from ..findings import CheckResult, Evidence, Finding, Severity, Status, clean_mapping, safe_id

if TYPE_CHECKING:
    from ..context import AuditContext

__all__ = ["KINDS", "Artifact", "Remediation", "Remedy", "RemedyInputs", "RemedyOutput", "RemedyResult",
           "budget", "required", "setting", "threshold"]

KINDS = ("threshold", "retrain", "constraint", "guard", "anomaly_detector", "data", "monitoring", "other")
ARTIFACT_DIR = "remediation"


@dataclass(frozen=True)
class Artifact:
    """A file a remedy hands over for deployment, written as ``<report folder>/<path>``."""

    path: str  # relative to the report folder, always under remediation/
    data: bytes = field(repr=False)
    title: str = ""

    def __post_init__(self) -> None:
        parts = self.path.split("/")
        if parts[0] != ARTIFACT_DIR or len(parts) < 2 or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"an artifact lives under {ARTIFACT_DIR}/: {self.path!r}")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Remediation:
    """One remedy measured on held-out rows (findings.json ``remediations[]``)."""

    id: str
    kind: str
    addresses: tuple[str, ...]  # the finding ids it would fix
    title: str
    summary: str
    before: Mapping[str, Any]
    after: Mapping[str, Any]  # the same metric names as ``before``
    verified: bool  # ``after`` was measured, not assumed
    parameters: Mapping[str, Any] = field(default_factory=dict)
    caveats: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()  # paths relative to the report folder
    evidence: Evidence = field(default_factory=Evidence)  # tables and figure specs for the report

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown remediation kind {self.kind!r}")
        if set(self.before) != set(self.after):
            raise ValueError(f"{self.id}: before and after must name the same metrics")
        object.__setattr__(self, "id", safe_id(self.id))
        object.__setattr__(self, "addresses", tuple(self.addresses))
        object.__setattr__(self, "caveats", tuple(self.caveats))
        object.__setattr__(self, "artifacts", tuple(self.artifacts))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "addresses": list(self.addresses),
                               "title": self.title, "summary": self.summary,
                               "parameters": clean_mapping(self.parameters),
                               "before": clean_mapping(self.before), "after": clean_mapping(self.after),
                               "verified": bool(self.verified)}
        if self.caveats:
            out["caveats"] = list(self.caveats)
        if self.artifacts:
            out["artifacts"] = list(self.artifacts)
        return out


@dataclass(frozen=True)
class RemedyOutput:
    """What one remedy returns: its measured remediations, the files to deploy, and notes (the
    sample it used; what it did not try and why)."""

    remediations: tuple[Remediation, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    notes: tuple[str, ...] = ()
    evidence: Evidence = field(default_factory=Evidence)  # shown once for the remedy (not per remediation)


@dataclass(frozen=True)
class RemedyResult:
    """The outcome of one remedy in the audit (like ``CheckResult``)."""

    id: str
    title: str
    status: Status
    duration_s: float = 0.0
    reason: str = ""  # why skipped
    error: str = ""  # why it failed
    output: RemedyOutput = field(default_factory=RemedyOutput)

    @property
    def remediations(self) -> tuple[Remediation, ...]:
        return self.output.remediations

    @property
    def artifacts(self) -> tuple[Artifact, ...]:
        return self.output.artifacts


@dataclass(frozen=True)
class RemedyInputs:
    """What a remedy reads: the audit context and every check's result and measurement."""

    ctx: AuditContext
    checks: Mapping[str, CheckResult]
    measurements: Mapping[str, Any]  # check id -> the check's measurement object (ok checks only)

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.checks.values() for f in c.findings]

    def findings_of(self, check_id: str, at_least: str = "medium") -> list[Finding]:
        """The check's findings at or above a severity (open or accepted: a waived finding still
        deserves its remedy)."""
        level = Severity(at_least).rank
        result = self.checks.get(check_id)
        return [f for f in (result.findings if result else ()) if f.severity.rank >= level]

    def measurement(self, check_id: str) -> Any | None:
        return self.measurements.get(check_id)

    def only(self, check_ids: tuple[str, ...] | None) -> RemedyInputs:
        """These inputs with only the results and measurements of ``check_ids`` (None: all): what a
        remedy that declares its ``reads`` is given, whenever and wherever it runs."""
        if check_ids is None:
            return self
        keep = set(check_ids)
        return RemedyInputs(ctx=self.ctx, checks={k: v for k, v in self.checks.items() if k in keep},
                            measurements={k: v for k, v in self.measurements.items() if k in keep})


@dataclass
class Remedy:
    """One remedy. Subclasses are dataclasses whose fields are options (``threshold``/``budget``/
    ``setting`` from ``checks.base``), set under ``[remediation."<id>"]``."""

    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    order: ClassVar[int] = 50
    kinds: ClassVar[tuple[str, ...]] = ()  # the remediation kinds it may return
    # the checks whose results and measurements it reads (it is given only these); None: every check.
    # A remedy that declares them may start as soon as those checks are done, beside the other checks.
    reads: ClassVar[tuple[str, ...] | None] = None

    @classmethod
    def options(cls) -> tuple[OptionSpec, ...]:
        return option_specs(cls)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return option_defaults(cls)

    def skip_reason(self, inputs: RemedyInputs) -> str | None:
        """Why this remedy does not apply to this audit (nothing to fix, an input missing), or None."""
        return None

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        raise NotImplementedError


def artifact_path(name: str) -> str:
    return f"{ARTIFACT_DIR}/{name}"


def remediation_ids(items: Sequence[Remediation]) -> list[str]:
    return [r.id for r in items]
