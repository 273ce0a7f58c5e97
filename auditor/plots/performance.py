"""Figures of the performance checks: ROC and precision-recall curves, predicted vs actual, the
train/test gap, the k-class confusion matrix and the reliability diagram."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure as MplFigure

from ..analysis.calibration import CalibrationResult
from ..analysis.metrics import ClassificationMetrics, GapResult
from . import COLORS, new_figure

_MAX_ANNOTATED = 12  # classes up to which every cell carries its count
_MAX_LABEL = 18  # characters of a class name on an axis


def _short(name: str) -> str:
    return name if len(name) <= _MAX_LABEL else name[: _MAX_LABEL - 1] + "…"


def confusion_matrix_figure(confusion: np.ndarray, class_names: Sequence[str]) -> MplFigure:
    """Heat map of a k x k confusion matrix: rows = actual class, columns = predicted class.

    Cells are shaded by the share of the actual class (row-normalised), so a small class's
    confusions are as visible as a large one's; each cell is labelled with its count and share.
    """
    conf = np.asarray(confusion, dtype=float)
    k = conf.shape[0]
    support = conf.sum(axis=1, keepdims=True)
    share = np.divide(conf, support, out=np.zeros_like(conf), where=support > 0)
    labels = [_short(str(c)) for c in class_names]
    size = min(7.0, 2.4 + 0.45 * k)
    fig = new_figure(size + 0.8, size)
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, aspect="equal", interpolation="nearest")
    if k <= _MAX_ANNOTATED:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{int(conf[i, j])}\n{share[i, j]:.0%}", ha="center", va="center",
                        fontsize=6 if k > 6 else 7, color="white" if share[i, j] > 0.55 else "black")
    ax.set_xticks(range(k), labels, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), labels)
    ax.set(xlabel="Predicted class", ylabel="Actual class", title="Confusion matrix")
    ax.spines[:].set_visible(False)
    fig.colorbar(im, ax=ax, shrink=0.8, label="Share of the actual class")
    return fig


def roc_pr_figure(metrics: ClassificationMetrics) -> MplFigure:
    """ROC and precision-recall curves of a binary classifier on the test data."""
    c = metrics
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
    return fig


def predicted_actual_figure(actual: np.ndarray, predicted: np.ndarray, *, r2: float) -> MplFigure:
    """Predicted against actual values of a regression model (a seeded sample of the test rows)."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    fig = new_figure(4.0, 3.6)
    ax = fig.subplots()
    ax.scatter(actual, predicted, s=6, alpha=0.5, color=COLORS[0], linewidths=0)
    lo = float(np.nanmin([actual.min(), predicted.min()]))
    hi = float(np.nanmax([actual.max(), predicted.max()]))
    ax.plot([lo, hi], [lo, hi], color=COLORS[6], lw=1, ls="--", label="perfect prediction")
    ax.set(xlabel="Actual", ylabel="Predicted", title=f"Predicted vs actual (R² {r2:.2f})")
    ax.legend(loc="upper left", frameon=False)
    return fig


def gap_figure(result: GapResult, *, labels: Mapping[str, str]) -> MplFigure:
    """Train and test estimates with their intervals for the two headline metrics of the gap
    (AUC and log loss; k classes: macro one-vs-rest AUC and log loss; regression: R² and RMSE)."""
    r = result
    shown = {"classification": ("auc", "log_loss"), "multiclass": ("auc_ovr_macro", "log_loss")}.get(
        r.task, ("r2", "rmse"))
    fig = new_figure(6.0, 2.6)
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, shown):
        g = r.get(metric)
        for i, (_, e) in enumerate((("train", g.train), ("test", g.test))):
            lo = e.value - e.low if np.isfinite(e.low) else 0.0
            hi = e.high - e.value if np.isfinite(e.high) else 0.0
            ax.errorbar([i], [e.value], yerr=[[max(lo, 0.0)], [max(hi, 0.0)]], fmt="o", capsize=4,
                        color=COLORS[i])
        ax.set_xticks([0, 1], ["train", "test"])
        ax.set_xlim(-0.6, 1.6)
        ax.set_title(f"{labels[metric]}: gap {g.gap.value:.3f}")
    return fig


def reliability_figure(result: CalibrationResult, *, top_label: bool = False) -> MplFigure:
    """Reliability diagram over a histogram of the predicted probabilities, with the band where a
    calibrated model's observed rates would fall (consistency resampling, central 95%)."""
    r = result
    fig = new_figure(4.6, 4.4)
    ax, axh = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    ax.plot([0, 1], [0, 1], color=COLORS[6], lw=1, ls="--", label="perfectly calibrated")
    ax.fill_between(r.bin_predicted, r.band_low, r.band_high, color=COLORS[5], alpha=0.2, lw=0,
                    label="range of a calibrated model (95%)")
    ax.plot(r.curve_predicted, r.curve_observed, marker="o", ms=3, color=COLORS[0], lw=1.5, label="model")
    ax.set(ylabel="Accuracy of the predicted class" if top_label else "Observed rate",
           title=f"{'Top-label r' if top_label else 'R'}eliability diagram (ECE {r.ece:.3f}, p = {r.p_value:.3f})",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", frameon=False)
    centers = (r.hist_edges[:-1] + r.hist_edges[1:]) / 2
    axh.bar(centers, r.hist_counts, width=np.diff(r.hist_edges) * 0.9, color=COLORS[0], alpha=0.7)
    axh.set(xlabel="Probability of the predicted class" if top_label else "Predicted probability", ylabel="Rows")
    return fig
