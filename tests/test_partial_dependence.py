"""sensitivity.partial_dependence: PDP/ICE/ALE numerics against direct computations, and the
check's findings on planted defects with clean controls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_check, svg_of
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from sklearn.inspection import partial_dependence as sk_partial_dependence
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from auditor.analysis.partial_dependence import (
    MISSING,
    UNSEEN,
    DependenceMetrics,
    PartnerIndex,
    accumulated_local_effects,
    ale_edges,
    dependence_metrics,
    feature_dependence,
    ice_curves,
    make_grid,
    max_drawdown,
)
from auditor.checks.sensitivity.partial_dependence import PartialDependenceCheck, PartialDependenceMeasurement
from auditor.findings import Severity

CHECK = "sensitivity.partial_dependence"


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def credit_data(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(10, 3, n),
                       "age": rng.integers(18, 70, n), "region": rng.choice(["north", "south", "east"], n)})
    logit = 0.08 * (df["income"] - 50) - 0.3 * (df["debt"] - 10) + (df["region"] == "east") * 0.5
    df["default"] = (rng.random(n) < sigmoid(logit)).astype(int)
    return df


def split(df: pd.DataFrame, n_train: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    return df.iloc[:n_train], df.iloc[n_train:]


class ProbaModel:
    """A Python-object classifier: P(positive) = fn(X); counts its calls."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        p = np.clip(np.asarray(self.fn(X), dtype=float), 0.0, 1.0)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class Regressor:
    def __init__(self, fn):
        self.fn = fn

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.fn(X), dtype=float)


def ids(result, kind: str | None = None) -> list[str]:
    return [f.id for f in result.findings if kind is None or f.id.split("/")[1] == kind]


def finding(result, kind: str, feature: str):
    matches = [f for f in result.findings if f.id == f"{CHECK}/{kind}/{feature}"]
    assert matches, f"no {kind} finding for {feature}: {ids(result)}"
    return matches[0]


def lin(X: pd.DataFrame) -> np.ndarray:
    return 0.08 * (X["income"] - 50) - 0.3 * (X["debt"] - 10)


# ---- analysis: grids ------------------------------------------------------------------------------

def test_numeric_grid_quantiles_outside_points_and_missing():
    s = pd.Series(np.arange(0, 101), name="x")
    g = make_grid(s, categorical=False, grid_size=11, outside_fraction=0.1, outside_points=2)
    assert g.values_of("in_range") == [float(v) for v in range(0, 101, 10)]
    assert g.values_of("below") == [-10.0, -5.0] and g.values_of("above") == [105.0, 110.0]
    assert g.kinds[-1] == MISSING and np.isnan(g.values[-1])


def test_integer_grid_stays_integer_and_strictly_outside():
    s = pd.Series([1, 2, 2, 3, 4, 4, 5], name="k")
    g = make_grid(s, categorical=False, grid_size=20, outside_fraction=0.1, outside_points=2)
    assert g.values_of("in_range") == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(v == int(v) and v < 1 for v in g.values_of("below"))
    assert all(v == int(v) and v > 5 for v in g.values_of("above"))


def test_categorical_grid_caps_levels_and_adds_unseen_and_missing():
    s = pd.Series(list("aaaabbbccd"), name="c")
    g = make_grid(s, categorical=True, max_levels=3)
    assert g.values_of("in_range") == ["a", "b", "c"] and g.levels_dropped == 1
    assert g.values_of(UNSEEN) == ["__unseen__"] and g.values_of(MISSING) == [None]


# ---- analysis: PDP / ICE ----------------------------------------------------------------------------

def test_ice_is_one_batched_call_per_feature_and_matches_direct_computation():
    df = credit_data(200)
    model = ProbaModel(lambda X: sigmoid(lin(X)))
    X = df[["income", "debt", "age", "region"]]
    grid = [30.0, 50.0, 70.0]
    ice = ice_curves(lambda Z: model.predict_proba(Z)[:, 1], X, "income", grid)
    assert model.calls == 1
    direct = np.column_stack([sigmoid(0.08 * (v - 50) - 0.3 * (X["debt"] - 10)) for v in grid])
    np.testing.assert_allclose(ice, direct, atol=1e-12)


