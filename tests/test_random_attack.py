"""sensitivity.random_attack: planted defects must be found and named, robust models stay quiet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from auditor.analysis.domain import feature_domains
from auditor.analysis.random_attack import (COMBINED, JitterOutcome, Outcome, RandomAttackResult,
                                            column_series, random_attack)
from auditor.checks.sensitivity.random_attack import RandomAttackCheck, RandomAttackMeasurement
from auditor.findings import Severity

from conftest import run_check

ID = RandomAttackCheck.id


def _credit(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.5, n).round(0) + 1.0
    age = rng.integers(18, 80, n)
    region = rng.choice(["north", "south", "east", "west"], n)
    logit = 0.8 * (np.log(income) - 10) - 0.02 * (age - 45) + (region == "north") * 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"income": income, "age": age, "region": region, "y": y})


def _by_id(result) -> dict:
    return {f.id: f for f in result.findings}


def _high(result) -> list:
    return [f for f in result.findings if f.severity is Severity.HIGH]


# ---- planted defects ----------------------------------------------------------------------------

def test_log_transform_crashes_on_negative_income() -> None:
    df = _credit()
    model = Pipeline([
        ("prep", ColumnTransformer([("log", FunctionTransformer(np.log), ["income"]),
                                    ("pass", "passthrough", ["age"])])),
        ("lr", LogisticRegression()),
    ]).fit(df[["income", "age"]], df["y"])
    res = run_check(RandomAttackCheck, model, test=df, target="y", features=["income", "age"])
    found = _by_id(res)
    crash = found[f"{ID}/crash/income"]
    assert crash.severity is Severity.HIGH
    assert crash.features == ("income",)
    assert "-1.0" in crash.summary and "ValueError" in crash.summary
    # the failures table pins the negative and zero values to income
    rows = res.evidence.tables[0].records()
    bad_values = {r["value"] for r in rows if r["column"] == "income" and r["family"] == "extreme"}
    assert {"-1.0", "0.0", "-1000000000.0"} <= bad_values
    assert "1000000000.0" not in bad_values  # a large positive income is fine through a log
    # no extreme value breaks age (LogisticRegression only refuses NaN and infinity there)
    assert not any(r["column"] == "age" and r["family"] == "extreme" for r in rows)


def test_one_hot_encoder_rejecting_unseen_categories_is_high() -> None:
    df = _credit()
    feats = ["income", "age", "region"]
    model = Pipeline([
        ("prep", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="error"), ["region"])],
                                   remainder="passthrough")),
        ("gbm", HistGradientBoostingClassifier(max_iter=30, random_state=0)),
    ]).fit(df[feats], df["y"])
    res = run_check(RandomAttackCheck, model, test=df, target="y")
    found = _by_id(res)
    crash = found[f"{ID}/crash/region"]
    assert crash.severity is Severity.HIGH and crash.features == ("region",)
    assert "unseen categories" in crash.summary and "Found unknown categories" in crash.summary
    # the numeric side is robust (HistGradientBoosting handles NaN and extremes): only region is named
    assert {c for f in _high(res) for c in f.features} == {"region"}


class NanForZeroIncome:
    """A hand-written scorer that divides by income: zero income gives NaN, silently."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        income = np.asarray(X["income"], dtype=float)
        income = np.where(np.isnan(income), 30_000.0, income)
        age = np.nan_to_num(np.asarray(X["age"], dtype=float), nan=45.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.clip(20_000.0 / income - 0.01 * (age - 45), -30, 30)
            z = np.where(income == 0, np.nan, z)
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def test_python_model_returning_nan_for_zero_income() -> None:
    df = _credit()
    res = run_check(RandomAttackCheck, NanForZeroIncome(), test=df, target="y", features=["income", "age"])
    nan = _by_id(res)[f"{ID}/non_finite/income"]
    assert nan.severity is Severity.HIGH and nan.features == ("income",)
    assert "0.0" in nan.summary
    assert [f.id for f in _high(res)] == [f"{ID}/non_finite/income"]
    assert res.evidence.metrics["rows_non_finite"] >= 2


class LinearProbability:
    """A 'probability' that is linear in x: fine in range, above 1 for large x."""

    classes_ = np.array([0, 1])

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x = np.nan_to_num(np.asarray(X["x"], dtype=float), nan=self.lo, posinf=self.hi, neginf=self.lo)
        p = 0.1 + 0.8 * (x - self.lo) / (self.hi - self.lo)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def test_probabilities_above_one_for_extreme_values() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 100, 300)
    df = pd.DataFrame({"x": x, "z": rng.normal(size=300), "y": (x + rng.normal(0, 20, 300) > 50).astype(int)})
    res = run_check(RandomAttackCheck, LinearProbability(float(x.min()), float(x.max())), test=df, target="y")
    f = _by_id(res)[f"{ID}/out_of_range/x"]
    assert f.severity is Severity.HIGH and f.features == ("x",)
    assert {c for g in _high(res) for c in g.features} == {"x"}
    assert res.evidence.metrics["rows_out_of_range"] > 0


