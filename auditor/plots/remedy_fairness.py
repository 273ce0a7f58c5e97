"""Figures of the discrimination remedies: the threshold sweep (adverse impact ratio per group and
accuracy against the threshold) and the AIR-versus-AUC frontier of refitted alternatives."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure as MplFigure

from ..analysis.alternatives import CandidateScore
from ..analysis.thresholds import ThresholdSweep
from . import COLORS, new_figure

GREY = COLORS[6]
GROUP_COLORS = (COLORS[0], COLORS[4], COLORS[2], COLORS[3], COLORS[5])
MAX_LINES = 8  # groups drawn in the sweep (the table has them all)


def _xlim(sweep: ThresholdSweep, *marks: float) -> tuple[float, float]:
    """The thresholds where something changes: where the accuracy is not flat, and the marks."""
    acc = sweep.accuracy
    moving = np.flatnonzero(np.abs(np.diff(acc)) > 0) if len(acc) > 1 else np.array([], dtype=int)
    t = sweep.thresholds
    lo = float(t[max(0, moving[0] - 1)]) if moving.size else 0.0
    hi = float(t[min(len(t) - 1, moving[-1] + 2)]) if moving.size else 1.0
    lo, hi = min([lo, *marks]), max([hi, *marks])
    pad = 0.02 * max(hi - lo, 0.05)
    return max(0.0, lo - pad), min(1.0, hi + pad)


def threshold_figure(sweep: ThresholdSweep, *, current: float, proposed: float, min_ratio: float,
                     score_label: str, choice_sweep: ThresholdSweep | None = None) -> MplFigure | None:
    """Top: each judged group's adverse impact ratio against the threshold, with the ``min_ratio``
    line; bottom: accuracy and favourable rate. Current (grey) and proposed (orange) thresholds are
    marked; with ``choice_sweep`` the rows the threshold was chosen on are drawn thin."""
    if not sweep.groups or not len(sweep.thresholds):
        return None
    fig = new_figure(6.4, 3.2)
    ax1, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    t = sweep.thresholds
    for j, grp in enumerate(sweep.groups[:MAX_LINES]):
        color = GROUP_COLORS[j % len(GROUP_COLORS)]
        ax1.plot(t, sweep.air[:, j], color=color, lw=1.5, label=f"{sweep.grouping} = {grp}")
        if choice_sweep is not None:
            ax1.plot(t, choice_sweep.air[:, j], color=color, lw=0.7, alpha=0.6)
    ax1.axhline(min_ratio, color=COLORS[1], lw=1, ls="--")
    ax1.axhline(1.0, color=GREY, lw=0.6, ls=":")
    ax2.plot(t, sweep.accuracy, color=COLORS[0], lw=1.5, label="accuracy")
    ax2.plot(t, sweep.favorable_rate, color=COLORS[2], lw=1.2, ls="-.", label="favourable rate")
    if choice_sweep is not None:
        ax2.plot(t, choice_sweep.accuracy, color=COLORS[0], lw=0.7, alpha=0.6)
    for ax in (ax1, ax2):
        ax.axvline(current, color=GREY, lw=1.2)
        ax.axvline(proposed, color=COLORS[1], lw=1.2)
    top = np.nanmax(sweep.air) if np.isfinite(sweep.air).any() else 1.0
    ax1.set(ylabel="Adverse impact ratio", ylim=(0, max(1.05, min(2.0, float(top) * 1.05))),
            title=f"current {current:g} (grey), proposed {proposed:g} (orange)")
    ax2.set(xlabel=f"Threshold on {score_label}", ylabel="Share", ylim=(0, 1.02))
    ax2.set_xlim(*_xlim(sweep, current, proposed))
    ax1.legend(loc="lower right", frameon=False)
    ax2.legend(loc="lower left", frameon=False)
    return fig


def _finite(x: float) -> bool:
    return x is not None and math.isfinite(x)


def frontier_figure(model: CandidateScore, candidates: Sequence[CandidateScore], *, chosen: str | None,
                    min_ratio: float, tolerance: float, metric: str = "AUC") -> MplFigure | None:
    """Worst adverse impact ratio against AUC (or accuracy) for the user's model (star), the
    refitted candidates (dots; hollow: reference refits not proposed) and the chosen one (ringed);
    the band is the AUC the tolerance allows."""
    pts = [c for c in candidates if _finite(c.quality) and _finite(c.worst_air)]
    if not pts or not (_finite(model.quality) and _finite(model.worst_air)):
        return None
    fig = new_figure(6.4, 3.6)
    ax = fig.subplots()
    ax.axvspan(model.quality - tolerance, max([model.quality, *[c.quality for c in pts]]) + 0.01,
               color=COLORS[5], alpha=0.08, lw=0)
    ax.axhline(min_ratio, color=COLORS[1], lw=1, ls="--")
    for c in pts:
        hollow = c.reference
        color = COLORS[2] if c.family == "benchmark" else COLORS[0]
        ax.scatter([c.quality], [c.worst_air], s=28, zorder=3, facecolors="white" if hollow else color,
                   edgecolors=color, linewidths=1.0)
        ax.annotate(c.short, (c.quality, c.worst_air), xytext=(4, 3), textcoords="offset points", fontsize=6)
        if chosen is not None and c.name == chosen:
            ax.scatter([c.quality], [c.worst_air], s=110, facecolors="none", edgecolors=COLORS[1], linewidths=1.4,
                       zorder=4)
    ax.scatter([model.quality], [model.worst_air], marker="*", s=120, color=COLORS[1], zorder=5)
    ax.annotate("audited model", (model.quality, model.worst_air), xytext=(5, -9), textcoords="offset points",
                fontsize=7, color=COLORS[1])
    airs = [model.worst_air, *[c.worst_air for c in pts]]
    ax.set(xlabel=f"{metric} on the test rows (higher is better)", ylabel="Worst adverse impact ratio",
           ylim=(max(0.0, min(airs) - 0.08), max(1.02, max(airs) + 0.05)))
    return fig
