"""Figures of the explanation checks: the global SHAP importance bar chart."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure as MplFigure

from . import COLORS, new_figure


def importance_figure(features: Sequence[str], mean_abs: Sequence[float], *, n_features: int,
                      output: str) -> MplFigure | None:
    """Mean |SHAP| of the features shown (given most important first, drawn top down) out of
    ``n_features``; ``output`` names the explained output (``P(1)``, ``prediction``)."""
    if not len(features):
        return None
    names = list(features)[::-1]
    values = [float(v) for v in mean_abs][::-1]
    fig = new_figure(5.6, 0.6 + 0.22 * len(names))
    ax = fig.subplots()
    ax.barh(range(len(names)), values, color=COLORS[0], height=0.7)
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel=f"mean |SHAP| (effect on {output})",
           title=f"Top {len(names)} features by mean |SHAP|" if n_features > len(names) else "Features by mean |SHAP|")
    return fig
