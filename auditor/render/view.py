"""The report view: an audit result turned into plain values for the templates.

``build_view(result)`` returns a dict of strings, numbers, booleans, lists and dicts only (figures
as ``data:`` URIs of their SVG text). The HTML and PDF renderings are made from this one view;
numbers stay numbers here and are formatted by the template filters.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .. import __version__
from ..findings import CheckResult, Figure, Finding, Rule, Severity, Status, Table, clean_number

TOP_FINDINGS = 8
MAX_TABLE_ROWS = 60  # WeasyPrint costs about 10 ms per row; findings.json keeps every row
SMALL_TABLE_ROWS = 15  # tables up to this many rows are kept on one page

SEVERITY_LABELS = {"high": "High", "medium": "Medium", "low": "Low", "info": "Info"}
STATUS_LABELS = {"ok": "Ran", "skipped": "Skipped", "error": "Error"}
FINDING_STATUS_LABELS = {"open": "Open", "accepted": "Accepted"}


def build_view(result: Any) -> dict[str, Any]:
    """Everything the report shows, as plain values. ``result`` is an ``AuditResult``."""
    info = result.info
    findings = list(result.findings)
    anchors = {id(f): f"finding-{n + 1}" for n, f in enumerate(findings)}
    checks = list(result.checks)
    check_titles = {c.id: c.title for c in checks}
    errored = [{"id": c.id, "title": c.title, "error": c.error, "anchor": check_anchor(c.id)}
               for c in checks if c.status is Status.ERROR]
    status_counts = {s.value: sum(c.status is s for c in checks) for s in Status}

    families = _families(checks, anchors)
    sections: list[dict[str, Any]] = [{"anchor": "summary", "title": "Executive summary", "children": []},
                {"anchor": "scope", "title": "Scope", "children": []}]
    changes = _changes(result, findings, anchors)
    if changes is not None:
        sections.insert(1, {"anchor": "changes", "title": CHANGES_TITLE, "children": []})
    remediation = _remediation(result, anchors)
    if remediation is not None:
        sections.append({"anchor": "remediation", "title": REMEDIATION_TITLE,
                         "children": [{"anchor": r["anchor"], "title": r["title"]} for r in remediation["remedies"]]})
    sections += [{"anchor": fam["anchor"], "title": fam["title"],
                  "children": [{"anchor": c["anchor"], "title": c["title"]} for c in fam["checks"]]}
                 for fam in families]
    sections.append({"anchor": "appendix", "title": "Appendix: reproducibility and sign-off",
                     "children": [{"anchor": "manifest", "title": "Reproducibility manifest"},
                                  {"anchor": "configuration", "title": "Audit configuration"},
                                  {"anchor": "signoff", "title": "Sign-off"}]})
    for n, sec in enumerate(sections, start=1):
        sec["number"] = str(n)
    numbers = {sec["anchor"]: sec["number"] for sec in sections}
    for fam in families:
        fam["number"] = numbers[fam["anchor"]]

    counts = result.counts
    causes = _causes(result, findings, anchors)
    _link_issues(families, causes["issue_links"])
    return {
        "meta": {
            "title": _text(info.title) or f"Model audit: {_text(info.name)}",
            "name": _text(info.name),
            "model_name": _model_name(info.model_path),
            "owner": _text(info.owner),
            "started_at": _text(result.started_at),
            "audit_date": format_timestamp(result.started_at),
            "duration_s": _float(result.duration_s),
            "auditor_version": __version__,
        },
        "verdict": _verdict(result, status_counts, len(checks)) | _accepted_verdict(result),
        "errored": errored,
        "counts": [{"severity": s.value, "label": SEVERITY_LABELS[s.value], "count": int(counts[s.value])}
                   for s in Severity.ordered()],
        "n_findings": len(findings),
        "top_findings": [_finding(f, anchors, check_titles) for f in findings[:TOP_FINDINGS]],
        "more_findings": max(0, len(findings) - TOP_FINDINGS),
        "issues": causes["issues"],
        "register": causes["register"],
        "n_accepted": causes["n_accepted"],
        "n_unissued": causes["n_unissued"],
        "check_counts": {"total": len(checks), **status_counts},
        "scope": _scope(result, checks),
        "families": families,
        "toc": sections,
        "section_numbers": numbers,
        "changes": changes,
        "remediation": remediation,
        "appendix": _appendix(result),
        "signoff": [{"role": r} for r in ("Prepared by", "Reviewed by", "Approved by")],
    }


# ---- helpers ---------------------------------------------------------------------------------

def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _float(value: Any) -> float | None:
    v = clean_number(value)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _plain(value: Any) -> Any:
    """A table cell or metric value as a plain scalar (str, int, float, bool or None)."""
    v = clean_number(value)
    return v if v is None or isinstance(v, (str, int, float, bool)) else str(v)


def slug(text: str) -> str:
    out = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in text.lower())
    return "-".join(p for p in out.split("-") if p) or "x"


def check_anchor(check_id: str) -> str:
    return f"check-{slug(check_id)}"


def format_timestamp(ts: str) -> str:
    """``2026-01-01T09:30:00Z`` -> ``2026-01-01 09:30 UTC``; anything else unchanged."""
    try:
        dt = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return _text(ts)
    suffix = " UTC" if dt.utcoffset() is not None and not dt.utcoffset() else ""
    return dt.strftime("%Y-%m-%d %H:%M") + suffix


def _model_name(path: str) -> str:
    p = _text(path)
    return p.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or p


def _label(key: str) -> str:
    return str(key).replace("_", " ")


def _metrics(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": str(k), "label": _label(k), "value": _plain(v)} for k, v in values.items()]


def _verdict(result: Any, status_counts: dict[str, int], total: int) -> dict[str, Any]:
    fail_on = result.info.fail_on
    gate = result.gate
    at_or_above = len(result.gate_findings)
    n_errored = len(result.errored)
    if gate == "failed":
        gate_text = (f"{at_or_above} open finding{'s' if at_or_above != 1 else ''} at or above "
                     f"the gate level ({fail_on}).")
        if n_errored:
            gate_text += f" In addition, {n_errored} check{'s' if n_errored != 1 else ''} ended in an error."
    elif gate == "incomplete":
        gate_text = (f"Not evaluated: {n_errored} check{'s' if n_errored != 1 else ''} in error "
                     f"({', '.join(result.errored)}). No open finding reached the gate level ({fail_on}) among "
                     "the checks that ran, but the evidence is incomplete, so the audit cannot pass.")
    elif fail_on == "none":
        gate_text = "No gate: the audit was run with fail_on = none."
    else:
        gate_text = f"No open finding at or above the gate level ({fail_on})."
    n_err, n_skip = status_counts["error"], status_counts["skipped"]
    if result.status == "incomplete":
        status_text = (f"{n_err} of {total} checks ended in an error; their results are missing "
                       f"from this report and the audit cannot support sign-off as it stands.")
    else:
        status_text = (f"All {total} checks ran or were skipped with a reason "
                       f"({status_counts['ok']} ran, {n_skip} skipped).")
    return {"gate": gate, "fail_on": fail_on, "gate_text": gate_text, "at_or_above_gate": at_or_above,
            "status": result.status, "status_text": status_text, "exit_code": int(result.exit_code)}


def _finding(f: Finding, anchors: Mapping[int, str], check_titles: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": f.id,
        "anchor": anchors.get(id(f), ""),
        "check": f.check,
        "check_title": check_titles.get(f.check, f.check),
        "check_anchor": check_anchor(f.check),
        "severity": f.severity.value,
        "severity_label": SEVERITY_LABELS[f.severity.value],
        "title": _text(f.title),
        "summary": _text(f.summary),
        "features": [_text(x) for x in f.features],
        "groups": [{"column": _text(c), "value": _text(v)} for c, v in f.groups],
        "metrics": _metrics(f.metrics),
        "remediation": [_text(r) for r in f.remediation],
        "evidence": [_text(e) for e in f.evidence],
        "rule": _rule_text(f.rule),
        **_acceptance(f),
    }


# ---- root causes, the findings register and waivers -------------------------------------------

def _acceptance(f: Finding) -> dict[str, Any]:
    """A finding's status and, when accepted, its waiver (reason, approver, expiry, the pattern matched)."""
    w = f.waiver
    waiver = None if w is None else {"match": _text(w.match), "reason": _text(w.reason),
                                     "approved_by": _text(w.approved_by), "expires": w.expires.isoformat()}
    status = _text(f.status)
    return {"status": status, "status_label": FINDING_STATUS_LABELS.get(status, status.capitalize()),
            "waiver": waiver}


