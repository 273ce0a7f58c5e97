"""[engine] backend = "dask": the checks as tasks on a Dask distributed cluster (a LocalCluster with two
worker processes, started once for the module), a Parquet dataset directory scored partition by
partition on the workers, and the errors of an unreachable scheduler."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, baseline_diff, one_line_error

from auditor.checks import default_registry
from auditor.checks.base import CheckRegistry
from auditor.config import load_config
from auditor.engine import prepare
from auditor.errors import AuditInputError
from auditor.findings import Status

distributed = pytest.importorskip("distributed")

SAMPLE = ROOT / "sample_models"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0") as c:
        yield c


def demo_project(folder: Path, address: str, *, parts: int = 0) -> Path:
    """The demo audit in ``folder``, on the cluster; with ``parts``, its test and training data as
    Parquet dataset directories of that many part files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("credit_model.skops", "train.csv", "test.csv"):
        shutil.copy(SAMPLE / name, folder / name)
    text = (SAMPLE / "audit.toml").read_text()
    if parts:
        for split in ("train", "test"):
            df = pd.read_csv(SAMPLE / f"{split}.csv")
            (folder / split).mkdir()
            for i, chunk in enumerate(np.array_split(np.arange(len(df)), parts)):
                df.iloc[chunk].to_parquet(folder / split / f"part-{i:03d}.parquet")
            text = text.replace(f'{split} = "{split}.csv"', f'{split} = "{split}/"')
    (folder / "audit.toml").write_text(text + f'\n[engine]\nbackend = "dask"\naddress = "{address}"\n')
    return folder / "audit.toml"


@pytest.mark.slow
def test_the_demo_on_the_cluster_gives_the_local_findings(cluster, tmp_path: Path) -> None:
    """The whole demo through the CLI with every check a task on the cluster: findings.json's checks and
    findings equal the local run's (the stored baseline, which the local demo test compares with)."""
    config = demo_project(tmp_path / "demo", cluster.scheduler_address)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "auditor", "run", str(config), "--out", str(out), "--format",
                           "json"], capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]  # the demo's gate fails on its medium findings
    doc = json.loads((out / "findings.json").read_text())
    assert baseline_diff(doc) == []


CHEAP = ("data.schema", "performance.metrics", "fairness.disparate_impact")


def test_a_dataset_directory_is_scored_partition_by_partition_on_the_workers(
        cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from auditor.inputs import sha256_dataset
    from auditor.model import PythonModel

    config = load_config(demo_project(tmp_path / "parts", cluster.scheduler_address, parts=3))
    rows_here: list[int] = []
    real = PythonModel.predict_proba

    def counted(self, X):
        rows_here.append(len(X))
        return real(self, X)

    monkeypatch.setattr(PythonModel, "predict_proba", counted)
    registry = CheckRegistry([default_registry()[c] for c in CHEAP])
    audit = prepare(config, registry)
    try:
        ctx = audit.context
        # the audit process called the model only for its 50-row probe of predict_proba's shape: the
        # test and training rows were scored on the workers, one task per part file
        assert rows_here == [50]
        assert len(ctx.test) == 300 and ctx.train is not None and len(ctx.train) == 700
        assert ctx.test_file is not None and len(ctx.test_file.parts) == 3
        assert ctx.test_file.sha256 == sha256_dataset(ctx.test_file.parts)
        model = ctx.model.adapter.obj
        np.testing.assert_array_equal(ctx.predictions("test").proba, real(ctx.model.adapter, ctx.X("test")))
        np.testing.assert_array_equal(ctx.predictions("train").proba, model.predict_proba(ctx.X("train")))
        result = audit.run()
        assert audit.where.startswith("2 Dask workers at tcp://")
    finally:
        audit.close()
    monkeypatch.setattr(PythonModel, "predict_proba", real)
    # the same checks on the CSV files, in this process: the same results
    local = load_config(SAMPLE / "audit.toml")
    local_audit = prepare(replace(local, engine=replace(local.engine, workers=1)), registry)
    expected = local_audit.run()
    assert [c.to_json() | {"duration_s": 0} for c in result.checks] == \
        [c.to_json() | {"duration_s": 0} for c in expected.checks]
    assert all(c.status is Status.OK for c in result.checks)


def test_a_measurement_that_cannot_be_pickled_is_made_in_the_audit_process(cluster, model_and_data) -> None:
    from test_parallel import Measure, Unpicklable

    from auditor.engine import prepare_objects

    model, df = model_and_data
    audit = prepare_objects(model, test=df.iloc[200:], train=df.iloc[:200], target="default",
                            registry=CheckRegistry([Measure, Unpicklable]),
                            engine={"backend": "dask", "address": cluster.scheduler_address})
    try:
        from auditor.runner import run_checks

        out = run_checks(audit.context, audit.registry, executor=audit.executor())
    finally:
        audit.close()
    assert list(out.in_process) == ["test.unpicklable"]
    assert out.measurements["test.unpicklable"].pid == os.getpid()
    assert out.measurements["test.measure"].pid != os.getpid()  # ran on a cluster worker
    expected = audit.context.predict_frame(audit.context.X("test").iloc[:10]).score.sum()
    assert out.results[0].findings[0].summary == f"sum {expected:.6f}"


@pytest.fixture(scope="module")
def model_and_data():
    from sklearn.linear_model import LogisticRegression
    from test_parallel import data

    df = data()
    return LogisticRegression().fit(df[["income", "debt"]], df["default"]), df


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import auditor.cluster
    from auditor.cli import _main

    monkeypatch.setattr(auditor.cluster, "CONNECT_TIMEOUT_S", 1.0)
    config = demo_project(tmp_path / "demo", "tcp://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(AuditInputError, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9' "
                                              r"\(config key 'engine.address'\)"):
        prepare(load_config(config))
    capsys.readouterr()
    code = _main(config, out=tmp_path / "out", seed=None, fail_on=None, formats="json", force=False, debug=False,
                 demo=False)
    err = capsys.readouterr().err
    proc = subprocess.CompletedProcess([], code, "", err)
    assert "cannot reach the Dask scheduler" in one_line_error(proc)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_check_that_kills_its_dask_worker_is_its_error_and_the_others_complete(model_and_data) -> None:
    """A check whose task kills every worker it runs on (the scheduler gives up on it: KilledWorker)
    is that check's error; the checks beside it, which may have been on a worker it killed, run
    again alone and come back. Its own cluster: the killed workers are restarted by their nannies,
    which the module's other tests need not see."""
    import dask
    from test_parallel import Killer, Measure, Measure2

    from auditor.engine import prepare_objects

    model, df = model_and_data
    # the scheduler retries a task whose worker died allowed-failures times (3 by default) before
    # it gives up with KilledWorker; one retry is enough to see the path
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                     dashboard_address=":0") as own:
        audit = prepare_objects(model, test=df.iloc[200:], train=df.iloc[:200], target="default",
                                registry=CheckRegistry([Killer, Measure, Measure2]),
                                engine={"backend": "dask", "address": own.scheduler_address})
        try:
            result = audit.run()
        finally:
            audit.close()
    status = {c.id: c for c in result.checks}
    assert status["test.killer"].status is Status.ERROR
    assert "KilledWorker" in status["test.killer"].error and "all those workers died" in status["test.killer"].error, \
        status["test.killer"].error
    assert status["test.measure"].status is Status.OK, status["test.measure"].error
    assert status["test.measure2"].status is Status.OK, status["test.measure2"].error
    assert result.exit_code == 3  # incomplete: a check ended in error
