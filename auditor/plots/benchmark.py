"""Figures of the benchmark comparison: model and benchmarks side by side, and where they disagree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from ..analysis.benchmark import Disagreement, PairedComparison
from . import COLORS, new_figure


def _disagreement_panel(ax: Any, x: np.ndarray, y: np.ndarray, d: Disagreement, rows: np.ndarray,
                        regression: bool) -> None:
    bench_wins, model_wins = d.benchmark_wins_mask, d.model_wins_mask
    agree = ~(bench_wins | model_wins)
    for mask, color, label, size in (
            (agree, COLORS[6], "same decision" if not regression else "within margin", 4),
            (model_wins, COLORS[0], "model right, benchmark wrong" if not regression else "model closer", 7),
            (bench_wins, COLORS[1], "benchmark right, model wrong" if not regression else "benchmark closer", 7)):
        sel = rows[mask[rows]]
        ax.scatter(x[sel], y[sel], s=size, alpha=0.6, color=color, linewidths=0,
                   label=f"{label} ({int(mask.sum())})")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False, markerscale=1.8, handletextpad=0.2,
              ncol=1)


def _k_class_panels(ax1: Any, ax2: Any, y: np.ndarray, sm: np.ndarray, sb: np.ndarray,
                    comparisons: Sequence[tuple[str, PairedComparison]], d: Disagreement, rows: np.ndarray,
                    class_names: Sequence[object] | None) -> None:
    """Per-class AUC of model and benchmarks, and P(actual class) of model against the first benchmark."""
    yi = y.astype(int)
    k = sm.shape[1]
    first = comparisons[0][1].roc
    models = [("model", first.model_class_auc if first else ())] + [
        (label, c.roc.benchmark_class_auc if c.roc else ()) for label, c in comparisons]
    width = 0.8 / len(models)
    for i, (label, aucs) in enumerate(models):
        values = list(aucs) if len(aucs) == k else [np.nan] * k
        ax1.bar(np.arange(k) + (i - (len(models) - 1) / 2) * width, values, width=width, color=COLORS[i],
                label=label)
    ax1.set_xticks(np.arange(k), [str(c) for c in (class_names or range(k))])
    ax1.set(xlabel="class", ylabel="one-vs-rest AUC", title="Per-class AUC, test data")
    ax1.set_ylim(0.0, 1.01)
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False, ncol=1)
    at = np.arange(len(yi))
    _disagreement_panel(ax2, sb[at, yi], sm[at, yi], d, rows, regression=False)
    ax2.set(xlabel=f"{comparisons[0][0]}: P(actual class)", ylabel="model: P(actual class)",
            title="Model vs benchmark: P(actual class)", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))


def _binary_panels(ax1: Any, ax2: Any, sm: np.ndarray, sb: np.ndarray,
                   comparisons: Sequence[tuple[str, PairedComparison]], d: Disagreement, rows: np.ndarray,
                   threshold: float) -> None:
    """ROC curves of model and benchmarks, and model score against the first benchmark's score."""
    first = comparisons[0][1]
    curves = [("model", first.roc.model if first.roc else None, first.primary.model, COLORS[0], "-")] + [
        (label, c.roc.benchmark if c.roc else None, c.primary.benchmark, COLORS[1 + i], "--" if i == 0 else ":")
        for i, (label, c) in enumerate(comparisons)]
    for label, curve, auc, color, ls in curves:
        if curve is not None:
            ax1.plot(curve.x, curve.y, color=color, lw=1.4, ls=ls, label=f"{label} (AUC {auc:.3f})")
    ax1.plot([0, 1], [0, 1], color=COLORS[6], lw=0.8, ls="-", alpha=0.6)
    ax1.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curves, test data",
            xlim=(0, 1), ylim=(0, 1.01))
    ax1.legend(loc="lower right", frameon=False)
    _disagreement_panel(ax2, sb, sm, d, rows, regression=False)
    ax2.axvline(threshold, color=COLORS[6], lw=0.8, ls="--")
    ax2.axhline(threshold, color=COLORS[6], lw=0.8, ls="--")
    ax2.set(xlabel=f"{comparisons[0][0]}: P(positive)", ylabel="model: P(positive)",
            title=f"Model vs benchmark score (threshold {threshold:g})", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))


def _regression_panels(ax1: Any, ax2: Any, y: np.ndarray, sm: np.ndarray, sb: np.ndarray, ref_label: str,
                       d: Disagreement, rows: np.ndarray) -> None:
    """Predicted vs actual for model and the first benchmark, and model against benchmark prediction."""
    yf = y.astype(float)
    ax1.scatter(yf[rows], sb[rows], s=5, alpha=0.45, color=COLORS[1], linewidths=0, label=ref_label)
    ax1.scatter(yf[rows], sm[rows], s=5, alpha=0.45, color=COLORS[0], linewidths=0, label="model")
    lo = float(np.nanmin([yf[rows].min(), sm[rows].min(), sb[rows].min()]))
    hi = float(np.nanmax([yf[rows].max(), sm[rows].max(), sb[rows].max()]))
    ax1.plot([lo, hi], [lo, hi], color=COLORS[6], lw=0.8, ls="--")
    ax1.set(xlabel="Actual", ylabel="Predicted", title="Predicted vs actual, test data")
    ax1.legend(loc="upper left", frameon=False, markerscale=2)
    _disagreement_panel(ax2, sb, sm, d, rows, regression=True)
    lo = float(np.nanmin([sm[rows].min(), sb[rows].min()]))
    hi = float(np.nanmax([sm[rows].max(), sb[rows].max()]))
    ax2.plot([lo, hi], [lo, hi], color=COLORS[6], lw=0.8, ls="--")
    ax2.set(xlabel=f"{ref_label} prediction", ylabel="model prediction", title="Model vs benchmark prediction")


def comparison_figure(*, task: str, y: np.ndarray, model_score: np.ndarray, reference_score: np.ndarray,
                      comparisons: Sequence[tuple[str, PairedComparison]], disagreement: Disagreement,
                      rows: np.ndarray, threshold: float = 0.5,
                      class_names: Sequence[object] | None = None) -> MplFigure:
    """Classification: ROC curves of model and benchmarks (from the paired comparisons), and model
    score against the first benchmark's score coloured by who is right; k classes: per-class AUC
    and the probability of the actual class. Regression: predicted vs actual for model and the
    first benchmark, and model against benchmark prediction coloured by who is closer.
    ``comparisons`` pairs each benchmark's name with its comparison (the first is the reference);
    ``rows`` are the test rows the scatter panels show."""
    y = np.asarray(y)
    sm = np.asarray(model_score, dtype=float)
    sb = np.asarray(reference_score, dtype=float)
    rows = np.asarray(rows, dtype=int)
    fig = new_figure(6.6, 3.7)
    ax1, ax2 = fig.subplots(1, 2)
    if task == "classification" and sm.ndim == 2:
        _k_class_panels(ax1, ax2, y, sm, sb, comparisons, disagreement, rows, class_names)
    elif task == "classification":
        _binary_panels(ax1, ax2, sm, sb, comparisons, disagreement, rows, threshold)
    else:
        _regression_panels(ax1, ax2, y, sm, sb, comparisons[0][0], disagreement, rows)
    return fig