def issue_anchor(issue_id: str) -> str:
    return f"issue-{slug(issue_id)}"


def _causes(result: Any, findings: list[Finding], anchors: Mapping[int, str]) -> dict[str, Any]:
    """The root-cause issues (with links to their findings) and the register of every finding."""
    by_id = {f.id: f for f in findings}
    anchor_of = {f.id: anchors.get(id(f), "") for f in findings}
    issues, links = [], {}
    for issue in result.issues:
        anchor = issue_anchor(issue.id)
        links.update({fid: {"id": _text(issue.id), "title": _text(issue.title), "anchor": anchor}
                      for fid in issue.findings})
        issues.append({
            "id": _text(issue.id), "anchor": anchor, "severity": issue.severity.value,
            "severity_label": SEVERITY_LABELS[issue.severity.value], "title": _text(issue.title),
            "summary": _text(issue.summary), "n_findings": len(issue.findings), "accepted": int(issue.accepted),
            "all_accepted": bool(issue.all_accepted), "grouped": issue.rule != "single",
            "findings": [{"id": _text(fid), "title": _text(by_id[fid].title), "anchor": anchor_of[fid],
                          "severity": by_id[fid].severity.value,
                          "severity_label": SEVERITY_LABELS[by_id[fid].severity.value],
                          "status": _text(by_id[fid].status)} for fid in issue.findings if fid in by_id],
        })
    register = []
    for n, f in enumerate(findings, start=1):
        row = {"number": n, "id": _text(f.id), "anchor": anchor_of[f.id], "check": _text(f.check),
               "severity": f.severity.value, "severity_label": SEVERITY_LABELS[f.severity.value],
               "title": _text(f.title), **_acceptance(f)}
        row["issue"] = links.get(f.id)
        register.append(row)
    return {"issues": issues, "register": register, "issue_links": links,
            "n_accepted": sum(f.status == "accepted" for f in findings),
            "n_unissued": sum(f.id not in links for f in findings)}


