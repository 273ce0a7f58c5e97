"""Small multiples of partial dependence: PDP, ICE curves, ALE and the feature's distribution,
with points beyond the observed range, missing values and unseen levels set apart."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..analysis.partial_dependence import (
    ABOVE,
    BELOW,
    IN_RANGE,
    MISSING,
    UNSEEN,
    FeatureDependence,
    long_tailed,
    symlog,
    symlog_constant,
)
from . import COLORS

PDP_COLOR = COLORS[0]
ALE_COLOR = COLORS[1]
ICE_COLOR = "#7f8c9a"
SHADE = "#ececec"
DIST_COLOR = "#d0d0d0"
BREACH_COLOR = "#c00000"
DIST_HEIGHT = 0.2  # share of the panel height the distribution may take
PANEL_W = 2.22
AX_H = 1.25  # panel heights and margins in inches
GAP_H = 0.78
TOP_H = 0.68
BOTTOM_H = 0.55
LEFT_W = 0.5


def pdp_ice_figure(deps: Sequence[FeatureDependence], *, score_label: str = "score",
                   declared: Mapping[str, int] | None = None,
                   breaches: Mapping[str, tuple[float, float]] | None = None, columns: int = 3) -> MplFigure:
    """One panel per feature (in the given order), ``columns`` per row, sharing the y axis.

    ``declared`` marks declared monotone directions in panel titles; ``breaches`` maps a feature
    to the (from, to) interval where its PDP breaks the declared direction, drawn as a red band.
    """
    declared = declared or {}
    breaches = breaches or {}
    n = len(deps)
    cols = max(1, columns)  # full width even for few panels, so the legend fits
    rows = int(np.ceil(n / cols)) if n else 1
    ylim = _shared_ylim(deps)
    # a fixed layout (not new_figure's constrained one): on a grid of panels constrained
    # layout costs more than the drawing itself
    # whole category labels, wrapped and slanted, need room below the panels: as much as the longest
    extra = max((_label_room(dep) for dep in deps if dep.categorical), default=0.0)
    gap, bottom = GAP_H + extra, BOTTOM_H + extra
    fig = MplFigure(figsize=(PANEL_W * cols + 0.25, AX_H * rows + gap * (rows - 1) + TOP_H + bottom))
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=LEFT_W / w, right=1 - 0.1 / w, top=1 - TOP_H / h, bottom=bottom / h,
                        wspace=0.12, hspace=gap / AX_H)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        dep = deps[i]
        fwd = None
        if dep.categorical:
            positions = _categorical_panel(ax, dep)
        else:
            fwd = _numeric_panel(ax, dep)
            positions = None
        if dep.feature in breaches:
            band: tuple[Any, ...] = tuple(breaches[dep.feature])
            if fwd is not None and positions is None:
                band = tuple(float(fwd(np.array([float(b)]))[0]) for b in band)
            _breach_band(ax, band, positions)
        ax.set_ylim(*ylim)
        arrow = {1: " (declared \u2191)", -1: " (declared \u2193)"}.get(int(declared.get(dep.feature, 0)), "")
        scale = " (log x)" if not dep.categorical and _skewed(dep) else ""
        ax.set_title(_short(dep.feature, 28 - len(scale)) + scale + arrow, loc="left")
        if i % cols == 0:
            ax.set_ylabel(score_label)
        else:
            ax.tick_params(labelleft=False)
    fig.legend(handles=_legend_handles(), loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=4,
               frameon=False, handlelength=1.6, columnspacing=1.2, borderaxespad=0.2)
    return fig


# ---- panels -------------------------------------------------------------------------------------

def _skewed(dep: FeatureDependence) -> bool:
    """A long right tail (see ``long_tailed``): drawn on a symmetric log x axis so the grid points
    where the rows are stay readable."""
    return long_tailed(dep.grid.values_of(IN_RANGE))


def _x_transform(dep: FeatureDependence) -> Callable[[Any], np.ndarray]:
    """Feature value -> x position: identity, or the symmetric log for skewed features."""
    if not _skewed(dep):
        return lambda x: np.asarray(x, dtype=float)
    c = symlog_constant(dep.grid.values_of(IN_RANGE))
    return lambda x: symlog(x, c)


def _numeric_panel(ax: Axes, dep: FeatureDependence) -> Callable[[Any], np.ndarray]:
    """Draws the panel; returns the map from feature values to x positions."""
    grid = dep.grid
    fwd = _x_transform(dep)
    skewed = _skewed(dep)
    raw = np.array([np.nan if v is None else float(v) for v in grid.values], dtype=float)
    x = fwd(raw)
    kinds = np.array(grid.kinds)
    pdp = dep.pdp
    inside = kinds == IN_RANGE
    numeric_pts = kinds != MISSING
    lo, hi = np.nanmin(x[inside]), np.nanmax(x[inside])
    if skewed:
        # on a log axis points beyond the range sit at fixed steps outside it (their distance
        # would otherwise take the panel); their values are in the beyond-range table
        step_x = 0.06 * (hi - lo)
        for kind, sign, edge in ((BELOW, -1, lo), (ABOVE, 1, hi)):
            idx = np.flatnonzero(kinds == kind)
            near_first = idx[::-1] if kind == BELOW else idx
            for k, j in enumerate(near_first, start=1):
                x[j] = edge + sign * k * step_x
    xs_num = x[numeric_pts]
    left, right = np.nanmin(xs_num), np.nanmax(xs_num)
    width = (right - left) or 1.0
    miss_x = right + 0.14 * width
    pad = 0.03 * width

    _distribution_numeric(ax, dep, fwd)
    if left < lo:
        ax.axvspan(left - pad, lo, color=SHADE, lw=0, zorder=0)
    if right > hi:
        ax.axvspan(hi, right + pad, color=SHADE, lw=0, zorder=0)
    has_missing = MISSING in grid.kinds
    if has_missing:
        ax.axvspan(miss_x - 0.06 * width, miss_x + 0.06 * width, color=SHADE, lw=0, zorder=0)

    order = np.argsort(xs_num, kind="stable")
    xo = xs_num[order]
    # ICE curves as one image inside the SVG (consecutive rasterized lines are merged): many thin
    # vector lines are slow for WeasyPrint to draw and add nothing at this size
    for r in dep.ice_rows:
        ax.plot(xo, dep.ice[r, numeric_pts][order], color=ICE_COLOR, lw=0.5, alpha=0.7, zorder=2, rasterized=True)
    # PDP: solid within the observed range, dashed with open markers beyond it
    ax.plot(x[inside], pdp[inside], color=PDP_COLOR, lw=1.8, zorder=4)
    for kind, edge in ((BELOW, 0), (ABOVE, -1)):
        m = kinds == kind
        if not m.any() or not np.isfinite(pdp[m]).any():
            continue
        xe = np.concatenate([[x[inside][edge]], x[m]])
        ye = np.concatenate([[pdp[inside][edge]], pdp[m]])
        o = np.argsort(xe)
        ax.plot(xe[o], ye[o], color=PDP_COLOR, lw=1.2, ls=(0, (2, 1.5)), zorder=4)
        ax.plot(x[m], pdp[m], ls="none", marker="o", ms=3.5, mfc="white", mec=PDP_COLOR, mew=1.0, zorder=5)
    if dep.ale is not None:
        ax.plot(fwd(dep.ale.edges), dep.ale.values + dep.mean_score, color=ALE_COLOR, lw=1.1, ls=(0, (4, 2)),
                zorder=3)
    raw_ticks = _raw_ticks(float(np.nanmin(raw[inside])), float(np.nanmax(raw[inside])), fwd, skewed, hi - lo)
    pairs = [(float(fwd(np.array([t]))[0]), t) for t in raw_ticks]
    pairs = [(p, t) for p, t in pairs if left - pad <= p <= right + pad]
    ticks = [p for p, _ in pairs]
    labels = [_tick(t) for _, t in pairs]
    if has_missing:
        j = int(np.flatnonzero(kinds == MISSING)[0])
        _extra_point(ax, miss_x, pdp[j], dep.status.get(MISSING, "ok"))
        ticks.append(miss_x)
        labels.append("NaN")
        ax.set_xlim(left - pad, miss_x + 0.06 * width)
    else:
        ax.set_xlim(left - pad, right + pad)
    ax.set_xticks(ticks, labels)
    return fwd


def _raw_ticks(raw_lo: float, raw_hi: float, fwd: Callable[[Any], np.ndarray], skewed: bool,
               width: float) -> list[float]:
    """Tick values in feature units: powers of ten spread at least 12% of the panel apart on a log
    axis (``width``: the in-range width in x positions), else matplotlib's four nice values."""
    if not skewed:
        return [float(v) for v in MaxNLocator(4).tick_values(raw_lo, raw_hi)]
    top = int(np.floor(np.log10(max(abs(raw_hi), 1.0))))
    raw_ticks: list[float] = []
    for t in [0.0] + [10.0 ** k for k in range(0, top + 1)]:
        if raw_lo <= t <= raw_hi and (not raw_ticks or fwd(np.array([t]))[0] - fwd(np.array([raw_ticks[-1]]))[0]
                                      >= 0.12 * width):
            raw_ticks.append(t)
    return raw_ticks


