"""Analysis layer: metrics, bootstrap, calibration and the SHAP coder, each against a direct
computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn import metrics as skm

from auditor.analysis import metrics as M
from auditor.analysis.calibration import (
    calibration_analysis,
    equal_count_bins,
    expected_calibration_error,
    miscalibration_direction,
)
from auditor.analysis.importance import FeatureCoder, min_max_evals, plan_budget, shap_importance


def _binary(n: int = 400, seed: int = 0, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < expit(1.5 * x)).astype(int)
    s = expit(1.2 * x + rng.normal(scale=0.5, size=n))
    if ties:
        s = np.round(s, 1)
    return y, s


# ---- classification metrics ---------------------------------------------------------------------

def test_classification_point_estimates_equal_sklearn() -> None:
    y, s = _binary()
    m = M.classification_metrics(y, s, threshold=0.4, n_resamples=50, rng=1)
    pred = (s >= 0.4).astype(int)
    assert m.auc.value == pytest.approx(skm.roc_auc_score(y, s))
    assert m.accuracy.value == pytest.approx(skm.accuracy_score(y, pred))
    assert m.precision.value == pytest.approx(skm.precision_score(y, pred))
    assert m.recall.value == pytest.approx(skm.recall_score(y, pred))
    assert m.f1.value == pytest.approx(skm.f1_score(y, pred))
    assert m.log_loss.value == pytest.approx(skm.log_loss(y, s))
    assert m.brier.value == pytest.approx(skm.brier_score_loss(y, s))
    assert m.confusion == tuple(map(tuple, skm.confusion_matrix(y, pred).tolist()))
    assert m.base_rate == pytest.approx(y.mean())
    assert m.majority_accuracy.value == pytest.approx(max(y.mean(), 1 - y.mean()))
    assert m.predicted_positive_share == pytest.approx(pred.mean())


def test_bootstrap_intervals_contain_point_estimates_and_are_deterministic() -> None:
    y, s = _binary(seed=3)
    a = M.classification_metrics(y, s, n_resamples=200, rng=7)
    b = M.classification_metrics(y, s, n_resamples=200, rng=7)
    c = M.classification_metrics(y, s, n_resamples=200, rng=8)
    for name in ("auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier"):
        e = getattr(a, name)
        assert e.low <= e.value <= e.high, name
        assert e.high - e.low > 0, name
        assert e == getattr(b, name)
    assert a.auc != c.auc


@pytest.mark.parametrize("ties", [False, True])
def test_bootstrap_resample_metrics_equal_sklearn_on_the_resampled_rows(ties: bool) -> None:
    """The count-weighted formulas reproduce sklearn on the rows of the index matrix."""
    y, s = _binary(n=150, seed=5, ties=ties)
    rng = np.random.default_rng(11)
    idx = np.random.default_rng(11).integers(0, len(y), size=(3, len(y)))
    counts = next(M.bootstrap_counts(len(y), 3, rng))
    assert np.array_equal(counts.sum(axis=1), np.full(3, len(y)))
    aucs = M.weighted_auc(y, s, counts)
    draws = M._classification_draws(y, s, threshold=0.5, n_resamples=3, rng=np.random.default_rng(11))
    for b in range(3):
        yb, sb = y[idx[b]], s[idx[b]]
        assert np.bincount(idx[b], minlength=len(y)) == pytest.approx(counts[b])
        assert aucs[b] == pytest.approx(skm.roc_auc_score(yb, sb))
        assert draws["auc"][b] == pytest.approx(skm.roc_auc_score(yb, sb))
        assert draws["accuracy"][b] == pytest.approx(skm.accuracy_score(yb, sb >= 0.5))
        assert draws["f1"][b] == pytest.approx(skm.f1_score(yb, sb >= 0.5))
        assert draws["log_loss"][b] == pytest.approx(skm.log_loss(yb, sb, labels=[0, 1]))


def test_bootstrap_chunks_give_all_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(M, "_CHUNK_CELLS", 1000)
    chunks = list(M.bootstrap_counts(300, 25, np.random.default_rng(0)))
    assert len(chunks) > 1
    assert sum(len(c) for c in chunks) == 25


def test_random_scores_have_auc_interval_around_half() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1000)
    m = M.classification_metrics(y, rng.random(1000), n_resamples=200, rng=1)
    assert m.auc.low < 0.5 < m.auc.high


# ---- regression metrics ---------------------------------------------------------------------------

def test_regression_metrics_equal_sklearn_and_resamples() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=300)
    p = y + rng.normal(scale=0.7, size=300)
    m = M.regression_metrics(y, p, n_resamples=100, rng=3)
    assert m.rmse.value == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert m.mae.value == pytest.approx(skm.mean_absolute_error(y, p))
    assert m.r2.value == pytest.approx(skm.r2_score(y, p))
    for e in (m.rmse, m.mae, m.r2):
        assert e.low <= e.value <= e.high
    idx = np.random.default_rng(4).integers(0, 300, size=(2, 300))
    d = M._regression_draws(y, p, n_resamples=2, rng=np.random.default_rng(4))
    for b in range(2):
        assert d["r2"][b] == pytest.approx(skm.r2_score(y[idx[b]], p[idx[b]]))
        assert d["rmse"][b] == pytest.approx(np.sqrt(skm.mean_squared_error(y[idx[b]], p[idx[b]])))


def test_train_test_gap_orientation() -> None:
    y_tr, s_tr = _binary(n=500, seed=1)
    s_tr = np.where(y_tr == 1, 0.9, 0.1) * 0.7 + s_tr * 0.3  # much better on "train"
    y_te, s_te = _binary(n=500, seed=2)
    g = M.train_test_gap(y_tr, s_tr, y_te, s_te, task="classification", n_resamples=100, rng=0)
    auc = g.get("auc")
    assert auc.gap.value == pytest.approx(skm.roc_auc_score(y_tr, s_tr) - skm.roc_auc_score(y_te, s_te))
    assert auc.gap.low > 0
    assert g.get("log_loss").gap.value == pytest.approx(skm.log_loss(y_te, s_te) - skm.log_loss(y_tr, s_tr))
    same = M.train_test_gap(y_te, s_te, y_te, s_te, task="classification", n_resamples=100, rng=0)
    assert same.get("auc").gap.low < 0 < same.get("auc").gap.high


# ---- calibration ----------------------------------------------------------------------------------

def test_ece_on_a_hand_made_example() -> None:
    p = np.array([0.1] * 5 + [0.9] * 5)
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
    # bin 1: predicted 0.1, observed 0.2; bin 2: predicted 0.9, observed 0.8 -> 0.5*0.1 + 0.5*0.1
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.1)
    r = calibration_analysis(y, p, n_bins=2, n_resamples=20, rng=0)
    assert r.ece == pytest.approx(0.1)
    # p constant within bins: the binned Brier decomposition is exact
    assert r.brier == pytest.approx(r.reliability - r.resolution + r.uncertainty)
    assert r.reliability == pytest.approx(0.01)


def test_ece_against_a_direct_loop() -> None:
    y, s = _binary(n=203, seed=9)
    order = np.argsort(s, kind="mergesort")
    direct = sum(len(b) / len(s) * abs(s[b].mean() - y[b].mean()) for b in np.array_split(order, 10))
    assert expected_calibration_error(y, s, n_bins=10) == pytest.approx(direct)
    bins = equal_count_bins(s, 10)
    assert set(np.bincount(bins)) <= {20, 21}
    assert all(s[bins == k].max() <= s[bins == k + 1].min() for k in range(9))


def test_calibrated_scores_are_not_significant_and_distorted_ones_are() -> None:
    rng = np.random.default_rng(0)
    p = expit(rng.normal(scale=1.5, size=3000))
    y = (rng.random(3000) < p).astype(int)
    ok = calibration_analysis(y, p, n_resamples=200, rng=1)
    assert ok.p_value > 0.01
    assert abs(ok.slope - 1) < 0.2
    over = calibration_analysis(y, expit(3 * logit(p)), n_resamples=200, rng=1)
    assert over.p_value < 0.01 and over.ece > 0.05
    assert over.slope < 0.5 and over.direction == "over-confident"
    under = calibration_analysis(y, expit(logit(p) / 3), n_resamples=200, rng=1)
    assert under.p_value < 0.01 and under.direction == "under-confident"
    assert np.all(ok.band_low <= ok.band_high)


def test_miscalibration_direction() -> None:
    assert miscalibration_direction(0.5, 0.3, 0.3) == "over-confident"
    assert miscalibration_direction(2.0, 0.3, 0.3) == "under-confident"
    assert miscalibration_direction(1.0, 0.4, 0.3) == "too high"
    assert miscalibration_direction(1.0, 0.2, 0.3) == "too low"
    assert miscalibration_direction(1.0, 0.3, 0.3) == "none"


# ---- SHAP coder and budget ------------------------------------------------------------------------

def _mixed_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "s": pd.Series(["a", "b", None, "c"], dtype="str"),
        "o": pd.Series(["x", None, "y", "x"], dtype=object),
        "i": np.array([1, 2, 3, 4]),
        "f": [0.5, np.nan, 1.0, 2.0],
        "b": [True, False, True, True],
        "c": pd.Categorical(["u", "v", "u", None]),
        "n": pd.array([1, None, 3, 4], dtype="Int64"),
    })


def test_feature_coder_round_trip_keeps_values_and_dtypes() -> None:
    df = _mixed_frame()
    coder = FeatureCoder.fit([df], list(df.columns), ["s", "o", "b", "c"])
    assert coder.categorical == ("s", "o", "b", "c")
    Z = coder.encode(df)
    assert Z.dtype == float and Z[2, 0] == -1  # missing category -> -1
    back = coder.decode(Z)
    pd.testing.assert_frame_equal(back, df)


def test_feature_coder_unknown_levels_decode_to_missing() -> None:
    df = _mixed_frame()
    coder = FeatureCoder.fit([df], list(df.columns), ["s", "o", "b", "c"])
    new = df.copy()
    new.loc[0, "s"] = "never seen"
    assert coder.encode(new)[0, 0] == -1
    assert pd.isna(coder.decode(coder.encode(new)).loc[0, "s"])


def test_plan_budget_caps_large_models() -> None:
    assert min_max_evals(9) == 19
    small = plan_budget(9, rows=200, background=50)
    assert (small.rows, small.background, small.max_evals, small.capped) == (200, 50, 19, False)
    big = plan_budget(400, rows=200, background=50, max_model_rows=1_000_000)
    assert big.capped and big.max_evals == 801
    assert big.model_rows <= 1_000_000 and big.rows >= 20 and big.background >= 10


def test_shap_of_a_linear_function_is_exact() -> None:
    """For f = w.x with independent features, SHAP_j = w_j (x_j - mean of background x_j)."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(20, 3)), columns=["a", "b", "c"])
    bg = pd.DataFrame(rng.normal(size=(15, 3)), columns=["a", "b", "c"])
    w = np.array([2.0, -1.0, 0.5])
    coder = FeatureCoder.fit([X], list(X.columns), [])
    r = shap_importance(lambda d: d.to_numpy() @ w, X, bg, coder=coder, seed=0)
    expected = (X.to_numpy() - bg.to_numpy().mean(axis=0)) * w
    np.testing.assert_allclose(r.values, expected, atol=1e-10)
    np.testing.assert_allclose(r.base_values + r.values.sum(axis=1), r.outputs, atol=1e-10)
    assert r.ranking()[0] == 0
    state = np.random.get_state()[1].copy()
    shap_importance(lambda d: d.to_numpy() @ w, X, bg, coder=coder, seed=0)
    assert np.array_equal(np.random.get_state()[1], state)  # global numpy state restored


