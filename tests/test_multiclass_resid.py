"""k-class residual checks: residual.analysis and residual.segments on 3-class models (planted
defects and clean controls), with k-class numbers checked against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_check
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from test_residuals import pipe

from auditor.analysis.segments import row_loss, slice_metrics
from auditor.checks.residual import ResidualAnalysisCheck, WeakSegmentsCheck

CLASSES = np.array(["a", "b", "c"])


def three_class(n: int, share_r: float, seed: int) -> pd.DataFrame:
    """Three classes driven by x and z; in region R the labels are rotated (a -> b -> c -> a)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                       "region": np.where(rng.random(n) < share_r, "R", rng.choice(["p", "q", "s"], n))})
    logits = np.column_stack([2.5 * df["x"], 2.5 * df["z"], -2.5 * df["x"] - 2.5 * df["z"]])
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    k = (rng.random(n)[:, None] > P.cumsum(axis=1)).sum(axis=1)
    k = np.minimum(k, 2)
    swap = (df["region"] == "R").to_numpy()
    k = np.where(swap, (k + 1) % 3, k)
    df["y"] = CLASSES[k]
    return df


def wine_split():
    d = load_wine(as_frame=True)
    df = d.frame.rename(columns={"target": "y"})
    df["y"] = np.array(["c0", "c1", "c2"])[df["y"]]
    train, test = train_test_split(df, test_size=0.4, random_state=0, stratify=df["y"])
    feats = [c for c in df.columns if c != "y"]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(train[feats], train["y"])
    return model, train, test, feats


# ---- numerics ---------------------------------------------------------------------------------

def test_k_class_row_loss_and_slice_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    P = rng.dirichlet([1, 1, 1], 500)
    y = rng.choice(3, 500)
    rl = row_loss(y, P, task="classification")
    assert rl.loss.mean() == pytest.approx(log_loss(y, P, labels=[0, 1, 2]))
    sm = slice_metrics(y, P, task="classification", threshold=0.5, confidence=0.95)
    assert sm.accuracy.value == pytest.approx(accuracy_score(y, P.argmax(axis=1)))
    assert sm.log_loss.value == pytest.approx(log_loss(y, P, labels=[0, 1, 2]))
    assert sm.majority_rate == pytest.approx(np.bincount(y).max() / 500) and sm.auc is None
    # excess = loss - entropy: about zero on average when the labels are drawn from P itself
    Q = rng.dirichlet([1, 1, 1], 20000)
    y_cal = np.minimum((rng.random(20000)[:, None] > np.cumsum(Q, axis=1)).sum(axis=1), 2)
    raw = row_loss(y_cal, Q, task="classification", prediction_bins=1)
    assert abs((raw.loss - raw.excess).mean() - raw.loss.mean()) < 0.02


# ---- residual.segments --------------------------------------------------------------------------

def test_k_class_weak_segment_found():
    train, test = three_class(3000, 0.01, 1), three_class(3000, 0.15, 2)
    feats = ["x", "z", "region"]
    model = pipe(LogisticRegression(max_iter=2000), ["region"]).fit(train[feats], train["y"])
    result = run_check(WeakSegmentsCheck, model, test=test, train=train, target="y")
    assert result.status.value == "ok"
    top = result.findings[0]
    assert top.groups == (("region", "R"),) and top.severity.value == "high"
    assert top.rule is not None and top.rule.interval is not None
    assert "3-class accuracy" in top.summary
    seg = (test["region"] == "R").to_numpy()
    P = model.predict_proba(test[feats])
    yi = np.searchsorted(model.classes_, test["y"].to_numpy())
    assert top.metrics["accuracy"] == pytest.approx(accuracy_score(yi[seg], P[seg].argmax(axis=1)))
    assert top.metrics["log_loss"] == pytest.approx(log_loss(yi[seg], P[seg], labels=[0, 1, 2]))
    assert top.metrics["accuracy_overall"] == pytest.approx(accuracy_score(yi, P.argmax(axis=1)))
    assert top.metrics["log_loss_overall"] == pytest.approx(log_loss(yi, P, labels=[0, 1, 2]))


