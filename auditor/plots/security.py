"""Figures of the security probes: membership ROC, extraction learning curve, attribute inference.

Each function takes the probe's analysis result and returns a matplotlib figure (the report
draws it inside ``plot_style()``); names, titles and captions are in the checks' figure specs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure as MplFigure

from ..analysis.attribute_inference import AttributeInference
from ..analysis.extraction import ExtractionResult
from ..analysis.membership import MembershipResult
from . import COLORS, new_figure


def _thin(x: np.ndarray, y: np.ndarray, max_points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= max_points:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, max_points).round().astype(int))
    return x[keep], y[keep]


def membership_figure(result: MembershipResult, *, low_fpr: float = 0.01) -> MplFigure:
    """ROC of each attack (left) and the threshold attack's signal for members and non-members (right)."""
    fig = new_figure(6.6, 3.0)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot([0, 1], [0, 1], color=COLORS[6], lw=0.8, ls=":", label="chance")
    for i, a in enumerate(result.attacks):
        x, y = _thin(a.score.roc_fpr, a.score.roc_tpr)
        ax1.plot(x, y, color=COLORS[i], lw=1.4, ls="-" if i == 0 else "--",
                 label=f"{a.name} (AUC {a.score.auc.value:.2f})")
    ax1.axvline(low_fpr, color=COLORS[6], lw=0.6)
    ax1.set_xlim(0, 1)
    ax1.set_ylim(0, 1)
    ax1.set_xlabel("false positive rate (non-members called members)")
    ax1.set_ylabel("true positive rate (members found)")
    ax1.set_title("Membership attacks (ROC)")
    ax1.legend(loc="lower right", frameon=False)

    regression = result.task != "classification"
    m, n = result.signal_member, result.signal_nonmember
    if regression:
        m, n = np.log10(np.maximum(-m, 1e-12)), np.log10(np.maximum(-n, 1e-12))
        xlabel, title = "log10 squared error", "Loss: members vs non-members"
    else:
        xlabel, title = "model's probability of the true class", "Confidence: members vs non-members"
    lo, hi = float(min(m.min(), n.min())), float(max(m.max(), n.max()))
    if hi <= lo:
        hi = lo + 1.0
    bins = np.linspace(lo, hi, 31)
    ax2.hist(n, bins=bins, color=COLORS[1], alpha=0.55, density=True, label=f"non-members ({len(n)})")
    ax2.hist(m, bins=bins, color=COLORS[0], alpha=0.55, density=True, label=f"members ({len(m)})")
    ax2.set_xlabel(xlabel)
    ax2.set_ylabel("density")
    ax2.set_title(title)
    ax2.legend(loc="upper left" if not regression else "upper right", frameon=False)
    return fig


_SOURCE_STYLE = {"real": "-", "synthetic": "--"}
_API_COLOR = {"scores": COLORS[0], "labels": COLORS[1], "predictions": COLORS[0]}


def extraction_figure(result: ExtractionResult, *, fidelity_target: float, few_queries: int) -> MplFigure:
    """Learning curve: fidelity of the best copy per query budget (left); copy vs model scores (right)."""
    cls = result.task == "classification"
    fig = new_figure(6.6, 3.0)
    ax1, ax2 = fig.subplots(1, 2)
    for source, _ in result.budgets:
        for api in result.apis:
            pts = result.curve(source, api)
            if not pts:
                continue
            xs = [p.budget for p in pts]
            ys = [p.fidelity for p in pts]
            label = f"{source} queries" + (f", {api}" if cls else "")
            ax1.plot(xs, ys, marker="o", ms=3, lw=1.3, ls=_SOURCE_STYLE.get(source, "-"),
                     color=_API_COLOR.get(api, COLORS[2]), label=label)
    ax1.axhline(fidelity_target, color=COLORS[6], lw=0.8, ls=":")
    ax1.axvline(few_queries, color=COLORS[6], lw=0.6)
    ax1.set_xscale("log")
    ticks = sorted({b for _, bs in result.budgets for b in bs})
    ax1.set_xticks(ticks, [f"{b:,}" for b in ticks])
    ax1.minorticks_off()
    ax1.set_xlabel("queries")
    ax1.set_ylabel("decision agreement with the model" if cls else "R² of copy vs model predictions")
    ax1.set_title("Copy fidelity by query budget")
    lo = min([p.fidelity for p in result.points if np.isfinite(p.fidelity)] + [fidelity_target])
    ax1.set_ylim(max(min(lo - 0.05, fidelity_target - 0.1), -0.05 if not cls else 0.0), 1.01)
    ax1.legend(loc="lower right", frameon=False)

    p = result.copy_point
    if p is not None and len(result.copy_score):
        ax2.scatter(result.eval_score, result.copy_score, s=4, alpha=0.5, color=COLORS[0], linewidths=0)
        lo2 = float(min(result.eval_score.min(), result.copy_score.min()))
        hi2 = float(max(result.eval_score.max(), result.copy_score.max()))
        ax2.plot([lo2, hi2], [lo2, hi2], color=COLORS[6], lw=0.8, ls=":")
        if cls and np.isfinite(result.threshold):
            ax2.axvline(result.threshold, color=COLORS[1], lw=0.6)
            ax2.axhline(result.threshold, color=COLORS[1], lw=0.6)
        ax2.set_title(f"Best copy: {p.budget:,} {p.source} queries")
        ax2.text(0.03, 0.97, f"{p.family} copy\nR² vs model {p.score_r2:.3f}", transform=ax2.transAxes,
                 va="top", fontsize=7)
    multi = cls and result.n_classes > 2
    ax2.set_xlabel("model: P(predicted class)" if multi else "model score" if cls else "model prediction")
    ax2.set_ylabel("copy: P(same class)" if multi else "copy score" if cls else "copy prediction")
    return fig


def attribute_figure(results: Sequence[AttributeInference]) -> MplFigure | None:
    """AUC of the three attackers per attribute, with intervals; 0.5 is chance (None: none analysed)."""
    rows = [r for r in results if r.analysed]
    if not rows:
        return None
    names = [r.attribute + (" (model input)" if r.is_feature else f" ({len(r.levels)} bins)" if r.binned else "")
             for r in rows]
    series = (("other features only", "baseline", COLORS[6]), ("features + model output", "with_output", COLORS[0]),
              ("model output alone", "output_only", COLORS[1]))
    fig = new_figure(6.0, 0.9 + 0.55 * max(len(rows), 1))
    ax = fig.subplots()
    h = 0.26
    for j, (label, attr, color) in enumerate(series):
        ys = np.arange(len(rows)) + (j - 1) * h
        vals = [getattr(r, attr).value for r in rows]
        lo = [max(getattr(r, attr).value - getattr(r, attr).low, 0) for r in rows]
        hi = [max(getattr(r, attr).high - getattr(r, attr).value, 0) for r in rows]
        ax.barh(ys, [v - 0.5 for v in vals], left=0.5, height=h * 0.9, color=color, label=label,
                xerr=[lo, hi], error_kw={"lw": 0.7, "capsize": 1.5, "ecolor": "#333333"})
    ax.axvline(0.5, color="#333333", lw=0.8)
    ax.set_yticks(np.arange(len(rows)), names)
    ax.invert_yaxis()
    ax.set_xlim(0.3, 1.0)
    ax.set_xlabel("attacker AUC for the attribute (0.5 = chance)")
    ax.set_title("Inferring protected attributes")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(rows) <= 2 else -0.2), ncol=3,
              frameon=False)
    return fig
