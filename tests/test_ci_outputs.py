"""CI and GRC outputs: junit.xml (read back with junitparser), summary.md (parsed as Markdown), the
shipped schema (``auditor schema``) and the run summary's "+N more"."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ROOT, SCHEMA, SCHEMA_COPY
from test_diff import ENV, _write_project
from test_render import SCRIPT, make_result

from auditor.config import KNOWN_FORMATS, parse_config
from auditor.diff import snapshot
from auditor.errors import ConfigError
from auditor.findings import Severity, Status
from auditor.render import FORMATS, write_report
from auditor.result import AuditResult

junitparser = pytest.importorskip("junitparser")
markdown_it = pytest.importorskip("markdown_it")

HOSTILE = f"Drift in a|b *x* \x01 ]]> & {SCRIPT}"  # table pipe, emphasis, a control character, CDATA end, HTML


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=ENV, timeout=600)


def _result(fail_on: str = "high", *, hostile: bool = True, accept: tuple[str, ...] = ()) -> AuditResult:
    """The render tests' audit (high, medium, low and info findings of data.drift, one check in error),
    with a hostile finding title and some findings accepted."""
    result = make_result()
    checks = []
    for c in result.checks:
        findings = tuple(replace(f, title=HOSTILE if hostile and f.severity is Severity.MEDIUM else f.title,
                                 status="accepted" if f.id in accept else f.status) for f in c.findings)
        checks.append(replace(c, findings=findings))
    return replace(result, checks=tuple(checks), info=replace(result.info, fail_on=fail_on))


# ---- junit.xml ----------------------------------------------------------------------------------

def _junit(result: AuditResult, tmp_path: Path):
    path = write_report(result, tmp_path, ["junit"])["junit"]
    assert path.name == "junit.xml"
    xml = junitparser.JUnitXml.fromfile(str(path))
    (suite,) = list(xml)
    return xml, suite


def _failure_ids(suite) -> list[str]:
    return sorted(r.text.split()[0] for case in suite for r in case.result if isinstance(r, junitparser.Failure))


@pytest.mark.parametrize(("fail_on", "accept"), [("high", ()), ("medium", ()), ("low", ()), ("none", ()),
                                                 ("low", ("data.drift/income",))])
def test_junit_failures_are_the_gate_tripping_findings(tmp_path: Path, fail_on: str, accept) -> None:
    result = _result(fail_on, accept=accept)
    xml, suite = _junit(result, tmp_path)
    expected = sorted(f.id for f in result.gate_findings)
    assert _failure_ids(suite) == expected
    if fail_on == "none":
        assert expected == []
    if accept:  # the accepted high finding is listed, never a failure
        assert "data.drift/income" not in expected
        drift = next(c for c in suite if c.name == "data.drift")
        assert "accepted data.drift/income" in " ".join(drift.system_out.split())


def test_junit_has_one_case_per_check_and_counts_right(tmp_path: Path) -> None:
    result = _result("medium")
    xml, suite = _junit(result, tmp_path)
    cases = {c.name: c for c in suite}
    assert list(cases) == [c.id for c in result.checks]
    kinds = {name: {type(r).__name__ for r in case.result} for name, case in cases.items()}
    for c in result.checks:
        want = {Status.SKIPPED: {"Skipped"}, Status.ERROR: {"Error"}}.get(c.status, set())
        if any(f.id in {g.id for g in result.gate_findings} for f in c.findings):
            want = want | {"Failure"}
        assert kinds[c.id] == want, c.id
    assert cases["security.membership_inference"].result[0].message == f"ValueError: bad column {SCRIPT}"
    written = (suite.tests, suite.failures, suite.errors, suite.skipped)
    assert written == (len(result.checks), len(result.gate_findings), len(result.errored),
                       sum(c.status is Status.SKIPPED for c in result.checks))
    suite.update_statistics()  # what a JUnit reader recomputes from the cases
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == written
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == written


def test_junit_escapes_any_text(tmp_path: Path) -> None:
    result = _result("medium")
    text = write_report(result, tmp_path, ["junit"])["junit"].read_text(encoding="utf-8")
    assert "<script>" not in text and "\x01" not in text
    _, suite = _junit(result, tmp_path)
    messages = [r.message for case in suite for r in case.result if isinstance(r, junitparser.Failure)]
    assert f"[medium] {HOSTILE.replace(chr(1), chr(0xFFFD))}" in messages  # round-trips, minus the control char


# ---- summary.md ---------------------------------------------------------------------------------

def _md(result: AuditResult, tmp_path: Path) -> tuple[str, list]:
    text = write_report(result, tmp_path, ["md"])["md"].read_text(encoding="utf-8")
    return text, markdown_it.MarkdownIt("commonmark").enable("table").parse(text)


def _sections(tokens) -> dict[str, list]:
    """Heading text -> the tokens up to the next heading."""
    out: dict[str, list] = {}
    current = ""
    for i, t in enumerate(tokens):
        if t.type == "heading_open":
            current = tokens[i + 1].content
            out[current] = []
        elif current:
            out[current].append(t)
    return out


def _table_rows(tokens) -> list[list[str]]:
    rows, row, in_body = [], None, False
    for i, t in enumerate(tokens):
        if t.type == "tbody_open":
            in_body = True
        elif t.type == "tr_open" and in_body:
            row = []
        elif t.type == "td_open" and row is not None:
            row.append(tokens[i + 1].content)
        elif t.type == "tr_close" and row is not None:
            rows.append(row)
            row = None
    return rows


def test_summary_md_has_verdict_counts_and_the_gate_tripping_findings(tmp_path: Path) -> None:
    result = _result("medium")
    text, tokens = _md(result, tmp_path)
    sections = _sections(tokens)
    title = next(iter(sections))
    assert tokens[0].type == "heading_open" and tokens[0].tag == "h2" and "gate FAILED" in title
    counts = _table_rows(sections[title])
    assert counts == [[str(result.counts[s.value]) for s in Severity.ordered()] + ["0"]]
    gate = _table_rows(sections["Open findings at or above the gate (medium)"])
    assert len(gate) == len(result.gate_findings) == 2
    assert all(len(r) == 3 for r in gate)  # the pipe in a title did not split its cell
    for row, f in zip(gate, result.gate_findings):
        assert f"`{f.id}`" in row[1] and row[0] == f"**{f.severity.value.capitalize()}**"
    assert "Checks in error" in sections
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(text)
    assert "<script>" not in html and "<em>" not in html  # the title's HTML and *x* stayed text
    assert {t.content for t in tokens if t.type == "inline" for t in t.children or [] if t.type == "html_inline"} \
        <= {"<br>"}


def test_summary_md_of_a_passing_audit_says_none(tmp_path: Path) -> None:
    result = _result("high", accept=("data.drift/income",))
    result = replace(result, checks=tuple(c for c in result.checks if c.status is not Status.ERROR))
    text, tokens = _md(result, tmp_path)
    sections = _sections(tokens)
    assert "gate PASSED" in next(iter(sections))
    assert "None: no open finding at or above high." in text
    assert "Checks in error" not in sections
    # root causes are listed exactly when the audit found some (issues[] of findings.json)
    assert ("Root causes" in sections) == bool(result.to_json()["issues"])


def test_summary_md_lists_root_causes_and_changes_when_there_are(tmp_path: Path, monkeypatch) -> None:
    result = _result("medium")
    old = result.to_json()
    old["findings"] = [f for f in old["findings"] if f["id"] != "data.drift/income"]
    with_baseline = replace(result, baseline=snapshot(old, source="old/findings.json"))
    issues = [{"id": "drift", "severity": "high", "title": f"Data drift {SCRIPT}",
               "findings": ["data.drift/income", "data.drift/age"]}]
    to_json = AuditResult.to_json
    monkeypatch.setattr(AuditResult, "to_json", lambda self: {**to_json(self), "issues": issues})
    text, tokens = _md(with_baseline, tmp_path)
    sections = _sections(tokens)
    assert _table_rows(sections["Root causes"]) == [["**High**", "Data drift &lt;script&gt;alert(1)&lt;/script&gt;",
                                                     "2"]]
    changes = _table_rows(sections["Changes since the previous audit"])
    assert [r[0] for r in changes] == ["new"] and "`data.drift/income`" in changes[0][2]
    monkeypatch.undo()
    _, plain = _md(result, tmp_path / "plain")  # the same audit with its own issues and no baseline
    plain_sections = _sections(plain)
    assert "Changes since the previous audit" not in plain_sections
    assert len(_table_rows(plain_sections["Root causes"])) == len(result.to_json()["issues"]) > 0


# ---- formats, the schema, the run summary --------------------------------------------------------

def test_junit_and_md_are_known_formats_of_the_config_and_the_writer() -> None:
    assert set(KNOWN_FORMATS) == set(FORMATS) and {"junit", "md"} <= set(FORMATS)
    raw = {"model": {"path": "m.skops"}, "data": {"test": "t.csv", "target": "y"},
           "report": {"formats": ["junit", "md"]}}
    assert parse_config(raw, base_dir=Path.cwd()).report.formats == ("junit", "md")
    assert parse_config({k: v for k, v in raw.items() if k != "report"}, base_dir=Path.cwd()).report.formats \
        == ("html", "pdf", "json")  # the default is unchanged
    with pytest.raises(ConfigError, match="report.formats"):
        parse_config({**raw, "report": {"formats": ["junit", "docx"]}}, base_dir=Path.cwd())


def test_cli_writes_junit_and_md_whose_failures_are_the_gate(tmp_path: Path) -> None:
    config = _write_project(tmp_path / "p", leak=True)
    out = tmp_path / "out"
    proc = cli("run", str(config), "--out", str(out), "--format", "json,junit,md")
    assert proc.returncode == 1, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["findings.json", "junit.xml", "remediation", "summary.md"]
    doc = json.loads((out / "findings.json").read_text())
    gate = sorted(f["id"] for f in doc["findings"] if f["status"] == "open" and f["severity"] == "high")
    assert gate
    (suite,) = list(junitparser.JUnitXml.fromfile(str(out / "junit.xml")))
    assert _failure_ids(suite) == gate
    assert all(f"`{fid}`" in (out / "summary.md").read_text() for fid in gate)


def test_schema_command_prints_the_shipped_schema() -> None:
    shipped = ROOT / "auditor" / "schema" / "findings.schema.json"
    proc = cli("schema")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(shipped.read_text())
    assert proc.stdout == shipped.read_text()


def test_shipped_schema_is_the_contracts() -> None:
    shipped = json.loads((ROOT / "auditor" / "schema" / "findings.schema.json").read_text())
    assert shipped == json.loads(SCHEMA_COPY.read_text()) == json.loads(SCHEMA.read_text())


def _summary_text(result: AuditResult) -> str:
    from rich.console import Console

    from auditor.cli import _summary

    buf = io.StringIO()
    _summary(Console(file=buf, width=200, highlight=False), result, {}, 1.0)
    return buf.getvalue()


def test_run_summary_says_how_many_more_findings_it_did_not_show() -> None:
    result = _result("medium", hostile=False)
    drift = result.check("data.drift")
    many = tuple(replace(drift.findings[1], id=f"data.drift/low{i}", severity=Severity.LOW, title=f"Low drift {i}")
                 for i in range(6))
    more = replace(result, checks=tuple(replace(c, findings=c.findings + many) if c.id == "data.drift" else c
                                        for c in result.checks))
    text = _summary_text(more)
    shown = [ln for ln in text.splitlines() if ln.startswith("  ") and "more" not in ln]
    assert len(shown) == 5
    assert "+5 more (4 low, 1 info) in the report" in text  # 10 findings: 5 shown; 4 low and the info one not
    control = replace(result, checks=tuple(replace(c, findings=tuple(f for f in c.findings if f.severity.rank))
                                           for c in result.checks))
    assert "more" not in _summary_text(control)  # high, medium, low: all shown
