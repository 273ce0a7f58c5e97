"""The detailed results as plain values: per check its key figure, metric tiles (human labels,
units, intervals folded in), findings, and the tables and figures they cite.

What goes to paper: the key figure, the findings and the evidence a finding cites (its tables cut to
``PRINT_ROWS`` rows). Everything else a check produced is in the HTML report only (``print`` is
False: the template marks it screen-only) and in findings.json. Evidence that carries no
information (a constant score surface, a surrogate tree that explains nothing) is left out with a
one-line note instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..findings import CheckResult, Figure, Finding, Severity, Status, Table, clean_number
from .labels import CHECK_PURPOSES, PCT, column_label, metric_label

MAX_TABLE_ROWS = 60  # WeasyPrint costs about 10 ms per row; findings.json keeps every row
SMALL_TABLE_ROWS = 15  # tables up to this many rows are kept on one page
PRINT_ROWS = 8  # rows of a cited table on paper; the HTML shows up to MAX_TABLE_ROWS

SEVERITY_LABELS = {"high": "High", "medium": "Medium", "low": "Low", "info": "Info"}
STATUS_LABELS = {"ok": "Ran", "skipped": "Skipped", "error": "Error"}

# a metric reported as <key> with its interval as <key>_ci_low/_ci_high or <key>_low/_high; a few
# findings name the interval after a short form of the key
_INTERVAL_SUFFIXES = (("_ci_low", "_ci_high"), ("_low", "_high"))
_SHORT_KEYS = {"adverse_impact_ratio": "air"}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _float(value: Any) -> float | None:
    v = clean_number(value)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def plain(value: Any) -> Any:
    """A table cell or metric value as a plain scalar (str, int, float, bool or None)."""
    v = clean_number(value)
    return v if v is None or isinstance(v, (str, int, float, bool)) else str(v)


def slug(text: str) -> str:
    out = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in text.lower())
    return "-".join(p for p in out.split("-") if p) or "x"


def check_anchor(check_id: str) -> str:
    return f"check-{slug(check_id)}"


def method_anchor(check_id: str) -> str:
    return f"method-{slug(check_id)}"


# ---- metric tiles ---------------------------------------------------------------------------------

def _interval_of(key: str, values: Mapping[str, Any]) -> tuple[str, str] | None:
    for base in dict.fromkeys((key, _SHORT_KEYS.get(key, key))):
        for lo, hi in _INTERVAL_SUFFIXES:
            if base + lo in values and base + hi in values:
                return base + lo, base + hi
    return None


def tiles(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Metric tiles: each key with its human label and unit, its interval folded in when the
    values carry one (``auc`` with ``auc_ci_low``/``auc_ci_high`` is one tile, not three)."""
    folded: dict[str, tuple[str, str]] = {}
    for key in values:
        pair = None if key.endswith(("_low", "_high")) else _interval_of(key, values)
        if pair is not None:
            folded[key] = pair
    hidden = {k for pair in folded.values() for k in pair}
    out = []
    for key, value in values.items():
        if key in hidden and key not in folded:
            continue
        label, unit = metric_label(key)
        v = plain(value)
        if unit == PCT and not (isinstance(v, (int, float)) and not isinstance(v, bool) and -1.5 <= v <= 1.5):
            unit = ""
        pair = folded.get(key)
        low, high = (plain(values[pair[0]]), plain(values[pair[1]])) if pair else (None, None)
        out.append({"key": str(key), "label": label, "unit": unit, "value": v,
                    "interval": [low, high] if pair and low is not None and high is not None else []})
    return out


def _tile_values(items: Iterable[dict[str, Any]]) -> set[tuple[str, Any]]:
    return {(t["key"], repr(t["value"])) for t in items}


# ---- tables ---------------------------------------------------------------------------------------

