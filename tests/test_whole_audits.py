"""Whole audits (every registered check) of models a validator meets: a k-class model audited as a
k-class model, and clean, well-built models that must not get a high finding."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest
from conftest import SCHEMA
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from auditor.engine import prepare_objects

pytestmark = pytest.mark.slow


def _split(frame: pd.DataFrame, target: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train_test_split(frame, test_size=0.3, random_state=seed, stratify=frame[target]
                                   if frame[target].nunique() < 10 else None)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _validate(result) -> dict:
    doc = json.loads(json.dumps(result.to_json()))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    return doc


@pytest.fixture(scope="module")
def iris_audit():
    """Iris relabelled so the easy class (setosa) is last: a one-vs-rest reduction on the last class
    would report the easy class's near-perfect accuracy instead of the 3-class accuracy."""
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    names = {0: "c_setosa", 1: "a_versicolor", 2: "b_virginica"}
    frame["species"] = frame.pop("target").map(names)
    train, test = _split(frame, "species")
    features = [c for c in frame.columns if c != "species"]
    # a deliberately weak model on one feature: it confuses versicolor and virginica
    model = make_pipeline(ColumnTransformer([("sw", StandardScaler(), ["sepal_width", "sepal_length"])]),
                          LogisticRegression(max_iter=500))
    model.fit(train[features], train["species"])
    result = prepare_objects(model, test=test, train=train, target="species", seed=0).run()
    return result, model, test, features


def test_multiclass_audit_reports_k_class_accuracy(iris_audit) -> None:
    result, model, test, features = iris_audit
    doc = _validate(result)
    assert doc["inputs"]["model"]["classes"] == ["a_versicolor", "b_virginica", "c_setosa"]
    perf = next(c for c in doc["checks"] if c["id"] == "performance.metrics")
    assert perf["status"] == "ok"
    direct = accuracy_score(test["species"], model.predict(test[features]))
    assert perf["metrics"]["accuracy"] == pytest.approx(direct)
    assert len(perf["tables"]["by_class"]) == 3
    assert len(perf["tables"]["confusion_matrix"]) == 3


def test_multiclass_audit_runs_no_check_on_a_wrong_reduction(iris_audit) -> None:
    result, *_ = iris_audit
    doc = _validate(result)
    statuses = {c["id"]: c["status"] for c in doc["checks"]}
    assert "error" not in statuses.values(), {k: c.get("error") for k, c in
                                              ((c["id"], c) for c in doc["checks"]) if c["status"] == "error"}
    for c in doc["checks"]:
        if c["status"] == "skipped":
            assert c["reason"], c["id"]


@pytest.mark.parametrize("which", ["breast_cancer_logistic", "diabetes_ridge"])
def test_clean_models_get_no_high_finding(which: str) -> None:
    if which == "breast_cancer_logistic":
        data = load_breast_cancer(as_frame=True)
        frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
        train, test = _split(frame, "target")
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
        target = "target"
    else:
        data = load_diabetes(as_frame=True)
        frame = data.frame
        train, test = _split(frame, "target")
        model = Ridge(alpha=1.0)
        target = "target"
    features = [c for c in frame.columns if c != target]
    model.fit(train[features], train[target])
    result = prepare_objects(model, test=test, train=train, target=target, seed=0).run()
    doc = _validate(result)
    highs = [f["title"] for f in doc["findings"] if f["severity"] == "high"]
    assert not highs, highs
    # issue 10 (bench/false_alarms.py): at most 3 medium on a well-built model; neither the GLM
    # against its own kind of benchmark nor sklearn's loud refusal of NaN and infinity is one
    mediums = [f["id"] for f in doc["findings"] if f["severity"] == "medium"]
    assert len(mediums) <= 3, mediums
    assert "benchmark.comparison/not_better" not in mediums
    assert not [i for i in mediums if i.startswith("sensitivity.random_attack/guard/")]
    assert not [c["id"] for c in doc["checks"] if c["status"] == "error"]
    assert np.isfinite(doc["audit"]["duration_s"])
