"""Figures of the input-guard and anomaly-detector remedies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from . import COLORS, new_figure


def anomaly_scores_figure(groups: Sequence[Mapping[str, Any]]) -> MplFigure | None:
    """The isolation forest's decision function per group of rows (``groups``: label and scores), as
    step histograms on shared bins, with the alarm threshold at 0 (below: flagged)."""
    groups = [g for g in groups if len(g["scores"])]
    if not groups:
        return None
    values = np.concatenate([np.asarray(g["scores"], dtype=float) for g in groups])
    lo, hi = float(min(values.min(), 0.0)), float(max(values.max(), 0.0))
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 41).tolist()
    fig = new_figure(6.0, 2.8)
    ax = fig.add_subplot()
    for i, g in enumerate(groups):
        s = np.asarray(g["scores"], dtype=float)
        ax.hist(s, bins=bins, weights=np.full(len(s), 1.0 / len(s)), histtype="step", linewidth=1.4,
                color=COLORS[i % len(COLORS)], label=f"{g['label']} ({len(s):,})")
    ax.axvline(0.0, color="black", linewidth=1.0, linestyle="--", label="threshold (below: flagged)")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend above the bars
    ax.set_xlabel("anomaly score (the isolation forest's decision function)")
    ax.set_ylabel("share of the group's rows")
    ax.legend(loc="upper right", ncols=2)
    return fig
