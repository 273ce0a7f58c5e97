"""Security probes: planted defects are found, clean controls stay quiet, numbers match direct computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_check, svg_of
from sklearn.compose import make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import cohen_kappa_score, r2_score, roc_auc_score, roc_curve
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeRegressor

from auditor.analysis.attribute_inference import attribute_classes
from auditor.analysis.domain import feature_domains
from auditor.analysis.extraction import QuerySet, extraction_attack, synthetic_rows
from auditor.analysis.membership import membership_inference
from auditor.analysis.security import TabularEncoder, attack_score
from auditor.checks.base import CheckRegistry
from auditor.checks.security import AttributeInferenceCheck, MembershipInferenceCheck, ModelExtractionCheck
from auditor.engine import prepare_objects
from auditor.findings import Severity, Status

RANK = {"info": 0, "low": 1, "medium": 2, "high": 3}
FAST = {"n_resamples": 100}


def worst(result) -> str:
    return max((f.severity.value for f in result.findings), key=RANK.__getitem__, default="info")


def credit(n: int, seed: int = 0, noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.normal(size=n),
                       "region": rng.choice(["north", "south", "east"], n)})
    logit = 1.5 * df["x1"] - df["x2"] + 0.5 * (df["region"] == "east")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    df["y"] = np.where(rng.random(n) < noise, 1 - y, y)
    return df


NUM = ["x1", "x2", "x3"]
ALL = NUM + ["region"]


def logistic(train: pd.DataFrame, C: float = 1.0):
    return make_pipeline(make_column_transformer((OneHotEncoder(), ["region"]), remainder="passthrough"),
                         LogisticRegression(C=C, max_iter=1000)).fit(train[ALL], train["y"])


# ---- membership inference ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def noisy():
    df = credit(1200, seed=1, noise=0.3)
    return df.iloc[:600].reset_index(drop=True), df.iloc[600:].reset_index(drop=True)


def test_fully_grown_forest_memorises_its_training_rows(noisy) -> None:
    train, test = noisy
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(train[NUM], train["y"])
    r = run_check(MembershipInferenceCheck, model, test=test[NUM + ["y"]], train=train[NUM + ["y"]], target="y",
                  options=FAST)
    (f,) = r.findings
    assert f.severity is Severity.HIGH
    assert r.evidence.metrics["attack_auc"] >= 0.75 and r.evidence.metrics["attack_auc_low"] > 0.5
    assert r.evidence.metrics["learned_auc"] > 0.7  # the learned (ART) attack finds it too
    assert "tpr_at_1pct_fpr" in r.evidence.metrics and svg_of(r.evidence.figures[0]).startswith("<svg")


def test_one_nearest_neighbour_memorises(noisy) -> None:
    train, test = noisy
    model = KNeighborsClassifier(n_neighbors=1).fit(train[NUM], train["y"])
    r = run_check(MembershipInferenceCheck, model, test=test[NUM + ["y"]], train=train[NUM + ["y"]], target="y",
                  options=FAST)
    assert worst(r) == "high"
    # 1-NN is always right on its training rows: the advantage is its test error rate
    err = 1 - (model.predict(test[NUM]) == test["y"]).mean()
    assert r.evidence.metrics["advantage"] == pytest.approx(err, abs=1e-9)


def test_regularised_logistic_regression_does_not_leak_membership() -> None:
    df = credit(4000, seed=2)
    train, test = df.iloc[:2000], df.iloc[2000:]
    r = run_check(MembershipInferenceCheck, logistic(train, C=0.1), test=test, train=train, target="y", options=FAST)
    assert RANK[worst(r)] <= RANK["low"]
    assert r.evidence.metrics["attack_auc"] < 0.56


def test_threshold_attack_auc_is_the_auc_of_true_class_confidence(noisy) -> None:
    train, test = noisy  # equal sizes below the row budget: every row is sampled
    model = RandomForestClassifier(n_estimators=20, min_samples_leaf=5, random_state=0).fit(train[NUM], train["y"])
    r = run_check(MembershipInferenceCheck, model, test=test[NUM + ["y"]], train=train[NUM + ["y"]], target="y",
                  options=FAST)
    conf_m = model.predict_proba(train[NUM])[np.arange(len(train)), train["y"]]
    conf_n = model.predict_proba(test[NUM])[np.arange(len(test)), test["y"]]
    direct = roc_auc_score(np.r_[np.ones(len(train)), np.zeros(len(test))], np.r_[conf_m, conf_n])
    assert r.evidence.metrics["threshold_auc"] == pytest.approx(direct, abs=1e-12)
    assert r.evidence.metrics["members"] == len(train) and r.evidence.metrics["non_members"] == len(test)


def test_attack_score_matches_sklearn_roc() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(size=500) + 0.8 * y, 1)  # ties on purpose
    a = attack_score(y, s, low_fpr=(0.01, 0.05, 0.2), n_resamples=50, rng=rng)
    fpr, tpr, _ = roc_curve(y, s)
    assert a.auc.value == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert a.advantage.value == pytest.approx(np.max(tpr - fpr), abs=1e-12)
    for alpha in (0.01, 0.05, 0.2):
        assert a.tpr_at(alpha).value == pytest.approx(tpr[fpr <= alpha].max(), abs=1e-12)
    assert a.auc.low <= a.auc.value <= a.auc.high


def test_membership_analysis_on_a_regressor_uses_squared_error() -> None:
    rng = np.random.default_rng(0)
    y_m, y_n = rng.normal(size=200), rng.normal(size=200)
    res = membership_inference(task="regression", member_output=y_m + 0.01, member_target=y_m,
                               nonmember_output=y_n + rng.normal(size=200), nonmember_target=y_n,
                               rng=np.random.default_rng(1), n_resamples=50)
    assert np.allclose(res.signal_member, -(0.01 ** 2))
    assert res.attack("threshold").score.auc.value > 0.95


def test_membership_on_an_overfit_regression_tree() -> None:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x1": rng.normal(size=800), "x2": rng.normal(size=800)})
    df["y"] = df["x1"] + rng.normal(size=800)
    train, test = df.iloc[:400], df.iloc[400:]
    model = DecisionTreeRegressor(random_state=0).fit(train[["x1", "x2"]], train["y"])
    r = run_check(MembershipInferenceCheck, model, test=test, train=train, target="y", options=FAST)
    assert worst(r) == "high"
    lin = run_check(MembershipInferenceCheck, LinearRegression().fit(train[["x1", "x2"]], train["y"]), test=test,
                    train=train, target="y", options=FAST)
    assert RANK[worst(lin)] <= RANK["low"]


def test_membership_is_skipped_without_training_data(noisy) -> None:
    _, test = noisy
    model = LogisticRegression().fit(test[NUM], test["y"])
    r = run_check(MembershipInferenceCheck, model, test=test[NUM + ["y"]], target="y")
    assert r.status is Status.SKIPPED and "training data" in r.reason


# ---- model extraction ------------------------------------------------------------------------------

class Counting:
    """Wraps a fitted model and counts the rows it is asked to score."""

    def __init__(self, model) -> None:
        self.model, self.rows, self.calls = model, 0, 0
        self.classes_ = getattr(model, "classes_", None)
        self.feature_names_in_ = getattr(model, "feature_names_in_", None)

    def predict_proba(self, X):
        self.rows += len(X)
        self.calls += 1
        return self.model.predict_proba(X)

    def predict(self, X):
        self.rows += len(X)
        self.calls += 1
        return self.model.predict(X)


@pytest.fixture(scope="module")
def plain():
    df = credit(2400, seed=4)
    return df.iloc[:1200].reset_index(drop=True), df.iloc[1200:].reset_index(drop=True)


def test_logistic_model_is_copied_from_few_real_queries_within_budget(plain) -> None:
    train, test = plain
    model = Counting(logistic(train))
    r = run_check(ModelExtractionCheck, model, test=test, train=train, target="y",
                  options={"queries": 500, "exposed": True})
    (f,) = r.findings
    assert f.severity is Severity.MEDIUM
    assert f.metrics["queries_to_bar"] <= 1000 and f.metrics["fidelity_at_bar"] >= 0.95
    # budget: the audit's 50-row probe of predict_proba's shape, the test rows once (the audit's cached
    # predictions) plus 500 synthetic queries in one call
    assert model.rows == 50 + len(test) + 500 and model.calls == 3
    table = {(rec["source"], rec["api"], rec["queries"]): rec for rec in r.evidence.tables[0].records()}
    assert max(q for (_, _, q) in table) == 500
    assert ("real", "labels", 100) in table and ("synthetic", "scores", 500) in table


def test_a_cheap_copy_of_a_model_not_declared_exposed_is_low(plain) -> None:
    """The same established copy as above, for a model without outside callers (the default): low,
    and the rule says what would make it medium."""
    train, test = plain
    r = run_check(ModelExtractionCheck, logistic(train), test=test, train=train, target="y", options={"queries": 500})
    (f,) = r.findings
    assert f.severity is Severity.LOW and f.metrics["queries_to_bar"] <= 1000
    assert "exposed" in f.rule.text and "not declared exposed" in f.summary


def test_extraction_agreement_equals_a_direct_computation(plain) -> None:
    train, test = plain
    model = logistic(train)
    X, Xe = test[ALL].iloc[:600].reset_index(drop=True), test[ALL].iloc[600:].reset_index(drop=True)
    s, se = model.predict_proba(X)[:, 1], model.predict_proba(Xe)[:, 1]
    res = extraction_attack(task="classification", query_sets={"real": QuerySet(X, s, (s >= 0.5).astype(int))},
                            eval_rows=Xe, eval_score=se, eval_label=(se >= 0.5).astype(int),
                            eval_target=test["y"].to_numpy()[600:], categorical=["region"], budgets=(100, 300),
                            rng=np.random.default_rng(0))
    p = res.copy_point
    assert p is not None and p.budget == 600 and p.api == "scores"
    copy_label = (res.copy_score >= 0.5).astype(int)
    assert p.agreement == pytest.approx(np.mean(copy_label == (se >= 0.5)), abs=1e-12)
    assert p.kappa == pytest.approx(cohen_kappa_score(copy_label, (se >= 0.5).astype(int)), abs=1e-12)
    assert p.score_r2 == pytest.approx(r2_score(se, res.copy_score), abs=1e-9)
    assert p.copy_metric == pytest.approx(roc_auc_score(test["y"].to_numpy()[600:], res.copy_score), abs=1e-12)
    assert dict(res.budgets)["real"] == (100, 300, 600)


def test_a_near_constant_model_is_not_called_stolen() -> None:
    """Agreement alone is not fidelity: a copy that always says 'no' agrees with a model that says 'no'
    96% of the time at random. Kappa keeps that from counting (the control shows it would otherwise)."""
    df = credit(1200, seed=5)

    class RandomScores:
        classes_ = np.array([0, 1])

        def predict_proba(self, X):
            r = np.random.default_rng(len(X)).random(len(X)) * 0.52  # 4% above the threshold, no structure
            return np.column_stack([1 - r, r])

    r = run_check(ModelExtractionCheck, RandomScores(), test=df, target="y", features=ALL, options={"queries": 300})
    assert worst(r) == "info"
    # the control: without the kappa guard the same copies would count (min_kappa < 0 is not a valid
    # config value, so the judgement is applied to the measurement directly)
    check = ModelExtractionCheck(queries=300)
    ctx = prepare_objects(RandomScores(), test=df, target="y", features=ALL,
                          registry=CheckRegistry([ModelExtractionCheck])).context
    m = check.measure(ctx)
    fooled = ModelExtractionCheck(queries=300, min_kappa=-1.0).judge(m)
    assert RANK[fooled[0].severity.value] >= RANK["low"]


def test_extraction_of_a_regressor_reports_r2() -> None:
    rng = np.random.default_rng(6)
    df = pd.DataFrame({"x1": rng.normal(size=1000), "x2": rng.normal(size=1000)})
    df["y"] = 2 * df["x1"] - df["x2"] + rng.normal(size=1000)
    model = LinearRegression().fit(df[["x1", "x2"]], df["y"])
    r = run_check(ModelExtractionCheck, model, test=df, target="y", options={"queries": 300, "exposed": True})
    (f,) = r.findings
    assert f.severity is Severity.MEDIUM and "R²" in f.title
    assert r.evidence.metrics["real_fidelity"] > 0.99
    assert "r2_vs_model" in r.evidence.tables[0].columns


def test_synthetic_rows_stay_in_the_observed_domain(plain) -> None:
    train, _ = plain
    frame = train[ALL].assign(n=np.arange(len(train)) % 7)
    doms = feature_domains(frame, categorical=["region"], features=ALL + ["n"])
    rows = synthetic_rows(doms, ALL + ["n"], 300, np.random.default_rng(0), template=frame)
    assert set(rows["region"]) <= set(train["region"]) and len(rows) == 300
    assert rows["x1"].between(train["x1"].min(), train["x1"].max()).all()
    assert set(rows["n"]) <= set(range(7)) and rows["n"].dtype == frame["n"].dtype


# ---- attribute inference ---------------------------------------------------------------------------

class HiddenGroupModel:
    """Scores shifted by a group the audit does not list as a feature: the group is hidden in the
    tens digit of an opaque 'code' (like a check digit in an id number)."""

    classes_ = np.array([0, 1])

    def __init__(self, shift: float) -> None:
        self.shift = shift

    def predict_proba(self, X):
        g = (X["code"].to_numpy() // 10) % 2
        p = 1 / (1 + np.exp(-(X["x1"].to_numpy() + self.shift * (g - 0.5))))
        return np.column_stack([1 - p, p])


@pytest.fixture(scope="module")
def people():
    rng = np.random.default_rng(7)
    n = 900
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "code": rng.integers(100000, 999999, n),
                       "region": rng.choice(["north", "south"], n)})
    df["group"] = np.where((df["code"] // 10) % 2 == 1, "B", "A")
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-df["x1"]))).astype(int)
    return df


FEATURES = ["x1", "x2", "code", "region"]


def test_score_shifted_by_a_hidden_group_reveals_it(people) -> None:
    r = run_check(AttributeInferenceCheck, HiddenGroupModel(3.0), test=people, target="y", protected=["group"],
                  features=FEATURES, options=FAST)
    (f,) = r.findings
    assert f.severity is Severity.HIGH and f.id.endswith("/group") and "'group'" in f.title
    assert f.metrics["output_only_auc"] >= 0.8 and f.metrics["auc_gain"] >= 0.3
    assert f.metrics["baseline_auc"] < 0.6  # the features alone do not give the group away


def test_a_smaller_hidden_shift_is_medium(people) -> None:
    r = run_check(AttributeInferenceCheck, HiddenGroupModel(0.8), test=people, target="y", protected=["group"],
                  features=FEATURES, options=FAST)
    (f,) = r.findings
    assert f.severity is Severity.MEDIUM and f.metrics["auc_gain"] >= 0.1


def test_a_model_independent_of_the_attribute_stays_quiet(people) -> None:
    model = LogisticRegression().fit(people[["x1", "x2"]], people["y"])
    r = run_check(AttributeInferenceCheck, model, test=people, target="y", protected=["group"],
                  features=["x1", "x2"], options=FAST)
    assert RANK[worst(r)] <= RANK["low"]


def test_a_protected_model_input_is_named_and_measured_from_the_output(people) -> None:
    df = people.assign(y=((people["region"] == "north") ^ (np.random.default_rng(8).random(len(people)) < 0.1))
                       .astype(int))
    model = make_pipeline(make_column_transformer((OneHotEncoder(), ["region"]), remainder="passthrough"),
                          LogisticRegression()).fit(df[["x1", "region"]], df["y"])
    r = run_check(AttributeInferenceCheck, model, test=df, target="y", protected=["region"],
                  features=["x1", "region"], options=FAST)
    (f,) = r.findings
    assert f.features == ("region",) and "model input" in f.summary
    assert f.metrics["output_only_auc"] > 0.9 and f.severity is Severity.MEDIUM  # never high for an input


def test_attribute_inference_is_skipped_without_protected_columns(people) -> None:
    model = LogisticRegression().fit(people[["x1", "x2"]], people["y"])
    r = run_check(AttributeInferenceCheck, model, test=people[["x1", "x2", "y"]], target="y")
    assert r.status is Status.SKIPPED and "protected" in r.reason


def test_numeric_attributes_are_binned_and_rare_levels_pooled() -> None:
    age = pd.Series(np.arange(400) % 80 + 18.0)
    c = attribute_classes(age, numeric_bins=4, min_level_rows=20)
    assert c.binned and len(c.levels) == 4 and sum(c.counts) == 400 and c.levels[0].startswith("≤")
    cat = pd.Series(["a"] * 50 + ["b"] * 40 + ["c"] * 12 + ["d"] * 9 + [None] * 3)
    c = attribute_classes(cat, min_level_rows=20)
    assert c.levels == ("a", "b", "(other)") and c.counts == (50, 40, 21) and (c.codes == -1).sum() == 3


def test_encoder_handles_unknown_levels_and_missing_values() -> None:
    fit = pd.DataFrame({"n": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    enc = TabularEncoder.fit(fit, columns=["n", "c"], categorical=["c"])
    new = pd.DataFrame({"n": [np.nan, 2.0], "c": ["z", "b"]})
    codes = enc.codes(new)
    assert np.isnan(codes[0, 0]) and np.isnan(codes[0, 1]) and codes[1, 1] == 1.0
    design = enc.design(new)
    assert design.shape == (2, 3) and design[0].tolist() == [0.0, 0.0, 0.0] and design[1, 2] == 1.0