def test_pdp_and_ice_agree_with_sklearn_partial_dependence():
    rng = np.random.default_rng(3)
    n = 300
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 10, n), "c": rng.normal(size=n)})
    y = ((X["a"] + 0.3 * X["b"] - X["a"] * X["c"] + rng.normal(size=n)) > 1.5).astype(int)
    est = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(X, y)
    for feature in ("a", "b"):
        grid = make_grid(X[feature], categorical=False, grid_size=12)
        dep = feature_dependence(lambda Z: est.predict_proba(Z)[:, 1], X, feature, grid=grid)
        values = np.asarray(grid.values_of("in_range"), dtype=float)
        Xf = X.astype("float64")  # sklearn refuses integer columns (STACK.md pitfall 4)
        j = list(X.columns).index(feature)
        sk = sk_partial_dependence(est, Xf, [j], kind="both", method="brute", custom_values={j: values})
        np.testing.assert_allclose(sk["grid_values"][0], values)
        np.testing.assert_allclose(dep.pdp[grid.in_range], sk["average"][0], atol=1e-10)
        np.testing.assert_allclose(dep.ice[:, grid.in_range], sk["individual"][0], atol=1e-10)


# ---- analysis: ALE ---------------------------------------------------------------------------------

def test_ale_hand_computed():
    # f = x1 * x2; bins [0, 1.5] and (1.5, 3]; rows (0,1), (1,2) in bin 1, (2,3), (3,4) in bin 2
    X = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 2.0, 3.0, 4.0]})
    ale = accumulated_local_effects(lambda Z: Z["x1"] * Z["x2"], X, "x1", edges=[0.0, 1.5, 3.0])
    # local effects: bin 1: mean(1.5*1, 1.5*2) = 2.25; bin 2: mean(1.5*3, 1.5*4) = 5.25
    # accumulated [0, 2.25, 7.5]; centred by the count-weighted bin midpoints (1.125 + 4.875) / 2 = 3
    np.testing.assert_allclose(ale.values, [-3.0, -0.75, 4.5])
    np.testing.assert_array_equal(ale.counts, [2, 2])


def test_ale_equals_pdp_up_to_a_constant_on_an_additive_model():
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"x1": rng.gamma(2.0, 2.0, 400), "x2": rng.normal(size=400),
                      "g": rng.choice(["u", "v"], 400)})

    def f(Z):
        return np.sin(Z["x1"]) + 0.3 * Z["x1"] + Z["x2"] ** 2 + (Z["g"] == "u") * 0.5

    ale = accumulated_local_effects(f, X, "x1", bins=15)
    assert len(ale.edges) == 16
    pdp = ice_curves(f, X, "x1", ale.edges).mean(axis=0)
    diff = ale.values - pdp
    assert np.ptp(diff) < 1e-9
    # the batched path (ALE rows scored with the PDP grid) gives the same ALE
    dep = feature_dependence(f, X, "x1", grid=make_grid(X["x1"], categorical=False), ale_bins=15)
    np.testing.assert_allclose(dep.ale.values, ale.values)
    # the constant is about the mean prediction (ALE is centred by bin midpoints, so not exactly)
    assert abs(-diff.mean() - np.mean(f(X))) < 0.1


def test_ale_edges_are_observed_values():
    x = np.array([1, 1, 1, 2, 5, 5, 9, 9, 9, 9], dtype=float)
    e = ale_edges(x, 3)
    assert set(e) <= set(x) and e[0] == 1 and e[-1] == 9


def test_max_drawdown_locates_the_fall():
    amount, i, k = max_drawdown(np.array([0.1, 0.3, 0.5, 0.2, 0.25, 0.6]))
    assert amount == pytest.approx(0.3) and (i, k) == (2, 3)


# ---- analysis: metrics -------------------------------------------------------------------------------

def test_interaction_share_logit_additive_is_zero_and_product_is_high():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x1": rng.uniform(-2, 2, 300), "x2": rng.uniform(-2, 2, 300), "x3": rng.normal(size=300)})
    # additive on the log-odds scale (and within the link's clipping range, |logit| < 4.6)
    additive = lambda Z: sigmoid(0.5 * Z["x1"] + 0.8 * Z["x2"] - 0.3 * Z["x3"].clip(-3, 3))  # noqa: E731
    product = lambda Z: sigmoid(2 * Z["x1"] * Z["x2"] + 0.5 * Z["x3"])  # noqa: E731
    grid = make_grid(X["x1"], categorical=False)
    partners = PartnerIndex.from_frame(X)
    m_add = dependence_metrics(feature_dependence(additive, X, "x1", grid=grid), link="logit", partners=partners)
    m_prod = dependence_metrics(feature_dependence(product, X, "x1", grid=grid), link="logit", partners=partners)
    assert m_add.interaction_share < 1e-6
    assert m_prod.interaction_share > 0.9
    assert m_prod.partner == "x2" and m_prod.partner_strength > 0.9


