"""Fairness checks: disparate impact, error-rate parity, and proxies for protected attributes.

The disparate impact analysis of the model-debugging method (Hall et al.): outcome rates by group
against a reference group with practical (adverse impact ratio, standardized mean difference) and
statistical significance; error rates and calibration by group; and features that let the model
reconstruct a protected attribute it is not given. Each check measures with
``auditor.analysis.group_metrics`` / ``auditor.analysis.proxy`` and judges the measurement with
its thresholds (dataclass fields); ``judge`` is a pure function of the measurement.

Common rules: protected columns come from ``[data] protected``; missing values form the group
``(missing)``; numeric columns with many values are banded (see ``make_groupings``); groups with
fewer than ``min_group_size`` rows are shown in the tables but get no finding; pairs of protected
columns are analysed as intersections, and an intersectional group gets a finding only when it is
more severe than each of its two groups alone (otherwise the single-column finding says it all).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..analysis.group_metrics import (
    DisparateImpactResult,
    ErrorParityResult,
    GroupErrors,
    Grouping,
    GroupingPlan,
    MeanDifferenceResult,
    disparate_impact,
    error_parity,
    holm,
    level_text,
    make_groupings,
    mean_difference,
)
from ..analysis.proxy import ProxyResult, RedrawEffect, permutation_shift, proxy_analysis, redraw_effect
from ..context import same_class
from ..findings import Evidence, Finding, Rule, Severity, Table, safe_id
from .base import FAIRNESS, Check

if TYPE_CHECKING:
    from ..config import AuditConfig
    from ..context import AuditContext

_MAX_ROWS = 60


# ---- formatting ----------------------------------------------------------------------------------

def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _f(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _signed(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.{digits}f}".replace("-", "−")


def _p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "p n/a"
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}"


def _sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}") if x is not None and math.isfinite(x) else x


def _who(g: Grouping, group: str) -> str:
    """'sex = female' or 'sex = female and age_band = under 25'."""
    return " and ".join(f"{c} = {v}" for c, v in g.part_pairs(group))


def _fid(check_id: str, g: Grouping, group: str, suffix: str = "") -> str:
    return f"{check_id}/" + "&".join(f"{c}={v}" for c, v in g.part_pairs(group)) + suffix


def _note(g: Grouping, group: str, count: int, min_size: int, ref_count: int) -> str:
    if group == g.reference:
        return "reference" + (" (too few rows)" if ref_count < min_size else "")
    return f"below {min_size} rows: no finding" if count < min_size else ""


def _adjust(tests: list[tuple[tuple[str, ...], float]]) -> dict[tuple[str, ...], float]:
    """Holm-adjusted p-values of a family of tests, by key."""
    return dict(zip((k for k, _ in tests), (float(v) for v in holm([p for _, p in tests]))))


def _ci(lo: float, hi: float, digits: int = 2) -> str:
    return f"[{_f(lo, digits)}, {_f(hi, digits)}]"


def _num(x: Any) -> float | None:
    """A JSON-friendly number for ``Rule`` (NaN -> None)."""
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _near_zero(lo: float, hi: float) -> float:
    """|end of an interval nearer zero|; 0 when the interval contains zero, NaN when unknown."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return float("nan")
    if lo <= 0 <= hi:
        return 0.0
    return min(abs(lo), abs(hi))


def _nanmax(a: float, b: float) -> float:
    if not math.isfinite(b):
        return a
    return b if not math.isfinite(a) else max(a, b)


def _p_both(p: float, adjusted: float, n_tests: int) -> str:
    if n_tests <= 1 or not math.isfinite(adjusted):
        return _p(p)
    return f"{_p(p)}; {_p(adjusted).replace('p ', 'p_adj ')} after Holm's correction for {n_tests} comparisons"


class _Gate:
    """Single-column findings first; an intersectional group only when more severe than both of
    its groups alone."""

    def __init__(self) -> None:
        self.rank: dict[tuple[str, str], int] = {}

    def admit(self, g: Grouping, group: str, severity: Severity) -> bool:
        pairs = g.part_pairs(group)
        if not g.is_intersection:
            self.rank[pairs[0]] = max(self.rank.get(pairs[0], -1), severity.rank)
            return True
        return severity.rank > max(self.rank.get(p, -1) for p in pairs)


@dataclass
class _GroupedCheck(Check):
    """Options every fairness check shares (how rows are grouped)."""

    min_group_size: int = 30  # smaller groups are shown but get no finding
    max_levels: int = 10  # a numeric protected column with more values is banded
    numeric_bins: int = 4  # quantile bands for such a column (unless bands gives cut points)
    bands: dict = field(default_factory=dict)  # e.g. { age = [25, 40, 60] }: fixed cut points per column
    intersections: bool = True  # analyse pairs of protected columns
    max_intersection_groups: int = 20
    alpha: float = 0.05  # significance level, applied to Holm-adjusted p-values
    confidence: float = 0.95  # level of the intervals (adverse impact ratio, gaps) the severity rules use

    @classmethod
    def validate_options(cls, options: dict[str, Any], config: AuditConfig) -> None:
        bands = options.get("bands", {})
        for col, cuts in bands.items():
            if col not in config.data.protected:
                raise ValueError(f"option 'bands.{col}' names a column that is not in [data] protected "
                                 f"({', '.join(config.data.protected) or 'none declared'})")
            if not isinstance(cuts, (list, tuple)) or not cuts or \
                    not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in cuts):
                raise ValueError(f"option 'bands.{col}' must be a list of cut points (numbers), e.g. [25, 40, 60]; "
                                 f"got {cuts!r}")
            if list(cuts) != sorted(set(cuts)):
                raise ValueError(f"option 'bands.{col}' must list increasing cut points; got {list(cuts)!r}")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not ctx.protected:
            return "no protected columns declared ([data] protected)"
        return None

    def _plan(self, ctx: AuditContext) -> GroupingPlan:
        return make_groupings(ctx.frame("test"), ctx.protected, reference=ctx.config.data.reference,
                              max_levels=self.max_levels, n_bins=self.numeric_bins, bands=self.bands,
                              min_group_size=self.min_group_size, intersections=self.intersections,
                              max_intersection_groups=self.max_intersection_groups)


@dataclass(frozen=True)
class Outcome:
    """How the favorable outcome maps onto the model's outputs (classification)."""

    target: str
    favorable: str  # the favorable class, as text
    positive: str
    favorable_is_positive: bool
    threshold: float
    decision: np.ndarray  # 1 where the decision is the favorable outcome
    p_favorable: np.ndarray  # P(favorable class)
    observed: np.ndarray  # 1 where the actual outcome is the favorable class
    n_classes: int = 2

    @property
    def label(self) -> str:
        return f"{self.target} = {self.favorable}"

    @property
    def multiclass(self) -> bool:
        return self.n_classes > 2

    def decision_text(self) -> str:
        """How the favorable decision is made, in words."""
        if self.multiclass:
            return (f"Favorable decision: the predicted class, the most probable of the model's {self.n_classes} "
                    f"classes (argmax), is {self.favorable}; P(favorable) is the model's probability of that class.")
        side = "at or above" if self.favorable_is_positive else "below"
        return (f"Favorable decision: predicted {self.label}, i.e. P({self.target} = {self.positive}) {side} the "
                f"threshold {self.threshold:g}.")


def favorable_decision(ctx: AuditContext, preds: Any) -> np.ndarray:
    """True where a set of predictions is the favorable decision: the predicted class (k classes:
    the argmax; two classes: the thresholded decision) is the favorable class."""
    if ctx.is_multiclass:
        return np.asarray(preds.pred_class == ctx.favorable_index, dtype=bool)
    if same_class(ctx.favorable, ctx.positive_class):
        return np.asarray(preds.label == 1, dtype=bool)
    return np.asarray(preds.label == 0, dtype=bool)


def favorable_outcome(ctx: AuditContext) -> Outcome:
    """Favorable decisions, P(favorable) and observed favorable outcomes on the test data.

    The decision is the favorable one when the predicted class is the favorable class: k classes,
    when it is the most probable class; two classes, for a favorable positive class when
    P(positive) >= threshold, otherwise when it is below.
    """
    preds = ctx.predictions("test")
    pos_is_fav = same_class(ctx.favorable, ctx.positive_class)
    decision = favorable_decision(ctx, preds)
    if ctx.is_multiclass:
        fav = ctx.favorable_index
        p_fav, observed = preds.proba[:, fav], ctx.y_index("test") == fav
    else:
        y_pos = ctx.y_binary("test").astype(bool)
        p_fav, observed = (preds.score, y_pos) if pos_is_fav else (1.0 - preds.score, ~y_pos)
    return Outcome(target=ctx.target, favorable=level_text(ctx.favorable), positive=level_text(ctx.positive_class),
                   favorable_is_positive=pos_is_fav, threshold=float(ctx.threshold),
                   decision=np.asarray(decision, dtype=bool), p_favorable=np.asarray(p_fav, dtype=float),
                   observed=np.asarray(observed, dtype=bool), n_classes=max(2, ctx.n_classes))


_DI_REMEDIATION = (
    "Establish whether a legitimate business need explains the difference, and document it.",
    "Look for a less discriminatory alternative: models without the features that act as proxies "
    "(fairness.proxy), with different hyperparameters or a different threshold; compare their adverse impact "
    "ratios and accuracy.",
    "Confirm on more data and monitor the adverse impact ratio after deployment.",
)


# =================================================================================================
# fairness.disparate_impact
# =================================================================================================

@dataclass(frozen=True)
class DisparateImpactMeasurement:
    task: str
    outcome: Outcome | None  # classification
    higher_is_favorable: bool
    target: str
    results: tuple[DisparateImpactResult | MeanDifferenceResult, ...]
    notes: tuple[str, ...]
    n_rows: int
    adjusted: Mapping[tuple[str, ...], float] = field(default_factory=dict)  # (grouping, group) -> Holm p

    def p_adjusted(self, grouping: Grouping, group: str) -> float:
        return self.adjusted.get((grouping.name, group), float("nan"))