def _accepted_verdict(result: Any) -> dict[str, Any]:
    """What the waivers did to the gate: accepted findings at or above its level are not counted."""
    fail_on = result.info.fail_on
    level = Severity(fail_on).rank if fail_on != "none" else None
    accepted = list(result.accepted)
    at_gate = [f for f in accepted if level is not None and f.severity.rank >= level]
    text = ""
    if at_gate:
        text = (f"{len(at_gate)} accepted finding{'s' if len(at_gate) != 1 else ''} at or above the gate level "
                f"{'were' if len(at_gate) != 1 else 'was'} not counted: a waiver in force accepts "
                f"{'them' if len(at_gate) != 1 else 'it'} (see the findings register).")
    elif accepted:
        text = f"{len(accepted)} finding{'s are' if len(accepted) != 1 else ' is'} accepted by waivers."
    return {"accepted_text": text, "n_accepted": len(accepted), "accepted_at_gate": len(at_gate)}


def _link_issues(families: list[dict[str, Any]], links: Mapping[str, dict[str, str]]) -> None:
    """Each finding card of the chapters names the issue it belongs to (None for info findings)."""
    for fam in families:
        for check in fam["checks"]:
            for fv in check["findings"]:
                fv["issue"] = links.get(fv["id"])


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return " / ".join(_num(x) for x in v)
    return str(v)


