"""fairness.error_parity: error rates and calibration by group, against a reference group."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ...analysis.group_metrics import (
    ErrorParityResult,
    GroupErrors,
    Grouping,
    calibration_in_the_large,
    error_parity,
    holm_adjust_errors,
)
from ...findings import Evidence, Figure, Finding, Rule, Severity, Table
from ...wording import level, p_value, pct, sig, signed
from ..base import FAIRNESS, budget, setting, threshold
from .common import (
    FIGURE_GROUPS,
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


@dataclass(frozen=True)
class ErrorParityMeasurement:
    """Error rates by group, their p-values Holm-adjusted over every grouping (rates and
    calibration in two families)."""

    outcome: FavorableOutcome
    results: tuple[ErrorParityResult, ...]
    notes: tuple[str, ...]
    overall_calibration_gap: float

    @property
    def n_rate_tests(self) -> int:
        return self.results[0].n_rate_tests if self.results else 0


class _Rate(NamedTuple):
    """One error rate of a group against the reference group's."""

    name: str  # "fnr" | "fpr"
    value: float
    reference: float
    gap: float
    low: float  # Newcombe interval of the gap
    high: float
    p: float
    p_adjusted: float  # NaN: not compared (too few rows of the actual class)


def _rates(row: GroupErrors, ref: GroupErrors) -> dict[str, _Rate]:
    return {"fnr": _Rate("fnr", row.fnr, ref.fnr, row.fnr_gap, row.fnr_gap_low, row.fnr_gap_high, row.fnr_p,
                         row.fnr_p_adjusted),
            "fpr": _Rate("fpr", row.fpr, ref.fpr, row.fpr_gap, row.fpr_gap_low, row.fpr_gap_high, row.fpr_p,
                         row.fpr_p_adjusted)}


def _nanmax(a: float, b: float) -> float:
    if not math.isfinite(b):
        return a
    return b if not math.isfinite(a) else max(a, b)


