"""sensitivity.random_attack: planted defects must be found and named, robust models stay quiet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_check, svg_of
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from auditor.analysis.domain import FeatureDomain, feature_domains
from auditor.analysis.random_attack import (
    COMBINED,
    JitterOutcome,
    Outcome,
    RandomAttackResult,
    column_series,
    random_attack,
)
from auditor.checks.sensitivity.random_attack import RandomAttackCheck, RandomAttackMeasurement
from auditor.findings import Severity

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

def test_log_transform_refusing_out_of_range_income_is_a_guard_requirement() -> None:
    # behaviour change (issue 7, section 5): income is >= 1 in the data, so zero and negative incomes are
    # out-of-domain; a clear exception on them is a medium guard requirement, no longer a high crash
    df = _credit()
    model = Pipeline([
        ("prep", ColumnTransformer([("log", FunctionTransformer(np.log), ["income"]),
                                    ("pass", "passthrough", ["age"])])),
        ("lr", LogisticRegression()),
    ]).fit(df[["income", "age"]], df["y"])
    res = run_check(RandomAttackCheck, model, test=df, target="y", features=["income", "age"])
    found = _by_id(res)
    assert not _high(res)
    guard = found[f"{ID}/guard/out_of_range"]
    assert guard.severity is Severity.MEDIUM
    # LogisticRegression also refuses infinity in age: not a guard requirement (no record holds infinity,
    # issue 10) but an info rejection of invalid input; the finite out-of-range incomes stay medium
    assert guard.features == ("income",)
    invalid = found[f"{ID}/rejects_invalid"]
    assert invalid.severity is Severity.INFO and "age" in invalid.features and "infinity" in invalid.title
    assert "0.0" in guard.summary and "ValueError" in guard.summary and "deploy an input guard" in guard.summary
    assert f"within [{df['income'].min():.6g}, {df['income'].max():.6g}]" in guard.summary
    assert guard.metrics["min/income"] == df["income"].min() and guard.metrics["max/income"] == df["income"].max()
    assert guard.rule is not None and guard.rule.metric == "rows_refused_out_of_domain"
    # the failures table pins the negative and zero values to income
    rows = res.evidence.tables[0].records()
    bad_values = {r["value"] for r in rows if r["column"] == "income" and r["family"] == "extreme"}
    assert {"-1.0", "0.0", "-1000000000.0"} <= bad_values
    assert "1000000000.0" not in bad_values  # a large positive income is fine through a log
    # no extreme value breaks age (LogisticRegression only refuses NaN and infinity there)
    assert not any(r["column"] == "age" and r["family"] == "extreme" for r in rows)


def test_one_hot_encoder_rejecting_unseen_categories_is_a_medium_guard_finding() -> None:
    # behaviour change (issue 7, section 5): an unseen level is out-of-domain, so a clear exception on it
    # is a medium deployment-guard requirement listing the allowed levels (it was high)
    df = _credit()
    feats = ["income", "age", "region"]
    model = Pipeline([
        ("prep", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="error"), ["region"])],
                                   remainder="passthrough")),
        ("gbm", HistGradientBoostingClassifier(max_iter=30, random_state=0)),
    ]).fit(df[feats], df["y"])
    res = run_check(RandomAttackCheck, model, test=df, target="y")
    found = _by_id(res)
    assert not _high(res)
    guard = found[f"{ID}/guard/unseen_level"]
    assert guard.severity is Severity.MEDIUM and guard.features == ("region",)
    assert "Found unknown categories" in guard.summary and "deploy an input guard" in guard.summary
    assert "one of the 4 seen levels: " in guard.summary
    assert set(guard.metrics["levels/region"].split(", ")) == set(df["region"].unique())
    assert guard.rule is not None and guard.rule.operator == ">" and guard.rule.value == guard.metrics["rows_refused"]
    assert "guard" in guard.evidence
    table = {t.name: t for t in res.evidence.tables}["guard"].records()
    assert [r["column"] for r in table] == ["region"]
    assert set(table[0]["levels"].split(", ")) == set(df["region"].unique())
    assert table[0]["missing_allowed"] == "no"  # the data has no missing region
    # the numeric side is robust (HistGradientBoosting handles NaN and extremes): only region is named
    assert {c for f in res.findings if f.severity >= Severity.MEDIUM for c in f.features} == {"region"}


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


def _two_numeric(n: int = 300, low: float = 0.0, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.uniform(low, 10, n), "b": rng.normal(0, 5, n),
                         "y": rng.integers(0, 2, n)})


def test_attribution_names_only_the_breaking_column() -> None:
    # training saw a in [-5, 10]: the model raising on negative a is a crash on in-domain input (high);
    # the test rows have a >= 0, so the model can score its own test data
    res = run_check(RandomAttackCheck, NegativeAIsAnError(), test=_two_numeric(), target="y",
                    train=_two_numeric(low=-5.0, seed=5))
    high = _high(res)
    assert high and {c for f in high for c in f.features} == {"a"}
    crash = _by_id(res)[f"{ID}/crash/a"]
    assert "ValueError: a must be non-negative" in crash.summary
    assert "in-domain" in crash.title and crash.rule.metric == "rows_crashed_in_domain"
    assert "second line" not in crash.summary  # first line only
    assert f"{ID}/crash/combined" not in _by_id(res)  # the all-columns crash is explained by a
    # the wrong type in b is rejected cleanly: info, not high
    rejects = _by_id(res)[f"{ID}/rejects_invalid"]
    assert rejects.severity is Severity.INFO and "b" in rejects.features


def test_calls_are_batched() -> None:
    model = NegativeAIsAnError()
    res = run_check(RandomAttackCheck, model, test=_two_numeric(), target="y")
    m = res.evidence.metrics
    # the context's own calls before the check: a probe of the probability shape and the test predictions
    assert model.calls - m["calls"] in (1, 2)
    calls_by_check = m["calls"]
    assert m["rows_tried"] >= 1000
    assert calls_by_check <= 50 and calls_by_check * 20 < m["rows_tried"]
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
    assert m["rows_crashed_in_domain"] == 0 and m["rows_non_finite"] == 0 and m["rows_unstable"] == 0
    assert {t.name for t in res.evidence.tables} == {"failures", "families", "jitter"}  # nothing to guard
    assert res.evidence.figures and svg_of(res.evidence.figures[0]).startswith("<svg")
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
        # clipped: sin(inf) would be NaN, silent garbage on infinite input, which is high on its own
        x = np.clip(np.nan_to_num(np.asarray(X["x"], dtype=float)), -1e6, 1e6)
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


def test_missing_values_never_seen_are_a_guard_requirement_unless_declared_valid() -> None:
    # behaviour change (issue 7, section 5): missing values are in-domain only where the training data had
    # them; ``missing_valid = true`` (default now false) declares them expected in every column
    df = _credit()
    model = Pipeline([
        ("prep", ColumnTransformer([("pass", "passthrough", ["income", "age"])])),
        ("lr", LogisticRegression()),
    ]).fit(df[["income", "age"]], df["y"])
    default = run_check(RandomAttackCheck, model, test=df, target="y", features=["income", "age"])
    assert not _high(default)
    # issue 10: refused loudly, missing values the training data never had are low (the model fails
    # safe); declared valid (the control) the same refusal is an in-domain crash and high
    guard = _by_id(default)[f"{ID}/guard/missing"]
    assert guard.severity is Severity.LOW and guard.features == ("income", "age")
    assert guard.rule is not None and guard.rule.text.startswith("low:") and "missing_valid" in guard.summary
    assert guard.metrics["missing_allowed/income"] is False and "no missing value" in guard.summary
    strict = run_check(RandomAttackCheck, model, test=df, target="y", features=["income", "age"],
                       options={"missing_valid": True})
    assert {f.id for f in _high(strict)} == {f"{ID}/crash/income", f"{ID}/crash/age"}
    assert f"{ID}/guard/missing" not in _by_id(strict)


class RaisesOnMissing:
    """Refuses any missing value with a clear error."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        v = X[["income", "age"]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        if np.isnan(v).any():
            raise ValueError("missing value")
        p = 1 / (1 + np.exp(-np.clip(0.01 * (v[:, 1] - 45), -30, 30)))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def test_crash_on_missing_where_training_had_missing_is_high() -> None:
    test = _credit()
    train = _credit(seed=7)
    train.loc[train.index[:40], "income"] = np.nan  # training had missing incomes, never missing ages
    res = run_check(RandomAttackCheck, RaisesOnMissing(), test=test, train=train, target="y",
                    features=["income", "age"])
    found = _by_id(res)
    assert [f.id for f in _high(res)] == [f"{ID}/crash/income"]  # in-domain: high
    assert found[f"{ID}/guard/missing"].features == ("age",)  # out-of-domain, never seen in training: low
    assert found[f"{ID}/guard/missing"].severity is Severity.LOW
    rows = {(r["column"], r["family"]): r for r in res.evidence.tables[0].records()}
    assert rows[("income", "missing")]["domain"] == "in" and rows[("age", "missing")]["domain"] == "out: missing"


