"""fairness.disparate_impact: outcome rates (classification) or mean predictions (regression) by
group against a reference group, with practical and statistical significance."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ...analysis.group_metrics import (
    DisparateImpactResult,
    GroupMean,
    GroupRate,
    MeanDifferenceResult,
    disparate_impact,
    holm_adjust_impact,
    mean_difference,
)
from ...findings import Evidence, Figure, Finding, Rule, Severity, Table
from ...wording import fixed, interval, level, p_value, pct, sig, signed
from ..base import FAIRNESS, setting, threshold
from .common import (
    FIGURE_BARS,
    MAX_TABLE_ROWS,
    Gate,
    GroupedCheck,
    bracketed,
    decision_text,
    finding_id,
    group_note,
    near_zero,
    p_both,
    rule_number,
    singles_first,
    who,
)

if TYPE_CHECKING:
    from ...context import AuditContext, FavorableOutcome

DI_REMEDIATION = (
    "Establish whether a legitimate business need explains the difference, and document it.",
    "Look for a less discriminatory alternative: models without the features that act as proxies "
    "(fairness.proxy), with different hyperparameters or a different threshold; compare their adverse impact "
    "ratios and accuracy.",
    "Confirm on more data and monitor the adverse impact ratio after deployment.",
)


@dataclass(frozen=True)
class DisparateImpactMeasurement:
    """Favorable rates by group (classification) or mean predictions by group (regression), every
    grouping's p-values Holm-adjusted in one family."""

    task: str
    outcome: FavorableOutcome | None  # classification
    higher_is_favorable: bool
    target: str
    notes: tuple[str, ...]
    n_rows: int
    rates: tuple[DisparateImpactResult, ...] = ()  # classification
    means: tuple[MeanDifferenceResult, ...] = ()  # regression

    @property
    def results(self) -> tuple[DisparateImpactResult | MeanDifferenceResult, ...]:
        return self.rates or self.means

    @property
    def n_tests(self) -> int:
        """Groups compared with their reference: the size of the Holm family."""
        return self.results[0].n_tests if self.results else 0

    @property
    def favorable(self) -> FavorableOutcome:
        if self.outcome is None:
            raise ValueError("a regression measurement has no favorable outcome")
        return self.outcome