def _categorical_panel(ax: Axes, dep: FeatureDependence) -> dict:
    """Draws the panel; returns the x position of each in-range level."""
    grid = dep.grid
    kinds = list(grid.kinds)
    pdp = dep.pdp
    inside = np.array([k == IN_RANGE for k in kinds])
    L = int(inside.sum())
    pos = np.zeros(len(kinds))
    pos[inside] = np.arange(L)
    extra_idx = [j for j, k in enumerate(kinds) if k != IN_RANGE]
    for e, j in enumerate(extra_idx):
        pos[j] = L + 0.4 + e
    if dep.level_counts and max(dep.level_counts) > 0:
        counts = np.asarray(dep.level_counts, dtype=float)
        ax.bar(np.arange(L), DIST_HEIGHT * counts / counts.max(), width=0.7, color=DIST_COLOR, lw=0, zorder=1,
               transform=ax.get_xaxis_transform())
    if extra_idx:
        ax.axvspan(L - 0.5 + 0.2, pos[extra_idx[-1]] + 0.5, color=SHADE, lw=0, zorder=0)
    for r in dep.ice_rows:
        ax.plot(np.arange(L), dep.ice[r, inside], color=ICE_COLOR, lw=0.5, alpha=0.7, zorder=2, rasterized=True)
    ax.plot(np.arange(L), pdp[inside], color=PDP_COLOR, lw=1.0, marker="s", ms=3.5, zorder=4)
    for j in extra_idx:
        _extra_point(ax, pos[j], pdp[j], dep.status.get(kinds[j], "ok"))
    labels = category_labels(dep)
    labels += ["unseen" if kinds[j] == UNSEEN else "missing" for j in extra_idx]
    ax.set_xticks(pos, labels, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, (pos[extra_idx[-1]] if extra_idx else L - 1) + 0.6)
    return {v: float(i) for i, v in enumerate(grid.values_of(IN_RANGE))}


