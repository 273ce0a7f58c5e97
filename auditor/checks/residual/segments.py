"""``residual.segments``: slices of the data (one feature's level or bin, or a pair) where the
error is significantly worse than for rows with a similar prediction. The texts of a finding are
built in ``segments_text``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ...analysis.segments import SegmentOptions, SegmentSearch, WeakSegment, find_weak_segments
from ...findings import Evidence, Figure, Finding, Severity, Table
from ...wording import p_value
from .._classes import unknown_class_reason
from ..base import RESIDUAL, Check, budget, setting, threshold
from . import segments_text as text

if TYPE_CHECKING:
    from ...context import AuditContext


@dataclass(frozen=True)
class SegmentMeasurement:
    search: SegmentSearch
    n_total: int
    n_classes: int = 0  # classification: the number of classes (k > 2: k-class log loss and accuracy)


@dataclass
class WeakSegmentsCheck(Check[SegmentMeasurement]):
    """Segments (one feature's level or quantile bin, or a pair of them) whose per-row loss (log
    loss or absolute error) is significantly worse than rows with a similar prediction outside the
    segment: one-sided Welch t-test, Benjamini-Hochberg over every segment tested (FDR ``alpha``),
    at least ``min_excess`` of the overall mean loss, at least max(``min_support_rows``,
    ``min_support_share`` of test rows) rows. Each reported segment is medium; **high** when it
    holds at least ``high_min_share`` of the rows and the model fails there: regression MAE at least
    ``high_mae_ratio`` x overall, classification accuracy at or below the segment's majority-class
    rate or AUC at most ``high_max_auc``, while the model does well overall (AUC >= ``good_auc`` or
    accuracy >= majority rate + ``good_accuracy_lift``).

    Finding ids name the segment by feature and level or bin position (``residual.segments/
    sex=-0.0446&s4=bin2of5``), never by the quantile edges of its range, which move with the
    sample: a retrained model with the same weak segment keeps the id (issue 10).
    """

    id: ClassVar[str] = "residual.segments"
    family = RESIDUAL
    order = 2
    title: ClassVar[str] = "Weak segments"

    alpha: float = threshold(0.05, "false discovery rate over every segment tested")
    confidence: float = setting(0.95, "confidence level of the segments' metric intervals")
    bins: int = setting(5, "quantile bins of a numeric feature for single-feature segments")
    pair_bins: int = setting(3, "quantile bins of a numeric feature in pair segments")
    pairs: bool = setting(True, "also test pairs of features")
    max_pair_features: int = budget(15, "features (strongest single-feature signal first) whose pairs are tested")
    min_support_rows: int = setting(30, "minimum rows of a tested segment (and outside it)")
    min_support_share: float = setting(0.02, "minimum rows of a tested segment as a share of the test rows (the "
                                             "larger minimum applies)")
    min_excess: float = threshold(0.2, "mean excess loss a reported segment needs, as a share of the overall mean")
    pair_gain: float = threshold(1.5, "multiple of a significant single parent's excess a pair needs to be reported")
    prediction_bins: int = setting(10, "quantile bins of the prediction within which the loss is centred")
    max_segments: int = budget(10, "segments reported at most")
    high_min_share: float = threshold(0.05, "share of the rows a segment needs for high")
    high_mae_ratio: float = threshold(2.0, "regression: segment MAE over overall MAE for high")
    high_max_auc: float = threshold(0.55, "binary: segment AUC at most this for high")
    good_auc: float = threshold(0.7, "binary: overall AUC from which the model does well overall (for high)")
    good_accuracy_lift: float = threshold(0.05, "overall accuracy above the majority rate from which the model "
                                                "does well overall (for high)")
    underrep_ratio: float = setting(0.5, "train share below this multiple of the test share: under-represented")
    max_rows: int = budget(200_000, "test rows searched (a seeded sample above this)")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        return unknown_class_reason(ctx)

    def measure(self, ctx: AuditContext) -> SegmentMeasurement:
        X = ctx.X("test")
        n_total = len(X)
        y, score = ctx.y_classes("test"), ctx.scores("test")
        if n_total > self.max_rows:
            idx = ctx.sample_index(n_total, self.max_rows, self.id)
            X, y, score = X.iloc[idx], y[idx], score[idx]
        kw: dict[str, Any] = {}
        if ctx.has_train:
            kw = {"X_train": ctx.X("train"), "y_train": ctx.y_classes("train"),
                  "score_train": ctx.scores("train")}
        options = SegmentOptions(
            bins=self.bins, pair_bins=self.pair_bins, pairs=self.pairs, max_pair_features=self.max_pair_features,
            min_support=max(self.min_support_rows, int(math.ceil(self.min_support_share * len(X)))),
            alpha=self.alpha, min_excess=self.min_excess, pair_gain=self.pair_gain, max_segments=self.max_segments,
            prediction_bins=self.prediction_bins, underrep_ratio=self.underrep_ratio, confidence=self.confidence)
        search = find_weak_segments(X, y, score, task=ctx.task, categorical=ctx.categorical,
                                    threshold=ctx.threshold, options=options, **kw)
        return SegmentMeasurement(search=search, n_total=n_total,
                                  n_classes=ctx.n_classes if ctx.is_classification else 0)

    def severity(self, s: WeakSegment, search: SegmentSearch, n_classes: int = 2) -> Severity:
        if s.share < self.high_min_share:
            return Severity.MEDIUM
        o, t = search.overall, s.test
        if search.task == "regression":
            if o.mae is not None and t.mae is not None and o.mae.value > 0 \
                    and t.mae.value >= self.high_mae_ratio * o.mae.value:
                return Severity.HIGH
            return Severity.MEDIUM
        if n_classes > 2:
            # k classes: the model is good overall (accuracy's lower bound beats the majority rate by
            # the lift) and fails in the segment (accuracy's upper bound at most the segment's majority rate)
            good = (o.accuracy is not None and o.majority_rate is not None and math.isfinite(o.accuracy.low)
                    and o.accuracy.low >= o.majority_rate + self.good_accuracy_lift)
            fails = (t.accuracy is not None and t.majority_rate is not None and math.isfinite(t.accuracy.high)
                     and t.accuracy.high <= t.majority_rate)
            return Severity.HIGH if good and fails else Severity.MEDIUM
        good = ((o.auc is not None and o.auc.value >= self.good_auc)
                or (o.accuracy is not None and o.majority_rate is not None
                    and o.accuracy.value >= o.majority_rate + self.good_accuracy_lift))
        fails = ((t.accuracy is not None and t.majority_rate is not None and t.accuracy.value <= t.majority_rate)
                 or (t.auc is not None and t.auc.value <= self.high_max_auc))
        return Severity.HIGH if good and fails else Severity.MEDIUM

    def judge(self, m: SegmentMeasurement) -> list[Finding]:
        return [self._finding(s, m.search, self.severity(s, m.search, m.n_classes), m.n_classes)
                for s in m.search.segments]

    def _finding(self, s: WeakSegment, search: SegmentSearch, sev: Severity, n_classes: int = 2) -> Finding:
        cls = search.task == "classification"
        multi = cls and n_classes > 2
        metrics: dict[str, Any] = {"rows": s.n, "share": s.share, "relative_excess_loss": s.relative_excess,
                                   "p_adjusted": s.p_adjusted}
        if cls:
            perf, headline, more = text.classification_performance(s, search, n_classes, self.confidence)
        else:
            perf, headline, more = text.regression_performance(s, search, self.confidence)
        metrics.update(more)
        train_txt, remediation = text.train_view(s, search, metrics)
        loss_name = ("k-class log loss" if multi else "log loss") if cls else "absolute error"
        rule, rule_txt = text.rule(self, s, search, sev, multi=multi, loss_name=loss_name)
        return Finding(
            id=f"{self.id}/{s.key or s.definition.replace(' ', '')}", check=self.id, severity=sev,
            title=f"Weak segment `{s.definition}` ({s.share:.1%} of rows): {headline}",
            summary=(f"On the {s.n} test rows where {s.definition}: {perf}. Its per-row "
                     f"{loss_name} exceeds that of rows with similar predictions by "
                     f"{s.relative_excess:.0%} of the overall mean (Welch one-sided, BH-adjusted "
                     f"{p_value(s.p_adjusted)}, {search.n_tested} segments tested).{train_txt}{rule_txt}"),
            features=tuple(dict.fromkeys(s.features)), groups=s.groups, metrics=metrics,
            remediation=tuple(remediation), evidence=("weak_segments",), rule=rule)

    def evidence(self, m: SegmentMeasurement) -> Evidence:
        search = m.search
        cls = search.task == "classification"
        recs = [text.segment_record(s, cls) for s in search.segments]
        tables = () if not recs else (Table.from_records(
            "weak_segments", "Segments with significantly worse error", recs,
            caption=(f"{text.overall_text(search)}. Excess: mean per-row {'log loss' if cls else 'absolute error'} "
                     f"above rows with similar predictions, as a share of the overall mean. p: one-sided Welch, "
                     f"BH-adjusted over {search.n_tested} segments.")),)
        figures = (Figure("weak_segments", f"Weak segments: {'log loss' if cls else 'MAE'} against overall",
                          plot="residuals.segment_chart", data={"search": search, "confidence": self.confidence},
                          caption="Segments ranked by total excess error; share of test rows in brackets."),
                   ) if search.segments else ()
        return Evidence(metrics=text.overall_metrics(search), tables=tables, figures=figures,
                        notes=text.notes(search, m.n_total, m.n_classes))
