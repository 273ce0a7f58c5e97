"""residual.analysis: residual numerics against direct computations, planted defects and clean
controls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_check, svg_of
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from auditor.analysis.residuals import (
    compute_residuals,
    heteroscedasticity,
    outliers,
    residual_pattern,
    row_drivers,
    scan_suspects,
    structure_share,
    surrogate_tree,
    value_text,
    worst_rows,
)
from auditor.checks.residual import ResidualAnalysisCheck

FAST = {"explain_worst": False}  # SHAP drivers are exercised in their own tests


# ---- data -------------------------------------------------------------------------------------------

class IgnoresDistrict:
    """A regressor that never learned the district: fitted on other districts, uses x1, x2 only."""

    def __init__(self, train: pd.DataFrame) -> None:
        keep = train["district"] != "d0"
        self.lr = LinearRegression().fit(train.loc[keep, ["x1", "x2"]], train.loc[keep, "y"])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.lr.predict(X[["x1", "x2"]])


def district_data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    levels = [f"d{i}" for i in range(8)]
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                       "district": rng.choice(levels, n, p=[0.07] + [0.93 / 7] * 7)})
    df["y"] = (2 * df["x1"] - df["x2"] + rng.normal(scale=0.5, size=n)
               + np.where(df["district"] == "d0", 3 + 2 * df["x1"], 0.0))
    return df


def region_data(n: int, share_r: float, seed: int) -> pd.DataFrame:
    """Binary outcome rising with x, except in region R where it falls with x."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                       "region": np.where(rng.random(n) < share_r, "R", rng.choice(["a", "b", "c"], n))})
    logit = np.where(df["region"] == "R", -2.0, 2.0) * df["x"] + 0.5 * df["z"]
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def clean_data(n: int, seed: int, classification: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "w": rng.uniform(0, 10, n),
                       "region": rng.choice(["a", "b", "c", "d"], n)})
    lin = 1.5 * df["x"] - df["z"] + 0.2 * (df["w"] - 5) + (df["region"] == "b") * 0.7
    if classification:
        df["y"] = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int)
    else:
        df["y"] = lin + rng.normal(scale=1.0, size=n)
    return df


def pipe(estimator, categorical: list[str]) -> Pipeline:
    enc = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), categorical)], remainder="passthrough")
    return Pipeline([("enc", enc), ("m", estimator)])


def hetero_data(n: int, seed: int, hetero: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.uniform(0, 10, n), "z": rng.normal(size=n)})
    sd = 0.3 * df["x"] + 0.1 if hetero else 1.5
    df["y"] = 3 * df["x"] + df["z"] + rng.normal(size=n) * sd
    return df


def age_data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"age": rng.uniform(18, 80, n).round(), "income": rng.lognormal(3, 0.5, n),
                       "city": rng.choice(["x", "y", "z"], n)})
    df["y"] = 0.5 * df["age"] + 0.2 * df["income"] + rng.normal(scale=2, size=n)
    return df


def by_suffix(result, suffix: str):
    return [f for f in result.findings if f.id.endswith(suffix)]


# ---- numerics against direct computations -------------------------------------------------------------

def test_classification_residuals_match_direct_computation():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, 500)
    y = (rng.random(500) < p).astype(int)
    res = compute_residuals(y, p, task="classification")
    p_true = np.where(y == 1, p, 1 - p)
    np.testing.assert_allclose(res.loss, -np.log(p_true))
    np.testing.assert_allclose(res.residual, y - p)
    np.testing.assert_allclose(res.deviance ** 2 / 2, res.loss)
    assert np.all(np.sign(res.deviance) == np.where(y == 1, 1, -1))
    np.testing.assert_allclose(res.standardized, (y - p) / np.sqrt(p * (1 - p)))
    from sklearn.metrics import log_loss
    assert res.loss.mean() == pytest.approx(log_loss(y, p))


def test_regression_residuals_match_direct_computation():
    rng = np.random.default_rng(1)
    y, pred = rng.normal(size=300), rng.normal(size=300)
    res = compute_residuals(y, pred, task="regression")
    np.testing.assert_allclose(res.residual, y - pred)
    np.testing.assert_allclose(res.standardized, (y - pred) / np.std(y - pred, ddof=1))
    np.testing.assert_allclose(res.loss, (y - pred) ** 2)