TABLE_CHARS = 115  # about how many characters of table text fit across the page (A4, 7.4 pt)
WIDE_TABLE_CHARS = 140  # the same for wide tables, set smaller
CRAMPED_TABLE_CHARS = 158  # ... and for tables whose unbreakable pieces need more, set smaller still
_BREAK_AFTER = re.compile(r"(?<=[/=&,;)\-])|(?<=\.)(?=[A-Za-z])|\s+")  # where a cell may wrap (see html.soft_breaks)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _merge_intervals(columns: list[str], rows: list[list[Any]]) -> tuple[list[str], list[list[Any]]]:
    """Adjacent ``<x>_low``/``<x>_high`` columns become one ``<x>`` interval column of [low, high] cells."""
    cols: list[tuple[str, str]] = []
    keep: list[tuple[int, ...]] = []
    j = 0
    while j < len(columns):
        name = columns[j]
        if (name.endswith("_low") and j + 1 < len(columns) and columns[j + 1] == name[:-4] + "_high"):
            cols.append(("interval", name[:-4]))
            keep.append((j, j + 1))
            j += 2
        else:
            cols.append(("plain", name))
            keep.append((j,))
            j += 1
    out_rows = []
    for row in rows:
        cells: list[Any] = []
        for idx in keep:
            vals = [row[i] if i < len(row) else None for i in idx]
            if len(idx) == 2:
                cells.append([vals[0], vals[1]] if _is_number(vals[0]) and _is_number(vals[1]) else None)
            else:
                cells.append(vals[0])
        out_rows.append(cells)
    return [_interval_header(n) if kind == "interval" else n for kind, n in cols], out_rows


def _interval_header(prefix: str) -> str:
    if prefix == "ci":
        return "Interval"
    if prefix.endswith("_ci"):
        return f"{column_label(prefix[:-3])} interval"
    if prefix.endswith("range"):
        return column_label(prefix)
    return f"{column_label(prefix)} interval"


def table(t: Table, anchor: str, *, printed: bool,
          focus: list[tuple[set[str], set[str]]] | None = None) -> dict[str, Any]:
    raw_rows = [[plain(v) for v in row] for row in t.rows[:MAX_TABLE_ROWS]]
    omitted = int(t.omitted) + max(0, len(t.rows) - MAX_TABLE_ROWS)
    names, rows = _merge_intervals([_text(c) for c in t.columns], raw_rows)
    headers = [column_label(n) for n in names]
    numeric = []
    for j in range(len(names)):
        cells = [r[j] for r in rows if j < len(r) and r[j] is not None]
        numeric.append(bool(cells) and all(_is_number(c) or isinstance(c, list) for c in cells))
    need = sum(_minimum_widths(headers, rows))
    wide = len(names) > 8 or need > TABLE_CHARS
    cramped = need > WIDE_TABLE_CHARS  # set smaller still; past CRAMPED_TABLE_CHARS words may wrap anywhere
    widths = column_widths(headers, rows, budget=CRAMPED_TABLE_CHARS if cramped else
                           WIDE_TABLE_CHARS if wide else TABLE_CHARS)
    return {"name": _text(t.name), "title": _text(t.title), "caption": _text(t.caption), "anchor": anchor,
            "columns": [{"name": headers[j], "key": names[j], "numeric": numeric[j], "width": widths[j]}
                        for j in range(len(names))],
            "rows": rows, "omitted": omitted, "small": len(rows) <= SMALL_TABLE_ROWS, "wide": wide,
            "cramped": cramped, "overfull": need > CRAMPED_TABLE_CHARS,
            "print": printed, "print_mask": _print_mask(rows, focus or []), "repeats_tiles": False}


def _print_mask(rows: list[list[Any]], focus: list[tuple[set[str], set[str]]]) -> list[bool]:
    """Which rows go to paper: all of a short table; of a long one the first ``PRINT_ROWS`` and the
    rows of each finding that cites it (those naming all of its features and group values, else all
    of its features, else any of them), so a finding's own evidence is always printed."""
    if len(rows) <= PRINT_ROWS + 2:
        return [True] * len(rows)
    mask = [i < PRINT_ROWS for i in range(len(rows))]
    cells = [{c for c in row if isinstance(c, str)} for row in rows]
    for features, groups in focus:
        hits: list[int] = []
        for wanted in (features | groups, features):
            hits = hits or [i for i, row in enumerate(cells) if wanted and wanted <= row]
        hits = hits or [i for i, row in enumerate(cells) if (features | groups) & row]
        for i in hits[:PRINT_ROWS]:
            mask[i] = True
    return mask