# ---- judge without a model -------------------------------------------------------------------------

def _measurement(outcomes, jitter=(), features=("a", "b")) -> RandomAttackMeasurement:
    r = RandomAttackResult(outcomes=tuple(outcomes), jitter=tuple(jitter), calls=3,
                           rows_tried=(("extreme", 40),), n_random=200, rows_per_column=20,
                           jitter_relative=1e-6, tolerance=1e-6)
    domains = {"a": FeatureDomain("a", False, low=0.0, high=10.0, missing_share=0.1),
               "b": FeatureDomain("b", True, levels=("x", "y"))}
    return RandomAttackMeasurement(r, features, True, 1.0, domains=domains)


def test_judge_severity_rules() -> None:
    check = RandomAttackCheck()
    out = ("out_of_range",)
    outs = [
        Outcome("extreme", COMBINED, "every column at once", out, 20, crash="ValueError: boom"),
        Outcome("extreme", "a", "-1.0", out, 2, crash="ValueError: boom"),  # out-of-domain crash: medium
        Outcome("extreme", "a", "5.0", (), 2, crash="ValueError: boom"),  # in-domain crash: high
        Outcome("missing", COMBINED, "every column at once", ("missing",), 20, non_finite=20, example_output="nan"),
        Outcome("missing", "a", "nan", (), 20),
        Outcome("unseen_category", "b", "'z'", ("unseen_level",), 20, crash="KeyError: z"),
        Outcome("wrong_type", "a", "'abc'", ("wrong_type",), 20, crash="TypeError: no"),
        Outcome("wrong_type", "b", "12345", ("wrong_type",), 20),
        Outcome("infinite", "a", "inf", out, 10, out_of_range=10),  # silent garbage on out-of-domain: high
    ]
    jit = [JitterOutcome("a", (0.0, 0.2, 0.01)), JitterOutcome("b", (0.0, 0.04))]
    findings = check.judge(_measurement(outs, jit))
    found = {f.id: f for f in findings}
    assert all(f.rule is not None for f in findings)
    assert found[f"{ID}/crash/a"].severity is Severity.HIGH
    assert found[f"{ID}/crash/a"].metrics["rows_affected"] == 2  # only the in-domain value
    assert f"{ID}/crash/combined" not in found  # the all-columns crash is out-of-domain
    assert found[f"{ID}/non_finite/combined"].severity is Severity.HIGH  # no single column reproduces it
    assert found[f"{ID}/non_finite/combined"].features == ()
    assert found[f"{ID}/out_of_range/a"].severity is Severity.HIGH
    assert found[f"{ID}/out_of_range/a"].metrics["in_domain"] is False
    guard = found[f"{ID}/guard/out_of_range"]
    assert guard.severity is Severity.MEDIUM and guard.features == ("a",)
    assert guard.metrics["min/a"] == 0.0 and guard.metrics["max/a"] == 10.0
    assert "within [0, 10] (refused -1.0)" in guard.summary
    unseen = found[f"{ID}/guard/unseen_level"]
    assert unseen.severity is Severity.MEDIUM and unseen.metrics["levels/b"] == "x, y"
    assert f"{ID}/guard/missing" not in found  # missing a was scored
    assert found[f"{ID}/rejects_invalid"].severity is Severity.INFO
    assert found[f"{ID}/rejects_invalid"].features == ("a",)
    assert "infinity" not in found[f"{ID}/rejects_invalid"].title  # only a wrong type was refused here
    assert found[f"{ID}/accepts_invalid"].severity is Severity.LOW
    assert found[f"{ID}/accepts_invalid"].features == ("b",)
    assert found[f"{ID}/unstable/a"].severity is Severity.MEDIUM
    assert found[f"{ID}/unstable/a"].rule.threshold == 0.05
    assert f"{ID}/unstable/b" not in found
    loose = RandomAttackCheck(jitter_tolerance=0.5)
    assert not [f for f in loose.judge(_measurement(outs, jit)) if "unstable" in f.id]


