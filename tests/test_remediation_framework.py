"""The remediation step: remedies found by themselves, run after the checks, isolated when they fail,
their remediations in findings.json and their files under remediation/ with hashes in the manifest."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from auditor.config import parse_config
from auditor.engine import prepare_objects
from auditor.errors import ConfigError
from auditor.findings import Status
from auditor.remediation import (
    Artifact,
    Remediation,
    Remedy,
    RemedyInputs,
    RemedyOutput,
    discover_remedies,
    run_remedies,
)
from auditor.remediation.base import budget
from auditor.remediation.refit import clone_model, fit, predict, refit_unavailable, training_rows


def _data(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, LogisticRegression]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n, 2))
    y = (x[:, 0] + 0.5 * rng.normal(size=2 * n) > 0).astype(int)
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y})
    train, test = df.iloc[:n].reset_index(drop=True), df.iloc[n:].reset_index(drop=True)
    model = LogisticRegression().fit(train[["a", "b"]], train["y"])
    return train, test, model


@dataclass
class _Measured(Remedy):
    id: ClassVar[str] = "test_measured"
    title: ClassVar[str] = "A measured test remedy"
    max_rows: int = budget(100, "rows")

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        n = min(self.max_rows, len(inputs.ctx.test))
        rem = Remediation(id="test_measured/x", kind="other", addresses=(), title="T", summary="S",
                          before={"rows": 0}, after={"rows": n}, verified=True)
        return RemedyOutput(remediations=(rem,), artifacts=(Artifact("remediation/t.json", b"{}", "t"),),
                            notes=(f"{n} rows",))


@dataclass
class _Broken(Remedy):
    id: ClassVar[str] = "test_broken"
    title: ClassVar[str] = "A broken test remedy"

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        raise RuntimeError("boom")


@dataclass
class _NotApplicable(Remedy):
    id: ClassVar[str] = "test_na"
    title: ClassVar[str] = "Nothing to fix"

    def skip_reason(self, inputs: RemedyInputs) -> str | None:
        return "no finding of its kind"


FAKE = {"test_measured": _Measured, "test_broken": _Broken, "test_na": _NotApplicable}


def test_remedies_run_in_isolation_and_skip_with_reasons() -> None:
    train, test, model = _data()
    audit = prepare_objects(model, test=test, train=train, target="y", checks={}, skip=[])
    out = run_remedies(audit.context, [], {}, remedies=FAKE)
    by_id = {r.id: r for r in out}
    assert by_id["test_measured"].status is Status.OK
    assert by_id["test_measured"].remediations[0].after == {"rows": 100}
    assert by_id["test_broken"].status is Status.ERROR and "boom" in by_id["test_broken"].error
    assert by_id["test_na"].status is Status.SKIPPED and by_id["test_na"].reason == "no finding of its kind"


@dataclass
class _Dies(Remedy):
    id: ClassVar[str] = "test_dies"
    title: ClassVar[str] = "A remedy that kills its process"

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        import os

        os._exit(3)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker processes are forked on Linux only")
def test_remedies_in_worker_processes_give_the_same_results_and_a_dying_one_is_its_own_error() -> None:
    train, test, model = _data()
    audit = prepare_objects(model, test=test, train=train, target="y", checks={}, skip=[])
    here = run_remedies(audit.context, [], {}, remedies=FAKE)
    there = run_remedies(audit.context, [], {}, remedies=FAKE, workers=2)
    assert [(r.id, r.status, r.error, r.output) for r in there] == [(r.id, r.status, r.error, r.output) for r in here]
    with_death = run_remedies(audit.context, [], {}, remedies={**FAKE, "test_dies": _Dies}, workers=2)
    by_id = {r.id: r for r in with_death}
    assert by_id["test_dies"].status is Status.ERROR and "process running this remedy died" in by_id["test_dies"].error
    assert by_id["test_measured"].status is Status.OK and by_id["test_measured"].remediations[0].after == {"rows": 100}
    assert by_id["test_broken"].status is Status.ERROR and "boom" in by_id["test_broken"].error


def test_remediation_rejects_unlike_before_and_after_and_artifacts_outside_the_folder() -> None:
    with pytest.raises(ValueError, match="same metrics"):
        Remediation(id="x", kind="other", addresses=(), title="t", summary="s", before={"a": 1},
                    after={"b": 1}, verified=True)
    with pytest.raises(ValueError, match="unknown remediation kind"):
        Remediation(id="x", kind="magic", addresses=(), title="t", summary="s", before={}, after={}, verified=True)
    for bad in ("guard.json", "remediation/../x", "/remediation/x", "remediation/"):
        with pytest.raises(ValueError):
            Artifact(bad, b"")


def test_config_section_is_validated() -> None:
    base = {"model": {"path": "m.skops"}, "data": {"test": "t.csv", "target": "y"}}
    cfg = parse_config({**base, "remediation": {"skip": ["threshold"], "threshold": {"max_rows": 10}}},
                       base_dir=__import__("pathlib").Path.cwd())
    assert cfg.remediation.skip == ("threshold",) and cfg.remediation.options["threshold"] == {"max_rows": 10}
    with pytest.raises(ConfigError, match="remediation.colour"):
        parse_config({**base, "remediation": {"colour": 1}}, base_dir=__import__("pathlib").Path.cwd())
    train, test, model = _data()
    with pytest.raises(ConfigError, match="unknown remedy 'no_such_remedy'"):
        prepare_objects(model, test=test, train=train, target="y", remediation={"skip": ["no_such_remedy"]})


def test_refit_helpers_use_training_rows_only() -> None:
    train, test, model = _data()
    audit = prepare_objects(model, test=test, train=train, target="y")
    ctx = audit.context
    assert refit_unavailable(ctx) is None
    rows = training_rows(ctx, 120, "test")
    assert rows.used == 120 and rows.total == len(train) and "120 of the 300" in rows.note
    assert set(rows.X.index) <= set(ctx.X("train").index)
    adapter = fit(clone_model(ctx, C=0.5), rows.X, rows.y)
    preds = predict(ctx, adapter, ctx.X("test"))
    assert preds.score.shape == (len(test),) and np.all((preds.score >= 0) & (preds.score <= 1))
    no_train = prepare_objects(model, test=test, target="y").context
    assert "no training data" in (refit_unavailable(no_train) or "")


def test_results_json_and_folder_carry_remediations(tmp_path) -> None:
    from auditor.remediation.base import RemedyResult

    train, test, model = _data()
    audit = prepare_objects(model, test=test, train=train, target="y", skip=list(audit_ids()))
    result = audit.run()
    fake = run_remedies(audit.context, result.checks, {}, remedies=FAKE)
    from dataclasses import replace

    result = replace(result, remedies=fake)
    assert all(isinstance(r, RemedyResult) for r in result.remedies)
    written = result.write(tmp_path / "rep", ("json", "html"))
    doc = json.loads(written["json"].read_text())
    assert [r["id"] for r in doc["remediations"]] == ["test_measured/x"]
    assert doc["remediations"][0]["before"] == {"rows": 0} and doc["remediations"][0]["verified"] is True
    assert (tmp_path / "rep" / "remediation" / "t.json").read_bytes() == b"{}"
    html = written["html"].read_text()
    assert "A measured test remedy" in html and "A broken test remedy" in html  # not tried: shown with reason
    assert fake[0].artifacts[0].sha256 in html  # the manifest lists the file's hash


def audit_ids() -> list[str]:
    from auditor.checks import default_registry

    return default_registry().ids()


def test_every_remedy_declares_id_title_and_documented_options() -> None:
    for rid, cls in discover_remedies().items():
        assert rid == cls.id and cls.title
        for opt in cls.options():
            assert opt.doc and opt.kind in ("threshold", "budget", "setting"), (rid, opt.name)


def test_model_files_are_byte_identical_for_the_same_model_and_load_back() -> None:
    import skops.io as sio

    from auditor.remediation.files import skops_bytes

    train, _test, model = _data()
    a, b = skops_bytes(model), skops_bytes(model)
    assert a == b
    loaded = sio.loads(a, trusted=sio.get_untrusted_types(data=a))
    X = train[["a", "b"]]
    assert np.allclose(loaded.predict_proba(X), model.predict_proba(X))
