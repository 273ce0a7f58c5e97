"""Fairness checks for contract 1.1 (issue 7): k-class models judged on the favourable predicted
class, intervals in every severity rule, proxies rated by a counterfactual on the proxy, and
fairlearn's equalized-odds difference named apart from the eligible-groups one. Planted defects,
clean controls, and numbers checked against independent computations (scipy, fairlearn, loops)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_check
from scipy.stats import binomtest, ttest_ind
from scipy.stats.contingency import relative_risk
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from auditor.analysis.group_metrics import (
    difference_interval,
    error_parity,
    make_groupings,
    mean_difference,
    ratio_interval,
)
from auditor.checks import CheckRegistry
from auditor.checks.fairness.disparate_impact import DisparateImpactCheck
from auditor.checks.fairness.error_parity import ErrorParityCheck
from auditor.checks.fairness.proxy import ProxyCheck
from auditor.config import load_config
from auditor.engine import prepare
from auditor.findings import Severity, Status
from auditor.runner import run_checks

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "sample_models" / "audit.toml"
CLASSES = np.array(["A", "B", "C"], dtype=object)


def _finding(result, fid: str):
    hits = [f for f in result.findings if f.id == fid]
    assert hits, (fid, [f.id for f in result.findings])
    return hits[0]


def _rows(result, table: str) -> list[dict]:
    return next(t for t in result.evidence.tables if t.name == table).records()


# ---- a 3-class model with a planted disparity ----------------------------------------------------

class ThreeClassModel:
    """Softmax over logits (2x, 0.3, -2x) for classes A, B, C; rows of group ``g2`` lose ``penalty``
    on the logit of A (a planted disparity against the favourable class A), and ``noisy`` groups get
    probabilities that do not depend on x (a planted error-rate gap)."""

    def __init__(self, features, *, penalty: float = 0.0, noisy: tuple = (), column: str = "group") -> None:
        self.feature_names_in_ = np.array(features, dtype=object)
        self.classes_ = CLASSES
        self.penalty, self.noisy, self.column = penalty, tuple(noisy), column

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x = X["x"].to_numpy(dtype=float)
        g = X[self.column].astype(str).to_numpy() if self.column in X.columns else np.full(len(X), "")
        logits = np.column_stack([2 * x, np.full(len(x), 0.3), -2 * x])
        logits[:, 0] -= np.where(g == "g2", self.penalty, 0.0)
        if self.noisy:
            noise = np.column_stack([3 * np.sin(37 * x), 3 * np.cos(23 * x), np.zeros(len(x))])
            logits = np.where(np.isin(g, self.noisy)[:, None], noise, logits)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def three_class_data(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "group": rng.choice(["g1", "g2"], size=n, p=[0.6, 0.4])})
    p = ThreeClassModel(["x", "group"]).predict_proba(df)
    df["y"] = CLASSES[(rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)]
    return df


@pytest.mark.parametrize("positive", [None, "C"])
def test_k_class_disparate_impact_compares_the_argmax_rate_of_the_favourable_class(positive) -> None:
    df = three_class_data()
    model = ThreeClassModel(["x", "group"], penalty=1.5)
    res = run_check(DisparateImpactCheck, model, test=df, target="y", protected=["group"], favorable="A",
                    positive_class=positive, reference={"group": "g1"})
    proba = model.predict_proba(df)
    chosen = proba.argmax(axis=1) == 0
    by = pd.Series(chosen).groupby(df["group"].to_numpy())
    rate, count, k = by.mean(), by.size(), by.sum()
    # the favourable decision is the argmax, not a threshold on P(A): they differ on these rows
    assert (chosen != (proba[:, 0] >= 0.5)).sum() > 50
    f = _finding(res, "fairness.disparate_impact/group=g2")
    assert f.metrics["favorable_rate"] == pytest.approx(rate["g2"])
    assert f.metrics["adverse_impact_ratio"] == pytest.approx(rate["g2"] / rate["g1"])
    ci = relative_risk(int(k["g2"]), int(count["g2"]), int(k["g1"]), int(count["g1"])).confidence_interval(0.95)
    assert (f.metrics["air_ci_low"], f.metrics["air_ci_high"]) == pytest.approx((ci.low, ci.high))
    assert f.severity is Severity.HIGH and f.metrics["air_ci_high"] < 0.8
    # the observed favourable rate is the share of actual class A
    assert f.metrics["observed_favorable_rate"] == pytest.approx((df.loc[df["group"] == "g2", "y"] == "A").mean())
    assert f.rule.metric == "adverse_impact_ratio" and f.rule.interval == pytest.approx((ci.low, ci.high))
    assert any("most probable of the model's 3 classes" in n for n in res.evidence.notes)


def test_k_class_fair_model_has_no_disparate_impact() -> None:
    df = three_class_data(seed=1)
    res = run_check(DisparateImpactCheck, ThreeClassModel(["x", "group"]), test=df, target="y",
                    protected=["group"], favorable="A")
    assert res.status is Status.OK
    assert all(f.severity.rank <= Severity.LOW.rank for f in res.findings), [f.title for f in res.findings]


@pytest.mark.parametrize("positive", [None, "C"])
def test_k_class_error_parity_is_favourable_class_against_the_rest(positive) -> None:
    # with positive_class = "C" the rates must still be those of the favourable class A
    df = three_class_data(seed=2)
    model = ThreeClassModel(["x", "group"], noisy=("g2",))
    res = run_check(ErrorParityCheck, model, test=df, target="y", protected=["group"], favorable="A",
                    positive_class=positive, reference={"group": "g1"})
    fav_pred = model.predict_proba(df).argmax(axis=1) == 0
    fav_true = (df["y"] == "A").to_numpy()
    for r in _rows(res, "by_group"):
        m = (df["group"] == r["group"]).to_numpy()
        tp = (fav_pred & fav_true & m).sum()
        fn = (~fav_pred & fav_true & m).sum()
        fp = (fav_pred & ~fav_true & m).sum()
        tn = (~fav_pred & ~fav_true & m).sum()
        assert r["tpr"] == pytest.approx(tp / (tp + fn), abs=5e-4)
        assert r["fnr"] == pytest.approx(fn / (fn + tp), abs=5e-4)
        assert r["fpr"] == pytest.approx(fp / (fp + tn), abs=5e-4)
    f = _finding(res, "fairness.error_parity/group=g2")
    assert f.severity.rank >= Severity.MEDIUM.rank
    assert "favorable class (A) against the rest" in f.summary
    assert any("against the rest of the classes" in n for n in res.evidence.notes)
    clean = run_check(ErrorParityCheck, ThreeClassModel(["x", "group"]), test=df, target="y", protected=["group"],
                      favorable="A")
    assert not [x for x in clean.findings if x.severity.rank >= Severity.MEDIUM.rank]


def test_k_class_proxy_is_rated_by_its_counterfactual() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    race = rng.choice(["r1", "r2"], size=n, p=[0.6, 0.4])
    zone = np.where((race == "r1") ^ (rng.random(n) < 0.05), "north", "g2")  # zone 'g2' is penalised
    df = pd.DataFrame({"x": rng.normal(size=n), "zone": zone, "race": race})
    df["y"] = CLASSES[rng.integers(0, 3, size=n)]
    model = ThreeClassModel(["x", "zone"], penalty=2.0, column="zone")
    res = run_check(ProxyCheck, model, test=df, target="y", protected=["race"], features=["x", "zone"],
                    favorable="A", reference={"race": "r1"})
    f = _finding(res, "fairness.proxy/race/zone")
    # direct computation: each r2 row scored with each zone of the r1 rows, weighted by its frequency
    chosen = lambda d: model.predict_proba(d).argmax(axis=1) == 0  # noqa: E731
    r1, r2 = df[df["race"] == "r1"], df[df["race"] == "r2"]
    weights = r1["zone"].value_counts(normalize=True)
    expected = sum(w * chosen(r2.assign(zone=level)).astype(float) for level, w in weights.items())
    ref_rate = chosen(r1).mean()
    assert f.metrics["counterfactual_air"] == pytest.approx(expected.mean() / ref_rate, rel=1e-9)
    assert f.metrics["air"] == pytest.approx(chosen(r2).mean() / ref_rate)
    assert f.severity is Severity.HIGH and f.metrics["air_lift_ci_low"] >= 0.10
    assert f.metrics["disparate_impact_finding"] == "fairness.disparate_impact/race=r2"


# ---- intervals against independent computations --------------------------------------------------

def test_interval_helpers_match_scipy() -> None:
    for k1, n1, k2, n2 in [(32, 49, 222, 251), (5, 40, 30, 60), (90, 100, 180, 200)]:
        ci = relative_risk(k1, n1, k2, n2).confidence_interval(0.95)
        assert ratio_interval(k1, n1, k2, n2) == pytest.approx((ci.low, ci.high))
        # Newcombe's hybrid score interval from scipy's Wilson intervals
        w1 = binomtest(k1, n1).proportion_ci(0.95, method="wilson")
        w2 = binomtest(k2, n2).proportion_ci(0.95, method="wilson")
        p1, p2 = k1 / n1, k2 / n2
        lo = p1 - p2 - np.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
        hi = p1 - p2 + np.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
        assert difference_interval(k1, n1, k2, n2) == pytest.approx((lo, hi))
    # a zero count keeps a finite interval (Haldane's correction)
    lo, hi = ratio_interval(0, 30, 20, 60)
    assert 0 < lo < hi < 1


def test_regression_smd_interval_is_welch() -> None:
    rng = np.random.default_rng(3)
    n = 600
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(["a", "b"], size=n)})
    pred = df["x"].to_numpy() - 0.3 * (df["g"] == "b").to_numpy()
    grouping = make_groupings(df, ["g"], reference={"g": "a"}).groupings[0]
    row = mean_difference(grouping, pred).row("b")
    sd = pred.std(ddof=1)
    ci = ttest_ind(pred[df["g"] == "b"], pred[df["g"] == "a"], equal_var=False).confidence_interval(0.95)
    assert (row.smd_low, row.smd_high) == pytest.approx((ci.low / sd, ci.high / sd))


def test_equalized_odds_difference_is_fairlearns_over_all_groups() -> None:
    from fairlearn.metrics import equalized_odds_difference

    rng = np.random.default_rng(4)
    n = 2000
    g = rng.choice(["a", "b", "tiny"], size=n, p=[0.6, 0.39, 0.01])
    y = rng.integers(0, 2, size=n)
    pred = np.where(g == "tiny", 1 - y, np.where(rng.random(n) < 0.8, y, 1 - y))  # the tiny group is all wrong
    grouping = make_groupings(pd.DataFrame({"g": g}), ["g"]).groupings[0]
    res = error_parity(grouping, y, pred, pred.astype(float), n_resamples=50, rng=0)
    assert res.equalized_odds_difference == pytest.approx(equalized_odds_difference(y, pred, sensitive_features=g))
    assert res.eod_all_groups == ("a", "b", "tiny") and res.eod_groups == ("a", "b")
    keep = g != "tiny"
    assert res.equalized_odds_difference_eligible == pytest.approx(
        equalized_odds_difference(y[keep], pred[keep], sensitive_features=g[keep]))
    assert res.equalized_odds_difference > 0.7 > 0.2 > res.equalized_odds_difference_eligible
    assert res.eod_low <= res.equalized_odds_difference_eligible <= res.eod_high


def test_planted_large_error_gap_is_high_and_its_interval_decides() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    df = pd.DataFrame({"x": rng.normal(size=n), "group": rng.choice(["A", "B"], size=n)})
    df["y"] = (df["x"] > 0).astype(int)
    flip = (df["group"] == "B").to_numpy() & (df["y"] == 1).to_numpy() & (rng.random(n) < 0.5)

    class Model:
        feature_names_in_ = np.array(["x", "group", "flip"], dtype=object)
        classes_ = np.array([0, 1])

        def predict_proba(self, X):
            p = np.where(X["flip"].to_numpy(), 0.1, np.where(X["x"].to_numpy() > 0, 0.9, 0.1))
            return np.column_stack([1 - p, p])

    df["flip"] = flip
    res = run_check(ErrorParityCheck, Model(), test=df, target="y", protected=["group"],
                    features=["x", "group", "flip"], reference={"group": "A"})
    f = _finding(res, "fairness.error_parity/group=B")
    assert f.severity is Severity.HIGH and f.metrics["fnr_gap_ci_low"] >= 0.2
    assert f.rule.metric == "fnr_gap" and f.rule.interval[0] == pytest.approx(f.metrics["fnr_gap_ci_low"])
    gap_row = next(r for r in _rows(res, "error_gaps") if r["group"] == "B")
    assert gap_row["fnr_ci_low"] == pytest.approx(f.metrics["fnr_gap_ci_low"], rel=1e-3)


# ---- the demo (German credit) ---------------------------------------------------------------------

def _demo(seed: int = 0, checks=(DisparateImpactCheck, ErrorParityCheck, ProxyCheck)):
    cfg = load_config(DEMO)
    cfg = dataclasses.replace(cfg, audit=dataclasses.replace(cfg.audit, seed=seed))
    registry = CheckRegistry(list(checks))
    audit = prepare(cfg, registry)
    out = run_checks(audit.context, registry)
    return audit.context, {r.id: r for r in out.results}


@pytest.fixture(scope="module")
def demo():
    return _demo()


def test_demo_air_interval_and_severity(demo) -> None:
    ctx, results = demo
    df = ctx.frame("test")
    approved = ctx.model.adapter.predict_proba(df[list(ctx.features)])[:, ctx.positive_index] >= 0.5
    young = (df["age"] < 25).to_numpy()
    ci = relative_risk(int(approved[young].sum()), int(young.sum()), int(approved[~young].sum()),
                       int((~young).sum())).confidence_interval(0.95)
    f = _finding(results["fairness.disparate_impact"], "fairness.disparate_impact/age_band=under_25")
    assert f.metrics["adverse_impact_ratio"] == pytest.approx(0.738, abs=1e-3)
    assert (f.metrics["air_ci_low"], f.metrics["air_ci_high"]) == pytest.approx((ci.low, ci.high))
    assert ci.low == pytest.approx(0.60, abs=0.01) and ci.high == pytest.approx(0.91, abs=0.01)
    # significant (Fisher p = 0.0002) but the interval reaches 0.80: medium, not high, and it says why
    assert f.severity is Severity.MEDIUM
    assert "95% interval [0.60, 0.91]" in f.summary and "Rated medium" in f.summary
    rule = f.rule.to_json()
    assert rule["metric"] == "adverse_impact_ratio" and rule["operator"] == "<" and rule["threshold"] == 0.8
    assert rule["interval"] == pytest.approx([ci.low, ci.high]) and rule["p_value"] < 0.001
    row = next(r for r in _rows(results["fairness.disparate_impact"], "by_group") if r["group"] == "under 25")
    assert row["air_ci_low"] == pytest.approx(ci.low, abs=1e-3)


def test_demo_fnr_gap_interval_and_equalized_odds(demo) -> None:
    from fairlearn.metrics import equalized_odds_difference

    ctx, results = demo
    res = results["fairness.error_parity"]
    f = _finding(res, "fairness.error_parity/age_band=under_25")
    df = ctx.frame("test")
    y = ctx.y_binary("test")
    pred = ctx.predictions("test").label
    young = (df["age"] < 25).to_numpy()
    fn_y, pos_y = int(((pred == 0) & (y == 1) & young).sum()), int(((y == 1) & young).sum())
    fn_o, pos_o = int(((pred == 0) & (y == 1) & ~young).sum()), int(((y == 1) & ~young).sum())
    assert f.metrics["fnr_gap"] == pytest.approx(fn_y / pos_y - fn_o / pos_o)
    assert (f.metrics["fnr_gap_ci_low"], f.metrics["fnr_gap_ci_high"]) == pytest.approx(
        difference_interval(fn_y, pos_y, fn_o, pos_o))
    # 30% against 7.5%, Holm-adjusted p = 0.02, interval [0.07, 0.44]: medium (high needs the lower end >= 0.20)
    assert f.severity is Severity.MEDIUM and f.rule.p_value == pytest.approx(0.019, abs=0.002)
    assert f.metrics["fnr_gap_ci_low"] == pytest.approx(0.074, abs=0.005)
    # equalized odds: fairlearn's over every sex × age_band group, and the eligible-groups one apart
    both = (df["sex"].astype(str) + " × " + df["age_band"].astype(str)).to_numpy()
    m = res.evidence.metrics
    assert m["equalized_odds_difference/sex × age_band"] == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=both))
    assert m["equalized_odds_difference/sex × age_band"] == pytest.approx(0.31, abs=0.01)
    assert m["equalized_odds_difference_eligible/sex × age_band"] == pytest.approx(0.029, abs=0.002)
    row = next(r for r in _rows(res, "equalized_odds") if r["column"] == "sex × age_band")
    assert row["groups"] == 4 and row["eligible_groups"] == 2


def test_demo_age_proxy_is_rated_by_the_redraw_and_linked(demo) -> None:
    ctx, results = demo
    f = _finding(results["fairness.proxy"], "fairness.proxy/age_band/age")
    # before issue 7 this was low (age's importance share is 4%); the redraw moves the AIR 0.74 -> 0.80
    assert f.severity is Severity.MEDIUM
    df = ctx.frame("test")
    X = df[list(ctx.features)]
    young = (df["age"] < 25).to_numpy()
    decide = lambda d: ctx.model.adapter.predict_proba(d)[:, ctx.positive_index] >= 0.5  # noqa: E731
    weights = X.loc[~young, "age"].value_counts(normalize=True)
    expected = sum(w * decide(X[young].assign(age=age)).astype(float) for age, w in weights.items())
    ref_rate = decide(X[~young]).mean()
    assert f.metrics["counterfactual_air"] == pytest.approx(expected.mean() / ref_rate, rel=1e-9)
    assert f.metrics["counterfactual_air"] == pytest.approx(0.80, abs=0.01)
    assert f.metrics["air"] == pytest.approx(0.738, abs=1e-3)
    assert f.metrics["disparate_impact_finding"] == "fairness.disparate_impact/age_band=under_25"
    assert "fairness.disparate_impact/age_band=under_25" in f.summary
    assert f.rule.metric == "air_lift" and f.rule.interval[0] > 0
    assert _rows(results["fairness.proxy"], "counterfactual")[0]["exact"] is True


def test_demo_fairness_severities_do_not_depend_on_the_seed(demo) -> None:
    _, base = demo
    _, other = _demo(seed=3, checks=(ProxyCheck, ErrorParityCheck))
    for cid in ("fairness.proxy", "fairness.error_parity"):
        a = {f.id: (f.severity, f.metrics.get("air_lift")) for f in base[cid].findings}
        b = {f.id: (f.severity, f.metrics.get("air_lift")) for f in other[cid].findings}
        assert a == b


def test_strong_proxy_the_model_ignores_has_no_lift_and_is_low() -> None:
    rng = np.random.default_rng(4)
    n = 2000
    race = rng.choice(["r1", "r2"], size=n, p=[0.6, 0.4])
    zip_area = np.where((race == "r1") ^ (rng.random(n) < 0.05), "Z-north", "Z-south")
    df = pd.DataFrame({"x": rng.normal(size=n), "zip_code_area": zip_area, "race": race})
    # the outcome (and so the model) differs by race through x, not through the zip code
    df["x"] += 0.8 * (df["race"] == "r1")
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-df["x"]))).astype(int)
    feats = ["x", "zip_code_area"]
    model = Pipeline([("pick", ColumnTransformer([("keep", "passthrough", ["x"])], remainder="drop")),
                      ("lr", LogisticRegression())]).fit(df[feats], df["y"])
    res = run_check(ProxyCheck, model, test=df, target="y", protected=["race"], features=feats)
    f = _finding(res, "fairness.proxy/race/zip_code_area")
    assert f.metrics["air"] < 0.9  # there is a disparity, but none of it flows through the zip code
    assert f.metrics["air_lift"] == 0.0 and f.severity is Severity.LOW


def test_regression_proxy_falls_back_to_strength_and_reliance() -> None:
    rng = np.random.default_rng(6)
    n = 1500
    race = rng.choice(["r1", "r2"], size=n)
    df = pd.DataFrame({"x": rng.normal(size=n), "zone": np.where(race == "r1", "n", "s"), "race": race})
    df["y"] = df["x"] + 2.0 * (df["zone"] == "n") + rng.normal(scale=0.3, size=n)
    enc = ColumnTransformer([("cat", OneHotEncoder(), ["zone"])], remainder="passthrough")
    model = Pipeline([("enc", enc), ("lr", LinearRegression())]).fit(df[["x", "zone"]], df["y"])
    res = run_check(ProxyCheck, model, test=df, target="y", protected=["race"], features=["x", "zone"])
    f = _finding(res, "fairness.proxy/race/zone")
    assert f.severity.rank >= Severity.MEDIUM.rank and f.rule.metric == "auc"
    assert any("the model is a regressor" in n for n in res.evidence.notes)


def test_high_bounds_are_options() -> None:
    # the interval requirement of high can be relaxed by the owner of the policy, and is stated
    relaxed = DisparateImpactCheck(air_high_upper=1.0)
    assert relaxed.severity_air(0.74, 0.0005, 0.91) is Severity.HIGH
    assert relaxed.severity_air(0.74, 0.2, 1.2) is Severity.LOW
    assert "wholly below 1" in relaxed.air_rule_text()
    gaps = ErrorParityCheck(gap_high_lower=0.0)
    assert gaps.severity_gap(0.23, 0.02, (0.07, 0.44)) is Severity.HIGH
    assert gaps.severity_gap(0.15, 0.001, (0.10, 0.20)) is Severity.MEDIUM
