"""The first pages as plain values: the cover's verdict sentence, the executive summary's conditions
and what was not tested, and the model overview (the owner's declarations and the data audited)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..findings import Severity, Status
from .evidence import check_anchor, plain
from .labels import humanize

CONTEXT_LABELS = {"purpose": "Purpose", "intended_use": "Intended use", "out_of_scope": "Out-of-scope uses",
                  "limitations": "Known limitations", "data_period": "Data period"}
NOT_DECLARED = "Not declared by the owner."
OUTSIDE_SCOPE = ("Outside any audit of this kind: how the model was developed and documented, the pipeline that "
                 "feeds it in production, and how it behaves on data other than the rows audited here.")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


# ---- the verdict in one sentence -------------------------------------------------------------------

def gate_issues(issues: list[dict[str, Any]], fail_on: str) -> list[dict[str, Any]]:
    """The root-cause issues that make the gate fail: at or above its level, not wholly accepted."""
    if fail_on == "none":
        return []
    level = Severity(fail_on).rank
    return [i for i in issues if Severity(i["severity"]).rank >= level and not i["all_accepted"]]


def verdict_sentence(result: Any, issues: list[dict[str, Any]]) -> dict[str, Any]:
    """What the verdict is and what it rests on, in one sentence, and the issues it rests on."""
    fail_on = result.info.fail_on
    ran = sum(c.status is Status.OK for c in result.checks)
    total = len(result.checks)
    gate = result.gate
    tripping = gate_issues(issues, fail_on)
    if gate == "failed":
        n = len(result.gate_findings)
        word = "reaches" if n == 1 else "reach"
        errors = (f"; {_plural(len(result.errored), 'check')} also ended in an error, so the evidence is "
                  f"incomplete" if result.errored else "")
        sentence = (f"Failed: {_plural(n, 'open finding')} in {_plural(len(tripping), 'issue')} {word} the gate "
                    f"level ({fail_on}){errors}, so the model is not ready for approval as it stands.")
        label = "Failed"
    elif gate == "incomplete":
        n = len(result.errored)
        sentence = (f"Not evaluated: {_plural(n, 'check')} ended in an error, so the evidence is incomplete; no "
                    f"open finding of the {ran} checks that ran reaches the gate level ({fail_on}).")
        label = "Not evaluated"
    elif fail_on == "none":
        sentence = (f"Passed without a gate (fail_on = none): {_plural(len(result.findings), 'finding')} from the "
                    f"{ran} of {total} checks that ran are reported for review, none blocks.")
        label = "Passed"
    else:
        sentence = (f"Passed: no open finding reaches the gate level ({fail_on}) in the {ran} of {total} checks "
                    f"that ran{'' if ran == total else ' (the others were skipped with a reason)'}.")
        label = "Passed"
    return {"label": label, "sentence": sentence,
            "rests_on": [{"title": i["title"], "anchor": i["anchor"], "severity": i["severity"],
                          "severity_label": i["severity_label"], "n_findings": i["n_findings"]} for i in tripping]}


# ---- conditions for an approval ---------------------------------------------------------------------

SAFEGUARDS = ("guard", "anomaly_detector", "monitoring")  # deployed beside the model; they fix no finding


def conditions(result: Any, issues: list[dict[str, Any]], remediation: dict[str, Any] | None,
               finding_refs: Mapping[str, dict[str, str]]) -> dict[str, Any]:
    """What would have to change for approval: the verified remedies (title, summary, the findings
    they address and their measured effect), then each gate issue no verified remedy covers, with
    the first thing its most severe finding says to do."""
    items = [it for r in (remediation or {}).get("remedies", ()) for it in r["remediations"]]
    gate_ids = {f["id"] for issue in gate_issues(issues, result.info.fail_on) for f in issue["findings"]}
    # a condition is a verified remedy of a gate-level finding; the other verified remedies (guard,
    # monitoring, detector) are deployment safeguards, named in one line
    verified = [it for it in items if it["verified"] and it["kind"] not in SAFEGUARDS
                and any(a["id"] in gate_ids for a in it["addresses"])]
    safeguards = [{"title": it["title"], "anchor": it["anchor"]} for it in items
                  if it["verified"] and it not in verified]
    remedies = [{"title": it["title"], "summary": it["summary"], "anchor": it["anchor"], "kind": it["kind"],
                 "addresses": [finding_refs.get(a["id"], {"id": a["id"], "title": a["title"], "anchor": a["anchor"]})
                               for a in it["addresses"]],
                 "effect": [b for b in it["before_after"] if b["before"] is not None and b["after"] is not None][:3]}
                for it in verified]
    covered = {a["id"] for it in verified for a in it["addresses"]}
    by_id = {f.id: f for f in result.findings}
    actions = []
    for issue in gate_issues(issues, result.info.fail_on):
        open_ids = [f["id"] for f in issue["findings"] if f["status"] != "accepted" and f["id"] not in covered]
        if not open_ids:
            continue
        first = max((by_id[i] for i in open_ids if i in by_id), key=lambda f: f.severity.rank, default=None)
        action = _text(first.remediation[0]) if first is not None and first.remediation else ""
        actions.append({"title": issue["title"], "anchor": issue["anchor"], "severity": issue["severity"],
                        "severity_label": issue["severity_label"], "action": action,
                        "n_findings": len(open_ids)})
    return {"remedies": remedies, "actions": actions, "safeguards": safeguards,
            "n_unverified": sum(not it["verified"] for it in items),
            "waiver_possible": bool(actions)}


# ---- what was not tested -----------------------------------------------------------------------------

def not_tested(result: Any) -> dict[str, Any]:
    """Checks skipped (with the reason) or in error, remedies not tried, and what no audit covers."""
    skipped = [{"id": c.id, "title": _text(c.title) or c.id, "anchor": check_anchor(c.id), "reason": _text(c.reason)}
               for c in result.checks if c.status is Status.SKIPPED]
    errored = [{"id": c.id, "title": _text(c.title) or c.id, "anchor": check_anchor(c.id),
                "error": _text(c.error)[:200]} for c in result.checks if c.status is Status.ERROR]
    remedies = [{"title": _text(r.title) or r.id, "reason": _text(r.reason or r.error)}
                for r in getattr(result, "remedies", ()) if r.status is not Status.OK]
    i = result.info
    gaps = []
    if i.train is None:
        gaps.append("No training data was given: checks that compare train and test are skipped.")
    if not i.protected:
        gaps.append("No protected attribute was declared: fairness was not assessed.")
    return {"skipped": skipped, "errored": errored, "remedies": remedies, "gaps": gaps,
            "outside": OUTSIDE_SCOPE, "n_ran": sum(c.status is Status.OK for c in result.checks),
            "n_total": len(result.checks)}


# ---- model overview ------------------------------------------------------------------------------------

def _class_balance(result: Any) -> list[dict[str, Any]]:
    """The target's classes with their shares in test and train, from data.quality's table when it ran."""
    try:
        quality = result.check("data.quality")
    except KeyError:
        return []
    table = next((t for t in quality.evidence.tables if t.name == "labels"), None)
    if table is None or "class" not in table.columns:
        return []
    return [{"class": _text(r.get("class")), "test_rows": plain(r.get("test_rows")),
             "test_share": plain(r.get("test_share")), "train_rows": plain(r.get("train_rows")),
             "train_share": plain(r.get("train_share"))} for r in table.records()]


def _target_text(i: Any) -> str:
    if i.task != "classification":
        return f"{i.target} (regression: the model predicts its value)"
    if len(i.classes) > 2:
        return (f"{i.target}, {len(i.classes)} classes; the decision is the most probable class; favorable "
                f"outcome {i.favorable}")
    return (f"{i.target}: predicted positive ({i.target} = {i.positive_class}) when its probability is at least "
            f"{i.threshold:g}; favorable outcome {i.target} = {i.favorable}")


def overview(result: Any) -> dict[str, Any]:
    i = result.info
    declared = dict(getattr(i, "context", ()) or ())
    context = [{"key": k, "label": label, "text": _text(declared.get(k, "")), "declared": bool(declared.get(k))}
               for k, label in CONTEXT_LABELS.items()]
    categorical, protected = set(i.categorical), set(i.protected)
    return {
        "context": context,
        "n_declared": sum(c["declared"] for c in context),
        "data_period": _text(declared.get("data_period", "")),
        "target_text": _target_text(i),
        "balance": _class_balance(result),
        "features": [{"name": _text(f), "categorical": f in categorical, "protected": f in protected}
                     for f in i.features],
        "kind_short": _text(i.model_kind).rsplit(".", 1)[-1],
        "task_label": humanize(_text(i.task)),
    }