def test_residual_pattern_matches_groupby():
    rng = np.random.default_rng(2)
    x = pd.Series(rng.choice(["a", "b", "c"], 900))
    r = rng.normal(size=900) + (x == "b").to_numpy() * 1.0
    pat = residual_pattern(x, r, feature="g", categorical=True)
    direct = pd.Series(r).groupby(x.to_numpy()).mean()
    for lab, m, n in zip(pat.labels, pat.mean, pat.count):
        assert m == pytest.approx(direct[lab])
        assert n == (x == lab).sum()
    assert pat.p_value < 1e-6 and pat.strength > 0.05
    from scipy.stats import f_oneway
    xn, rn = pd.Series(rng.normal(size=900)), rng.normal(size=900)
    flat = residual_pattern(xn, rn, feature="v", categorical=False, bins=10)
    assert flat.count.sum() == 900 and len(flat.labels) == 10
    deciles = pd.qcut(xn, 10, labels=False).to_numpy()
    assert flat.p_value == pytest.approx(f_oneway(*[rn[deciles == i] for i in range(10)]).pvalue)
    np.testing.assert_allclose(flat.mean, [rn[deciles == i].mean() for i in range(10)])


def test_residual_pattern_bins_are_bh_adjusted_like_scipy():
    """The per-bin tests of mean = 0 are BH-adjusted in the analysis (a one-row bin counts as p = 1)."""
    from scipy.stats import false_discovery_control, ttest_1samp

    rng = np.random.default_rng(6)
    x = pd.Series(np.r_[rng.choice(["a", "b", "c"], 300), ["lonely"]])
    r = rng.normal(size=301) + (x == "b").to_numpy() * 0.5
    pat = residual_pattern(x, r, feature="g", categorical=True)
    for lab, pv in zip(pat.labels, pat.p_values):
        if lab != "lonely":
            assert pv == pytest.approx(ttest_1samp(r[(x == lab).to_numpy()], 0.0).pvalue)
    assert np.isnan(pat.p_values[pat.labels.index("lonely")])
    np.testing.assert_allclose(pat.p_adjusted, false_discovery_control(np.nan_to_num(pat.p_values, nan=1.0)))
    assert pat.p_adjusted[pat.labels.index("b")] < 0.001


def test_worst_rows_read_the_residuals_of_their_positions():
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"a": rng.normal(size=50), "g": rng.choice(["u", "v"], 50)})
    X.loc[3, "a"] = np.nan
    y, p = rng.integers(0, 2, 50), rng.uniform(0.01, 0.99, 50)
    res = compute_residuals(y, p, task="classification")
    order = res.worst_positions(4)
    assert list(order) == list(np.argsort(-res.loss, kind="stable")[:4])
    rows = worst_rows(res, X, np.r_[order, 3], labels=[f"id{i}" for i in range(50)], actual=y,
                      flags=[("a missing",) if i == 3 else () for i in range(50)], drivers=None,
                      value_features=["a", "g"])
    for w, pos in zip(rows, np.r_[order, 3]):
        assert w.label == f"id{pos}" and w.actual == y[pos] and w.loss == pytest.approx(res.loss[pos])
        assert w.residual == pytest.approx(p[pos] if y[pos] == 1 else 1 - p[pos])  # P(actual class)
        assert w.values == (("a", value_text(X["a"][pos])), ("g", X["g"][pos])) and w.pushes == ()
    assert rows[-1].flags == ("a missing",) and rows[-1].values[0] == ("a", "missing")
    # the structured share is the tree's explained share scaled by residual over target variance
    tree = surrogate_tree(X, res.residual, categorical=["g"], rng=np.random.default_rng(0), min_leaf=5)
    assert tree is not None and res.target_variance == pytest.approx(np.var(y, ddof=1))
    assert structure_share(tree, res) == pytest.approx(tree.explained * np.var(y - p, ddof=1) / np.var(y, ddof=1))


