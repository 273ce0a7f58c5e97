"""The ``data`` remedy: for each weak segment, its share of the training rows against the test
rows, and a learning curve on the segment (the model refitted on all other training rows plus
growing shares of the segment's), so the report says "collect more data of this kind" only when
the curve supports it.

The curve's metric is the one the weak-segment check reports: mean log loss (classification) or
mean absolute error (regression) on the segment's test rows. The curve supports more data when
the least-squares slope of that loss on the share of segment rows is below zero over its whole
bootstrap interval and the last step still lowers it over its whole interval
(``auditor.analysis.segment_data.curve_trend``: test rows and draws of training rows resampled).
``before`` and ``after`` are the refits with the second-to-last and the last share (75 % and
100 % by default): both measured, nothing extrapolated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..analysis.segment_data import CurveTrend, curve_trend, nested_subsets, row_losses, segment_mask, subset_size
from ..analysis.segments import WeakSegment
from ..checks.residual.segments import SegmentMeasurement, WeakSegmentsCheck
from ..findings import Evidence, Figure, Finding, Table, safe_id
from ..wording import amount, level, pct, plural, sig
from .base import Remediation, Remedy, RemedyInputs, RemedyOutput, budget, setting
from .refit import clone_model, fit, model_object, predict, refit_unavailable

if TYPE_CHECKING:
    import pandas as pd

    from ..context import AuditContext

SEG_ID = WeakSegmentsCheck.id
METHOD = ("bootstrap interval of the least-squares slope of the segment's loss on the share (resampling its test "
          "rows, paired across the curve, and each share's draws of training rows)")


def weak_segments(inputs: RemedyInputs) -> list[Finding]:
    """The check's medium-or-high weak segments, most severe first."""
    return sorted(inputs.findings_of(SEG_ID, "medium"), key=lambda f: (-f.severity.rank, f.id))


def segment_finding_id(s: WeakSegment) -> str:
    """The id the weak-segment check gives a segment's finding."""
    return safe_id(f"{SEG_ID}/{s.key or s.definition.replace(' ', '')}")


@dataclass(frozen=True)
class _Curve:
    trend: CurveTrend
    segment_rows: tuple[int, ...]  # segment training rows in each refit
    other_rows: int  # training rows outside the segment in every refit
    segment_total: int  # the segment's training rows
    elsewhere: tuple[float, ...]  # mean loss on (a sample of) the other test rows, per refit
    elsewhere_rows: int
    audited: float  # the audited model's mean loss on the segment's test rows
    n_fits: int = 0  # refits for this curve
    draws: int = 1  # seeded draws of the segment's rows at each share below 100%


