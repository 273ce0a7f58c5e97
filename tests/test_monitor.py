"""``auditor monitor`` on the demo: the baseline a (small) audit of the shipped credit model writes,
its own test data passes, shifted copies alert naming what moved, and bad inputs exit 2 with one
line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from conftest import ROOT, SCHEMA, one_line_error

# the module's expensive fixtures (whole audits) run once: all its tests in one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("monitor")

DEMO = ROOT / "sample_models"
MODEL = DEMO / "credit_model.skops"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}
KEPT = ("data.drift", "fairness.disparate_impact")  # the checks the baseline reads; the others are skipped


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=600)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo audit with only the two checks the baseline reads (findings.json and the baseline)."""
    from auditor.checks import default_registry

    work = tmp_path_factory.mktemp("monitor")
    config = (DEMO / "audit.toml").read_text(encoding="utf-8")
    for name in ("credit_model.skops", "train.csv", "test.csv"):
        config = config.replace(f'"{name}"', json.dumps(str(DEMO / name)))
    skip = [c for c in default_registry().ids() if c not in KEPT]
    config = config.replace("[report]", f"[checks]\nskip = {json.dumps(skip)}\n\n[report]")
    (work / "audit.toml").write_text(config, encoding="utf-8")
    out = work / "report"
    proc = cli("run", work / "audit.toml", "--out", out, "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    assert (out / "remediation" / "monitoring.json").is_file()
    return out


@pytest.fixture(scope="module")
def baseline(report: Path) -> Path:
    return report / "remediation" / "monitoring.json"


@pytest.fixture(scope="module")
def test_rows() -> pd.DataFrame:
    return pd.read_csv(DEMO / "test.csv")


@pytest.fixture(scope="module")
def train_rows() -> pd.DataFrame:
    return pd.read_csv(DEMO / "train.csv")


def write(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str


def run_monitor(baseline: Path, data: Path, tmp_path: Path, *extra: object, real: bool = False) -> tuple[Run, dict]:
    """``auditor monitor ... --out``: in this process (typer's runner), or with ``real`` as a subprocess."""
    out = tmp_path / "result.json"
    args = ["monitor", str(baseline), str(data), "--out", str(out), *map(str, extra)]
    if real:
        proc = cli(*args)
        run = Run(proc.returncode, proc.stdout)
        assert proc.returncode in (0, 1), proc.stderr
    else:
        from typer.testing import CliRunner

        from auditor.cli import app

        res = CliRunner().invoke(app, args, env={"COLUMNS": "160"})
        run = Run(res.exit_code, res.stdout)
        assert res.exit_code in (0, 1), (res.output, res.exception)
    return run, json.loads(out.read_text(encoding="utf-8"))


def test_findings_json_has_the_verified_monitoring_remedy(report: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads((report / "findings.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    (rem,) = [r for r in doc["remediations"] if r["kind"] == "monitoring"]
    assert rem["verified"] is True and rem["artifacts"] == ["remediation/monitoring.json"]
    assert rem["before"] == rem["after"] and rem["after"]["alerts_on_test_rows"] == 0
    assert rem["addresses"] == ["fairness.disparate_impact/age_band=under_25"]


def test_the_demo_test_data_passes(baseline: Path, tmp_path: Path) -> None:
    proc, doc = run_monitor(baseline, DEMO / "test.csv", tmp_path, real=True)
    assert proc.returncode == 0 and doc["status"] == "ok" and doc["counts"]["alerts"] == 0
    assert "credit_amount" in proc.stdout and "OK" in proc.stdout
    assert {c["column"] for c in doc["columns"]} == {"job", "housing", "saving_accounts", "checking_account",
                                                     "purpose", "credit_amount", "duration", "age"}
    assert doc["groups"] == [] and any("no model" in n for n in doc["notes"])


def test_with_the_model_the_score_and_group_air_appear_and_match_the_audit(baseline: Path, report: Path,
                                                                            tmp_path: Path) -> None:
    proc, doc = run_monitor(baseline, DEMO / "test.csv", tmp_path, "--model", MODEL)
    assert proc.returncode == 0 and doc["status"] == "ok" and doc["model"]["matches_baseline"] is True
    score = next(c for c in doc["columns"] if c["role"] == "score")
    assert score["psi"] == 0.0 and score["level"] == "ok"
    under25 = next(g for g in doc["groups"] if g["grouping"] == "age_band" and g["group"] == "under 25")
    findings = json.loads((report / "findings.json").read_text(encoding="utf-8"))
    di = next(c for c in findings["checks"] if c["id"] == "fairness.disparate_impact")
    assert under25["adverse_impact_ratio"] == pytest.approx(di["metrics"]["min_adverse_impact_ratio/age_band"])
    assert under25["air_level"] == "warn"  # below 0.80 as in the audit: a known finding warns
    assert "model score" in proc.stdout and "under 25" in proc.stdout and "AIR" in proc.stdout


def test_the_monitor_reproduces_the_drift_checks_psi(baseline: Path, report: Path, tmp_path: Path) -> None:
    _, doc = run_monitor(baseline, DEMO / "test.csv", tmp_path)
    findings = json.loads((report / "findings.json").read_text(encoding="utf-8"))
    drift = next(c for c in findings["checks"] if c["id"] == "data.drift")
    audited = {r["column"]: r["psi"] for r in drift["tables"]["drift"] if r["role"] == "feature"}
    got = {c["column"]: c["psi"] for c in doc["columns"]}
    assert got == pytest.approx(audited, abs=1e-12)


def independent_psi(reference: pd.Series, current: pd.Series, n_bins: int = 10, eps: float = 1e-4) -> float:
    """PSI on the reference's deciles computed directly with numpy and pandas."""
    edges = np.unique(np.quantile(reference, np.arange(1, n_bins) / n_bins))
    edges = edges[edges < reference.max()]
    bins = [-np.inf, *edges, np.inf]
    r = pd.cut(reference, bins).value_counts(sort=False, normalize=True).to_numpy()
    c = pd.cut(current, bins).value_counts(sort=False, normalize=True).to_numpy()
    r, c = np.clip(r, eps, None), np.clip(c, eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def test_a_numeric_shift_of_two_sd_alerts_naming_the_feature(baseline: Path, tmp_path: Path, test_rows: pd.DataFrame,
                                                              train_rows: pd.DataFrame) -> None:
    shifted = test_rows.assign(credit_amount=test_rows["credit_amount"] + 2 * train_rows["credit_amount"].std())
    proc, doc = run_monitor(baseline, write(shifted, tmp_path / "shifted.csv"), tmp_path)
    assert proc.returncode == 1 and doc["status"] == "alert"
    alerts = [f for f in doc["alerts"] if f["level"] == "alert"]
    assert [f["subject"] for f in alerts] == ["feature 'credit_amount'"]
    assert "credit_amount" in proc.stdout and "ALERT" in proc.stdout
    got = next(c for c in doc["columns"] if c["column"] == "credit_amount")["psi"]
    assert got == pytest.approx(independent_psi(train_rows["credit_amount"], shifted["credit_amount"]), rel=1e-9)


def test_a_category_share_change_alerts_naming_the_feature(baseline: Path, tmp_path: Path,
                                                            test_rows: pd.DataFrame, train_rows: pd.DataFrame) -> None:
    changed = test_rows.copy()
    changed.loc[changed.index[:120], "housing"] = "rent"  # rent: 18% of training rows, now over half
    proc, doc = run_monitor(baseline, write(changed, tmp_path / "changed.csv"), tmp_path, "--model", MODEL)
    assert proc.returncode == 1
    assert "feature 'housing'" in [f["subject"] for f in doc["alerts"] if f["level"] == "alert"]
    ref = train_rows["housing"].value_counts(normalize=True)
    now = changed["housing"].value_counts(normalize=True)
    expected = sum((now[k] - ref[k]) * np.log(now[k] / ref[k]) for k in ref.index)
    assert next(c for c in doc["columns"] if c["column"] == "housing")["psi"] == pytest.approx(expected, rel=1e-9)


def test_a_model_that_drops_a_groups_approvals_alerts_on_its_rate(baseline: Path, tmp_path: Path,
                                                                   test_rows: pd.DataFrame) -> None:
    worse = test_rows.copy()
    men = worse["sex"] == "male"
    worse.loc[men, "checking_account"] = "little"  # the model's strongest driver, worst level for men
    worse.loc[men, "duration"] = 60
    proc, doc = run_monitor(baseline, write(worse, tmp_path / "worse.csv"), tmp_path, "--model", MODEL)
    assert proc.returncode == 1
    male = next(g for g in doc["groups"] if g["grouping"] == "sex" and g["group"] == "male")
    assert male["rate_level"] == "alert" and male["change"] < -0.10


@pytest.mark.parametrize("case", ["no baseline", "no data", "missing column", "findings.json", "untrusted pickle",
                                  "not json"])
def test_bad_input_exits_2_with_one_line(case: str, baseline: Path, report: Path, tmp_path: Path,
                                         test_rows: pd.DataFrame) -> None:
    data = DEMO / "test.csv"
    args: list[object] = [baseline, data]
    if case == "no baseline":
        args = [tmp_path / "missing.json", data]
    elif case == "no data":
        args = [baseline, tmp_path / "missing.csv"]
    elif case == "missing column":
        args = [baseline, write(test_rows.drop(columns=["age"]), tmp_path / "no_age.csv")]
    elif case == "findings.json":
        args = [report / "findings.json", data]
    elif case == "untrusted pickle":
        obj = sio.load(MODEL, trusted=sio.get_untrusted_types(file=MODEL))
        joblib.dump(obj, tmp_path / "model.joblib")
        args = [baseline, data, "--model", tmp_path / "model.joblib"]
    elif case == "not json":
        (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
        args = [tmp_path / "bad.json", data]
    line = one_line_error(cli("monitor", *args))
    expected = {"no baseline": "not found", "no data": "not found", "missing column": "'age'",
                "findings.json": "not a monitoring baseline", "untrusted pickle": "--trusted",
                "not json": "not a monitoring baseline"}[case]
    assert expected in line, line