def test_surrogate_tree_recovers_planted_region_and_ignores_noise():
    rng = np.random.default_rng(3)
    n = 3000
    X = pd.DataFrame({"region": rng.choice(["n", "s", "e", "w"], n), "v": rng.normal(size=n)})
    r = rng.normal(size=n) + 2.0 * (X["region"] == "s").to_numpy()
    tree = surrogate_tree(X, r, categorical=["region"], rng=np.random.default_rng(0), min_leaf=50)
    assert tree.features[0] == "region"
    assert tree.explained > 0.3 and tree.p_value < 1e-6
    top = max(tree.leaves, key=lambda lf: lf.mean)
    assert top.rule.startswith("region = s") and top.mean == pytest.approx(2.0, abs=0.25)
    noise = surrogate_tree(X, rng.normal(size=n), categorical=["region"], rng=np.random.default_rng(0), min_leaf=50)
    assert noise.explained < 0.01 and noise.p_value > 0.05


def test_heteroscedasticity_is_spearman_of_abs_residual():
    from scipy.stats import spearmanr
    rng = np.random.default_rng(4)
    pred = rng.uniform(0, 10, 800)
    r = rng.normal(size=800) * (0.2 + pred)
    h = heteroscedasticity(r, pred)
    assert h.rho == pytest.approx(spearmanr(np.abs(r), pred).statistic)
    assert h.rho > 0.4 and h.p_value < 1e-10 and h.spread_ratio > 3


def test_confident_errors_are_compared_with_calibration():
    rng = np.random.default_rng(5)
    p = rng.uniform(0, 1, 5000)
    y = (rng.random(5000) < p).astype(int)  # calibrated
    calm = outliers(compute_residuals(y, p, task="classification"), confident_p=0.02)
    assert calm.p_value > 0.01
    assert abs(calm.count - calm.expected) < 4 * np.sqrt(calm.expected) + 1
    flipped = y.copy()
    flipped[np.flatnonzero(p > 0.99)[:20]] = 0  # confidently wrong
    loud = outliers(compute_residuals(flipped, p, task="classification"), confident_p=0.02)
    assert loud.count >= calm.count + 15 and loud.p_value < 1e-6


def test_suspect_scan_flags_negative_values_concentrated_among_worst():
    rng = np.random.default_rng(6)
    train = pd.DataFrame({"age": rng.uniform(18, 80, 500)})
    test = pd.DataFrame({"age": rng.uniform(18, 80, 500)})
    err = rng.exponential(size=500)
    test.loc[:5, "age"] = -20.0
    err[:6] = 50.0
    scan = scan_suspects(test, err, numeric=["age"], categorical=[], reference=train)
    neg = [s for s in scan.suspects if s.kind == "negative"][0]
    assert (neg.n_worst, neg.n_rest) == (6, 0) and neg.p_adjusted < 1e-6
    assert all("age < 0" in scan.flags[i] for i in range(6))
    assert not scan.flags[10]


def test_row_drivers_add_up_and_match_a_linear_model():
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "c": rng.choice(["u", "v"], 200)})
    w = {"a": 2.0, "b": -1.0}

    def score(frame: pd.DataFrame) -> np.ndarray:
        return w["a"] * frame["a"].to_numpy(float) + w["b"] * frame["b"].to_numpy(float) \
            + 0.5 * (frame["c"].astype(str).to_numpy() == "v")

    rows, bg = X.iloc[:3], X.iloc[100:140]
    y = np.array([5.0, -3.0, 0.0])
    d = row_drivers(score, rows, y, bg, task="regression", categorical=["c"], seed=0)
    for j, f in enumerate(["a", "b"]):  # exact for an additive model: w (x - mean of background)
        np.testing.assert_allclose(d.prediction[:, j], w[f] * (rows[f] - bg[f].mean()), atol=1e-9)
    np.testing.assert_allclose(d.prediction.sum(axis=1) + d.prediction_base, score(rows), atol=1e-9)
    np.testing.assert_allclose(d.loss.sum(axis=1) + d.loss_base, (y - score(rows)) ** 2, atol=1e-9)
    np.testing.assert_allclose(d.loss_value, (y - score(rows)) ** 2)


# ---- planted defects and clean controls ----------------------------------------------------------------

@pytest.fixture(scope="module")
def district_result():
    train, test = district_data(2000, 10), district_data(2000, 11)
    return run_check(ResidualAnalysisCheck, IgnoresDistrict(train), test=test, train=train, target="y",
                     features=["x1", "x2", "district"], task="regression", options=FAST)


