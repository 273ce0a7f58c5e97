"""The report view: an audit result turned into plain values for the templates.

``build_view(result)`` returns a dict of strings, numbers, booleans, lists and dicts only (figures
as ``data:`` URIs of their SVG text). The HTML and PDF renderings are made from this one view;
numbers stay numbers here and are formatted by the template filters.

The report reads in the order a reviewer signs: the cover (the verdict in one sentence), the
executive summary (issues, conditions, what was not tested), the model overview, the findings
register, the remediation, the detailed results by family (``evidence``), and the appendices
(methods and samples once per check, the glossary, the manifest and configuration, sign-off).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .. import __version__
from ..findings import CheckResult, Figure, Finding, Rule, Severity, Status, Table
from . import evidence, summary
from .evidence import (
    MAX_TABLE_ROWS,
    SEVERITY_LABELS,
    SMALL_TABLE_ROWS,
    STATUS_LABELS,
    check_anchor,
    column_widths,
    method_anchor,
    slug,
    svg_data_uri,
)
from .labels import glossary_terms, humanize, metric_label

__all__ = ["MAX_TABLE_ROWS", "SMALL_TABLE_ROWS", "build_view", "check_anchor", "column_widths", "format_timestamp",
           "slug", "svg_data_uri"]

TOP_FINDINGS = 8
FINDING_STATUS_LABELS = {"open": "Open", "accepted": "Accepted"}
APPENDICES = (("methods", "Methods and samples"), ("glossary", "Glossary"),
              ("appendix", "Reproducibility manifest and configuration"), ("signoff", "Sign-off"))


def build_view(result: Any) -> dict[str, Any]:
    """Everything the report shows, as plain values. ``result`` is an ``AuditResult``."""
    findings = list(result.findings)
    anchors = {id(f): f"finding-{n + 1}" for n, f in enumerate(findings)}
    checks = list(result.checks)
    check_titles = {c.id: c.title for c in checks}
    status_counts = {s.value: sum(c.status is s for c in checks) for s in Status}

    changes = _changes(result, findings, anchors)
    remediation = _remediation(result, anchors)
    head = ["summary", *(["changes"] if changes is not None else []), "overview", "register",
            *(["remediation"] if remediation is not None else [])]
    families = evidence.families(checks, lambda f: _finding(f, anchors, check_titles), first_number=len(head) + 1)
    sections = _sections(head, families, remediation)
    numbers = {sec["anchor"]: sec["number"] for sec in sections}

    causes = _causes(result, findings, anchors, families)
    _link_issues(families, causes["issue_links"])
    verdict = _verdict(result, status_counts, len(checks)) | _accepted_verdict(result)
    verdict |= summary.verdict_sentence(result, causes["issues"])
    view = {
        "meta": _meta(result),
        "verdict": verdict,
        "errored": [{"id": c.id, "title": c.title, "error": c.error, "anchor": check_anchor(c.id)}
                    for c in checks if c.status is Status.ERROR],
        "counts": [{"severity": s.value, "label": SEVERITY_LABELS[s.value], "count": int(result.counts[s.value])}
                   for s in Severity.ordered()],
        "n_findings": len(findings),
        "top_findings": [_finding(f, anchors, check_titles) for f in findings[:TOP_FINDINGS]],
        "more_findings": max(0, len(findings) - TOP_FINDINGS),
        "issues": causes["issues"],
        "register": causes["register"],
        "n_accepted": causes["n_accepted"],
        "n_unissued": causes["n_unissued"],
        "check_counts": {"total": len(checks), **status_counts},
        "conditions": summary.conditions(result, causes["issues"], remediation, causes["finding_refs"]),
        "not_tested": summary.not_tested(result),
        "overview": summary.overview(result),
        "scope": _scope(result),
        "families": families,
        "toc": sections,
        "section_numbers": numbers,
        "changes": changes,
        "remediation": remediation,
        "methods": _methods(families),
        "appendix": _appendix(result),
        "signoff": [{"role": r} for r in ("Prepared by", "Reviewed by", "Approved by")],
    }
    view["glossary"] = [{"term": t.term, "definition": t.definition} for t in glossary_terms(list(_strings(view)))]
    return view


# ---- helpers ---------------------------------------------------------------------------------

def _text(value: Any) -> str:
    return "" if value is None else str(value)


_float = evidence._float
_plain = evidence.plain


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
    return metric_label(key)[0]


def _metrics(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return evidence.tiles(values)


def _table(t: Table, anchor: str) -> dict[str, Any]:
    return evidence.table(t, anchor, printed=True)


def _figure(fig: Figure, anchor: str) -> dict[str, Any] | None:
    return evidence.figure(fig, anchor)


def _strings(value: Any) -> Iterable[str]:
    """Every text of the view (figure data and the configuration file aside), for the glossary."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in ("src", "config_text", "anchor", "id", "hashes", "packages"):
                yield from _strings(v)