@dataclass
class DataRemedy(Remedy):
    """Learning curves on the weak segments of ``residual.segments`` (medium or high)."""

    id: ClassVar[str] = "data"
    title: ClassVar[str] = "More data for weak segments"
    order: ClassVar[int] = 45
    kinds: ClassVar[tuple[str, ...]] = ("data",)
    reads: ClassVar[tuple[str, ...] | None] = (SEG_ID,)

    max_segments: int = budget(2, "weak segments given a learning curve at most (most severe first)")
    max_rows: int = budget(3_000, "training rows outside the segment in each refit (a seeded sample above this)")
    max_segment_rows: int = budget(5_000, "segment training rows the curve grows over (a seeded sample above this)")
    max_elsewhere_rows: int = budget(5_000, "test rows outside the segment scored to show the loss elsewhere")
    fractions: tuple[float, ...] = setting((0.25, 0.5, 0.75, 1.0), "shares of the segment's training rows the "
                                                                   "model is refitted with (increasing, at most 1)")
    repeats: int = budget(2, "seeded draws of the segment's training rows at each share below 100% (their losses "
                             "averaged)")
    min_segment_rows: int = setting(8, "segment training rows a learning curve needs")
    n_bootstrap: int = budget(1_000, "bootstrap resamples (of the segment's test rows and draws) for the intervals")
    confidence: float = setting(0.95, "confidence level of the slope's interval")

    def skip_reason(self, inputs: RemedyInputs) -> str | None:
        if not weak_segments(inputs):
            return "no medium-or-high weak segment"
        if not isinstance(inputs.measurement(SEG_ID), SegmentMeasurement):
            return "the weak-segment check's measurement is not available"
        if not inputs.ctx.has_train:
            return ("no training data was given ([data] train): a segment's share of training rows and its "
                    "learning curve need it")
        return None

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        fractions = tuple(float(f) for f in self.fractions)
        if len(fractions) < 2 or any(not 0 < f <= 1 for f in fractions) or list(fractions) != sorted(set(fractions)):
            raise ValueError(f"fractions must be at least two increasing shares in (0, 1]; got {list(fractions)}")
        ctx = inputs.ctx
        m = inputs.measurement(SEG_ID)
        assert isinstance(m, SegmentMeasurement)  # skip_reason
        check = WeakSegmentsCheck(**dict(ctx.config.checks.options.get(SEG_ID, {})))
        X_test, X_train = ctx.X("test"), ctx.X("train")
        X_search = X_test
        if len(X_test) > check.max_rows:  # the rows the check searched
            X_search = X_test.iloc[ctx.sample_index(len(X_test), check.max_rows, check.id)]
        segments = {segment_finding_id(s): s for s in m.search.segments}
        why = refit_unavailable(ctx)
        notes: list[str] = []
        todo = weak_segments(inputs)
        if len(todo) > self.max_segments:
            notes.append(f"{len(todo)} weak segments; the {int(self.max_segments)} most severe were studied "
                         "(max_segments).")
        if why:
            notes.append(f"No learning curves: {why}. The segments' shares of training and test rows follow.")
        shares: list[dict[str, Any]] = []
        remediations: list[Remediation] = []
        curves: list[tuple[WeakSegment, _Curve]] = []
        metric = "log_loss" if ctx.is_classification else "mae"
        for finding in todo[:int(self.max_segments)]:
            s = segments.get(finding.id)
            masks = None if s is None else segment_mask(X_search, s, [X_train, X_test], categorical=ctx.categorical,
                                                        bins=check.bins, pair_bins=check.pair_bins)
            if s is None or masks is None:
                notes.append(f"{finding.id}: its rows could not be selected again from the segment's definition, "
                             "so it was not studied.")
                continue
            tr_mask, te_mask = masks
            share = _share_record(s, tr_mask, te_mask)
            shares.append(share)
            if why:
                notes.append(_share_text(share))
                continue
            n_seg = int(tr_mask.sum())
            if n_seg < self.min_segment_rows:
                notes.append(f"`{s.definition}`: {plural(n_seg, 'training row')}, fewer than the "
                             f"{int(self.min_segment_rows)} a learning curve needs (min_segment_rows); "
                             f"{_share_text(share)}")
                continue
            curve = self._curve(ctx, s, tr_mask, te_mask, fractions)
            if curve is None:
                notes.append(f"`{s.definition}`: a refit's classes differ from the audited model's, so no curve.")
                continue
            curves.append((s, curve))
            if curve.trend.supports_more_data:
                remediations.append(self._remediation(finding, s, curve, share, metric, ctx))
            else:
                notes.append(_unlikely_text(s, curve, metric))
        if curves:
            c0 = curves[0][1]
            notes.insert(0, f"Each refit uses {plural(c0.other_rows, 'training row')} outside the segment (a seeded "
                            f"sample of at most {int(self.max_rows):,}; never the test rows) plus a nested seeded "
                            f"share ({', '.join(pct(f, 0) for f in fractions)}) of the segment's training rows "
                            f"(at most {int(self.max_segment_rows):,}; {plural(c0.draws, 'draw')} at each share "
                            f"below 100%, their losses averaged); "
                            f"{plural(sum(c.n_fits for _, c in curves), 'refit')} in all. "
                            f"Rule: more data is supported when the {level(self.confidence)} {METHOD} lies below 0 "
                            f"and the last step's bootstrap interval lies above 0 ({int(self.n_bootstrap):,} "
                            "resamples).")
        tables: list[Table] = []
        figures: list[Figure] = []
        if shares:
            tables.append(Table.from_records(
                "segment_shares", "Weak segments: share of training rows against test rows", shares,
                caption="Rows selected with the weak-segment check's own codings. Ratio: training share over test "
                        "share (below 1: the segment is rarer in training than in test)."))
        rest = [(s, c) for s, c in curves if not c.trend.supports_more_data]
        if rest:
            tables.append(_curve_table("learning_curves", "Learning curves of the segments where more data did not "
                                       "measurably help", rest, metric))
            figures.append(_curve_figure("learning_curves", rest, metric))
        return RemedyOutput(remediations=tuple(remediations), notes=tuple(notes),
                            evidence=Evidence(tables=tuple(tables), figures=tuple(figures)))

    def _curve(self, ctx: AuditContext, s: WeakSegment, tr_mask: np.ndarray, te_mask: np.ndarray,
               fractions: tuple[float, ...]) -> _Curve | None:
        key = f"{self.id}:{s.key or s.definition}"
        seg_pos = np.flatnonzero(tr_mask)
        seg_pos = seg_pos[ctx.sample_index(len(seg_pos), int(self.max_segment_rows), key + ":segment")]
        other_pos = np.flatnonzero(~tr_mask)
        other_pos = other_pos[ctx.sample_index(len(other_pos), int(self.max_rows), key + ":other")]
        te_pos = np.flatnonzero(te_mask)
        out_pos = np.flatnonzero(~te_mask)
        out_pos = out_pos[ctx.sample_index(len(out_pos), int(self.max_elsewhere_rows), key + ":elsewhere")]
        X_train, y_train = ctx.X("train"), np.asarray(ctx.y("train"))
        X_test = ctx.X("test")
        y_test = ctx.y_classes("test")
        scored = X_test.iloc[np.concatenate([te_pos, out_pos])]
        y_scored = y_test[np.concatenate([te_pos, out_pos])]
        seeded = _seeded(ctx)
        draws = [nested_subsets(len(seg_pos), fractions, ctx.rng(f"{key}:subsets{r}"))
                 for r in range(max(1, int(self.repeats)))]
        losses, elsewhere, n_fits = [], [], 0
        for j, f in enumerate(fractions):
            # every draw of all the segment's rows is the same refit: fit it once
            subs = [d[j] for d in draws] if subset_size(len(seg_pos), f) < len(seg_pos) else [draws[0][j]]
            point = []
            for sub in subs:
                rows = np.sort(np.concatenate([other_pos, seg_pos[sub]]))
                adapter = fit(clone_model(ctx, **seeded), X_train.iloc[rows], y_train[rows])
                n_fits += 1
                if ctx.is_classification and adapter.classes is not None and len(adapter.classes) != len(ctx.classes):
                    return None
                point.append(self._losses(ctx, adapter, scored, y_scored))
            P = np.vstack(point)  # draws x scored rows
            losses.append(P[:, :len(te_pos)])
            elsewhere.append(float(P[:, len(te_pos):].mean()) if len(out_pos) else float("nan"))
        audited = self._losses(ctx, None, X_test.iloc[te_pos], y_test[te_pos])
        trend = curve_trend(fractions, losses, rng=ctx.rng(key + ":bootstrap"),
                            n_boot=int(self.n_bootstrap), confidence=float(self.confidence))
        return _Curve(trend=trend, segment_rows=tuple(subset_size(len(seg_pos), f) for f in fractions),
                      other_rows=len(other_pos), n_fits=n_fits, draws=len(draws),
                      segment_total=len(seg_pos), elsewhere=tuple(elsewhere), elsewhere_rows=len(out_pos),
                      audited=float(audited.mean()))

    @staticmethod
    def _losses(ctx: AuditContext, adapter: Any, X: pd.DataFrame, y: np.ndarray) -> np.ndarray:
        p = ctx.predict_frame(X) if adapter is None else predict(ctx, adapter, X)
        score = p.proba if ctx.is_multiclass and p.proba is not None else p.score
        return row_losses(y, score, task=ctx.task)

    def _remediation(self, finding: Finding, s: WeakSegment, c: _Curve, share: dict[str, Any], metric: str,
                     ctx: AuditContext) -> Remediation:
        t = c.trend
        label = _metric_label(metric)
        before = {metric: t.losses[-2], "segment_training_rows": c.segment_rows[-2]}
        after = {metric: t.losses[-1], "segment_training_rows": c.segment_rows[-1]}
        path = " → ".join(amount(v) for v in t.losses)
        summary = (
            f"More training data where {s.definition} is likely to help. Refitting the model on "
            f"{plural(c.other_rows, 'other training row')} plus {', '.join(pct(f, 0) for f in t.fractions)} of the "
            f"segment's {plural(c.segment_total, 'training row')}, its {label} on its {plural(t.n_rows, 'test row')} "
            f"goes {path} (the audited model: {amount(c.audited)}). The slope is {amount(t.slope)} per 100% of the "
            f"segment's rows ({_ci_text(t.slope_ci, t.confidence)}, below 0), and the last step "
            f"({pct(t.fractions[-2], 0)} to {pct(t.fractions[-1], 0)}) still lowers it by {amount(t.last_drop)} "
            f"({_ci_text(t.last_drop_ci, t.confidence)}, above 0). The segment is {pct(share['train_share'])} "
            f"of training rows and {pct(share['test_share'])} of test rows. Collect (or up-weight) more training "
            "rows of this kind.")
        caveats = (
            f"The intervals resample the segment's {plural(t.n_rows, 'test row')} and the {plural(c.draws, 'draw')} "
            "of its training rows at each share; with few draws they understate the variation between draws.",
            f"After is the model refitted with all {plural(c.segment_total, 'segment training row')} the audit has; "
            "how much a further batch of such rows would lower the error is an extrapolation of the curve, not "
            "measured.",
            "Refitted by the audit with the model's own hyper-parameters on sampled training rows; not the "
            "owner's fit.",
        )
        return Remediation(
            id=f"data/{s.key or s.definition.replace(' ', '')}", kind="data", addresses=(finding.id,),
            title=f"Collect more training data where {s.definition}", summary=summary, before=before, after=after,
            verified=True,
            parameters={"segment": s.definition, "fractions": ", ".join(f"{f:g}" for f in t.fractions),
                        "segment_training_rows": c.segment_total, "other_training_rows": c.other_rows,
                        "segment_test_rows": t.n_rows, "slope": t.slope, "slope_ci_low": t.slope_ci[0],
                        "slope_ci_high": t.slope_ci[1], "confidence": t.confidence,
                        "method": "two-level bootstrap (test rows, paired; draws of training rows) of the slope",
                        "train_share": share["train_share"], "test_share": share["test_share"],
                        **({"random_state": ctx.seed} if _seeded(ctx) else {})},
            caveats=caveats,
            evidence=Evidence(tables=(_curve_table(f"curve_{safe_id(s.key or s.definition)}",
                                                   f"Learning curve where {s.definition}", [(s, c)], metric),),
                              figures=(_curve_figure(f"curve_{safe_id(s.key or s.definition)}", [(s, c)], metric),)))


