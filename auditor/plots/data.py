"""Figures of the data checks: single-feature power (leakage) and PSI by column (drift)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure as MplFigure

from ..analysis.drift import FeatureDrift
from ..analysis.leakage import FeaturePower
from ..analysis.quality import trim
from ..wording import finite
from . import COLORS, new_figure

_LEVEL_COLORS = {"high": COLORS[1], "medium": COLORS[3]}  # bars of a judged column; others COLORS[0]


def _bar_height(n: int) -> float:
    return max(1.6, 0.22 * n + 0.9)


def power_figure(powers: Sequence[FeaturePower], *, levels: Sequence[str],
                 thresholds: Sequence[tuple[float, str]], label: str) -> MplFigure:
    """Horizontal bars of each feature's held-out power alone (strongest on top), coloured by the
    level its check gave it, with the high and medium thresholds as vertical lines."""
    names = [trim(p.feature, 28) for p in powers][::-1]
    values = [p.value if finite(p.value) else 0.0 for p in powers][::-1]  # no power drawn as none
    colors = [_LEVEL_COLORS.get(lv, COLORS[0]) for lv in levels][::-1]
    fig = new_figure(6.0, _bar_height(len(names)))
    ax = fig.add_subplot()
    ax.barh(range(len(names)), values, color=colors)
    ax.set_yticks(range(len(names)), names)
    for (thr, level), style in zip(thresholds, ("-", "--")):
        ax.axvline(thr, color=COLORS[1], linestyle=style, linewidth=0.8, label=f"{level} ({thr:g})")
    r2 = bool(powers) and powers[0].metric == "r2"
    lo = 0.5 if not r2 else min(0.0, min(values, default=0.0))
    ax.set_xlim(lo, 1.0)
    ax.set_xlabel(f"held-out {label} of the feature alone")
    ax.legend(loc="lower right")
    return fig


def psi_figure(columns: Sequence[FeatureDrift], *, levels: Sequence[str], target: str, psi_medium: float,
               psi_high: float) -> MplFigure:
    """Horizontal bars of the PSI of each column (largest on top), coloured by the level its check
    gave it, with the medium and high thresholds as vertical lines."""
    names = [trim(d.feature, 28) + (" (target)" if d.feature == target else "") for d in columns][::-1]
    values = [d.psi if finite(d.psi) else 0.0 for d in columns][::-1]
    colors = [_LEVEL_COLORS.get(lv, COLORS[0]) for lv in levels][::-1]
    fig = new_figure(6.0, _bar_height(len(names)))
    ax = fig.add_subplot()
    ax.barh(range(len(names)), values, color=colors)
    ax.set_yticks(range(len(names)), names)
    ax.axvline(psi_medium, color=COLORS[3], linestyle="--", linewidth=0.8, label=f"medium ({psi_medium:g})")
    ax.axvline(psi_high, color=COLORS[1], linestyle="-", linewidth=0.8, label=f"high ({psi_high:g})")
    ax.set_xlim(0, max(psi_high * 1.2, max(values, default=0.0) * 1.05))
    ax.set_xlabel("PSI (train → test)")
    ax.legend(loc="lower right")
    return fig