@dataclass
class ErrorParityCheck(GroupedCheck[ErrorParityMeasurement]):
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

    medium_gap: float = threshold(0.10, "error-rate gap (FNR or FPR, group − reference) of a significant medium")
    high_gap: float = threshold(0.20, "error-rate gap of a high (when significant) or of a low (when not)")
    calibration_gap: float = threshold(0.10, "|mean predicted − observed rate| of a group at which a significant "
                                             "miscalibration is medium")
    # 0.20: a gap of high_gap is established beyond the sampling uncertainty; 0: a significant gap of at least
    # high_gap suffices
    gap_high_lower: float = threshold(0.20, "high also needs the end of the gap's interval nearer zero at or "
                                            "beyond this")
    min_class_rows: int = threshold(10, "rows of an actual class a group and its reference each need for its error "
                                        "rate to be compared")
    calibration_bins: int = setting(5, "equal-count bins of the per-group expected calibration error")
    n_resamples: int = budget(200, "bootstrap resamples of the equalized-odds difference over the eligible groups")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not ctx.is_classification:
            return ("error-rate parity needs a classifier; this model is a regressor (fairness.disparate_impact "
                    "compares its predictions by group)")
        return super().skip_reason(ctx)

    def measure(self, ctx: AuditContext) -> ErrorParityMeasurement:
        plan = self.plan(ctx)
        outcome = ctx.favorable_outcome()
        if outcome.multiclass:
            # k classes: the favorable class against the rest (said in the notes and findings)
            y = outcome.observed.astype(int)
            label, score = outcome.decision.astype(int), outcome.p_favorable
            outcome = replace(outcome, positive=outcome.favorable, favorable_is_positive=True)
        else:
            preds = ctx.predictions("test")
            y, label, score = ctx.y_task("test"), preds.label, preds.score
        rng = ctx.rng(self.id)
        results = holm_adjust_errors([
            error_parity(g, y, label, score, min_group_size=self.min_group_size, min_class_rows=self.min_class_rows,
                         calibration_bins=self.calibration_bins, n_resamples=self.n_resamples,
                         confidence=self.confidence, rng=rng)
            for g in plan.groupings])
        return ErrorParityMeasurement(outcome=outcome, results=results, notes=plan.notes,
                                      overall_calibration_gap=calibration_in_the_large(y, score)[0])

    # -- judgement --
    def severity_gap(self, gap: float, p: float, ci: tuple[float, float]) -> Severity | None:
        """The gap rule: ``p`` Holm-adjusted, ``ci`` the gap's interval (its end nearer zero decides high)."""
        if not math.isfinite(gap):
            return None
        sig = math.isfinite(p) and p < self.alpha
        near = near_zero(*ci)
        if sig and abs(gap) >= self.high_gap and math.isfinite(near) and near >= self.gap_high_lower:
            return Severity.HIGH
        if sig and abs(gap) >= self.medium_gap:
            return Severity.MEDIUM
        if abs(gap) >= self.high_gap:
            return Severity.LOW
        return None

    def gap_rule_text(self) -> str:
        return (f"high when the gap is at least {self.high_gap:g}, the Holm-adjusted p < {self.alpha:g} and the end of "
                f"the gap's {level(self.confidence)} interval nearer zero is still at least {self.gap_high_lower:g}; "
                "medium when significant and the gap is at "
                f"least {self.medium_gap:g}; low when the gap is at least {self.high_gap:g} but not significant")

    def severity_calibration(self, gap: float, p: float) -> Severity | None:
        if math.isfinite(gap) and abs(gap) >= self.calibration_gap and math.isfinite(p) and p < self.alpha:
            return Severity.MEDIUM
        return None

    def _rate_severities(self, res: ErrorParityResult, row: GroupErrors) -> dict[str, Severity]:
        out = {}
        for rate in _rates(row, res.row(res.grouping.reference)).values():
            if math.isfinite(rate.p_adjusted):  # compared: enough rows of the actual class in group and reference
                s = self.severity_gap(rate.gap, rate.p_adjusted, (rate.low, rate.high))
                if s:
                    out[rate.name] = s
        return out

    def judge(self, m: ErrorParityMeasurement) -> list[Finding]:
        errors, calib = Gate(), Gate()
        out: list[Finding] = []
        for res in sorted(m.results, key=singles_first):
            g = res.grouping
            for row in res.rows:
                if not row.eligible:
                    continue
                if not row.is_reference:
                    sevs = self._rate_severities(res, row)
                    if sevs:
                        sev = max(sevs.values(), key=lambda s: s.rank)
                        if errors.admit(g, row.group, sev):
                            out.append(self._rate_finding(m.outcome, res, row, sevs, sev))
                cal = self.severity_calibration(row.calibration_gap, row.calibration_p_adjusted)
                if cal and calib.admit(g, row.group, cal):
                    out.append(self._calibration_finding(m, res, row, cal))
        return out

    def _rate_sentence(self, o: FavorableOutcome, g: Grouping, row: GroupErrors, rate: _Rate, denial: str,
                       n_tests: int) -> str:
        """What one error rate does to the group, against the reference group."""
        stats = (f"({rate.name.upper()}, gap {signed(rate.gap)}, {level(self.confidence)} interval "
                 f"{bracketed(rate.low, rate.high)}, {p_both(rate.p, rate.p_adjusted, n_tests)})")
        if rate.name == denial:
            return (f"among rows whose actual outcome is favorable ({o.label}), the model withholds the favorable "
                    f"decision from {pct(rate.value)} of {who(g, row.group)} against {pct(rate.reference)} of the "
                    f"reference group {stats}")
        return (f"among rows whose actual outcome is unfavorable (not {o.label}), the model grants the favorable "
                f"decision to {pct(rate.value)} of {who(g, row.group)} against {pct(rate.reference)} of the "
                f"reference group {stats}")

    @staticmethod
    def _rate_meaning(is_denial: bool, gap: float) -> tuple[str, str]:
        """The finding's label and what the gap of its main rate means for people."""
        if is_denial:
            return "Wrongful denials", (
                "People in this group who deserve the favorable outcome are denied it more often than in the "
                "reference group." if gap > 0 else
                "People in the reference group who deserve the favorable outcome are denied it more often than "
                "in this group.")
        return "Wrongful approvals", (
            "People in this group get the favorable outcome without deserving it more often: the model is "
            "less discriminating for them (and relatively stricter for the reference group)." if gap > 0 else
            "People in the reference group get the favorable outcome without deserving it more often than "
            "in this group: the model is relatively stricter for this group.")

    def _rate_verdict(self, sevs: Mapping[str, Severity], rates: Mapping[str, _Rate], main: _Rate,
                      sev: Severity) -> str:
        """Why the finding has its severity."""
        if all(not (math.isfinite(rates[k].p_adjusted) and rates[k].p_adjusted < self.alpha) for k in sevs):
            return " The gap is large but not statistically significant with these group sizes (rated low)."
        conf = level(self.confidence)
        if sev is Severity.HIGH:
            return (f" Rated high: significant, and even the end of the {conf} interval nearer zero is a gap of at "
                    f"least {self.gap_high_lower:g}.")
        return (f" Rated medium: significant and at least {self.medium_gap:g}" +
                (f", but the {conf} interval {bracketed(main.low, main.high)} does not exclude a gap below "
                 f"{self.gap_high_lower:g}, so high is not established." if abs(main.gap) >= self.high_gap else "."))

    def _rate_finding(self, o: FavorableOutcome, res: ErrorParityResult, row: GroupErrors,
                      sevs: Mapping[str, Severity], sev: Severity) -> Finding:
        g = res.grouping
        ref = res.row(g.reference)
        denial = "fnr" if o.favorable_is_positive else "fpr"  # withholds the favorable outcome from the deserving
        grant = "fpr" if denial == "fnr" else "fnr"
        rates = _rates(row, ref)
        parts = [self._rate_sentence(o, g, row, rates[k], denial, res.n_rate_tests) for k in (denial, grant)
                 if k in sevs]
        main = rates[max(sevs, key=lambda k: (sevs[k].rank, abs(rates[k].gap)))]
        label, meaning = self._rate_meaning(main.name == denial, main.gap)
        summary = ("On the test data, " + "; ".join(parts) + ". " + meaning +
                   f" Accuracy is {pct(row.accuracy)} against {pct(ref.accuracy)}." +
                   self._rate_verdict(sevs, rates, main, sev))
        if o.multiclass:
            summary += (f" The model has {o.n_classes} classes: these rates are for the favorable class "
                        f"({o.favorable}) against the rest (the decision is favorable when the most probable class "
                        "is the favorable one).")
        name = main.name.upper()
        rule = Rule(metric=f"{main.name}_gap", value=rule_number(main.gap), operator="|x| >=",
                    threshold=(self.medium_gap, self.high_gap),
                    interval=(rule_number(main.low), rule_number(main.high)), p_value=rule_number(main.p_adjusted),
                    text=(f"{name} gap {signed(main.gap)} ({level(self.confidence)} Newcombe interval "
                          f"{bracketed(main.low, main.high)}; Holm-adjusted {p_value(main.p_adjusted)}): "
                          + self.gap_rule_text()))
        return Finding(
            id=finding_id(self.id, g, row.group), check=self.id, severity=sev, rule=rule,
            title=(f"{label} ({name}) {pct(main.value)} for {who(g, row.group)} vs {pct(main.reference)} for the "
                   f"reference group (gap {signed(main.gap)})"),
            summary=summary, features=g.columns, groups=g.part_pairs(row.group),
            metrics={"fnr": row.fnr, "fpr": row.fpr, "tpr": row.tpr, "reference_fnr": ref.fnr, "reference_fpr": ref.fpr,
                     "fnr_gap": row.fnr_gap, "fpr_gap": row.fpr_gap,
                     "fnr_gap_ci_low": row.fnr_gap_low, "fnr_gap_ci_high": row.fnr_gap_high,
                     "fpr_gap_ci_low": row.fpr_gap_low, "fpr_gap_ci_high": row.fpr_gap_high, "fnr_p_value": row.fnr_p,
                     "fpr_p_value": row.fpr_p, "fnr_p_value_adjusted": row.fnr_p_adjusted,
                     "fpr_p_value_adjusted": row.fpr_p_adjusted, "accuracy": row.accuracy,
                     "reference_accuracy": ref.accuracy, "count": row.count, "reference_count": ref.count},
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
        p_adj = row.calibration_p_adjusted
        rule = Rule(metric="calibration_gap", value=rule_number(row.calibration_gap), operator="|x| >=",
                    threshold=self.calibration_gap,
                    interval=(rule_number(row.calibration_low), rule_number(row.calibration_high)),
                    p_value=rule_number(p_adj),
                    text=(f"calibration gap {signed(row.calibration_gap)} ({level(self.confidence)} interval "
                          f"{bracketed(row.calibration_low, row.calibration_high)}; Holm-adjusted {p_value(p_adj)}): "
                          f"medium when |gap| >= {self.calibration_gap:g} and the Holm-adjusted p < {self.alpha:g}"))
        return Finding(
            id=finding_id(self.id, g, row.group, "/calibration"), check=self.id, severity=sev, rule=rule,
            title=(f"Probabilities miscalibrated for {who(g, row.group)}: mean predicted {pct(row.mean_predicted)} vs "
                   f"observed {pct(row.observed_rate)}"),
            summary=(f"For the {row.count:,} test rows with {who(g, row.group)} the model {word} the probability of "
                     f"{o.target} = {o.positive}: mean predicted {pct(row.mean_predicted)} against an observed rate "
                     f"of {pct(row.observed_rate)} (gap {signed(row.calibration_gap)}, "
                     f"{p_both(row.calibration_p, p_adj, res.n_calibration_tests)}; "
                     f"over all test rows the gap is {signed(m.overall_calibration_gap)}). The same score means a "
                     f"different risk in this group, so one threshold gives this group {effect}." +
                     (f" The model has {o.n_classes} classes: this is P({o.label}) against the observed share of "
                      "that class." if o.multiclass else "")),
            features=g.columns, groups=g.part_pairs(row.group),
            metrics={"mean_predicted": row.mean_predicted, "observed_rate": row.observed_rate,
                     "calibration_gap": row.calibration_gap, "p_value": row.calibration_p,
                     "p_value_adjusted": p_adj, "ece": row.ece,
                     "count": row.count, "overall_calibration_gap": m.overall_calibration_gap},
            remediation=("Investigate why the model misjudges this group's risk (missing features, different base "
                         "rates, too few training rows).",
                         "Recalibrate, and check the calibration by group after any change."),
            evidence=("calibration_by_group",))

    # -- evidence --
    def evidence(self, m: ErrorParityMeasurement) -> Evidence:
        base, gaps, calib = [], [], []
        for res in m.results:
            g = res.grouping
            for r in res.rows:
                note = group_note(g, r.group, r.count, self.min_group_size, g.count(g.reference))
                base.append({"column": g.name, "group": r.group, "count": r.count,
                             "selection_rate": sig(r.selection_rate), "tpr": sig(r.tpr), "fpr": sig(r.fpr),
                             "fnr": sig(r.fnr), "accuracy": sig(r.accuracy), "note": note})
                if not r.is_reference:
                    gaps.append({"column": g.name, "group": r.group, "positives": r.n_pos, "negatives": r.n_neg,
                                 "fnr_gap": sig(r.fnr_gap), "fnr_ci_low": sig(r.fnr_gap_low),
                                 "fnr_ci_high": sig(r.fnr_gap_high), "fnr_p_value": sig(r.fnr_p),
                                 "fnr_p_adjusted": sig(r.fnr_p_adjusted), "fpr_gap": sig(r.fpr_gap),
                                 "fpr_ci_low": sig(r.fpr_gap_low), "fpr_ci_high": sig(r.fpr_gap_high),
                                 "fpr_p_value": sig(r.fpr_p), "fpr_p_adjusted": sig(r.fpr_p_adjusted),
                                 "note": note})
                calib.append({"column": g.name, "group": r.group, "count": r.count,
                              "mean_predicted": sig(r.mean_predicted), "observed_rate": sig(r.observed_rate),
                              "calibration_gap": sig(r.calibration_gap), "p_value": sig(r.calibration_p),
                              "p_adjusted": sig(r.calibration_p_adjusted), "ece": sig(r.ece), "note": note})
        eods = self._equalized_odds(m)
        tables = (self._base_table(m.outcome, base), self._gap_table(m, gaps), self._calibration_table(m, calib),
                  Table.from_records("equalized_odds", "Equalized-odds difference", eods,
                                     columns=("column", "groups", "equalized_odds_difference", "eligible_groups",
                                              "equalized_odds_difference_eligible", "ci_low", "ci_high",
                                              "tpr_difference", "fpr_difference"),
                                     caption=self._eod_caption()))
        return Evidence(metrics=self._metrics(m), tables=tables, figures=self._figures(m), notes=self._notes(m))

    @staticmethod
    def _metrics(m: ErrorParityMeasurement) -> dict[str, Any]:
        """The worst equalized-odds differences over the single columns, then each grouping's."""
        metrics: dict[str, Any] = {}
        worst = worst_eligible = float("nan")
        for res in m.results:
            g = res.grouping
            metrics[f"equalized_odds_difference/{g.name}"] = res.equalized_odds_difference
            metrics[f"equalized_odds_difference_eligible/{g.name}"] = res.equalized_odds_difference_eligible
            if not g.is_intersection:
                worst = _nanmax(worst, res.equalized_odds_difference)
                worst_eligible = _nanmax(worst_eligible, res.equalized_odds_difference_eligible)
        return {"equalized_odds_difference": worst, "equalized_odds_difference_eligible": worst_eligible, **metrics}

    @staticmethod
    def _equalized_odds(m: ErrorParityMeasurement) -> list[dict[str, Any]]:
        return [{"column": res.grouping.name, "groups": len(res.eod_all_groups),
                 "equalized_odds_difference": sig(res.equalized_odds_difference),
                 "eligible_groups": len(res.eod_groups),
                 "equalized_odds_difference_eligible": sig(res.equalized_odds_difference_eligible),
                 "ci_low": sig(res.eod_low), "ci_high": sig(res.eod_high),
                 "tpr_difference": sig(res.tpr_difference), "fpr_difference": sig(res.fpr_difference)}
                for res in m.results]

    @staticmethod
    def _base_table(o: FavorableOutcome, records: list[dict[str, Any]]) -> Table:
        denial = "FNR" if o.favorable_is_positive else "FPR"
        return Table.from_records(
            "by_group", "Error rates by group", records,
            columns=("column", "group", "count", "selection_rate", "tpr", "fpr", "fnr", "accuracy", "note"),
            max_rows=MAX_TABLE_ROWS,
            caption=((f"Rates with respect to the favorable class ({o.label}) against the other "
                      f"{o.n_classes - 1} classes, the decision being the most probable class" if o.multiclass else
                      f"Rates with respect to the positive class ({o.target} = {o.positive}) at "
                      f"threshold {o.threshold:g}") +
                     ", computed with fairlearn's MetricFrame; selection "
                     f"rate = share predicted positive. The favorable outcome is {o.label}, so "
                     f"{denial} is the rate at which deserving people are denied it."))

    def _gap_table(self, m: ErrorParityMeasurement, records: list[dict[str, Any]]) -> Table:
        return Table.from_records(
            "error_gaps", "Error-rate gaps against the reference group", records,
            columns=("column", "group", "positives", "negatives", "fnr_gap", "fnr_ci_low", "fnr_ci_high",
                     "fnr_p_value", "fnr_p_adjusted", "fpr_gap", "fpr_ci_low", "fpr_ci_high", "fpr_p_value",
                     "fpr_p_adjusted", "note"),
            max_rows=MAX_TABLE_ROWS,
            caption=(f"Gap = group rate − reference rate, with its {level(self.confidence)} Newcombe "
                     "(hybrid score) interval; p: two-sided Fisher exact test on the rows "
                     "of the actual class (positives for FNR, negatives for FPR); p_adjusted: Holm's "
                     f"adjustment over the {m.n_rate_tests} rate comparisons made (blank: too few "
                     "rows of the class to compare)."))

    def _calibration_table(self, m: ErrorParityMeasurement, records: list[dict[str, Any]]) -> Table:
        o = m.outcome
        return Table.from_records(
            "calibration_by_group", "Calibration by group", records,
            columns=("column", "group", "count", "mean_predicted", "observed_rate", "calibration_gap", "p_value",
                     "p_adjusted", "ece", "note"),
            max_rows=MAX_TABLE_ROWS,
            caption=(f"Mean P({o.target} = {o.positive}) against the observed rate; gap = predicted − "
                     "observed, p from a normal approximation of the observed count under "
                     f"calibration; ECE over {self.calibration_bins} equal-count bins per group."))

    def _eod_caption(self) -> str:
        return ("equalized_odds_difference: fairlearn's equalized_odds_difference, the larger "
                "of the between-group TPR and FPR differences over every group of the column "
                "(groups: how many, tiny ones included; no interval). "
                "equalized_odds_difference_eligible: the same over the eligible groups only "
                f"(at least {self.min_group_size} rows and {self.min_class_rows} rows of each "
                f"class), with its {level(self.confidence)} percentile bootstrap interval "
                f"({self.n_resamples} resamples within groups) and its TPR and FPR differences.")

    def _figures(self, m: ErrorParityMeasurement) -> tuple[Figure, ...]:
        groups = sum(len(res.rows) for res in m.results)
        if not groups:
            return ()
        more = f" {groups - FIGURE_GROUPS} more groups in the table." if groups > FIGURE_GROUPS else ""
        denial = "fnr" if m.outcome.favorable_is_positive else "fpr"
        return (Figure("error_rates", "Error rates by group", plot="fairness.error_rates_figure",
                       data={"results": m.results, "min_group_size": self.min_group_size, "denial": denial,
                             "max_groups": FIGURE_GROUPS},
                       caption=(f"True positive, false positive and false negative rates per group; faded: fewer "
                                f"than {self.min_group_size} rows.{more}")),)

    def _notes(self, m: ErrorParityMeasurement) -> tuple[str, ...]:
        o = m.outcome
        notes = list(m.notes)
        notes.append(decision_text(o))
        if o.multiclass:
            notes.append(f"The model has {o.n_classes} classes: error rates and calibration are for the favorable "
                         f"class ({o.favorable}) against the rest of the classes (actual class favorable or not, "
                         "predicted class favorable or not).")
        notes.append("Severity rule for the error-rate gaps: " + self.gap_rule_text() + ".")
        for res in m.results:
            notes.append(f"Reference for {res.grouping.name}: {res.grouping.reference} "
                         f"({res.grouping.reference_source}).")
        notes.append(f"Groups with fewer than {self.min_group_size} rows are listed but get no finding; a rate is "
                     f"compared only when group and reference each have {self.min_class_rows} rows of its actual "
                     f"class. Significance is judged at level {self.alpha:g} on Holm-adjusted p-values (over all rate "
                     "comparisons, and separately over the calibration tests).")
        return tuple(notes)
