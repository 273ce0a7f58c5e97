"""Checks in forked worker processes ([engine] workers): the same results as in one process, in
registry order; measurements come back (or the check runs in the audit process); a check that kills
its worker is that check's error; hosted and ONNX models get their own host or session per worker."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, TEST_FAMILY, baseline_diff, stable

from auditor.checks.base import Check, CheckRegistry
from auditor.engine import prepare, prepare_objects
from auditor.findings import Finding, Severity, Status
from auditor.parallel import ForkPool, fork_available, worker_threads
from auditor.remediation import Remedy, RemedyInputs, RemedyOutput
from auditor.runner import run_checks

pytestmark = pytest.mark.skipif(not fork_available(), reason="worker processes are forked (Linux)")


def data(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"income": rng.normal(50, 10, n).round(2), "debt": rng.normal(10, 3, n).round(2)})
    z = 0.08 * (df["income"] - 50) - 0.3 * (df["debt"] - 10)
    df["default"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return df


@pytest.fixture(scope="module")
def model_and_data():
    from sklearn.linear_model import LogisticRegression

    df = data()
    return LogisticRegression().fit(df[["income", "debt"]], df["default"]), df


@dataclass(frozen=True)
class Where:
    pid: int
    value: float
    threads: dict[str, int]
    host_pid: int | None = None


def _threads() -> dict[str, int]:
    from threadpoolctl import threadpool_info

    return {i["user_api"]: i["num_threads"] for i in threadpool_info()}


def _host_pid(ctx: Any) -> int | None:
    procs = getattr(ctx.model.adapter, "_procs", None)
    return procs[-1].pid if procs else None


@dataclass
class Measure(Check):
    """Scores ten rows again (a model call in the process it runs in) and says where it ran."""

    id: ClassVar[str] = "test.measure"
    family = TEST_FAMILY
    title: ClassVar[str] = "Where it ran"
    order = 1
    sleep_s: float = 0.0

    def measure(self, ctx):
        time.sleep(self.sleep_s)
        score = ctx.predict_frame(ctx.X("test").iloc[:10]).score
        return Where(os.getpid(), float(score.sum()), _threads(), _host_pid(ctx))

    def judge(self, m):
        return [Finding(id=f"{self.id}/x", check=self.id, severity=Severity.LOW, title="t",
                        summary=f"sum {m.value:.6f}")]


@dataclass
class Measure2(Measure):
    """The same, a second id."""

    id: ClassVar[str] = "test.measure2"
    title: ClassVar[str] = "Where it ran, again"
    order = 2


@dataclass(frozen=True)
class WithLambda:
    pid: int
    fn: Any  # a lambda: cannot be pickled


@dataclass
class Unpicklable(Check):
    """Its measurement holds a lambda, so it cannot come back from a worker process."""

    id: ClassVar[str] = "test.unpicklable"
    family = TEST_FAMILY
    title: ClassVar[str] = "Unpicklable measurement"
    order = 3

    def measure(self, ctx):
        return WithLambda(os.getpid(), lambda x: x)


@dataclass
class Killer(Check):
    """Kills the process it runs in."""

    id: ClassVar[str] = "test.killer"
    family = TEST_FAMILY
    title: ClassVar[str] = "Kills its process"
    order = 0
    how: str = "exit"

    def measure(self, ctx):
        if self.how == "exit":
            os._exit(3)
        os.kill(os.getpid(), signal.SIGKILL)


class Recorder:
    """A progress object that remembers the order of the calls."""

    def __init__(self) -> None:
        self.finished_ids: list[str] = []

    def started(self, check_id: str, title: str) -> None:
        pass

    def finished(self, result) -> None:
        self.finished_ids.append(result.id)


def objects_audit(model_and_data, *checks: type[Check], workers: int = 2, check_timeout: float | None = None, **kw):
    model, df = model_and_data
    engine: dict[str, Any] = {"workers": workers}
    if check_timeout is not None:
        engine["check_timeout"] = check_timeout
    return prepare_objects(model, test=df.iloc[200:], train=df.iloc[:200], target="default",
                           registry=CheckRegistry(checks), engine=engine, **kw)


def test_results_come_back_in_registry_order_while_progress_follows_arrival(model_and_data) -> None:
    # the first check sleeps: the second finishes first, and progress says so; the results keep the
    # registry's order, and each check's measurement (made in a worker) came back
    audit = objects_audit(model_and_data, Measure, Measure2, checks={"test.measure": {"sleep_s": 1.0}})
    progress = Recorder()
    result = audit.run(progress=progress)
    assert [c.id for c in result.checks] == ["test.measure", "test.measure2"]
    assert progress.finished_ids == ["test.measure2", "test.measure"]
    assert audit.where == "2 worker processes"
    in_process = audit.context.predict_frame(audit.context.X("test").iloc[:10]).score.sum()
    for c in result.checks:
        assert c.status is Status.OK and c.findings[0].summary == f"sum {in_process:.6f}"
    out = run_checks(audit.context, audit.registry, executor=ForkPool(audit.context, audit.registry, 2))
    pids = {m.pid for m in out.measurements.values()}
    assert len(out.measurements) == 2 and os.getpid() not in pids
    # BLAS gets the worker's share of the cores (AUDITOR_THREADS, default 1, at most cores / workers);
    # GNU OpenMP one thread (it hangs in a forked child asking for more once the parent used it)
    for m in out.measurements.values():
        assert m.threads.get("openmp", 1) == 1
        assert m.threads.get("blas", worker_threads(2)) == worker_threads(2)


def test_a_measurement_that_cannot_be_pickled_is_made_in_the_audit_process(model_and_data) -> None:
    audit = objects_audit(model_and_data, Measure, Unpicklable)
    out = run_checks(audit.context, audit.registry, executor=ForkPool(audit.context, audit.registry, 2))
    assert list(out.in_process) == ["test.unpicklable"]
    assert "measurement could not be sent back" in out.in_process["test.unpicklable"]
    assert out.measurements["test.unpicklable"].pid == os.getpid()  # ran here, after the workers
    assert callable(out.measurements["test.unpicklable"].fn)
    assert out.measurements["test.measure"].pid != os.getpid()  # ran in a worker
    assert [r.status for r in out.results] == [Status.OK, Status.OK]


@pytest.mark.parametrize("how,words", [("exit", "exited with code 3"), ("kill", "killed by signal SIGKILL")])
def test_a_check_that_kills_its_worker_is_an_error_and_the_audit_goes_on(model_and_data, how: str,
                                                                         words: str) -> None:
    audit = objects_audit(model_and_data, Killer, Measure, Measure2, checks={"test.killer": {"how": how}})
    result = audit.run()
    status = {c.id: c for c in result.checks}
    assert status["test.killer"].status is Status.ERROR
    assert words in status["test.killer"].error and "worker process" in status["test.killer"].error
    assert status["test.measure"].status is Status.OK and status["test.measure2"].status is Status.OK
    assert result.exit_code == 3  # incomplete: a check ended in error


def test_one_worker_or_one_check_runs_in_this_process(model_and_data) -> None:
    audit = objects_audit(model_and_data, Measure, Measure2, workers=1)
    assert audit.executor() is None
    audit = objects_audit(model_and_data, Measure, Measure2, skip=["test.measure2"])
    assert audit.executor() is None  # a single check to run: no worker is worth forking
    out = run_checks(audit.context, audit.registry, executor=audit.executor())
    assert out.measurements["test.measure"].pid == os.getpid()


MODEL_PY = '''
import numpy as np

class Model:
    classes_ = np.array([0, 1])
    feature_names_in_ = np.array(["income", "debt"])

    def predict_proba(self, X):
        z = 0.08 * (X["income"].to_numpy(dtype=float) - 50) - 0.3 * (X["debt"].to_numpy(dtype=float) - 10)
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
'''


def test_a_hosted_model_gets_its_own_host_in_each_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from auditor.config import load_config

    df = data()
    df.iloc[:200].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[200:].to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "model.py").write_text(MODEL_PY)
    (tmp_path / "audit.toml").write_text(textwrap.dedent('''\
        [model]
        path = "model.py:Model"
        trusted = true
        [data]
        train = "train.csv"
        test = "test.csv"
        target = "default"
        [engine]
        workers = 2
        '''))
    audit = prepare(load_config(tmp_path / "audit.toml"), CheckRegistry([Measure, Measure2]))
    try:
        parent_host = _host_pid(audit.context)
        out = run_checks(audit.context, audit.registry, executor=audit.executor())
        hosts = {m.host_pid for m in out.measurements.values()}
        # each worker started a host of its own; the parent's host was neither used nor stopped
        assert parent_host is not None and parent_host not in hosts and None not in hosts
        assert {m.pid for m in out.measurements.values()}.isdisjoint({os.getpid()})
        assert _host_pid(audit.context) == parent_host and audit.context.model.adapter.restarts == 0
        X = audit.context.X("test").iloc[:10]
        expected = audit.context.predict_frame(X).score.sum()
        assert all(r.findings[0].summary == f"sum {expected:.6f}" for r in out.results)
    finally:
        audit.context.model.adapter.close()


def test_an_onnx_model_gets_its_own_session_in_each_worker(tmp_path: Path, model_and_data) -> None:
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx

    from auditor.config import load_config

    model, df = model_and_data
    onx = to_onnx(model, df[["income", "debt"]].to_numpy(dtype=np.float32)[:1], options={"zipmap": False})
    (tmp_path / "model.onnx").write_bytes(onx.SerializeToString())
    df.iloc[200:].to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "audit.toml").write_text('[model]\npath = "model.onnx"\ntask = "classification"\n[data]\n'
                                         'test = "test.csv"\ntarget = "default"\nfeatures = ["income", "debt"]\n'
                                         '[engine]\nworkers = 2\n')
    audit = prepare(load_config(tmp_path / "audit.toml"), CheckRegistry([Measure, Measure2]))
    out = run_checks(audit.context, audit.registry, executor=audit.executor())
    assert os.getpid() not in {m.pid for m in out.measurements.values()}
    expected = audit.context.predict_frame(audit.context.X("test").iloc[:10]).score.sum()
    assert [r.findings[0].summary for r in out.results] == [f"sum {expected:.6f}"] * 2


@pytest.mark.slow
def test_the_demo_gives_identical_findings_with_one_and_two_workers() -> None:
    """findings.json's checks and findings (timings aside) from workers = 1 and workers = 2 are the
    same, and the same as the stored demo baseline."""
    from dataclasses import replace

    from auditor.config import load_config

    config = load_config(ROOT / "sample_models" / "audit.toml")
    docs, remediations, files = {}, {}, {}
    for workers in (1, 2):
        cfg = replace(config, engine=replace(config.engine, workers=workers))
        audit = prepare(cfg)
        result = audit.run()
        assert audit.where == ("in this process" if workers == 1 else "2 worker processes")
        # with two workers the remedies start beside the checks they read (all of them here)
        assert set(audit.remedies_beside_checks) == (set() if workers == 1 else
                                                     {r.id for r in result.remedies if r.status is not Status.SKIPPED
                                                      or r.reason != "skipped by config"})
        doc = json.loads(json.dumps(result.to_json()))
        docs[workers] = stable(doc)
        remediations[workers] = doc["remediations"]  # the remedies run in the workers too
        files[workers] = {a.path: a.sha256 for a in result.artifacts}
    assert docs[1] == docs[2]
    assert remediations[1] == remediations[2] and remediations[1]
    assert files[1] == files[2] and files[1]
    assert baseline_diff(doc) == []  # the last run's, workers = 2


def test_the_workers_option_is_checked_like_the_config_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import one_line_error

    proc = subprocess.run([sys.executable, "-m", "auditor", "run", str(ROOT / "sample_models" / "audit.toml"),
                           "--workers", "-1", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert "--workers must be a whole number: 0 (one worker process per core)" in one_line_error(proc)
    assert not (tmp_path / "out").exists()


LIGHTGBM_IN_WORKERS = textwrap.dedent("""
    import sys
    import numpy as np, pandas as pd
    from lightgbm import LGBMClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from auditor.checks import default_registry
    from auditor.engine import prepare_objects

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=list("abcd"))
    y = (X["a"] + 0.5 * X["b"] + rng.normal(size=600) > 0).astype(int)
    df = X.assign(y=y)
    # n_jobs left at None: every physical core, in this process, before the workers are forked
    model = make_pipeline(StandardScaler(), LGBMClassifier(n_estimators=30, verbose=-1)).fit(X, y)
    keep = {"performance.metrics", "sensitivity.partial_dependence", "sensitivity.random_attack"}
    skip = [c for c in default_registry().ids() if c not in keep]
    audit = prepare_objects(model, test=df.iloc[300:], train=df.iloc[:300], target="y", skip=skip,
                            engine={"workers": 2}, remediation={"enabled": False})
    with audit.engine():
        result = audit.run()
    print(" ".join(f"{c.id}={c.status.value}" for c in result.checks if c.id in keep))
    print("lightgbm threads in the parent:", model[-1].n_jobs)