class NegativeAIsAnError:
    """Raises on any negative ``a``; tolerant of anything numeric in ``b``."""

    classes_ = np.array([0, 1])

    def __init__(self) -> None:
        self.calls = 0
        self.rows = 0

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        self.rows += len(X)
        a = np.asarray(X["a"], dtype=float)
        b = np.nan_to_num(np.asarray(X["b"], dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
        if np.any(a < 0):
            raise ValueError("a must be non-negative\nsecond line of the message")
        z = np.clip(np.nan_to_num(a, nan=1.0) * 0.1 + np.clip(b, -1e3, 1e3) * 0.001, -30, 30)
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def _two_numeric(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return pd.DataFrame({"a": rng.uniform(0, 10, n), "b": rng.normal(0, 5, n),
                         "y": rng.integers(0, 2, n)})


def test_attribution_names_only_the_breaking_column() -> None:
    res = run_check(RandomAttackCheck, NegativeAIsAnError(), test=_two_numeric(), target="y")
    high = _high(res)
    assert high and {c for f in high for c in f.features} == {"a"}
    crash = _by_id(res)[f"{ID}/crash/a"]
    assert "ValueError: a must be non-negative" in crash.summary
    assert "second line" not in crash.summary  # first line only
    assert f"{ID}/crash/combined" not in _by_id(res)  # the all-columns crash is explained by a
    # the wrong type in b is rejected cleanly: info, not high
    rejects = _by_id(res)[f"{ID}/rejects_invalid"]
    assert rejects.severity is Severity.INFO and "b" in rejects.features


def test_calls_are_batched() -> None:
    model = NegativeAIsAnError()
    res = run_check(RandomAttackCheck, model, test=_two_numeric(), target="y")
    m = res.evidence.metrics
    calls_by_check = model.calls - 1  # one call is the context's prediction on the test data
    assert calls_by_check == m["calls"]
    assert m["rows_tried"] >= 1000
    assert calls_by_check <= 40 and calls_by_check * 20 < m["rows_tried"]
    assert model.rows - len(_two_numeric()) >= m["rows_tried"]  # the rows really went to the model


# ---- clean controls ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def german_hgb(german: pd.DataFrame):
    feats = [c for c in german.columns if c != "risk"]
    cat = [c for c in feats if not pd.api.types.is_numeric_dtype(german[c])]
    model = Pipeline([
        ("prep", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat)],
                                   remainder="passthrough")),
        ("gbm", HistGradientBoostingClassifier(max_iter=60, random_state=0)),
    ]).fit(german[feats], german["risk"])
    return model