def _rule_text(rule: Rule | None) -> str:
    """The severity rule in words: the check's own sentence, or metric, comparison and uncertainty."""
    if rule is None:
        return ""
    if rule.text:
        return _text(rule.text)
    parts = [f"{_label(rule.metric)} = {_num(rule.value)} {rule.operator} {_num(rule.threshold)}"]
    if rule.interval is not None:
        parts.append(f"interval {_num(rule.interval[0])} to {_num(rule.interval[1])}")
    if rule.p_value is not None:
        parts.append(f"p = {_num(rule.p_value)}")
    return _text("; ".join(parts))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _table(t: Table, anchor: str) -> dict[str, Any]:
    rows = [[_plain(v) for v in row] for row in t.rows[:MAX_TABLE_ROWS]]
    omitted = int(t.omitted) + max(0, len(t.rows) - MAX_TABLE_ROWS)
    numeric = []
    for j in range(len(t.columns)):
        cells = [r[j] for r in rows if j < len(r) and r[j] is not None]
        numeric.append(bool(cells) and all(_is_number(c) for c in cells))
    widths = column_widths([_text(c) for c in t.columns], rows)
    return {"name": _text(t.name), "title": _text(t.title), "caption": _text(t.caption), "anchor": anchor,
            "columns": [{"name": _text(c), "numeric": numeric[j], "width": widths[j]}
                        for j, c in enumerate(t.columns)],
            "rows": rows, "omitted": omitted, "small": len(rows) <= SMALL_TABLE_ROWS, "wide": len(t.columns) > 8}


TABLE_CHARS = 115  # about how many characters of table text fit across the page (A4, 7.8 pt)
WIDE_TABLE_CHARS = 135  # the same for wide tables, set smaller


def column_widths(columns: list[str], rows: list[list[Any]]) -> list[float]:
    """Column widths in percent from the length of their text, so tables can use a fixed layout.

    A fixed table layout is several times cheaper for WeasyPrint than the automatic one, and long
    unbroken names wrap inside their column instead of pushing the table off the page. Each column
    first gets its minimum (its longest header part, its longest number: neither should be split),
    then the room left goes to the columns whose text would like more.
    """
    if not columns:
        return []
    cap = 36 if len(columns) <= 6 else 20
    minimum, desired = [], []
    for j, name in enumerate(columns):
        # headers may wrap at spaces and after _ . / (the template adds <wbr> there); +1: bold
        header = max((len(w) for w in re.split(r"(?<=[_./])|\s+", name)), default=1) + 1
        cells = [r[j] for r in rows if j < len(r)]
        numbers = [_shown_length(v) for v in cells if v is None or isinstance(v, (int, float))]
        words = [len(w) for v in cells if isinstance(v, str) for w in v.split()]
        texts = [len(v) for v in cells if isinstance(v, str)]
        low = max([header, 3, *numbers, min(max(words, default=0), 12)]) + 2  # + 2: cell padding
        minimum.append(low)
        desired.append(max(low, min(max(texts, default=0), cap) + 2))
    budget = WIDE_TABLE_CHARS if len(columns) > 8 else TABLE_CHARS
    room, wish = budget - sum(minimum), sum(desired) - sum(minimum)
    share = 0.0 if room <= 0 or wish <= 0 else min(1.0, room / wish)
    widths = [lo + (d - lo) * share for lo, d in zip(minimum, desired)]
    total = float(sum(widths))
    return [round(100.0 * w / total, 1) for w in widths]


def _shown_length(value: Any) -> int:
    """About how many characters a cell takes once the ``num`` filter has formatted it."""
    if isinstance(value, bool) or value is None:
        return 3
    if isinstance(value, int):
        return len(f"{value:,}")
    if isinstance(value, float):
        return len(f"{value:,.0f}") if abs(value) >= 1e4 else (9 if value < 0 else 8)
    return len(_text(value))