def test_interaction_partner_matches_direct_spearman_and_correlation_ratio():
    from scipy.stats import spearmanr

    from auditor.analysis.partial_dependence import interaction_partner

    rng = np.random.default_rng(11)
    n = 200
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "g": rng.choice(list("pqr"), n)})
    signal = X["b"].to_numpy() + 0.5 * rng.normal(size=n)
    deviation = np.outer(signal, np.linspace(-1, 1, 7))  # rank one: the row score is the signal
    partner, strength = interaction_partner(deviation, PartnerIndex.from_frame(X, ["g"]), "a")
    assert partner == "b"
    assert strength == pytest.approx(abs(spearmanr(signal, X["b"]).statistic), abs=1e-9)
    # categorical partner: the correlation ratio sqrt(between-group / total sum of squares)
    signal = (X["g"] == "q").to_numpy() * 2.0 + 0.3 * rng.normal(size=n)
    partner, strength = interaction_partner(np.outer(signal, np.linspace(-1, 1, 7)),
                                            PartnerIndex.from_frame(X, ["g"]), "a")
    y = pd.Series(signal)
    eta = np.sqrt(((y.groupby(X["g"]).transform("mean") - y.mean()) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    assert partner == "g" and strength == pytest.approx(eta, abs=1e-9)


# ---- the check: planted defects and clean controls ---------------------------------------------------

def test_declared_monotone_breach_is_found():
    df = credit_data()
    train, test = split(df)
    # the score rises, then falls in income (peak at 50), declared increasing
    model = ProbaModel(lambda X: sigmoid(1.0 - ((X["income"] - 50) / 10) ** 2 - 0.3 * (X["debt"] - 10)))
    r = run_check(PartialDependenceCheck, model, test=test, train=train, target="default",
                  expect={"monotone": {"income": 1}})
    f = finding(r, "monotone", "income")
    assert f.severity in (Severity.MEDIUM, Severity.HIGH) and f.features == ("income",)
    assert f.severity is Severity.HIGH  # a large fall: PDP drop far above 0.05
    assert f.metrics["pdp_fall"] > 0.2 and f.metrics["ice_breach_share"] > 0.5
    assert 45 <= f.metrics["from_value"] <= 60 and f.metrics["to_value"] > f.metrics["from_value"]
    row = next(rec for rec in r.evidence.tables[0].records() if rec["feature"] == "income")
    assert row["monotone"] == "increasing" and row["monotone_fall"] > 0.2


def test_monotone_constrained_gbm_is_not_flagged():
    df = credit_data(1500, seed=1)
    train, test = split(df, 1000)
    feats = ["income", "debt", "age"]
    model = HistGradientBoostingClassifier(monotonic_cst=[1, -1, 0], max_iter=60, random_state=0)
    model.fit(train[feats], train["default"])
    r = run_check(PartialDependenceCheck, model, test=test[feats + ["default"]], train=train[feats + ["default"]],
                  target="default", expect={"monotone": {"income": 1, "debt": -1}})
    assert ids(r, "monotone") == []
    assert "high" not in [f.severity.value for f in r.findings]
    rows = {rec["feature"]: rec for rec in r.evidence.tables[0].records()}
    assert rows["income"]["monotone_fall"] <= 1e-9 and rows["debt"]["ice_breach_share"] == 0


def test_unconstrained_noisy_gbm_breach_is_measured_on_the_pdp():
    # a GBM trained on data whose effect truly rises then falls, declared increasing
    rng = np.random.default_rng(5)
    n = 1500
    df = pd.DataFrame({"income": rng.uniform(0, 100, n), "debt": rng.normal(10, 3, n)})
    df["default"] = (rng.random(n) < sigmoid(2.0 - ((df["income"] - 50) / 20) ** 2)).astype(int)
    train, test = split(df, 1000)
    model = HistGradientBoostingClassifier(max_iter=80, random_state=0).fit(train[["income", "debt"]], train["default"])
    r = run_check(PartialDependenceCheck, model, test=test, train=train, target="default",
                  expect={"monotone": {"income": 1}})
    f = finding(r, "monotone", "income")
    assert f.severity.rank >= Severity.MEDIUM.rank


def test_erratic_jump_above_the_training_range_is_found():
    df = credit_data()
    train, test = split(df)
    top = float(train["income"].max())

    def fn(X):  # a gentle in-range effect, then 0.97 beyond the training maximum
        p = sigmoid(0.02 * (X["income"] - 50) - 0.1 * (X["debt"] - 10))
        return np.where(X["income"].to_numpy(dtype=float) > top, 0.97, p)

    r = run_check(PartialDependenceCheck, ProbaModel(fn), test=test, train=train, target="default")
    f = finding(r, "erratic", "income")
    assert f.severity is Severity.HIGH and f.metrics["above_change"] > 0.3
    assert "above the observed range of income" in f.title.lower()
    assert ids(r, "erratic") == [f.id]
    beyond = [rec for rec in r.evidence.tables[1].records() if rec["feature"] == "income"]
    assert {rec["point"] for rec in beyond} >= {"below observed range", "above observed range", "missing value"}
    assert max(rec["change"] for rec in beyond if rec["point"] == "above observed range") > 0.3


def test_erratic_missing_value_is_found():
    df = credit_data()
    train, test = split(df)

    def fn(X):
        inc = X["income"].to_numpy(dtype=float)
        return np.where(np.isnan(inc), 0.99, sigmoid(lin(X).fillna(0)))

    r = run_check(PartialDependenceCheck, ProbaModel(fn), test=test, train=train, target="default")
    f = finding(r, "erratic", "income")
    assert f.metrics["missing_change"] > 0.05 and "missing income" in f.title
    assert ids(r, "erratic") == [f.id]


def test_model_ignoring_a_feature_gets_a_no_effect_finding():
    df = credit_data()
    train, test = split(df)
    model = ProbaModel(lambda X: sigmoid(lin(X) + (X["region"] == "east") * 0.5))
    r = run_check(PartialDependenceCheck, model, test=test, train=train, target="default")
    assert ids(r, "no_effect") == [f"{CHECK}/no_effect/age"]
    f = finding(r, "no_effect", "age")
    assert f.severity is Severity.LOW and "ignores age" in f.title
    table = r.evidence.tables[0].records()
    assert table[-1]["feature"] == "age" and table[-1]["has_effect"] is False  # least important last


def test_strong_interaction_found_and_additive_model_quiet():
    rng = np.random.default_rng(2)
    n = 800
    df = pd.DataFrame({"x1": rng.uniform(-2, 2, n), "x2": rng.uniform(-2, 2, n), "x3": rng.normal(size=n)})
    df["y"] = (rng.random(n) < 0.5).astype(int)
    train, test = split(df, 500)
    inter = ProbaModel(lambda X: sigmoid(2 * X["x1"] * X["x2"] + 0.5 * X["x3"]))
    r = run_check(PartialDependenceCheck, inter, test=test, train=train, target="y")
    found = ids(r, "interaction")
    assert f"{CHECK}/interaction/x1" in found and f"{CHECK}/interaction/x2" in found
    assert f"{CHECK}/interaction/x3" not in found
    f = finding(r, "interaction", "x1")
    assert f.severity in (Severity.LOW, Severity.MEDIUM) and "x2" in f.summary

    additive = ProbaModel(lambda X: sigmoid(X["x1"] + 1.5 * X["x2"] + 0.5 * X["x3"]))
    r = run_check(PartialDependenceCheck, additive, test=test, train=train, target="y")
    assert ids(r, "interaction") == []


def test_smooth_well_behaved_pipeline_has_no_high_finding():
    df = credit_data(800, seed=4)
    train, test = split(df, 500)
    feats = ["income", "debt", "age", "region"]
    model = Pipeline([("enc", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])],
                                                remainder="passthrough")),
                      ("lr", LogisticRegression(max_iter=1000))]).fit(train[feats], train["default"])
    r = run_check(PartialDependenceCheck, model, test=test, train=train, target="default",
                  expect={"monotone": {"income": 1, "debt": -1}})
    assert [f.severity for f in r.findings if f.severity is Severity.HIGH] == []
    assert ids(r, "monotone") == [] and ids(r, "erratic") == [] and ids(r, "interaction") == []
    assert r.evidence.metrics["features_analysed"] == 4
    assert len(r.evidence.figures) == 1 and svg_of(r.evidence.figures[0]).startswith("<svg")