""")


def test_a_lightgbm_model_fitted_on_every_core_does_not_hang_the_workers(tmp_path: Path) -> None:
    """GNU OpenMP in a forked worker hangs when the model asks for more than one thread after the
    parent used its thread pool; LightGBM's wrapper asks for every physical core at each call. The
    audit runs in a subprocess (so a regression fails on the timeout instead of hanging the suite),
    with no OMP_NUM_THREADS limit, as a user's shell has none."""
    import subprocess
    import sys

    pytest.importorskip("lightgbm")
    script = tmp_path / "lgbm_audit.py"
    script.write_text(LIGHTGBM_IN_WORKERS, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                             "MKL_NUM_THREADS", "AUDITOR_THREADS")}
    proc = subprocess.run([sys.executable, str(script)], env={**env, "PYTHONWARNINGS": "ignore"},
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    statuses = proc.stdout.splitlines()[0].split()
    assert sorted(statuses) == ["performance.metrics=ok", "sensitivity.partial_dependence=ok",
                                "sensitivity.random_attack=ok"]
    assert "lightgbm threads in the parent: None" in proc.stdout  # the user's model is left as it was


def test_limit_library_threads_reaches_lightgbm_and_xgboost_inside_other_estimators() -> None:
    pytest.importorskip("lightgbm")
    pytest.importorskip("xgboost")
    from lightgbm import LGBMClassifier
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBClassifier

    from auditor.model import limit_library_threads

    df = data()
    X, y = df[["income", "debt"]], df["default"]
    stack = StackingClassifier([("lgbm", LGBMClassifier(n_estimators=5, verbose=-1)),
                                ("xgb", XGBClassifier(n_estimators=5, n_jobs=4))],
                               final_estimator=LogisticRegression(), cv=2)
    search = GridSearchCV(make_pipeline(StandardScaler(), stack), {"stackingclassifier__passthrough": [False]}, cv=2)
    search.fit(X, y)
    before = search.predict_proba(X)
    assert limit_library_threads(search, 1) >= 4  # the template estimators and the fitted ones
    fitted = search.best_estimator_[-1]
    assert [e.get_params()["n_jobs"] for e in fitted.estimators_] == [1, 1]
    assert [e.get_params()["n_jobs"] for _, e in stack.estimators] == [1, 1]
    assert fitted.estimators_[1].get_booster().attributes() is not None
    np.testing.assert_array_equal(search.predict_proba(X), before)
    assert limit_library_threads(LogisticRegression().fit(X, y), 1) == 0


# ---- remedies beside the checks ---------------------------------------------------------------------
@dataclass
class ReadsMeasure(Remedy):
    """Reads test.measure only: it may start as soon as that check is done."""

    id: ClassVar[str] = "test_reads"
    title: ClassVar[str] = "Reads one check"
    reads: ClassVar[tuple[str, ...] | None] = ("test.measure",)

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        m = inputs.measurement("test.measure")
        states = [f.status for c in inputs.checks.values() for f in c.findings]
        return RemedyOutput(notes=(f"saw {sorted(inputs.checks)} {sorted(inputs.measurements)} {m.value:.6f} {states}",
                                   str(os.getpid())))


@dataclass
class ReadsAll(ReadsMeasure):
    """Declares nothing: it reads every check, after all of them."""

    id: ClassVar[str] = "test_reads_all"
    reads: ClassVar[tuple[str, ...] | None] = None

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        return RemedyOutput(notes=(f"saw {sorted(inputs.checks)}", str(os.getpid())))


@dataclass
class DiesBeside(ReadsMeasure):
    """Kills the process it runs in."""

    id: ClassVar[str] = "test_dies_beside"

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        os._exit(3)


EARLY = {"test_reads": ReadsMeasure, "test_reads_all": ReadsAll}
WAIVED = [{"finding": "test.measure/x", "reason": "known", "approved_by": "validator", "expires": "2099-01-01"}]


def _early_run(model_and_data, remedies: dict[str, type[Remedy]], *, workers: int = 2, alone: bool = True):
    """The checks in a pool with the remedies that may start beside them, then the remaining remedies
    as the engine runs them; and the same remedies run after the checks in this process."""
    from datetime import date

    from auditor.remediation import EarlyRemedies, run_remedies
    from auditor.waivers import waive_checks

    audit = objects_audit(model_and_data, Measure, Measure2, waivers=WAIVED)
    ctx, on = audit.context, date(2026, 12, 1)
    early = EarlyRemedies(ctx, on=on, remedies=remedies)
    with ForkPool(ctx, audit.registry, workers) as pool:
        pool.early = early
        out = run_checks(ctx, audit.registry, executor=pool, follow=early.check_done, first=early.awaited)
    checks = waive_checks(out.results, ctx.config.waivers, on)
    final = run_remedies(ctx, checks, out.measurements, remedies=remedies, workers=workers, early=early.results)
    here = run_remedies(ctx, checks, out.measurements, remedies=remedies) if alone else ()
    return early, final, here


def test_a_remedy_that_declares_its_reads_runs_beside_the_checks_with_the_same_result(model_and_data) -> None:
    early, final, alone = _early_run(model_and_data, EARLY)
    assert set(early.results) == {"test_reads"}  # the one that declares nothing waits for every check
    by_id = {r.id: r for r in final}
    assert int(by_id["test_reads"].output.notes[1]) != os.getpid()  # it ran in a worker
    # it saw only the check it reads, with the waiver applied, exactly as when run after the checks
    assert by_id["test_reads"].output.notes[0].startswith("saw ['test.measure'] ['test.measure'] ")
    assert by_id["test_reads"].output.notes[0].endswith("['accepted']")
    assert [(r.id, r.status, r.output.notes[0]) for r in final] == [(r.id, r.status, r.output.notes[0])
                                                                    for r in alone]
    assert by_id["test_reads_all"].output.notes[0] == "saw ['audit.waivers', 'test.measure', 'test.measure2']"


def test_a_remedy_that_kills_its_worker_beside_the_checks_is_its_own_error(model_and_data) -> None:
    early, final, _ = _early_run(model_and_data, {**EARLY, "test_dies_beside": DiesBeside}, alone=False)
    assert "test_dies_beside" not in early.results  # left to the remedies' own processes, which isolate it
    by_id = {r.id: r for r in final}
    assert by_id["test_dies_beside"].status is Status.ERROR and "died" in by_id["test_dies_beside"].error
    assert by_id["test_reads"].status is Status.OK and by_id["test_reads_all"].status is Status.OK


def test_every_remedy_of_the_package_says_which_checks_it_reads() -> None:
    """So each may start beside the checks (the demo test checks that they do, with two workers)."""
    from auditor.checks import default_registry
    from auditor.remediation import discover_remedies

    ids = set(default_registry().ids())
    for rid, cls in discover_remedies().items():
        assert cls.reads is not None and set(cls.reads) <= ids, rid


# ---- the watchdog ------------------------------------------------------------------------------------
@dataclass
class Loops(Check):
    """Never returns: a loop in the check's own code."""

    id: ClassVar[str] = "test.loops"
    family = TEST_FAMILY
    title: ClassVar[str] = "Loops forever"
    order = 0

    def measure(self, ctx):
        while True:
            time.sleep(0.01)


@dataclass
class LoopsBeside(ReadsMeasure):
    """A remedy beside the checks that never returns."""

    id: ClassVar[str] = "test_loops_beside"

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        while True:
            time.sleep(0.01)


def test_a_check_that_never_returns_is_stopped_by_the_watchdog_and_the_others_complete(model_and_data) -> None:
    audit = objects_audit(model_and_data, Loops, Measure, Measure2, check_timeout=1.5)
    t0 = time.monotonic()
    out = run_checks(audit.context, audit.registry, executor=ForkPool(audit.context, audit.registry, 2))
    assert time.monotonic() - t0 < 60
    by_id = {r.id: r for r in out.results}
    assert by_id["test.loops"].status is Status.ERROR
    assert by_id["test.loops"].error.startswith("CheckTimeout: stopped after 1.5 s ([engine] check_timeout)")
    assert by_id["test.loops"].duration_s >= 1.5  # the time it ran, as the report shows it
    assert by_id["test.measure"].status is Status.OK and by_id["test.measure2"].status is Status.OK


def test_a_remedy_beside_the_checks_that_never_returns_is_stopped_and_is_its_error(model_and_data) -> None:
    from datetime import date

    from auditor.remediation import EarlyRemedies

    audit = objects_audit(model_and_data, Measure, Measure2, check_timeout=1.5)
    early = EarlyRemedies(audit.context, on=date(2026, 12, 1), remedies={**EARLY, "test_loops_beside": LoopsBeside})
    with ForkPool(audit.context, audit.registry, 2) as pool:
        pool.early = early
        out = run_checks(audit.context, audit.registry, executor=pool, follow=early.check_done, first=early.awaited)
    assert all(r.status is Status.OK for r in out.results)
    looped = early.results["test_loops_beside"]
    assert looped.status is Status.ERROR and looped.error.startswith("CheckTimeout: stopped after 1.5 s")
    assert "remedy did not return" in looped.error and early.results["test_reads"].status is Status.OK


@pytest.mark.parametrize("bad", [-1, "ten", True, float("nan")])
def test_check_timeout_must_be_a_number_of_seconds(tmp_path: Path, bad: Any) -> None:
    from auditor.errors import ConfigError

    with pytest.raises(ConfigError, match=r"config key 'engine.check_timeout' must be a number of seconds"):
        objects_audit((None, data()), Measure, check_timeout=bad)
