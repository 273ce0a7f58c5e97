"""Waivers (risk acceptance, contract 1.1): parsing, matching and expiry, the gate, and every output
(findings.json, the findings register of the HTML and PDF, the terminal summary)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from conftest import CONTRACT_IDS, SCHEMA, one_line_error
from sklearn.linear_model import LogisticRegression
from test_cli import cli

from auditor.config import parse_config
from auditor.errors import ConfigError
from auditor.findings import Finding, Severity, Status, Waiver
from auditor.waivers import CHECK_ID, apply_waivers, parse_waivers, waive_checks

UNRELATED = "benchmark.comparison/*"  # an unrelated glob: matches nothing in the leak audit below
ONLY_FINDING = "data.leakage/power/leak"
FAR = "2999-12-31"
PAST = "2001-01-01"


def waiver(finding: str = ONLY_FINDING, expires: str = FAR, **kw: str) -> Waiver:
    return parse_waivers([{"finding": finding, "reason": kw.get("reason", "Recorded at decision time (ticket 42)."),
                           "approved_by": kw.get("approved_by", "J. Doe, Model Risk"), "expires": expires}])[0]


def finding(fid: str, severity: Severity = Severity.MEDIUM) -> Finding:
    return Finding(id=fid, check=fid.split("/")[0], severity=severity, title=f"title of {fid}", summary="s")


# ---- parsing: a malformed waiver is a config error naming its key --------------------------------

BASE = {"model": {"path": "m.skops"}, "data": {"test": "t.csv", "target": "y"}}
GOOD = {"finding": "data.drift/*", "reason": "r", "approved_by": "a", "expires": "2027-06-30"}


@pytest.mark.parametrize(("entry", "key"), [
    ({k: v for k, v in GOOD.items() if k != "reason"}, "waiver[1].reason"),
    ({k: v for k, v in GOOD.items() if k != "approved_by"}, "waiver[1].approved_by"),
    ({k: v for k, v in GOOD.items() if k != "expires"}, "waiver[1].expires"),
    ({k: v for k, v in GOOD.items() if k != "finding"}, "waiver[1].finding"),
    ({**GOOD, "expires": "2027-02-30"}, "waiver[1].expires"),
    ({**GOOD, "expires": "30/06/2027"}, "waiver[1].expires"),
    ({**GOOD, "expires": 20270630}, "waiver[1].expires"),
    ({**GOOD, "reason": "  "}, "waiver[1].reason"),
    ({**GOOD, "reson": "typo"}, "waiver[1].reson"),
    ({**GOOD, "finding": "fairness.disparate_impact/age_band=under 25"}, "waiver[1].finding"),
])
def test_a_malformed_waiver_names_its_key(entry: dict, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({**BASE, "waiver": [entry]}, base_dir=Path.cwd())
    assert f"'{key}'" in str(exc.value) and "\n" not in str(exc.value)


def test_a_second_waiver_is_named_by_its_position_and_pattern() -> None:
    with pytest.raises(ConfigError, match=r"'waiver\[2\]\.approved_by'.*'data\.drift/\*'"):
        parse_config({**BASE, "waiver": [GOOD, {k: v for k, v in GOOD.items() if k != "approved_by"}]},
                     base_dir=Path.cwd())


def test_a_waiver_table_instead_of_an_array_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"\[\[waiver\]\]"):
        parse_config({**BASE, "waiver": GOOD}, base_dir=Path.cwd())


def test_good_waivers_parse_from_toml_dates_and_strings() -> None:
    cfg = parse_config({**BASE, "waiver": [GOOD, {**GOOD, "expires": date(2028, 1, 31)}]}, base_dir=Path.cwd())
    assert [w.expires for w in cfg.waivers] == [date(2027, 6, 30), date(2028, 1, 31)]
    assert cfg.waivers[0].to_json() == {"match": "data.drift/*", "reason": "r", "approved_by": "a",
                                        "expires": "2027-06-30"}
    assert parse_config(BASE, base_dir=Path.cwd()).waivers == ()  # no waiver: none


def test_a_misspelt_waiver_section_suggests_waiver() -> None:
    with pytest.raises(ConfigError, match="did you mean 'waiver'"):
        parse_config({**BASE, "waivers": [GOOD]}, base_dir=Path.cwd())


# ---- applying them: a pure function of findings, waivers and the audit date ----------------------

def test_a_waiver_in_force_accepts_what_it_matches_and_keeps_the_severity() -> None:
    findings = [finding("security.model_extraction/copy", Severity.HIGH), finding("data.drift/age")]
    out = apply_waivers(findings, [waiver("security.model_extraction/*")], date(2026, 1, 1))
    copy, drift = out.findings
    assert copy.status == "accepted" and copy.severity is Severity.HIGH and copy.waiver is not None
    assert copy.waiver.approved_by == "J. Doe, Model Risk"
    assert drift.status == "open" and drift.waiver is None  # control: not matched
    assert out.reports == ()


def test_a_waiver_is_in_force_through_its_expiry_day_and_not_after() -> None:
    w = waiver("data.drift/age", expires="2026-03-31")
    on_the_day = apply_waivers([finding("data.drift/age")], [w], date(2026, 3, 31))
    assert on_the_day.findings[0].status == "accepted" and on_the_day.reports == ()
    after = apply_waivers([finding("data.drift/age")], [w], date(2026, 4, 1))
    assert after.findings[0].status == "open"
    (report,) = after.reports
    assert report.id == f"{CHECK_ID}/expired/data.drift/age" and report.severity is Severity.LOW
    assert "data.drift/age" in report.summary and "open again" in report.summary


def test_an_unmatched_waiver_is_reported_and_suggests_the_closest_id() -> None:
    out = apply_waivers([finding("data.drift/age")], [waiver("data.drift/ages")], date(2026, 1, 1))
    (report,) = out.reports
    assert report.id == f"{CHECK_ID}/unmatched/data.drift/ages" and report.severity is Severity.LOW
    assert "'data.drift/age'" in report.summary
    assert out.findings[0].status == "open"


def test_the_first_waiver_in_force_accepts_and_a_repeated_pattern_gets_its_own_report_id() -> None:
    first, second = waiver("data.drift/*", reason="first"), waiver("data.drift/age", reason="second")
    out = apply_waivers([finding("data.drift/age")], [first, second], date(2026, 1, 1))
    assert out.findings[0].waiver == first
    assert [s.accepted for s in out.states] == [("data.drift/age",), ()]
    assert out.reports == ()  # the second one matches, so it is not unmatched
    twice = apply_waivers([], [waiver("x.y/*"), waiver("x.y/*")], date(2026, 1, 1))
    assert [f.id for f in twice.reports] == ["audit.waivers/unmatched/x.y/_all", "audit.waivers/unmatched/x.y/_all+2"]


def test_waive_checks_adds_the_audit_waivers_result_only_when_there_are_waivers() -> None:
    from auditor.findings import CheckResult

    checks = (CheckResult("data.drift", "Drift", "data", Status.OK, findings=(finding("data.drift/age"),)),)
    assert waive_checks(checks, (), date(2026, 1, 1)) == checks
    out = waive_checks(checks, (waiver("data.drift/age"), waiver("nothing.here/x")), date(2026, 1, 1))
    assert [c.id for c in out] == ["data.drift", CHECK_ID]
    assert out[0].findings[0].status == "accepted"
    assert out[1].family == "audit" and [f.id for f in out[1].findings] == ["audit.waivers/unmatched/nothing.here/x"]
    assert out[1].evidence.metrics["accepted_findings"] == 1


# ---- end to end: the CLI on real files ---------------------------------------------------------

@pytest.fixture(scope="module")
def leak_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model fed a leaked copy of its target: data.leakage's high ``power/leak`` finding is the audit's
    only finding at or above the gate (every other check is skipped, to keep the test quick)."""
    folder = tmp_path_factory.mktemp("leak")
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(10, 3, n)})
    df["default"] = (rng.random(n) < 1 / (1 + np.exp(-0.08 * (df["income"] - 50)))).astype(int)
    df["leak"] = df["default"] + rng.normal(0, 0.1, n)
    df.iloc[:300].to_csv(folder / "train.csv", index=False)
    df.iloc[300:].to_csv(folder / "test.csv", index=False)
    features = ["income", "debt", "leak"]
    sio.dump(LogisticRegression().fit(df.iloc[:300][features], df.iloc[:300]["default"]), folder / "model.skops")
    return folder