def test_model_rejecting_missing_values_is_recorded_not_fatal():
    df = credit_data()
    train, test = split(df)

    def fn(X):
        if X[["income", "debt", "age"]].isna().any().any():
            raise ValueError("Input contains NaN")
        return sigmoid(lin(X))

    r = run_check(PartialDependenceCheck, ProbaModel(fn), test=test, train=train, target="default")
    assert r.status.value == "ok"
    assert any("model rejects missing values" in n.lower() and "income" in n for n in r.evidence.notes)
    rows = {rec["feature"]: rec for rec in r.evidence.tables[0].records()}
    assert rows["income"]["missing_change"] == "rejected" and rows["region"]["missing_change"] == 0.0
    assert r.evidence.metrics["missing_rejected"] == 3
    beyond = [rec for rec in r.evidence.tables[1].records() if rec["feature"] == "income"]
    assert [rec["status"] for rec in beyond if rec["point"] == "missing value"] == ["rejected"]
    assert all(rec["status"] == "ok" for rec in beyond if rec["point"] != "missing value")


def test_pipeline_rejecting_unseen_levels_is_recorded():
    df = credit_data()
    train, test = split(df)
    feats = ["income", "debt", "region"]
    model = Pipeline([("enc", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="error"), ["region"])],
                                                remainder="passthrough")),
                      ("lr", LogisticRegression(max_iter=1000))]).fit(train[feats], train["default"])
    r = run_check(PartialDependenceCheck, model, test=test[feats + ["default"]], train=train[feats + ["default"]],
                  target="default")
    rows = {rec["feature"]: rec for rec in r.evidence.tables[0].records()}
    assert rows["region"]["unseen_change"] == "rejected"
    assert any("unseen level" in n and "region" in n for n in r.evidence.notes)


