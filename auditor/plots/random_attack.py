"""The random-attack figure: what became of the rows of each input family (ok, crashed, bad output)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from . import COLORS, new_figure


def outcomes_figure(families: Sequence[Mapping[str, Any]]) -> MplFigure:
    """One stacked bar per input family: the shares of its rows scored fine, crashed, or returned a
    bad output (non-finite, out of range, not summing to one, wrong shape). ``families``: the rows
    of the check's ``families`` table."""
    fig = new_figure(6.0, 0.35 * len(families) + 1.0)
    ax = fig.add_subplot()
    names = [r["family"] for r in families]
    y = np.arange(len(names))
    left = np.zeros(len(names))
    rows = np.maximum([r["rows"] for r in families], 1)
    for key, label, color in (("ok", "ok", COLORS[2]), ("crashed", "crashed", COLORS[1]),
                              ("bad", "bad output", COLORS[4])):
        vals = np.array([_bad(r) if key == "bad" else r[key] for r in families], dtype=float)
        share = vals / rows
        ax.barh(y, share, left=left, color=color, label=label)
        left += share
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of rows tried")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=3, frameon=False, borderaxespad=0.2)
    return fig


def _bad(r: Mapping[str, Any]) -> int:
    return r["non_finite"] + r["out_of_range"] + r["bad_sum"] + r["bad_shape"]
