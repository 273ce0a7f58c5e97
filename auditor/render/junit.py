"""junit.xml: the audit as JUnit XML, the format Jenkins, GitLab and GitHub test reporters read.

One test case per check (classname ``auditor.<family>``, name the check id): a ``<failure>`` for each
open finding of that check at or above the gate level, ``<skipped>`` for a skipped check, ``<error>``
for a check in error. Every finding of a check is listed in its ``<system-out>``; accepted findings
never fail. The suite's counts are those of the elements (what JUnit readers recompute).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from ..findings import Finding, Status
from .view import _rule_text

# characters XML 1.0 cannot hold, even escaped (control characters but tab, newline and return)
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Any) -> str:
    """Text safe to place in an XML document: characters XML 1.0 forbids become U+FFFD.

    ElementTree escapes ``&``, ``<``, ``>`` and quotes; it does not remove these."""
    return _NOT_XML.sub("\ufffd", str(value))


def _finding_text(f: Finding) -> str:
    lines = [f"{f.id} [{f.severity.value}, {f.status}]", f.title, "", f.summary]
    rule = _rule_text(f.rule).removeprefix("Rule: ")
    if rule and rule not in f.summary:
        lines += ["", f"Severity rule: {rule}"]
    if f.remediation:
        lines += ["", "Remediation:", *(f"- {r}" for r in f.remediation)]
    return "\n".join(lines)


def _sub(parent: ET.Element, tag: str, text: str = "", **attrs: Any) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text:
        el.text = xml_text(text)
    return el


def _case(suite: ET.Element, check_id: str, family: str, seconds: float) -> ET.Element:
    return _sub(suite, "testcase", classname=f"auditor.{family}", name=check_id, time=f"{seconds:.3f}")


def junit_tree(result: Any) -> ET.Element:
    """The ``<testsuites>`` element of an ``AuditResult``."""
    info = result.info
    gate_ids = {f.id for f in result.gate_findings}
    by_check: dict[str, list[Finding]] = {}
    for f in result.findings:
        by_check.setdefault(f.check, []).append(f)
    root = ET.Element("testsuites", {"name": xml_text(f"auditor: {info.name}")})
    suite = _sub(root, "testsuite", name=info.name, timestamp=str(result.started_at).rstrip("Z"),
                 hostname="auditor")
    props = _sub(suite, "properties")
    for name, value in (("gate", result.gate), ("fail_on", info.fail_on), ("status", result.status),
                        ("model", info.model_path), ("model_sha256", info.model_sha256), ("seed", info.seed)):
        _sub(props, "property", name=name, value=value)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seen = set()
    for c in result.checks:
        seen.add(c.id)
        case = _case(suite, c.id, c.family, float(c.duration_s))
        counts["tests"] += 1
        if c.status is Status.SKIPPED:
            _sub(case, "skipped", message=c.reason)
            counts["skipped"] += 1
        elif c.status is Status.ERROR:
            _sub(case, "error", c.error, message=c.error, type="check error")
            counts["errors"] += 1
        counts["failures"] += _findings_into(case, by_check.get(c.id, []), gate_ids)
    for check_id, findings in by_check.items():  # findings of no listed check (e.g. the audit's own)
        if check_id not in seen:
            case = _case(suite, check_id, check_id.split(".")[0], 0.0)
            counts["tests"] += 1
            counts["failures"] += _findings_into(case, findings, gate_ids)
    total = sum(float(c.duration_s) for c in result.checks)
    for el in (suite, root):
        el.set("time", f"{total:.3f}")
        for key, n in counts.items():
            el.set(key, str(n))
    return root


def _findings_into(case: ET.Element, findings: list[Finding], gate_ids: set[str]) -> int:
    """A failure per gate-tripping finding; every finding in system-out. Returns the failures."""
    failures = 0
    for f in findings:
        if f.id in gate_ids:
            _sub(case, "failure", _finding_text(f), message=f"[{f.severity.value}] {f.title}", type=f.severity.value)
            failures += 1
    if findings:
        _sub(case, "system-out", "\n".join(f"{f.severity.value:<6} {f.status:<8} {f.id}: {f.title}"
                                           for f in findings))
    return failures


def render_junit(result: Any) -> str:
    """junit.xml text (UTF-8, with its XML declaration)."""
    root = junit_tree(result)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
