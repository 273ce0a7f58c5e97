"""Presentation: the audit result as report.html, report.pdf and findings.json.

``view.build_view`` turns the result into plain values; ``html`` renders them with Jinja;
``pdf`` paginates that same HTML with WeasyPrint; ``json`` writes the machine-readable result.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

FILENAMES: dict[str, str] = {"html": "report.html", "pdf": "report.pdf", "json": "findings.json"}
FORMATS: tuple[str, ...] = tuple(FILENAMES)


def write_report(result: Any, out_dir: Path, formats: Iterable[str] = FORMATS) -> dict[str, Path]:
    """Write the requested formats (``html``, ``pdf``, ``json``) into ``out_dir``; return their paths."""
    if isinstance(formats, str):
        formats = formats.split(",")
    wanted = list(dict.fromkeys(str(f).strip().lower() for f in formats if str(f).strip()))
    unknown = [f for f in wanted if f not in FILENAMES]
    if unknown:
        raise ValueError(f"unknown report format(s): {', '.join(unknown)} (choose from {', '.join(FORMATS)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    html = ""  # rendered once, for html and pdf
    if "html" in wanted or "pdf" in wanted:
        from .html import render_html
        from .view import build_view

        html = render_html(build_view(result))
    for fmt in wanted:
        target = out / FILENAMES[fmt]
        if fmt == "json":
            from .json import write_json

            written[fmt] = write_json(result, target)
        elif fmt == "html":
            target.write_text(html, encoding="utf-8")
            written[fmt] = target
        else:
            from .pdf import render_pdf

            written[fmt] = render_pdf(html, target)
    return written


__all__ = ["FILENAMES", "FORMATS", "write_report"]
