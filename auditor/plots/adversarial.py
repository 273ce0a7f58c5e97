"""Figures for the adversarial search: the score surface over two features, and the distribution
of the smallest decision-flipping changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure as MplFigure

from ..analysis.adversarial.values import ScoreSurface
from . import COLORS, Uninformative, new_figure

FLAT_SURFACE = 0.005  # a score range below this share of the scale shows as one colour: no figure

_MARGIN_STYLE: dict[str, Any] = {"facecolor": "white", "alpha": 0.55, "hatch": "///", "edgecolor": "#7f7f7f",
                                 "linewidth": 0}


def _positions(values: Sequence, categorical: bool) -> np.ndarray:
    return np.arange(len(values), dtype=float) if categorical else np.asarray(values, dtype=float)


def _base_position(values: Sequence, categorical: bool, base: Any) -> float | None:
    if base is None:
        return None
    if categorical:
        labels = [str(v) for v in values]
        return float(labels.index(str(base))) if str(base) in labels else None
    return float(base)


def plot_score_surface(surface: ScoreSurface, *, threshold: float | None = None,
                       score_label: str = "score") -> MplFigure:
    """Heatmap of the score over the plausible grid of two features (a curve for one), other
    features at the base row; hatched bands are the margin beyond the observed range, the
    black line the decision threshold, the dot the base row."""
    _refuse_flat(surface, threshold)
    x = _positions(surface.x_values, surface.x_categorical)
    fig = new_figure(6.0, 3.6 if surface.y is not None else 3.0)
    ax = fig.add_subplot()
    if surface.y is None:
        _surface_curve(ax, surface, x, threshold, score_label)
    else:
        _surface_map(fig, ax, surface, x, threshold, score_label)
    ax.set_xlabel(surface.x)
    if surface.x_categorical:
        ax.set_xticks(x, [str(v) for v in surface.x_values], rotation=30 if len(x) > 4 else 0,
                      ha="right" if len(x) > 4 else "center")
    elif surface.x_observed is not None:
        _margins(ax, x, surface.x_observed, vertical=True)
    if not surface.x_categorical and len(x):
        ax.set_xlim(x.min(), x.max())
    return fig


def _refuse_flat(surface: ScoreSurface, threshold: float | None) -> None:
    """A surface whose score hardly moves over the whole grid would be one colour: say so instead."""
    z = np.asarray(surface.z, dtype=float)
    z = z[np.isfinite(z)]
    if not z.size:
        return
    lo, hi = float(z.min()), float(z.max())
    scale = 1.0 if threshold is not None else max(abs(lo), abs(hi), 1e-12)
    if hi - lo <= FLAT_SURFACE * scale:
        over = f"{surface.x} and {surface.y}" if surface.y is not None else str(surface.x)
        raise Uninformative(f"the score stays between {lo:.4g} and {hi:.4g} over the whole plausible range of "
                            f"{over}, so the map would be a single colour.")


def _surface_curve(ax: Axes, surface: ScoreSurface, x: np.ndarray, threshold: float | None, score_label: str) -> None:
    """One searched feature: the score along its grid."""
    z = np.ma.masked_invalid(np.asarray(surface.z, dtype=float))  # points the model failed on: blank
    ax.plot(x, z[0], color=COLORS[0], lw=1.5, marker="o" if surface.x_categorical else None, ms=3)
    if threshold is not None:
        ax.axhline(threshold, color="black", lw=0.8, ls="--", label=f"threshold {threshold:g}")
        ax.legend(loc="best", frameon=False)
    ax.set_ylabel(score_label)
    bx = _base_position(surface.x_values, surface.x_categorical, surface.base_x)
    if bx is not None:
        ax.plot([bx], [surface.base_score], "o", color="black", mec="white", ms=6, zorder=5)


def _surface_map(fig: MplFigure, ax: Axes, surface: ScoreSurface, x: np.ndarray, threshold: float | None,
                 score_label: str) -> None:
    """Two searched features: the score as a heatmap, with the threshold contour."""
    z = np.ma.masked_invalid(np.asarray(surface.z, dtype=float))  # points the model failed on: blank
    y = _positions(surface.y_values, surface.y_categorical)
    lo, hi = (float(z.min()), float(z.max())) if z.count() else (0.0, 1.0)
    norm: Normalize
    if threshold is not None:
        norm = TwoSlopeNorm(vmin=min(0.0, lo), vcenter=threshold, vmax=max(1.0, hi))
        cmap = "RdBu_r"
    else:
        norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-9)
        cmap = "viridis"
    mesh = ax.pcolormesh(x, y, z, shading="nearest", cmap=cmap, norm=norm, rasterized=True,
                         edgecolors="face", linewidth=0)
    cbar = fig.colorbar(mesh, ax=ax, shrink=0.9)
    cbar.set_label(score_label)
    numeric = not (surface.x_categorical or surface.y_categorical)
    if threshold is not None and numeric and lo < threshold < hi and len(x) > 1 and len(y) > 1:
        ax.contour(x, y, z, levels=[threshold], colors="black", linewidths=1.0)
    ax.set_ylabel(str(surface.y))
    if surface.y_categorical:
        ax.set_yticks(y, [str(v) for v in surface.y_values])
    elif surface.y_observed is not None:
        _margins(ax, y, surface.y_observed, vertical=False)
    bx = _base_position(surface.x_values, surface.x_categorical, surface.base_x)
    by = _base_position(surface.y_values, surface.y_categorical, surface.base_y)
    if bx is not None and by is not None:
        ax.plot([bx], [by], "o", color="black", mec="white", ms=6, zorder=5)


def _margins(ax: Axes, grid: np.ndarray, observed: tuple[float, float], *, vertical: bool) -> None:
    lo_obs, hi_obs = observed
    span = (grid.min(), grid.max()) if len(grid) else observed
    bands = [(span[0], lo_obs), (hi_obs, span[1])]
    for a, b in bands:
        if b > a:
            (ax.axvspan if vertical else ax.axhspan)(a, b, **_MARGIN_STYLE, zorder=3)
    for v in observed:
        (ax.axvline if vertical else ax.axhline)(v, color="#404040", lw=0.8, ls="--", zorder=4)


def plot_flip_distances(groups: Mapping[str, Sequence[float]], *, small_distance: float, top: float) -> MplFigure:
    """Stacked histogram of each row's smallest flipping change, by how confident the row's
    original decision was; the dashed line marks what counts as a small change. Distances above
    ``top`` are drawn in the last bin."""
    groups = {k: v for k, v in groups.items() if len(v)}
    values = [np.asarray(v, dtype=float) for v in groups.values()]
    bins = np.linspace(0.0, top, 25)
    fig = new_figure(6.0, 2.8)
    ax = fig.add_subplot()
    clipped = [np.minimum(v, top) for v in values]
    if values:
        ax.hist(clipped, bins=list(bins), stacked=True, label=list(groups.keys()),
                color=list(COLORS[:len(values)]), edgecolor="white", linewidth=0.4)
    ax.axvline(small_distance, color="black", ls="--", lw=1.0)
    ax.annotate(f"small change ({small_distance:g})", (small_distance, 1.0), xycoords=("data", "axes fraction"),
                xytext=(3, -10), textcoords="offset points", fontsize=7)
    ax.set_xlim(0, top)
    ax.set_xlabel("smallest change that flips the decision (std units, +1 per categorical change)")
    ax.set_ylabel("rows")
    if values:
        ax.legend(frameon=False, loc="upper right")
    return fig