def test_pairwise_game_matches_brute_force_shapley_values() -> None:
    """With only pairwise interactions, one antithetic permutation pair is exact, so shap's
    permutation values must equal the Shapley values enumerated over all coalitions."""
    from itertools import combinations
    from math import factorial

    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(6, 4)), columns=list("abcd"))
    bg = pd.DataFrame(rng.normal(size=(12, 4)), columns=list("abcd"))

    def f(d: pd.DataFrame) -> np.ndarray:
        v = d.to_numpy()
        return np.tanh(v[:, 0] * v[:, 1]) + v[:, 2] ** 2 - v[:, 3]

    def value(x: np.ndarray, S: tuple[int, ...]) -> float:
        rows = bg.to_numpy().copy()
        rows[:, list(S)] = x[list(S)]
        return float(f(pd.DataFrame(rows, columns=X.columns)).mean())

    M = 4
    exact = np.zeros((len(X), M))
    for i, x in enumerate(X.to_numpy()):
        for j in range(M):
            others = [k for k in range(M) if k != j]
            for size in range(M):
                for S in combinations(others, size):
                    weight = factorial(size) * factorial(M - size - 1) / factorial(M)
                    exact[i, j] += weight * (value(x, tuple(sorted(S + (j,)))) - value(x, S))
    coder = FeatureCoder.fit([X], list(X.columns), [])
    ours = shap_importance(f, X, bg, coder=coder, seed=5)
    np.testing.assert_allclose(ours.values, exact, atol=1e-10)


