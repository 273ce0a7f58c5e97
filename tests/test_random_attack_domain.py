"""sensitivity.random_attack, issue 7 section 5: loud is not the same as silent.

Inputs are classified against the training domain; silent garbage is high on any input, an exception
is high on in-domain input and a medium deployment-guard requirement on out-of-domain input. k-class
probabilities are validated as k columns. Clean sklearn models on bundled data get no high finding.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import run_check
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from auditor.analysis.domain import FeatureDomain, feature_domains
from auditor.analysis.random_attack import domain_violation, in_domain_rows
from auditor.checks.sensitivity.random_attack import RandomAttackCheck
from auditor.findings import Severity

ID = RandomAttackCheck.id
SEEDS = (0, 1, 2)


def _by_id(result) -> dict:
    return {f.id: f for f in result.findings}


def _high_ids(result) -> list[str]:
    return sorted(f.id for f in result.findings if f.severity is Severity.HIGH)


def _tables(result) -> dict:
    return {t.name: t.records() for t in result.evidence.tables}


# ---- acceptance controls: clean, well-built sklearn models on bundled data --------------------------------

@pytest.fixture(scope="module")
def breast_cancer():
    df = load_breast_cancer(as_frame=True).frame
    train, test = train_test_split(df, test_size=0.3, random_state=0, stratify=df["target"])
    feats = [c for c in df.columns if c != "target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train[feats], train["target"])
    return model, train, test, feats


def test_breast_cancer_scaled_logistic_regression_gets_no_high(breast_cancer) -> None:
    model, train, test, feats = breast_cancer
    res = run_check(RandomAttackCheck, model, test=test, train=train, target="target")
    assert _high_ids(res) == []  # was 30 "Model crashes on schema-valid input" highs
    found = _by_id(res)
    assert all(f.rule is not None for f in res.findings)
    # sklearn refuses NaN (never seen in training): a guard requirement, every column, low because the
    # model fails safe on a record the training data never had (issue 10)
    missing = found[f"{ID}/guard/missing"]
    assert missing.severity is Severity.LOW and set(missing.features) == set(feats)
    assert "deploy an input guard" in missing.summary and "Input X contains NaN" in missing.summary
    assert all(missing.metrics[f"missing_allowed/{c}"] is False for c in feats)
    # and infinity, which no record holds: an info rejection of invalid input, not a guard requirement
    # (issue 10); no finite value outside the range breaks a scaled logistic regression
    assert f"{ID}/guard/out_of_range" not in found
    invalid = found[f"{ID}/rejects_invalid"]
    assert invalid.severity is Severity.INFO and set(invalid.features) == set(feats) and "infinity" in invalid.title
    guard = {r["column"]: r for r in _tables(res)["guard"]}
    assert set(guard) == set(feats)
    assert guard["mean radius"]["min"] == train["mean radius"].min()
    assert guard["mean radius"]["missing_allowed"] == "no"
    m = res.evidence.metrics
    assert m["rows_crashed_in_domain"] == 0 and m["rows_non_finite"] == 0 and m["rows_out_of_range"] == 0
    assert m["rows_refused_out_of_domain"] == m["rows_crashed"] > 0
    assert m["rows_in_domain"] > m["rows_out_of_domain"] > 0


def test_diabetes_ridge_gets_no_high() -> None:
    df = load_diabetes(as_frame=True).frame
    train, test = train_test_split(df, test_size=0.3, random_state=0)
    feats = [c for c in df.columns if c != "target"]
    model = Ridge().fit(train[feats], train["target"])
    res = run_check(RandomAttackCheck, model, test=test, train=train, target="target", task="regression")
    assert _high_ids(res) == []
    assert all(f.rule is not None for f in res.findings)
    found = _by_id(res)
    assert set(found[f"{ID}/guard/missing"].features) == set(feats)
    assert {f.severity for f in res.findings} <= {Severity.LOW, Severity.INFO}


# ---- planted defects: silent garbage and in-domain crashes are high, whatever the seed ----------------------

def _x_frame(n: int = 300, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 100, n)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": (x > 50).astype(int)})


class _Binary:
    classes_ = np.array([0, 1])

    def p(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x = pd.to_numeric(X["x"], errors="coerce").to_numpy(dtype=float)
        x = np.clip(np.nan_to_num(x, nan=50.0), -1e3, 1e3)
        p = self.p(x)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class NanBelow30(_Binary):
    """sqrt(x - 30): NaN, silently, for in-range x below 30 (the data spans 0 to 100)."""

    def p(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return 1 / (1 + np.exp(-(np.sqrt(x - 30) - 4)))


class RaisesBetween40And60(_Binary):
    """Raises on in-range x in (40, 60); its test rows avoid the hole so the audit can start."""

    def p(self, x: np.ndarray) -> np.ndarray:
        if np.any((x > 40) & (x < 60)):
            raise ZeroDivisionError("bucket table has no entry")
        return 1 / (1 + np.exp(-(x - 50) / 10))


class AboveOne(_Binary):
    """P = 1.2 x / 100: above one for in-range x > 83."""

    def p(self, x: np.ndarray) -> np.ndarray:
        return np.clip(1.2 * x / 100, 0.0, 5.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_nan_for_some_in_range_inputs_is_high(seed: int) -> None:
    df = _x_frame()
    test = df[df["x"] >= 30]  # the model scores its own test data
    res = run_check(RandomAttackCheck, NanBelow30(), test=test, train=df, target="y", seed=seed)
    assert _high_ids(res) == [f"{ID}/non_finite/x"]
    f = _by_id(res)[f"{ID}/non_finite/x"]
    assert f.metrics["in_domain"] is True and "in-domain" in f.title
    assert f.rule.metric == "rows_non_finite" and f.rule.value == f.metrics["rows_affected"] > 0
    # a direct count: the in-range rows of x below 30 are exactly the NaN rows of the per-column batch
    rows = {(r["family"], r["column"]): r for r in _tables(res)["failures"]}
    assert rows[("in_range", "x")]["domain"] == "in"


@pytest.mark.parametrize("seed", SEEDS)
def test_exception_on_in_range_values_is_high(seed: int) -> None:
    df = _x_frame()
    test = df[(df["x"] <= 40) | (df["x"] >= 60)]
    res = run_check(RandomAttackCheck, RaisesBetween40And60(), test=test, train=df, target="y", seed=seed)
    assert _high_ids(res) == [f"{ID}/crash/x"]
    f = _by_id(res)[f"{ID}/crash/x"]
    assert "ZeroDivisionError: bucket table has no entry" in f.summary and "in-domain" in f.title
    assert f.rule.metric == "rows_crashed_in_domain"


@pytest.mark.parametrize("seed", SEEDS)
def test_probabilities_above_one_for_in_range_inputs_is_high(seed: int) -> None:
    df = _x_frame()
    test = df[df["x"] <= 80]
    res = run_check(RandomAttackCheck, AboveOne(), test=test, train=df, target="y", seed=seed)
    assert _high_ids(res) == [f"{ID}/out_of_range/x"]
    assert _by_id(res)[f"{ID}/out_of_range/x"].metrics["in_domain"] is True


def test_silent_nan_on_out_of_domain_input_is_still_high() -> None:
    class NanForMissing(_Binary):
        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            x = pd.to_numeric(X["x"], errors="coerce").to_numpy(dtype=float)
            p = 1 / (1 + np.exp(-np.clip((x - 50) / 10, -30, 30)))  # NaN stays NaN
            return np.column_stack([1 - p, p])

    res = run_check(RandomAttackCheck, NanForMissing(), test=_x_frame(), target="y")
    f = _by_id(res)[f"{ID}/non_finite/x"]
    assert f.severity is Severity.HIGH and f.metrics["in_domain"] is False
    assert "out-of-domain" in f.title and "missing values" in f.summary


# ---- multiclass: k probability columns, each row in [0, 1] and summing to one --------------------------------

@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    return load_iris(as_frame=True).frame


def test_three_class_logistic_regression_is_clean(iris: pd.DataFrame) -> None:
    feats = [c for c in iris.columns if c != "target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(iris[feats], iris["target"])
    res = run_check(RandomAttackCheck, model, test=iris, target="target")
    assert _high_ids(res) == []
    assert not [f for f in res.findings if "unstable" in f.id]
    assert any("3 class columns" in n for n in res.evidence.notes)
    assert res.evidence.metrics["rows_bad_sum"] == 0 and res.evidence.metrics["rows_out_of_range"] == 0


class ThreeClass:
    """Softmax over three classes with a planted defect selected by ``defect``, on in-range petal length
    above 5 (iris petal length spans 1 to 6.9; rows above 5 are dropped from the test data)."""

    classes_ = np.array([0, 1, 2])

    def __init__(self, defect: str) -> None:
        self.defect = defect

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x = pd.to_numeric(X["petal length (cm)"], errors="coerce").to_numpy(dtype=float)
        x = np.clip(np.nan_to_num(x, nan=3.0), -1e3, 1e3)
        z = np.column_stack([-(x - 1.5) ** 2, -(x - 4.0) ** 2, -(x - 5.5) ** 2])
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        hit = x > 5
        if self.defect == "bad_sum":  # class 0 doubled: each column in [0, 1], rows sum above one
            p[hit, 0] = np.minimum(2 * p[hit, 0] + 0.2, 1.0)
        elif self.defect == "negative":  # class 0 (not the positive class) below zero, rows still sum to one
            p[hit, 1] += p[hit, 0] + 0.1
            p[hit, 0] = -0.1
        elif self.defect == "shape" and hit.any():  # two columns for three classes
            return p[:, :2]
        elif self.defect == "jitter":  # classes 0 and 1 trade mass on a scale far below the data's resolution
            w = 0.2 * np.sin(x * 1e9) * np.minimum(p[:, 0], p[:, 1])
            p[:, 0] += w
            p[:, 1] -= w
        return p

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)


@pytest.mark.parametrize("defect, expected", [("bad_sum", "bad_sum"), ("negative", "out_of_range"),
                                              ("shape", "bad_shape")])
def test_three_class_probabilities_are_validated_as_k_columns(iris: pd.DataFrame, defect: str,
                                                               expected: str) -> None:
    test = iris[iris["petal length (cm)"] <= 5]
    res = run_check(RandomAttackCheck, ThreeClass(defect), test=test, train=iris, target="target")
    high = _high_ids(res)
    assert f"{ID}/{expected}/petal_length_cm" in high
    assert {c for f in res.findings if f.severity is Severity.HIGH for c in f.features} == {"petal length (cm)"}
    f = _by_id(res)[f"{ID}/{expected}/petal_length_cm"]
    assert f.metrics["in_domain"] is True
    if defect == "negative":
        assert "-0.1" in f.summary  # the example output shows the negative class-0 probability


def test_three_class_jitter_is_measured_on_every_class_column(iris: pd.DataFrame) -> None:
    # the positive (last) class probability does not move; classes 0 and 1 trade mass under the jitter
    res = run_check(RandomAttackCheck, ThreeClass("jitter"), test=iris, target="target")
    f = _by_id(res)[f"{ID}/unstable/petal_length_cm"]
    assert f.severity is Severity.MEDIUM and "class probability" in f.summary
    assert _high_ids(res) == []


def test_three_class_direct_check_of_the_defect(iris: pd.DataFrame) -> None:
    # independent computation: the planted bad_sum rows are exactly those with petal length above 5
    X = iris.drop(columns="target")
    p = ThreeClass("bad_sum").predict_proba(X)
    bad = np.abs(p.sum(axis=1) - 1) > 1e-6
    assert np.array_equal(bad, X["petal length (cm)"].to_numpy() > 5)
    assert np.all((p >= 0) & (p <= 1))


# ---- domain classification ---------------------------------------------------------------------------------

def test_domain_violation_rules() -> None:
    num = FeatureDomain("x", False, low=1.0, high=9.0, missing_share=0.0)
    num_missing = FeatureDomain("x", False, low=1.0, high=9.0, missing_share=0.2)
    cat = FeatureDomain("c", True, levels=("a", "b"))
    assert domain_violation("in_range", num, 5.0) == ""
    assert domain_violation("extreme", num, 9.0) == "" and domain_violation("extreme", num, 1.0) == ""
    assert domain_violation("extreme", num, 0.0) == "out_of_range"
    assert domain_violation("extreme", num, 1e9) == "out_of_range"
    assert domain_violation("infinite", num, math.inf) == "out_of_range"
    assert domain_violation("missing", num, np.nan) == "missing"
    assert domain_violation("missing", num_missing, np.nan) == ""
    assert domain_violation("missing", num, np.nan, missing_in_domain=True) == ""
    assert domain_violation("unseen_category", cat, "z") == "unseen_level"
    assert domain_violation("empty_string", cat, "") == "unseen_level"
    assert domain_violation("empty_string", FeatureDomain("c", True, levels=("a", "")), "") == ""
    assert domain_violation("wrong_type", num, "abc") == "wrong_type"


def test_in_domain_rows_match_a_direct_computation() -> None:
    train = pd.DataFrame({"x": [1.0, 5.0, 9.0, np.nan], "c": ["a", "b", "a", "b"], "k": [1.0, 2.0, 3.0, 4.0]})
    test = pd.DataFrame({"x": [0.5, 5.0, np.nan, 9.0, 3.0], "c": ["a", "z", "b", None, "b"],
                         "k": [2.0, 2.0, 2.0, 2.0, np.nan]})
    doms = feature_domains(train, categorical=("c",), features=("x", "c", "k"))
    got = in_domain_rows(test, doms)
    # x in [1, 9] or missing (train had a missing x); c in {a, b}, never missing; k in [1, 4], never missing
    want = np.array([False, False, True, False, False])
    assert np.array_equal(got, want)
    assert np.array_equal(in_domain_rows(test, doms, missing_in_domain=True), [False, False, True, True, True])