def test_predictions_are_batched_per_feature(monkeypatch):
    monkeypatch.setattr("auditor.model.BATCH_ROWS", 10**9)  # no call split in pieces (test_model.py)
    df = credit_data()
    train, test = split(df)
    model = ProbaModel(lambda X: sigmoid(lin(X)))
    run_check(PartialDependenceCheck, model, test=test, train=train, target="default")
    # at context build one predict_proba shape probe (commit aeef05b) and one call on the test
    # data, one for the sample's own scores, one per feature (4 features)
    assert model.calls == 3 + 4


def test_regression_thresholds_scale_with_the_target():
    rng = np.random.default_rng(9)
    n = 600
    df = pd.DataFrame({"x1": rng.uniform(0, 10, n), "x2": rng.normal(size=n)})
    df["y"] = 1000 * (df["x1"] + df["x2"] + rng.normal(size=n))
    train, test = split(df, 400)
    good = LinearRegression().fit(train[["x1", "x2"]], train["y"])
    r = run_check(PartialDependenceCheck, good, test=test, train=train, target="y",
                  expect={"monotone": {"x1": 1}})
    assert r.findings == ()
    bad = Regressor(lambda X: 1000 * (X["x1"] - 0.3 * (X["x1"] - 5).clip(lower=0) ** 2 + X["x2"]))
    r = run_check(PartialDependenceCheck, bad, test=test, train=train, target="y", task="regression",
                  expect={"monotone": {"x1": 1}})
    assert finding(r, "monotone", "x1").severity is Severity.HIGH


def test_check_is_deterministic():
    df = credit_data()
    train, test = split(df)
    model = ProbaModel(lambda X: sigmoid(lin(X) + 0.3 * np.sin(X["age"])))
    a = run_check(PartialDependenceCheck, model, test=test, train=train, target="default", options={"rows": 100})
    b = run_check(PartialDependenceCheck, model, test=test, train=train, target="default", options={"rows": 100})
    assert a.to_json()["tables"] == b.to_json()["tables"] and a.findings == b.findings
    assert a.evidence.metrics["rows_sampled"] == 100
    assert any("100 of 200 test rows" in n for n in a.evidence.notes)


# ---- judge: thresholds without a model -----------------------------------------------------------------

def _metrics(**kw) -> DependenceMetrics:
    base = dict(feature="x", categorical=False, in_range_points=20, effect=0.2, pdp_range=0.2, ice_spread=0.0,
                interaction_share=0.0, partner=None, partner_strength=0.0, monotone=1, monotone_checked=True,
                pdp_drop=0.0, drop_from=None, drop_to=None, ice_breach_share=0.0, max_step=0.05,
                below_change=0.0, below_value=-1.0, below_trend=0.0, above_change=0.0, above_value=11.0,
                above_trend=0.0, missing_change=0.0, unseen_change=float("nan"),
                status={"below": "ok", "above": "ok", "missing": "ok"})
    base.update(kw)
    return DependenceMetrics(**base)