def test_robust_pipeline_gets_no_high_finding(german: pd.DataFrame, german_hgb) -> None:
    res = run_check(RandomAttackCheck, german_hgb, test=german, target="risk")
    sev = {f.severity for f in res.findings}
    assert Severity.HIGH not in sev and Severity.MEDIUM not in sev
    rejects = _by_id(res).get(f"{ID}/rejects_invalid")
    assert rejects is not None and rejects.severity is Severity.INFO
    assert {"credit_amount", "duration", "age"} <= set(rejects.features)  # strings in numeric columns
    m = res.evidence.metrics
    assert m["rows_crashed_valid"] == 0 and m["rows_non_finite"] == 0 and m["rows_unstable"] == 0
    assert {t.name for t in res.evidence.tables} == {"failures", "families", "jitter"}
    assert res.evidence.figures and res.evidence.figures[0].svg.startswith("<svg")
    assert any("Budget" in n for n in res.evidence.notes)


def test_deterministic(german: pd.DataFrame, german_hgb) -> None:
    a = run_check(RandomAttackCheck, german_hgb, test=german, target="risk")
    b = run_check(RandomAttackCheck, german_hgb, test=german, target="risk")
    assert [f.to_json() for f in a.findings] == [f.to_json() for f in b.findings]
    assert a.to_json()["metrics"] == b.to_json()["metrics"]
    assert a.to_json()["tables"] == b.to_json()["tables"]


# ---- instability and regression ------------------------------------------------------------------

class Chaotic:
    """Ill-conditioned: the score oscillates on a scale far below the data's resolution."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x = np.nan_to_num(np.asarray(X["x"], dtype=float))
        p = 0.5 + 0.4 * np.sin(x * 1e9)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class Step:
    """A single split at 50: a jump, but no instability away from the threshold."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x = np.nan_to_num(np.asarray(X["x"], dtype=float))
        p = np.where(x <= 50, 0.2, 0.8)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def _x_frame(integer: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 101, 300) if integer else rng.uniform(0, 100, 300)
    return pd.DataFrame({"x": x, "y": (x > 50).astype(int)})


def test_unstable_under_tiny_jitter_is_medium() -> None:
    res = run_check(RandomAttackCheck, Chaotic(), test=_x_frame(), target="y")
    f = _by_id(res)[f"{ID}/unstable/x"]
    assert f.severity is Severity.MEDIUM and f.features == ("x",)
    assert not _high(res)


def test_step_on_an_integer_threshold_is_not_instability() -> None:
    # integer random rows land exactly on the split at 50; a one-sided jump is not instability
    res = run_check(RandomAttackCheck, Step(), test=_x_frame(integer=True), target="y")
    assert not [f for f in res.findings if "unstable" in f.id]
    assert res.evidence.metrics["max_jitter_change"] == 0.0


