"""End-to-end tests of the real CLI on real files: bad input, exit codes, the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from conftest import CONTRACT_IDS, DEMO_GROUP, ROOT, SCHEMA, DemoRun, baseline_diff, one_line_error
from sklearn.linear_model import LogisticRegression

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=ENV, timeout=600)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A small, valid audit folder: numeric data, a logistic model saved with skops, a config."""
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(10, 3, n),
                      "region": rng.choice(["north", "south"], n)})
    logit = 0.08 * (X["income"] - 50) - 0.3 * (X["debt"] - 10)
    X["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X.iloc[:300].to_csv(tmp_path / "train.csv", index=False)
    X.iloc[300:].to_csv(tmp_path / "test.csv", index=False)
    model = LogisticRegression().fit(X.iloc[:300][["income", "debt"]], X.iloc[:300]["default"])
    sio.dump(model, tmp_path / "model.skops")
    joblib.dump(model, tmp_path / "model.joblib")
    (tmp_path / "audit.toml").write_text(
        '[audit]\nname = "small"\n[model]\npath = "model.skops"\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\ntarget = "default"\nfeatures = ["income", "debt"]\n'
        '[checks]\nskip = ["explain.importance", "sensitivity.adversarial", "sensitivity.partial_dependence"]\n')
    return tmp_path


def write_config(project: Path, text: str) -> Path:
    path = project / "audit.toml"
    path.write_text(text)
    return path


def test_help_lists_commands_and_keeps_config_names() -> None:
    proc = cli("--help")
    assert proc.returncode == 0
    assert "run" in proc.stdout and "demo" in proc.stdout
    # help texts name config tables such as [audit] seed; they must print as written
    proc = cli("run", "--help")
    assert "[audit] seed" in proc.stdout


def test_help_imports_no_heavy_library() -> None:
    """``auditor --help`` stays quick because the numerical and rendering libraries are imported
    only where an audit uses them."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "auditor", "--help"], capture_output=True,
                          text=True, cwd=ROOT, env=ENV, timeout=120)
    assert proc.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert not imported & {"sklearn", "matplotlib", "weasyprint", "shap", "art", "scipy", "pandas", "onnxruntime"}


def test_checks_lists_options_with_kind_type_toml_default_and_description() -> None:
    proc = cli("checks")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for check_id in CONTRACT_IDS:
        assert check_id in out
    block = out[out.index("performance.calibration"):out.index("sensitivity.partial_dependence")]
    assert "thresholds" in block and "budgets" in block
    assert "ece_high = 0.1  (float)  expected calibration error at which" in block
    assert "n_resamples = 200  (integer)" in block
    assert "True" not in out and "False" not in out and "'(required)'" not in out  # TOML, not Python


def test_unknown_config_key_names_it_and_suggests(project: Path) -> None:
    text = (project / "audit.toml").read_text().replace("target =", "targte =")
    line = one_line_error(cli("run", str(write_config(project, text)), "--out", str(project / "out")))
    assert "data.targte" in line and "target" in line
    assert not (project / "out").exists()


def test_unknown_check_option_is_an_error(project: Path) -> None:
    text = (project / "audit.toml").read_text() + '[checks."data.drift"]\npsi_hgh = 0.3\n'
    line = one_line_error(cli("run", str(write_config(project, text)), "--out", str(project / "out")))
    assert "psi_hgh" in line
    assert not (project / "out").exists()


def test_missing_column_is_named(project: Path) -> None:
    text = (project / "audit.toml").read_text().replace('"debt"]', '"debts"]')
    line = one_line_error(cli("run", str(write_config(project, text)), "--out", str(project / "out")))
    assert "'debts'" in line
    assert not (project / "out").exists()


def test_untrusted_pickle_is_refused(project: Path) -> None:
    text = (project / "audit.toml").read_text().replace("model.skops", "model.joblib")
    line = one_line_error(cli("run", str(write_config(project, text)), "--out", str(project / "out")))
    assert "model.joblib" in line and "trusted" in line
    assert not (project / "out").exists()


def test_missing_file_is_named(project: Path) -> None:
    text = (project / "audit.toml").read_text().replace("test.csv", "tset.csv")
    line = one_line_error(cli("run", str(write_config(project, text)), "--out", str(project / "out")))
    assert "tset.csv" in line
    assert not (project / "out").exists()


def test_missing_config_file(project: Path) -> None:
    line = one_line_error(cli("run", str(project / "nope.toml")))
    assert "nope.toml" in line


def test_constant_target_is_refused(project: Path) -> None:
    df = pd.read_csv(project / "test.csv")
    df["default"] = 0
    df.to_csv(project / "test.csv", index=False)
    line = one_line_error(cli("run", str(project / "audit.toml"), "--out", str(project / "out")))
    assert "constant" in line and "'default'" in line
    assert "(only the value 0)" in line  # the value as the data holds it, not numpy's repr (np.int64(0))
    assert not (project / "out").exists()


def test_nonempty_out_needs_force(project: Path) -> None:
    out = project / "out"
    out.mkdir()
    (out / "keep.txt").write_text("evidence")
    line = one_line_error(cli("run", str(project / "audit.toml"), "--out", str(out)))
    assert "--force" in line


def test_run_writes_requested_formats_and_gate(project: Path) -> None:
    out = project / "out"
    proc = cli("run", str(project / "audit.toml"), "--out", str(out), "--format", "json,html", "--fail-on", "none")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["findings.json", "remediation", "report.html"]
    doc = json.loads((out / "findings.json").read_text())
    assert doc["audit"]["gate"] == "passed" and doc["audit"]["fail_on"] == "none"
    statuses = {c["id"]: c["status"] for c in doc["checks"]}
    assert statuses["explain.importance"] == "skipped"
    assert [c for c in doc["checks"] if c["id"] == "explain.importance"][0]["reason"] == "skipped by config"


def test_leaked_target_copy_fails_the_gate(project: Path) -> None:
    """A planted defect through the whole CLI: a feature that is a copy of the target."""
    for name in ("train.csv", "test.csv"):
        df = pd.read_csv(project / name)
        df["outcome_code"] = df["default"]
        df.to_csv(project / name, index=False)
    train = pd.read_csv(project / "train.csv")
    sio.dump(LogisticRegression().fit(train[["income", "debt", "outcome_code"]], train["default"]),
             project / "model.skops")
    text = (project / "audit.toml").read_text().replace('"debt"]', '"debt", "outcome_code"]')
    out = project / "out"
    # run in a probe that lists the packages the CLI loaded: figures are drawn only for html and
    # pdf, so a JSON-only audit never imports matplotlib
    proc = subprocess.run([sys.executable, "-c", _LOADED_AFTER_MAIN, "run", str(write_config(project, text)),
                           "--out", str(out), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    loaded = json.loads(proc.stderr.strip().splitlines()[-1])
    assert "sklearn" in loaded  # the probe sees the audit's imports
    assert "matplotlib" not in loaded
    doc = json.loads((out / "findings.json").read_text())
    leak = [f for f in doc["findings"] if f["check"] == "data.leakage" and "outcome_code" in f["features"]]
    assert leak and leak[0]["severity"] == "high"


def test_python_object_model_needs_trust(project: Path) -> None:
    (project / "my_model.py").write_text(
        "import numpy as np\n"
        "class Model:\n"
        "    def predict_proba(self, X):\n"
        "        p = 1 / (1 + np.exp(-0.08 * (X['income'].to_numpy() - 50)))\n"
        "        return np.column_stack([1 - p, p])\n"
        "    def predict(self, X):\n"
        "        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)\n")
    text = (project / "audit.toml").read_text().replace('path = "model.skops"', 'path = "my_model.py:Model"')
    line = one_line_error(cli("run", str(write_config(project, text)), "--out", str(project / "out")))
    assert "trusted" in line
    text = text.replace('path = "my_model.py:Model"', 'path = "my_model.py:Model"\ntrusted = true')
    proc = cli("run", str(write_config(project, text)), "--out", str(project / "out"), "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads((project / "out" / "findings.json").read_text())
    assert doc["inputs"]["model"]["kind"] == "python:Model"


# runs the CLI in this process, then prints the top-level packages it loaded as a JSON list on stderr
# (from an exit handler: the console script ends the process itself, running the exit handlers first)
_LOADED_AFTER_MAIN = """
import atexit, json, sys
def loaded():
    names = sorted({m.split(".")[0] for m, mod in list(sys.modules.items()) if mod is not None})
    print(json.dumps(names), file=sys.stderr)
atexit.register(loaded)
from auditor.cli import main
main()
"""


@pytest.mark.slow
@pytest.mark.xdist_group(DEMO_GROUP)  # its demo run is shared with the report-structure tests
def test_demo_end_to_end_is_valid_and_matches_the_baseline(demo_run: DemoRun) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    first, proc = demo_run.out, demo_run
    assert proc.returncode in (0, 1), proc.stderr
    assert sorted(p.name for p in first.iterdir()) == ["findings.json", "remediation", "report.html", "report.pdf"]
    doc = json.loads((first / "findings.json").read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    ids = [c["id"] for c in doc["checks"]]
    for check_id in CONTRACT_IDS:
        assert ids.count(check_id) == 1, check_id
    assert all(c["status"] != "error" for c in doc["checks"]), [c for c in doc["checks"] if c["status"] == "error"]
    # a well-built model on clean data: no high finding at all; the sample data carries a real,
    # significant disadvantage for applicants under 25, which the fairness checks must report at
    # least as medium (high needs the four-fifths breach itself established by the AIR's interval,
    # which 300 test rows cannot do: AIR 0.74, 95% interval 0.60-0.91); the demo gates at medium
    assert not [f["title"] for f in doc["findings"] if f["severity"] == "high"]
    assert any(f["check"] == "fairness.disparate_impact" and f["severity"] == "medium" and
               {"column": "age_band", "value": "under 25"} in f["groups"] for f in doc["findings"])
    assert doc["audit"]["fail_on"] == "medium" and doc["audit"]["gate"] == "failed"
    assert proc.returncode == 1
    assert not [f for f in doc["findings"] if f["check"].startswith("fairness.") and f["severity"] in
                ("high", "medium") and any(g["column"] == "sex" for g in f.get("groups", []))]
    assert (first / "report.pdf").read_bytes().startswith(b"%PDF")
    # the same demo with one and two worker processes and no rendering gives these findings too
    # (test_parallel), a JSON-only run imports no matplotlib (test_leaked_target_copy_fails_the_gate)
    # and the diff of two runs of one audit lists no change (test_diff)
    # the stored copy of the demo's checks and findings (made before the structure refactor of issue
    # 9); a change to it is deliberate and its commit says why
    assert baseline_diff(doc) == []
