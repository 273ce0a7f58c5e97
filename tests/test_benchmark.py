"""benchmark.comparison: planted defects and controls, and the numbers against direct computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_check, severities, svg_of
from scipy import stats
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeRegressor

from auditor.analysis.benchmark import (
    Disagreement,
    PairedComparison,
    compare_paired,
    concentration_p,
    delong_test,
    disagreement,
    fit_benchmarks,
    segment_levels,
)
from auditor.analysis.metrics import Estimate, bootstrap_counts, weighted_auc
from auditor.checks.benchmark import BenchmarkCheck, BenchmarkMeasurement
from auditor.findings import Severity, Status

ID = BenchmarkCheck.id


# ---- data and models ----------------------------------------------------------------------------

def linear_classification(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    logit = X @ np.array([1.0, -0.8, 0.6, 0.5, 0.0, 0.0])
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def interaction_classification(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 5))
    logit = 2.0 * X[:, 0] * X[:, 1] - 1.5 * X[:, 2] * X[:, 3] + 2.0 * np.sin(2 * X[:, 4])
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def linear_regression_data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    df["y"] = X @ np.array([2.0, -1.0, 0.5, 0.0, 1.0]) + rng.normal(scale=2.0, size=n)
    return df


def region_data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
    df["region"] = rng.choice(list("ABCD"), size=n)
    logit = 1.5 * X[:, 0] - 1.0 * X[:, 1] + 0.5 * X[:, 2]
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def features(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c != "y"]


class BrokenInRegion:
    """A sound model that inverts its scores in one region: the planted segment defect."""

    def __init__(self, inner, region: str) -> None:
        self.inner, self.region = inner, region
        self.classes_ = inner.classes_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.inner.predict_proba(X).copy()
        hit = (X["region"] == self.region).to_numpy()
        p[hit] = p[hit][:, ::-1]
        return p

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.inner.classes_[self.predict_proba(X).argmax(axis=1)]


def by_id(result, suffix: str):
    return [f for f in result.findings if f.id == f"{ID}/{suffix}"]


# ---- planted defects and controls ------------------------------------------------------------------

def test_badly_tuned_boosting_on_linear_data_is_high():
    train, test = linear_classification(400, 1), linear_classification(1500, 2)
    model = HistGradientBoostingClassifier(learning_rate=1.0, max_iter=200, max_leaf_nodes=None, max_depth=None,
                                           min_samples_leaf=1, l2_regularization=0.0, early_stopping=False,
                                           random_state=0).fit(train[features(train)], train["y"])
    r = run_check(BenchmarkCheck, model, test=test, train=train, target="y")
    [worse] = by_id(r, "worse")
    assert worse.severity is Severity.HIGH
    assert worse.metrics["difference_ci_high"] < 0
    assert worse.title.startswith("Model AUC") and "logistic" in worse.title
    assert r.evidence.metrics["auc_difference_vs_logistic"] < -0.03


def test_overfit_tree_on_linear_regression_data_is_high():
    train, test = linear_regression_data(400, 5), linear_regression_data(1000, 6)
    model = DecisionTreeRegressor(random_state=0).fit(train[features(train)], train["y"])
    r = run_check(BenchmarkCheck, model, test=test, train=train, target="y")
    [worse] = by_id(r, "worse")
    assert worse.severity is Severity.HIGH
    assert "RMSE" in worse.title and "ridge" in worse.title
    assert worse.metrics["difference_ci_low"] > 0  # model RMSE − benchmark RMSE, entirely above 0
    tables = {t.name: t for t in r.evidence.tables}
    assert {"benchmarks", "comparison", "disagreement_segments", "disagreement_examples"} <= set(tables)
    assert r.evidence.figures and svg_of(r.evidence.figures[0]).startswith("<svg")


def test_good_nonlinear_model_gets_nothing_above_info():
    train, test = interaction_classification(3000, 3), interaction_classification(1500, 4)
    model = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(train[features(train)], train["y"])
    r = run_check(BenchmarkCheck, model, test=test, train=train, target="y")
    assert set(severities(r)) == {"info"}
    [better] = by_id(r, "better")
    assert better.metrics["difference_ci_low"] > 0
    assert "significantly better than every benchmark" in better.title


def test_logistic_model_on_linear_data_is_low_not_better():
    # a GLM on a par with a GLM benchmark of its kind is routine (issue 10): low, not medium
    train, test = linear_classification(1000, 7), linear_classification(1500, 8)
    model = LogisticRegression().fit(train[features(train)], train["y"])
    r = run_check(BenchmarkCheck, model, test=test, train=train, target="y")
    assert "high" not in severities(r)
    [nb] = by_id(r, "not_better")
    assert nb.severity is Severity.LOW
    assert "on a par with a logistic regression benchmark of its own kind" in nb.title
    assert "itself a linear model" in nb.summary and "about as good as the simple benchmark" in nb.summary
    assert nb.rule is not None and "itself a linear model" in nb.rule.text


def test_boosting_on_linear_data_not_better_stays_medium():
    # the control of the GLM rule: a complex model on the same data, no better than the logistic
    # benchmark and not at the ceiling, is still medium (complexity without benefit)
    train, test = linear_classification(1000, 7), linear_classification(1500, 8)
    model = HistGradientBoostingClassifier(max_iter=60, max_depth=2, learning_rate=0.1,
                                           random_state=0).fit(train[features(train)], train["y"])
    r = run_check(BenchmarkCheck, model, test=test, train=train, target="y")
    [nb] = by_id(r, "not_better") + by_id(r, "worse")
    assert nb.severity.rank >= Severity.MEDIUM.rank
    assert "on a par" not in nb.title and "ceiling" not in nb.title


def test_segment_where_benchmark_beats_model_names_the_feature():
    train, test = region_data(1500, 1), region_data(2000, 2)
    X = features(train)
    inner = make_pipeline(make_column_transformer((OneHotEncoder(), ["region"]), remainder="passthrough"),
                          LogisticRegression()).fit(train[X], train["y"])
    r = run_check(BenchmarkCheck, BrokenInRegion(inner, "C"), test=test, train=train, target="y", features=X)
    segs = [f for f in r.findings if f.id.startswith(f"{ID}/segment/")]
    assert [f.features for f in segs] == [("region",)]
    [seg] = segs
    assert seg.severity is Severity.MEDIUM and "region = C" in seg.title
    assert seg.metrics["q_value"] <= 0.05 and seg.metrics["share"] > seg.metrics["overall_share"]
    examples = {t.name: t for t in r.evidence.tables}["disagreement_examples"]
    assert 0 < len(examples.rows) <= 10
    assert examples.columns[1] == "region"  # the flagged feature comes first
    assert all(row[1] == "C" for row in examples.rows)


def test_skipped_without_training_data():
    train, test = linear_classification(300, 1), linear_classification(300, 2)
    model = LogisticRegression().fit(train[features(train)], train["y"])
    r = run_check(BenchmarkCheck, model, test=test, target="y")
    assert r.status is Status.SKIPPED and "training data" in r.reason


def test_train_budget_missing_values_and_unseen_levels(german):
    """Missing numerics and categoricals, a level unseen in training, and a train sample below the rows given."""
    df = german.copy()
    df.loc[df.index[::7], "credit_amount"] = np.nan
    df.loc[df.index[::11], "saving_accounts"] = np.nan
    train, test = df.iloc[:700].copy(), df.iloc[700:].copy()
    test.loc[test.index[:5], "purpose"] = "spaceship"
    cat = [c for c in df.columns if c != "risk" and not pd.api.types.is_numeric_dtype(df[c])]
    from sklearn.ensemble import HistGradientBoostingClassifier as HGB
    from sklearn.preprocessing import OrdinalEncoder
    model = make_pipeline(
        make_column_transformer((OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                                encoded_missing_value=-2), cat), remainder="passthrough"),
        HGB(max_iter=50, random_state=0)).fit(train.drop(columns="risk"), train["risk"])
    r = run_check(BenchmarkCheck, model, test=test, train=train, target="risk", options={"max_train_rows": 500})
    assert r.status is Status.OK
    assert r.evidence.metrics["n_train_used"] == 500
    assert any("500 of 700 training rows" in n for n in r.evidence.notes)
    # McNemar p-value against scipy directly on the reported discordant counts
    b = r.evidence.metrics["benchmark_right_model_wrong"]
    c = r.evidence.metrics["model_right_benchmark_wrong"]
    assert r.evidence.metrics["mcnemar_p_value"] == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue)
    # deterministic
    again = run_check(BenchmarkCheck, model, test=test, train=train, target="risk", options={"max_train_rows": 500})
    assert [f.to_json() for f in again.findings] == [f.to_json() for f in r.findings]
    assert again.to_json()["metrics"] == r.to_json()["metrics"]


# ---- numbers against direct computations -------------------------------------------------------------

@pytest.fixture(scope="module")
def scored():
    """Test labels and two correlated score vectors, with ties."""
    rng = np.random.default_rng(0)
    n = 600
    z = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-1.2 * z))).astype(int)
    a = 1 / (1 + np.exp(-(z + rng.normal(scale=0.8, size=n))))
    b = 1 / (1 + np.exp(-(z + rng.normal(scale=1.2, size=n))))
    return y, np.round(a, 2), np.round(b, 2)  # rounding makes ties


def test_delong_against_direct_computation(scored):
    y, a, b = scored
    res = delong_test(y, a, b)
    assert res.auc_a == pytest.approx(roc_auc_score(y, a))
    assert res.auc_b == pytest.approx(roc_auc_score(y, b))
    # direct O(m n) structural components with ties as one half
    pos, neg = y == 1, y == 0

    def components(s):
        psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    (v10a, v01a), (v10b, v01b) = components(a), components(b)
    m, n = pos.sum(), neg.sum()
    var = (np.var(v10a - v10b, ddof=1) / m) + (np.var(v01a - v01b, ddof=1) / n)
    assert res.se == pytest.approx(np.sqrt(var), rel=1e-9)
    assert res.p_value == pytest.approx(2 * stats.norm.sf(abs(res.difference) / np.sqrt(var)), rel=1e-9)
    # and against a paired bootstrap of the AUC difference
    counts = np.vstack(list(bootstrap_counts(len(y), 2000, np.random.default_rng(1))))
    boot = weighted_auc(y, a, counts) - weighted_auc(y, b, counts)
    assert np.std(boot) == pytest.approx(res.se, rel=0.1)


def test_paired_comparison_matches_sklearn_and_scipy(scored):
    y, a, b = scored
    c = compare_paired(y, a, b, task="classification", threshold=0.5, n_resamples=300, rng=3)
    assert isinstance(c, PairedComparison) and c.primary.metric == "auc"
    assert c.get("auc").benchmark == pytest.approx(roc_auc_score(y, b))
    ca, cb = (a >= 0.5) == y, (b >= 0.5) == y
    n10, n01 = int(np.sum(cb & ~ca)), int(np.sum(ca & ~cb))
    assert c.get("accuracy").p_value == pytest.approx(stats.binomtest(n10, n10 + n01, 0.5).pvalue)
    assert c.get("accuracy").difference.value == pytest.approx(ca.mean() - cb.mean())
    for mc in c.metrics:
        d = mc.difference
        assert d.low <= d.value <= d.high, mc.metric
    boot = compare_paired(y, a, b, task="classification", n_resamples=300, auc_method="bootstrap", rng=3)
    dl, bs = c.get("auc").difference, boot.get("auc").difference
    assert bs.low <= bs.value <= bs.high
    assert bs.high - bs.low == pytest.approx(dl.high - dl.low, rel=0.25)


def test_regression_comparison_against_direct_computation():
    rng = np.random.default_rng(2)
    y = rng.normal(size=500)
    pm = y + rng.normal(scale=0.5, size=500)
    pb = y + rng.normal(scale=0.7, size=500)
    c = compare_paired(y, pm, pb, task="regression", n_resamples=300, rng=0)
    rmse = c.get("rmse")
    assert rmse.model == pytest.approx(np.sqrt(np.mean((pm - y) ** 2)))
    assert rmse.p_value == pytest.approx(stats.ttest_rel((pm - y) ** 2, (pb - y) ** 2).pvalue)
    assert rmse.model_better and not rmse.model_worse
    for mc in c.metrics:
        assert mc.difference.low <= mc.difference.value <= mc.difference.high, mc.metric


def test_concentration_p_is_fisher_exact():
    for k, size, total, n in ((12, 40, 30, 400), (0, 50, 10, 300), (5, 5, 20, 100)):
        table = [[k, size - k], [total - k, n - size - (total - k)]]
        assert concentration_p(k, size, total, n) == pytest.approx(
            stats.fisher_exact(table, alternative="greater").pvalue)


def test_segment_levels_bins_levels_and_missing():
    codes, labels = segment_levels(pd.Series([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, np.nan]), n_bins=4)
    assert labels[-1] == "(missing)" and codes[-1] == len(labels) - 1
    assert labels[0].startswith("≤ ") and labels[-2].startswith("> ")
    assert np.bincount(codes[:-1]).tolist() == [3, 3, 3, 3]
    codes, labels = segment_levels(pd.Series(["b", "a", None, "b"]))
    assert labels == ["a", "b", "(missing)"] and codes.tolist() == [1, 0, 2, 1]
    codes, labels = segment_levels(pd.Series([1, 2, 2, 1]), categorical=True)
    assert labels == ["1", "2"]


def test_disagreement_counts_and_examples():
    rng = np.random.default_rng(4)
    n = 400
    X = pd.DataFrame({"g": rng.choice(["u", "v"], size=n), "x": rng.normal(size=n)})
    y = rng.integers(0, 2, size=n)
    model = np.where(X["g"] == "u", 1 - y, y) * 0.8 + 0.1  # wrong on every "u" row
    bench = np.full(n, 0.1) + 0.8 * y
    d = disagreement(X, y, model, bench, task="classification", min_support=20)
    assert isinstance(d, Disagreement)
    assert d.benchmark_wins == int((X["g"] == "u").sum()) and d.model_wins == 0
    top = d.segments[0]
    assert (top.feature, top.level) == ("g", "u") and top.share == 1.0 and top.q_value < 1e-6
    assert len(d.examples) == 10 and all(X["g"].iloc[i] == "u" for i in d.examples)


def test_benchmark_fits_match_sklearn_auc_and_settings(german):
    train, test = german.iloc[:700], german.iloc[700:]
    X = [c for c in german.columns if c != "risk"]
    cat = [c for c in X if not pd.api.types.is_numeric_dtype(german[c])]
    num = [c for c in X if c not in cat]
    fits = fit_benchmarks(train[X], train["risk"].to_numpy(), test[X], task="classification", numeric=num,
                          categorical=cat, tree_depth=3)
    assert [f.name for f in fits] == ["logistic", "tree"]
    assert "chosen by 3-fold CV" in fits[0].settings and "max depth 3" in fits[1].settings
    y = test["risk"].to_numpy()
    for f in fits:
        assert f.score.shape == (len(test),) and np.all((f.score > 0) & (f.score < 1))
        c = compare_paired(y, f.score, f.score, task="classification", n_resamples=50)
        assert c.get("auc").model == pytest.approx(roc_auc_score(y, f.score))
        assert c.get("auc").difference.value == 0 and not c.primary.model_worse and not c.primary.model_better
    assert roc_auc_score(y, fits[0].score) > 0.7


# ---- judge: thresholds without a model ----------------------------------------------------------------

def _measurement(diff: Estimate, model_auc: float = 0.80) -> BenchmarkMeasurement:
    from auditor.analysis.benchmark import BenchmarkFit, MetricComparison

    fit = BenchmarkFit("logistic", "Logistic regression (L2)", "logistic regression", "C = 1", np.zeros(3), 100, 5)
    mc = MetricComparison("auc", True, model_auc, model_auc - diff.value, diff, "DeLong", 0.01, "DeLong")
    comp = PairedComparison("logistic", "classification", (mc,), 1000, 200, 0.95)
    dis = Disagreement("classification", 1000, 0.0, 10, 10, 900, 80, 1.0, np.zeros(3, bool), np.zeros(3, bool), (), ())
    return BenchmarkMeasurement("classification", 0.5, 0.95, 100, 100, 1000, "HistGradientBoostingClassifier",
                                False, (fit,), (comp,), dis, np.zeros(3), np.zeros(3), 0.0, (), ())


@pytest.mark.parametrize("diff, expected_id, expected", [
    (Estimate(-0.05, -0.08, -0.02), "worse", "high"),
    (Estimate(-0.004, -0.007, -0.001), "not_better", "medium"),  # significant but below high_min_auc_gap
    (Estimate(0.01, -0.02, 0.04), "not_better", "medium"),
    (Estimate(0.03, 0.01, 0.05), "better", "info"),
])
def test_judge_severity_rules(diff, expected_id, expected):
    [f] = BenchmarkCheck().judge(_measurement(diff))
    assert f.id == f"{ID}/{expected_id}" and f.severity.value == expected
    if expected_id == "not_better" and diff.low < 0 < diff.high:
        assert f.title == ("Model AUC 0.800 not significantly better than a logistic regression benchmark "
                           "(0.790; Δ +0.010, 95% CI −0.020 to +0.040)")


def test_judge_both_at_the_ceiling_is_low_and_never_prints_zero_deltas():
    # AUC 1.000 against 1.000: no difference on any resample, and no model could be shown better
    [f] = BenchmarkCheck().judge(_measurement(Estimate(0.0, 0.0, 0.0), model_auc=1.0))
    assert f.id == f"{ID}/not_better" and f.severity is Severity.LOW
    assert "both at the ceiling" in f.title and "0.00000" not in f.title + f.summary + f.rule.text
    assert "no difference on any resample" in f.title
    # near the ceiling: the benchmark (0.996) is within 0.004 of a perfect AUC, less than the interval's
    # half-width (0.009), so not even a perfect model could be shown better: low
    [f] = BenchmarkCheck().judge(_measurement(Estimate(-0.007, -0.016, 0.002), model_auc=0.989))
    assert f.severity is Severity.LOW and "ceiling" in f.title and "perfect" in f.summary
    # the control: the same interval further from the ceiling is medium (0.1 of room above 0.9)
    [f] = BenchmarkCheck().judge(_measurement(Estimate(-0.007, -0.016, 0.002), model_auc=0.893))
    assert f.severity is Severity.MEDIUM and "ceiling" not in f.title
    # significantly worse is never routine, even at the ceiling
    [f] = BenchmarkCheck().judge(_measurement(Estimate(-0.004, -0.007, -0.001), model_auc=0.995))
    assert f.severity is Severity.MEDIUM


def test_judge_glm_against_its_own_kind_is_low_unless_significantly_worse():
    from dataclasses import replace

    glm = replace(_measurement(Estimate(0.01, -0.02, 0.04)), model_is_linear=True, model_kind="LogisticRegression")
    [f] = BenchmarkCheck().judge(glm)
    assert f.severity is Severity.LOW and "its own kind" in f.title
    worse = replace(_measurement(Estimate(-0.004, -0.007, -0.001)), model_is_linear=True,
                    model_kind="LogisticRegression")
    [f] = BenchmarkCheck().judge(worse)
    assert f.severity is Severity.MEDIUM and "significantly worse than a benchmark of its own kind" in f.summary


def test_judge_high_margin_is_an_option():
    m = _measurement(Estimate(-0.004, -0.007, -0.001))
    assert BenchmarkCheck(high_min_auc_gap=0.001).judge(m)[0].severity is Severity.HIGH
    # the margin is judged on the interval's end nearest to no difference (-0.001), not the point (-0.004)
    f = BenchmarkCheck(high_min_auc_gap=0.002).judge(m)[0]
    assert f.severity is Severity.MEDIUM and f.rule is not None and f.rule.interval == (-0.007, -0.001)