class ExpRegressor:
    """Predicts exp(x): overflows to infinity for large x."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(np.nan_to_num(np.asarray(X["x"], dtype=float)) / 10)


def test_regression_infinite_prediction_is_high() -> None:
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"x": rng.uniform(0, 10, 200)})
    df["y"] = np.exp(df["x"] / 10) + rng.normal(0, 0.1, 200)
    res = run_check(RandomAttackCheck, ExpRegressor(), test=df, target="y", task="regression")
    f = _by_id(res)[f"{ID}/non_finite/x"]
    assert f.severity is Severity.HIGH and f.features == ("x",)
    assert "1000000000.0" in f.summary


def test_missing_values_can_be_declared_invalid() -> None:
    df = _credit()
    model = Pipeline([
        ("prep", ColumnTransformer([("pass", "passthrough", ["income", "age"])])),
        ("lr", LogisticRegression()),
    ]).fit(df[["income", "age"]], df["y"])
    strict = run_check(RandomAttackCheck, model, test=df, target="y", features=["income", "age"])
    assert f"{ID}/crash/income" in _by_id(strict)  # LogisticRegression refuses NaN: high by default
    lenient = run_check(RandomAttackCheck, model, test=df, target="y", features=["income", "age"],
                        options={"missing_valid": False})
    assert not _high(lenient)
    assert _by_id(lenient)[f"{ID}/rejects_invalid"].severity is Severity.INFO


# ---- judge without a model -------------------------------------------------------------------------

def _measurement(outcomes, jitter=(), features=("a", "b")) -> RandomAttackMeasurement:
    r = RandomAttackResult(outcomes=tuple(outcomes), jitter=tuple(jitter), calls=3,
                           rows_tried=(("extreme", 40),), n_random=200, rows_per_column=20,
                           jitter_relative=1e-6, tolerance=1e-6, missing_valid=True)
    return RandomAttackMeasurement(r, features, True, 1.0)


def test_judge_severity_rules() -> None:
    check = RandomAttackCheck()
    outs = [
        Outcome("extreme", COMBINED, "every column at once", True, 20, crash="ValueError: boom"),
        Outcome("extreme", "a", "-1.0", True, 2, crash="ValueError: boom"),
        Outcome("missing", COMBINED, "every column at once", True, 20, non_finite=20, example_output="nan"),
        Outcome("missing", "a", "nan", True, 20),
        Outcome("wrong_type", "a", "'abc'", False, 20, crash="TypeError: no"),
        Outcome("wrong_type", "b", "'abc'", False, 20),
        Outcome("infinite", "b", "inf", False, 10),  # scoring infinity finitely is fine
    ]
    jit = [JitterOutcome("a", (0.0, 0.2, 0.01)), JitterOutcome("b", (0.0, 0.04))]
    found = {f.id: f for f in check.judge(_measurement(outs, jit))}
    assert found[f"{ID}/crash/a"].severity is Severity.HIGH
    assert f"{ID}/crash/combined" not in found  # explained by column a
    assert found[f"{ID}/non_finite/combined"].severity is Severity.HIGH  # no single column reproduces it
    assert found[f"{ID}/non_finite/combined"].features == ()
    assert found[f"{ID}/rejects_invalid"].severity is Severity.INFO
    assert found[f"{ID}/rejects_invalid"].features == ("a",)
    assert found[f"{ID}/accepts_invalid"].severity is Severity.LOW
    assert found[f"{ID}/accepts_invalid"].features == ("b",)
    assert found[f"{ID}/unstable/a"].severity is Severity.MEDIUM
    assert f"{ID}/unstable/b" not in found
    loose = RandomAttackCheck(jitter_tolerance=0.5)
    assert not [f for f in loose.judge(_measurement(outs, jit)) if "unstable" in f.id]


# ---- analysis details ----------------------------------------------------------------------------------

def test_column_series_keeps_wrong_types_and_dtypes() -> None:
    text = pd.Series(["a", "b", "c"], dtype="str")
    assert column_series([12345, 12345, "c"], text, object_dtype=True).tolist() == [12345, 12345, "c"]
    assert pd.api.types.is_string_dtype(column_series(["", "", "c"], text).dtype)
    ints = pd.Series([1, 2, 3])
    assert column_series([4.0, 5.0, 3], ints).dtype == np.int64
    assert column_series([np.nan, 1e-12, 3], ints).dtype == np.float64
    flags = pd.Series([True, False, True])
    assert column_series([np.nan, True, True], flags).dtype == object  # never NaN -> True


def test_crash_bisection_pins_value_without_row_by_row_calls() -> None:
    df = _two_numeric()
    X = df[["a", "b"]]
    doms = feature_domains(X, categorical=(), features=("a", "b"))
    model = NegativeAIsAnError()
    r = random_attack(X, doms, model.predict_proba, proba=True, score_column=1,
                      rng=np.random.default_rng(0), families=("extreme",))
    tried = [o for o in r.outcomes if o.column == "a"]
    crashed = {o.value for o in tried if o.crash}
    assert crashed == {o.value for o in tried if o.value.startswith("-")}  # exactly the negative values
    assert {"-1.0", "-1e-12", "-1000000000.0"} <= crashed
    assert not any(o.crash for o in r.outcomes if o.column == "b")
    assert r.calls <= 2 * len(r.outcomes) - 1  # bisection bound: at most 2 calls per group