def _pieces(text: str) -> list[int]:
    """Lengths of the pieces a text can be wrapped into (at spaces and the soft breaks)."""
    return [len(p) for p in _BREAK_AFTER.split(text) if p]


def _minimum_widths(columns: list[str], rows: list[list[Any]]) -> list[int]:
    out = []
    for j, name in enumerate(columns):
        header = max(_pieces(name), default=1) + 1  # + 1: bold
        cells = [r[j] for r in rows if j < len(r)]
        numbers = [_shown_length(v) for v in cells if not isinstance(v, str)]
        words = [p for v in cells if isinstance(v, str) for p in _pieces(v)]
        out.append(max([header, 3, *numbers, *words]) + 2)  # + 2: cell padding
    return out


def column_widths(columns: list[str], rows: list[list[Any]], *, budget: int = TABLE_CHARS) -> list[float]:
    """Column widths in percent from the length of their text, so tables can use a fixed layout.

    A fixed table layout is several times cheaper for WeasyPrint than the automatic one. Each column
    first gets its minimum: its longest unbreakable piece (a header word, a number, a name up to its
    next soft break), so no word is ever split; the room left goes to the columns whose text would
    like more.
    """
    if not columns:
        return []
    cap = 36 if len(columns) <= 6 else 22
    minimum = _minimum_widths(columns, rows)
    desired = []
    for j, low in enumerate(minimum):
        texts = [len(v) for r in rows if j < len(r) and isinstance(v := r[j], str)]
        desired.append(max(low, min(max(texts, default=0), cap) + 2))
    room, wish = budget - sum(minimum), sum(desired) - sum(minimum)
    share = 0.0 if room <= 0 or wish <= 0 else min(1.0, room / wish)
    widths = [lo + (d - lo) * share for lo, d in zip(minimum, desired)]
    total = float(sum(widths))
    return [round(100.0 * w / total, 1) for w in widths]


def _shown_length(value: Any) -> int:
    """About how many characters a cell takes once the ``cell`` filter has formatted it."""
    if isinstance(value, list):
        return sum(_shown_length(v) for v in value) + 1
    if isinstance(value, bool) or value is None:
        return 3
    if isinstance(value, int):
        return len(f"{value:,}")
    if isinstance(value, float):
        return len(f"{value:,.0f}") if abs(value) >= 1e4 else (7 if value < 0 else 6)
    return len(_text(value))


# ---- figures --------------------------------------------------------------------------------------

def svg_data_uri(svg: str) -> str:
    """An SVG as a ``data:`` URI: its text stays inert inside an ``<img>``."""
    import base64

    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def figure(fig: Figure, anchor: str, *, printed: bool = True) -> dict[str, Any] | None:
    """A figure spec drawn for the report; None when it has nothing to draw. A figure that carries no
    information is a one-line ``omitted`` note; one that fails to draw is a note naming the error
    (its check's findings and tables stand)."""
    from ..plots import outcome

    out = {"name": _text(fig.name), "title": _text(fig.title), "caption": _text(fig.caption), "anchor": anchor,
           "src": "", "error": "", "omitted": "", "print": printed, "kind": "figure", "print_width_mm": 0.0}
    kind, svg = outcome(fig)
    if kind == "omitted":
        out["omitted"] = _text(svg)
        return out
    if kind == "error":
        out["error"] = _text(f"The figure could not be drawn ({svg}).")
        return out
    if svg is None:
        return None
    out["src"] = svg_data_uri(svg)
    size = _SVG_SIZE.search(svg[:2000])
    if size:
        out["print_width_mm"] = print_width(float(size.group(1)), float(size.group(2)))
    return out


_SVG_SIZE = re.compile(r'<svg[^>]*?\bwidth="([\d.]+)pt"[^>]*?\bheight="([\d.]+)pt"')
FIGURE_SCALE = 0.75  # figures print at three quarters of their drawn size: every figure's text alike
FIGURE_MAX_MM = 72.0  # ... but no taller than this (a simple chart drawn tall shrinks) ...
TALL_FIGURE_MAX_MM = 125.0  # ... unless it is a grid of panels (taller than wide x TALL_FIGURE)
TALL_FIGURE = 0.64
PAGE_WIDTH_MM = 180.0


