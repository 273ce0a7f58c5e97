"""Presentation: the audit result as report.html, report.pdf, findings.json, junit.xml and summary.md.

``view.build_view`` turns the result into plain values; ``html`` renders them with Jinja;
``pdf`` paginates that same HTML with WeasyPrint; ``json`` writes the machine-readable result;
``junit`` (one test case per check) and ``markdown`` (a short summary) are for CI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

FILENAMES: dict[str, str] = {"html": "report.html", "pdf": "report.pdf", "json": "findings.json",
                             "junit": "junit.xml", "md": "summary.md"}
FORMATS: tuple[str, ...] = tuple(FILENAMES)


def write_report(result: Any, out_dir: Path, formats: Iterable[str] = ("html", "pdf", "json"), *,
                 step: Callable[[str], None] | None = None, workers: int = 0) -> dict[str, Path]:
    """Write the requested formats (see ``FORMATS``) into ``out_dir``; return their paths.

    ``step`` is told what is being written, for progress lines. The figures (html, pdf) are drawn
    by ``workers`` processes, like ``[engine] workers``: 0 is one per core, 1 draws them here.
    """
    say = step or (lambda _text: None)
    if isinstance(formats, str):
        formats = formats.split(",")
    wanted = list(dict.fromkeys(str(f).strip().lower() for f in formats if str(f).strip()))
    unknown = [f for f in wanted if f not in FILENAMES]
    if unknown:
        raise ValueError(f"unknown report format(s): {', '.join(unknown)} (choose from {', '.join(FORMATS)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    html = paper = ""  # report.html, and the copy of it the PDF paginates (without the screen-only parts)
    if "html" in wanted or "pdf" in wanted:
        from ..plots import drawn_ahead
        from .html import render_html
        from .view import build_view

        say("drawing the figures")
        with drawn_ahead(figure_specs(result), _drawing_processes(workers)):
            view = build_view(result)
            html = render_html(view) if "html" in wanted else ""
            paper = render_html(view, paper=True) if "pdf" in wanted else ""
    _write_artifacts(result, out, say)
    for fmt in wanted:
        target = out / FILENAMES[fmt]
        say(f"writing {target.name}")
        if fmt == "json":
            from .json import write_json

            written[fmt] = write_json(result, target)
        elif fmt == "html":
            target.write_text(html, encoding="utf-8")
            written[fmt] = target
        elif fmt == "pdf":
            from .pdf import render_pdf

            written[fmt] = render_pdf(paper, target)
        elif fmt == "junit":
            from .junit import render_junit

            target.write_text(render_junit(result), encoding="utf-8")
            written[fmt] = target
        else:
            from .markdown import render_markdown

            target.write_text(render_markdown(result), encoding="utf-8")
            written[fmt] = target
    return written


def figure_specs(result: Any) -> list[Any]:
    """Every figure spec of the result: the checks', the remedies' and their remediations'."""
    specs = [f for c in result.checks for f in c.evidence.figures]
    for r in getattr(result, "remedies", ()):
        specs += list(r.output.evidence.figures)
        specs += [f for rem in r.output.remediations for f in rem.evidence.figures]
    return specs


def _drawing_processes(workers: int) -> int:
    from ..parallel import worker_count

    return worker_count(workers)


def _write_artifacts(result: Any, out: Path, say: Callable[[str], None]) -> None:
    """The remedies' files (guard, monitoring baseline, models) under ``remediation/``, whatever
    the formats: they are what a deployment takes from the audit."""
    artifacts = list(getattr(result, "artifacts", ()))
    if artifacts:
        say(f"writing {len(artifacts)} remediation file(s)")
    for artifact in artifacts:
        target = out / artifact.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(artifact.data)


__all__ = ["FILENAMES", "FORMATS", "write_report"]
