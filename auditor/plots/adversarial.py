"""Figures for the adversarial search: the score surface over two features, and the distribution
of the smallest decision-flipping changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..analysis.adversarial import ScoreSurface
from ..findings import Figure
from . import COLORS, figure, new_figure, plot_style

_MARGIN_STYLE = {"facecolor": "white", "alpha": 0.55, "hatch": "///", "edgecolor": "#7f7f7f", "linewidth": 0}


def _positions(values: Sequence, categorical: bool) -> np.ndarray:
    return np.arange(len(values), dtype=float) if categorical else np.asarray(values, dtype=float)


def _base_position(values: Sequence, categorical: bool, base) -> float | None:
    if base is None:
        return None
    if categorical:
        labels = [str(v) for v in values]
        return float(labels.index(str(base))) if str(base) in labels else None
    return float(base)


def plot_score_surface(surface: ScoreSurface, *, threshold: float | None = None,
                       score_label: str = "score") -> Figure:
    """Heatmap of the score over the plausible grid of two features (a curve for one), other
    features at the base row; hatched bands are the margin beyond the observed range, the
    black line the decision threshold, the dot the base row."""
    from matplotlib.colors import Normalize, TwoSlopeNorm

    x = _positions(surface.x_values, surface.x_categorical)
    z = np.ma.masked_invalid(np.asarray(surface.z, dtype=float))  # points the model failed on: blank
    with plot_style():
        fig = new_figure(6.0, 3.6 if surface.y is not None else 3.0)
        ax = fig.add_subplot()
        if surface.y is None:
            ax.plot(x, z[0], color=COLORS[0], lw=1.5, marker="o" if surface.x_categorical else None, ms=3)
            if threshold is not None:
                ax.axhline(threshold, color="black", lw=0.8, ls="--", label=f"threshold {threshold:g}")
                ax.legend(loc="best", frameon=False)
            ax.set_ylabel(score_label)
            bx = _base_position(surface.x_values, surface.x_categorical, surface.base_x)
            if bx is not None:
                ax.plot([bx], [surface.base_score], "o", color="black", mec="white", ms=6, zorder=5)
        else:
            y = _positions(surface.y_values, surface.y_categorical)
            lo, hi = (float(z.min()), float(z.max())) if z.count() else (0.0, 1.0)
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
            ax.set_ylabel(surface.y)
            if surface.y_categorical:
                ax.set_yticks(y, [str(v) for v in surface.y_values])
            elif surface.y_observed is not None:
                _margins(ax, y, surface.y_observed, vertical=False)
            bx = _base_position(surface.x_values, surface.x_categorical, surface.base_x)
            by = _base_position(surface.y_values, surface.y_categorical, surface.base_y)
            if bx is not None and by is not None:
                ax.plot([bx], [by], "o", color="black", mec="white", ms=6, zorder=5)
        ax.set_xlabel(surface.x)
        if surface.x_categorical:
            ax.set_xticks(x, [str(v) for v in surface.x_values], rotation=30 if len(x) > 4 else 0,
                          ha="right" if len(x) > 4 else "center")
        elif surface.x_observed is not None:
            _margins(ax, x, surface.x_observed, vertical=True)
        if not surface.x_categorical and len(x):
            ax.set_xlim(x.min(), x.max())
        title = f"Score surface at row {surface.base_label}" if surface.base_label else "Score surface"
        caption = ("Model score over the plausible range of the two most important searched features, the other "
                   "features held at a typical test row (dot). Hatched bands: the margin beyond the observed "
                   "range. Black line: the decision threshold (numeric axes)." if surface.y is not None else
                   "Model score over the plausible range of the most important searched feature, the other "
                   "features held at a typical test row (dot).")
        if surface.failed:
            caption += (f" Blank: {surface.failed} grid points the model could not score (it raised or returned a "
                        "non-finite value).")
        return figure("score_surface", title, fig, caption)


def _margins(ax, grid: np.ndarray, observed: tuple[float, float], *, vertical: bool) -> None:
    lo_obs, hi_obs = observed
    span = (grid.min(), grid.max()) if len(grid) else observed
    bands = [(span[0], lo_obs), (hi_obs, span[1])]
    for a, b in bands:
        if b > a:
            (ax.axvspan if vertical else ax.axhspan)(a, b, **_MARGIN_STYLE, zorder=3)
    for v in observed:
        (ax.axvline if vertical else ax.axhline)(v, color="#404040", lw=0.8, ls="--", zorder=4)


def plot_flip_distances(groups: Mapping[str, Sequence[float]], *, small_distance: float,
                        n_without: int = 0) -> Figure:
    """Stacked histogram of each row's smallest flipping change, by how confident the row's
    original decision was; the dashed line marks what counts as a small change."""
    groups = {k: v for k, v in groups.items() if len(v)}
    values = [np.asarray(v, dtype=float) for v in groups.values()]
    allv = np.concatenate(values) if values else np.empty(0)
    top = max(4 * small_distance, float(np.quantile(allv, 0.95)) if len(allv) else 1.0)
    bins = np.linspace(0.0, top, 25)
    with plot_style():
        fig = new_figure(6.0, 2.8)
        ax = fig.add_subplot()
        clipped = [np.minimum(v, top) for v in values]
        if len(allv):
            ax.hist(clipped, bins=bins, stacked=True, label=list(groups.keys()),
                    color=list(COLORS[:len(values)]), edgecolor="white", linewidth=0.4)
        ax.axvline(small_distance, color="black", ls="--", lw=1.0)
        ax.annotate(f"small change ({small_distance:g})", (small_distance, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3, -10), textcoords="offset points", fontsize=7)
        ax.set_xlim(0, top)
        ax.set_xlabel("smallest change that flips the decision (std units, +1 per categorical change)")
        ax.set_ylabel("rows")
        if len(allv):
            ax.legend(frameon=False, loc="upper right")
        caption = (f"Distances above {top:.2g} are drawn in the last bin."
                   + (f" {n_without} searched rows had no flip within the plausible bounds." if n_without else ""))
        return figure("flip_distances", "Smallest decision-flipping change per row", fig, caption)
