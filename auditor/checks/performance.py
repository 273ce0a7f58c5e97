"""Performance checks: headline metrics with confidence intervals, the train/test gap, and the
calibration of predicted probabilities. All three read only the context's cached predictions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..analysis.calibration import CalibrationResult, calibration_analysis
from ..analysis.metrics import (ClassificationMetrics, Estimate, GapResult, RegressionMetrics,
                                classification_metrics, regression_metrics, train_test_gap)
from ..findings import Evidence, Figure, Finding, Severity, Table
from ..plots import COLORS, figure, new_figure, plot_style
from .base import Check

if TYPE_CHECKING:
    from ..context import AuditContext


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _ci(e: Estimate, digits: int = 3, confidence: float = 0.95) -> str:
    return f"{e.value:.{digits}f} ({confidence:.0%} CI {e.low:.{digits}f}–{e.high:.{digits}f})"


def _estimate_metrics(name: str, e: Estimate) -> dict[str, float]:
    return {name: e.value, f"{name}_ci_low": e.low, f"{name}_ci_high": e.high}


# ---- performance.metrics ------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricsMeasurement:
    task: str
    positive_label: str
    classification: ClassificationMetrics | None = None
    regression: RegressionMetrics | None = None
    plot_actual: np.ndarray | None = None  # regression: a seeded sample of points for the figure
    plot_predicted: np.ndarray | None = None


@dataclass
class MetricsCheck(Check):
    """Headline performance on the test data, each metric with a percentile-bootstrap CI (95%).

    Classification: AUC, accuracy, precision, recall and F1 at the configured threshold, log loss
    and Brier score, against the base rate and the accuracy of always predicting the majority
    class. ``high`` when the model ranks no better than chance: the AUC interval lies within
    ``chance_margin`` of 0.5 (or below it), or the AUC is under ``weak_auc`` and its interval
    includes 0.5. ``medium`` for an AUC under ``weak_auc``, for a threshold that puts all but
    ``degenerate_share`` of the rows in one class, or for decisions not significantly more
    accurate than always predicting the majority class when the AUC is also under ``good_auc``
    (with a better AUC that is ``low``: the ranking is fine, the threshold adds little; on
    imbalanced data such as German credit this is common and not a defect of the model). Regression: RMSE, MAE and R²; ``high`` when R² <= ``min_r2`` (no better than
    predicting the mean), ``medium`` when R² < ``weak_r2``.
    """

    id: ClassVar[str] = "performance.metrics"
    title: ClassVar[str] = "Headline metrics"

    n_bootstrap: int = 200
    confidence: float = 0.95
    chance_margin: float = 0.05
    weak_auc: float = 0.6
    good_auc: float = 0.7
    degenerate_share: float = 0.02
    min_r2: float = 0.0
    weak_r2: float = 0.1
    max_plot_points: int = 2000

    def measure(self, ctx: "AuditContext") -> MetricsMeasurement:
        rng = ctx.rng(self.id)
        preds = ctx.predictions("test")
        if ctx.is_classification:
            m = classification_metrics(ctx.y_binary("test"), preds.score, threshold=ctx.threshold,
                                       n_resamples=self.n_bootstrap, confidence=self.confidence, rng=rng)
            return MetricsMeasurement("classification", str(ctx.positive_class), classification=m)
        y = np.asarray(ctx.y("test"), dtype=float)
        m = regression_metrics(y, preds.score, n_resamples=self.n_bootstrap, confidence=self.confidence, rng=rng)
        idx = np.arange(len(y))
        if len(y) > self.max_plot_points:
            idx = np.sort(rng.choice(len(y), size=self.max_plot_points, replace=False))
        return MetricsMeasurement("regression", "", regression=m, plot_actual=y[idx],
                                  plot_predicted=np.asarray(preds.score, dtype=float)[idx])

    # -- judgement --
    def judge(self, m: MetricsMeasurement) -> list[Finding]:
        if m.classification is not None:
            return self._judge_classification(m.classification, m.positive_label)
        assert m.regression is not None
        return self._judge_regression(m.regression)

    def _judge_classification(self, c: ClassificationMetrics, positive: str) -> list[Finding]:
        out: list[Finding] = []
        auc = c.auc
        auc_high = False
        if np.isfinite(auc.value):
            metrics = {"auc": auc.value, "auc_ci_low": auc.low, "auc_ci_high": auc.high, "n": c.n}
            chance = auc.high <= 0.5 + self.chance_margin or (auc.value < self.weak_auc and auc.low <= 0.5)
            if chance:
                auc_high = True
                inverted = auc.high < 0.5
                out.append(Finding(
                    id=f"{self.id}/auc", check=self.id, severity=Severity.HIGH,
                    title=f"AUC {auc.value:.2f}: the model ranks {'worse than' if inverted else 'no better than'} chance",
                    summary=(f"On {c.n} test rows the model's AUC is {_ci(auc, 2, c.confidence)}. "
                             + ("Its scores are ordered the wrong way round: rows with higher scores are less "
                                f"often '{positive}'. Check the positive class and the label encoding."
                                if inverted else
                                "An AUC of 0.5 is what random scores achieve; the interval does not show the "
                                "model separating the two outcomes better than a coin flip would.")),
                    metrics=metrics,
                    remediation=("Do not deploy: the model does not separate the outcomes on this data.",
                                 "Check that the test data, target column and positive class match the model's "
                                 "training setup.",
                                 "Retrain with informative features, or compare against a simple benchmark."),
                    evidence=("metrics", "roc_pr"),
                ))
            elif auc.value < self.weak_auc:
                out.append(Finding(
                    id=f"{self.id}/auc", check=self.id, severity=Severity.MEDIUM,
                    title=f"Weak discrimination: AUC {auc.value:.2f} (below {self.weak_auc:.2f})",
                    summary=(f"On {c.n} test rows the AUC is {_ci(auc, 2, c.confidence)}: better than chance, but the model "
                             "separates the outcomes only weakly, so many decisions will rest on small score "
                             "differences."),
                    metrics=metrics,
                    remediation=("Compare against a simple benchmark model before relying on this one.",
                                 "Look for missing informative features or data-quality problems."),
                    evidence=("metrics", "roc_pr"),
                ))
        share = c.predicted_positive_share
        degenerate = min(share, 1 - share) < self.degenerate_share
        if degenerate:
            side = f"'{positive}'" if share >= 0.5 else f"not '{positive}'"
            out.append(Finding(
                id=f"{self.id}/degenerate_threshold", check=self.id, severity=Severity.MEDIUM,
                title=f"The threshold {c.threshold:g} puts {_pct(max(share, 1 - share))} of rows in one class",
                summary=(f"At the decision threshold {c.threshold:g}, {_pct(share)} of the {c.n} test rows are "
                         f"predicted '{positive}' while the observed rate is {_pct(c.base_rate)}. Almost every "
                         f"decision is {side}, so the threshold does not use what the model knows; accuracy, "
                         "precision and recall at this threshold say little."),
                metrics={"predicted_positive_share": share, "base_rate": c.base_rate, "threshold": c.threshold},
                remediation=("Choose the threshold from the business cost of errors (for example from the ROC or "
                             "precision–recall curve) and set it in [model] threshold.",
                             "Check that the model's probabilities are on the expected scale (see calibration)."),
                evidence=("confusion_matrix", "roc_pr"),
            ))
        lift = c.accuracy_lift
        if not degenerate and not auc_high and np.isfinite(lift.low) and lift.low <= 0:
            ranks_well = np.isfinite(auc.value) and auc.value >= self.good_auc
            out.append(Finding(
                id=f"{self.id}/accuracy_vs_majority", check=self.id,
                severity=Severity.LOW if ranks_well else Severity.MEDIUM,
                title=(f"Accuracy {c.accuracy.value:.2f} is not significantly above always predicting the "
                       f"majority class ({c.majority_accuracy.value:.2f})"),
                summary=(f"At threshold {c.threshold:g} the model is right on {_pct(c.accuracy.value)} of test rows; "
                         f"always predicting the majority class would be right on {_pct(c.majority_accuracy.value)}. "
                         f"The gain is {lift.value:+.3f} ({c.confidence:.0%} CI {lift.low:+.3f} to {lift.high:+.3f}), "
                         "so the decisions are not shown to beat the trivial rule"
                         + (f", although the scores rank well (AUC {auc.value:.2f}): the threshold, not the "
                            "ranking, limits the decisions." if ranks_well else ".")),
                metrics={"accuracy": c.accuracy.value, "majority_accuracy": c.majority_accuracy.value,
                         "accuracy_lift": lift.value, "accuracy_lift_ci_low": lift.low,
                         "accuracy_lift_ci_high": lift.high, "p_value": c.accuracy_lift_p_value},
                remediation=("Revisit the decision threshold: with imbalanced outcomes 0.5 is rarely the right cut.",
                             "Judge the model on the metric that matters for the decision (costs, recall at a "
                             "fixed precision), not on accuracy alone."),
                evidence=("metrics", "confusion_matrix"),
            ))
        return out

    def _judge_regression(self, r: RegressionMetrics) -> list[Finding]:
        r2 = r.r2
        metrics = {"r2": r2.value, "r2_ci_low": r2.low, "r2_ci_high": r2.high, "rmse": r.rmse.value,
                   "std_target": r.std_target, "n": r.n}
        if r2.value <= self.min_r2:
            return [Finding(
                id=f"{self.id}/r2", check=self.id, severity=Severity.HIGH,
                title=f"R² {r2.value:.2f}: no better than predicting the average",
                summary=(f"On {r.n} test rows R² is {_ci(r2, 2, r.confidence)}. A model that always predicts the mean of the "
                         f"target scores 0; this one's errors (RMSE {r.rmse.value:.4g}) are as large as or larger "
                         f"than the spread of the target itself (standard deviation {r.std_target:.4g})."),
                metrics=metrics,
                remediation=("Do not deploy: the predictions carry no usable information on this data.",
                             "Check that test data, target and units match the model's training setup."),
                evidence=("metrics", "predicted_vs_actual"),
            )]
        if r2.value < self.weak_r2:
            return [Finding(
                id=f"{self.id}/r2", check=self.id, severity=Severity.MEDIUM,
                title=f"Weak fit: R² {r2.value:.2f} (below {self.weak_r2:.2f})",
                summary=(f"On {r.n} test rows R² is {_ci(r2, 2, r.confidence)}: the model explains only a small part of the "
                         "variation in the target."),
                metrics=metrics,
                remediation=("Compare against a simple benchmark before relying on the predictions.",
                             "Look for missing informative features."),
                evidence=("metrics", "predicted_vs_actual"),
            )]
        return []

    # -- evidence --
    def evidence(self, m: MetricsMeasurement) -> Evidence:
        if m.classification is not None:
            return self._classification_evidence(m.classification, m.positive_label)
        assert m.regression is not None
        return self._regression_evidence(m)

    def _classification_evidence(self, c: ClassificationMetrics, positive: str) -> Evidence:
        headline: dict[str, Any] = {}
        names = ("auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier")
        for name in names:
            headline.update(_estimate_metrics(name, getattr(c, name)))
        headline.update({"base_rate": c.base_rate, "majority_accuracy": c.majority_accuracy.value,
                         "average_precision": c.average_precision, "threshold": c.threshold,
                         "predicted_positive_share": c.predicted_positive_share, "n": c.n,
                         "n_positive": c.n_positive})
        labels = {"auc": "AUC", "accuracy": "Accuracy", "precision": "Precision", "recall": "Recall",
                  "f1": "F1", "log_loss": "Log loss", "brier": "Brier score",
                  "majority_accuracy": "Accuracy of always predicting the majority class"}
        records = [{"metric": labels[n], "value": getattr(c, n).value, "ci_low": getattr(c, n).low,
                    "ci_high": getattr(c, n).high} for n in (*names, "majority_accuracy")]
        records.append({"metric": "Base rate (share positive)", "value": c.base_rate, "ci_low": None, "ci_high": None})
        table = Table.from_records("metrics", f"Test metrics with {c.confidence:.0%} bootstrap intervals", records,
                                   columns=("metric", "value", "ci_low", "ci_high"),
                                   caption=f"Accuracy, precision, recall and F1 at threshold {c.threshold:g}.")
        (tn, fp), (fn, tp) = c.confusion
        conf = Table.from_records(
            "confusion_matrix", f"Confusion matrix at threshold {c.threshold:g}",
            [{"actual": f"not {positive}", f"predicted not {positive}": tn, f"predicted {positive}": fp},
             {"actual": positive, f"predicted not {positive}": fn, f"predicted {positive}": tp}],
            columns=("actual", f"predicted not {positive}", f"predicted {positive}"),
            caption=f"Counts of the {c.n} test rows.")
        notes = (f"Bootstrap: {c.n_resamples} resamples of the {c.n} test rows; {c.confidence:.0%} percentile "
                 "intervals.", f"Positive class: '{positive}'; decisions at threshold {c.threshold:g}.")
        return Evidence(metrics=headline, tables=(table, conf), figures=(_roc_pr_figure(c),), notes=notes)

    def _regression_evidence(self, m: MetricsMeasurement) -> Evidence:
        r = m.regression
        assert r is not None
        headline: dict[str, Any] = {}
        for name in ("rmse", "mae", "r2"):
            headline.update(_estimate_metrics(name, getattr(r, name)))
        headline.update({"mean_target": r.mean_target, "std_target": r.std_target, "n": r.n})
        labels = {"rmse": "RMSE", "mae": "MAE", "r2": "R²"}
        records = [{"metric": labels[n], "value": getattr(r, n).value, "ci_low": getattr(r, n).low,
                    "ci_high": getattr(r, n).high} for n in ("rmse", "mae", "r2")]
        table = Table.from_records("metrics", f"Test metrics with {r.confidence:.0%} bootstrap intervals", records,
                                   columns=("metric", "value", "ci_low", "ci_high"))
        notes = [f"Bootstrap: {r.n_resamples} resamples of the {r.n} test rows; {r.confidence:.0%} percentile intervals."]
        if m.plot_actual is not None and len(m.plot_actual) < r.n:
            notes.append(f"The predicted-vs-actual figure shows a seeded sample of {len(m.plot_actual)} rows.")
        return Evidence(metrics=headline, tables=(table,), figures=(_pred_actual_figure(m),), notes=tuple(notes))


def _roc_pr_figure(c: ClassificationMetrics) -> Figure:
    with plot_style():
        fig = new_figure(6.4, 3.0)
        ax1, ax2 = fig.subplots(1, 2)
        ax1.plot(c.roc.x, c.roc.y, color=COLORS[0], lw=1.5, label=f"model (AUC {c.auc.value:.2f})")
        ax1.plot([0, 1], [0, 1], color=COLORS[6], lw=1, ls="--", label="chance")
        ax1.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve",
                xlim=(0, 1), ylim=(0, 1.01))
        ax1.legend(loc="lower right", frameon=False)
        ax2.plot(c.pr.x, c.pr.y, color=COLORS[1], lw=1.5, label=f"model (AP {c.average_precision:.2f})")
        ax2.axhline(c.base_rate, color=COLORS[6], lw=1, ls="--", label=f"base rate {c.base_rate:.2f}")
        ax2.set(xlabel="Recall", ylabel="Precision", title="Precision–recall curve", xlim=(0, 1), ylim=(0, 1.01))
        ax2.legend(loc="lower left", frameon=False)
        return figure("roc_pr", "ROC and precision–recall curves", fig,
                      caption=f"Test data, {c.n} rows, {c.n_positive} positive.")


def _pred_actual_figure(m: MetricsMeasurement) -> Figure:
    r = m.regression
    assert r is not None and m.plot_actual is not None and m.plot_predicted is not None
    with plot_style():
        fig = new_figure(4.0, 3.6)
        ax = fig.subplots()
        ax.scatter(m.plot_actual, m.plot_predicted, s=6, alpha=0.5, color=COLORS[0], linewidths=0)
        lo = float(np.nanmin([m.plot_actual.min(), m.plot_predicted.min()]))
        hi = float(np.nanmax([m.plot_actual.max(), m.plot_predicted.max()]))
        ax.plot([lo, hi], [lo, hi], color=COLORS[6], lw=1, ls="--", label="perfect prediction")
        ax.set(xlabel="Actual", ylabel="Predicted", title=f"Predicted vs actual (R² {r.r2.value:.2f})")
        ax.legend(loc="upper left", frameon=False)
        return figure("predicted_vs_actual", "Predicted vs actual", fig,
                      caption=f"{len(m.plot_actual)} of {r.n} test rows.")


# ---- performance.overfit ------------------------------------------------------------------------

@dataclass(frozen=True)
class OverfitMeasurement:
    result: GapResult
    n_train_total: int
    sampled: bool


@dataclass
class OverfitCheck(Check):
    """The gap between performance on the training data and on the test data, with a bootstrap
    CI of the gap (both splits resampled independently).

    Classification: AUC and log loss (also accuracy and Brier); regression: R² and RMSE (also MAE).
    ``medium`` when the AUC gap is >= ``auc_gap_medium`` (R²: ``r2_gap_medium``) and its interval
    (``confidence``, 99%) excludes 0; ``high`` when it is >= ``auc_gap_high`` (R²: ``r2_gap_high``)
    and excludes 0; ``low`` when a gap of medium size is within the noise. The 99% level keeps an
    unlucky test split of a sound model from reading as overfitting (German credit, logistic
    regression, 30 random 70/30 splits: 20% medium at 95%, 10% at 99%). Skipped without training
    data.
    """

    id: ClassVar[str] = "performance.overfit"
    title: ClassVar[str] = "Train/test gap"

    n_bootstrap: int = 400
    confidence: float = 0.99
    max_train_rows: int = 20000
    auc_gap_medium: float = 0.05
    auc_gap_high: float = 0.15
    r2_gap_medium: float = 0.10
    r2_gap_high: float = 0.25

    def skip_reason(self, ctx: "AuditContext") -> str | None:
        if not ctx.has_train:
            return "no training data given ([data] train), so the train/test gap cannot be measured"
        return None

    def measure(self, ctx: "AuditContext") -> OverfitMeasurement:
        rng = ctx.rng(self.id)
        tr, te = ctx.predictions("train"), ctx.predictions("test")
        if ctx.is_classification:
            y_tr, y_te = ctx.y_binary("train"), ctx.y_binary("test")
        else:
            y_tr, y_te = np.asarray(ctx.y("train"), dtype=float), np.asarray(ctx.y("test"), dtype=float)
        n_total = len(y_tr)
        idx = np.arange(n_total)
        if n_total > self.max_train_rows:
            idx = np.sort(rng.choice(n_total, size=self.max_train_rows, replace=False))
        result = train_test_gap(y_tr[idx], tr.score[idx], y_te, te.score, task=ctx.task, threshold=ctx.threshold,
                                n_resamples=self.n_bootstrap, confidence=self.confidence, rng=rng)
        return OverfitMeasurement(result, n_total, len(idx) < n_total)

    def judge(self, m: OverfitMeasurement) -> list[Finding]:
        r = m.result
        if r.task == "classification":
            key, label, medium, high = "auc", "AUC", self.auc_gap_medium, self.auc_gap_high
            other = r.get("log_loss")
        else:
            key, label, medium, high = "r2", "R²", self.r2_gap_medium, self.r2_gap_high
            other = r.get("rmse")
        g = r.get(key)
        gap = g.gap
        if not np.isfinite(gap.value) or gap.value < medium:
            return []
        significant = np.isfinite(gap.low) and gap.low > 0
        if not significant:
            severity = Severity.LOW
        else:
            severity = Severity.HIGH if gap.value >= high else Severity.MEDIUM
        summary = (f"{label} is {g.train.value:.3f} on the training data ({r.n_train} rows) but {g.test.value:.3f} on "
                   f"the test data ({r.n_test} rows): a gap of {gap.value:.3f} ({r.confidence:.0%} CI {gap.low:.3f} to "
                   f"{gap.high:.3f}). {_METRIC_LABELS[other.metric]} is "
                   f"{other.train.value:.4g} on train and {other.test.value:.4g} on test. ")
        if significant:
            summary += ("The model performs clearly better on the rows it was trained on, so it has partly "
                        "memorised them; its test performance is the one to expect in use.")
        else:
            summary += "The interval includes 0, so the sample cannot confirm the gap."
        return [Finding(
            id=f"{self.id}/{key}_gap", check=self.id, severity=severity,
            title=f"{label} drops by {gap.value:.2f} from train ({g.train.value:.2f}) to test ({g.test.value:.2f})",
            summary=summary,
            metrics={f"{key}_train": g.train.value, f"{key}_test": g.test.value, f"{key}_gap": gap.value,
                     f"{key}_gap_ci_low": gap.low, f"{key}_gap_ci_high": gap.high,
                     f"{other.metric}_train": other.train.value, f"{other.metric}_test": other.test.value},
            remediation=("Regularise the model (limit depth or leaves, raise minimum leaf size, add penalties) and "
                         "choose its complexity by cross-validation.",
                         "Report and rely on held-out performance only."),
            evidence=("gap", "train_vs_test"),
        )]

    def evidence(self, m: OverfitMeasurement) -> Evidence:
        r = m.result
        headline: dict[str, Any] = {"n_train": r.n_train, "n_test": r.n_test}
        records = []
        for g in r.gaps:
            headline.update({f"{g.metric}_train": g.train.value, f"{g.metric}_test": g.test.value,
                             f"{g.metric}_gap": g.gap.value, f"{g.metric}_gap_ci_low": g.gap.low,
                             f"{g.metric}_gap_ci_high": g.gap.high})
            records.append({"metric": _METRIC_LABELS[g.metric], "train": g.train.value, "test": g.test.value,
                            "gap": g.gap.value, "gap_ci_low": g.gap.low, "gap_ci_high": g.gap.high})
        table = Table.from_records("gap", f"Train vs test with the {r.confidence:.0%} interval of the gap", records,
                                   columns=("metric", "train", "test", "gap", "gap_ci_low", "gap_ci_high"),
                                   caption="Gap oriented so that positive means better on train.")
        notes = [f"Bootstrap: {r.n_resamples} resamples of each split, drawn independently; {r.confidence:.0%} "
                 "percentile intervals of the gap."]
        if m.sampled:
            notes.append(f"Train rows are sampled to at most {self.max_train_rows} for speed: {r.n_train} of "
                         f"{m.n_train_total} used.")
        else:
            notes.append(f"All {r.n_train} train rows used (train is sampled to at most {self.max_train_rows} "
                         "rows for speed).")
        return Evidence(metrics=headline, tables=(table,), figures=(_gap_figure(r),), notes=tuple(notes))


_METRIC_LABELS = {"auc": "AUC", "log_loss": "Log loss", "accuracy": "Accuracy", "brier": "Brier score",
                  "r2": "R²", "rmse": "RMSE", "mae": "MAE"}


def _gap_figure(r: GapResult) -> Figure:
    shown = ("auc", "log_loss") if r.task == "classification" else ("r2", "rmse")
    with plot_style():
        fig = new_figure(6.0, 2.6)
        axes = fig.subplots(1, 2)
        for ax, metric in zip(axes, shown):
            g = r.get(metric)
            for i, (name, e) in enumerate((("train", g.train), ("test", g.test))):
                lo = e.value - e.low if np.isfinite(e.low) else 0.0
                hi = e.high - e.value if np.isfinite(e.high) else 0.0
                ax.errorbar([i], [e.value], yerr=[[max(lo, 0.0)], [max(hi, 0.0)]], fmt="o", capsize=4,
                            color=COLORS[i])
            ax.set_xticks([0, 1], ["train", "test"])
            ax.set_xlim(-0.6, 1.6)
            ax.set_title(f"{_METRIC_LABELS[metric]}: gap {g.gap.value:.3f}")
        return figure("train_vs_test", "Train vs test", fig,
                      caption=f"Point estimates with {r.confidence:.0%} bootstrap intervals.")


# ---- performance.calibration --------------------------------------------------------------------

@dataclass(frozen=True)
class CalibrationMeasurement:
    result: CalibrationResult
    positive_label: str


@dataclass
class CalibrationCheck(Check):
    """How well predicted probabilities match observed rates: reliability curve (10 quantile bins),
    expected calibration error (ECE, equal-count bins), the Brier score and its reliability part,
    and a logistic recalibration (slope < 1: over-confident; > 1: under-confident).

    The ECE is tested by consistency resampling: outcomes drawn from the model's own probabilities
    give the ECE a calibrated model would show on this sample. A finding needs both significance
    (p < ``alpha``) and size: ``medium`` when ECE >= ``ece_medium``, ``high`` when >= ``ece_high``.
    Skipped for regression.
    """

    id: ClassVar[str] = "performance.calibration"
    title: ClassVar[str] = "Calibration"

    n_bins: int = 10
    n_resamples: int = 200
    alpha: float = 0.01
    ece_medium: float = 0.05
    ece_high: float = 0.10

    def skip_reason(self, ctx: "AuditContext") -> str | None:
        if not ctx.is_classification:
            return "calibration applies to predicted probabilities; this is a regression model"
        return None

    def measure(self, ctx: "AuditContext") -> CalibrationMeasurement:
        result = calibration_analysis(ctx.y_binary("test"), ctx.predictions("test").score, n_bins=self.n_bins,
                                      n_resamples=self.n_resamples, rng=ctx.rng(self.id))
        return CalibrationMeasurement(result, str(ctx.positive_class))

    def judge(self, m: CalibrationMeasurement) -> list[Finding]:
        r = m.result
        if not (r.p_value < self.alpha and r.ece >= self.ece_medium):
            return []
        severity = Severity.HIGH if r.ece >= self.ece_high else Severity.MEDIUM
        direction = r.direction
        what = {
            "over-confident": "over-confident: its probabilities are too extreme (too close to 0 and 1)",
            "under-confident": "under-confident: its probabilities are squashed towards the middle",
            "too high": "biased upwards: its probabilities are too high on average",
            "too low": "biased downwards: its probabilities are too low on average",
            "none": "miscalibrated in a way that varies across the score range",
        }[direction]
        lo, hi = 0, len(r.bin_count) - 1
        summary = (f"The model is {what}. The expected calibration error is {r.ece:.3f}: on average a predicted "
                   f"probability of '{m.positive_label}' is off by {r.ece * 100:.1f} percentage points from the "
                   f"observed rate. In the lowest tenth of scores the model predicts {r.bin_predicted[lo]:.2f} on "
                   f"average and {r.bin_observed[lo]:.2f} of rows are positive; in the highest tenth it predicts "
                   f"{r.bin_predicted[hi]:.2f} and {r.bin_observed[hi]:.2f} are. A calibrated model would show an "
                   f"ECE of at most {r.ece_null_q95:.3f} on this sample (95th percentile of consistency resampling; "
                   f"p = {r.p_value:.3f}). Recalibration slope {r.slope:.2f} (1 = calibrated).")
        remediation = ["Recalibrate on held-out data (sklearn CalibratedClassifierCV with method='sigmoid' or "
                       "'isotonic') before the scores are used as probabilities.",
                       "If only the ranking or the decision is used, state that the scores are not probabilities."]
        if direction == "over-confident":
            remediation.insert(1, "Over-confidence often comes with overfitting: check performance.overfit and "
                                  "regularise the model.")
        return [Finding(
            id=f"{self.id}/ece", check=self.id, severity=severity,
            title=f"Probabilities are {direction if direction != 'none' else 'miscalibrated'}: "
                  f"calibration error {r.ece:.2f} (p = {r.p_value:.3f})",
            summary=summary,
            metrics={"ece": r.ece, "p_value": r.p_value, "ece_null_q95": r.ece_null_q95,
                     "calibration_slope": r.slope, "calibration_intercept": r.intercept,
                     "mean_predicted": r.mean_predicted, "observed_rate": r.observed_rate,
                     "brier": r.brier, "brier_reliability": r.reliability},
            remediation=tuple(remediation),
            evidence=("reliability_bins", "reliability"),
        )]

    def evidence(self, m: CalibrationMeasurement) -> Evidence:
        r = m.result
        headline = {"ece": r.ece, "ece_p_value": r.p_value, "ece_null_mean": r.ece_null_mean,
                    "ece_null_q95": r.ece_null_q95, "brier": r.brier, "brier_reliability": r.reliability,
                    "brier_resolution": r.resolution, "brier_uncertainty": r.uncertainty,
                    "calibration_slope": r.slope, "calibration_intercept": r.intercept,
                    "mean_predicted": r.mean_predicted, "observed_rate": r.observed_rate, "n": r.n}
        records = [{"bin": k + 1, "rows": int(r.bin_count[k]), "mean_predicted": float(r.bin_predicted[k]),
                    "observed_rate": float(r.bin_observed[k]), "calibrated_range_low": float(r.band_low[k]),
                    "calibrated_range_high": float(r.band_high[k])} for k in range(len(r.bin_count))]
        table = Table.from_records(
            "reliability_bins", "Predicted vs observed by score bin (equal-count bins)", records,
            columns=("bin", "rows", "mean_predicted", "observed_rate", "calibrated_range_low", "calibrated_range_high"),
            caption="Calibrated range: where 95% of observed rates would fall if the probabilities were right.")
        notes = (f"{r.n_bins} equal-count bins of the {r.n} test rows; the reliability curve uses "
                 "sklearn's calibration_curve with quantile bins.",
                 f"Consistency resampling: {r.n_resamples} draws of outcomes from the model's own probabilities; "
                 "p-value = (1 + draws with ECE >= observed) / (1 + draws).",
                 "Brier score = reliability - resolution + uncertainty (binned decomposition).")
        return Evidence(metrics=headline, tables=(table,), figures=(_reliability_figure(r),), notes=notes)


def _reliability_figure(r: CalibrationResult) -> Figure:
    with plot_style():
        fig = new_figure(4.6, 4.4)
        ax, axh = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        ax.plot([0, 1], [0, 1], color=COLORS[6], lw=1, ls="--", label="perfectly calibrated")
        ax.fill_between(r.bin_predicted, r.band_low, r.band_high, color=COLORS[5], alpha=0.2, lw=0,
                        label="range of a calibrated model (95%)")
        ax.plot(r.curve_predicted, r.curve_observed, marker="o", ms=3, color=COLORS[0], lw=1.5, label="model")
        ax.set(ylabel="Observed rate", title=f"Reliability diagram (ECE {r.ece:.3f}, p = {r.p_value:.3f})",
               xlim=(0, 1), ylim=(0, 1))
        ax.legend(loc="upper left", frameon=False)
        centers = (r.hist_edges[:-1] + r.hist_edges[1:]) / 2
        axh.bar(centers, r.hist_counts, width=np.diff(r.hist_edges) * 0.9, color=COLORS[0], alpha=0.7)
        axh.set(xlabel="Predicted probability", ylabel="Rows")
        return figure("reliability", "Reliability diagram", fig,
                      caption="Top: observed rate against mean predicted probability per quantile bin. "
                              "Bottom: distribution of the predicted probabilities.")


CHECKS = (MetricsCheck, OverfitCheck, CalibrationCheck)
