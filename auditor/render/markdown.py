"""summary.md: the verdict in GitHub-flavoured Markdown, for a pull-request comment or a CI step summary
(``$GITHUB_STEP_SUMMARY``): gate and counts, root-cause issues, the findings that trip the gate,
checks in error and, with a baseline, what changed since the previous audit.

Text from the audit (titles, messages, names) is escaped, so it never becomes markup or HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..findings import Severity, Status
from .view import format_timestamp

SEVERITY_LABELS = {"high": "High", "medium": "Medium", "low": "Low", "info": "Info"}
VERDICT = {"passed": ("✅", "PASSED"), "failed": ("❌", "FAILED"), "incomplete": ("⚠️", "NOT EVALUATED")}
MAX_ROWS = 50  # a pull-request comment stays readable; findings.json and the report have every finding

_PUNCTUATION = re.compile(r"([\\`*_\[\]|~$])")  # what could open emphasis, a link, code, a cell or math


def md(text: Any) -> str:
    """Plain text as inline Markdown: HTML characters as entities, Markdown punctuation escaped,
    line breaks as spaces (safe in a table cell)."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _PUNCTUATION.sub(r"\\\1", s)
    return " ".join(s.split())


def code(text: Any) -> str:
    """An identifier as a code span (ids and check ids hold no backtick or pipe; any other is dropped)."""
    return "`" + str(text).replace("`", "").replace("|", "") + "`"


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    align = align or ["---"] * len(header)
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |",
            *("| " + " | ".join(r) + " |" for r in rows)]


def _more(n: int, what: str) -> list[str]:
    return [f"_{n} more {what} in the report._", ""] if n > 0 else []


def render_markdown(result: Any) -> str:
    """summary.md text of an ``AuditResult``."""
    doc = result.to_json()
    info = result.info
    icon, word = VERDICT[result.gate]
    lines = [f"## {icon} Audit {md(info.name)}: gate {word}", ""]
    lines += _headline(result)
    lines += _issues(doc.get("issues") or [])
    lines += _gate_findings(result)
    errored = [c for c in result.checks if c.status is Status.ERROR]
    if errored:
        lines += ["### Checks in error", "", *(f"- {code(c.id)}: {md(c.error)}" for c in errored), ""]
    if isinstance(doc.get("diff"), Mapping):
        lines += _changes(result)
    return "\n".join(lines).rstrip() + "\n"


def _headline(result: Any) -> list[str]:
    info = result.info
    findings = result.findings
    n = {s.value: sum(c.status is s for c in result.checks) for s in Status}
    accepted = sum(f.status == "accepted" for f in findings)
    counts = result.counts
    lines = [f"**Gate:** {result.gate} (fail on {md(info.fail_on)}) · **audit:** {result.status} · "
             f"{len(result.checks)} checks: {n['ok']} ran, {n['skipped']} skipped, {n['error']} in error", ""]
    header = [SEVERITY_LABELS[s.value] for s in Severity.ordered()] + ["Accepted"]
    lines += _table(header, [[str(counts[s.value]) for s in Severity.ordered()] + [str(accepted)]],
                    ["---:"] * len(header))
    train = f", train {info.train.rows:,} rows" if info.train is not None else ""
    when = md(format_timestamp(result.started_at))
    lines += ["", f"Model {code(_name(info.model_path))} ({code(info.model_kind)}, {md(info.task)}) · "
                  f"test {info.test.rows:,} rows{train} · seed {info.seed} · {when}", ""]
    return lines


def _name(path: str) -> str:
    return str(path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or str(path)


def _issues(issues: list[Any]) -> list[str]:
    """Root causes (``issues[]`` of findings.json), most severe first."""
    rows = [i for i in issues if isinstance(i, Mapping) and i.get("severity") in SEVERITY_LABELS]
    if not rows:
        return []
    rows.sort(key=lambda i: -Severity(i["severity"]).rank)
    table = [[f"**{SEVERITY_LABELS[i['severity']]}**", md(i.get("title", "")), str(len(i.get("findings") or []))]
             for i in rows[:MAX_ROWS]]
    return ["### Root causes", "", *_table(["Severity", "Issue", "Findings"], table, ["---", "---", "---:"]), "",
            *_more(len(rows) - MAX_ROWS, "issues")]


def _gate_findings(result: Any) -> list[str]:
    level = result.info.fail_on
    if level == "none":
        return ["### Findings at or above the gate", "", "No gate: the audit ran with fail_on = none.", ""]
    tripping = result.gate_findings
    head = [f"### Open findings at or above the gate ({md(level)})", ""]
    if not tripping:
        return [*head, f"None: no open finding at or above {md(level)}.", ""]
    rows = [[f"**{SEVERITY_LABELS[f.severity.value]}**", f"{md(f.title)}<br>{code(f.id)}", code(f.check)]
            for f in tripping[:MAX_ROWS]]
    return [*head, *_table(["Severity", "Finding", "Check"], rows), "", *_more(len(tripping) - MAX_ROWS, "findings")]


def _changes(result: Any) -> list[str]:
    d = result.diff
    if d is None:
        return []
    worse = sum(c.worse for c in d.changed)
    baseline = f"{md(d.old.name or 'the baseline')} ({md(format_timestamp(d.old.started_at))})"
    lines = ["### Changes since the previous audit", "",
             f"Compared with {baseline}: {len(d.added)} new, "
             f"{len(d.resolved)} resolved, {len(d.changed)} changed ({worse} worse), {d.unchanged} unchanged"
             + (f", {len(d.not_rechecked)} not rechecked (their check did not run)" if d.not_rechecked else "")
             + ".", ""]
    rows = [["new", SEVERITY_LABELS[f.severity], f"{md(f.title)}<br>{code(f.id)}"] for f in d.added]
    rows += [["worse" if c.worse else "better", f"{SEVERITY_LABELS[c.before.severity]} → "
              f"{SEVERITY_LABELS[c.after.severity]}" if c.before.severity != c.after.severity
              else f"{SEVERITY_LABELS[c.after.severity]} ({c.before.status} → {c.after.status})",
              f"{md(c.after.title)}<br>{code(c.after.id)}"] for c in d.changed]
    rows += [["resolved", SEVERITY_LABELS[f.severity], f"{md(f.title)}<br>{code(f.id)}"] for f in d.resolved]
    rows += [["not rechecked", SEVERITY_LABELS[f.severity], f"{md(f.title)}<br>{code(f.id)}"] for f in d.not_rechecked]
    if rows:
        lines += [*_table(["Change", "Severity", "Finding"], rows[:MAX_ROWS]), "", *_more(len(rows) - MAX_ROWS,
                                                                                          "changes")]
    return lines
