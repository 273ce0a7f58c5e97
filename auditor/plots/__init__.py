"""Figure functions: data in, a matplotlib figure out; ``draw`` turns a figure spec into SVG for the report."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from typing import Any

from matplotlib.figure import Figure as MplFigure

from ..findings import Figure

# A muted palette that prints well in grey scale too.
COLORS = ("#1f4e79", "#c55a11", "#548235", "#7f6000", "#7030a0", "#2e75b6", "#a5a5a5")
RC: Any = {  # matplotlib types rc keys as literals; these are checked by matplotlib itself
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
    # Labels come from the data (column names, category levels): "$" must never start math text
    # ("x^2 $_$" would otherwise crash the drawing). No figure uses math text on purpose.
    "text.parse_math": False,
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


# Raster layers inside the SVG figures. WeasyPrint draws SVG node by node in Python (a scatter of
# 1,000 points costs it about a second); an <image> costs it a few milliseconds. Text, axes, ticks
# and the main lines stay vectors; only dense layers become an image, at this resolution.
RASTER_DPI = 150
DENSE_ARTIST = 100  # a collection with more elements than this is drawn as an image


def rasterize_dense(fig: MplFigure) -> None:
    """Mark the dense layers of ``fig`` (scatters, many-segment line collections, meshes) rasterized.

    Figure functions may also pass ``rasterized=True`` themselves (ICE curves, for example: many
    separate lines, which matplotlib merges into one image when they are drawn one after another).
    """
    from matplotlib.collections import Collection, QuadMesh

    for ax in fig.axes:
        for artist in ax.collections:
            if not isinstance(artist, Collection) or artist.get_rasterized():
                continue
            if isinstance(artist, QuadMesh) or _elements(artist) > DENSE_ARTIST:
                artist.set_rasterized(True)


def plain_text(fig: MplFigure) -> None:
    """Draw every text of ``fig`` literally (no math text), including texts made outside
    ``plot_style``: data-derived labels may contain ``$``, ``^`` or ``_``."""
    from matplotlib.text import Text

    for t in fig.findobj(Text):
        t.set_parse_math(False)


def _elements(artist) -> int:
    """Markers of a scatter, segments of a line collection, polygons of a poly collection."""
    return max(len(artist.get_offsets()), len(artist.get_paths()))


def to_svg(fig: MplFigure) -> str:
    """SVG text with fonts as text, no XML prolog, deterministic ids, ready to embed.

    Dense layers are embedded as images (see ``rasterize_dense``), so the PDF stays quick to draw.
    """
    import matplotlib

    rasterize_dense(fig)
    plain_text(fig)
    buf = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", dpi=RASTER_DPI, metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    return _unwrap_plain_groups(svg)


_G_TAG = re.compile(r"[ \t]*(<g(?:\s[^>]*)?>|</g>)\n?")
_PLAIN_G = re.compile(r'<g(?: id="[^"<>]*")?\s*/?>')


def _unwrap_plain_groups(svg: str) -> str:
    """Drop the ``<g>`` wrappers that only carry an id (matplotlib writes one around every artist).

    They change nothing in the drawing, but WeasyPrint cascades styles into every node, so they cost
    PDF time (about half the nodes of a figure). Groups with a transform, style or clip stay.
    """
    out: list[str] = []
    keep_stack: list[bool] = []
    pos = 0
    for m in _G_TAG.finditer(svg):
        tag = m.group(1)
        if tag == "</g>":
            drop = not keep_stack.pop()
        else:
            drop = _PLAIN_G.fullmatch(tag) is not None
            if not tag.endswith("/>"):
                keep_stack.append(not drop)
        if drop:
            out.append(svg[pos:m.start()])
            pos = m.end()
    out.append(svg[pos:])
    return "".join(out)


class Uninformative(Exception):
    """Raised by a figure function whose figure would carry no information (a score surface that is
    one colour): the report leaves the figure out and shows the message, one line saying why."""


# ---- drawing ahead, in worker processes -------------------------------------------------------------
# What drawing a spec came to: ("svg", text), ("none", None) when the function had nothing to draw,
# ("omitted", why) when the figure would carry no information, ("error", "Type: message").
Outcome = tuple[str, "str | None"]
_AHEAD: dict[int, tuple[Figure, Outcome]] = {}  # id(spec) -> (spec, its outcome), inside ``drawn_ahead``
_TO_DRAW: list[Figure] = []  # the specs a forked drawing process reads (inherited, never pickled)


def outcome(spec: Figure) -> Outcome:
    """What drawing ``spec`` comes to: drawn ahead (``drawn_ahead``) or drawn now."""
    ahead = _AHEAD.get(id(spec))
    if ahead is not None and ahead[0] is spec:
        return ahead[1]
    return _draw_outcome(spec)


def _draw_outcome(spec: Figure) -> Outcome:
    try:
        svg = draw(spec)
    except Uninformative as exc:
        return ("omitted", str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken figure must not lose the report
        return ("error", f"{type(exc).__name__}: {exc}")
    return ("none", None) if svg is None else ("svg", svg)


@contextlib.contextmanager
def drawn_ahead(specs: list[Figure], workers: int) -> Iterator[None]:
    """Within the block, ``outcome(spec)`` returns the figures of ``specs`` drawn ahead by ``workers``
    forked processes (Linux; elsewhere, or for one worker, they are drawn when asked for). Drawing
    is the same function with the same style in every process, so the SVG is the same byte for byte."""
    import multiprocessing

    from ..processes import fork_available, quiet_child

    n = min(workers, len(specs))
    if n <= 1 or not fork_available():
        yield
        return
    from concurrent.futures import ProcessPoolExecutor

    _TO_DRAW[:] = specs
    try:  # an executor, not a multiprocessing.Pool: a drawing process that dies fails the map, never hangs it
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"),
                                 initializer=quiet_child) as pool:
            outcomes = list(pool.map(_draw_nth, range(len(specs))))
    except Exception:  # noqa: BLE001 - no drawing processes (limits, memory, one died): draw when asked for
        outcomes = []
    finally:
        _TO_DRAW.clear()
    _AHEAD.update({id(spec): (spec, out) for spec, out in zip(specs, outcomes)})
    try:
        yield
    finally:
        _AHEAD.clear()


def _draw_nth(i: int) -> Outcome:
    return _draw_outcome(_TO_DRAW[i])


def draw(spec: Figure) -> str | None:
    """Draw a figure spec to SVG text: call ``auditor.plots.<module>.<function>(**data)`` (or
    ``<package.module>:<function>``).

    The function returns a matplotlib figure, or None when there is nothing to draw; it raises
    ``Uninformative`` when the figure would show nothing (the report says so in one line).
    """
    import importlib

    if ":" in spec.plot:  # "package.module:function", for checks that extend auditor
        module_name, _, func_name = spec.plot.partition(":")
    else:
        module_name, _, func_name = spec.plot.rpartition(".")
        module_name = f"{__name__}.{module_name}" if module_name else ""
    if not module_name or not func_name:
        raise ValueError(f"figure {spec.name}: plot must be '<module>.<function>' of auditor.plots or "
                         f"'<package.module>:<function>', got {spec.plot!r}")
    func = getattr(importlib.import_module(module_name), func_name)
    with plot_style():
        fig = func(**dict(spec.data))
    return None if fig is None else to_svg(fig)