def test_judge_refused_infinity_is_info_and_refused_finite_values_a_medium_guard() -> None:
    # issue 10: ±infinity is no value a record holds, so refusing it loudly is info (with wrong types);
    # the control: a refused finite value outside the observed range is still a medium guard requirement
    out = ("out_of_range",)
    inf_only = [Outcome("infinite", "a", "inf", out, 10, crash="ValueError: Input X contains infinity")]
    found = {f.id: f for f in RandomAttackCheck().judge(_measurement(inf_only))}
    assert f"{ID}/guard/out_of_range" not in found
    invalid = found[f"{ID}/rejects_invalid"]
    assert invalid.severity is Severity.INFO and invalid.features == ("a",) and "infinity" in invalid.title
    assert invalid.rule is not None and invalid.rule.metric == "rows_rejected_invalid"
    finite = inf_only + [Outcome("extreme", "a", "-1.0", out, 2, crash="ValueError: boom")]
    found = {f.id: f for f in RandomAttackCheck().judge(_measurement(finite))}
    guard = found[f"{ID}/guard/out_of_range"]
    assert guard.severity is Severity.MEDIUM and "refused -1.0" in guard.summary and "inf" not in guard.summary


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
    r = random_attack(X, doms, model.predict_proba, proba=True, n_outputs=2,
                      rng=np.random.default_rng(0), families=("extreme",))
    tried = [o for o in r.outcomes if o.column == "a"]
    crashed = {o.value for o in tried if o.crash}
    assert crashed == {o.value for o in tried if o.value.startswith("-")}  # exactly the negative values
    assert {"-1.0", "-1e-12", "-1000000000.0"} <= crashed
    assert not any(o.crash for o in r.outcomes if o.column == "b")
    assert r.calls <= 2 * len(r.outcomes) - 1  # bisection bound: at most 2 calls per group