@dataclass
class DisparateImpactCheck(_GroupedCheck):
    """Outcome rates by group of each protected column (and pairs of them) against a reference group.

    Classification: the favorable-decision rate per group (k classes: the predicted class, the
    argmax, is the favorable class), the adverse impact ratio AIR = group rate / reference rate
    (reference from ``[data] reference``, else the largest group) with its Katz log interval at
    ``confidence``, a two-sided Fisher exact test of the two rates, the standardized mean difference
    of P(favorable), and the observed favorable rate for context. p-values are Holm-adjusted over all
    groups tested, so many groups (and intersections) do not produce chance findings. Only
    disadvantaged groups (AIR < 1) are judged: ``high`` when AIR < ``min_ratio``, p < ``alpha`` and
    the whole interval lies below ``air_high_upper`` (default 0.8: the breach holds at the interval's
    favourable end); ``medium`` when AIR < ``min_ratio`` and significant but the interval reaches it;
    ``low`` when AIR < ``min_ratio`` but not significant (inconclusive: more data needed), or AIR <
    ``low_ratio`` and significant.

    Regression: the standardized mean difference (SMD) of the prediction, (group mean − reference
    mean) / SD of the prediction over all test rows, with a Welch t-test and interval; higher
    predictions are favorable unless ``higher_is_favorable = false``. For a disadvantaged group:
    ``high`` when significant and the interval's end nearer zero is still at least ``high_smd``;
    ``medium`` when significant and |SMD| >= ``medium_smd``; ``low`` when |SMD| >= ``high_smd``
    but not significant.
    """

    id: ClassVar[str] = "fairness.disparate_impact"
    family = FAIRNESS
    order = 1
    title: ClassVar[str] = "Disparate impact"

    min_ratio: float = 0.8  # the four-fifths rule
    low_ratio: float = 0.9
    # high also needs the AIR interval's upper end below this: 0.8, the breach of the four-fifths rule is
    # established beyond the sampling uncertainty; 1.0, a significant disparity with an estimate below min_ratio
    air_high_upper: float = 0.8
    high_smd: float = 0.5
    medium_smd: float = 0.2
    higher_is_favorable: bool = True  # regression only

    def measure(self, ctx: AuditContext) -> DisparateImpactMeasurement:
        plan = self._plan(ctx)
        results: list[DisparateImpactResult | MeanDifferenceResult] = []
        outcome = None
        if ctx.is_classification:
            outcome = favorable_outcome(ctx)
            for g in plan.groupings:
                results.append(disparate_impact(g, outcome.decision, outcome.p_favorable,
                                                observed_favorable=outcome.observed,
                                                min_group_size=self.min_group_size, confidence=self.confidence))
        else:
            pred = ctx.predictions("test").score
            observed = np.asarray(ctx.y("test"), dtype=float)
            for g in plan.groupings:
                results.append(mean_difference(g, pred, observed=observed, higher_is_favorable=self.higher_is_favorable,
                                               min_group_size=self.min_group_size, confidence=self.confidence))
        tests = [((res.grouping.name, r.group), r.p_value) for res in results for r in res.rows
                 if r.eligible and not r.is_reference and math.isfinite(r.p_value)]
        return DisparateImpactMeasurement(task=ctx.task, outcome=outcome, higher_is_favorable=self.higher_is_favorable,
                                          target=ctx.target, results=tuple(results), notes=plan.notes,
                                          n_rows=len(ctx.frame("test")), adjusted=_adjust(tests))

    # -- judgement --
    def severity_air(self, air: float, p: float, ci_high: float) -> Severity | None:
        """The AIR rule: ``p`` is the Holm-adjusted p-value, ``ci_high`` the interval's upper end."""
        if not math.isfinite(air) or air >= 1:
            return None
        sig = math.isfinite(p) and p < self.alpha
        if air < self.min_ratio:
            if not sig:
                return Severity.LOW
            return Severity.HIGH if math.isfinite(ci_high) and ci_high < self.air_high_upper else Severity.MEDIUM
        if air < self.low_ratio and sig:
            return Severity.LOW
        return None

    def air_rule_text(self) -> str:
        return (f"high when the adverse impact ratio is below {self.min_ratio:g}, its {self.confidence:.0%} interval "
                f"lies wholly below {self.air_high_upper:g} and the Holm-adjusted p < {self.alpha:g}; medium when the "
                f"ratio is below "
                f"{self.min_ratio:g} and significant; low when it is below {self.min_ratio:g} but not significant, "
                f"or below {self.low_ratio:g} and significant")

    def severity_smd(self, smd: float, p: float, higher_is_favorable: bool, ci: tuple[float, float] = (
            float("nan"), float("nan"))) -> Severity | None:
        """The SMD rule: ``p`` Holm-adjusted, ``ci`` the SMD's interval (its end nearer zero decides high)."""
        d = smd if higher_is_favorable else -smd
        if not math.isfinite(d) or d >= 0:
            return None
        sig = math.isfinite(p) and p < self.alpha
        near = _near_zero(*ci)
        if sig and math.isfinite(near) and near >= self.high_smd:
            return Severity.HIGH
        if sig and -d >= self.medium_smd:
            return Severity.MEDIUM
        if -d >= self.high_smd:
            return Severity.LOW
        return None

    def smd_rule_text(self) -> str:
        return (f"high when the Holm-adjusted p < {self.alpha:g} and the end of the SMD's {self.confidence:.0%} "
                f"interval nearer zero is still at least {self.high_smd:g} SD; medium when significant and |SMD| >= "
                f"{self.medium_smd:g}; low when |SMD| >= {self.high_smd:g} but not significant")

    def judge(self, m: DisparateImpactMeasurement) -> list[Finding]:
        gate = _Gate()
        out: list[Finding] = []
        for res in sorted(m.results, key=lambda r: r.grouping.is_intersection):
            g = res.grouping
            for row in res.rows:
                if row.is_reference or not row.eligible:
                    continue
                p = m.p_adjusted(g, row.group)
                if isinstance(res, DisparateImpactResult):
                    sev = self.severity_air(row.air, p, row.air_high)
                else:
                    sev = self.severity_smd(row.smd, p, m.higher_is_favorable, (row.smd_low, row.smd_high))
                if sev is None or not gate.admit(g, row.group, sev):
                    continue
                if isinstance(res, DisparateImpactResult):
                    out.append(self._air_finding(m, res, row.group, sev))
                else:
                    out.append(self._smd_finding(m, res, row.group, sev))
        return out

    def _air_finding(self, m: DisparateImpactMeasurement, res: DisparateImpactResult, group: str,
                     sev: Severity) -> Finding:
        g, row, ref = res.grouping, res.row(group), res.row(res.grouping.reference)
        o = m.outcome
        p_adj = m.p_adjusted(g, group)
        sig = math.isfinite(p_adj) and p_adj < self.alpha
        ptext = _p_both(row.p_value, p_adj, len(m.adjusted))
        bound = self.min_ratio if row.air < self.min_ratio else self.low_ratio
        obs_ratio = (row.observed_favorable_rate / ref.observed_favorable_rate
                     if ref.observed_favorable_rate > 0 else float("nan"))
        if math.isfinite(obs_ratio) and obs_ratio < self.min_ratio:
            more = "even more" if obs_ratio < row.air else "too"
            context = (f"The actual outcomes differ {more} ({_pct(row.observed_favorable_rate)} against "
                       f"{_pct(ref.observed_favorable_rate)}, ratio {_f(obs_ratio)}): the model reproduces a difference "
                       "present in the data, which still needs a business justification.")
        else:
            context = (f"The actual favorable outcome rates are {_pct(row.observed_favorable_rate)} against "
                       f"{_pct(ref.observed_favorable_rate)} (ratio {_f(obs_ratio)}), so the model's decisions "
                       "separate the groups more than the outcomes do.")
        stat = (f"The difference is statistically significant (Fisher exact test, {ptext})." if sig else
                f"The difference is not statistically significant ({ptext}): with {row.count:,} rows the "
                "data cannot rule it out either, so it needs a closer look (more data), not a dismissal.")
        conf = f"{self.confidence:.0%}"
        ci = _ci(row.air_low, row.air_high)
        if sev is Severity.HIGH:
            why = (f"Rated high: the whole {conf} interval {ci} lies below {self.air_high_upper:.2f} and the "
                   "difference is significant.")
        elif sev is Severity.MEDIUM:
            why = (f"Rated medium, not high: the ratio is below {self.min_ratio:.2f} and significant, but its {conf} "
                   f"interval {ci} reaches {self.air_high_upper:.2f}, so " +
                   ("the breach of the four-fifths rule is not established beyond the sampling uncertainty."
                    if self.air_high_upper <= self.min_ratio else "high is not established."))
        elif row.air < self.min_ratio:
            why = (f"Rated low: below {self.min_ratio:.2f} but not significant ({conf} interval {ci}), so the data are "
                   "also consistent with no disparity.")
        else:
            why = f"Rated low: significant, but at or above the four-fifths line ({conf} interval {ci})."
        rule = Rule(metric="adverse_impact_ratio", value=_num(row.air), operator="<", threshold=self.min_ratio,
                    interval=(_num(row.air_low), _num(row.air_high)), p_value=_num(p_adj),
                    text=(f"adverse impact ratio {_f(row.air)} ({conf} Katz interval {ci}; Holm-adjusted "
                          f"{_p(p_adj)}): " + self.air_rule_text()))
        return Finding(
            id=_fid(self.id, g, group), check=self.id, severity=sev,
            title=(f"Adverse impact ratio {_f(row.air)} for {_who(g, group)} (below {bound:.2f}; {conf} interval "
                   f"{_f(row.air_low)}–{_f(row.air_high)})"),
            summary=(f"The model gives the favorable outcome ({o.label}) to {_pct(row.favorable_rate)} of the "
                     f"{row.count:,} test rows with {_who(g, group)}, against {_pct(ref.favorable_rate)} of the "
                     f"{ref.count:,} rows of the reference group {_who(g, g.reference)}: an adverse impact ratio of "
                     f"{_f(row.air)}, {conf} interval {ci} (Katz log interval; the four-fifths rule asks for at least "
                     f"{self.min_ratio:.2f}). {stat} {why} "
                     f"The mean predicted probability of the favorable outcome is lower by {_f(-row.smd)} standard "
                     f"deviations (SMD {_signed(row.smd)}). {context}"),
            features=g.columns, groups=g.part_pairs(group), rule=rule,
            metrics={"adverse_impact_ratio": row.air, "air_ci_low": row.air_low, "air_ci_high": row.air_high,
                     "p_value": row.p_value, "p_value_adjusted": p_adj,
                     "favorable_rate": row.favorable_rate,
                     "reference_favorable_rate": ref.favorable_rate, "count": row.count,
                     "reference_count": ref.count, "smd": row.smd,
                     "observed_favorable_rate": row.observed_favorable_rate,
                     "reference_observed_favorable_rate": ref.observed_favorable_rate},
            remediation=_DI_REMEDIATION, evidence=("by_group", "adverse_impact_ratio"))

    def _smd_finding(self, m: DisparateImpactMeasurement, res: MeanDifferenceResult, group: str,
                     sev: Severity) -> Finding:
        g, row, ref = res.grouping, res.row(group), res.row(res.grouping.reference)
        p_adj = m.p_adjusted(g, group)
        sig = math.isfinite(p_adj) and p_adj < self.alpha
        ptext = _p_both(row.p_value, p_adj, len(m.adjusted))
        direction = "lower" if row.difference < 0 else "higher"
        favorable = "higher" if m.higher_is_favorable else "lower"
        conf = f"{self.confidence:.0%}"
        rule = Rule(metric="smd", value=_num(row.smd), operator="|x| >=", threshold=(self.medium_smd, self.high_smd),
                    interval=(_num(row.smd_low), _num(row.smd_high)), p_value=_num(p_adj),
                    text=(f"SMD {_signed(row.smd)} ({conf} interval {_ci(row.smd_low, row.smd_high)}; Holm-adjusted "
                          f"{_p(p_adj)}): " + self.smd_rule_text()))
        return Finding(
            id=_fid(self.id, g, group), check=self.id, severity=sev, rule=rule,
            title=f"Predictions {abs(row.smd):.2f} SD {direction} for {_who(g, group)} (SMD {_signed(row.smd)})",
            summary=(f"The mean prediction for the {row.count:,} test rows with {_who(g, group)} is {row.mean_prediction:.4g}, "
                     f"against {ref.mean_prediction:.4g} for the {ref.count:,} rows of the reference group "
                     f"{_who(g, g.reference)}: a standardized mean difference of {_signed(row.smd)} (difference over "
                     f"the SD of the prediction, {res.prediction_sd:.4g}); {favorable} predictions are favorable, so "
                     f"the group is disadvantaged ({conf} interval of the SMD {_ci(row.smd_low, row.smd_high)}). " +
                     (f"Welch t-test {ptext}." if sig else
                      f"Not statistically significant ({ptext}), so it cannot be ruled out either.") +
                     f" The actual mean target is {row.mean_observed:.4g} against {ref.mean_observed:.4g}."),
            features=g.columns, groups=g.part_pairs(group),
            metrics={"smd": row.smd, "smd_ci_low": row.smd_low, "smd_ci_high": row.smd_high,
                     "p_value": row.p_value, "p_value_adjusted": p_adj,
                     "mean_prediction": row.mean_prediction,
                     "reference_mean_prediction": ref.mean_prediction, "count": row.count,
                     "reference_count": ref.count, "mean_observed": row.mean_observed,
                     "reference_mean_observed": ref.mean_observed},
            remediation=_DI_REMEDIATION, evidence=("by_group", "standardized_mean_difference"))

    # -- evidence --
    def evidence(self, m: DisparateImpactMeasurement) -> Evidence:
        from ..plots.fairness import air_figure, smd_figure

        records = []
        metrics: dict[str, Any] = {"groupings": len(m.results)}
        if m.task == "classification":
            airs = []
            for res in m.results:
                g = res.grouping
                ref_n = g.count(g.reference)
                for r in res.rows:
                    records.append({"column": g.name, "group": r.group, "count": r.count,
                                    "favorable_rate": _sig(r.favorable_rate), "air": _sig(r.air),
                                    "air_ci_low": _sig(r.air_low), "air_ci_high": _sig(r.air_high),
                                    "p_value": _sig(r.p_value), "p_adjusted": _sig(m.p_adjusted(g, r.group)),
                                    "smd": _sig(r.smd),
                                    "observed_favorable_rate": _sig(r.observed_favorable_rate),
                                    "note": _note(g, r.group, r.count, self.min_group_size, ref_n)})
                eligible = [r.air for r in res.rows if r.eligible and not r.is_reference and math.isfinite(r.air)]
                if eligible and not g.is_intersection:
                    metrics[f"min_adverse_impact_ratio/{g.name}"] = min(eligible)
                airs += eligible
            metrics["min_adverse_impact_ratio"] = min(airs) if airs else float("nan")
            metrics["overall_favorable_rate"] = float(m.outcome.decision.mean())
            columns = ("column", "group", "count", "favorable_rate", "air", "air_ci_low", "air_ci_high", "p_value",
                       "p_adjusted", "smd", "observed_favorable_rate", "note")
            caption = (f"Favorable rate: share of test rows whose decision is the favorable outcome ({m.outcome.label}); "
                       f"air: that rate over the reference group's, with its {self.confidence:.0%} Katz log interval "
                       "(air_ci_low, air_ci_high); p: two-sided Fisher exact test against the reference "
                       "group; smd: difference of mean P(favorable) in SDs over all rows; observed: share whose actual "
                       "outcome is favorable.")
            fig = air_figure(m.results, min_ratio=self.min_ratio, low_ratio=self.low_ratio,
                             min_group_size=self.min_group_size, confidence=self.confidence)
        else:
            smds = []
            for res in m.results:
                g = res.grouping
                ref_n = g.count(g.reference)
                for r in res.rows:
                    records.append({"column": g.name, "group": r.group, "count": r.count,
                                    "mean_prediction": _sig(r.mean_prediction, 4), "difference": _sig(r.difference, 4),
                                    "smd": _sig(r.smd), "smd_ci_low": _sig(r.smd_low), "smd_ci_high": _sig(r.smd_high),
                                    "p_value": _sig(r.p_value),
                                    "p_adjusted": _sig(m.p_adjusted(g, r.group)),
                                    "mean_observed": _sig(r.mean_observed, 4),
                                    "note": _note(g, r.group, r.count, self.min_group_size, ref_n)})
                smds += [abs(r.smd) for r in res.rows if r.eligible and not r.is_reference and math.isfinite(r.smd)]
            metrics["max_abs_smd"] = max(smds) if smds else float("nan")
            columns = ("column", "group", "count", "mean_prediction", "difference", "smd", "smd_ci_low", "smd_ci_high",
                       "p_value", "p_adjusted", "mean_observed", "note")
            caption = ("smd: (group mean − reference mean) / SD of the prediction over all test rows, with the "
                       f"{self.confidence:.0%} Welch interval; p: Welch t-test against the reference group; "
                       "mean_observed: mean actual target.")
            fig = smd_figure(m.results, high_smd=self.high_smd, medium_smd=self.medium_smd,
                             min_group_size=self.min_group_size, higher_is_favorable=m.higher_is_favorable)
        table = Table.from_records("by_group", "Outcomes by group", records, columns=columns, caption=caption,
                                   max_rows=_MAX_ROWS)
        notes = list(m.notes)
        for res in m.results:
            g = res.grouping
            notes.append(f"Reference for {g.name}: {g.reference} ({g.reference_source}).")
        if m.task == "classification":
            o = m.outcome
            notes.append(o.decision_text())
            notes.append("SMD: standardized mean difference of P(favorable) between a group and the reference, in "
                         "standard deviations of P(favorable) over all test rows.")
            notes.append("Severity rule: " + self.air_rule_text() + ".")
        else:
            notes.append("Severity rule: " + self.smd_rule_text() + ".")
        notes.append(f"Groups with fewer than {self.min_group_size} rows are listed but get no finding. Significance "
                     f"is judged at level {self.alpha:g} on Holm-adjusted p-values (p_adjusted) over the "
                     f"{len(m.adjusted)} groups tested, so many groups do not produce chance findings.")
        if any(r.grouping.is_intersection for r in m.results):
            notes.append("An intersectional group gets a finding only when it is more severe than each of its two "
                         "groups alone.")
        return Evidence(metrics=metrics, tables=(table,), figures=(fig,) if fig else (), notes=tuple(notes))


