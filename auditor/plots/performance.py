"""Figures of the performance checks: the k-class confusion matrix and the reliability diagram."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure as MplFigure

from ..analysis.calibration import CalibrationResult
from ..findings import Figure
from . import COLORS, figure, new_figure, plot_style

_MAX_ANNOTATED = 12  # classes up to which every cell carries its count
_MAX_LABEL = 18  # characters of a class name on an axis


def _short(name: str) -> str:
    return name if len(name) <= _MAX_LABEL else name[: _MAX_LABEL - 1] + "…"


def confusion_matrix_figure(confusion: np.ndarray, class_names: Sequence[str], *, name: str = "confusion_matrix_plot",
                            caption: str = "") -> Figure:
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
    with plot_style():
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
        return figure(name, "Confusion-matrix heat map", fig, caption=caption)


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
