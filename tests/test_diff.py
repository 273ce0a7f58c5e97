"""Comparing audits: ``auditor.diff`` on hand-built findings.json documents, ``auditor diff`` on
real audits through the CLI, and ``[audit] baseline`` in findings.json and the HTML report."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from conftest import CONTRACT_IDS, ROOT, SCHEMA, one_line_error
from sklearn.linear_model import LogisticRegression

from auditor.diff import DiffInputError, compare, headline_metrics, load_snapshot, snapshot

# the module's expensive fixtures (whole audits) run once: all its tests in one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("diff")

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}  # this checkout
KEPT = ("data.schema", "data.leakage", "performance.metrics")  # quick checks; a target copy trips data.leakage


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=ENV, timeout=600)


# ---- the comparison on documents ----------------------------------------------------------------

def _finding(fid: str, severity: str, status: str = "open", check: str = "data.drift") -> dict:
    return {"id": fid, "check": check, "severity": severity, "title": f"title of {fid}", "summary": "",
            "features": [], "status": status}


def _doc(*findings: dict, metrics: dict | None = None, skipped: tuple[str, ...] = ()) -> dict:
    checks = [{"id": cid, "status": "skipped", "reason": "skipped by config"} if cid in skipped
              else {"id": cid, "status": "ok", "metrics": dict(metrics or {}) if cid == "performance.metrics" else {}}
              for cid in ("data.drift", "performance.metrics", "fairness.disparate_impact")]
    return {"schema_version": "1.1", "audit": {"name": "m", "started_at": "2026-01-01T00:00:00Z"},
            "inputs": {"model": {"sha256": "ab" * 32}}, "checks": checks, "findings": list(findings)}


BASE = _doc(_finding("data.drift/age", "medium"), _finding("data.drift/income", "low"),
            _finding("fairness.disparate_impact/sex=F", "low", check="fairness.disparate_impact"),
            metrics={"auc": 0.80, "auc_ci_low": 0.75, "auc_ci_high": 0.85, "n": 300})


def _diff(new: dict, old: dict = BASE):
    return compare(snapshot(old, source="old"), snapshot(new, source="new"))


def test_the_same_audit_has_no_changes() -> None:
    d = _diff(copy.deepcopy(BASE))
    assert not d.has_changes and not d.added and not d.resolved and not d.changed
    assert d.unchanged == 3 and [m.metric for m in d.metrics] == ["auc"] and not d.moved_metrics
    assert d.gate("low") == []


def test_a_new_high_finding_trips_the_gate_a_new_medium_only_below_medium() -> None:
    worse = copy.deepcopy(BASE)
    worse["findings"] += [_finding("data.drift/leak", "high"), _finding("data.drift/region", "medium")]
    d = _diff(worse)
    assert [f.id for f in d.added] == ["data.drift/leak", "data.drift/region"]  # most severe first
    assert [f.id for f in d.gate("high")] == ["data.drift/leak"]
    assert [f.id for f in d.gate("medium")] == ["data.drift/leak", "data.drift/region"]
    assert d.gate("none") == []
    assert d.to_json()["new"] == ["data.drift/leak", "data.drift/region"]


def test_a_new_accepted_finding_does_not_trip_the_gate() -> None:
    d = _diff(_doc(*BASE["findings"], _finding("data.drift/leak", "high", status="accepted")))
    assert [f.id for f in d.added] == ["data.drift/leak"] and d.gate("low") == []


@pytest.mark.parametrize(("before", "after", "worse"), [
    (("low", "open"), ("high", "open"), True),
    (("high", "open"), ("low", "open"), False),
    (("medium", "accepted"), ("medium", "open"), True),  # the waiver lapsed: it counts again
    (("medium", "open"), ("medium", "accepted"), False),
    (("low", "open"), ("high", "accepted"), True),  # worse, but accepted: never trips the gate
])
def test_changed_findings_say_whether_they_got_worse(before, after, worse) -> None:
    d = _diff(_doc(_finding("data.drift/x", *after)), _doc(_finding("data.drift/x", *before)))
    assert len(d.changed) == 1 and d.changed[0].worse is worse and d.unchanged == 0
    tripping = [f.id for f in d.gate("medium")]
    assert tripping == (["data.drift/x"] if worse and after[1] == "open" else [])
    item = d.to_json()["changed"][0]
    assert item["before"] == {"severity": before[0], "status": before[1]}
    assert item["after"] == {"severity": after[0], "status": after[1]}


def test_a_finding_whose_check_did_not_run_is_not_resolved() -> None:
    gone = _doc(_finding("data.drift/age", "medium"), skipped=("fairness.disparate_impact",))
    d = _diff(gone)
    assert [f.id for f in d.resolved] == ["data.drift/income"]  # its check ran: resolved
    assert [f.id for f in d.not_rechecked] == ["fairness.disparate_impact/sex=F"]  # its check was skipped
    assert [(c.id, c.before, c.after) for c in d.checks] == [("fairness.disparate_impact", "ok", "skipped")]


def test_headline_metrics_are_the_ones_with_an_interval() -> None:
    metrics = {"auc": 0.8, "auc_ci_low": 0.7, "auc_ci_high": 0.9, "attack_auc": 0.55, "attack_auc_low": 0.5,
               "attack_auc_high": 0.6, "n": 300, "share": 0.2, "name": "x", "broken": 0.1, "broken_ci_low": None,
               "broken_ci_high": 0.2}
    assert headline_metrics(metrics) == {"auc": (0.8, (0.7, 0.9)), "attack_auc": (0.55, (0.5, 0.6)),
                                         "broken": (0.1, None)}


def test_metric_deltas_carry_both_intervals_and_whether_they_overlap() -> None:
    d = _diff(_doc(*BASE["findings"], metrics={"auc": 0.60, "auc_ci_low": 0.55, "auc_ci_high": 0.66, "n": 300}))
    (m,) = d.moved_metrics
    assert (m.check, m.metric) == ("performance.metrics", "auc")
    assert m.delta == pytest.approx(-0.20) and m.before_interval == (0.75, 0.85) and m.after_interval == (0.55, 0.66)
    assert m.intervals_overlap is False
    close = _diff(_doc(*BASE["findings"], metrics={"auc": 0.79, "auc_ci_low": 0.74, "auc_ci_high": 0.84}))
    assert close.moved_metrics[0].intervals_overlap is True
    assert d.has_changes and not d.gate("low")  # a metric moving is reported, it does not trip the gate


@pytest.mark.parametrize(("doc", "words"), [
    ([], "needs 'checks' and 'findings' lists"),
    ({"checks": [], "findings": [{"id": "a"}]}, "findings[0] needs an 'id' and a 'check'"),
    ({"checks": [], "findings": [{"id": "a", "check": "c", "severity": "severe"}]}, "severity 'severe'"),
    ({"checks": [], "findings": [{"id": "a", "check": "c", "severity": "low", "status": "waived"}]},
     "status 'waived'"),
    ({"checks": [{"id": "c", "status": "done"}], "findings": []}, "checks[0] needs an 'id' and a status"),
])
def test_a_document_that_is_not_an_audit_is_named(doc, words) -> None:
    with pytest.raises(DiffInputError, match=words.replace("[", r"\[").replace("]", r"\]")):
        snapshot(doc, source="x.json")


def test_an_older_findings_json_without_status_reads_as_open(tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE)
    for f in doc["findings"]:
        del f["status"]
    (tmp_path / "findings.json").write_text(json.dumps(doc))
    snap = load_snapshot(tmp_path)  # a report folder
    assert {f.status for f in snap.findings.values()} == {"open"}


# ---- auditor diff on documents: exit codes and --fail-on ----------------------------------------

@pytest.fixture()
def docs(tmp_path: Path) -> dict[str, Path]:
    worse = copy.deepcopy(BASE)
    worse["findings"].append(_finding("data.drift/region", "medium"))
    out = {}
    for name, doc in (("base", BASE), ("worse", worse)):
        out[name] = tmp_path / f"{name}.json"
        out[name].write_text(json.dumps(doc))
    return out


def test_cli_diff_respects_fail_on(docs) -> None:
    proc = cli("diff", str(docs["base"]), str(docs["worse"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the new finding is medium; the gate is high
    assert "data.drift/region" in proc.stdout and "1 new" in proc.stdout
    assert cli("diff", str(docs["base"]), str(docs["worse"]), "--fail-on", "medium").returncode == 1
    assert cli("diff", str(docs["base"]), str(docs["worse"]), "--fail-on", "none").returncode == 0
    back = cli("diff", str(docs["worse"]), str(docs["base"]), "--fail-on", "low")
    assert back.returncode == 0 and "1 resolved" in back.stdout


def test_cli_diff_json_is_the_findings_json_diff(docs) -> None:
    proc = cli("diff", str(docs["base"]), str(docs["worse"]), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["new"] == ["data.drift/region"] and doc["resolved"] == [] and doc["changed"] == []


@pytest.mark.parametrize("which", ["missing", "folder", "not_json", "not_audit", "bad_level"])
def test_cli_diff_bad_input_is_one_line_exit_2(docs, tmp_path: Path, which: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.json").write_text("{ not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    args = {"missing": [str(tmp_path / "nope.json"), str(docs["base"])],
            "folder": [str(docs["base"]), str(tmp_path / "empty")],
            "not_json": [str(tmp_path / "bad.json"), str(docs["base"])],
            "not_audit": [str(docs["base"]), str(tmp_path / "list.json")],
            "bad_level": [str(docs["base"]), str(docs["worse"]), "--fail-on", "severe"]}[which]
    line = one_line_error(cli("diff", *args))
    words = {"missing": "nope.json", "folder": "no findings.json", "not_json": "not valid JSON",
             "not_audit": "not a findings.json", "bad_level": "--fail-on"}[which]
    assert words in line


# ---- real audits through the CLI ----------------------------------------------------------------

def _write_project(folder: Path, *, leak: bool) -> Path:
    """A small audit: a logistic model on 400 rows; with ``leak``, a copy of the target is a feature."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(10, 3, n)})
    logit = 0.08 * (X["income"] - 50) - 0.3 * (X["debt"] - 10)
    X["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    features = ["income", "debt"]
    if leak:
        X["outcome_code"] = X["default"]
        features.append("outcome_code")
    X.iloc[:300].to_csv(folder / "train.csv", index=False)
    X.iloc[300:].to_csv(folder / "test.csv", index=False)
    sio.dump(LogisticRegression().fit(X.iloc[:300][features], X.iloc[:300]["default"]), folder / "model.skops")
    skip = [c for c in CONTRACT_IDS if c not in KEPT]
    (folder / "audit.toml").write_text(
        '[audit]\nname = "small"\n[model]\npath = "model.skops"\n'
        f'[data]\ntrain = "train.csv"\ntest = "test.csv"\ntarget = "default"\nfeatures = {json.dumps(features)}\n'
        f'[checks]\nskip = {json.dumps(skip)}\n')
    return folder / "audit.toml"


@pytest.fixture(scope="module")
def audits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same audit twice, and a worse model (a leaked target copy) with the first as its baseline."""
    root = tmp_path_factory.mktemp("audits")
    good = _write_project(root / "good", leak=False)
    out: dict[str, Path] = {}
    for name in ("first", "second"):
        out[name] = root / name
        proc = cli("run", str(good), "--out", str(out[name]), "--format", "json")
        assert proc.returncode == 0, proc.stderr
    worse = _write_project(root / "worse", leak=True)
    # the baseline is relative to the config file's folder, not to where auditor runs
    worse.write_text(worse.read_text().replace('name = "small"\n', 'name = "small"\nbaseline = "../first"\n'))
    out["worse"] = root / "worse-report"
    proc = cli("run", str(worse), "--out", str(out["worse"]), "--format", "json,html", cwd=root)
    assert proc.returncode == 1, proc.stderr
    out["worse_stdout"] = root / "worse-stdout.txt"
    out["worse_stdout"].write_text(proc.stdout)
    return out


def test_diff_of_two_runs_of_the_same_audit_lists_no_changes(audits) -> None:
    proc = cli("diff", str(audits["first"]), str(audits["second"] / "findings.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 new · 0 resolved · 0 changed" in proc.stdout
    assert "Headline metrics: 0 of" in proc.stdout and "PASSED" in proc.stdout


def test_diff_against_a_worse_model_lists_the_new_findings_and_fails(audits) -> None:
    worse = json.loads((audits["worse"] / "findings.json").read_text())
    leak = [f["id"] for f in worse["findings"] if f["check"] == "data.leakage" and f["severity"] == "high"]
    assert leak
    proc = cli("diff", str(audits["first"]), str(audits["worse"]))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for fid in leak:
        assert fid in proc.stdout
    assert "FAILED" in proc.stdout
    assert cli("diff", str(audits["first"]), str(audits["worse"]), "--fail-on", "none").returncode == 0
    assert cli("diff", str(audits["worse"]), str(audits["first"])).returncode == 0  # the leak resolved


def test_baseline_shows_in_findings_json_and_the_report(audits) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads((audits["worse"] / "findings.json").read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert doc["audit"]["baseline"] == str((audits["first"] / "findings.json").resolve())
    leak = [f["id"] for f in doc["findings"] if f["check"] == "data.leakage" and f["severity"] == "high"]
    first = json.loads((audits["first"] / "findings.json").read_text())
    before, after = {f["id"] for f in first["findings"]}, {f["id"] for f in doc["findings"]}
    assert set(leak) <= set(doc["diff"]["new"])
    assert set(doc["diff"]["new"]) == after - before and set(doc["diff"]["resolved"]) == before - after
    auc = [m for m in doc["diff"]["metrics"] if m["metric"] == "auc"]
    assert auc and auc[0]["after"] > auc[0]["before"] and len(auc[0]["after_interval"]) == 2
    html = (audits["worse"] / "report.html").read_text()
    assert "Changes since the previous audit" in html and leak[0] in html.replace("<wbr>", "")
    # a report without a baseline has neither
    assert "diff" not in first and "baseline" not in first["audit"]


def test_progress_lines_name_each_step_when_not_in_a_terminal(audits) -> None:
    """Not a terminal (CI): a plain line per step on stdout (stderr keeps a refusal to one line)."""
    out = audits["worse_stdout"].read_text()
    for step in ("reading the baseline findings.json…", "loading the model model.skops…",
                 "loading the test data test.csv…", "drawing the figures…", "writing report.html…",
                 "writing findings.json…"):
        assert step in out, out


def test_a_missing_baseline_is_exit_2_and_leaves_no_report(tmp_path: Path) -> None:
    config = _write_project(tmp_path / "p", leak=False)
    config.write_text(config.read_text().replace('name = "small"\n',
                                                 'name = "small"\nbaseline = "old/findings.json"\n'))
    line = one_line_error(cli("run", str(config), "--out", str(tmp_path / "out"), "--format", "json"))
    assert "audit.baseline" in line and "old/findings.json" in line
    assert not (tmp_path / "out").exists()
    (tmp_path / "p" / "old").mkdir()
    (tmp_path / "p" / "old" / "findings.json").write_text("{}")
    line = one_line_error(cli("run", str(config), "--out", str(tmp_path / "out"), "--format", "json"))
    assert "not a findings.json" in line
    assert not (tmp_path / "out").exists()


def test_the_report_has_a_changes_section_only_with_a_baseline() -> None:
    from dataclasses import replace

    from test_render import make_result

    from auditor.render.html import render_html
    from auditor.render.view import build_view

    result = make_result()
    view = build_view(result)
    assert view["changes"] is None and "Changes since the previous audit" not in render_html(view)
    old = result.to_json()
    old["findings"] = [f for f in old["findings"] if f["id"] != "data.drift/income"]
    view = build_view(replace(result, baseline=snapshot(old, source="old/findings.json")))
    assert [s["anchor"] for s in view["toc"][:3]] == ["summary", "changes", "overview"]
    assert [(r["kind"], r["id"]) for r in view["changes"]["rows"]] == [("new", "data.drift/income")]
    html = render_html(view)
    assert 'id="changes"' in html and '<a href="#finding-1">' in html.split('id="changes"')[1]
    assert '<span class="sec-num">3</span> Model overview' in html  # the sections after it renumbered