def print_width(width_pt: float, height_pt: float) -> float:
    """The printed width of a figure in mm, from its drawn size in points."""
    w, h = width_pt * 25.4 / 72, height_pt * 25.4 / 72
    if w <= 0 or h <= 0:
        return 0.0
    tallest = TALL_FIGURE_MAX_MM if h > TALL_FIGURE * w else FIGURE_MAX_MM
    return round(min(w * FIGURE_SCALE, tallest * w / h, PAGE_WIDTH_MM), 1)


# ---- evidence that carries no information -----------------------------------------------------------

def _surrogate_explains_nothing(c: CheckResult) -> dict[str, str]:
    share = _float(c.evidence.metrics.get("tree_explained_share"))
    if share is None or share > 0:
        return {}
    return {"surrogate_rules": f"The surrogate tree of the residuals is not shown: on held-out rows it explains "
                               f"{share * 100:.1f}% of the residual variance, so its rules describe noise."}


UNINFORMATIVE: dict[str, Callable[[CheckResult], dict[str, str]]] = {
    "residual.analysis": _surrogate_explains_nothing,
}


# ---- one check ------------------------------------------------------------------------------------

def _cited(findings: list[Finding], *, with_info: bool = False) -> list[str]:
    """Evidence names the findings above info cite, the most severe finding's first (an info
    finding's evidence is context: it stays in the HTML report, unless ``with_info``)."""
    ordered = sorted((f for f in findings if with_info or f.severity is not Severity.INFO),
                     key=lambda f: (-f.severity.rank, f.id))
    return list(dict.fromkeys(name for f in ordered for name in f.evidence))


def rule_in_summary(rule: str, summary: str) -> bool:
    """Whether the finding's summary already states its severity rule (``Severity low: ...``), so the
    card need not print it twice."""
    body = rule.split(":", 1)[1].strip() if ":" in rule[:20] else rule.strip()
    return bool(body) and body.rstrip(".") in summary