# =================================================================================================
# fairness.error_parity
# =================================================================================================

@dataclass(frozen=True)
class ErrorParityMeasurement:
    outcome: Outcome
    results: tuple[ErrorParityResult, ...]
    notes: tuple[str, ...]
    overall_calibration_gap: float
    adjusted: Mapping[tuple[str, ...], float] = field(default_factory=dict)  # (grouping, group, fnr|fpr) -> Holm p
    adjusted_calibration: Mapping[tuple[str, ...], float] = field(default_factory=dict)  # (grouping, group)

    def p(self, grouping: Grouping, group: str, rate: str) -> float:
        table = self.adjusted_calibration if rate == "calibration" else self.adjusted
        key = (grouping.name, group) if rate == "calibration" else (grouping.name, group, rate)
        return table.get(key, float("nan"))


@dataclass
class ErrorParityCheck(_GroupedCheck):
    """Error rates by group (fairlearn ``MetricFrame``: selection rate, TPR, FPR, FNR, accuracy), the
    equalized-odds difference per column, and calibration by group.

    FNR and FPR are with respect to the positive class; which of them withholds the favorable
    outcome from people who deserve it depends on the favorable class (FNR when the favorable class
    is the positive one, FPR otherwise) and the findings say so. A k-class model is judged on the
    favorable class against the rest of the classes (decision: the predicted class, the argmax, is
    the favorable class), and the notes and findings say so. Per group and error rate, against the
    reference group on the rows of the relevant actual class (Fisher exact test, Holm-adjusted over
    all rate comparisons; both need ``min_class_rows`` such rows; Newcombe interval of the gap at
    ``confidence``): ``high`` when significant, the gap is >= ``high_gap`` and the end of its interval
    nearer zero is still >= ``gap_high_lower`` (default 0.20, i.e. ``high_gap`` established beyond
    the sampling uncertainty); ``medium`` when significant and the gap is >= ``medium_gap``; ``low`` when the
    gap is >= ``high_gap`` but not significant. Calibration in the large by group (mean P(positive) −
    observed positive rate, with a normal test of the observed count, Holm-adjusted over the groups):
    ``medium`` when |gap| >= ``calibration_gap`` and significant.

    Two equalized-odds differences are reported (STACK pitfall 14): ``equalized_odds_difference``
    is fairlearn's, over every group of the column (tiny groups included), and
    ``equalized_odds_difference_eligible`` the same quantity over the groups with ``min_group_size``
    rows and ``min_class_rows`` of each class, with a bootstrap interval. Neither sets a severity.
    """

    id: ClassVar[str] = "fairness.error_parity"
    family = FAIRNESS
    order = 2
    title: ClassVar[str] = "Error-rate parity"

    medium_gap: float = 0.10
    high_gap: float = 0.20
    calibration_gap: float = 0.10
    # high also needs the end of the gap's interval nearer zero at or beyond this (0.20: a gap of high_gap is
    # established beyond the sampling uncertainty; 0: a significant gap of at least high_gap suffices)
    gap_high_lower: float = 0.20
    min_class_rows: int = 10  # rows of an actual class needed to compare a rate
    calibration_bins: int = 5  # equal-count bins of the per-group ECE
    n_resamples: int = 200  # bootstrap of the equalized-odds difference over the eligible groups

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not ctx.is_classification:
            return ("error-rate parity needs a classifier; this model is a regressor (fairness.disparate_impact "
                    "compares its predictions by group)")
        return super().skip_reason(ctx)

    def measure(self, ctx: AuditContext) -> ErrorParityMeasurement:
        from ..analysis.group_metrics import calibration_in_the_large

        plan = self._plan(ctx)
        outcome = favorable_outcome(ctx)
        if outcome.multiclass:
            # k classes: the favorable class against the rest (said in the notes and findings)
            y = outcome.observed.astype(int)
            label, score = outcome.decision.astype(int), outcome.p_favorable
            outcome = replace(outcome, positive=outcome.favorable, favorable_is_positive=True)
        else:
            preds = ctx.predictions("test")
            y, label, score = ctx.y_binary("test"), preds.label, preds.score
        rng = ctx.rng(self.id)
        results = tuple(error_parity(g, y, label, score, min_group_size=self.min_group_size,
                                     min_class_rows=self.min_class_rows, calibration_bins=self.calibration_bins,
                                     n_resamples=self.n_resamples, confidence=self.confidence, rng=rng)
                        for g in plan.groupings)
        rate_tests, cal_tests = [], []
        for res in results:
            ref = res.row(res.grouping.reference)
            for r in res.rows:
                if not r.eligible:
                    continue
                if math.isfinite(r.calibration_p):
                    cal_tests.append(((res.grouping.name, r.group), r.calibration_p))
                if r.is_reference:
                    continue
                if min(r.n_pos, ref.n_pos) >= self.min_class_rows and math.isfinite(r.fnr_p):
                    rate_tests.append(((res.grouping.name, r.group, "fnr"), r.fnr_p))
                if min(r.n_neg, ref.n_neg) >= self.min_class_rows and math.isfinite(r.fpr_p):
                    rate_tests.append(((res.grouping.name, r.group, "fpr"), r.fpr_p))
        return ErrorParityMeasurement(outcome=outcome, results=results, notes=plan.notes,
                                      overall_calibration_gap=calibration_in_the_large(y, score)[0],
                                      adjusted=_adjust(rate_tests), adjusted_calibration=_adjust(cal_tests))

    # -- judgement --
    def severity_gap(self, gap: float, p: float, ci: tuple[float, float]) -> Severity | None:
        """The gap rule: ``p`` Holm-adjusted, ``ci`` the gap's interval (its end nearer zero decides high)."""
        if not math.isfinite(gap):
            return None
        sig = math.isfinite(p) and p < self.alpha
        near = _near_zero(*ci)
        if sig and abs(gap) >= self.high_gap and math.isfinite(near) and near >= self.gap_high_lower:
            return Severity.HIGH
        if sig and abs(gap) >= self.medium_gap:
            return Severity.MEDIUM
        if abs(gap) >= self.high_gap:
            return Severity.LOW
        return None

    def gap_rule_text(self) -> str:
        return (f"high when the gap is at least {self.high_gap:g}, the Holm-adjusted p < {self.alpha:g} and the end of "
                f"the gap's {self.confidence:.0%} interval nearer zero is still at least {self.gap_high_lower:g}; "
                "medium when significant and the gap is at "
                f"least {self.medium_gap:g}; low when the gap is at least {self.high_gap:g} but not significant")

    def severity_calibration(self, gap: float, p: float) -> Severity | None:
        if math.isfinite(gap) and abs(gap) >= self.calibration_gap and math.isfinite(p) and p < self.alpha:
            return Severity.MEDIUM
        return None

    def _rate_severities(self, m: ErrorParityMeasurement, res: ErrorParityResult,
                         row: GroupErrors) -> dict[str, Severity]:
        out = {}
        for rate, gap, ci in (("fnr", row.fnr_gap, (row.fnr_gap_low, row.fnr_gap_high)),
                              ("fpr", row.fpr_gap, (row.fpr_gap_low, row.fpr_gap_high))):
            key = (res.grouping.name, row.group, rate)
            if key in m.adjusted:  # compared: enough rows of the actual class in group and reference
                s = self.severity_gap(gap, m.adjusted[key], ci)
                if s:
                    out[rate] = s
        return out

    def judge(self, m: ErrorParityMeasurement) -> list[Finding]:
        errors, calib = _Gate(), _Gate()
        out: list[Finding] = []
        for res in sorted(m.results, key=lambda r: r.grouping.is_intersection):
            g = res.grouping
            for row in res.rows:
                if not row.eligible:
                    continue
                if not row.is_reference:
                    sevs = self._rate_severities(m, res, row)
                    if sevs:
                        sev = max(sevs.values(), key=lambda s: s.rank)
                        if errors.admit(g, row.group, sev):
                            out.append(self._rate_finding(m, res, row, sevs, sev))
                sev = self.severity_calibration(row.calibration_gap, m.p(g, row.group, "calibration"))
                if sev and calib.admit(g, row.group, sev):
                    out.append(self._calibration_finding(m, res, row, sev))
        return out

    def _rate_finding(self, m: ErrorParityMeasurement, res: ErrorParityResult, row: GroupErrors,
                      sevs: Mapping[str, Severity], sev: Severity) -> Finding:
        g, o = res.grouping, m.outcome
        ref = res.row(g.reference)
        denial = "fnr" if o.favorable_is_positive else "fpr"  # withholds the favorable outcome from the deserving
        grant = "fpr" if denial == "fnr" else "fnr"
        unfav = f"not {o.label}"
        conf = f"{self.confidence:.0%}"
        text = {
            denial: (f"among rows whose actual outcome is favorable ({o.label}), the model withholds the favorable "
                     f"decision from {{g}} of {_who(g, row.group)} against {{r}} of the reference group "
                     f"({denial.upper()}, gap {{gap}}, {conf} interval {{ci}}, {{p}})"),
            grant: (f"among rows whose actual outcome is unfavorable ({unfav}), the model grants the favorable decision "
                    f"to {{g}} of {_who(g, row.group)} against {{r}} of the reference group "
                    f"({grant.upper()}, gap {{gap}}, {conf} interval {{ci}}, {{p}})"),
        }
        vals = {"fnr": (row.fnr, ref.fnr, row.fnr_gap, m.p(g, row.group, "fnr")),
                "fpr": (row.fpr, ref.fpr, row.fpr_gap, m.p(g, row.group, "fpr"))}
        cis = {"fnr": (row.fnr_gap_low, row.fnr_gap_high), "fpr": (row.fpr_gap_low, row.fpr_gap_high)}
        raw = {"fnr": row.fnr_p, "fpr": row.fpr_p}
        parts = []
        for rate in (denial, grant):
            if rate in sevs:
                v, r, gap, p = vals[rate]
                parts.append(text[rate].format(g=_pct(v), r=_pct(r), gap=_signed(gap), ci=_ci(*cis[rate]),
                                               p=_p_both(raw[rate], p, len(m.adjusted))))
        main = max(sevs, key=lambda k: (sevs[k].rank, abs(vals[k][2])))
        v, r, gap, _ = vals[main]
        if main == denial:
            meaning = ("People in this group who deserve the favorable outcome are denied it more often than in the "
                       "reference group." if gap > 0 else
                       "People in the reference group who deserve the favorable outcome are denied it more often than "
                       "in this group.")
            label = "Wrongful denials"
        else:
            meaning = ("People in this group get the favorable outcome without deserving it more often: the model is "
                       "less discriminating for them (and relatively stricter for the reference group)." if gap > 0 else
                       "People in the reference group get the favorable outcome without deserving it more often than "
                       "in this group: the model is relatively stricter for this group.")
            label = "Wrongful approvals"
        summary = ("On the test data, " + "; ".join(parts) + ". " + meaning +
                   f" Accuracy is {_pct(row.accuracy)} against {_pct(ref.accuracy)}.")
        not_sig = all(not (math.isfinite(vals[k][3]) and vals[k][3] < self.alpha) for k in sevs)
        lo, hi = cis[main]
        if not_sig:
            summary += " The gap is large but not statistically significant with these group sizes (rated low)."
        elif sev is Severity.HIGH:
            summary += (f" Rated high: significant, and even the end of the {conf} interval nearer zero is a gap of at "
                        f"least {self.gap_high_lower:g}.")
        else:
            summary += (f" Rated medium: significant and at least {self.medium_gap:g}" +
                        (f", but the {conf} interval {_ci(lo, hi)} does not exclude a gap below "
                         f"{self.gap_high_lower:g}, so high is not established." if abs(gap) >= self.high_gap else "."))
        if o.multiclass:
            summary += (f" The model has {o.n_classes} classes: these rates are for the favorable class ({o.favorable}) "
                        "against the rest (the decision is favorable when the most probable class is the favorable "
                        "one).")
        rule = Rule(metric=f"{main}_gap", value=_num(gap), operator="|x| >=", threshold=(self.medium_gap, self.high_gap),
                    interval=(_num(lo), _num(hi)), p_value=_num(vals[main][3]),
                    text=(f"{main.upper()} gap {_signed(gap)} ({conf} Newcombe interval {_ci(lo, hi)}; Holm-adjusted "
                          f"{_p(vals[main][3])}): " + self.gap_rule_text()))
        return Finding(
            id=_fid(self.id, g, row.group), check=self.id, severity=sev, rule=rule,
            title=(f"{label} ({main.upper()}) {_pct(v)} for {_who(g, row.group)} vs {_pct(r)} for the reference "
                   f"group (gap {_signed(gap)})"),
            summary=summary, features=g.columns, groups=g.part_pairs(row.group),
            metrics={"fnr": row.fnr, "fpr": row.fpr, "tpr": row.tpr, "reference_fnr": ref.fnr, "reference_fpr": ref.fpr,
                     "fnr_gap": row.fnr_gap, "fpr_gap": row.fpr_gap,
                     "fnr_gap_ci_low": row.fnr_gap_low, "fnr_gap_ci_high": row.fnr_gap_high,
                     "fpr_gap_ci_low": row.fpr_gap_low, "fpr_gap_ci_high": row.fpr_gap_high, "fnr_p_value": row.fnr_p,
                     "fpr_p_value": row.fpr_p, "fnr_p_value_adjusted": vals["fnr"][3],
                     "fpr_p_value_adjusted": vals["fpr"][3], "accuracy": row.accuracy, "reference_accuracy": ref.accuracy,
                     "count": row.count, "reference_count": ref.count},
            remediation=("Check whether the model is less accurate for this group (too few training rows, features "
                         "that mean something different for it) and whether the labels are equally reliable.",
                         "Compare alternatives: reweighting, more data for the group, or group-aware threshold "
                         "post-processing where lawful (fairlearn ThresholdOptimizer); weigh error parity against "
                         "accuracy.",
                         "Report the error rates by group to the model owner and monitor them."),
            evidence=("by_group", "error_gaps", "error_rates"))

    def _calibration_finding(self, m: ErrorParityMeasurement, res: ErrorParityResult, row: GroupErrors,
                             sev: Severity) -> Finding:
        g, o = res.grouping, m.outcome
        word = "over-predicts" if row.calibration_gap > 0 else "under-predicts"
        flattered = (row.calibration_gap > 0) == o.favorable_is_positive
        effect = ("more favorable decisions than its actual outcomes warrant" if flattered else
                  "fewer favorable decisions than its actual outcomes warrant")
        p_adj = m.p(g, row.group, "calibration")
        rule = Rule(metric="calibration_gap", value=_num(row.calibration_gap), operator="|x| >=",
                    threshold=self.calibration_gap, interval=(_num(row.calibration_low), _num(row.calibration_high)),
                    p_value=_num(p_adj),
                    text=(f"calibration gap {_signed(row.calibration_gap)} ({self.confidence:.0%} interval "
                          f"{_ci(row.calibration_low, row.calibration_high)}; Holm-adjusted {_p(p_adj)}): medium when "
                          f"|gap| >= {self.calibration_gap:g} and the Holm-adjusted p < {self.alpha:g}"))
        return Finding(
            id=_fid(self.id, g, row.group, "/calibration"), check=self.id, severity=sev, rule=rule,
            title=(f"Probabilities miscalibrated for {_who(g, row.group)}: mean predicted {_pct(row.mean_predicted)} vs "
                   f"observed {_pct(row.observed_rate)}"),
            summary=(f"For the {row.count:,} test rows with {_who(g, row.group)} the model {word} the probability of "
                     f"{o.target} = {o.positive}: mean predicted {_pct(row.mean_predicted)} against an observed rate "
                     f"of {_pct(row.observed_rate)} (gap {_signed(row.calibration_gap)}, "
                     f"{_p_both(row.calibration_p, m.p(g, row.group, 'calibration'), len(m.adjusted_calibration))}; "
                     f"over all test rows the gap is {_signed(m.overall_calibration_gap)}). The same score means a "
                     f"different risk in this group, so one threshold gives this group {effect}." +
                     (f" The model has {o.n_classes} classes: this is P({o.label}) against the observed share of "
                      "that class." if o.multiclass else "")),
            features=g.columns, groups=g.part_pairs(row.group),
            metrics={"mean_predicted": row.mean_predicted, "observed_rate": row.observed_rate,
                     "calibration_gap": row.calibration_gap, "p_value": row.calibration_p,
                     "p_value_adjusted": m.p(g, row.group, "calibration"), "ece": row.ece,
                     "count": row.count, "overall_calibration_gap": m.overall_calibration_gap},
            remediation=("Investigate why the model misjudges this group's risk (missing features, different base "
                         "rates, too few training rows).",
                         "Recalibrate, and check the calibration by group after any change."),
            evidence=("calibration_by_group",))

    # -- evidence --
    def evidence(self, m: ErrorParityMeasurement) -> Evidence:
        from ..plots.fairness import error_rates_figure

        o = m.outcome
        base, gaps, calib, eods = [], [], [], []
        metrics: dict[str, Any] = {}
        worst = worst_eligible = float("nan")
        for res in m.results:
            g = res.grouping
            ref_n = g.count(g.reference)
            for r in res.rows:
                note = _note(g, r.group, r.count, self.min_group_size, ref_n)
                base.append({"column": g.name, "group": r.group, "count": r.count,
                             "selection_rate": _sig(r.selection_rate), "tpr": _sig(r.tpr), "fpr": _sig(r.fpr),
                             "fnr": _sig(r.fnr), "accuracy": _sig(r.accuracy), "note": note})
                if not r.is_reference:
                    gaps.append({"column": g.name, "group": r.group, "positives": r.n_pos, "negatives": r.n_neg,
                                 "fnr_gap": _sig(r.fnr_gap), "fnr_ci_low": _sig(r.fnr_gap_low),
                                 "fnr_ci_high": _sig(r.fnr_gap_high), "fnr_p_value": _sig(r.fnr_p),
                                 "fnr_p_adjusted": _sig(m.p(g, r.group, "fnr")), "fpr_gap": _sig(r.fpr_gap),
                                 "fpr_ci_low": _sig(r.fpr_gap_low), "fpr_ci_high": _sig(r.fpr_gap_high),
                                 "fpr_p_value": _sig(r.fpr_p), "fpr_p_adjusted": _sig(m.p(g, r.group, "fpr")),
                                 "note": note})
                calib.append({"column": g.name, "group": r.group, "count": r.count,
                              "mean_predicted": _sig(r.mean_predicted), "observed_rate": _sig(r.observed_rate),
                              "calibration_gap": _sig(r.calibration_gap), "p_value": _sig(r.calibration_p),
                              "p_adjusted": _sig(m.p(g, r.group, "calibration")), "ece": _sig(r.ece), "note": note})
            eods.append({"column": g.name, "groups": len(res.eod_all_groups),
                         "equalized_odds_difference": _sig(res.equalized_odds_difference),
                         "eligible_groups": len(res.eod_groups),
                         "equalized_odds_difference_eligible": _sig(res.equalized_odds_difference_eligible),
                         "ci_low": _sig(res.eod_low), "ci_high": _sig(res.eod_high),
                         "tpr_difference": _sig(res.tpr_difference), "fpr_difference": _sig(res.fpr_difference)})
            metrics[f"equalized_odds_difference/{g.name}"] = res.equalized_odds_difference
            metrics[f"equalized_odds_difference_eligible/{g.name}"] = res.equalized_odds_difference_eligible
            if not g.is_intersection:
                worst = _nanmax(worst, res.equalized_odds_difference)
                worst_eligible = _nanmax(worst_eligible, res.equalized_odds_difference_eligible)
        metrics = {"equalized_odds_difference": worst, "equalized_odds_difference_eligible": worst_eligible,
                   **metrics}
        denial = "FNR" if o.favorable_is_positive else "FPR"
        tables = (
            Table.from_records("by_group", "Error rates by group", base,
                               columns=("column", "group", "count", "selection_rate", "tpr", "fpr", "fnr", "accuracy",
                                        "note"), max_rows=_MAX_ROWS,
                               caption=((f"Rates with respect to the favorable class ({o.label}) against the other "
                                         f"{o.n_classes - 1} classes, the decision being the most probable class"
                                         if o.multiclass else
                                         f"Rates with respect to the positive class ({o.target} = {o.positive}) at "
                                         f"threshold {o.threshold:g}") +
                                        ", computed with fairlearn's MetricFrame; selection "
                                        f"rate = share predicted positive. The favorable outcome is {o.label}, so "
                                        f"{denial} is the rate at which deserving people are denied it.")),
            Table.from_records("error_gaps", "Error-rate gaps against the reference group", gaps,
                               columns=("column", "group", "positives", "negatives", "fnr_gap", "fnr_ci_low",
                                        "fnr_ci_high", "fnr_p_value", "fnr_p_adjusted", "fpr_gap", "fpr_ci_low",
                                        "fpr_ci_high", "fpr_p_value", "fpr_p_adjusted", "note"),
                               max_rows=_MAX_ROWS,
                               caption=(f"Gap = group rate − reference rate, with its {self.confidence:.0%} Newcombe "
                                        "(hybrid score) interval; p: two-sided Fisher exact test on the rows "
                                        "of the actual class (positives for FNR, negatives for FPR); p_adjusted: Holm's "
                                        f"adjustment over the {len(m.adjusted)} rate comparisons made (blank: too few "
                                        "rows of the class to compare).")),
            Table.from_records("calibration_by_group", "Calibration by group", calib,
                               columns=("column", "group", "count", "mean_predicted", "observed_rate",
                                        "calibration_gap", "p_value", "p_adjusted", "ece", "note"), max_rows=_MAX_ROWS,
                               caption=(f"Mean P({o.target} = {o.positive}) against the observed rate; gap = predicted − "
                                        "observed, p from a normal approximation of the observed count under "
                                        f"calibration; ECE over {self.calibration_bins} equal-count bins per group.")),
            Table.from_records("equalized_odds", "Equalized-odds difference", eods,
                               columns=("column", "groups", "equalized_odds_difference", "eligible_groups",
                                        "equalized_odds_difference_eligible", "ci_low", "ci_high", "tpr_difference",
                                        "fpr_difference"),
                               caption=("equalized_odds_difference: fairlearn's equalized_odds_difference, the larger "
                                        "of the between-group TPR and FPR differences over every group of the column "
                                        "(groups: how many, tiny ones included; no interval). "
                                        "equalized_odds_difference_eligible: the same over the eligible groups only "
                                        f"(at least {self.min_group_size} rows and {self.min_class_rows} rows of each "
                                        f"class), with its {self.confidence:.0%} percentile bootstrap interval "
                                        f"({self.n_resamples} resamples within groups) and its TPR and FPR "
                                        "differences.")),
        )
        fig = error_rates_figure(m.results, min_group_size=self.min_group_size, denial=denial.lower())
        notes = list(m.notes)
        notes.append(o.decision_text())
        if o.multiclass:
            notes.append(f"The model has {o.n_classes} classes: error rates and calibration are for the favorable "
                         f"class ({o.favorable}) against the rest of the classes (actual class favorable or not, "
                         "predicted class favorable or not).")
        notes.append("Severity rule for the error-rate gaps: " + self.gap_rule_text() + ".")
        for res in m.results:
            notes.append(f"Reference for {res.grouping.name}: {res.grouping.reference} "
                         f"({res.grouping.reference_source}).")
        notes.append(f"Groups with fewer than {self.min_group_size} rows are listed but get no finding; a rate is "
                     f"compared only when group and reference each have {self.min_class_rows} rows of its actual class. "
                     f"Significance is judged at level {self.alpha:g} on Holm-adjusted p-values (over all rate "
                     "comparisons, and separately over the calibration tests).")
        return Evidence(metrics=metrics, tables=tables, figures=(fig,) if fig else (), notes=tuple(notes))


