"""benchmark.comparison on 3-class models: multinomial logistic regression and a k-class tree as
benchmarks, k-class metrics checked against scikit-learn, a planted weak model and clean controls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_check
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from test_multiclass_resid import CLASSES, wine_split

from auditor.analysis.benchmark import compare_paired, disagreement, fit_benchmarks
from auditor.checks.benchmark import BenchmarkCheck


def blobs(n: int, seed: int) -> pd.DataFrame:
    """Three classes, each told apart by a different feature (a by x, b by z, c by neither)."""
    rng = np.random.default_rng(seed)
    k = rng.choice(3, n)
    df = pd.DataFrame({"x": rng.normal(size=n) + 2.0 * (k == 0), "z": rng.normal(size=n) + 2.0 * (k == 1),
                       "u": rng.normal(size=n)})
    df["y"] = CLASSES[k]
    return df


class OnlyX:
    """A 3-class model that never learned z: its scores are a logistic regression on x alone."""

    def __init__(self, train: pd.DataFrame) -> None:
        self.lr = LogisticRegression(max_iter=2000).fit(train[["x"]], train["y"])
        self.classes_ = self.lr.classes_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.lr.predict_proba(X[["x"]])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def test_k_class_paired_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.choice(3, 400)
    A = rng.dirichlet([1, 1, 1], 400)
    A[np.arange(400), y] += 0.5
    A /= A.sum(axis=1, keepdims=True)
    B = rng.dirichlet([1, 1, 1], 400)
    c = compare_paired(y, A, B, task="classification", n_resamples=100, rng=1)
    assert c.primary.metric == "auc_ovr_macro"
    assert c.primary.model == pytest.approx(roc_auc_score(y, A, multi_class="ovr", average="macro"))
    assert c.primary.benchmark == pytest.approx(roc_auc_score(y, B, multi_class="ovr", average="macro"))
    assert c.get("accuracy").model == pytest.approx(accuracy_score(y, A.argmax(axis=1)))
    assert c.get("log_loss").model == pytest.approx(log_loss(y, A, labels=[0, 1, 2]))
    assert c.get("log_loss").benchmark == pytest.approx(log_loss(y, B, labels=[0, 1, 2]))
    assert c.primary.model_better and c.get("log_loss").model_better
    # disagreement: rows whose predicted classes differ and exactly one is right
    d = disagreement(pd.DataFrame({"f": rng.normal(size=400)}), y, A, B, task="classification", min_support=30)
    right_a, right_b = A.argmax(axis=1) == y, B.argmax(axis=1) == y
    assert d.benchmark_wins == int((right_b & ~right_a).sum()) and d.model_wins == int((right_a & ~right_b).sum())


def test_k_class_benchmarks_are_multinomial():
    train, test = blobs(900, 1), blobs(600, 2)
    yi = np.searchsorted(CLASSES, train["y"].to_numpy())
    fits = fit_benchmarks(train[["x", "z", "u"]], yi, test[["x", "z", "u"]], task="classification",
                          numeric=["x", "z", "u"], categorical=[], n_classes=3)
    assert [f.name for f in fits] == ["logistic", "tree"] and "multinomial" in fits[0].label.lower()
    for f in fits:
        assert f.score.shape == (600, 3) and np.allclose(f.score.sum(axis=1), 1.0)


def test_k_class_model_worse_than_multinomial_lr_is_high():
    train, test = blobs(1500, 3), blobs(1500, 4)
    model = OnlyX(train)
    result = run_check(BenchmarkCheck, model, test=test, train=train, target="y", options={"n_resamples": 100})
    assert result.status.value == "ok"
    [worse] = [f for f in result.findings if f.id == "benchmark.comparison/worse"]
    assert worse.severity.value == "high" and worse.rule is not None and worse.rule.interval[1] < -0.01
    assert "multinomial logistic regression" in worse.title
    P = model.predict_proba(test)
    yi = np.searchsorted(model.classes_, test["y"].to_numpy())
    assert worse.metrics["model_auc_ovr_macro"] == pytest.approx(roc_auc_score(yi, P, multi_class="ovr"))
    comp = next(t for t in result.evidence.tables if t.name == "comparison").records()
    row = next(r for r in comp if r["metric"] == "Accuracy" and "logistic" in r["benchmark"])
    assert row["model"] == pytest.approx(accuracy_score(yi, P.argmax(axis=1)))
    row = next(r for r in comp if r["metric"] == "Log loss" and "logistic" in r["benchmark"])
    assert row["model"] == pytest.approx(log_loss(yi, P, labels=[0, 1, 2]))
    assert any("multinomial" in n for n in result.evidence.notes)


def test_k_class_clean_control_wine_no_high():
    model, train, test, feats = wine_split()
    result = run_check(BenchmarkCheck, model, test=test, train=train, target="y",
                       options={"n_resamples": 100, "cv_folds": 2, "min_segment_rows": 15})
    assert result.status.value == "ok"
    assert not [f for f in result.findings if f.severity.value == "high"]
    assert result.findings[0].id in ("benchmark.comparison/not_better", "benchmark.comparison/better")
