"""The engine: runner isolation, exit codes, the common contract every registered check keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from conftest import CONTRACT_IDS, TEST_FAMILY
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from auditor.checks import default_registry
from auditor.checks.base import Check, CheckRegistry
from auditor.engine import prepare_objects
from auditor.errors import AuditInputError
from auditor.findings import Finding, Severity, Status


def classification_data(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(10, 3, n),
                       "region": rng.choice(["north", "south", "east"], n),
                       "sex": rng.choice(["f", "m"], n)})
    logit = 0.08 * (df["income"] - 50) - 0.3 * (df["debt"] - 10) + (df["region"] == "east") * 0.5
    df["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def classifier(train: pd.DataFrame) -> Pipeline:
    model = Pipeline([("enc", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])],
                                                remainder="passthrough")),
                      ("lr", LogisticRegression(max_iter=1000))])
    return model.fit(train[["income", "debt", "region"]], train["default"])


@pytest.fixture(scope="module")
def clf_audit():
    df = classification_data()
    train, test = df.iloc[:400], df.iloc[400:]
    return prepare_objects(classifier(train), test=test, train=train, target="default", protected=["sex"])


@pytest.fixture(scope="module")
def reg_audit():
    rng = np.random.default_rng(1)
    n = 500
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    df["y"] = 2 * df["x1"] - df["x2"] + rng.normal(scale=0.5, size=n)
    model = LinearRegression().fit(df.iloc[:350][["x1", "x2"]], df.iloc[:350]["y"])
    return prepare_objects(model, test=df.iloc[350:], train=df.iloc[:350], target="y")


@dataclass
class Boom(Check):
    id: ClassVar[str] = "test.boom"
    family = TEST_FAMILY
    title: ClassVar[str] = "Always crashes"

    def measure(self, ctx):
        raise RuntimeError("model exploded")


@dataclass
class Flag(Check):
    id: ClassVar[str] = "test.flag"
    family = TEST_FAMILY
    title: ClassVar[str] = "Always finds something"
    severity: str = "medium"

    def measure(self, ctx):
        return float(ctx.predictions("test").score.mean())

    def judge(self, m):
        return [Finding(id=f"{self.id}/x", check=self.id, severity=Severity(self.severity), title="t",
                        summary=f"mean score {m:.2f}")]


def test_a_crashing_check_is_recorded_and_the_audit_goes_on(clf_audit) -> None:
    audit = prepare_objects(clf_audit.context.model.adapter.obj, test=clf_audit.context.test,
                            target="default", registry=CheckRegistry([Boom, Flag]))
    result = audit.run()
    boom, flag = result.checks
    assert boom.status is Status.ERROR and "model exploded" in boom.error
    assert "model exploded" in audit.tracebacks["test.boom"]
    assert flag.status is Status.OK and len(flag.findings) == 1
    assert result.status == "incomplete" and result.exit_code == 3


@pytest.mark.parametrize("fail_on,severity,code", [
    ("high", "medium", 0), ("medium", "medium", 1), ("low", "medium", 1), ("none", "high", 0), ("high", "high", 1),
])
def test_gate_levels(clf_audit, fail_on: str, severity: str, code: int) -> None:
    audit = prepare_objects(clf_audit.context.model.adapter.obj, test=clf_audit.context.test, target="default",
                            fail_on=fail_on, checks={"test.flag": {"severity": severity}},
                            registry=CheckRegistry([Flag]))
    result = audit.run()
    assert result.exit_code == code
    assert result.to_json()["audit"]["gate"] == ("failed" if code else "passed")


def test_context_predicts_once_per_split(clf_audit) -> None:
    ctx = clf_audit.context
    assert ctx.predictions("test") is ctx.predictions("test")
    expected = ctx.model.adapter.obj.predict_proba(ctx.X("test"))[:, 1]
    np.testing.assert_allclose(ctx.predictions("test").score, expected)


def test_rng_is_per_check_and_repeatable(clf_audit) -> None:
    ctx = clf_audit.context
    assert ctx.rng("a").random() == ctx.rng("a").random()
    assert ctx.rng("a").random() != ctx.rng("b").random()


def test_input_validation_names_the_problem() -> None:
    df = classification_data(100)
    model = classifier(df)
    with pytest.raises(AuditInputError, match="'missing'"):
        prepare_objects(model, test=df, target="missing")
    with pytest.raises(AuditInputError, match="constant"):
        prepare_objects(model, test=df.assign(default=1), target="default")
    with pytest.raises(AuditInputError, match="'race'"):
        prepare_objects(model, test=df, target="default", protected=["race"])
    with pytest.raises(AuditInputError, match="positive_class"):
        prepare_objects(model, test=df, target="default", positive_class="yes")


def test_check_metadata_is_declared_once_and_consistent() -> None:
    registry = default_registry()
    classes = [registry[i] for i in registry.ids()]
    assert len({c.title for c in classes}) == len(classes)
    for c in classes:
        assert c.id.split(".")[0] == c.family.name, c.id
        assert c.title and c.__doc__, c.id
    by_family: dict[str, list[int]] = {}
    for c in classes:
        by_family.setdefault(c.family.name, []).append(c.order)
    assert all(len(set(v)) == len(v) for v in by_family.values()), by_family
    # a check without a family matching its id, or without a title, is refused when it is defined
    with pytest.raises(TypeError, match="family"):
        type("Orphan", (Check,), {"id": "data.orphan", "title": "Orphan"})


def test_every_contract_id_is_registered_once() -> None:
    registry = default_registry()
    ids = registry.ids()
    assert len(ids) == len(set(ids))
    assert list(CONTRACT_IDS) == ids[: len(CONTRACT_IDS)]


# ---- the common contract of every registered check ------------------------------------------------

REGISTRY = default_registry()


@pytest.mark.parametrize("check_id", REGISTRY.ids())
@pytest.mark.parametrize("which", ["clf_audit", "reg_audit"])
def test_common_check_contract(check_id: str, which: str, request) -> None:
    audit = request.getfixturevalue(which)
    registry = CheckRegistry([REGISTRY[check_id]])
    ctx = audit.context
    from auditor.runner import run_checks

    first = run_checks(ctx, registry).results[0]
    assert first.id == check_id and first.family == check_id.split(".")[0]
    assert first.status is not Status.ERROR, (first.error, run_checks(ctx, registry).tracebacks)
    if first.status is Status.SKIPPED:
        assert first.reason and not first.findings
        return
    doc = first.to_json()
    assert doc["status"] == "ok" and isinstance(doc["metrics"], dict)
    for f in first.findings:
        assert f.check == check_id and f.id.startswith(check_id)
        assert f.title and f.summary
        assert isinstance(f.features, tuple) and all(isinstance(c, str) for c in f.features)
        names = {t.name for t in first.evidence.tables} | {g.name for g in first.evidence.figures}
        assert set(f.evidence) <= names, (f.evidence, names)
    assert len({f.id for f in first.findings}) == len(first.findings)
    second = run_checks(ctx, registry).results[0]
    assert [f.to_json() for f in first.findings] == [f.to_json() for f in second.findings]
    assert first.to_json()["metrics"] == second.to_json()["metrics"]
    assert first.to_json()["tables"] == second.to_json()["tables"]
