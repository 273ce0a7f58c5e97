"""The decision-threshold remedy for adverse impact: one group-blind threshold that brings every
group of a protected column to the four-fifths line at the least cost in accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..analysis.group_metrics import disparate_impact
from ..analysis.thresholds import (
    ThresholdChoice,
    ThresholdSweep,
    choose_threshold,
    group_thresholds,
    halves_large_enough,
    holdout_halves,
    impact_at,
    subset_grouping,
    threshold_grid,
    threshold_sweep,
)
from ..findings import Evidence, Figure, Table
from ..wording import fixed, level, pct, plural, sig, signed
from ._fairness import DI, ImpactTarget, impact_targets, not_measured
from .base import Remediation, Remedy, RemedyInputs, RemedyOutput, budget, setting, threshold

if TYPE_CHECKING:
    from ..context import AuditContext, FavorableOutcome

TABLE_GROUPS = 4  # groups with a column of their own in the threshold table

GROUP_RULE_CAVEAT = ("Group-specific thresholds use the protected attribute at decision time (disparate "
                     "treatment), which is unlawful in several jurisdictions, e.g. for consumer credit in the US "
                     "(ECOA / Regulation B); shown for comparison only.")


@dataclass(frozen=True)
class _Rows:
    """Which test rows choose the threshold and which measure it."""

    choose: np.ndarray | None  # positions; None: all test rows
    measure: np.ndarray | None
    n_total: int

    @property
    def held_out(self) -> bool:
        return self.choose is not None

    @property
    def n_measure(self) -> int:
        return self.n_total if self.measure is None else len(self.measure)

    def text(self) -> str:
        if self.held_out:
            n_choose = 0 if self.choose is None else len(self.choose)
            return (f"chosen on the {n_choose:,} test rows at even positions (1st, 3rd, ...), "
                    f"measured on the other {self.n_measure:,} (odd positions: 2nd, 4th, ...)")
        return f"chosen and measured on all {self.n_total:,} test rows"

    def measured_on(self) -> str:
        return (f"the {self.n_measure:,} held-out test rows (odd positions)" if self.held_out
                else f"all {self.n_total:,} test rows")


@dataclass(frozen=True)
class _Point:
    """The judged groups' ratios, accuracy and favourable rate at one threshold, on the measuring rows."""

    threshold: float
    worst_air: float
    worst_group: str
    accuracy: float
    favorable_rate: float
    air_low: float
    air_high: float

    def metrics(self) -> dict[str, Any]:
        return {"adverse_impact_ratio": self.worst_air, "accuracy": self.accuracy,
                "favorable_rate": self.favorable_rate}