def _seeded(ctx: AuditContext) -> dict[str, Any]:
    """``random_state`` set to the audit seed when the model's final estimator leaves it None."""
    from .refit import final_prefix

    obj = model_object(ctx)
    prefix = final_prefix(obj)
    if obj is None or prefix is None:
        return {}
    try:
        params = obj.get_params()
    except Exception:  # noqa: BLE001 - an object without get_params: nothing to seed
        return {}
    name = prefix + "random_state"
    return {name: ctx.seed} if name in params and params[name] is None else {}


def _metric_label(metric: str) -> str:
    return {"log_loss": "log loss", "mae": "mean absolute error"}.get(metric, metric)


def _share_record(s: WeakSegment, tr_mask: np.ndarray, te_mask: np.ndarray) -> dict[str, Any]:
    n_tr, n_te = int(tr_mask.sum()), int(te_mask.sum())
    tr_share = n_tr / len(tr_mask) if len(tr_mask) else float("nan")
    te_share = n_te / len(te_mask) if len(te_mask) else float("nan")
    return {"segment": s.definition, "train_rows": n_tr, "train_share": sig(tr_share, 4), "test_rows": n_te,
            "test_share": sig(te_share, 4), "ratio": sig(tr_share / te_share, 3) if te_share else None,
            "under_represented": "yes" if s.underrepresented else "no"}


