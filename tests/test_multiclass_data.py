"""data.leakage, data.quality and data.drift on 3-class targets: a leaked class index, a rare
class, a shifted class mix, and clean 3-class controls; k-class numbers against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_check
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier
from test_multiclass_resid import CLASSES, three_class, wine_split
from test_residuals import pipe

from auditor.analysis.drift import categorical_drift
from auditor.analysis.leakage import single_feature_power
from auditor.checks.data import DriftCheck, LeakageCheck, QualityCheck
from auditor.findings import Severity

FEATS = ["x", "z", "region"]


def fit(train: pd.DataFrame, feats=FEATS):
    cats = [c for c in feats if not pd.api.types.is_numeric_dtype(train[c])]
    return pipe(LogisticRegression(max_iter=2000), cats).fit(train[feats], train["y"])


def with_leaks(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = np.searchsorted(CLASSES, df["y"].to_numpy())
    return df.assign(code=k.astype(float) + rng.normal(0, 0.01, len(df)),  # the class index, barely noised
                     status=np.array(["open", "held", "shut"])[k])  # a text copy of the class


# ---- data.leakage -------------------------------------------------------------------------------

def test_k_class_leaked_class_index_is_high():
    train, test = with_leaks(three_class(1500, 0.0, 1), 1), with_leaks(three_class(900, 0.0, 2), 2)
    feats = FEATS + ["code", "status"]
    model = fit(train, feats)
    r = run_check(LeakageCheck, model, test=test, train=train, target="y")
    assert r.status.value == "ok"
    high = {f.id: f for f in r.findings if f.severity is Severity.HIGH}
    assert set(high) == {"data.leakage/power/code", "data.leakage/power/status"}
    f = high["data.leakage/power/code"]
    assert f.metrics["single_feature_auc_ovr_macro"] > 0.99 and f.rule.interval[0] >= 0.98
    assert "macro one-vs-rest AUC" in f.title
    P = model.predict_proba(test[feats])
    yi = np.searchsorted(model.classes_, test["y"].to_numpy())
    assert f.metrics["model_auc_ovr_macro"] == pytest.approx(roc_auc_score(yi, P, multi_class="ovr"))
    assert any("k-class target" in n for n in r.evidence.notes)


def test_k_class_single_feature_power_matches_a_direct_tree():
    train, test = three_class(1200, 0.0, 3), three_class(800, 0.0, 4)
    ytr = np.searchsorted(CLASSES, train["y"].to_numpy())
    yte = np.searchsorted(CLASSES, test["y"].to_numpy())
    [p] = single_feature_power(test[["x"]], yte, task="classification", X_train=train[["x"]], y_train=ytr,
                               n_classes=3, max_depth=3)
    tree = DecisionTreeClassifier(max_depth=3, min_samples_leaf=12, random_state=0).fit(train[["x"]], ytr)
    direct = roc_auc_score(yte, tree.predict_proba(test[["x"]]), multi_class="ovr", average="macro")
    assert p.metric == "auc_ovr_macro" and p.value == pytest.approx(direct)
    assert p.low < p.value < p.high


def test_k_class_leakage_clean_controls():
    train, test = three_class(1500, 0.0, 5), three_class(900, 0.0, 6)
    r = run_check(LeakageCheck, fit(train), test=test, train=train, target="y")
    assert r.status.value == "ok" and not [f for f in r.findings if f.severity.rank >= Severity.MEDIUM.rank]
    model, wtrain, wtest, _ = wine_split()
    r = run_check(LeakageCheck, model, test=wtest, train=wtrain, target="y")
    assert r.status.value == "ok" and not [f for f in r.findings if f.severity is Severity.HIGH]


# ---- data.quality: label balance over k classes ---------------------------------------------------

def test_k_class_rare_class_is_reported_and_balanced_control_quiet():
    train, test = three_class(2000, 0.0, 7), three_class(1500, 0.0, 8)
    rng = np.random.default_rng(0)
    drop = (test["y"] == "b") & (rng.random(len(test)) < 0.96)  # class b becomes about 1.5% of test
    rare = test[~drop].reset_index(drop=True)
    r = run_check(QualityCheck, fit(train), test=rare, train=train, target="y")
    f = next(f for f in r.findings if f.id == "data.quality/label_balance")
    share = (rare["y"] == "b").mean()
    assert f.severity is Severity.MEDIUM and f.metrics["minority_share"] == pytest.approx(share)
    assert f.title.startswith("Rarest class 'b'")
    labels = next(t for t in r.evidence.tables if t.name == "labels").records()
    assert {rec["class"] for rec in labels} == {"a", "b", "c"}
    clean = run_check(QualityCheck, fit(train), test=test, train=train, target="y")
    assert not [f for f in clean.findings if f.id == "data.quality/label_balance"]


# ---- data.drift: the k-class target and the predicted class --------------------------------------

def test_k_class_target_drift_found_and_control_quiet():
    train, test = three_class(2000, 0.0, 9), three_class(1500, 0.0, 10)
    model = fit(train)
    rng = np.random.default_rng(1)
    keep = (test["y"] != "a") | (rng.random(len(test)) < 0.3)  # most of class a is gone
    moved = test[keep].reset_index(drop=True)
    r = run_check(DriftCheck, model, test=moved, train=train, target="y")
    f = next(f for f in r.findings if f.id == "data.drift/y")
    assert f.severity.rank >= Severity.MEDIUM.rank
    assert f.metrics["psi"] == pytest.approx(categorical_drift(train["y"], moved["y"]).psi)
    table = r.evidence.tables[0].records()
    assert any(rec.get("column", rec.get("feature")) == "model predicted class" for rec in table)
    clean = run_check(DriftCheck, model, test=test, train=train, target="y")
    assert not [f for f in clean.findings if f.severity.rank >= Severity.MEDIUM.rank]


def test_k_class_checks_skip_when_a_target_value_is_not_a_model_class():
    from auditor.checks.benchmark import BenchmarkCheck
    from auditor.checks.residual import ResidualAnalysisCheck, WeakSegmentsCheck

    train, test = three_class(600, 0.0, 11), three_class(400, 0.0, 12)
    model = fit(train)
    odd = test.copy()
    odd.loc[odd.index[:5], "y"] = "zz"  # a label the model has never heard of
    for check in (ResidualAnalysisCheck, WeakSegmentsCheck, BenchmarkCheck, LeakageCheck):
        r = run_check(check, model, test=odd, train=train, target="y")
        assert r.status.value == "skipped" and "not one of the model's classes" in r.reason, check.id