# =================================================================================================
# fairness.proxy
# =================================================================================================

@dataclass(frozen=True)
class ProxyMeasurement:
    results: tuple[ProxyResult, ...]
    features: tuple[str, ...]
    shift: tuple[float, ...]  # permutation shift per feature (empty when not computed)
    importance_rows: int
    direct: tuple[str, ...]  # protected columns that are model inputs themselves
    notes: tuple[str, ...]
    n_rows: int
    # counterfactual on the proxy, per (protected column, feature): one effect per disadvantaged group;
    # a key with no effects means no eligible group of the column is disadvantaged (AIR < 1)
    effects: Mapping[tuple[str, str], tuple[RedrawEffect, ...]] = field(default_factory=dict)
    counterfactual: bool = False  # effects were measured (classification, option on)
    linked: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (column, group) -> disparate-impact id

    def share(self, feature: str) -> float:
        if not self.shift:
            return float("nan")
        total = float(sum(self.shift))
        return self.shift[self.features.index(feature)] / total if total > 0 else 0.0

    def best_effect(self, protected: str, feature: str) -> RedrawEffect | None:
        """The effect with the largest lift over the column's disadvantaged groups (None if none)."""
        effects = self.effects.get((protected, feature), ())
        return max(effects, key=lambda e: (e.lift if math.isfinite(e.lift) else -math.inf, e.group), default=None)

    def measured(self, protected: str, feature: str) -> bool:
        return self.counterfactual and (protected, feature) in self.effects