def _share_text(r: dict[str, Any]) -> str:
    return (f"`{r['segment']}`: {plural(r['train_rows'], 'training row')} ({pct(r['train_share'])} of training) "
            f"against {plural(r['test_rows'], 'test row')} ({pct(r['test_share'])} of test)"
            + (", under-represented in training." if r["under_represented"] == "yes" else "."))


def _ci_text(interval: tuple[float, float], confidence: float) -> str:
    return f"{level(confidence)} bootstrap interval {amount(interval[0])} to {amount(interval[1])}"


def _unlikely_text(s: WeakSegment, c: _Curve, metric: str) -> str:
    t = c.trend
    step = f"the last step ({pct(t.fractions[-2], 0)} to {pct(t.fractions[-1], 0)})"
    if not t.slope_falls:
        why = (f"the slope {amount(t.slope)} per 100% of its rows has a {_ci_text(t.slope_ci, t.confidence)}, "
               "which does not lie below 0")
    else:
        why = (f"the loss falls over the curve (slope {amount(t.slope)} per 100% of its rows, "
               f"{_ci_text(t.slope_ci, t.confidence)}) but has levelled off: {step} changes it by "
               f"{amount(-t.last_drop)} ({_ci_text((-t.last_drop_ci[1], -t.last_drop_ci[0]), t.confidence)}, "
               "not a clear fall)")
    return (f"`{s.definition}`: more data of this kind is unlikely to help. With "
            f"{', '.join(pct(f, 0) for f in t.fractions)} of its {plural(c.segment_total, 'training row')} the "
            f"segment's {_metric_label(metric)} on its {plural(t.n_rows, 'test row')} goes "
            f"{' → '.join(amount(v) for v in t.losses)} (the audited model: {amount(c.audited)}); {why}. "
            "Look instead for label noise, a missing feature or a relationship that differs in this segment.")