def _judge(check: PartialDependenceCheck, fm: DependenceMetrics, scale: float = 1.0):
    m = PartialDependenceMeasurement(task="classification", scale=scale, link="logit", rows_sampled=100,
                                     rows_available=100, sample_split="test", domain_split="train",
                                     dependences=(), metrics=(fm,))
    return {f.id.split("/")[1]: f.severity.value for f in check.judge(m)}


@pytest.mark.parametrize("kw, expected", [
    (dict(pdp_drop=0.005, ice_breach_share=0.05), None),            # within tolerance
    (dict(pdp_drop=0.02, ice_breach_share=0.05), "medium"),          # PDP breach beyond tolerance
    (dict(pdp_drop=0.0, ice_breach_share=0.12), "medium"),           # 10 % of ICE curves
    (dict(pdp_drop=0.06, ice_breach_share=0.05), "high"),            # large PDP fall
    (dict(pdp_drop=0.0, ice_breach_share=0.3), "high"),              # 25 % of ICE curves
    (dict(pdp_drop=0.2, monotone_checked=False), None),              # not declared / not ordered
])
def test_judge_monotone_thresholds(kw, expected):
    assert _judge(PartialDependenceCheck(), _metrics(**kw)).get("monotone") == expected


@pytest.mark.parametrize("kw, expected", [
    (dict(above_change=0.1, max_step=0.05), None),                   # below jump_factor x step
    (dict(above_change=0.2, max_step=0.05), "medium"),               # a jump
    (dict(above_change=0.04, max_step=0.0), None),                   # below the absolute minimum
    (dict(above_change=-0.08, above_trend=0.05, max_step=0.05), "medium"),  # reverses the trend
    (dict(missing_change=0.35, max_step=0.05), "high"),              # extreme
    (dict(below_change=float("nan"), max_step=0.05), None),          # not scored
])
def test_judge_erratic_thresholds(kw, expected):
    assert _judge(PartialDependenceCheck(), _metrics(**kw)).get("erratic") == expected


def test_judge_interaction_is_never_high_and_no_effect_is_low():
    check = PartialDependenceCheck()
    assert _judge(check, _metrics(interaction_share=0.99, ice_spread=0.5)).get("interaction") == "medium"
    assert _judge(check, _metrics(interaction_share=0.3, ice_spread=0.5)).get("interaction") == "low"
    assert _judge(check, _metrics(interaction_share=0.9, ice_spread=0.01)).get("interaction") is None
    assert _judge(check, _metrics(effect=0.0, pdp_range=0.0)).get("no_effect") == "low"
    assert _judge(check, _metrics(effect=0.0, in_range_points=1)).get("no_effect") is None
    # regression: thresholds scale with the target's standard deviation
    assert _judge(check, _metrics(pdp_drop=0.02), scale=100.0).get("monotone") is None
    assert _judge(check, _metrics(pdp_drop=6.0), scale=100.0).get("monotone") == "high"


def test_sample_shrinks_to_the_model_row_budget():
    check = PartialDependenceCheck(rows=500, max_model_rows=100_000)
    n = check.sample_size(10)
    assert n < 500 and n * 10 * (20 + 4 + 2 + 2) <= 100_000
    assert PartialDependenceCheck().sample_size(14) == 500


def test_figures_are_split_for_a4_and_findings_point_at_their_figure():
    rng = np.random.default_rng(12)
    n = 300
    df = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(8)})
    df["y"] = (rng.random(n) < 0.5).astype(int)
    train, test = split(df, 200)
    model = ProbaModel(lambda X: sigmoid(X["x0"]))
    r = run_check(PartialDependenceCheck, model, test=test, train=train, target="y",
                  options={"max_figure_features": 7})
    names = [g.name for g in r.evidence.figures]
    assert names == ["pdp_ice", "pdp_ice_2"]
    no_effect = [f for f in r.findings if f.id.split("/")[1] == "no_effect"]
    assert len(no_effect) == 7
    refs = {f.features[0]: set(f.evidence) - {"features"} for f in no_effect}
    assert sum(1 for v in refs.values() if v == {"pdp_ice"}) == 5      # x0 takes the first panel
    assert sum(1 for v in refs.values() if v == {"pdp_ice_2"}) == 1
    assert sum(1 for v in refs.values() if not v) == 1                 # beyond the cap of 7
    assert any("7 most important of 8" in n for n in r.evidence.notes)