def _meta(result: Any) -> dict[str, Any]:
    info = result.info
    title = getattr(info, "report_title", "") or _text(info.title) or f"Model audit: {_text(info.name)}"
    return {
        "title": _text(title),
        "name": _text(info.name),
        "model_name": _model_name(info.model_path),
        "model_kind": _text(info.model_kind),
        "model_sha256_short": _text(info.model_sha256)[:12],
        "owner": _text(info.owner),
        "started_at": _text(result.started_at),
        "audit_date": format_timestamp(result.started_at),
        "duration_s": _float(result.duration_s),
        "auditor_version": __version__,
    }


def _sections(head: list[str], families: list[dict[str, Any]], remediation: dict[str, Any] | None
              ) -> list[dict[str, Any]]:
    """The table of contents: numbered sections, the families' checks as children, lettered appendices."""
    titles = {"summary": "Executive summary", "changes": CHANGES_TITLE, "overview": "Model overview",
              "register": "Findings register", "remediation": REMEDIATION_TITLE}
    sections: list[dict[str, Any]] = []
    for n, anchor in enumerate(head, start=1):
        children = ([{"anchor": r["anchor"], "title": r["title"], "number": ""} for r in remediation["remedies"]]
                    if anchor == "remediation" and remediation is not None else [])
        sections.append({"anchor": anchor, "title": titles[anchor], "number": str(n), "children": children,
                         "appendix": False})
    sections += [{"anchor": fam["anchor"], "title": fam["title"], "number": fam["number"], "appendix": False,
                  "children": [{"anchor": c["anchor"], "title": c["title"], "number": c["number"]}
                               for c in fam["checks"]]} for fam in families]
    for letter, (anchor, title) in zip("ABCD", APPENDICES):
        children = ([{"anchor": "manifest", "title": "Reproducibility manifest", "number": ""},
                     {"anchor": "configuration", "title": "Audit configuration", "number": ""}]
                    if anchor == "appendix" else [])
        sections.append({"anchor": anchor, "title": f"Appendix {letter}: {title}", "short_title": title,
                         "number": letter, "children": children, "appendix": True})
    return sections


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


def _issue(issue: Any, by_id: Mapping[str, Finding], anchor_of: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": _text(issue.id), "anchor": issue_anchor(issue.id), "severity": issue.severity.value,
        "severity_label": SEVERITY_LABELS[issue.severity.value], "title": _text(issue.title),
        "summary": _text(issue.summary), "n_findings": len(issue.findings), "accepted": int(issue.accepted),
        "all_accepted": bool(issue.all_accepted), "grouped": issue.rule != "single",
        "findings": [{"id": _text(fid), "title": _text(by_id[fid].title), "anchor": anchor_of[fid],
                      "severity": by_id[fid].severity.value,
                      "severity_label": SEVERITY_LABELS[by_id[fid].severity.value],
                      "status": _text(by_id[fid].status)} for fid in issue.findings if fid in by_id],
    }