@dataclass
class ProxyCheck(_GroupedCheck):
    """Model features that stand in for a protected attribute, whether or not the attribute is a model input.

    For each protected column and each other model feature: the association (bias-corrected Cramér's
    V, correlation ratio η, or |Spearman ρ| against a numeric attribute) and the cross-validated AUC
    with which the feature alone predicts the attribute's groups (macro one-vs-rest for more than two);
    and the AUC of all features together (gradient boosting) — can the model's inputs reconstruct the
    attribute? Whether the model relies on a feature is its share of the total permutation shift
    (mean |change in output| when the feature is shuffled, on ``importance_rows`` test rows).

    A proxy is a feature with AUC >= ``medium_auc`` or Cramér's V >= ``medium_cramers_v``, or one
    that determines the attribute (each of its values in one group, e.g. age for an age band); a
    protected column that is itself a model input is direct use. Classification: each proxy (and
    direct input) is rated by its measured effect on the disparity, a counterfactual on the proxy:
    for every disadvantaged group (AIR < 1, enough rows) its values of the feature are redrawn from
    the reference group's values (the exact frequency-weighted expectation over the reference
    group's distinct values, or ``counterfactual_values`` values drawn with the check's seeded
    generator when there are more) and the rows are rescored in one batched call; the lift is the
    change in the group's adverse impact ratio, with a normal interval over the group's rows. ``high``
    when the interval's lower end is at least ``high_lift``; ``medium`` when the lift is at least
    ``material_lift`` and its interval excludes zero; else ``low`` (also when no group is
    disadvantaged: a channel with no disparity to carry). The finding names the
    fairness.disparate_impact finding of the group. Regression (or ``counterfactual = false``):
    AUC >= ``high_auc`` and the model relies on it (share >= ``min_importance_share``) is ``high``;
    a proxy relied on is ``medium``; one the model barely uses is ``low``; direct use: ``medium``
    when relied on, else ``low`` (whether it is lawful is a policy question for the owner). All features
    together: ``medium`` at AUC >= ``combined_medium_auc``, ``low`` at >= ``combined_low_auc``,
    else ``info`` — and ``info`` when one feature already reported reaches that AUC within
    ``single_feature_margin`` (the reconstruction is that feature's). Works for regression models too.
    """

    id: ClassVar[str] = "fairness.proxy"
    family = FAIRNESS
    order = 3
    title: ClassVar[str] = "Proxies for protected attributes"

    max_rows: int = 5000  # seeded sample of test rows for the proxy models
    cv_folds: int = 3
    tree_depth: int = 3
    medium_auc: float = 0.8
    high_auc: float = 0.9
    medium_cramers_v: float = 0.5
    combined_low_auc: float = 0.7
    combined_medium_auc: float = 0.9
    importance_rows: int = 1000  # 0: skip the permutation importance (every proxy then counts as relied on)
    min_importance_share: float = 0.05
    single_feature_margin: float = 0.02  # all features no better than one reported feature + this: info
    counterfactual: bool = True  # rate proxies by redrawing them for disadvantaged groups (classification)
    material_lift: float = 0.05  # AIR change that makes a proxy medium (interval above zero)
    high_lift: float = 0.10  # lower end of the AIR change's interval that makes it high
    counterfactual_values: int = 100  # reference values per row: all distinct ones when fewer, else a seeded draw
    counterfactual_cells: int = 200_000  # most rows scored per feature and group (the group is sub-sampled)

    def measure(self, ctx: AuditContext) -> ProxyMeasurement:
        plan = self._plan(ctx)
        frame = ctx.frame("test")
        pos = np.arange(len(frame))
        if len(frame) > self.max_rows:
            pos = np.sort(ctx.rng(self.id + ":rows").choice(len(frame), size=self.max_rows, replace=False))
        rows = frame.iloc[pos]
        seed = int(ctx.rng(self.id).integers(2 ** 31 - 1))
        results = []
        for g in plan.groupings:
            if g.is_intersection:
                continue
            col = g.columns[0]
            feats = [f for f in ctx.features if f != col]
            raw = rows[col] if g.method in ("quantile bands", "fixed bands") else None
            results.append(proxy_analysis(rows[feats].reset_index(drop=True), g.labels[pos], protected=col,
                                          categorical=ctx.categorical,
                                          raw_protected=None if raw is None else raw.reset_index(drop=True),
                                          min_group_size=self.min_group_size, cv_folds=self.cv_folds,
                                          tree_depth=self.tree_depth, seed=seed))
        shift: tuple[float, ...] = ()
        n_imp = 0
        if self.importance_rows > 0 and ctx.features:
            sample = ctx.sample_rows("test", self.importance_rows, self.id + ":importance")
            n_imp = len(sample)
            X = sample[list(ctx.features)].reset_index(drop=True)
            # classification: the change of the whole probability vector (k classes as k classes)
            output = (lambda d: ctx.predict_frame(d).proba) if ctx.is_classification else \
                (lambda d: ctx.predict_frame(d).score)
            shift = tuple(float(v) for v in permutation_shift(output, X, ctx.features,
                                                              rng=ctx.rng(self.id + ":permutation")))
        direct = tuple(c for c in ctx.protected if c in ctx.features)
        effects: dict[tuple[str, str], tuple[RedrawEffect, ...]] = {}
        linked: dict[tuple[str, str], str] = {}
        measured = self.counterfactual and ctx.is_classification
        if measured:
            effects, linked = self._counterfactuals(ctx, plan, results, direct)
        return ProxyMeasurement(results=tuple(results), features=tuple(ctx.features), shift=shift,
                                importance_rows=n_imp, direct=direct, notes=plan.notes, n_rows=len(rows),
                                effects=effects, counterfactual=measured, linked=linked)

    def _candidate(self, auc: float, cramers_v: float, determines: bool) -> bool:
        return determines or (math.isfinite(auc) and auc >= self.medium_auc) or \
            (math.isfinite(cramers_v) and cramers_v >= self.medium_cramers_v)

    def _counterfactuals(self, ctx: AuditContext, plan: GroupingPlan, results: list[ProxyResult],
                         direct: tuple[str, ...]) -> tuple[dict, dict]:
        """Redraw each proxy (and each protected model input) for every disadvantaged group of its
        column from the reference group's values, and measure the change in that group's AIR."""
        outcome = favorable_outcome(ctx)
        X = ctx.X("test").reset_index(drop=True)
        decide = lambda d: favorable_decision(ctx, ctx.predict_frame(d))  # noqa: E731
        rng = ctx.rng(self.id + ":counterfactual")
        by_column = {g.columns[0]: g for g in plan.groupings if not g.is_intersection}
        wanted: dict[str, list[str]] = {}
        for res in results:
            wanted[res.protected] = [fp.feature for fp in res.features
                                     if self._candidate(fp.auc, fp.cramers_v, fp.determines)]
        for col in direct:
            if col in by_column:
                wanted.setdefault(col, []).append(col)
        effects: dict[tuple[str, str], tuple[RedrawEffect, ...]] = {}
        linked: dict[tuple[str, str], str] = {}
        for col, feats in wanted.items():
            g = by_column.get(col)
            if g is None or not feats:
                continue
            di = disparate_impact(g, outcome.decision, outcome.p_favorable, min_group_size=self.min_group_size,
                                  confidence=self.confidence)
            ref_mask = g.labels == g.reference
            groups = [r for r in di.rows if r.eligible and not r.is_reference and math.isfinite(r.air) and r.air < 1]
            for r in groups:
                linked[(col, r.group)] = safe_id(_fid(DisparateImpactCheck.id, g, r.group))
            for feat in feats:
                out = []
                for r in groups:
                    mask = g.labels == r.group
                    out.append(redraw_effect(decide, X.loc[mask], feat, X.loc[ref_mask, feat],
                                             base_decision=outcome.decision[mask], group_rate=r.favorable_rate,
                                             reference_rate=di.reference_rate, group=r.group, reference=g.reference,
                                             max_values=self.counterfactual_values,
                                             max_cells=self.counterfactual_cells, rng=rng, confidence=self.confidence))
                effects[(col, feat)] = tuple(out)
        return effects, linked

    # -- judgement --
    def relied_on(self, m: ProxyMeasurement, feature: str) -> bool:
        share = m.share(feature)
        return (not m.shift) or share >= self.min_importance_share

    def severity_feature(self, auc: float, cramers_v: float, determines: bool, relied_on: bool) -> Severity | None:
        strong = (math.isfinite(auc) and auc >= self.medium_auc) or \
            (math.isfinite(cramers_v) and cramers_v >= self.medium_cramers_v)
        if determines:
            return Severity.MEDIUM if relied_on else Severity.LOW
        if not strong:
            return None
        if not relied_on:
            return Severity.LOW
        return Severity.HIGH if auc >= self.high_auc else Severity.MEDIUM

    def severity_combined(self, auc: float) -> Severity | None:
        if not math.isfinite(auc):
            return None
        if auc >= self.combined_medium_auc:
            return Severity.MEDIUM
        return Severity.LOW if auc >= self.combined_low_auc else Severity.INFO

    def severity_effect(self, effect: RedrawEffect | None) -> Severity:
        """The counterfactual rule: ``high`` when the lower end of the AIR lift's interval is at least
        ``high_lift``; ``medium`` when the lift is at least ``material_lift`` and its interval excludes
        zero; else ``low`` (None: no disadvantaged group, nothing for the proxy to carry)."""
        if effect is None or not math.isfinite(effect.lift):
            return Severity.LOW
        if math.isfinite(effect.lift_low) and effect.lift_low >= self.high_lift:
            return Severity.HIGH
        if effect.lift >= self.material_lift and math.isfinite(effect.lift_low) and effect.lift_low > 0:
            return Severity.MEDIUM
        return Severity.LOW

    def effect_rule_text(self) -> str:
        return (f"rated by the counterfactual: high when the lower end of the {self.confidence:.0%} interval of the "
                f"AIR lift is at least {self.high_lift:g}; medium when the lift is at least {self.material_lift:g} "
                "and its interval excludes zero; otherwise low")

    def _effect_parts(self, m: ProxyMeasurement, protected: str, feature: str
                      ) -> tuple[Severity, str, dict[str, Any], Rule | None, tuple[tuple[str, str], ...]]:
        """Severity, sentence, metrics, rule and groups of a proxy rated by its counterfactual."""
        e = m.best_effect(protected, feature)
        sev = self.severity_effect(e)
        if e is None:
            text = (f" No group of '{protected}' with enough rows is disadvantaged (adverse impact ratio below 1), so "
                    f"redrawing '{feature}' has no disparity to move: rated low.")
            rule = Rule(metric="air_lift", value=None, operator=">=", threshold=(self.material_lift, self.high_lift),
                        text="no disadvantaged group to redraw; " + self.effect_rule_text())
            return sev, text, {}, rule, ()
        conf = f"{self.confidence:.0%}"
        link = m.linked.get((protected, e.group), "")
        how = (f"every distinct value of the reference group ({e.n_values}), weighted by its frequency"
               if e.exact else f"{e.n_values} values drawn from the reference group (seeded)")
        rows = (f"{e.n_rows:,} rows" if e.n_rows == e.group_count else
                f"a seeded sample of {e.n_rows:,} of its {e.group_count:,} rows")
        share = e.gap_share
        text = (f" Counterfactual: giving the rows with {protected} = {e.group} values of '{feature}' redrawn from the "
                f"reference group ({protected} = {e.reference}; {how}, scored on {rows}) moves their adverse impact "
                f"ratio from {_f(e.air)} to {_f(e.counterfactual_air)} (lift {_signed(e.lift)}, {conf} interval over "
                f"the group's rows {_ci(e.lift_low, e.lift_high)}"
                + (f"; {_pct(share)} of the gap to parity" if math.isfinite(share) else "") + "). "
                + {Severity.HIGH: f"Rated high: even the interval's lower end is a lift of at least {self.high_lift:g}.",
                   Severity.MEDIUM: (f"Rated medium: a material lift (at least {self.material_lift:g}) whose interval "
                                     "excludes zero" + (f", but not established above {self.high_lift:g}." if
                                                         e.lift >= self.high_lift else ".")),
                   Severity.LOW: (("Rated low: redrawing it does not raise the ratio, so the disparity does not flow "
                                   "through this feature on its own." if e.lift <= 0 else
                                   f"Rated low: the lift is below {self.material_lift:g} or not distinguishable from "
                                   "zero, so little of the disparity flows through it.") +
                                  " (The redraw changes this feature only; a disparity carried by several correlated "
                                  "features together shows in the all-features reconstruction.)")}[sev]
                + (f" The disparity itself is the disparate-impact finding '{link}'." if link else ""))
        metrics = {"air": e.air, "counterfactual_air": e.counterfactual_air, "air_lift": e.lift,
                   "air_lift_ci_low": e.lift_low, "air_lift_ci_high": e.lift_high, "gap_share": share,
                   "counterfactual_group": e.group, "counterfactual_rows": e.n_rows, "counterfactual_exact": e.exact,
                   "disparate_impact_finding": link}
        rule = Rule(metric="air_lift", value=_num(e.lift), operator=">=", threshold=(self.material_lift, self.high_lift),
                    interval=(_num(e.lift_low), _num(e.lift_high)),
                    text=(f"AIR lift {_signed(e.lift)} ({conf} interval {_ci(e.lift_low, e.lift_high)}) when '{feature}' "
                          f"is redrawn for {protected} = {e.group}: " + self.effect_rule_text()))
        return sev, text, metrics, rule, ((protected, e.group),)

    def judge(self, m: ProxyMeasurement) -> list[Finding]:
        out: list[Finding] = []
        for col in m.direct:
            relied = self.relied_on(m, col)
            share = m.share(col)
            # the counterfactual of the column itself, else of the band column it determines
            via = col if m.measured(col, col) else next((r.protected for r in m.results if m.measured(r.protected, col)),
                                                        None)
            sev, extra, metrics, rule, groups = (Severity.MEDIUM if relied else Severity.LOW), "", {}, None, ()
            if via is not None:
                sev, extra, metrics, rule, groups = self._effect_parts(m, via, col)
            else:
                rule = Rule(metric="importance_share", value=_num(share), operator=">=",
                            threshold=self.min_importance_share,
                            text=f"direct use: medium when the model relies on it (share >= {self.min_importance_share:g})"
                                 ", else low")
            out.append(Finding(
                id=f"{self.id}/{col}/{col}", check=self.id, severity=sev,
                title=f"Protected attribute '{col}' is a model input" + (
                    f" (redrawing it lifts the AIR by {_signed(metrics['air_lift'])})" if "air_lift" in metrics else
                    ("" if relied else " (little used)")),
                summary=(f"'{col}' is declared protected and is one of the model's inputs, so the model can treat "
                         "people differently by it directly. " + self._usage(m, col, share) + extra +
                         " Whether using it is lawful and justified is a policy question for the model owner; "
                         "fairness.disparate_impact shows its effect on outcomes."),
                features=(col,), groups=groups, metrics={"importance_share": share, **metrics}, rule=rule,
                remediation=(f"Document the legal basis and business need for using '{col}', or retrain without it "
                             "(and check the remaining features for proxies).",),
                evidence=("proxies", "importance", "counterfactual") if metrics else ("proxies", "importance")))
        for res in m.results:
            p = res.protected
            for fp in res.features:
                relied = self.relied_on(m, fp.feature)
                if not self._candidate(fp.auc, fp.cramers_v, fp.determines):
                    continue
                share = m.share(fp.feature)
                extra, metrics, rule, groups = "", {}, None, ()
                if m.measured(p, fp.feature):
                    sev, extra, metrics, rule, groups = self._effect_parts(m, p, fp.feature)
                else:
                    sev = self.severity_feature(fp.auc, fp.cramers_v, fp.determines, relied)
                    rule = Rule(metric="auc", value=_num(fp.auc), operator=">=", threshold=(self.medium_auc, self.high_auc),
                                text=(f"proxy strength and reliance: high at AUC >= {self.high_auc:g} when relied on "
                                      f"(importance share >= {self.min_importance_share:g}), medium when relied on, "
                                      "low when barely used"))
                if sev is None:
                    continue
                assoc = f"{fp.association_measure} {_f(fp.association)}"
                lift_note = (f"; redrawing it lifts the AIR by {_signed(metrics['air_lift'])}" if "air_lift" in metrics
                             else "")
                if fp.determines:
                    title = (f"'{fp.feature}' determines protected '{p}' (the attribute at finer resolution"
                             f"{lift_note})")
                    what = (f"Every value of '{fp.feature}' belongs to one group of '{p}', so the model sees '{p}' "
                            f"itself, in finer detail (cross-validated AUC {_f(fp.auc)}). ")
                    tail = (" Whether using it is lawful and justified is a policy question for the model owner; "
                            "fairness.disparate_impact shows its effect on outcomes.")
                else:
                    title = (f"'{fp.feature}' is a proxy for protected '{p}' (AUC {_f(fp.auc)}"
                             + (lift_note if lift_note else ("" if relied else "; little used by the model")) + ")")
                    what = (f"On its own, '{fp.feature}' predicts '{p}' ({', '.join(res.groups)}) with a "
                            f"cross-validated AUC of {_f(fp.auc)} ({fp.method}; {assoc}). ")
                    tail = (f" Through it the model can treat people differently by '{p}' even though '{p}' is not "
                            "an input." if relied or sev.rank >= Severity.MEDIUM.rank else
                            " It could become a channel for treating people differently by "
                            f"'{p}' if the model came to rely on it.")
                out.append(Finding(
                    id=f"{self.id}/{p}/{fp.feature}", check=self.id, severity=sev, title=title,
                    summary=what + self._usage(m, fp.feature, share) + extra + tail,
                    features=(fp.feature, p), groups=groups, rule=rule,
                    metrics={"auc": fp.auc, "association": fp.association, "cramers_v": fp.cramers_v,
                             "importance_share": share, "determines": fp.determines, **metrics},
                    remediation=(f"Establish the business justification for '{fp.feature}'; if there is none, drop "
                                 "or coarsen it and re-run the disparate impact analysis.",
                                 f"Compare a model without '{fp.feature}' (accuracy against adverse impact ratio): a "
                                 "less discriminatory alternative."),
                    evidence=("proxies", "importance", "proxy_auc") + (("counterfactual",) if metrics else ())))
            sev = self.severity_combined(res.combined_auc)
            # a reconstruction that one feature already achieves is reported with that feature
            carrier = max((fp for fp in res.features if fp.determines or fp.auc >= self.medium_auc),
                          key=lambda fp: fp.auc, default=None)
            if sev is not None and sev is not Severity.INFO and carrier is not None \
                    and carrier.auc >= res.combined_auc - self.single_feature_margin:
                out.append(Finding(
                    id=f"{self.id}/{p}/all_features", check=self.id, severity=Severity.INFO,
                    title=(f"The model's features reconstruct protected '{p}' (AUC {_f(res.combined_auc)}), through "
                           f"'{carrier.feature}'"),
                    summary=(f"A model trained on all {len(res.features)} model features ({res.combined_method}) "
                             f"predicts '{p}' on {res.n_rows:,} test rows with AUC {_f(res.combined_auc)}, no better "
                             f"than '{carrier.feature}' alone (AUC {_f(carrier.auc)}), which is reported separately."),
                    features=(p,), metrics={"combined_auc": res.combined_auc, "rows": res.n_rows},
                    rule=Rule(metric="combined_auc", value=_num(res.combined_auc), operator=">=",
                              threshold=carrier.auc - self.single_feature_margin,
                              text=(f"info: all features reach no more than the AUC of '{carrier.feature}' alone "
                                    f"(within {self.single_feature_margin:g}), which is reported separately")),
                    evidence=("combined",)))
            elif sev is not None:
                other = " other" if p in m.direct else ""
                if sev is Severity.INFO:
                    title = (f"The model's{other} features do not reconstruct protected '{p}' "
                             f"(AUC {_f(res.combined_auc)})")
                    verdict = "so the features carry little information about it."
                else:
                    title = (f"The model's{other} features together reconstruct protected '{p}' "
                             f"(AUC {_f(res.combined_auc)})")
                    verdict = ("so the model could learn to treat people differently by it even without a single "
                               "strong proxy; check the outcome rates in fairness.disparate_impact.")
                out.append(Finding(
                    id=f"{self.id}/{p}/all_features", check=self.id, severity=sev, title=title,
                    summary=(f"A model trained on all {len(res.features)}{other} model features ({res.combined_method}) "
                             f"predicts '{p}' ({', '.join(res.groups)}) on {res.n_rows:,} test rows with AUC "
                             f"{_f(res.combined_auc)}, {verdict}"),
                    features=(p,), metrics={"combined_auc": res.combined_auc, "rows": res.n_rows},
                    rule=Rule(metric="combined_auc", value=_num(res.combined_auc), operator=">=",
                              threshold=(self.combined_low_auc, self.combined_medium_auc),
                              text=(f"medium at a cross-validated AUC >= {self.combined_medium_auc:g}, low at >= "
                                    f"{self.combined_low_auc:g}, else info")),
                    remediation=(() if sev is Severity.INFO else
                                 ("Use the disparate impact results to decide whether the reconstruction matters; "
                                  "if outcomes differ, look for a less discriminatory alternative model.",)),
                    evidence=("combined",)))
        return out

    @staticmethod
    def _usage(m: ProxyMeasurement, feature: str, share: float) -> str:
        if not m.shift:
            return "The model's reliance on it was not measured (importance_rows = 0), so it is assumed."
        i = m.features.index(feature)
        return (f"Shuffling it moves the model's output by {m.shift[i]:.3g} on average, {_pct(share)} of the total "
                f"over all {len(m.features)} features.")

    # -- evidence --
    def evidence(self, m: ProxyMeasurement) -> Evidence:
        from ..plots.fairness import proxy_figure

        prox = []
        for res in m.results:
            for fp in sorted(res.features, key=lambda f: (-f.auc if math.isfinite(f.auc) else 0, f.feature)):
                prox.append({"protected": res.protected, "feature": fp.feature, "kind": fp.kind,
                             "auc": _sig(fp.auc), "association": _sig(fp.association),
                             "measure": fp.association_measure, "importance_share": _sig(m.share(fp.feature)),
                             "determines": fp.determines})
        combined = [{"protected": r.protected, "groups": ", ".join(r.groups), "left_out": ", ".join(r.left_out),
                     "rows": r.n_rows, "combined_auc": _sig(r.combined_auc)} for r in m.results]
        imp = [{"feature": f, "mean_shift": _sig(s), "share": _sig(m.share(f))}
               for f, s in sorted(zip(m.features, m.shift), key=lambda t: (-t[1], t[0]))]
        metrics: dict[str, Any] = {}
        for r in m.results:
            metrics[f"combined_auc/{r.protected}"] = r.combined_auc
            aucs = [f.auc for f in r.features if math.isfinite(f.auc)]
            metrics[f"max_single_feature_auc/{r.protected}"] = max(aucs) if aucs else float("nan")
        tables = [
            Table.from_records("proxies", "Single features as predictors of each protected attribute", prox,
                               columns=("protected", "feature", "kind", "auc", "association", "measure",
                                        "importance_share", "determines"), max_rows=_MAX_ROWS,
                               caption=(f"auc: {self.cv_folds}-fold cross-validated AUC of the feature alone for the "
                                        "attribute's groups (macro one-vs-rest for more than two; depth-"
                                        f"{self.tree_depth} tree for numeric features, smoothed level frequencies "
                                        "for categorical ones); association: bias-corrected Cramér's V, correlation "
                                        "ratio η or |Spearman ρ|; importance share: the feature's share of the total "
                                        "permutation shift of the model's output.")),
            Table.from_records("combined", "All features together", combined,
                               columns=("protected", "groups", "left_out", "rows", "combined_auc"),
                               caption=(f"Cross-validated AUC of gradient boosting on every model feature predicting "
                                        f"the attribute; groups under {self.min_group_size} rows are left out.")),
        ]
        if imp:
            tables.append(Table.from_records(
                "importance", "How much the model relies on each feature", imp, columns=("feature", "mean_shift", "share"),
                max_rows=_MAX_ROWS,
                caption=(f"Mean change in the model's output when the feature is shuffled across {m.importance_rows:,} "
                         "test rows (one batched model call per feature; for a classifier the total-variation distance "
                         "between the two class-probability vectors, |ΔP(positive)| for two classes), and its share "
                         "of the total.")))
        cf = []
        for (col, feat), effects in sorted(m.effects.items()):
            for e in sorted(effects, key=lambda e: e.group):
                cf.append({"protected": col, "feature": feat, "group": e.group, "reference": e.reference,
                           "rows": e.n_rows, "values": e.n_values, "exact": e.exact, "air": _sig(e.air),
                           "counterfactual_air": _sig(e.counterfactual_air), "lift": _sig(e.lift),
                           "ci_low": _sig(e.lift_low), "ci_high": _sig(e.lift_high), "gap_share": _sig(e.gap_share),
                           "rows_changed": _sig(e.rows_changed),
                           "disparate_impact_finding": m.linked.get((col, e.group), "")})
        if cf:
            tables.append(Table.from_records(
                "counterfactual", "Counterfactual on each proxy: the group's values redrawn from the reference group's",
                cf, columns=("protected", "feature", "group", "reference", "rows", "values", "exact", "air",
                             "counterfactual_air", "lift", "ci_low", "ci_high", "gap_share", "rows_changed",
                             "disparate_impact_finding"), max_rows=_MAX_ROWS,
                caption=("For each proxy (and protected model input) and each disadvantaged group: every row of the "
                         "group is scored with the feature set to each of the reference group's values (exact: all "
                         f"distinct values, weighted by frequency; else {self.counterfactual_values} seeded draws), in "
                         "one batched call; counterfactual_air: the adverse impact ratio with the expected decisions; "
                         f"lift: its change, with a {self.confidence:.0%} normal interval over the group's rows; "
                         "gap_share: share of the gap to parity (1 − AIR) closed; rows_changed: share of the group's "
                         "rows whose expected decision moves.")))
        fig = proxy_figure(m.results, share={f: m.share(f) for f in m.features}, medium_auc=self.medium_auc,
                           high_auc=self.high_auc, min_importance_share=self.min_importance_share)
        notes = list(m.notes) + [f"Proxy models fitted on {m.n_rows:,} test rows (seeded sample, max_rows = "
                                 f"{self.max_rows:,})." if m.n_rows >= self.max_rows else
                                 f"Proxy models fitted on all {m.n_rows:,} test rows."]
        if not m.shift:
            notes.append("Permutation importance skipped (importance_rows = 0): every strong proxy is judged as if "
                         "the model relied on it.")
        if m.counterfactual:
            notes.append("Severity of a proxy or protected input: " + self.effect_rule_text() + ". The AIR lift is "
                         "measured on the test rows of the group (the AIR of fairness.disparate_impact). The redraw "
                         "changes one feature at a time and keeps each row's other features, so a disparity carried "
                         "by several correlated features together is seen in the all-features reconstruction, not in "
                         "a single redraw.")
        else:
            why = "counterfactual = false" if not self.counterfactual else "the model is a regressor"
            notes.append(f"Proxies are rated by their strength and the model's reliance on them (no counterfactual: "
                         f"{why}).")
        return Evidence(metrics=metrics, tables=tuple(tables), figures=(fig,) if fig else (), notes=tuple(notes))
