"""Hostile Python-object models through the real CLI: model code cannot decide the exit code.

Each test writes a ``model.py`` whose class misbehaves (``sys.exit(0)``, a ``BaseException``,
``os._exit(0)``, a segmentation fault, a hang) at load or on some inputs, and runs
``python -m auditor run``. The audit must either refuse to start (exit 2, one line, no report)
or complete and write its report with the failure recorded; never exit 0 by accident.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, one_line_error

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
ALL_BUT = ["data.schema", "data.quality", "data.leakage", "data.drift", "performance.metrics", "performance.overfit",
           "performance.calibration", "sensitivity.partial_dependence", "sensitivity.adversarial",
           "sensitivity.random_attack", "residual.analysis", "residual.segments", "fairness.disparate_impact",
           "fairness.error_parity", "fairness.proxy", "benchmark.comparison", "security.membership_inference",
           "security.model_extraction", "security.attribute_inference", "explain.importance"]

# a well-behaved logistic scorer; MISBEHAVE is replaced by each test's hostile statement
MODEL = '''
import os, sys, time
import numpy as np

class Boom(BaseException):
    pass

LOAD

class Model:
    classes_ = np.array([0, 1])
    feature_names_in_ = np.array(["income", "debt"])

    def predict_proba(self, X):
        if WHEN:
            MISBEHAVE
        z = 0.08 * (X["income"].to_numpy(dtype=float) - 50) - 0.3 * (X["debt"].to_numpy(dtype=float) - 10)
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
'''
SOME_MISSING = 'X["income"].isna().any()'  # random_attack's missing incomes; the test data have none


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True,
                          cwd=cwd, env={**ENV, "PYTHONPATH": str(ROOT)}, timeout=300)


def project(tmp_path: Path, *, load: str = "pass", when: str = "False", misbehave: str = "pass",
            run: tuple[str, ...] = ("sensitivity.random_attack",), extra: str = "", fail_on: str = "medium") -> Path:
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"income": rng.normal(50, 10, n).round(2), "debt": rng.normal(10, 3, n).round(2)})
    z = 0.08 * (df["income"] - 50) - 0.3 * (df["debt"] - 10)
    df["default"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    df.iloc[:200].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[200:].to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "model.py").write_text(MODEL.replace("LOAD", load).replace("WHEN", when)
                                       .replace("MISBEHAVE", misbehave))
    skip = [c for c in ALL_BUT if c not in run]
    (tmp_path / "audit.toml").write_text(textwrap.dedent(f'''\
        [audit]
        name = "hostile"
        fail_on = "{fail_on}"
        [model]
        path = "model.py:Model"
        trusted = true
        {extra}
        [data]
        train = "train.csv"
        test = "test.csv"
        target = "default"
        [checks]
        skip = {json.dumps(skip)}
        [checks."sensitivity.random_attack"]
        n_random = 20
        rows_per_column = 4
        '''))
    return tmp_path


def run_audit(folder: Path) -> tuple[subprocess.CompletedProcess, Path]:
    out = folder / "out"
    return cli("run", "audit.toml", "--out", str(out), "--format", "json", cwd=folder), out


def random_attack(out: Path) -> tuple[dict, list[dict]]:
    doc = json.loads((out / "findings.json").read_text())
    check = next(c for c in doc["checks"] if c["id"] == "sensitivity.random_attack")
    return check, [f for f in doc["findings"] if f["check"] == "sensitivity.random_attack"]


def test_sys_exit_at_load_is_exit_2_with_one_line(tmp_path: Path) -> None:
    proc, out = run_audit(project(tmp_path, load="sys.exit(0)"))
    line = one_line_error(proc)
    assert "model code raised SystemExit(0) while loading" in line and "model.py:Model" in line
    assert not out.exists()


def test_sys_exit_on_a_missing_value_is_a_finding_not_a_passed_gate(tmp_path: Path) -> None:
    proc, out = run_audit(project(tmp_path, when=SOME_MISSING, misbehave="sys.exit(0)"))
    # the model refuses missing values by ending the process: random_attack records the refusal
    # (SystemExit(0) named) as the "needs an input guard" finding, low because training had no
    # missing values and the model fails loudly (issue 10); the audit never exits 0 silently
    assert proc.returncode == 1, proc.stderr
    check, findings = random_attack(out)
    assert check["status"] == "ok"
    refusals = [f for f in findings if "SystemExit(0)" in f["summary"]]
    assert refusals and refusals[0]["severity"] == "low" and refusals[0]["id"].endswith("guard/missing"), findings
    assert "Traceback" not in proc.stderr


def test_a_base_exception_subclass_is_handled_without_traceback(tmp_path: Path) -> None:
    proc, out = run_audit(project(tmp_path, when=SOME_MISSING, misbehave='raise Boom("no missing values")'))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    check, findings = random_attack(out)
    assert check["status"] == "ok"
    assert any("Boom('no missing values')" in f["summary"] for f in findings), findings


def test_os_exit_on_some_inputs_is_survived_and_recorded(tmp_path: Path) -> None:
    proc, out = run_audit(project(tmp_path, when=SOME_MISSING, misbehave="os._exit(0)"))
    assert proc.returncode == 1, proc.stderr
    check, findings = random_attack(out)
    assert check["status"] == "ok"
    assert any("model process exited with code 0" in f["summary"] for f in findings), findings


def test_a_segfault_on_some_inputs_is_survived_and_recorded(tmp_path: Path) -> None:
    proc, out = run_audit(project(tmp_path, when=SOME_MISSING, misbehave="import ctypes; ctypes.string_at(0)"))
    assert proc.returncode == 1, proc.stderr
    check, findings = random_attack(out)
    assert check["status"] == "ok"
    assert any("SIGSEGV" in f["summary"] for f in findings), findings


def test_a_hang_on_some_inputs_times_out_and_the_audit_completes(tmp_path: Path) -> None:
    folder = project(tmp_path, when=SOME_MISSING, misbehave="time.sleep(1000)", extra="timeout_s = 2")
    t0 = time.monotonic()
    proc, out = run_audit(folder)
    assert time.monotonic() - t0 < 120
    assert proc.returncode == 1, proc.stderr
    check, findings = random_attack(out)
    assert check["status"] == "ok"
    assert any("timed out after 2 s" in f["summary"] for f in findings), findings


def test_timeout_must_be_positive(tmp_path: Path) -> None:
    proc, out = run_audit(project(tmp_path, extra="timeout_s = 0"))
    line = one_line_error(proc)
    assert "model.timeout_s" in line and "greater than 0" in line


# ---- in process (no CLI start-up): the engine and the adapters ---------------------------------------
def prepared(folder: Path):
    from auditor.config import load_config
    from auditor.engine import prepare

    return prepare(load_config(folder / "audit.toml"))


def test_os_exit_at_load_and_a_failure_on_the_test_data_stop_the_audit_before_it_starts(
        tmp_path: Path) -> None:
    from auditor.errors import AuditInputError

    (tmp_path / "a").mkdir()
    with pytest.raises(AuditInputError, match="model process exited with code 0 while loading"):
        prepared(project(tmp_path / "a", load="os._exit(0)"))
    (tmp_path / "b").mkdir()
    with pytest.raises(AuditInputError, match=r"failed to predict on the test data.*Boom\('always'\)"):
        prepared(project(tmp_path / "b", when="True", misbehave="raise Boom('always')"))
    (tmp_path / "c").mkdir()
    with pytest.raises(AuditInputError, match="failed to predict on the test data.*process exited with code 0 "
                                              "during predict_proba on 100 rows"):
        prepared(project(tmp_path / "c", when="True", misbehave="os._exit(0)"))


def test_a_crash_in_a_check_that_does_not_expect_one_is_that_checks_error(tmp_path: Path) -> None:
    # the model scores the 100 test rows, then its process dies on any other batch: explain.importance
    # (which does not record model failures as findings) ends in error, the others complete: exit 3
    folder = project(tmp_path, when="len(X) != 100", misbehave="os._exit(0)",
                     run=("explain.importance", "performance.metrics"), fail_on="none")
    audit = prepared(folder)
    assert audit.context.model.adapter.obj is None
    result = audit.run()
    status = {c.id: c for c in result.checks}
    assert status["performance.metrics"].status.value == "ok"
    assert status["explain.importance"].status.value == "error"
    assert "model process exited with code 0" in status["explain.importance"].error
    assert result.exit_code == 3


def test_hosted_predictions_equal_in_process_ones_and_the_object_dependent_check_runs(tmp_path: Path) -> None:
    """The host returns exactly what the model returns; benchmark.comparison, which unwraps the
    model object when it can, takes its model-agnostic path (adapter.obj is None) and completes."""
    import importlib.util

    folder = project(tmp_path, run=("benchmark.comparison",), fail_on="none")
    with open(folder / "audit.toml", "a") as fh:
        fh.write('[checks."benchmark.comparison"]\nn_resamples = 50\n')
    audit = prepared(folder)
    spec = importlib.util.spec_from_file_location("_hostile_direct", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    X = audit.context.X("test")
    np.testing.assert_array_equal(audit.context.predictions("test").proba, module.Model().predict_proba(X))
    np.testing.assert_array_equal(audit.context.model.adapter.predict(X), module.Model().predict(X))
    result = audit.run()
    assert {c.id: c.status.value for c in result.checks}["benchmark.comparison"] == "ok"
    assert audit.context.model.adapter.kind == "python:Model"


def test_the_host_restarts_after_a_crash_and_gives_up_after_too_many(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from auditor import modelhost
    from auditor.model import ModelCallError

    folder = project(tmp_path, when=SOME_MISSING, misbehave="os._exit(3)")
    host = modelhost.HostedModel(f"{folder / 'model.py'}:Model", timeout_s=30)
    X = pd.read_csv(folder / "test.csv")[["income", "debt"]]
    bad = X.copy()
    bad.loc[5, "income"] = np.nan
    good = host.predict_proba(X)
    with pytest.raises(ModelCallError, match="exited with code 3 during predict_proba on 100 rows"):
        host.predict_proba(bad)
    np.testing.assert_array_equal(host.predict_proba(X), good)  # restarted
    assert host.restarts == 1
    monkeypatch.setattr(modelhost, "MAX_RESTARTS", 2)
    with pytest.raises(ModelCallError, match="exited with code 3"):
        host.predict_proba(bad)
    host.predict_proba(X)  # the second restart
    with pytest.raises(ModelCallError, match="exited with code 3"):
        host.predict_proba(bad)
    with pytest.raises(ModelCallError, match="failed again after 2 restarts in this audit and is not restarted"):
        host.predict_proba(X)
    host.close()


def test_in_process_models_turn_base_exceptions_into_model_call_errors() -> None:
    """Models that stay in the auditor's process (in-memory objects, skops, ONNX): a SystemExit or
    other BaseException from model code becomes a ModelCallError; KeyboardInterrupt stays itself."""
    from auditor.model import ModelCallError, PythonModel

    class Exits:
        def __init__(self, exc: BaseException) -> None:
            self.exc = exc

        def predict_proba(self, X):
            raise self.exc

        predict = predict_proba

    X = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(ModelCallError, match=r"model code raised SystemExit\(0\) during predict_proba on 3 rows"):
        PythonModel(Exits(SystemExit(0))).predict_proba(X)
    with pytest.raises(ModelCallError, match="GeneratorExit"):
        PythonModel(Exits(GeneratorExit())).predict(X)
    with pytest.raises(ValueError, match="plain"):
        PythonModel(Exits(ValueError("plain"))).predict(X)  # ordinary exceptions pass unchanged
    with pytest.raises(KeyboardInterrupt):
        PythonModel(Exits(KeyboardInterrupt())).predict(X)
