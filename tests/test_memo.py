"""RowMemo: each distinct row scored once, outputs identical to scoring every row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditor.analysis.adversarial.scoring import Scorer
from auditor.analysis.importance import FeatureCoder, shap_importance
from auditor.analysis.memo import RowMemo


def _model(sent: list[int]):
    def score(K: np.ndarray, positions: np.ndarray) -> np.ndarray:
        sent.append(len(positions))
        rows = K[positions]
        return np.column_stack([rows.sum(axis=1), rows[:, 0] * 2.0])
    return score


def test_repeats_within_and_across_calls_are_scored_once():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 3, size=(40, 3)).astype(float)  # many repeats among 40 rows of 27 possible
    sent: list[int] = []
    memo = RowMemo()
    model = _model(sent)
    out1 = memo(base, lambda p: model(base, p))
    expected = _model([])(base, np.arange(len(base)))
    np.testing.assert_array_equal(out1, expected)
    n_distinct = len(np.unique(base, axis=0))
    assert sent[0] == n_distinct < len(base)
    again = base[::-1].copy()
    out2 = memo(again, lambda p: model(again, p))
    np.testing.assert_array_equal(out2, expected[::-1])
    assert len(sent) == 1  # nothing new: no call at all
    assert memo.asked == 80 and memo.scored == n_distinct


def test_nan_rows_and_signed_zero_are_told_apart_only_by_their_bits():
    K = np.array([[np.nan, 1.0], [np.nan, 1.0], [0.0, 1.0], [-0.0, 1.0]])
    sent: list[int] = []
    out = RowMemo()(K, lambda p: (sent.append(len(p)), np.arange(len(p), dtype=float))[1])
    assert sent == [3]  # the two NaN rows share their bits; 0.0 and -0.0 do not
    assert out[0] == out[1] and out[2] != out[3]


def test_a_model_that_returns_the_wrong_number_of_rows_is_called_on_every_row():
    K = np.zeros((5, 2))
    calls: list[int] = []

    def broken(p: np.ndarray) -> np.ndarray:
        calls.append(len(p))
        return np.zeros(len(p) + 1)

    out = RowMemo()(K, broken)
    assert calls == [1, 5] and len(out) == 6  # the caller judges the call as without a memo


def test_the_cap_stops_keeping_rows_but_still_answers_right():
    memo = RowMemo(max_rows=3)
    K = np.arange(10, dtype=float).reshape(-1, 1)
    out = memo(K, lambda p: K[p, 0] * 10)
    np.testing.assert_array_equal(out, K[:, 0] * 10)
    assert len(memo) == 3
    out = memo(K, lambda p: K[p, 0] * 10)
    np.testing.assert_array_equal(out, K[:, 0] * 10)
    assert memo.scored == 10 + 7


def test_shap_values_equal_without_and_with_the_memo_and_fewer_rows_are_scored():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.integers(0, 2, 60), "b": rng.choice(["x", "y"], 60), "c": rng.normal(size=60)})
    w = {"x": 0.3, "y": -0.7}

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return 1.5 * frame["a"].to_numpy() + frame["b"].map(w).to_numpy() + np.tanh(frame["c"].to_numpy())

    coder = FeatureCoder.fit([X], list(X.columns), ["b"])
    res = shap_importance(predict, X.iloc[:8], X.iloc[20:40], coder=coder, seed=3)
    # additivity: the values of each row add up to its output minus the base value
    np.testing.assert_allclose(res.values.sum(axis=1) + res.base_values, res.outputs, atol=1e-9)
    # exact for an additive model: the contribution of 'a' is 1.5 (a - mean a over the background)
    bg_a = X["a"].iloc[20:40].mean()
    np.testing.assert_allclose(res.values[:, 0], 1.5 * (X["a"].iloc[:8].to_numpy() - bg_a), atol=1e-9)
    assert 0 < res.n_scored_rows < res.n_model_rows  # binary 'a' and 'b' repeat masked rows


def test_the_adversarial_scorer_counts_queries_as_asked_and_scores_repeats_once():
    from auditor.analysis.adversarial import plausible_axes
    from auditor.analysis.adversarial.space import Space
    from auditor.analysis.domain import feature_domains

    X = pd.DataFrame({"u": np.linspace(0, 1, 6), "v": np.arange(6.0)})
    domains = feature_domains(X, categorical=(), features=("u", "v"))
    axes = plausible_axes(domains, ["u", "v"], margin=0.0, mass_share=0.5)
    space = Space(X, axes)
    seen: list[int] = []

    def fn(frame: pd.DataFrame) -> np.ndarray:
        seen.append(len(frame))
        return frame["u"].to_numpy() + 0.01 * frame["v"].to_numpy()

    scorer = Scorer(fn, 1_000, space)
    rows = np.array([0, 1, 1, 0, 2])
    V = space.V0[rows].copy()
    first = scorer(rows, V)
    second = scorer(rows, V)
    np.testing.assert_array_equal(first.s, second.s)
    np.testing.assert_allclose(first.s, X["u"].to_numpy()[rows] + 0.01 * X["v"].to_numpy()[rows])
    assert scorer.rows == 10  # the budget counts what was asked
    assert scorer.scored == 3 and seen == [3]  # the model saw rows 0, 1, 2 once