def _config(folder: Path, waivers: str = "") -> Path:
    skip = ", ".join(f'"{c}"' for c in CONTRACT_IDS if c != "data.leakage")
    path = folder / "audit.toml"
    path.write_text('[audit]\nname = "leak"\nfail_on = "high"\n[model]\npath = "model.skops"\n'
                    '[data]\ntrain = "train.csv"\ntest = "test.csv"\ntarget = "default"\n'
                    f'features = ["income", "debt", "leak"]\n[checks]\nskip = [{skip}]\n' + waivers)
    return path


def _waiver_toml(finding: str, expires: str) -> str:
    return (f'\n[[waiver]]\nfinding = "{finding}"\nreason = "The leak column is the decision date, checked."\n'
            f'approved_by = "J. Doe, Model Risk"\nexpires = {expires}\n')


def _doc(out: Path) -> dict:
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads((out / "findings.json").read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    return doc


def test_cli_a_malformed_waiver_is_exit_2_with_one_line(leak_project: Path) -> None:
    bad = _waiver_toml(ONLY_FINDING, FAR).replace('approved_by = "J. Doe, Model Risk"\n', "")
    line = one_line_error(cli("run", str(_config(leak_project, bad)), "--out", str(leak_project / "bad")))
    assert "waiver[1].approved_by" in line
    line = one_line_error(cli("run", str(_config(leak_project, _waiver_toml(ONLY_FINDING, '"2027-13-01"'))),
                              "--out", str(leak_project / "bad")))
    assert "waiver[1].expires" in line and "2027-13-01" in line
    assert not (leak_project / "bad").exists()


def test_cli_without_a_waiver_the_leak_trips_the_gate(leak_project: Path) -> None:
    out = leak_project / "open"
    proc = cli("run", str(_config(leak_project)), "--out", str(out), "--format", "json")
    assert proc.returncode == 1, proc.stderr[-2000:]
    doc = _doc(out)
    gate = [f for f in doc["findings"] if f["severity"] == "high"]
    assert [f["id"] for f in gate] == [ONLY_FINDING] and gate[0]["status"] == "open" and "waiver" not in gate[0]
    assert doc["summary"]["accepted"] == 0 and CHECK_ID not in [c["id"] for c in doc["checks"]]
    assert "accepted" not in proc.stderr


def test_cli_a_waiver_accepts_the_only_gate_finding_and_the_gate_passes(leak_project: Path) -> None:
    out = leak_project / "waived"
    waivers = _waiver_toml(ONLY_FINDING, FAR) + _waiver_toml(UNRELATED, FAR)
    proc = cli("run", str(_config(leak_project, waivers)), "--out", str(out), "--format", "json,html,pdf")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = _doc(out)
    assert doc["audit"]["gate"] == "passed" and doc["summary"]["accepted"] == 1
    leak = next(f for f in doc["findings"] if f["id"] == ONLY_FINDING)
    assert leak["severity"] == "high" and leak["status"] == "accepted"
    assert leak["waiver"] == {"match": ONLY_FINDING, "reason": "The leak column is the decision date, checked.",
                              "approved_by": "J. Doe, Model Risk", "expires": FAR}
    # the unmatched glob is reported as a low finding of audit.waivers, a check of its own
    waivers_check = next(c for c in doc["checks"] if c["id"] == CHECK_ID)
    assert waivers_check["status"] == "ok" and waivers_check["metrics"]["unmatched"] == 1
    unmatched = [f for f in doc["findings"] if f["check"] == CHECK_ID]
    assert [(f["id"], f["severity"]) for f in unmatched] == [("audit.waivers/unmatched/benchmark.comparison/_all",
                                                              "low")]
    # the terminal summary shows it accepted and counts it
    assert "1 accepted" in proc.stderr and "accepted (J. Doe, Model Risk, until 2999-12-31)" in proc.stderr
    # the findings register of the HTML and the PDF shows it accepted, with its reason, approver and expiry
    html = (out / "report.html").read_text()
    register = html[html.index('id="register"'):html.index("</section>", html.index('id="register"'))]
    start = register.index(f'data-finding="{ONLY_FINDING}"')
    row = register[start:register.index("</tr>", start)]
    assert "Accepted" in row and "The leak column is the decision date, checked." in row
    assert "J. Doe, Model Risk" in row and FAR in row
    from pypdf import PdfReader

    pages = [p.extract_text() or "" for p in PdfReader(str(out / "report.pdf")).pages]
    summary = " ".join(next(t for t in pages[1:] if "Findings register" in t).split())  # page 1: contents
    register_text = summary[summary.index("Findings register"):]
    assert "ACCEPTED" in register_text.upper() and "The leak column is the decision date, checked." in register_text
    assert "Approved by J. Doe, Model Risk; expires 2999-12-31." in register_text


def test_cli_an_expired_copy_of_the_waiver_does_not_apply_and_is_reported(leak_project: Path) -> None:
    out = leak_project / "expired"
    proc = cli("run", str(_config(leak_project, _waiver_toml(ONLY_FINDING, PAST))), "--out", str(out),
               "--format", "json,html")
    assert proc.returncode == 1, proc.stderr[-2000:]
    doc = _doc(out)
    leak = next(f for f in doc["findings"] if f["id"] == ONLY_FINDING)
    assert leak["status"] == "open" and "waiver" not in leak
    expired = next(f for f in doc["findings"] if f["check"] == CHECK_ID)
    assert expired["id"] == f"{CHECK_ID}/expired/{ONLY_FINDING}" and expired["severity"] == "low"
    assert expired["status"] == "open" and "issue" in expired
    assert doc["summary"]["accepted"] == 0
    html = (out / "report.html").read_text()
    assert "expired on 2001-01-01" in html


def test_expiry_is_judged_on_the_audit_date_so_a_rerun_with_a_fixed_date_is_reproducible() -> None:
    from test_engine import Flag, classification_data, classifier

    from auditor.checks.base import CheckRegistry
    from auditor.engine import prepare_objects

    df = classification_data(n=300)
    audit = prepare_objects(classifier(df.iloc[:200]), test=df.iloc[200:], target="default", fail_on="medium",
                            registry=CheckRegistry([Flag]),
                            waivers=[{"finding": "test.flag/*", "reason": "reviewed", "approved_by": "J. Doe",
                                      "expires": "2026-06-30"}])
    in_force = audit.run(today=date(2026, 6, 30))
    assert in_force.gate == "passed" and [f.status for f in in_force.check("test.flag").findings] == ["accepted"]
    assert in_force.check(CHECK_ID).findings == ()
    expired = audit.run(today=date(2026, 7, 1))
    assert expired.gate == "failed" and [f.status for f in expired.check("test.flag").findings] == ["open"]
    assert [f.id for f in expired.check(CHECK_ID).findings] == ["audit.waivers/expired/test.flag/_all"]
    assert expired.check(CHECK_ID).evidence.metrics["audit_date"] == "2026-07-01"
