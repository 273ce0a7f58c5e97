"""residual.segments: segment numerics against direct computations, planted weak segments and
clean controls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_check
from scipy import stats
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score
from test_residuals import IgnoresDistrict, clean_data, district_data, pipe, region_data

from auditor.analysis.segments import (
    SegmentOptions,
    auc_interval,
    find_weak_segments,
    fit_coding,
    row_loss,
    scan_segments,
    slice_metrics,
)
from auditor.checks.residual import WeakSegmentsCheck

# ---- numerics ------------------------------------------------------------------------------------------

def test_quantile_coding_labels_and_codes():
    rng = np.random.default_rng(0)
    x = pd.Series(rng.normal(40, 10, 1000))
    x.iloc[:7] = np.nan
    c = fit_coding(x, feature="age", categorical=False, n_bins=5)
    codes = c.codes(x)
    assert c.kind == "binned" and c.n_codes == 6
    assert c.labels[0].startswith("age < ") and c.labels[4].startswith("age >= ") and c.labels[5] == "age is missing"
    edges = np.array(c.edges)
    v = x.to_numpy()
    for i in range(5):  # left-closed bins [e_i-1, e_i)
        sel = v[codes == i]
        assert (i == 0 or sel.min() >= edges[i - 1]) and (i == 4 or sel.max() < edges[i])
    assert (codes == 5).sum() == 7
    counts = np.bincount(codes[:], minlength=6)[:5]
    assert counts.min() >= 190
    lv = fit_coding(pd.Series(["b", "a", None, "b"]), feature="g", categorical=True, n_bins=5)
    assert list(lv.codes(pd.Series(["a", "b", None, "zz"]))) == [0, 1, 2, -1]
    assert fit_coding(pd.Series([0, 1, 1, 0, 1]), feature="flag", categorical=False, n_bins=5).kind == "discrete"


def test_welch_scan_matches_scipy():
    rng = np.random.default_rng(1)
    e = rng.exponential(size=600)
    g = rng.choice(3, 600)
    e[g == 1] += 0.4
    scan = scan_segments([g], [3], e, min_support=30)
    for key, t, p in zip(scan.keys, scan.t, scan.p_value):
        inside = g == key[0][1]
        ref = stats.ttest_ind(e[inside], e[~inside], equal_var=False, alternative="greater")
        assert t == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert np.allclose(scan.p_adjusted, stats.false_discovery_control(scan.p_value))


def test_pair_scan_counts_match_crosstab():
    """Every segment of the scan, single or pair, holds the rows the crosstab says it holds."""
    rng = np.random.default_rng(2)
    a, b = rng.choice(2, 400), rng.choice(3, 400)
    scan = scan_segments([a, b], [2, 3], rng.normal(size=400), min_support=10, pairs=[(0, 1)])
    ct = pd.crosstab(a, b)
    assert ct.to_numpy().min() >= 10  # so every cell is tested
    # the margins of the crosstab are the single-feature segments, its cells the pair segments
    want = {((0, i),): int(ct.loc[i].sum()) for i in range(2)}
    want |= {((1, j),): int(ct[j].sum()) for j in range(3)}
    want |= {((0, i), (1, j)): int(ct.loc[i, j]) for i in range(2) for j in range(3)}
    got = {key: int(n) for key, n in zip(scan.keys, scan.n)}
    assert len(got) == len(scan.keys) == 11
    assert got == want


def test_slice_metrics_match_sklearn_and_pandas():
    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 2, 300), rng.uniform(size=300)
    m = slice_metrics(y, p, task="classification", threshold=0.5, confidence=0.95)
    assert m.accuracy.value == pytest.approx(((p >= 0.5) == y).mean())
    assert m.auc.value == pytest.approx(roc_auc_score(y, p))
    assert m.auc.low < m.auc.value < m.auc.high
    assert auc_interval(np.ones(5), p[:5], 0.95).value != auc_interval(np.ones(5), p[:5], 0.95).value  # NaN
    yr, pr = rng.normal(size=300), rng.normal(size=300)
    r = slice_metrics(yr, pr, task="regression", threshold=0.5, confidence=0.95)
    assert r.mae.value == pytest.approx(np.abs(yr - pr).mean())
    assert r.rmse.value == pytest.approx(np.sqrt(((yr - pr) ** 2).mean()))


def test_calibrated_classifier_has_no_excess_where_outcomes_are_uncertain():
    """Rows with p near 0.5 have a higher log loss even for a perfect model; the tested excess
    removes that, so no segment is found on a perfectly calibrated score."""
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"u": rng.uniform(-3, 3, 4000), "g": rng.choice(["a", "b"], 4000)})
    p = 1 / (1 + np.exp(-2 * X["u"].to_numpy()))
    y = (rng.random(4000) < p).astype(int)
    rl = row_loss(y, p, task="classification")
    middle = np.abs(X["u"]) < 0.5
    assert rl.loss[middle].mean() > 2 * rl.loss[~middle].mean()  # raw loss would flag it
    search = find_weak_segments(X, y, p, task="classification", categorical=["g"],
                                options=SegmentOptions(min_support=80))
    assert search.segments == ()


# ---- planted defects and clean controls ----------------------------------------------------------------

def test_unlearned_district_is_a_weak_segment():
    train, test = district_data(2000, 10), district_data(2000, 11)
    model = IgnoresDistrict(train)
    result = run_check(WeakSegmentsCheck, model, test=test, train=train, target="y",
                       features=["x1", "x2", "district"], task="regression")
    assert result.findings
    top = result.findings[0]
    assert top.features == ("district",) and top.groups == (("district", "d0"),)
    assert top.severity.value == "high"  # ~7% of rows with MAE several times the overall
    # numbers against a direct pandas computation
    err = (test["y"] - model.predict(test)).abs()
    by = err.groupby(test["district"]).mean()
    assert top.metrics["mae"] == pytest.approx(by["d0"])
    assert top.metrics["mae_overall"] == pytest.approx(err.mean())
    assert top.metrics["share"] == pytest.approx((test["district"] == "d0").mean())
    assert top.metrics["share_train"] == pytest.approx((train["district"] == "d0").mean())
    # nested pairs inside district = d0 add nothing and are not reported
    assert not [f for f in result.findings if "district" in f.features and len(f.features) > 1]
    assert [fg.name for fg in result.evidence.figures] == ["weak_segments"]


def test_rare_in_train_flipped_region_found_with_underrepresentation():
    train, test = region_data(2000, 0.01, 1), region_data(2000, 0.15, 2)
    model = pipe(LogisticRegression(max_iter=1000), ["region"]).fit(train[["x", "z", "region"]], train["y"])
    result = run_check(WeakSegmentsCheck, model, test=test, train=train, target="y")
    top = result.findings[0]
    assert top.groups == (("region", "R"),) and top.severity.value == "high"
    assert top.metrics["share_train"] < 0.02 and top.metrics["share"] > 0.1
    assert "under-represented" in top.summary
    assert any("representative training data" in r for r in top.remediation)
    seg = test["region"] == "R"
    acc = ((model.predict_proba(test[["x", "z", "region"]])[:, 1] >= 0.5) == test["y"])[seg].mean()
    assert top.metrics["accuracy"] == pytest.approx(acc)
    row = result.evidence.tables[0].records()[0]
    assert row["segment"] == "region = R" and row["auc"] < 0.5


@pytest.mark.parametrize("classification", [False, True])
def test_clean_model_has_no_weak_segments(classification):
    train, test = clean_data(3000, 20, classification), clean_data(3000, 21, classification)
    est = LogisticRegression(max_iter=1000) if classification else LinearRegression()
    model = pipe(est, ["region"]).fit(train[["x", "z", "w", "region"]], train["y"])
    result = run_check(WeakSegmentsCheck, model, test=test, train=train, target="y")
    assert result.findings == ()
    assert result.evidence.metrics["segments_tested"] > 50
    assert any("tested" in n for n in result.evidence.notes)


def test_pure_interaction_is_found_as_a_pair():
    rng = np.random.default_rng(5)
    n = 4000
    X = pd.DataFrame({"a": rng.uniform(0, 1, n), "b": rng.uniform(0, 1, n), "c": rng.normal(size=n)})
    y = X["c"].to_numpy() + rng.normal(scale=0.5, size=n)
    pred = X["c"].to_numpy().copy()
    cell = (X["a"] > 2 / 3) & (X["b"] < 1 / 3)
    y[cell.to_numpy()] += rng.choice([-3.0, 3.0], cell.sum())  # large errors only in the corner
    search = find_weak_segments(X, y, pred, task="regression", categorical=[],
                                options=SegmentOptions(min_support=80))
    top = search.segments[0]
    assert set(top.features) == {"a", "b"} and " & " in top.definition


def test_coding_of_a_spike_at_the_minimum():
    """Mostly zeros with a long tail (like capital gains): every quantile edge sits at zero."""
    from auditor.analysis.segments import fit_coding

    values = pd.Series([0.0] * 95 + list(np.arange(1, 11) * 1000.0))
    coding = fit_coding(values, feature="gain", categorical=False, n_bins=5)
    assert coding.kind == "binned" and len(coding.edges) == 1
    assert coding.labels[0] == "gain < 1,000" or coding.labels[0].startswith("gain < 1")