@dataclass
class DisparateImpactCheck(GroupedCheck[DisparateImpactMeasurement]):
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

    min_ratio: float = threshold(0.8, "adverse impact ratio below which a group is adversely impacted (the "
                                      "four-fifths rule)")
    low_ratio: float = threshold(0.9, "adverse impact ratio below which a significant difference is low")
    # 0.8: the breach of the four-fifths rule is established beyond the sampling uncertainty;
    # 1.0: a significant disparity with an estimate below min_ratio suffices
    air_high_upper: float = threshold(0.8, "high also needs the upper end of the ratio's interval below this")
    high_smd: float = threshold(0.5, "standardized mean difference (SD) the end of its interval nearer zero must "
                                     "reach for high (regression)")
    medium_smd: float = threshold(0.2, "|standardized mean difference| of a significant medium (regression)")
    higher_is_favorable: bool = setting(True, "regression: a higher prediction is the favorable outcome")

    def measure(self, ctx: AuditContext) -> DisparateImpactMeasurement:
        plan = self.plan(ctx)
        common: dict[str, Any] = {"task": ctx.task, "higher_is_favorable": self.higher_is_favorable,
                                  "target": ctx.target, "notes": plan.notes, "n_rows": len(ctx.frame("test"))}
        if ctx.is_classification:
            o = ctx.favorable_outcome()
            rates = holm_adjust_impact([
                disparate_impact(g, o.decision, o.p_favorable, observed_favorable=o.observed,
                                 min_group_size=self.min_group_size, confidence=self.confidence)
                for g in plan.groupings])
            return DisparateImpactMeasurement(outcome=o, rates=rates, **common)
        pred, observed = ctx.predictions("test").score, ctx.y_task("test")
        means = holm_adjust_impact([
            mean_difference(g, pred, observed=observed, higher_is_favorable=self.higher_is_favorable,
                            min_group_size=self.min_group_size, confidence=self.confidence)
            for g in plan.groupings])
        return DisparateImpactMeasurement(outcome=None, means=means, **common)

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
        return (f"high when the adverse impact ratio is below {self.min_ratio:g}, its {level(self.confidence)} "
                f"interval lies wholly below {self.air_high_upper:g} and the Holm-adjusted p < {self.alpha:g}; medium "
                f"when the ratio is below {self.min_ratio:g} and significant; low when it is below {self.min_ratio:g} "
                f"but not significant, or below {self.low_ratio:g} and significant")

    def severity_smd(self, smd: float, p: float, higher_is_favorable: bool, ci: tuple[float, float] = (
            float("nan"), float("nan"))) -> Severity | None:
        """The SMD rule: ``p`` Holm-adjusted, ``ci`` the SMD's interval (its end nearer zero decides high)."""
        d = smd if higher_is_favorable else -smd
        if not math.isfinite(d) or d >= 0:
            return None
        sig = math.isfinite(p) and p < self.alpha
        near = near_zero(*ci)
        if sig and math.isfinite(near) and near >= self.high_smd:
            return Severity.HIGH
        if sig and -d >= self.medium_smd:
            return Severity.MEDIUM
        if -d >= self.high_smd:
            return Severity.LOW
        return None

    def smd_rule_text(self) -> str:
        return (f"high when the Holm-adjusted p < {self.alpha:g} and the end of the SMD's {level(self.confidence)} "
                f"interval nearer zero is still at least {self.high_smd:g} SD; medium when significant and |SMD| >= "
                f"{self.medium_smd:g}; low when |SMD| >= {self.high_smd:g} but not significant")

    def judge(self, m: DisparateImpactMeasurement) -> list[Finding]:
        gate = Gate()
        out: list[Finding] = []
        for rates in sorted(m.rates, key=singles_first):
            for row in rates.rows:
                if row.is_reference or not row.eligible:
                    continue
                sev = self.severity_air(row.air, row.p_adjusted, row.air_high)
                if sev is not None and gate.admit(rates.grouping, row.group, sev):
                    out.append(self._air_finding(m, rates, row.group, sev))
        for means in sorted(m.means, key=singles_first):
            for mrow in means.rows:
                if mrow.is_reference or not mrow.eligible:
                    continue
                sev = self.severity_smd(mrow.smd, mrow.p_adjusted, m.higher_is_favorable,
                                        (mrow.smd_low, mrow.smd_high))
                if sev is not None and gate.admit(means.grouping, mrow.group, sev):
                    out.append(self._smd_finding(m, means, mrow.group, sev))
        return out

    def _air_why(self, sev: Severity, row: GroupRate) -> str:
        """Why the AIR finding has its severity."""
        conf, ci = level(self.confidence), bracketed(row.air_low, row.air_high)
        if sev is Severity.HIGH:
            return (f"Rated high: the whole {conf} interval {ci} lies below {self.air_high_upper:.2f} and the "
                    "difference is significant.")
        if sev is Severity.MEDIUM:
            return (f"Rated medium, not high: the ratio is below {self.min_ratio:.2f} and significant, but its {conf} "
                    f"interval {ci} reaches {self.air_high_upper:.2f}, so " +
                    ("the breach of the four-fifths rule is not established beyond the sampling uncertainty."
                     if self.air_high_upper <= self.min_ratio else "high is not established."))
        if row.air < self.min_ratio:
            return (f"Rated low: below {self.min_ratio:.2f} but not significant ({conf} interval {ci}), so the data "
                    "are also consistent with no disparity.")
        return f"Rated low: significant, but at or above the four-fifths line ({conf} interval {ci})."

    def _air_context(self, row: GroupRate, ref: GroupRate) -> str:
        """The actual outcomes of the group and the reference, against the model's decisions."""
        obs_ratio = (row.observed_favorable_rate / ref.observed_favorable_rate
                     if ref.observed_favorable_rate > 0 else float("nan"))
        if math.isfinite(obs_ratio) and obs_ratio < self.min_ratio:
            more = "even more" if obs_ratio < row.air else "too"
            return (f"The actual outcomes differ {more} ({pct(row.observed_favorable_rate)} against "
                    f"{pct(ref.observed_favorable_rate)}, ratio {fixed(obs_ratio)}): the model reproduces a "
                    "difference present in the data, which still needs a business justification.")
        return (f"The actual favorable outcome rates are {pct(row.observed_favorable_rate)} against "
                f"{pct(ref.observed_favorable_rate)} (ratio {fixed(obs_ratio)}), so the model's decisions "
                "separate the groups more than the outcomes do.")

    def _air_finding(self, m: DisparateImpactMeasurement, res: DisparateImpactResult, group: str,
                     sev: Severity) -> Finding:
        g, row, ref = res.grouping, res.row(group), res.row(res.grouping.reference)
        p_adj = row.p_adjusted
        sig = math.isfinite(p_adj) and p_adj < self.alpha
        ptext = p_both(row.p_value, p_adj, res.n_tests)
        bound = self.min_ratio if row.air < self.min_ratio else self.low_ratio
        stat = (f"The difference is statistically significant (Fisher exact test, {ptext})." if sig else
                f"The difference is not statistically significant ({ptext}): with {row.count:,} rows the "
                "data cannot rule it out either, so it needs a closer look (more data), not a dismissal.")
        conf, ci = level(self.confidence), bracketed(row.air_low, row.air_high)
        rule = Rule(metric="adverse_impact_ratio", value=rule_number(row.air), operator="<", threshold=self.min_ratio,
                    interval=(rule_number(row.air_low), rule_number(row.air_high)), p_value=rule_number(p_adj),
                    text=(f"adverse impact ratio {fixed(row.air)} ({conf} Katz interval {ci}; Holm-adjusted "
                          f"{p_value(p_adj)}): " + self.air_rule_text()))
        return Finding(
            id=finding_id(self.id, g, group), check=self.id, severity=sev,
            title=(f"Adverse impact ratio {fixed(row.air)} for {who(g, group)} (below {bound:.2f}; {conf} interval "
                   f"{interval(row.air_low, row.air_high)})"),
            summary=(f"The model gives the favorable outcome ({m.favorable.label}) to {pct(row.favorable_rate)} of the "
                     f"{row.count:,} test rows with {who(g, group)}, against {pct(ref.favorable_rate)} of the "
                     f"{ref.count:,} rows of the reference group {who(g, g.reference)}: an adverse impact ratio of "
                     f"{fixed(row.air)}, {conf} interval {ci} (Katz log interval; the four-fifths rule asks for at "
                     f"least {self.min_ratio:.2f}). {stat} {self._air_why(sev, row)} "
                     f"The mean predicted probability of the favorable outcome is lower by {fixed(-row.smd)} standard "
                     f"deviations (SMD {signed(row.smd)}). {self._air_context(row, ref)}"),
            features=g.columns, groups=g.part_pairs(group), rule=rule,
            metrics={"adverse_impact_ratio": row.air, "air_ci_low": row.air_low, "air_ci_high": row.air_high,
                     "p_value": row.p_value, "p_value_adjusted": p_adj,
                     "favorable_rate": row.favorable_rate,
                     "reference_favorable_rate": ref.favorable_rate, "count": row.count,
                     "reference_count": ref.count, "smd": row.smd,
                     "observed_favorable_rate": row.observed_favorable_rate,
                     "reference_observed_favorable_rate": ref.observed_favorable_rate},
            remediation=DI_REMEDIATION, evidence=("by_group", "adverse_impact_ratio"))

    def _smd_finding(self, m: DisparateImpactMeasurement, res: MeanDifferenceResult, group: str,
                     sev: Severity) -> Finding:
        g, row, ref = res.grouping, res.row(group), res.row(res.grouping.reference)
        p_adj = row.p_adjusted
        sig = math.isfinite(p_adj) and p_adj < self.alpha
        ptext = p_both(row.p_value, p_adj, res.n_tests)
        direction = "lower" if row.difference < 0 else "higher"
        favorable = "higher" if m.higher_is_favorable else "lower"
        conf, ci = level(self.confidence), bracketed(row.smd_low, row.smd_high)
        rule = Rule(metric="smd", value=rule_number(row.smd), operator="|x| >=",
                    threshold=(self.medium_smd, self.high_smd),
                    interval=(rule_number(row.smd_low), rule_number(row.smd_high)), p_value=rule_number(p_adj),
                    text=(f"SMD {signed(row.smd)} ({conf} interval {ci}; Holm-adjusted {p_value(p_adj)}): "
                          + self.smd_rule_text()))
        return Finding(
            id=finding_id(self.id, g, group), check=self.id, severity=sev, rule=rule,
            title=f"Predictions {abs(row.smd):.2f} SD {direction} for {who(g, group)} (SMD {signed(row.smd)})",
            summary=(f"The mean prediction for the {row.count:,} test rows with {who(g, group)} is "
                     f"{row.mean_prediction:.4g}, against {ref.mean_prediction:.4g} for the {ref.count:,} rows of the "
                     f"reference group {who(g, g.reference)}: a standardized mean difference of {signed(row.smd)} "
                     f"(difference over the SD of the prediction, {res.prediction_sd:.4g}); {favorable} predictions "
                     f"are favorable, so the group is disadvantaged ({conf} interval of the SMD {ci}). " +
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
            remediation=DI_REMEDIATION, evidence=("by_group", "standardized_mean_difference"))

    # -- evidence --
    def evidence(self, m: DisparateImpactMeasurement) -> Evidence:
        metrics: dict[str, Any] = {"groupings": len(m.results)}
        if m.outcome is not None:
            table, figure = self._rate_table(m, metrics), self._air_figure(m)
        else:
            table, figure = self._mean_table(m, metrics), self._smd_figure(m)
        return Evidence(metrics=metrics, tables=(table,), figures=(figure,) if figure else (),
                        notes=self._notes(m))

    def _rate_record(self, res: DisparateImpactResult, r: GroupRate) -> dict[str, Any]:
        g = res.grouping
        return {"column": g.name, "group": r.group, "count": r.count,
                "favorable_rate": sig(r.favorable_rate), "air": sig(r.air),
                "air_ci_low": sig(r.air_low), "air_ci_high": sig(r.air_high),
                "p_value": sig(r.p_value), "p_adjusted": sig(r.p_adjusted), "smd": sig(r.smd),
                "observed_favorable_rate": sig(r.observed_favorable_rate),
                "note": group_note(g, r.group, r.count, self.min_group_size, g.count(g.reference))}

    def _rate_table(self, m: DisparateImpactMeasurement, metrics: dict[str, Any]) -> Table:
        """The favorable rates by group; adds the headline metrics to ``metrics``."""
        records, airs = [], []
        for res in m.rates:
            records += [self._rate_record(res, r) for r in res.rows]
            eligible = [r.air for r in res.rows if r.eligible and not r.is_reference and math.isfinite(r.air)]
            if eligible and not res.grouping.is_intersection:
                metrics[f"min_adverse_impact_ratio/{res.grouping.name}"] = min(eligible)
            airs += eligible
        metrics["min_adverse_impact_ratio"] = min(airs) if airs else float("nan")
        metrics["overall_favorable_rate"] = float(m.favorable.decision.mean())
        return Table.from_records(
            "by_group", "Outcomes by group", records, max_rows=MAX_TABLE_ROWS,
            columns=("column", "group", "count", "favorable_rate", "air", "air_ci_low", "air_ci_high", "p_value",
                     "p_adjusted", "smd", "observed_favorable_rate", "note"),
            caption=("Favorable rate: share of test rows whose decision is the favorable outcome "
                     f"({m.favorable.label}); air: that rate over the reference group's, with its "
                     f"{level(self.confidence)} Katz log interval "
                     "(air_ci_low, air_ci_high); p: two-sided Fisher exact test against the reference "
                     "group; smd: difference of mean P(favorable) in SDs over all rows; observed: share whose actual "
                     "outcome is favorable."))

    def _mean_record(self, res: MeanDifferenceResult, r: GroupMean) -> dict[str, Any]:
        g = res.grouping
        return {"column": g.name, "group": r.group, "count": r.count,
                "mean_prediction": sig(r.mean_prediction, 4), "difference": sig(r.difference, 4),
                "smd": sig(r.smd), "smd_ci_low": sig(r.smd_low), "smd_ci_high": sig(r.smd_high),
                "p_value": sig(r.p_value), "p_adjusted": sig(r.p_adjusted),
                "mean_observed": sig(r.mean_observed, 4),
                "note": group_note(g, r.group, r.count, self.min_group_size, g.count(g.reference))}

    def _mean_table(self, m: DisparateImpactMeasurement, metrics: dict[str, Any]) -> Table:
        """The mean predictions by group; adds the headline metric to ``metrics``."""
        records, smds = [], []
        for res in m.means:
            records += [self._mean_record(res, r) for r in res.rows]
            smds += [abs(r.smd) for r in res.rows if r.eligible and not r.is_reference and math.isfinite(r.smd)]
        metrics["max_abs_smd"] = max(smds) if smds else float("nan")
        return Table.from_records(
            "by_group", "Outcomes by group", records, max_rows=MAX_TABLE_ROWS,
            columns=("column", "group", "count", "mean_prediction", "difference", "smd", "smd_ci_low", "smd_ci_high",
                     "p_value", "p_adjusted", "mean_observed", "note"),
            caption=("smd: (group mean − reference mean) / SD of the prediction over all test rows, with the "
                     f"{level(self.confidence)} Welch interval; p: Welch t-test against the reference group; "
                     "mean_observed: mean actual target."))

    def _air_figure(self, m: DisparateImpactMeasurement) -> Figure | None:
        bars = sum(len(res.rows) for res in m.rates)
        if not bars:
            return None
        more = f"; {bars - FIGURE_BARS} more groups in the table" if bars > FIGURE_BARS else ""
        return Figure(
            "adverse_impact_ratio", "Adverse impact ratio by group", plot="fairness.air_figure",
            data={"results": m.rates, "min_ratio": self.min_ratio, "low_ratio": self.low_ratio,
                  "max_bars": FIGURE_BARS},
            caption=(f"Orange: below {self.min_ratio:g}; brown: below {self.low_ratio:g}; grey: fewer than "
                     f"{self.min_group_size} rows (no finding); outlined: reference groups (1 by definition). "
                     f"Whiskers: {level(self.confidence)} Katz log interval. "
                     f"* Fisher exact p < 0.05 (unadjusted){more}."))

    def _smd_figure(self, m: DisparateImpactMeasurement) -> Figure | None:
        if not any(not r.is_reference for res in m.means for r in res.rows):
            return None
        side = "negative" if m.higher_is_favorable else "positive"
        return Figure(
            "standardized_mean_difference", "Standardized mean difference by group", plot="fairness.smd_figure",
            data={"results": m.means, "high_smd": self.high_smd, "medium_smd": self.medium_smd,
                  "higher_is_favorable": m.higher_is_favorable, "max_bars": FIGURE_BARS},
            caption=(f"Dashed: ±{self.high_smd:g} SD; dotted: ±{self.medium_smd:g} SD. A {side} SMD disadvantages "
                     f"the group. Grey: fewer than {self.min_group_size} rows (no finding)."))

    def _notes(self, m: DisparateImpactMeasurement) -> tuple[str, ...]:
        notes = list(m.notes)
        for res in m.results:
            g = res.grouping
            notes.append(f"Reference for {g.name}: {g.reference} ({g.reference_source}).")
        if m.outcome is not None:
            notes.append(decision_text(m.outcome))
            notes.append("SMD: standardized mean difference of P(favorable) between a group and the reference, in "
                         "standard deviations of P(favorable) over all test rows.")
            notes.append("Severity rule: " + self.air_rule_text() + ".")
        else:
            notes.append("Severity rule: " + self.smd_rule_text() + ".")
        notes.append(f"Groups with fewer than {self.min_group_size} rows are listed but get no finding. Significance "
                     f"is judged at level {self.alpha:g} on Holm-adjusted p-values (p_adjusted) over the "
                     f"{m.n_tests} groups tested, so many groups do not produce chance findings.")
        if any(r.grouping.is_intersection for r in m.results):
            notes.append("An intersectional group gets a finding only when it is more severe than each of its two "
                         "groups alone.")
        return tuple(notes)