def _curve_table(name: str, title: str, curves: list[tuple[WeakSegment, _Curve]], metric: str) -> Table:
    records = []
    for s, c in curves:
        t = c.trend
        for j, f in enumerate(t.fractions):
            records.append({"segment": s.definition, "share_of_segment_rows": pct(f, 0),
                            "segment_rows": c.segment_rows[j], "other_rows": c.other_rows,
                            metric: sig(t.losses[j], 4), "ci_low": sig(t.loss_ci[j][0], 4),
                            "ci_high": sig(t.loss_ci[j][1], 4), f"{metric}_elsewhere": sig(c.elsewhere[j], 4)})
        records.append({"segment": s.definition, "share_of_segment_rows": "audited model",
                        "segment_rows": None, "other_rows": None, metric: sig(c.audited, 4), "ci_low": None,
                        "ci_high": None, f"{metric}_elsewhere": None})
    t0 = curves[0][1].trend
    return Table.from_records(name, title, records, caption=(
        f"Mean {_metric_label(metric)} on the segment's test rows for the model refitted with each share of the "
        f"segment's training rows (plus the same other training rows; below 100% the mean over the draws); "
        f"{level(t0.confidence)} bootstrap interval over those rows and draws; elsewhere: on up to "
        f"{curves[0][1].elsewhere_rows:,} other test rows."))


def _curve_figure(name: str, curves: list[tuple[WeakSegment, _Curve]], metric: str) -> Figure:
    data = {"curves": [{"segment": s.definition, "fractions": list(c.trend.fractions),
                        "segment_rows": list(c.segment_rows), "losses": list(c.trend.losses),
                        "low": [lo for lo, _ in c.trend.loss_ci], "high": [hi for _, hi in c.trend.loss_ci],
                        "audited": c.audited, "supports": c.trend.supports_more_data} for s, c in curves],
            "metric": _metric_label(metric), "confidence": curves[0][1].trend.confidence}
    return Figure(name, "Learning curve on the weak segment" + ("s" if len(curves) > 1 else ""),
                  plot="remedy_edit.learning_curve_figure", data=data,
                  caption=f"Segment {_metric_label(metric)} on its test rows against the share of its training rows "
                          "used in the refit (band: bootstrap interval; dashed: the audited model).")