def _causes(result: Any, findings: list[Finding], anchors: Mapping[int, str],
            families: list[dict[str, Any]]) -> dict[str, Any]:
    """The root-cause issues (with links to their findings) and the register of every finding, each
    row naming the section that holds its evidence."""
    by_id = {f.id: f for f in findings}
    anchor_of = {f.id: anchors.get(id(f), "") for f in findings}
    issues, links = [], {}
    for issue in result.issues:
        iv = _issue(issue, by_id, anchor_of)
        links.update({fid: {"id": iv["id"], "title": iv["title"], "anchor": iv["anchor"]} for fid in issue.findings})
        issues.append(iv)
    sections = {c["id"]: {"number": c["number"], "title": c["title"], "anchor": c["anchor"]}
                for fam in families for c in fam["checks"]}
    register = []
    for n, f in enumerate(findings, start=1):
        row = {"number": n, "id": _text(f.id), "anchor": anchor_of[f.id], "check": _text(f.check),
               "severity": f.severity.value, "severity_label": SEVERITY_LABELS[f.severity.value],
               "title": _text(f.title), **_acceptance(f)}
        row["issue"] = links.get(f.id)
        row["section"] = sections.get(f.check, {"number": "", "title": _text(f.check), "anchor": check_anchor(f.check)})
        register.append(row)
    refs = {f.id: {"id": _text(f.id), "title": _text(f.title), "anchor": anchor_of[f.id]} for f in findings}
    return {"issues": issues, "register": register, "issue_links": links, "finding_refs": refs,
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
    parts = [f"{humanize(rule.metric).lower()} = {_num(rule.value)} {rule.operator} {_num(rule.threshold)}"]
    if rule.interval is not None:
        parts.append(f"interval {_num(rule.interval[0])} to {_num(rule.interval[1])}")
    if rule.p_value is not None:
        parts.append(f"p = {_num(rule.p_value)}")
    return _text("; ".join(parts))


# ---- the model overview's data and the appendices ----------------------------------------------

def _dataset(ds: Any) -> dict[str, Any] | None:
    if ds is None:
        return None
    return {"path": _text(ds.path), "name": _model_name(ds.path), "sha256": _text(ds.sha256), "rows": int(ds.rows),
            "columns": int(ds.columns)}


def _scope(result: Any) -> dict[str, Any]:
    i = result.info
    classification = i.task == "classification"
    categorical, protected = set(i.categorical), set(i.protected)
    return {
        "model": {
            "path": _text(i.model_path),
            "name": _model_name(i.model_path),
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
        "data": {"test": _dataset(i.test), "train": _dataset(i.train), "target": _text(i.target)},
        "features": [{"name": _text(f), "categorical": f in categorical, "protected": f in protected}
                     for f in i.features],
        "n_features": len(i.features),
        "n_categorical": sum(f in categorical for f in i.features),
        "protected": [{"name": _text(p), "is_feature": p in set(i.features)} for p in i.protected],
        "id_column": _text(i.id_column) if i.id_column else "",
        "reference": [{"column": _text(c), "group": _text(g)} for c, g in i.reference],
        "expectations": ([{"feature": _text(f), "text": f"the prediction must not {'fall' if d > 0 else 'rise'} as "
                                                        f"{_text(f)} grows", "kind": "monotone"} for f, d in i.monotone]
                         + [{"feature": _text(f), "text": "immutable (never changed by searches)", "kind": "immutable"}
                            for f in i.immutable]),
    }


def _methods(families: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Appendix A: every check once, in report order: what it measures, its status and its method
    and sample notes (the detailed results link here instead of repeating them)."""
    return [{"id": c["id"], "title": c["title"], "number": c["number"], "anchor": c["method_anchor"],
             "check_anchor": c["anchor"], "status": c["status"], "status_label": c["status_label"],
             "duration_s": c["duration_s"], "n_findings": len(c["findings"]), "purpose": c["purpose"],
             "detail": c["error"] if c["status"] == "error" else c["reason"], "notes": c["notes"]}
            for fam in families for c in fam["checks"]]


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


_UNUSED = (CheckResult, method_anchor)  # re-exported names kept for callers of the old view module


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