def test_missing_numeric_values_are_masked_by_value() -> None:
    """NaN in explained or background rows must not leak into other rows' masked inputs."""
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(10, 3)), columns=["a", "b", "c"])
    bg = pd.DataFrame(rng.normal(size=(8, 3)), columns=["a", "b", "c"])
    X.iloc[::3, 0] = np.nan
    bg.iloc[::2, 1] = np.nan
    w = np.array([1.0, 2.0, -1.0])
    coder = FeatureCoder.fit([X, bg], list(X.columns), [])
    r = shap_importance(lambda d: np.nan_to_num(d.to_numpy()) @ w, X, bg, coder=coder, seed=0)
    expected = (np.nan_to_num(X.to_numpy()) - np.nan_to_num(bg.to_numpy()).mean(axis=0)) * w
    np.testing.assert_allclose(r.values, expected, atol=1e-10)


# ---- k classes ------------------------------------------------------------------------------------

def _multiclass(n: int = 300, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def test_multiclass_point_estimates_equal_sklearn() -> None:
    y, p = _multiclass(k=4, seed=1)
    m = M.multiclass_metrics(y, p, n_resamples=50, rng=0)
    pred = p.argmax(axis=1)
    assert m.accuracy.value == pytest.approx(skm.accuracy_score(y, pred))
    assert m.balanced_accuracy.value == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m.macro_f1.value == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m.weighted_f1.value == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m.log_loss.value == pytest.approx(skm.log_loss(y, p))
    # Brier: mean over rows of the sum over classes of squared errors (range 0..2)
    assert m.brier.value == pytest.approx(np.mean(((np.eye(4)[y] - p) ** 2).sum(axis=1)))
    assert m.auc_ovr_macro.value == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert np.array_equal(m.confusion, skm.confusion_matrix(y, pred))
    assert m.confusion_rate == pytest.approx(m.confusion / m.confusion.sum(axis=1, keepdims=True))
    assert m.recall == pytest.approx(skm.recall_score(y, pred, average=None))
    assert m.auc_ovr == pytest.approx([skm.roc_auc_score(y == c, p[:, c]) for c in range(4)])
    assert m.majority_accuracy.value == pytest.approx(np.bincount(y).max() / len(y))
    for e in (m.accuracy, m.balanced_accuracy, m.macro_f1, m.weighted_f1, m.log_loss, m.brier, m.auc_ovr_macro):
        assert e.low <= e.value <= e.high
    assert np.all(m.confusion_rate_low <= m.confusion_rate + 1e-12)
    assert np.all(m.confusion_rate <= m.confusion_rate_high + 1e-12)


def test_multiclass_resamples_equal_sklearn_on_the_resampled_rows() -> None:
    y, p = _multiclass(n=200, seed=2)
    idx = np.random.default_rng(11).integers(0, len(y), size=(3, len(y)))
    d = M._multiclass_draws(y, p, n_resamples=3, rng=np.random.default_rng(11))
    for b in range(3):
        yb, pb = y[idx[b]], p[idx[b]]
        pred = pb.argmax(axis=1)
        assert d["accuracy"][b] == pytest.approx(skm.accuracy_score(yb, pred))
        assert d["balanced_accuracy"][b] == pytest.approx(skm.balanced_accuracy_score(yb, pred))
        assert d["macro_f1"][b] == pytest.approx(skm.f1_score(yb, pred, average="macro"))
        assert d["weighted_f1"][b] == pytest.approx(skm.f1_score(yb, pred, average="weighted"))
        assert d["log_loss"][b] == pytest.approx(skm.log_loss(yb, pb, labels=[0, 1, 2]))
        assert d["brier"][b] == pytest.approx(skm.brier_score_loss(yb, pb, labels=[0, 1, 2]))
        assert d["auc_ovr_macro"][b] == pytest.approx(skm.roc_auc_score(yb, pb, multi_class="ovr"))
        cm = skm.confusion_matrix(yb, pred, labels=[0, 1, 2])
        assert d["confusion_rate"][b] == pytest.approx(cm / cm.sum(axis=1, keepdims=True))


def test_multiclass_train_test_gap_orientation() -> None:
    y_te, p_te = _multiclass(n=400, seed=3)
    y_tr = y_te.copy()
    p_tr = 0.7 * np.eye(3)[y_tr] + 0.3 * p_te  # much better on "train"
    g = M.train_test_gap(y_tr, p_tr, y_te, p_te, task="multiclass", n_resamples=100, rng=0)
    auc = g.get("auc_ovr_macro")
    assert auc.gap.value == pytest.approx(skm.roc_auc_score(y_tr, p_tr, multi_class="ovr")
                                          - skm.roc_auc_score(y_te, p_te, multi_class="ovr"))
    assert auc.gap.low > 0
    assert g.get("log_loss").gap.value == pytest.approx(skm.log_loss(y_te, p_te) - skm.log_loss(y_tr, p_tr))
    acc_gap = np.mean(p_tr.argmax(1) == y_tr) - np.mean(p_te.argmax(1) == y_te)
    assert g.get("accuracy").gap.value == pytest.approx(acc_gap)
    same = M.train_test_gap(y_te, p_te, y_te, p_te, task="multiclass", n_resamples=100, rng=0)
    assert same.get("auc_ovr_macro").gap.low < 0 < same.get("auc_ovr_macro").gap.high


def test_top_label_calibration_is_the_binary_analysis_of_confidence_and_correctness() -> None:
    from auditor.analysis.calibration import top_label_calibration

    rng = np.random.default_rng(4)
    n, k = 3000, 3
    p = np.exp(rng.normal(scale=1.5, size=(n, k)))
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)  # drawn from p: calibrated
    ok = top_label_calibration(y, p, n_resamples=200, rng=1)
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(int)
    assert ok.ece == pytest.approx(expected_calibration_error(correct, conf))
    assert ok.mean_predicted == pytest.approx(conf.mean()) and ok.observed_rate == pytest.approx(correct.mean())
    assert ok.p_value > 0.01
    sharp = np.exp(3 * np.log(p))
    sharp /= sharp.sum(axis=1, keepdims=True)
    over = top_label_calibration(y, sharp, n_resamples=200, rng=1)
    assert over.p_value < 0.01 and over.ece > 0.05 and over.mean_predicted > over.observed_rate