@pytest.mark.parametrize("seeds", [(5, 6), (7, 8)])
def test_k_class_clean_model_has_no_weak_segments(seeds):
    train, test = three_class(3000, 0.0, seeds[0]), three_class(3000, 0.0, seeds[1])
    feats = ["x", "z", "region"]
    model = pipe(LogisticRegression(max_iter=2000), ["region"]).fit(train[feats], train["y"])
    result = run_check(WeakSegmentsCheck, model, test=test, train=train, target="y")
    assert result.status.value == "ok" and result.findings == ()
    assert any("3-class" in n for n in result.evidence.notes)


def test_k_class_wine_control_segments():
    model, train, test, feats = wine_split()
    result = run_check(WeakSegmentsCheck, model, test=test, train=train, target="y",
                       options={"min_support_rows": 10})
    assert result.status.value == "ok"
    assert not [f for f in result.findings if f.severity.value == "high"]


# ---- residual.analysis --------------------------------------------------------------------------

def ring_data(n: int, seed: int) -> pd.DataFrame:
    """Three classes: a and b split by x, but class c holds every row with |w| > 1.2 (a ring the
    linear model cannot draw)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "w": rng.normal(size=n), "u": rng.uniform(0, 1, n)})
    k = np.where(rng.random(n) < 1 / (1 + np.exp(-3 * df["x"])), 1, 0)
    k = np.where((np.abs(df["w"]) > 1.2) & (rng.random(n) < 0.9), 2, k)
    df["y"] = CLASSES[k]
    return df


def test_k_class_residual_structure_found_and_numbers_match_sklearn():
    train, test = ring_data(2500, 1), ring_data(2500, 2)
    feats = ["x", "w", "u"]
    model = LogisticRegression(max_iter=2000).fit(train[feats], train["y"])
    result = run_check(ResidualAnalysisCheck, model, test=test, train=train, target="y",
                       options={"n_worst": 3})
    assert result.status.value == "ok"
    P = model.predict_proba(test[feats])
    yi = np.searchsorted(model.classes_, test["y"].to_numpy())
    ev = result.evidence.metrics
    assert ev["mean_log_loss"] == pytest.approx(log_loss(yi, P, labels=[0, 1, 2]))
    assert ev["accuracy"] == pytest.approx(accuracy_score(yi, P.argmax(axis=1)))
    structure = [f for f in result.findings if f.id == "residual.analysis/structure"]
    assert structure and "w" in structure[0].features and structure[0].rule is not None
    assert structure[0].severity.value in ("medium", "high")
    # the worst rows: their log loss and the probability of their actual class, from sklearn
    worst = next(t for t in result.evidence.tables if t.name == "worst_rows").records()
    ll = -np.log(np.clip(P[np.arange(len(yi)), yi], 1e-15, 1))
    assert worst[0]["log_loss"] == pytest.approx(ll.max())
    top = int(np.argmax(ll))
    assert worst[0]["p_actual_class"] == pytest.approx(P[top, yi[top]])
    assert worst[0]["predicted"] == str(model.classes_[P[top].argmax()])
    assert any("P(actual class)" in n for n in result.evidence.notes)


def test_k_class_row_drivers_explain_p_true_class():
    from auditor.analysis.residuals import row_drivers

    train = ring_data(400, 3)
    feats = ["x", "w", "u"]
    model = LogisticRegression(max_iter=2000).fit(train[feats], train["y"])
    rows = train[feats].iloc[:2]
    yi = np.array([2, 0])
    d = row_drivers(lambda X: model.predict_proba(X[feats]), rows, yi, train[feats].iloc[100:140],
                    task="multiclass", categorical=(), seed=0)
    P = model.predict_proba(rows)
    for i in range(2):
        assert d.prediction_base[i] + d.prediction[i].sum() == pytest.approx(P[i, yi[i]], abs=1e-6)
        assert d.loss_value[i] == pytest.approx(-np.log(P[i, yi[i]]), abs=1e-6)


def test_k_class_residual_clean_control_wine():
    model, train, test, feats = wine_split()
    result = run_check(ResidualAnalysisCheck, model, test=test, train=train, target="y",
                       options={"n_worst": 2, "explain_worst": False})
    assert result.status.value == "ok"
    assert not [f for f in result.findings if f.severity.value == "high"]
    P = model.predict_proba(test[feats])
    yi = np.searchsorted(model.classes_, test["y"].to_numpy())
    assert result.evidence.metrics["mean_log_loss"] == pytest.approx(log_loss(yi, P, labels=[0, 1, 2]))


def test_k_class_confident_errors_expected_count_and_planted_label_errors():
    from auditor.analysis.residuals import compute_residuals, outliers

    rng = np.random.default_rng(4)
    P = rng.dirichlet([0.3, 0.3, 0.3], 3000)
    y = np.minimum((rng.random(3000)[:, None] > P.cumsum(axis=1)).sum(axis=1), 2)  # calibrated labels
    o = outliers(compute_residuals(y, P, task="multiclass"), confident_p=0.02)
    assert o.expected == pytest.approx(P[P < 0.02].sum())  # direct: sum of every class probability < 0.02
    assert o.count == int((P[np.arange(3000), y] < 0.02).sum())
    assert o.p_value > 0.01  # calibrated: no excess
    # planted: 4% of the test labels rotated on a confident 3-class model
    train, test = three_class(3000, 0.0, 11), three_class(2000, 0.0, 12)
    feats = ["x", "z", "region"]
    model = pipe(LogisticRegression(max_iter=2000), ["region"]).fit(train[feats], train["y"])
    bad = rng.random(len(test)) < 0.04
    k = np.searchsorted(CLASSES, test["y"].to_numpy())
    noisy = test.assign(y=CLASSES[np.where(bad, (k + 1) % 3, k)])
    result = run_check(ResidualAnalysisCheck, model, test=noisy, train=train, target="y",
                       options={"explain_worst": False})
    f = next(f for f in result.findings if f.id == "residual.analysis/confident_errors")
    assert f.severity.value == "medium" and f.rule is not None and f.metrics["rows"] > f.metrics["expected"]
    clean = run_check(ResidualAnalysisCheck, model, test=test, train=train, target="y",
                      options={"explain_worst": False})
    assert not [f for f in clean.findings if f.severity.rank >= 2]


def test_k_class_ignored_feature_found_by_per_class_residual_tree():
    """A 3-class model that never saw z, the only feature that tells class b apart: its log loss is
    flat where its distribution is flat, but the per-class residual of b is not."""
    rng = np.random.default_rng(13)
    n = 1600
    k = rng.choice(3, n)
    df = pd.DataFrame({"x": rng.normal(size=n) + 2.0 * (k == 0), "z": rng.normal(size=n) + 2.0 * (k == 1),
                       "u": rng.normal(size=n), "y": CLASSES[k]})
    train, test = df.iloc[:800], df.iloc[800:]

    class OnlyX:
        classes_ = CLASSES
        lr = LogisticRegression(max_iter=2000).fit(train[["x"]], train["y"])

        def predict_proba(self, X):
            return self.lr.predict_proba(X[["x"]])

        def predict(self, X):
            return CLASSES[self.predict_proba(X).argmax(axis=1)]

    result = run_check(ResidualAnalysisCheck, OnlyX(), test=test, train=train, target="y",
                       options={"explain_worst": False})
    [f] = [f for f in result.findings if f.id == "residual.analysis/structure"]
    assert "z" in f.features and f.severity.rank >= 2 and "class b occurs more often than predicted" in f.summary
    rules = next(t for t in result.evidence.tables if t.name == "surrogate_rules").records()
    top = rules[0]
    assert top["class"] == "b" and top["mean_residual"] > 0.3 and "z >" in top["rule"]
    pats = next(t for t in result.evidence.tables if t.name == "feature_patterns").records()
    assert pats[0]["feature"] == "z" and pats[0]["class"] == "b"