def _breach_band(ax: Axes, interval: tuple, positions: dict | None) -> None:
    a, b = interval
    if positions is not None:
        if a not in positions or b not in positions:
            return
        a, b = positions[a], positions[b]
    ax.axvspan(min(a, b), max(a, b), color=BREACH_COLOR, alpha=0.18, lw=0, zorder=0.5)


def _extra_point(ax: Axes, x: float, y: float, status: str) -> None:
    """A missing value or unseen level: an open diamond, or a cross at the axis when refused."""
    if status == "ok" and np.isfinite(y):
        ax.plot([x], [y], ls="none", marker="D", ms=4, mfc="white", mec=PDP_COLOR, mew=1.1, zorder=5)
        return
    ax.annotate("refused" if status == "rejected" else "non-finite", (x, 0.04), xycoords=("data", "axes fraction"),
                ha="center", va="bottom", fontsize=6, color="#a00000", rotation=90)


def _distribution_numeric(ax: Axes, dep: FeatureDependence, fwd: Callable[[Any], np.ndarray] | None = None) -> None:
    """The observed distribution as a filled step histogram along the bottom of the panel."""
    if dep.hist_counts is None or dep.hist_edges is None or not np.any(dep.hist_counts):
        return
    h = np.asarray(dep.hist_counts, dtype=float) / float(np.max(dep.hist_counts))
    if _skewed(dep):
        h = np.sqrt(h)  # a spike holding most rows would flatten every other bar
    h = DIST_HEIGHT * h
    edges = fwd(dep.hist_edges) if fwd is not None else dep.hist_edges
    ax.stairs(h, edges, fill=True, color=DIST_COLOR, lw=0, zorder=1, transform=ax.get_xaxis_transform())