def test_the_one_wilson_interval_matches_the_formula() -> None:
    import math

    from auditor.analysis.intervals import wilson

    for k, n in ((0, 10), (3, 50), (49, 50), (500, 1000)):
        z = 1.959963984540054
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        lo, hi = wilson(k, n)
        assert lo == pytest.approx(max(0.0, centre - half), abs=1e-9)
        assert hi == pytest.approx(min(1.0, centre + half), abs=1e-9)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_shap_output_builder_is_numpy_and_agrees_with_shaps_own_loop() -> None:
    """auditor replaces shap's numba-compiled output builder (compiled anew in every process) by the
    same loop in numpy: installed, and equal to shap's loop (its pure-Python original) on single and
    multiple outputs, with and without the rows that vary."""
    from auditor.analysis.importance import _import_shap

    shap = _import_shap()
    mm = shap.utils._masked_model
    assert mm._build_fixed_output.__module__ == "auditor.analysis.importance"
    rng = np.random.default_rng(3)
    n_rows = 6
    for out_shape in ((), (3,)):
        num_varying = np.array([n_rows, 2, 0, 3, n_rows])
        batch = np.concatenate([[0], np.cumsum(num_varying)])
        varying = np.array([np.ones(n_rows, bool)] + [rng.permutation(np.arange(n_rows) < k) for k in (2, 0, 3)]
                           + [np.ones(n_rows, bool)])
        outputs = rng.normal(size=(int(batch[-1]),) + out_shape)
        ours = np.zeros((len(num_varying),) + out_shape)
        theirs = ours.copy()
        mm._build_fixed_output(ours, np.zeros((n_rows,) + out_shape), outputs, batch, varying, num_varying,
                               shap.links.identity, None)
        original = mm._build_fixed_single_output if not out_shape else mm._build_fixed_multi_output
        original.py_func(theirs, np.zeros((n_rows,) + out_shape), outputs, batch, varying, num_varying,
                         shap.links.identity.py_func, None)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
