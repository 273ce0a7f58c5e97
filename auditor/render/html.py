"""HTML rendering of the report view with Jinja2 (autoescaped, strict about missing values)."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

DASH = "\u2013"


def templates_dir() -> Path:
    """Where the templates are: inside the installed package (wheel), else the repo's ``templates/``."""
    try:
        packaged = resources.files("auditor") / "templates"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, NotADirectoryError, TypeError):
        pass
    import auditor

    return Path(auditor.__file__).resolve().parent.parent / "templates"


def fmt_num(value: Any, digits: int = 4) -> str:
    """A number for people: ``digits`` significant digits, thousands separators, no float noise.

    ``None`` (NaN and infinity in the result) prints as an en dash; strings pass through.
    """
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return DASH
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    mag = abs(value)
    if mag >= 10 ** digits:
        return f"{value:,.0f}"
    if mag < 1e-3:
        return f"{value:.{max(digits - 2, 1)}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(mag)))
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.1234`` -> ``12.3%``."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return DASH if value is None else str(value)
    if not math.isfinite(value):
        return DASH
    return f"{value * 100:.{digits}f}%"


def fmt_duration(value: Any) -> str:
    if value is None or not isinstance(value, (int, float)):
        return DASH
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def fmt_value(value: Any) -> str:
    """Any table cell or metric value: numbers through ``num``, text as is."""
    return fmt_num(value) if value is None or isinstance(value, (int, float)) else str(value)


_SOFT_BREAK = re.compile(r"([/=&])(?=\S)|(\.)(?=[A-Za-z])")


def soft_breaks(value: Any) -> Markup:
    """Escaped text with break opportunities after ``/``, ``=`` and ``&`` and after a ``.`` followed
    by a letter (``fairness.proxy/age_band=under_25``), so long identifiers wrap in narrow columns
    between their parts. Never inside a name (``checking_account``) or a number (``0.146``)."""
    text = _SOFT_BREAK.sub(lambda m: (m.group(1) or m.group(2)) + "\x00", str(value))
    return Markup(str(escape(text)).replace("\x00", "<wbr>"))


def fmt_metric(value: Any, unit: str = "") -> str:
    """A metric tile's value: a share in percent (``unit == "pct"``), anything else as ``value``."""
    if unit == "pct" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt_pct(value, 1 if abs(value) >= 0.001 or value == 0 else 3)
    return fmt_value(value)


def fmt_cell(value: Any) -> str:
    """A table cell: an interval ``[low, high]`` as ``low–high``, anything else as ``value``."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{fmt_num(value[0])}{DASH}{fmt_num(value[1])}"
    return fmt_value(value)


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


@lru_cache(maxsize=4)
def _environment(folder: str) -> Environment:
    env = Environment(loader=FileSystemLoader(folder), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    env.filters.update(num=fmt_num, pct=fmt_pct, duration=fmt_duration, value=fmt_value, plural=plural,
                       wbr=soft_breaks, metric=fmt_metric, cell=fmt_cell)
    env.globals["paper"] = False  # render_html(paper=True): the PDF's copy, without what is screen-only
    return env


def environment() -> Environment:
    return _environment(str(templates_dir()))


def _stylesheet(name: str) -> Markup:
    """Our own CSS file, inlined as is (it is not user data, and escaping would break it)."""
    css = (templates_dir() / name).read_text(encoding="utf-8")
    if "</" in css:
        raise ValueError(f"{name} must not contain '</'")
    return Markup(css)


def render_html(view: dict[str, Any], *, paper: bool = False) -> str:
    """The full, self-contained report: inline CSS, figures as data: URIs, no scripts.

    ``paper=True`` is the copy WeasyPrint paginates: the same document without the elements marked
    screen-only (most of a large report's elements: the tables' unprinted rows, the further evidence,
    the sidebar). Print CSS hides them anyway, but WeasyPrint parses and styles every element it is
    given, which cost a tenth of the PDF's time on UCI Adult. The printed pages are the same."""
    template = environment().get_template("report.html.j2")
    return template.render(view=view, stylesheet=_stylesheet("report.css"), paper=paper)


def render_summary_html(view: dict[str, Any]) -> str:
    """A compact summary for Jupyter's rich display: verdict, counts, top findings."""
    return environment().get_template("summary.html.j2").render(view=view, stylesheet=_stylesheet("summary.css"))
