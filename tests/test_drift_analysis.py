"""The drift, leakage and quality numerics against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, norm, wasserstein_distance

from auditor.analysis.drift import (
    MISSING_BIN,
    categorical_bins,
    categorical_drift,
    frame_drift,
    numeric_bins,
    numeric_drift,
    psi,
    quantile_edges,
)
from auditor.analysis.leakage import has_id_name, id_like_stats, name_tokens, single_feature_power
from auditor.analysis.quality import (
    compare_schema,
    duplicated_rows,
    label_balance,
    numeric_parse_share,
    profile_column,
    row_overlap,
    type_kind,
)


def hand_psi(r: list[float], c: list[float], eps: float = 1e-4) -> float:
    total = 0.0
    for a, b in zip(r, c):
        a, b = max(a, eps), max(b, eps)
        total += (b - a) * math.log(b / a)
    return total


# ---- PSI ---------------------------------------------------------------------------------------

def test_psi_matches_hand_computation():
    r = [0.25, 0.25, 0.5]
    c = [0.5, 0.25, 0.25]
    # (0.5-0.25) ln 2 + 0 + (0.25-0.5) ln(1/2) = 0.5 ln 2
    assert psi(r, c) == pytest.approx(0.5 * math.log(2), rel=1e-12)
    assert psi(r, r) == 0.0
    assert psi(r, c) == pytest.approx(psi(c, r))  # symmetric


def test_psi_floors_empty_bins_at_epsilon():
    r = [0.5, 0.5, 0.0]
    c = [0.4, 0.4, 0.2]
    expected = 2 * (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert psi(r, c, epsilon=1e-4) == pytest.approx(expected, rel=1e-12)
    assert math.isfinite(psi([1.0, 0.0], [0.0, 1.0]))


def test_psi_of_shifted_normal_matches_theory():
    """Ten train deciles of N(0, 1), test N(1, 1): the shares are known in closed form."""
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1, 200_000)
    cur = rng.normal(1, 1, 200_000)
    z = norm.ppf(np.arange(1, 10) / 10)
    cdf = np.concatenate([[0.0], norm.cdf(z - 1.0), [1.0]])
    theory = hand_psi([0.1] * 10, list(np.diff(cdf)))
    d = numeric_drift(ref, cur, n_bins=10)
    assert d.psi == pytest.approx(theory, rel=0.03)
    assert d.psi > 0.25


def test_numeric_drift_psi_equals_psi_from_explicit_histogram():
    rng = np.random.default_rng(2)
    ref = rng.gamma(2.0, 3.0, 1000)
    cur = rng.gamma(2.5, 3.0, 700)
    edges = np.quantile(ref, np.arange(1, 10) / 10)
    full = np.concatenate([[-np.inf], edges, [np.inf]])
    # right-closed bins (a, b]: count with pandas.cut, independent of the searchsorted code
    rc = pd.Series(pd.cut(ref, full, right=True)).value_counts(sort=False).to_numpy() / ref.size
    cc = pd.Series(pd.cut(cur, full, right=True)).value_counts(sort=False).to_numpy() / cur.size
    d = numeric_drift(ref, cur, n_bins=10)
    assert d.psi == pytest.approx(hand_psi(list(rc) + [0.0], list(cc) + [0.0]), rel=1e-10)
    assert d.js_distance == pytest.approx(jensenshannon(rc, cc, base=2), rel=1e-10)


def test_ks_and_wasserstein_equal_scipy():
    rng = np.random.default_rng(3)
    ref = rng.normal(10, 2, 500)
    cur = rng.normal(11, 2, 400)
    d = numeric_drift(ref, cur)
    ks = ks_2samp(ref, cur)
    assert d.ks_statistic == pytest.approx(ks.statistic)
    assert d.p_value == pytest.approx(ks.pvalue)
    assert d.wasserstein == pytest.approx(wasserstein_distance(ref, cur))
    assert d.wasserstein_norm == pytest.approx(wasserstein_distance(ref, cur) / np.std(ref, ddof=1))
    assert d.wasserstein_norm == pytest.approx(0.5, abs=0.15)  # a shift of half a standard deviation


def test_identical_samples_have_no_drift():
    x = np.random.default_rng(4).normal(size=300)
    d = numeric_drift(x, x.copy())
    assert d.psi == 0.0 and d.js_distance == 0.0 and d.ks_statistic == 0.0 and d.p_value == 1.0


# ---- bins --------------------------------------------------------------------------------------

def test_ties_merge_quantile_edges_and_every_value_is_counted():
    ref = np.array([0.0] * 700 + list(np.arange(1, 301, dtype=float)))
    edges = quantile_edges(ref, n_bins=10)
    assert np.all(np.diff(edges) > 0) and edges[0] == 0.0
    b = numeric_bins(ref, ref, n_bins=10)
    assert b.reference.sum() == ref.size
    assert b.reference[0] == 700  # all zeros in the first (right-closed) bin
    assert len(b.labels) == edges.size + 2  # value bins + missing bin


def test_few_distinct_values_get_one_bin_each():
    ref = np.array([1, 2, 2, 3, 3, 3, 4, 4, 4, 4], dtype=float)
    cur = np.array([1, 1, 1, 4], dtype=float)
    b = numeric_bins(ref, cur, n_bins=10)
    assert b.reference.tolist() == [1, 2, 3, 4, 0]
    assert b.current.tolist() == [3, 0, 0, 1, 0]
    assert b.labels[-1] == MISSING_BIN


def test_values_outside_the_training_range_land_in_outer_bins():
    ref = np.arange(100, dtype=float)
    b = numeric_bins(ref, np.array([-50.0, 500.0]), n_bins=10)
    assert b.current[0] == 1 and b.current[-2] == 1


def test_missing_values_are_their_own_bin_and_drive_drift():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=1000)
    cur = rng.normal(size=1000)
    cur[:200] = np.nan
    d = numeric_drift(ref, cur)
    assert d.bins.current[-1] == 200 and d.bins.reference[-1] == 0
    assert d.missing_current == pytest.approx(0.2)
    # the missing bin alone contributes (0.2 - eps) ln(0.2 / eps)
    assert d.psi > (0.2 - 1e-4) * math.log(0.2 / 1e-4) * 0.9
    assert d.ks_pvalue > 1e-3  # the observed values did not move
    assert d.p_value < 1e-10  # ...but missingness did


def test_categorical_psi_unseen_levels_and_chi_square():
    ref = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    cur = pd.Series(["a"] * 30 + ["b"] * 30 + ["c"] * 20 + ["new"] * 20)
    d = categorical_drift(ref, cur)
    b = d.bins
    assert b.labels == ("a", "b", "c", "new", MISSING_BIN)
    assert b.reference.tolist() == [50, 30, 20, 0, 0]
    assert b.current.tolist() == [30, 30, 20, 20, 0]
    assert d.psi == pytest.approx(hand_psi([0.5, 0.3, 0.2, 0, 0], [0.3, 0.3, 0.2, 0.2, 0]), rel=1e-12)
    table = np.array([[50, 30, 20, 0], [30, 30, 20, 20]])
    assert d.p_value == pytest.approx(chi2_contingency(table, correction=False).pvalue)
    assert d.js_distance == pytest.approx(jensenshannon([0.5, 0.3, 0.2, 0, 0], [0.3, 0.3, 0.2, 0.2, 0], base=2))


def test_categorical_levels_compare_as_text():
    b = categorical_bins(pd.Series([1, 2, 2]), pd.Series(["1", "2", "2"]))
    assert b.reference.tolist() == b.current.tolist()


def test_disjoint_categories_have_js_distance_one():
    d = categorical_drift(pd.Series(["x"] * 10), pd.Series(["y"] * 10))
    assert d.js_distance == pytest.approx(1.0)


def test_frame_drift_compares_mixed_types_as_categorical():
    ref = pd.DataFrame({"a": [1.0, 2.0, 3.0] * 10, "b": ["x", "y", "z"] * 10})
    cur = pd.DataFrame({"a": ["1.0", "2.0", "3.0"] * 10, "b": ["x", "y", "z"] * 10})
    rep = frame_drift(ref, cur, columns=["a", "b"])
    assert rep.get("a").kind == "categorical" and rep.get("a").psi == 0.0
    assert rep.get("b").kind == "categorical"


# ---- quality and schema ------------------------------------------------------------------------

def test_duplicates_and_overlap_counts():
    base = pd.DataFrame({"x": np.arange(90), "y": np.arange(90) % 3})
    df = pd.concat([base, base.iloc[:10]], ignore_index=True)
    d = duplicated_rows(df, ["x", "y"])
    assert d.duplicated == 10 and d.share == pytest.approx(0.10)
    cur = pd.DataFrame({"x": np.r_[np.arange(30), np.arange(1000, 1070)].astype(float),
                        "y": np.r_[np.arange(30) % 3, np.zeros(70)]})
    ov = row_overlap(base, cur, ["x", "y"])  # int vs float storage still matches
    assert ov.shared == 30 and ov.share == pytest.approx(0.30) and ov.natural_share == 0.0


def test_type_kinds_and_numeric_text():
    assert type_kind(pd.Series([1, 2])) == "numeric"
    assert type_kind(pd.Series(["a", "b"])) == "text"
    assert type_kind(pd.Series([True, False])) == "boolean"
    assert numeric_parse_share(pd.Series(["1.5", "2", " 3 ", "n/a"])) == pytest.approx(0.75)
    assert numeric_parse_share(pd.Series(["02134", "00501"])) == 0.0  # codes with leading zeros


def test_schema_comparison_finds_unseen_levels_and_kind_mismatch():
    tr = pd.DataFrame({"c": ["a", "b"] * 50, "n": np.arange(100.0), "only_train": 1})
    te = pd.DataFrame({"c": ["a"] * 80 + ["z"] * 15 + ["w"] * 5, "n": [str(i) for i in range(100)]})
    cmp = compare_schema(te, tr, categorical=["c"])
    assert cmp.only_in_train == ("only_train",) and cmp.only_in_test == ()
    (u,) = cmp.unseen
    assert u.levels == ("z", "w") and u.share == pytest.approx(0.20)
    n = next(c for c in cmp.columns if c.column == "n")
    assert n.kind_mismatch and n.numeric_text_share == 1.0


def test_profile_and_label_balance():
    p = profile_column(pd.Series(["a", None, "b", "b"]), column="c")
    assert p.missing == 1 and p.unique == 2 and p.examples == ("b", "a")
    lb = label_balance(pd.Series([0] * 95 + [1] * 5))
    assert lb.minority_class == "1" and lb.minority_share == pytest.approx(0.05)


# ---- leakage -----------------------------------------------------------------------------------

def test_name_tokens_and_id_names():
    assert name_tokens("customerID") == ("customer", "id")
    assert has_id_name("row_index") and has_id_name("CustomerId") and has_id_name("uuid")
    assert not has_id_name("paid_amount") and not has_id_name("valid")


def test_id_like_stats():
    rng = np.random.default_rng(6)
    tr = pd.DataFrame({"seq": np.arange(700), "amount": rng.integers(250, 20000, 700),
                       "noise": rng.normal(size=700), "code": [f"{i:08x}" for i in rng.permutation(10**6)[:700]]})
    te = pd.DataFrame({"seq": np.arange(700, 1000), "amount": rng.integers(250, 20000, 300),
                       "noise": rng.normal(size=300), "code": [f"{i:08x}" for i in rng.permutation(10**6)[:300]]})
    stats = {s.feature: s for s in id_like_stats([te, tr], ["seq", "amount", "noise", "code"])}
    assert stats["seq"].value_kind == "integer" and stats["seq"].unique_share == 1.0
    assert stats["seq"].density == pytest.approx(1.0)
    assert stats["amount"].density < 0.1
    assert stats["noise"].value_kind == "float"
    assert stats["code"].value_kind == "text" and stats["code"].unique_share == 1.0


def test_single_feature_power_finds_a_target_copy_and_not_noise():
    rng = np.random.default_rng(7)
    n = 600
    y = rng.integers(0, 2, n)
    X = pd.DataFrame({"copy": y + rng.normal(0, 0.05, n), "noise": rng.normal(size=n),
                      "label": np.where(y == 1, "yes", "no"), "id": np.arange(n)})
    Xtr, Xte, ytr, yte = X.iloc[:400], X.iloc[400:], y[:400], y[400:]
    p = {f.feature: f for f in single_feature_power(Xte, yte, X_train=Xtr, y_train=ytr, task="classification")}
    assert p["copy"].value == pytest.approx(1.0) and p["label"].value == pytest.approx(1.0)
    assert abs(p["noise"].value - 0.5) < 0.12 and abs(p["id"].value - 0.5) < 0.12
    assert p["label"].kind == "categorical" and p["copy"].method == "train/test"
    cv = {f.feature: f for f in single_feature_power(X, y, task="classification", seed=0)}
    assert cv["copy"].value > 0.99 and cv["copy"].method == "5-fold CV on test"
    assert abs(cv["noise"].value - 0.5) < 0.1


def test_single_feature_power_regression_r2():
    rng = np.random.default_rng(8)
    x = rng.uniform(0, 10, 800)
    y = 3 * x + rng.normal(0, 0.3, 800)
    X = pd.DataFrame({"x": x, "noise": rng.normal(size=800)})
    p = {f.feature: f for f in single_feature_power(X.iloc[500:], y[500:], X_train=X.iloc[:500], y_train=y[:500],
                                                    task="regression")}
    assert p["x"].metric == "r2" and p["x"].value > 0.95
    assert p["noise"].value < 0.05
