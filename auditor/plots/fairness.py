"""Fairness figures: adverse impact ratios, standardized mean differences and error rates by group,
and single-feature proxy strength. Each takes the checks' analysis results and thresholds and
returns a matplotlib figure (None when there is nothing to draw); the checks name them in their
figure specs and write the captions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from ..analysis.group_metrics import DisparateImpactResult, ErrorParityResult, MeanDifferenceResult
from ..analysis.proxy import ProxyResult
from . import COLORS, new_figure

MAX_BARS = 36  # bars of the adverse impact ratio and SMD figures (the rest are in the table)
MAX_GROUPS = 16  # groups of the error-rate figure
TOP_FEATURES = 8  # features per panel of the proxy figure
GREY = COLORS[6]


def _label(name: str, group: str, limit: int = 44) -> str:
    text = f"{name} = {group}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


LABEL_CHAR = 0.0115  # width of one 6.5 pt label character, as a share of the bar axis's upper end


def _label_x(start: float, width: float, lines: Sequence[float], *, pad: float) -> float:
    """Where a bar's value label starts so that it crosses none of the vertical reference lines
    (the four-fifths line, parity): right of the bar, moved past any line it would cover."""
    x = start
    for line in sorted(lines):
        if x - pad < line < x + width + pad:
            x = line + pad
    return x


def _finite(x: float) -> bool:
    return x is not None and math.isfinite(x)


def _separators(ax: Any, breaks: Sequence[int], n: int) -> None:
    """Thin lines between the blocks of bars of different columns (bars run top to bottom)."""
    for b in breaks:
        if b < n:
            ax.axhline(n - b - 0.5, color=GREY, lw=0.5, ls="-", alpha=0.6)


# (label, AIR, eligible, is reference, p-value, interval low, interval high)
_AirBar = tuple[str, float, bool, bool, float, float, float]


def _air_color(bar: _AirBar, min_ratio: float, low_ratio: float) -> str:
    _, v, ok, ref, *_ = bar
    if ref:
        return "white"
    if not ok or not _finite(v):
        return GREY
    if v < min_ratio:
        return COLORS[1]
    return COLORS[3] if v < low_ratio else COLORS[0]


def air_figure(results: Sequence[DisparateImpactResult], *, min_ratio: float, low_ratio: float,
               max_bars: int = MAX_BARS) -> MplFigure | None:
    """Horizontal bars of the adverse impact ratio per group (reference groups at 1), with its
    interval as a whisker and the four-fifths line; grey bars are groups under the minimum size;
    ``*`` marks an unadjusted Fisher p < 0.05. The first ``max_bars`` groups are drawn."""
    items: list[_AirBar] = []
    breaks: list[int] = []
    for res in results:
        g = res.grouping
        if items:
            breaks.append(len(items))
        for r in res.rows:
            items.append((_label(g.name, r.group) + (" (reference)" if r.is_reference else ""), r.air, r.eligible,
                          r.is_reference, r.p_value, r.air_low, r.air_high))
    if not items:
        return None
    shown = items[:max_bars]
    n = len(shown)
    fig = new_figure(6.4, 0.9 + 0.2 * n)
    ax = fig.subplots()
    y = np.arange(n)[::-1]
    vals = np.array([v if _finite(v) else 0.0 for _, v, *_ in shown])
    colors = [_air_color(bar, min_ratio, low_ratio) for bar in shown]
    ax.barh(y, vals, color=colors, height=0.7, edgecolor=[GREY if c == "white" else c for c in colors],
            linewidth=0.8)
    hi = max(1.3, float(np.nanmax(vals)) * 1.08 if n else 1.3)
    _separators(ax, breaks, n)
    label_end = 0.0
    for yi, v, (_, raw, ok, ref, p, lo, up) in zip(y, vals, shown):
        if ref:
            continue
        right = v
        if ok and _finite(lo) and _finite(up):
            ax.plot([lo, min(up, hi * 1.1)], [yi, yi], color="black", lw=0.8, solid_capstyle="butt")
            right = max(v, min(up, hi * 1.1))
        text = "n/a" if not _finite(raw) else f"{raw:.2f}" + ("" if ok else " (small)")
        if ok and _finite(p):
            text += " *" if p < 0.05 else ""
        x = _label_x(min(right, hi) + hi * 0.01, len(text) * hi * LABEL_CHAR, (min_ratio, 1.0), pad=hi * 0.012)
        ax.text(x, yi, text, va="center", fontsize=6.5)
        label_end = max(label_end, x + len(text) * hi * LABEL_CHAR)
    ax.axvline(min_ratio, color=COLORS[1], ls="--", lw=1, label=f"four-fifths rule ({min_ratio:g})")
    ax.axvline(1.0, color="black", lw=0.7)
    ax.set_yticks(y, [t for t, *_ in shown])
    ax.set_xlim(0, max(hi * 1.12, label_end + hi * 0.02))
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("adverse impact ratio (favorable rate / reference group's)")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, borderaxespad=0.2)
    return fig


def smd_figure(results: Sequence[MeanDifferenceResult], *, high_smd: float, medium_smd: float,
               higher_is_favorable: bool, max_bars: int = MAX_BARS) -> MplFigure | None:
    """Horizontal bars of the standardized mean difference of the prediction per group (the
    reference groups left out); grey bars are groups under the minimum size."""
    items: list[tuple[str, float, bool, float]] = []
    breaks: list[int] = []
    for res in results:
        if items:
            breaks.append(len(items))
        items += [(_label(res.grouping.name, r.group), r.smd, r.eligible, r.p_value) for r in res.rows
                  if not r.is_reference]
    if not items:
        return None
    shown = items[:max_bars]
    n = len(shown)
    fig = new_figure(6.4, 0.9 + 0.2 * n)
    ax = fig.subplots()
    y = np.arange(n)[::-1]
    vals = np.array([v if _finite(v) else 0.0 for _, v, *_ in shown])
    sign = 1 if higher_is_favorable else -1
    colors = [GREY if not ok else COLORS[1] if sign * v <= -high_smd else COLORS[3] if sign * v <= -medium_smd
              else COLORS[0] for (_, _, ok, _), v in zip(shown, vals)]
    ax.barh(y, vals, color=colors, height=0.7)
    _separators(ax, breaks, n)
    lim = max(high_smd * 1.4, float(np.nanmax(np.abs(vals))) * 1.15)
    for x in (-high_smd, high_smd):
        ax.axvline(x, color=COLORS[1], ls="--", lw=0.9)
    for x in (-medium_smd, medium_smd):
        ax.axvline(x, color=COLORS[3], ls=":", lw=0.9)
    ax.axvline(0, color="black", lw=0.7)
    ax.set_yticks(y, [t for t, *_ in shown])
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("standardized mean difference of the prediction vs the reference group (SD)")
    return fig


def error_rates_figure(results: Sequence[ErrorParityResult], *, min_group_size: int, denial: str,
                       max_groups: int = MAX_GROUPS) -> MplFigure | None:
    """Grouped horizontal bars of TPR, FPR and FNR per group; groups under ``min_group_size`` rows
    drawn faded; ``denial`` ("fnr" or "fpr") is labelled as the wrongful denial."""
    from matplotlib.patches import Patch

    items: list[tuple[str, float, float, float, bool]] = []
    breaks: list[int] = []
    for res in results:
        g = res.grouping
        if items:
            breaks.append(len(items))
        for r in res.rows:
            items.append((_label(g.name, r.group) + (" (ref.)" if r.is_reference else ""), r.tpr, r.fpr, r.fnr,
                          r.count >= min_group_size))
    if not items:
        return None
    shown = items[:max_groups]
    n = len(shown)
    names = {"tpr": "TPR", "fpr": "FPR", "fnr": "FNR"}
    names[denial] += " (wrongful denial)"
    fig = new_figure(6.4, 1.0 + 0.36 * n)
    ax = fig.subplots()
    base = np.arange(n)[::-1].astype(float)
    h = 0.26
    handles = []
    for k, (key, color) in enumerate((("tpr", COLORS[0]), ("fpr", COLORS[1]), ("fnr", COLORS[2]))):
        vals = np.array([item[1 + k] for item in shown], dtype=float)
        alpha = np.array([1.0 if item[4] else 0.35 for item in shown])
        yk = base + (1 - k) * h
        for yi, v, a in zip(yk, vals, alpha):
            if _finite(v):
                ax.barh(yi, v, height=h, color=color, alpha=a)
        handles.append(Patch(color=color, label=names[key]))
    for b in breaks:
        if b < n:
            ax.axhline(n - b - 0.5, color=GREY, lw=0.5, alpha=0.6)
    ax.set_yticks(base, [item[0] for item in shown])
    ax.set_xlim(0, 1.0)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlabel("rate")
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    return fig


def proxy_figure(results: Sequence[ProxyResult], *, share: Mapping[str, float], medium_auc: float, high_auc: float,
                 min_importance_share: float, top: int = TOP_FEATURES) -> MplFigure | None:
    """Per protected attribute (at most three panels), the ``top`` features that best predict it
    alone (cross-validated AUC), dark where the model relies on the feature."""
    panels = [r for r in results if r.features]
    if not panels:
        return None
    k = min(len(panels), 3)
    panels = panels[:k]
    n = max(min(top, len(r.features)) for r in panels)
    fig = new_figure(6.6, 1.1 + 0.22 * n)
    axes = np.atleast_1d(fig.subplots(1, k))
    for ax, res in zip(axes, panels):
        feats = sorted(res.features, key=lambda f: (-f.auc if _finite(f.auc) else 0, f.feature))[:top]
        y = np.arange(len(feats))[::-1]
        vals = [f.auc if _finite(f.auc) else 0.5 for f in feats]
        used = [not _finite(share.get(f.feature, float("nan"))) or share[f.feature] >= min_importance_share
                for f in feats]
        ax.barh(y, [v - 0.5 for v in vals], left=0.5, height=0.7,
                color=[COLORS[0] if u else GREY for u in used], alpha=1.0)
        for x, c in ((medium_auc, COLORS[3]), (high_auc, COLORS[1])):
            ax.axvline(x, color=c, ls="--", lw=0.9)
        ax.set_yticks(y, [f.feature[:22] for f in feats])
        ax.set_xlim(0.5, 1.0)
        ax.set_ylim(-0.7, max(len(feats), 1) - 0.3)
        combined = f"all: {res.combined_auc:.2f}" if _finite(res.combined_auc) else ""
        ax.set_title(f"predicting '{res.protected[:18]}' ({combined})", loc="left")
        ax.set_xlabel("cross-validated AUC")
    return fig
