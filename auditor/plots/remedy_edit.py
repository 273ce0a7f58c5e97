"""Figures of the model-editing and data remedies: a feature's partial dependence before and after
a monotone constraint, and learning curves on weak segments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from ..wording import level
from . import COLORS, new_figure


def monotone_figure(*, feature: str, values: Sequence[Any], before: Sequence[float], after: Sequence[float],
                    declared: int) -> MplFigure:
    """The PDP of ``feature`` of the audited model and of the constrained refit, on the check's grid."""
    fig = new_figure(5.0, 2.6)
    ax = fig.subplots()
    x = np.asarray(values, dtype=float)
    ax.plot(x, np.asarray(before, dtype=float), marker="o", ms=3, color=COLORS[1], label="audited model")
    ax.plot(x, np.asarray(after, dtype=float), marker="o", ms=3, color=COLORS[0], label="constrained refit")
    ax.set_xlabel(feature)
    ax.set_ylabel("mean prediction (PDP)")
    ax.set_title(f"{feature}: declared {'increasing' if declared > 0 else 'decreasing'}", loc="left")
    ax.legend(frameon=False)
    return fig


def learning_curve_figure(*, curves: Sequence[Mapping[str, Any]], metric: str, confidence: float = 0.95) -> MplFigure:
    """One panel per segment: its loss on its test rows against the share of its training rows
    in the refit, with the interval band and the audited model's loss as a dashed line."""
    n = max(1, len(curves))
    fig = new_figure(min(2.6 * n + 0.6, 7.0), 2.6)
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
    for ax, c in zip(axes, curves):
        f = 100 * np.asarray(c["fractions"], dtype=float)
        loss = np.asarray(c["losses"], dtype=float)
        color = COLORS[2] if c.get("supports") else COLORS[6]
        ax.fill_between(f, np.asarray(c["low"], dtype=float), np.asarray(c["high"], dtype=float), color=color,
                        alpha=0.2, lw=0, label=f"{level(confidence)} interval")
        ax.plot(f, loss, marker="o", ms=3, color=color, label="refit")
        ax.axhline(float(c["audited"]), color=COLORS[1], lw=0.8, ls="--", label="audited model")
        ax.set_xlabel("share of the segment's training rows (%)")
        ax.set_xticks(f)
        title = str(c["segment"])
        ax.set_title(title if len(title) <= 40 else title[:39] + "…", loc="left")
    axes[0].set_ylabel(metric)
    axes[0].legend(frameon=False)
    return fig
