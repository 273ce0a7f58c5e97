"""Figures of the benchmark comparison: model and benchmarks side by side, and where they disagree."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..findings import Figure
from . import COLORS, figure, new_figure, plot_style


def _keep(bench_wins: np.ndarray, model_wins: np.ndarray, max_points: int) -> np.ndarray:
    """Every discordant row (up to half the budget) plus evenly spaced agreeing rows: deterministic."""
    disc = np.flatnonzero(bench_wins | model_wins)
    agree = np.flatnonzero(~(bench_wins | model_wins))
    if len(disc) > max_points // 2:
        disc = disc[np.unique(np.linspace(0, len(disc) - 1, max_points // 2).round().astype(int))]
    room = max_points - len(disc)
    if len(agree) > room:
        agree = agree[np.unique(np.linspace(0, len(agree) - 1, max(room, 1)).round().astype(int))]
    return np.sort(np.concatenate([disc, agree]))


def _disagreement_panel(ax, x: np.ndarray, y: np.ndarray, bench_wins: np.ndarray, model_wins: np.ndarray,
                        keep: np.ndarray, regression: bool) -> None:
    agree = ~(bench_wins | model_wins)
    for mask, color, label, size in (
            (agree, COLORS[6], "same decision" if not regression else "within margin", 4),
            (model_wins, COLORS[0], "model right, benchmark wrong" if not regression else "model closer", 7),
            (bench_wins, COLORS[1], "benchmark right, model wrong" if not regression else "benchmark closer", 7)):
        sel = keep[mask[keep]]
        ax.scatter(x[sel], y[sel], s=size, alpha=0.6, color=color, linewidths=0,
                   label=f"{label} ({int(mask.sum())})")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False, markerscale=1.8, handletextpad=0.2,
              ncol=1)


def comparison_figure(*, task: str, y: np.ndarray, model_score: np.ndarray,
                      benchmarks: Sequence[tuple[str, np.ndarray]], bench_wins: np.ndarray,
                      model_wins: np.ndarray, threshold: float = 0.5, max_points: int = 1000,
                      class_names: Sequence[object] | None = None) -> Figure:
    """Classification: ROC curves of model and benchmarks, and model score against the first
    benchmark's score coloured by who is right. Regression: predicted vs actual for model and the
    first benchmark, and model against benchmark prediction coloured by who is closer."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(y)
    sm = np.asarray(model_score, dtype=float)
    ref_label, sb = benchmarks[0]
    keep = _keep(bench_wins, model_wins, max_points)
    shown = f"{len(keep)} of {len(sm)} test rows shown" if len(keep) < len(sm) else f"all {len(sm)} test rows"
    with plot_style():
        fig = new_figure(6.6, 3.7)
        ax1, ax2 = fig.subplots(1, 2)
        if task == "classification" and sm.ndim == 2:  # k classes: per-class AUC and P(actual class)
            yi = y.astype(int)
            k = sm.shape[1]
            models = [("model", sm)] + list(benchmarks)
            width = 0.8 / len(models)
            for i, (label, P) in enumerate(models):
                aucs = [roc_auc_score(yi == j, P[:, j]) if 0 < np.sum(yi == j) < len(yi) else np.nan
                        for j in range(k)]
                ax1.bar(np.arange(k) + (i - (len(models) - 1) / 2) * width, aucs, width=width,
                        color=COLORS[i], label=label)
            ax1.set_xticks(np.arange(k), [str(c) for c in (class_names or range(k))])
            ax1.set(xlabel="class", ylabel="one-vs-rest AUC", title="Per-class AUC, test data")
            ax1.set_ylim(0.0, 1.01)
            ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False, ncol=1)
            rows = np.arange(len(yi))
            _disagreement_panel(ax2, sb[rows, yi], sm[rows, yi], bench_wins, model_wins, keep, regression=False)
            ax2.set(xlabel=f"{ref_label}: P(actual class)", ylabel="model: P(actual class)",
                    title="Model vs benchmark: P(actual class)", xlim=(-0.02, 1.02),
                    ylim=(-0.02, 1.02))
            caption = (f"Left: one-vs-rest AUC per class. Right: each point is a test row ({shown}); orange where "
                       "only the benchmark's predicted class is right, blue where only the model's is.")
        elif task == "classification":
            curves = [("model", sm, COLORS[0], "-")] + [
                (label, s, COLORS[1 + i], "--" if i == 0 else ":") for i, (label, s) in enumerate(benchmarks)]
            for label, s, color, ls in curves:
                fpr, tpr, _ = roc_curve(y, s)
                if len(fpr) > 400:  # thinned for a light figure
                    keep_pts = np.unique(np.linspace(0, len(fpr) - 1, 400).round().astype(int))
                    fpr, tpr = fpr[keep_pts], tpr[keep_pts]
                ax1.plot(fpr, tpr, color=color, lw=1.4, ls=ls, label=f"{label} (AUC {roc_auc_score(y, s):.3f})")
            ax1.plot([0, 1], [0, 1], color=COLORS[6], lw=0.8, ls="-", alpha=0.6)
            ax1.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curves, test data",
                    xlim=(0, 1), ylim=(0, 1.01))
            ax1.legend(loc="lower right", frameon=False)
            _disagreement_panel(ax2, sb, sm, bench_wins, model_wins, keep, regression=False)
            ax2.axvline(threshold, color=COLORS[6], lw=0.8, ls="--")
            ax2.axhline(threshold, color=COLORS[6], lw=0.8, ls="--")
            ax2.set(xlabel=f"{ref_label}: P(positive)", ylabel="model: P(positive)",
                    title=f"Model vs benchmark score (threshold {threshold:g})", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
            caption = (f"Left: ROC curves on the test data. Right: each point is a test row ({shown}); orange where "
                       "only the benchmark's decision is right, blue where only the model's is.")
        else:
            yf = y.astype(float)
            ax1.scatter(yf[keep], sb[keep], s=5, alpha=0.45, color=COLORS[1], linewidths=0, label=ref_label)
            ax1.scatter(yf[keep], sm[keep], s=5, alpha=0.45, color=COLORS[0], linewidths=0, label="model")
            lo = float(np.nanmin([yf[keep].min(), sm[keep].min(), sb[keep].min()]))
            hi = float(np.nanmax([yf[keep].max(), sm[keep].max(), sb[keep].max()]))
            ax1.plot([lo, hi], [lo, hi], color=COLORS[6], lw=0.8, ls="--")
            ax1.set(xlabel="Actual", ylabel="Predicted", title="Predicted vs actual, test data")
            ax1.legend(loc="upper left", frameon=False, markerscale=2)
            _disagreement_panel(ax2, sb, sm, bench_wins, model_wins, keep, regression=True)
            lo = float(np.nanmin([sm[keep].min(), sb[keep].min()]))
            hi = float(np.nanmax([sm[keep].max(), sb[keep].max()]))
            ax2.plot([lo, hi], [lo, hi], color=COLORS[6], lw=0.8, ls="--")
            ax2.set(xlabel=f"{ref_label} prediction", ylabel="model prediction", title="Model vs benchmark prediction")
            caption = (f"Left: predictions of both against the actual value ({shown}). Right: orange where the "
                       "benchmark's error is smaller by more than the margin, blue where the model's is.")
        return figure("benchmark_comparison", "Model against benchmark", fig, caption=caption)
