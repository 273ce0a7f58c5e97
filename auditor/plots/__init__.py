"""Figure functions: a result in, an SVG figure out, drawn on an explicit matplotlib Figure."""

from __future__ import annotations

import io
import re

from matplotlib.figure import Figure as MplFigure

from ..findings import Figure

# A muted palette that prints well in grey scale too.
COLORS = ("#1f4e79", "#c55a11", "#548235", "#7f6000", "#7030a0", "#2e75b6", "#a5a5a5")
RC = {
    "svg.fonttype": "none",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "auditor",
}


def plot_style():
    """Use as ``with plot_style(): ...`` around drawing, so fonts and sizes apply to every artist."""
    import matplotlib

    return matplotlib.rc_context(RC)


def new_figure(width: float = 6.0, height: float = 3.2) -> MplFigure:
    """A figure not registered with pyplot (no global state, nothing to close).

    Draw inside ``with plot_style():`` so the report's fonts apply.
    """
    return MplFigure(figsize=(width, height), layout="constrained")


def to_svg(fig: MplFigure) -> str:
    """SVG text with fonts as text, no XML prolog, deterministic ids, ready to embed."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    return svg


def figure(name: str, title: str, fig: MplFigure, caption: str = "") -> Figure:
    return Figure(name=name, title=title, svg=to_svg(fig), caption=caption)