@dataclass
class ThresholdRemedy(Remedy):
    """A single decision threshold, the same for everyone, that lifts every group of a protected
    column with a medium-or-high adverse-impact finding to ``min_ratio``.

    Sweeps ``grid_points`` thresholds on P(positive) (the model's rule: positive when P >= threshold),
    computes each judged group's adverse impact ratio as fairness.disparate_impact does (same groups,
    reference and minimum size), the accuracy and the favourable rate, and proposes the threshold with
    the highest accuracy whose worst ratio reaches ``min_ratio``, or the best achievable. By default
    it chooses and measures on all test rows (the before-values are the finding's) and, when each
    judged group has enough rows in both halves, adds a held-out check as a caveat: the threshold
    chosen on the even test rows alone, measured on the odd ones. With ``holdout`` that held-out
    version becomes the remedy's numbers. Opt-in: group-specific thresholds (fairlearn
    ThresholdOptimizer).
    """

    id: ClassVar[str] = "threshold"
    title: ClassVar[str] = "Decision threshold"
    order: ClassVar[int] = 10
    kinds: ClassVar[tuple[str, ...]] = ("threshold", "other")
    reads: ClassVar[tuple[str, ...] | None] = (DI,)

    min_ratio: float = threshold(0.8, "adverse impact ratio every judged group of the column must reach (the "
                                      "four-fifths rule)")
    max_accuracy_loss: float = threshold(0.05, "accuracy (share of rows) a proposed threshold may lose against the "
                                               "current one; beyond it the remedy says what reaching the line costs")
    grid_points: int = budget(101, "thresholds swept, evenly spaced on [0, 1] (101: steps of 0.01), plus the "
                                   "current one")
    holdout: bool = setting(False, "report the threshold chosen on the even test rows, measured on the odd ones "
                                   "(when each judged group has min_group_size rows in both halves)")
    table_rows: int = budget(9, "thresholds in the table, around the current and the proposed one")
    group_thresholds: bool = setting(False, "also measure group-specific thresholds (fairlearn ThresholdOptimizer, "
                                            "demographic parity); uses the protected attribute at decision time")

    def skip_reason(self, inputs: RemedyInputs) -> str | None:
        ctx = inputs.ctx
        if not ctx.is_classification:
            return "a decision threshold belongs to a classifier; this model is a regressor"
        if ctx.is_multiclass:
            return (f"the decision of this {ctx.n_classes}-class model is its most probable class (argmax), "
                    "not a threshold on one probability")
        if inputs.measurement(DI) is None:
            return f"nothing to measure: {not_measured(inputs, DI)}"
        if not impact_targets(inputs):
            return "nothing to fix: no medium or high adverse-impact finding"
        return None

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        ctx = inputs.ctx
        m = inputs.measurement(DI)
        assert m is not None  # skip_reason says so otherwise
        o: FavorableOutcome = m.favorable
        score = ctx.predictions("test").score
        y = ctx.y_task("test").astype(bool)
        targets = impact_targets(inputs)
        grid = threshold_grid(self.grid_points, ctx.threshold)
        remediations: list[Remediation] = []
        notes = [f"Swept {len(grid)} thresholds on P({o.target} = {o.positive}) from 0 to 1 (the current "
                 f"{ctx.threshold:g} included); the model's rule: {o.target} = {o.positive} predicted when "
                 "P >= threshold."]
        unscored = ctx.unscored.get("test")
        if unscored is not None and unscored.count:
            notes.append(f"Rows and positions are those of the {len(score):,} test rows the model scored "
                         f"({unscored.count:,} without a finite score are left out, as in every check).")
        for t in targets:
            rows = self._rows(t, len(score))
            rem, note = self._one(ctx, o, t, score, y, grid, rows, others=[x for x in targets if x is not t])
            notes.append(note)
            if rem is not None:
                remediations.append(rem)
            if self.group_thresholds:
                grem, gnote = self._group_rule(ctx, o, t, score, y, rows)
                notes.append(gnote)
                if grem is not None:
                    remediations.append(grem)
        return RemedyOutput(remediations=tuple(remediations), notes=tuple(notes))

    # -- measuring --
    @staticmethod
    def _halves(t: ImpactTarget, n: int) -> _Rows | None:
        """The even rows to choose on and the odd ones to measure on, when both are large enough."""
        halves = holdout_halves(n)
        if halves_large_enough(t.grouping, t.judged, halves, t.result.min_group_size):
            return _Rows(choose=halves[0], measure=halves[1], n_total=n)
        return None

    def _rows(self, t: ImpactTarget, n: int) -> _Rows:
        halves = self._halves(t, n) if self.holdout else None
        return halves or _Rows(choose=None, measure=None, n_total=n)

    def _held_out_check(self, t: ImpactTarget, o: FavorableOutcome, score: np.ndarray, y: np.ndarray,
                        grid: np.ndarray, current: float) -> str:
        """The threshold chosen on the even test rows alone, measured on the odd ones, in one sentence."""
        rows = self._halves(t, len(score))
        if rows is None:
            small = min(t.result.row(g).count for g in t.judged)
            return (f"No held-out check: a group of {small:,} rows is too small to split in two halves of "
                    f"{t.result.min_group_size} rows each.")
        fav = o.favorable_is_positive
        choose = threshold_sweep(t.grouping, score, y, groups=t.judged, thresholds=grid, favorable_is_positive=fav,
                                 rows=rows.choose)
        measure = threshold_sweep(t.grouping, score, y, groups=t.judged, thresholds=grid, favorable_is_positive=fav,
                                  rows=rows.measure)
        c = choose_threshold(choose, current=current, min_ratio=self.min_ratio,
                             max_accuracy_loss=self.max_accuracy_loss)
        i, j = c.index, c.current_index
        return (f"Held-out check: chosen on the {choose.n_rows:,} even test rows alone, "
                f"the threshold would be {c.threshold:g}; on the other {measure.n_rows:,} (odd) rows it gives a "
                f"worst ratio of {fixed(measure.worst_air[i], 3)} (at the current threshold "
                f"{fixed(measure.worst_air[j], 3)}) and an accuracy of {pct(measure.accuracy[i])} "
                f"({pct(measure.accuracy[j])}).")

    def _point(self, t: ImpactTarget, score: np.ndarray, sweep: ThresholdSweep, thr: float,
               o: FavorableOutcome, rows: _Rows) -> _Point:
        """The measuring rows at one threshold, with the worst group's Katz interval."""
        i = sweep.index(thr)
        res = impact_at(t.grouping, score, thr, favorable_is_positive=o.favorable_is_positive, rows=rows.measure,
                        confidence=t.result.confidence)
        airs = {r.group: r for r in res.rows}
        worst = min(t.judged, key=lambda grp: (np.nan_to_num(airs[grp].air, nan=-1.0), grp))
        w = airs[worst]
        return _Point(threshold=float(thr), worst_air=float(w.air), worst_group=worst,
                      accuracy=float(sweep.accuracy[i]), favorable_rate=float(sweep.favorable_rate[i]),
                      air_low=float(w.air_low), air_high=float(w.air_high))

    def _one(self, ctx: AuditContext, o: FavorableOutcome, t: ImpactTarget, score: np.ndarray, y: np.ndarray,
             grid: np.ndarray, rows: _Rows, others: list[ImpactTarget]) -> tuple[Remediation | None, str]:
        """The threshold remediation of one grouping, or None and why not."""
        fav_pos = o.favorable_is_positive
        choose = threshold_sweep(t.grouping, score, y, groups=t.judged, thresholds=grid,
                                 favorable_is_positive=fav_pos, rows=rows.choose)
        measure = choose if not rows.held_out else threshold_sweep(
            t.grouping, score, y, groups=t.judged, thresholds=grid, favorable_is_positive=fav_pos, rows=rows.measure)
        choice = choose_threshold(choose, current=ctx.threshold, min_ratio=self.min_ratio,
                                  max_accuracy_loss=self.max_accuracy_loss)
        before = self._point(t, score, measure, ctx.threshold, o, rows)
        after = self._point(t, score, measure, choice.threshold, o, rows)
        where = f"'{t.name}': thresholds {rows.text()}."
        if choice.index == choice.current_index:
            return None, (f"{where} The current threshold is already the best on the rows it was chosen on; no "
                          "other threshold is proposed.")
        if not choice.meets and not after.worst_air > before.worst_air:
            return None, (f"{where} No threshold within {100 * self.max_accuracy_loss:g} points of accuracy raises "
                          f"the worst adverse impact ratio above its current {fixed(before.worst_air)}; no remedy "
                          "proposed."
                          + self._beyond(t, choose, choice))
        rem = Remediation(
            id=f"threshold/{t.name}", kind="threshold", addresses=tuple(f.id for f in t.findings),
            title=self._title(t, choice, after),
            summary=self._summary(o, t, choice, before, after, rows) + self._beyond(t, measure, choice),
            before=before.metrics(), after=after.metrics(), verified=True,
            parameters={"threshold": choice.threshold, "current_threshold": float(ctx.threshold),
                        "protected": t.name, "worst_group": after.worst_group,
                        "measured_on": rows.measured_on(), "rows": rows.n_measure,
                        "rule": f"{o.target} = {o.positive} when P({o.target} = {o.positive}) >= threshold"},
            caveats=self._caveats(ctx, o, t, choice, before, after, rows, others, score),
            evidence=Evidence(tables=(self._table(t, measure, choose, choice, rows),),
                              figures=(self._figure(o, t, measure, choose, choice, rows),)))
        return rem, where

    # -- wording --
    def _title(self, t: ImpactTarget, choice: ThresholdChoice, after: _Point) -> str:
        if choice.meets and after.worst_air >= self.min_ratio:
            return (f"Threshold {choice.threshold:g}: every group of '{t.name}' at or above {self.min_ratio:.2f} "
                    f"(worst {fixed(after.worst_air)})")
        if choice.meets:
            return (f"Threshold {choice.threshold:g}: every group of '{t.name}' at {self.min_ratio:.2f} on the rows "
                    f"it was chosen on (held out: worst {fixed(after.worst_air, 3)})")
        return (f"Threshold {choice.threshold:g}: the best single threshold for '{t.name}' "
                f"(worst {fixed(after.worst_air)})")

    def _summary(self, o: FavorableOutcome, t: ImpactTarget, choice: ThresholdChoice, before: _Point,
                 after: _Point, rows: _Rows) -> str:
        side = "at or above" if o.favorable_is_positive else "below"
        head = (f"One threshold for everyone: decide {o.label} when P({o.target} = {o.positive}) is {side} "
                f"{choice.threshold:g} instead of {before.threshold:g}. ")
        moved = (f"On {rows.measured_on()} the worst adverse impact ratio of '{t.name}' goes from "
                 f"{fixed(before.worst_air)} ({before.worst_group}) to {fixed(after.worst_air)} "
                 f"({after.worst_group}; {level(t.result.confidence)} interval "
                 f"{fixed(after.air_low)}–{fixed(after.air_high)}), accuracy from {pct(before.accuracy)} to "
                 f"{pct(after.accuracy)} ({signed(100 * (after.accuracy - before.accuracy), 1)} points) and the "
                 f"favourable rate from {pct(before.favorable_rate)} to {pct(after.favorable_rate)}. ")
        if choice.meets:
            verdict = (f"It is the threshold with the least accuracy loss that brings every group of '{t.name}' "
                       f"with enough rows to at least {self.min_ratio:.2f} on the rows it was chosen on"
                       + ("." if after.worst_air >= self.min_ratio else
                          f"; on the held-out rows the worst ratio is {fixed(after.worst_air, 3)}, still below "
                          f"{self.min_ratio:.2f}."))
        else:
            verdict = (f"No single threshold that loses at most {100 * self.max_accuracy_loss:g} points of "
                       f"accuracy (max_accuracy_loss) brings every group of '{t.name}' to {self.min_ratio:.2f}: this "
                       "is the best achievable worst ratio within that loss; the threshold narrows the disparity, it "
                       "does not fix it.")
        return head + moved + verdict

    def _beyond(self, t: ImpactTarget, sweep: ThresholdSweep, choice: ThresholdChoice) -> str:
        """What reaching the line would cost, when it lies beyond the accuracy budget."""
        if choice.meets:
            return ""
        cur = choice.current_index
        if choice.beyond_index is None:
            return (f" No threshold that still gives some but not all rows the favourable outcome brings every "
                    f"group of '{t.name}' to {self.min_ratio:.2f}.")
        i = choice.beyond_index
        return (f" Reaching {self.min_ratio:.2f} would take the threshold {sweep.thresholds[i]:g}, at an accuracy of "
                f"{pct(sweep.accuracy[i])} ({signed(100 * (sweep.accuracy[i] - sweep.accuracy[cur]), 1)} points) and a "
                f"favourable rate of {pct(sweep.favorable_rate[i])}.")

    def _caveats(self, ctx: AuditContext, o: FavorableOutcome, t: ImpactTarget, choice: ThresholdChoice,
                 before: _Point, after: _Point, rows: _Rows, others: list[ImpactTarget],
                 score: np.ndarray) -> tuple[str, ...]:
        out = []
        if rows.held_out:
            out.append("Chosen on the even test rows and measured on the odd ones, so the after-values are not "
                       "the rows the threshold was fitted to; recompute them from the model's scores on the odd "
                       "rows at the stated threshold.")
        else:
            out.append(f"Chosen and measured on the same {rows.n_total:,} test rows, so the after-values are "
                       "somewhat optimistic: confirm on fresh data before adopting it.")
            out.append(self._held_out_check(t, o, score, np.asarray(ctx.y_task("test")).astype(bool),
                                            threshold_grid(self.grid_points, ctx.threshold), ctx.threshold))
        out.append(f"The threshold moves the decision for everyone: the favourable rate goes from "
                   f"{pct(before.favorable_rate)} to {pct(after.favorable_rate)}, and the error rates by group "
                   "(fairness.error_parity) and the cost of errors change with it; re-audit at the new threshold.")
        out.append("Accuracy counts every error alike; where a wrongful approval and a wrongful denial cost "
                   "differently, weigh the change by those costs.")
        for other in others:
            res = impact_at(other.grouping, score, choice.threshold, favorable_is_positive=o.favorable_is_positive,
                            rows=rows.measure)
            worst = min((r.air for r in res.rows if r.group in other.judged), default=float("nan"))
            out.append(f"At this threshold the worst adverse impact ratio of '{other.name}' is {fixed(worst)} "
                       f"(measured on the same rows).")
        return tuple(out)

    # -- evidence --
    def _table_indices(self, n: int, a: int, b: int) -> list[int]:
        lo, hi = min(a, b), max(a, b)
        room = max(1, self.table_rows - 4)
        inner = {int(round(x)) for x in np.linspace(lo, hi, num=min(hi - lo + 1, room))}
        outer = {lo - 2, lo - 1, hi + 1, hi + 2}
        return sorted(i for i in inner | outer | {a, b} if 0 <= i < n)[: max(2, self.table_rows + 2)]

    def _table(self, t: ImpactTarget, measure: ThresholdSweep, choose: ThresholdSweep, choice: ThresholdChoice,
               rows: _Rows) -> Table:
        cur = choice.current_index
        # the groups worst off at the current threshold get a column each (the figure draws more)
        order = sorted(range(len(t.judged)), key=lambda j: (np.nan_to_num(measure.air[cur, j], nan=-1.0), j))
        shown = order[:TABLE_GROUPS]
        records = []
        for i in self._table_indices(len(measure.thresholds), cur, choice.index):
            mark = ("current" if i == cur else "") + ("proposed" if i == choice.index else "")
            rec: dict[str, Any] = {"threshold": sig(measure.thresholds[i], 4), "mark": mark}
            rec |= {f"air {t.judged[j]}": sig(measure.air[i, j]) for j in shown}
            rec |= {"worst_air": sig(measure.worst_air[i]), "accuracy": sig(measure.accuracy[i]),
                    "favorable_rate": sig(measure.favorable_rate[i])}
            if rows.held_out:
                rec |= {"worst_air_choice_rows": sig(choose.worst_air[i]),
                        "accuracy_choice_rows": sig(choose.accuracy[i])}
            records.append(rec)
        cols = ["threshold", "mark", *[f"air {t.judged[j]}" for j in shown], "worst_air", "accuracy",
                "favorable_rate"]
        if rows.held_out:
            cols += ["worst_air_choice_rows", "accuracy_choice_rows"]
        more = (f"; the {len(shown)} groups worst off at the current threshold of {len(t.judged)} shown"
                if len(shown) < len(t.judged) else "")
        return Table.from_records(
            f"thresholds_{t.name}", f"Thresholds around the current and the proposed one ('{t.name}')", records,
            columns=cols,
            caption=(f"air: each group's adverse impact ratio against {t.grouping.reference} (as "
                     f"fairness.disparate_impact computes it){more}; worst_air: the lowest of all "
                     f"{len(t.judged)} judged groups; accuracy and favorable_rate over all rows; measured on "
                     f"{rows.measured_on()}" + ("; *_choice_rows: on the rows the threshold was chosen on."
                                                if rows.held_out else ".")))

    def _figure(self, o: FavorableOutcome, t: ImpactTarget, measure: ThresholdSweep, choose: ThresholdSweep,
                choice: ThresholdChoice, rows: _Rows) -> Figure:
        return Figure(
            f"threshold_sweep_{t.name}", f"Adverse impact ratio and accuracy against the threshold ('{t.name}')",
            plot="remedy_fairness.threshold_figure",
            data={"sweep": measure, "choice_sweep": choose if rows.held_out else None,
                  "current": float(measure.thresholds[choice.current_index]), "proposed": choice.threshold,
                  "min_ratio": self.min_ratio, "score_label": f"P({o.target} = {o.positive})"},
            caption=(f"Top: adverse impact ratio of each group of '{t.name}' with enough rows (reference "
                     f"{t.grouping.reference}); dashed line at {self.min_ratio:g}. Bottom: accuracy and favourable "
                     f"rate. Grey line: the current threshold; orange: the proposed one. Measured on "
                     f"{rows.measured_on()}" + ("; thin lines: the rows it was chosen on." if rows.held_out else ".")))

    # -- group-specific thresholds (opt-in) --
    def _group_rule(self, ctx: AuditContext, o: FavorableOutcome, t: ImpactTarget, score: np.ndarray,
                    y: np.ndarray, rows: _Rows) -> tuple[Remediation | None, str]:
        n = len(score)
        fit_rows = rows.choose if rows.choose is not None else np.arange(n)
        eval_rows = rows.measure if rows.measure is not None else np.arange(n)
        gt = group_thresholds(score, y, t.grouping.labels, fit_rows=fit_rows, eval_rows=eval_rows,
                              seed=int(ctx.rng(self.id + ":group").integers(2 ** 31 - 1)))
        g = subset_grouping(t.grouping, eval_rows)
        fav = gt.positive if o.favorable_is_positive else ~gt.positive
        s = score[eval_rows]
        res = disparate_impact(g, fav, s if o.favorable_is_positive else 1.0 - s, min_group_size=1,
                               confidence=t.result.confidence)
        worst = min((r.air for r in res.rows if r.group in t.judged), default=float("nan"))
        sweep = threshold_sweep(t.grouping, score, y, groups=t.judged, thresholds=[ctx.threshold],
                                favorable_is_positive=o.favorable_is_positive, rows=eval_rows)
        before = {"adverse_impact_ratio": float(sweep.worst_air[0]), "accuracy": float(sweep.accuracy[0]),
                  "favorable_rate": float(sweep.favorable_rate[0])}
        after = {"adverse_impact_ratio": float(worst), "accuracy": float(np.mean(gt.positive == y[eval_rows])),
                 "favorable_rate": float(np.mean(fav))}
        params: dict[str, Any] = {"protected": t.name, "constraint": gt.constraint, "fitted_on_rows": gt.n_fit,
                                  "measured_on": rows.measured_on()}
        params |= {f"rule {grp}": rule for grp, rule in gt.rules.items()}
        rem = Remediation(
            id=f"group_thresholds/{t.name}", kind="other", addresses=tuple(f.id for f in t.findings),
            title=f"Group-specific thresholds for '{t.name}' (for comparison; not lawful everywhere)",
            summary=(f"fairlearn's ThresholdOptimizer (demographic parity, accuracy objective) gives each group of "
                     f"'{t.name}' its own threshold on P({o.target} = {o.positive}). On {rows.measured_on()} the worst "
                     f"adverse impact ratio goes from {fixed(before['adverse_impact_ratio'])} to {fixed(worst)} and "
                     f"accuracy from {pct(before['accuracy'])} to {pct(after['accuracy'])}."),
            before=before, after=after, verified=True, parameters=params,
            caveats=(GROUP_RULE_CAVEAT,
                     "The thresholds are randomised where fairlearn interpolates between two: applicants with the "
                     "same score and group can get different decisions (seeded here).",
                     "Demographic parity equalises the favourable rates, more than the four-fifths rule asks, so "
                     "it may cost more accuracy than needed."))
        return rem, (f"'{t.name}': group-specific thresholds fitted on {plural(gt.n_fit, 'row')}, measured on "
                     f"{rows.measured_on()}.")