def svg_data_uri(svg: str) -> str:
    """An SVG as a ``data:`` URI: its text stays inert inside an ``<img>``."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _figure(fig: Figure, anchor: str) -> dict[str, Any] | None:
    """A figure spec drawn for the report; None when it has nothing to draw. A figure that fails to
    draw is shown as a note naming the error (its check's findings and tables stand)."""
    from ..plots import draw

    out = {"name": _text(fig.name), "title": _text(fig.title), "caption": _text(fig.caption), "anchor": anchor,
           "src": "", "error": ""}
    try:
        svg = draw(fig)
    except Exception as exc:  # noqa: BLE001 - one broken figure must not lose the report
        out["error"] = _text(f"The figure could not be drawn ({type(exc).__name__}: {exc}).")
        return out
    if svg is None:
        return None
    out["src"] = svg_data_uri(svg)
    return out


def _check(c: CheckResult, anchors: Mapping[int, str], check_titles: Mapping[str, str]) -> dict[str, Any]:
    anchor = check_anchor(c.id)
    ev = c.evidence
    tables = [_table(t, f"{anchor}-t{i + 1}") for i, t in enumerate(ev.tables)]
    drawn = [_figure(fg, f"{anchor}-f{i + 1}") for i, fg in enumerate(ev.figures)]
    figures = [fg for fg in drawn if fg is not None]
    evidence_index = {t["name"]: t for t in tables} | {fg["name"]: fg for fg in figures}
    findings = []
    for f in c.findings:
        fv = _finding(f, anchors, check_titles)
        fv["evidence_links"] = [{"title": evidence_index[e]["title"] or e, "anchor": evidence_index[e]["anchor"]}
                                for e in fv["evidence"] if e in evidence_index]
        findings.append(fv)
    findings.sort(key=lambda x: (-Severity(x["severity"]).rank, x["id"]))
    return {
        "id": c.id,
        "title": _text(c.title) or c.id,
        "anchor": anchor,
        "status": c.status.value,
        "status_label": STATUS_LABELS[c.status.value],
        "duration_s": _float(c.duration_s),
        "reason": _text(c.reason),
        "error": _text(c.error),
        "metrics": _metrics(ev.metrics),
        "findings": findings,
        "tables": tables,
        "figures": figures,
        "notes": [_text(n) for n in ev.notes],
    }


def _families(checks: Iterable[CheckResult], anchors: Mapping[int, str]) -> list[dict[str, Any]]:
    checks = list(checks)
    titles = {c.id: c.title for c in checks}
    # the checks arrive in report order; a family's chapter opens where its first check stands
    order = list(dict.fromkeys(c.family for c in checks))
    family_titles = {c.family: c.family_title for c in checks if c.family_title}
    out = []
    for fam in order:
        members = [_check(c, anchors, titles) for c in checks if c.family == fam]
        n_findings = {s.value: sum(f["severity"] == s.value for m in members for f in m["findings"])
                      for s in Severity.ordered()}
        out.append({
            "key": fam,
            "title": family_titles.get(fam, fam.replace("_", " ").capitalize()),
            "anchor": f"family-{slug(fam)}",
            "checks": members,
            "status_counts": {s: sum(m["status"] == s for m in members) for s in STATUS_LABELS},
            "finding_counts": [{"severity": s, "label": SEVERITY_LABELS[s], "count": n}
                               for s, n in n_findings.items() if n],
        })
    return out


def _dataset(ds: Any) -> dict[str, Any] | None:
    if ds is None:
        return None
    return {"path": _text(ds.path), "sha256": _text(ds.sha256), "rows": int(ds.rows), "columns": int(ds.columns)}


def _scope(result: Any, checks: list[CheckResult]) -> dict[str, Any]:
    i = result.info
    classification = i.task == "classification"
    categorical, protected = set(i.categorical), set(i.protected)
    return {
        "model": {
            "path": _text(i.model_path),
            "kind": _text(i.model_kind),
            "sha256": _text(i.model_sha256),
            "sha256_short": _text(i.model_sha256)[:12],
            "task": _text(i.task),
            "classification": classification,
            "positive_class": _plain(i.positive_class) if classification else None,
            "favorable": _plain(i.favorable) if classification else None,
            "threshold": _float(i.threshold) if classification else None,
            "classes": [_text(str(c)) for c in i.classes],
            "multiclass": classification and len(i.classes) > 2,
        },
        "data": {
            "test": _dataset(i.test),
            "train": _dataset(i.train),
            "target": _text(i.target),
        },
        "features": [{"name": _text(f), "categorical": f in categorical, "protected": f in protected}
                     for f in i.features],
        "n_features": len(i.features),
        "n_categorical": sum(f in categorical for f in i.features),
        "protected": [{"name": _text(p), "is_feature": p in set(i.features)} for p in i.protected],
        "id_column": _text(i.id_column) if i.id_column else "",
        "reference": [{"column": _text(c), "group": _text(g)} for c, g in i.reference],
        "expectations": ([{"feature": _text(f), "text": "must not decrease as it grows" if d > 0
                           else "must not increase as it grows", "kind": "monotone"} for f, d in i.monotone]
                         + [{"feature": _text(f), "text": "immutable (never changed by searches)", "kind": "immutable"}
                            for f in i.immutable]),
        "checks": [{"id": c.id, "title": _text(c.title) or c.id, "anchor": check_anchor(c.id),
                    "status": c.status.value, "status_label": STATUS_LABELS[c.status.value],
                    "duration_s": _float(c.duration_s),
                    "detail": _text(c.error if c.status is Status.ERROR else c.reason),
                    "n_findings": len(c.findings)} for c in checks],
        "samples": [{"id": c.id, "title": _text(c.title) or c.id, "anchor": check_anchor(c.id),
                     "notes": [_text(n) for n in c.evidence.notes]} for c in checks if c.evidence.notes],
    }


def _appendix(result: Any) -> dict[str, Any]:
    i = result.info
    env = i.environment if isinstance(i.environment, Mapping) else {}
    packages = env.get("packages", {})
    packages = packages if isinstance(packages, Mapping) else {}
    hashes = [{"role": "Model", "path": _text(i.model_path), "sha256": _text(i.model_sha256)},
              {"role": "Test data", "path": _text(i.test.path), "sha256": _text(i.test.sha256)}]
    if i.train is not None:
        hashes.append({"role": "Training data", "path": _text(i.train.path), "sha256": _text(i.train.sha256)})
    hashes.append({"role": "Config", "path": _text(i.config_path), "sha256": _text(i.config_sha256)})
    hashes += [{"role": "Remediation file", "path": _text(a.path), "sha256": _text(a.sha256)}
               for a in getattr(result, "artifacts", ())]
    return {
        "auditor_version": __version__,
        "python": _text(env.get("python", "")),
        "platform": _text(env.get("platform", "")),
        "packages": [{"name": _text(k), "version": _text(v)} for k, v in sorted(packages.items())],
        "seed": int(i.seed),
        "fail_on": _text(i.fail_on),
        "started_at": _text(result.started_at),
        "duration_s": _float(result.duration_s),
        "hashes": hashes,
        "config_path": _text(i.config_path),
        "config_sha256": _text(i.config_sha256),
        "config_text": _text(i.config_text),
    }


# ---- remediation (Hall's fourth step) ------------------------------------------------------------

REMEDIATION_TITLE = "Remediation"


def _remediation(result: Any, anchors: Mapping[int, str]) -> dict[str, Any] | None:
    """The Remediation section: per remedy, its measured remediations (before/after, parameters,
    caveats, files), tables and figures; remedies not tried with the reason. None when the audit
    ran no remediation step."""
    remedies = list(getattr(result, "remedies", ()))
    if not remedies:
        return None
    finding_anchor = {f.id: anchors[id(f)] for f in result.findings if id(f) in anchors}
    finding_title = {f.id: f.title for f in result.findings}
    out = []
    for r in remedies:
        anchor = f"remedy-{slug(r.id)}"
        items = []
        for n, rem in enumerate(r.remediations, start=1):
            ra = f"{anchor}-r{n}"
            metrics = list(dict.fromkeys([*rem.before, *rem.after]))
            items.append({
                "id": _text(rem.id), "kind": _text(rem.kind), "title": _text(rem.title), "summary": _text(rem.summary),
                "anchor": ra, "verified": bool(rem.verified),
                "addresses": [{"id": a, "title": _text(finding_title.get(a, a)), "anchor": finding_anchor.get(a, "")}
                              for a in rem.addresses],
                "before_after": [{"key": k, "label": _label(k), "before": _plain(rem.before.get(k)),
                                  "after": _plain(rem.after.get(k))} for k in metrics],
                "parameters": _metrics(rem.parameters),
                "caveats": [_text(c) for c in rem.caveats],
                "artifacts": [_text(a) for a in rem.artifacts],
                "tables": [_table(t, f"{ra}-t{i + 1}") for i, t in enumerate(rem.evidence.tables)],
                "figures": [fg for fg in (_figure(f, f"{ra}-f{i + 1}") for i, f in enumerate(rem.evidence.figures))
                            if fg is not None],
            })
        ev = r.output.evidence
        out.append({
            "id": _text(r.id), "title": _text(r.title), "anchor": anchor, "status": r.status.value,
            "status_label": STATUS_LABELS[r.status.value], "reason": _text(r.reason), "error": _text(r.error),
            "remediations": items,
            "tables": [_table(t, f"{anchor}-t{i + 1}") for i, t in enumerate(ev.tables)],
            "figures": [fg for fg in (_figure(f, f"{anchor}-f{i + 1}") for i, f in enumerate(ev.figures))
                        if fg is not None],
            "notes": [_text(n) for n in r.output.notes],
            "files": [{"path": _text(a.path), "title": _text(a.title), "sha256": _text(a.sha256), "size": int(a.size)}
                      for a in r.artifacts],
        })
    n_measured = sum(len(r["remediations"]) for r in out)
    return {"remedies": out, "n_remediations": n_measured,
            "n_verified": sum(it["verified"] for r in out for it in r["remediations"]),
            "tried": [r for r in out if r["status"] == "ok"],
            "not_tried": [r for r in out if r["status"] != "ok"]}


# ---- changes since the previous audit ([audit] baseline) ----------------------------------------

CHANGES_TITLE = "Changes since the previous audit"
CHANGE_LABELS = {"new": "New", "worse": "Worse", "better": "Better", "resolved": "Resolved",
                 "not_rechecked": "Not rechecked"}


def _change_row(kind: str, f: Any, anchor: str, *, before: Any = None) -> dict[str, Any]:
    """One row of the changes table; ``f`` is a FindingState of auditor.diff (after the change)."""
    return {"kind": kind, "kind_label": CHANGE_LABELS[kind], "id": _text(f.id), "check": _text(f.check),
            "title": _text(f.title), "severity": f.severity, "severity_label": SEVERITY_LABELS[f.severity],
            "before_severity": before.severity if before is not None and before.severity != f.severity else "",
            "before_severity_label": (SEVERITY_LABELS[before.severity]
                                      if before is not None and before.severity != f.severity else ""),
            "status": _text(f.status),
            "before_status": _text(before.status) if before is not None and before.status != f.status else "",
            "anchor": anchor}


def _changes(result: Any, findings: list[Finding], anchors: Mapping[int, str]) -> dict[str, Any] | None:
    """The comparison with the baseline audit as plain values; None when the audit has no baseline."""
    d = getattr(result, "diff", None)
    if d is None:
        return None
    anchor_of = {f.id: anchors.get(id(f), "") for f in findings}
    rows = [_change_row("new", f, anchor_of.get(f.id, "")) for f in d.added]
    rows += [_change_row("worse" if c.worse else "better", c.after, anchor_of.get(c.after.id, ""), before=c.before)
             for c in d.changed]
    rows += [_change_row("resolved", f, "") for f in d.resolved]
    rows += [_change_row("not_rechecked", f, "") for f in d.not_rechecked]
    metrics = [{"check": _text(m.check), "metric": _text(m.metric), "label": _label(m.metric),
                "before": _float(m.before), "after": _float(m.after), "delta": _float(m.delta),
                "before_interval": [_float(x) for x in m.before_interval] if m.before_interval else [],
                "after_interval": [_float(x) for x in m.after_interval] if m.after_interval else [],
                "overlap": {True: "overlap", False: "do not overlap", None: ""}[m.intervals_overlap]}
               for m in d.moved_metrics]
    old = d.old
    return {
        "baseline": {"name": _text(old.name), "path": _text(old.source), "date": format_timestamp(old.started_at),
                     "model_sha256_short": _text(old.model_sha256)[:12],
                     "same_model": bool(old.model_sha256) and old.model_sha256 == result.info.model_sha256},
        "counts": {"new": len(d.added), "resolved": len(d.resolved), "changed": len(d.changed),
                   "worse": sum(c.worse for c in d.changed), "unchanged": int(d.unchanged),
                   "not_rechecked": len(d.not_rechecked)},
        "rows": rows,
        "checks": [{"id": _text(c.id), "before": _text(c.before), "after": _text(c.after),
                    "anchor": check_anchor(c.id)} for c in d.checks],
        "metrics": metrics,
        "metrics_compared": len(d.metrics),
        "has_changes": bool(d.has_changes),
    }