def test_structure_found_in_unlearned_district(district_result):
    f = by_suffix(district_result, "/structure")
    assert f and f[0].severity.value in ("medium", "high")
    assert f[0].features[0] == "district"
    rules = district_result.evidence.tables[0].records()
    assert rules[0]["rule"].startswith("district = d0") and rules[0]["mean_residual"] > 2
    fig_names = [fg.name for fg in district_result.evidence.figures]
    assert fig_names == ["residuals_vs_prediction", "residuals_by_feature"]
    assert "district" in svg_of(district_result.evidence.figures[1])


def test_structure_found_for_flipped_region_classifier():
    train, test = region_data(2000, 0.01, 1), region_data(2000, 0.15, 2)
    model = pipe(LogisticRegression(max_iter=1000), ["region"]).fit(train[["x", "z", "region"]], train["y"])
    result = run_check(ResidualAnalysisCheck, model, test=test, train=train, target="y", options=FAST)
    f = by_suffix(result, "/structure")
    assert f and "region" in f[0].features


@pytest.mark.parametrize("classification", [False, True])
def test_clean_model_gets_no_high_and_no_structure(classification):
    train, test = clean_data(3000, 20, classification), clean_data(3000, 21, classification)
    est = LogisticRegression(max_iter=1000) if classification else LinearRegression()
    model = pipe(est, ["region"]).fit(train[["x", "z", "w", "region"]], train["y"])
    result = run_check(ResidualAnalysisCheck, model, test=test, train=train, target="y", options=FAST)
    assert all(f.severity.value not in ("high", "medium") for f in result.findings), \
        [f.title for f in result.findings]
    assert result.evidence.metrics["tree_explained_share"] < 0.01


def test_negative_age_flagged_among_worst_rows_with_drivers():
    train, test = age_data(1500, 30), age_data(1500, 31).copy()
    model = pipe(LinearRegression(), ["city"]).fit(train[["age", "income", "city"]], train["y"])
    bad = np.random.default_rng(32).choice(len(test), 6, replace=False)
    test.loc[test.index[bad], "age"] = -test["age"].iloc[bad]  # sign lost in the pipeline
    result = run_check(ResidualAnalysisCheck, model, test=test, train=train, target="y",
                       options={"shap_background": 30})
    f = by_suffix(result, "/data_quality/age/negative")
    assert len(f) == 1 and f[0].features == ("age",) and f[0].metrics["rows_among_worst"] == 6
    worst = next(t for t in result.evidence.tables if t.name == "worst_rows").records()
    flagged = [r for r in worst if "age < 0" in r["flags"]]
    assert len(flagged) == 6
    assert all(r["pushes_prediction"].startswith("age = -") for r in flagged)
    assert all("age = -" in r["raises_error"] for r in flagged)
    assert any("SHAP" in n for n in result.evidence.notes)


@pytest.mark.parametrize("hetero", [True, False])
def test_heteroscedasticity_found_only_when_planted(hetero):
    train, test = hetero_data(2000, 40, hetero), hetero_data(2000, 41, hetero)
    model = LinearRegression().fit(train[["x", "z"]], train["y"])
    result = run_check(ResidualAnalysisCheck, model, test=test, train=train, target="y", options=FAST)
    found = by_suffix(result, "/heteroscedasticity")
    assert bool(found) is hetero
    if hetero:
        assert found[0].metrics["spearman_rho"] > 0.3
        assert all(f.severity.value != "high" for f in result.findings)


def test_judge_is_pure_and_thresholds_are_options():
    """One measurement, judged under different thresholds: only the verdict changes."""
    from auditor.engine import prepare_objects

    train, test = district_data(2000, 10), district_data(2000, 11)
    audit = prepare_objects(IgnoresDistrict(train), test=test, train=train, target="y",
                            features=["x1", "x2", "district"], task="regression")
    m = ResidualAnalysisCheck(**FAST).measure(audit.context)

    def structure(**options):
        return [f for f in ResidualAnalysisCheck(**options).judge(m) if f.id.endswith("/structure")]

    assert structure()[0].severity.value in ("medium", "high")
    assert structure(structure_high=0.01)[0].severity.value == "high"
    assert structure(structure_medium=0.99, structure_high=0.995) == []
    assert [f.id for f in ResidualAnalysisCheck().judge(m)] == [f.id for f in ResidualAnalysisCheck().judge(m)]
