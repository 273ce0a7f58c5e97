"""Residual figures: residuals against the prediction, small multiples of residuals by feature,
and the weak-segment chart. Each takes an analysis result and returns a matplotlib figure (or
None when there is nothing to draw); the report draws them inside ``plot_style()``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure

from ..analysis.residuals import ResidualPattern, Residuals
from ..analysis.segments import Interval, SegmentSearch, SliceMetrics
from ..wording import level
from . import COLORS, new_figure


def _robust_limits(values: np.ndarray, pad: float = 0.08) -> tuple[float, float] | None:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 5:
        return None
    lo, hi = np.quantile(v, [0.005, 0.995])
    if hi <= lo:
        return None
    span = hi - lo
    return float(lo - pad * span), float(hi + pad * span)


def residuals_vs_prediction(residuals: Residuals, *, rows: np.ndarray, binned: ResidualPattern,
                            confidence: float = 0.95) -> MplFigure:
    """Left: residuals against the prediction for the sampled ``rows`` (regression adds the binned
    mean with its ``confidence`` band and the binned +/- 1 SD; binary: deviance residuals by actual
    class; k classes: the row's log loss by whether the predicted class is right). Right: the
    residual distribution over every row."""
    res = residuals
    fig = new_figure(7.0, 2.8)
    fig.set_dpi(150)  # resolution of the rasterized scatter layers
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.6, 1])
    if res.task == "multiclass" and res.pred_class is not None:
        right = (np.asarray(res.pred_class) == res.y.astype(int)).astype(int)
        _classification_panels(ax, ax2, res.prediction[rows], res.loss[rows], right[rows], res.residual, right,
                               multi=True)
    elif res.task == "classification":
        _classification_panels(ax, ax2, res.prediction[rows], res.deviance[rows], res.y[rows].astype(int),
                               res.deviance, res.y.astype(int), multi=False)
    else:
        _regression_panels(ax, ax2, res.prediction[rows], res.residual[rows], binned, res.standardized,
                           confidence=confidence)
    ax.axhline(0, color="black", lw=0.6)
    ax2.set_ylabel("rows")
    shown, n_total = len(rows), res.n
    ax.set_title(f"Residuals vs prediction ({shown:,} of {n_total:,} rows shown)" if shown < n_total
                 else "Residuals vs prediction", loc="left")
    ax2.set_title("Residual distribution", loc="left")
    return fig


def _classification_panels(ax: Axes, ax2: Axes, prediction: np.ndarray, residual: np.ndarray, group: np.ndarray,
                           hist_values: np.ndarray, hist_group: np.ndarray, *, multi: bool) -> None:
    """multiclass: group 1 = predicted class right, residual = the row's log loss; binary: group =
    the actual class, residual = the deviance residual."""
    groups = (((1, "predicted class right", "prediction right"),
               (0, "predicted class wrong", "prediction wrong")) if multi else
              ((0, "actual negative", "actual negative"), (1, "actual positive", "actual positive")))
    for (g, name, _), color in zip(groups, COLORS):
        sel = group == g
        ax.scatter(prediction[sel], residual[sel], s=4, alpha=0.35, color=color, linewidths=0, label=name,
                   rasterized=True)
    ax.set_xlabel("probability of the predicted class" if multi else "predicted probability of the positive class")
    ax.set_ylabel("log loss, -log p(actual class)" if multi else "deviance residual")
    ax.set_xlim(-0.02, 1.02)
    ax.legend(loc="upper right", frameon=False, markerscale=2.5)
    for (g, _, hist_label), color in zip(groups, COLORS):
        v = hist_values[hist_group == g]
        if v.size:
            ax2.hist(v, bins=30, color=color, alpha=0.6, label=hist_label)
    ax2.set_xlabel("excess log loss (loss - entropy)" if multi else "deviance residual")
    ax2.legend(frameon=False)


def _regression_panels(ax: Axes, ax2: Axes, prediction: np.ndarray, residual: np.ndarray, binned: ResidualPattern,
                       hist_values: np.ndarray, *, confidence: float) -> None:
    ax.scatter(prediction, residual, s=4, alpha=0.3, color=COLORS[6], linewidths=0, rasterized=True)
    ok = np.isfinite(binned.x)
    x, m = binned.x[ok], binned.mean[ok]
    ax.fill_between(x, binned.low[ok], binned.high[ok], color=COLORS[0], alpha=0.25, linewidth=0)
    ax.plot(x, m, color=COLORS[0], marker="o", ms=3, lw=1.4, label=f"mean residual ({level(confidence)} CI)")
    ax.plot(x, m + binned.sd[ok], color=COLORS[1], lw=1, ls="--", label="mean +/- 1 SD")
    ax.plot(x, m - binned.sd[ok], color=COLORS[1], lw=1, ls="--")
    lim = _robust_limits(np.concatenate([residual, m + binned.sd[ok], m - binned.sd[ok]]))
    if lim:
        ax.set_ylim(*lim)
    ax.set_xlabel("prediction")
    ax.set_ylabel("residual (actual - predicted)")
    ax.legend(loc="upper left", frameon=False, fontsize=6.5)
    lim = _robust_limits(hist_values)
    v = hist_values[np.isfinite(hist_values)]
    ax2.hist(np.clip(v, *lim) if lim else v, bins=40, color=COLORS[0], alpha=0.8)
    ax2.set_xlabel("standardized residual")


def residuals_by_feature(patterns: Sequence[ResidualPattern], *, task: str) -> MplFigure | None:
    """Small multiples, most structured feature first. Regression: sampled residuals with the
    binned mean (numeric) or box plots (categorical: 25-75% box, 5-95% whiskers). Classification:
    the mean of actual minus predicted probability per bin or level, with its interval. None
    without patterns."""
    k = len(patterns)
    if k == 0:
        return None
    ncols = min(3, k)
    nrows = max(1, math.ceil(k / ncols))
    fig = new_figure(7.0, 1.95 * nrows + 0.2)
    fig.set_dpi(150)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, pat in zip(axes, patterns):
        _feature_panel(ax, pat, task)
    for ax in axes[k:]:
        ax.set_visible(False)
    ylabel = {"classification": "actual - predicted rate",
              "multiclass": "actual - predicted (class)"}.get(task, "residual")
    for i, ax in enumerate(axes[:k]):
        if i % ncols == 0:
            ax.set_ylabel(ylabel)
    return fig


# classification panels show at least +/- this many probability points, so noise looks flat
CLASSIFICATION_MIN_SPAN = 0.05


def _min_span(ax, half: float) -> None:
    lo, hi = ax.get_ylim()
    ax.set_ylim(min(lo, -half), max(hi, half))


def _short(text: str, n: int = 14) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _feature_panel(ax, pat: ResidualPattern, task: str) -> None:
    cls_txt = f" [{_short(pat.target_class, 10)}]" if pat.target_class else ""
    ax.set_title(f"{_short(pat.feature, 28)}{cls_txt}  (\u03b5\u00b2 = {pat.strength:.3f})", loc="left")
    ax.axhline(0, color="black", lw=0.6)
    ok = np.isfinite(pat.mean)
    if pat.categorical:
        pos = np.arange(len(pat.labels))
        if task == "regression" and pat.boxes:
            stats = [{"label": b.label, "q1": b.q1, "med": b.median, "q3": b.q3, "whislo": b.whislo,
                      "whishi": b.whishi, "fliers": []} for b in pat.boxes]
            ax.bxp(stats, positions=pos[: len(stats)], widths=0.55, showfliers=False, patch_artist=True,
                   boxprops={"facecolor": "#dbe5f1", "edgecolor": COLORS[0], "linewidth": 0.8},
                   medianprops={"color": COLORS[1], "linewidth": 1.2},
                   whiskerprops={"color": COLORS[0], "linewidth": 0.8}, capprops={"color": COLORS[0], "linewidth": 0.8})
            ax.plot(pos[ok], pat.mean[ok], "D", color=COLORS[0], ms=2.5)
        else:
            ax.errorbar(pos[ok], pat.mean[ok], yerr=[pat.mean[ok] - pat.low[ok], pat.high[ok] - pat.mean[ok]],
                        fmt="o", ms=3, color=COLORS[0], ecolor=COLORS[0], elinewidth=1, capsize=2)
        ax.set_xticks(pos, [_short(lab) for lab in pat.labels], rotation=35 if len(pat.labels) > 3 else 0,
                      ha="right" if len(pat.labels) > 3 else "center")
        ax.set_xlim(-0.6, len(pat.labels) - 0.4)
        if task != "regression":
            _min_span(ax, CLASSIFICATION_MIN_SPAN)
        return
    x = pat.x
    fin = ok & np.isfinite(x)
    if task == "regression":
        px, py = pat.points_x, pat.points_y
        ax.scatter(px, py, s=3, alpha=0.25, color=COLORS[6], linewidths=0, rasterized=True)
        lim = _robust_limits(np.concatenate([py, pat.low[fin], pat.high[fin]]))
        if lim:
            ax.set_ylim(*lim)
        xl = _robust_limits(px, pad=0.03)
        if xl:
            ax.set_xlim(min(xl[0], np.nanmin(x[fin]) if fin.any() else xl[0]),
                        max(xl[1], np.nanmax(x[fin]) if fin.any() else xl[1]))
    ax.fill_between(x[fin], pat.low[fin], pat.high[fin], color=COLORS[0], alpha=0.25, linewidth=0)
    ax.plot(x[fin], pat.mean[fin], color=COLORS[0], marker="o", ms=2.5, lw=1.3)
    if task != "regression":
        _min_span(ax, CLASSIFICATION_MIN_SPAN)
    miss = [i for i, lab in enumerate(pat.labels) if lab == "missing" and ok[i]]
    for i in miss:
        ax.annotate(f"missing: {pat.mean[i]:+.3g}", xy=(0.02, 0.04), xycoords="axes fraction", fontsize=6.5,
                    color=COLORS[1])
    ax.set_xlabel(_short(pat.feature, 30))


def segment_chart(search: SegmentSearch, *, confidence: float = 0.95) -> MplFigure | None:
    """Each reported segment's error metric with its interval against the overall value; None
    without segments."""
    segs = list(search.segments)
    if not segs:
        return None
    cls = search.task == "classification"
    name = "log loss" if cls else "MAE"

    def metric(m: SliceMetrics) -> Interval:
        iv = m.log_loss if cls else m.mae
        assert iv is not None
        return iv

    overall = metric(search.overall)
    ci = f"{level(confidence)} CI"
    fig = new_figure(7.0, 0.8 + 0.32 * len(segs))
    ax = fig.subplots()
    ys = np.arange(len(segs))[::-1]
    for y, s in zip(ys, segs):
        m = metric(s.test)
        ax.errorbar([m.value], [y], xerr=[[m.value - m.low], [m.high - m.value]], fmt="o", ms=4,
                    color=COLORS[1], ecolor=COLORS[1], capsize=2, elinewidth=1)
        if cls and s.test.accuracy is not None:
            ax.annotate(f"acc {s.test.accuracy.value:.2f}", xy=(m.high, y), xytext=(4, -2),
                        textcoords="offset points", fontsize=6.5, color="#404040")
    ax.axvline(overall.value, color=COLORS[0], lw=1)
    ax.axvspan(overall.low, overall.high, color=COLORS[0], alpha=0.15, linewidth=0)
    ax.set_title(f"Overall {name} {overall.value:.3g} (blue line and band: {ci})", loc="left")
    ax.set_yticks(ys, [_short(f"{s.definition} ({s.share:.0%})", 60) for s in segs])
    ax.set_xlabel(f"{name} in the segment ({ci})")
    ax.set_xlim(left=0)
    ax.set_ylim(-0.6, len(segs) - 0.4)
    return fig