# ---- helpers ------------------------------------------------------------------------------------

def _shared_ylim(deps: Sequence[FeatureDependence]) -> tuple[float, float]:
    vals = []
    for dep in deps:
        vals.append(dep.pdp)
        if dep.ice_rows:
            vals.append(dep.ice[list(dep.ice_rows)].ravel())
        if dep.ale is not None:
            vals.append(dep.ale.values + dep.mean_score)
    v = np.concatenate(vals) if vals else np.array([0.0, 1.0])
    v = v[np.isfinite(v)]
    if not len(v):
        return 0.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo
    if span < 1e-9:
        span = max(abs(hi), 1.0) * 0.1
        lo, hi = lo - span / 2, hi + span / 2
    return lo - 0.06 * span, hi + 0.06 * span


def _legend_handles() -> list:
    return [
        Line2D([], [], color=PDP_COLOR, lw=1.8, label="PDP"),
        Line2D([], [], color=ICE_COLOR, lw=0.8, label="ICE (score deciles)"),
        Line2D([], [], color=ALE_COLOR, lw=1.1, ls=(0, (4, 2)), label="ALE (shifted)"),
        Line2D([], [], color=PDP_COLOR, ls="none", marker="D", ms=4, mfc="white", label="missing / unseen"),
        Patch(color=SHADE, label="beyond observed data"),
        Patch(color=DIST_COLOR, label="distribution"),
        Patch(color=BREACH_COLOR, alpha=0.18, label="monotonicity breach"),
    ]


def _tick(v: float) -> str:
    a = abs(v)
    if a >= 10_000:
        return f"{v / 1000:.0f}k"
    if a >= 1000:
        return f"{v / 1000:.1f}k".replace(".0k", "k")
    return f"{v:g}"


LABEL_LINE = 13  # characters per line of a wrapped category label under a panel
CHAR_IN = 0.052  # width of a 7 pt tick-label character, inches
LINE_IN = 0.115  # height of a tick-label line, inches
SLANT_SIN, SLANT_COS = 0.643, 0.766  # tick labels are slanted at 40 degrees
LABEL_ROOM = 0.42  # vertical room for slanted labels already in BOTTOM_H and GAP_H, inches


def wrap_label(text: str, width: int = LABEL_LINE) -> str:
    """A category level on lines of at most ``width`` characters, broken at spaces and after
    ``/`` or ``-`` only; a single longer word stays whole (never truncated)."""
    import re

    pieces = [p for p in re.split(r"(?<=[/-])|\s+", text) if p]
    lines: list[str] = []
    for piece in pieces:
        glued = bool(lines) and lines[-1].endswith(("/", "-"))
        if lines and len(lines[-1]) + len(piece) + (0 if glued else 1) <= width:
            lines[-1] = lines[-1] + ("" if glued else " ") + piece
        else:
            lines.append(piece)
    return "\n".join(lines) or text


def category_labels(dep: FeatureDependence) -> list[str]:
    """The in-range levels as whole tick labels: wrapped onto as many lines as the space between
    two slanted ticks holds (one line when the levels are dense), never cut short."""
    values = [str(v) for v in dep.grid.values_of(IN_RANGE)]
    positions = len(values) + 2.6  # the levels, the unseen and missing points, the margins
    lines = max(1, int(PANEL_W * 0.95 / positions * SLANT_SIN / LINE_IN))
    return [v if lines == 1 else wrap_label(v) if wrap_label(v).count("\n") < lines else v for v in values]


def _label_room(dep: FeatureDependence) -> float:
    """Extra inches below a categorical panel for its longest label, slanted at 40 degrees."""
    labels = [lab.split("\n") for lab in category_labels(dep)]
    need = max((max(len(line) for line in lab) * CHAR_IN * SLANT_SIN + len(lab) * LINE_IN * SLANT_COS
                for lab in labels), default=0.0)
    return max(0.0, need - LABEL_ROOM)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "\u2026"