def _evidence(c: CheckResult, anchor: str, cited: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The check's tables and figures in its own order, each marked printed or HTML-only, and the
    one-line notes of tables left out for carrying no information (a figure that carries none is
    its own one-line note)."""
    ev = c.evidence
    empty = {name: note for name, note in UNINFORMATIVE.get(c.id, lambda _c: {})(c).items() if name not in cited}
    figure_names = [f.name for f in ev.figures]
    named = _cited(list(c.findings), with_info=True)
    key = next((n for n in named if n in figure_names), figure_names[0] if figure_names else None)
    items: list[dict[str, Any]] = []
    notes = list(empty.values())
    for i, fg in enumerate(ev.figures):
        drawn = figure(fg, f"{anchor}-f{i + 1}", printed=fg.name in cited or fg.name == key)
        if drawn is not None:
            drawn["key"] = fg.name == key
            drawn["print"] = drawn["print"] or bool(drawn["omitted"])  # the one-line note, on paper too
            items.append(drawn)
    shown = _tile_numbers(tiles(ev.metrics))
    for i, t in enumerate(ev.tables):
        if t.name in empty:
            continue
        focus = [(set(f.features), {v for _, v in f.groups}) for f in c.findings
                 if t.name in f.evidence and f.severity is not Severity.INFO]
        tv = table(t, f"{anchor}-t{i + 1}", printed=t.name in cited, focus=focus)
        if tv["print"] and _repeats(tv, shown):  # the tiles above show the same numbers
            tv["print"], tv["repeats_tiles"] = False, True
        tv["kind"] = "table"
        tv["key"] = False
        items.append(tv)
    return items, notes


def _tile_numbers(items: list[dict[str, Any]]) -> set[float]:
    return {round(float(v), 6) for t in items for v in (t["value"], *t["interval"]) if _is_number(v)}


def _repeats(t: dict[str, Any], numbers: set[float]) -> bool:
    """Whether every number of a table is already a metric tile (a table of the headline metrics
    with their intervals, printed beside the same tiles, says nothing new)."""
    cells = [v for row in t["rows"] for c in row for v in (c if isinstance(c, list) else [c]) if _is_number(v)]
    return len(cells) >= 4 and all(round(float(v), 6) in numbers for v in cells)


def _lead(c: CheckResult) -> str:
    if c.status is Status.SKIPPED:
        return f"Skipped: {c.reason}"
    if c.status is Status.ERROR:
        return "This check did not complete; its results are missing."
    if not c.findings:
        return "No findings."
    counts = [(s.value, sum(f.severity is s for f in c.findings)) for s in Severity.ordered()]
    parts = ", ".join(f"{n} {s}" for s, n in counts if n)
    return f"{len(c.findings)} finding{'s' if len(c.findings) != 1 else ''}: {parts}."


def check_view(c: CheckResult, number: str, finding_view: Callable[[Finding], dict[str, Any]]) -> dict[str, Any]:
    anchor = check_anchor(c.id)
    check_tiles = tiles(c.evidence.metrics)
    cited = _cited(list(c.findings))
    items, omitted = _evidence(c, anchor, cited) if c.status is Status.OK else ([], [])
    by_name = {it["name"]: it for it in items}
    shown = _tile_values(check_tiles)
    findings = []
    for f in sorted(c.findings, key=lambda x: (-x.severity.rank, x.id)):
        fv = finding_view(f)
        fv["rule_in_summary"] = rule_in_summary(fv["rule"], fv["summary"])
        fv["tiles"] = [t for t in tiles(f.metrics) if (t["key"], repr(t["value"])) not in shown]
        fv["evidence_links"] = [{"title": by_name[e]["title"] or e, "anchor": by_name[e]["anchor"]}
                                for e in f.evidence if e in by_name]
        findings.append(fv)
    key_figure = next((it for it in items if it.get("key")), None)
    rest = [it for it in items if it is not key_figure]
    return {
        "id": c.id, "title": _text(c.title) or c.id, "anchor": anchor, "number": number,
        "status": c.status.value, "status_label": STATUS_LABELS[c.status.value],
        "duration_s": _float(c.duration_s), "reason": _text(c.reason), "error": _text(c.error),
        "purpose": CHECK_PURPOSES.get(c.id, ""), "lead": _lead(c),
        "metrics": check_tiles, "findings": findings, "key_figure": key_figure,
        "printed": [it for it in rest if it["print"]], "screen_only": [it for it in rest if not it["print"]],
        "tables": [it for it in items if it["kind"] == "table"],
        "figures": [it for it in items if it["kind"] == "figure"],
        "omitted": omitted, "notes": [_text(n) for n in c.evidence.notes],
        "method_anchor": method_anchor(c.id),
    }


def families(checks: Iterable[CheckResult], finding_view: Callable[[Finding], dict[str, Any]],
             first_number: int) -> list[dict[str, Any]]:
    """The chapters of the detailed results, numbered from ``first_number``: one per family, in report
    order (a family's chapter opens where its first check stands)."""
    checks = list(checks)
    order = list(dict.fromkeys(c.family for c in checks))
    family_titles = {c.family: c.family_title for c in checks if c.family_title}
    out = []
    for n, fam in enumerate(order, start=first_number):
        members = [check_view(c, f"{n}.{k}", finding_view)
                   for k, c in enumerate((c for c in checks if c.family == fam), start=1)]
        n_findings = {s.value: sum(f["severity"] == s.value for m in members for f in m["findings"])
                      for s in Severity.ordered()}
        out.append({
            "key": fam, "number": str(n),
            "title": family_titles.get(fam, fam.replace("_", " ").capitalize()),
            "anchor": f"family-{slug(fam)}",
            "checks": members,
            "status_counts": {s: sum(m["status"] == s for m in members) for s in STATUS_LABELS},
            "finding_counts": [{"severity": s, "label": SEVERITY_LABELS[s], "count": k}
                               for s, k in n_findings.items() if k],
        })
    return out
