"""Security probes on k-class models and their interval-based severity rules (issue 7)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import run_check
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from auditor.analysis.extraction import QuerySet, extraction_attack
from auditor.analysis.metrics import Estimate
from auditor.checks.base import CheckRegistry
from auditor.checks.security import AttributeInferenceCheck, MembershipInferenceCheck, ModelExtractionCheck
from auditor.engine import prepare_objects
from auditor.findings import Severity

RANK = {"info": 0, "low": 1, "medium": 2, "high": 3}
FAST = {"n_resamples": 100}
X3 = ["x1", "x2", "x3"]


def three_class(n: int, seed: int, noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, 3)), columns=X3)
    logits = np.column_stack([2 * df["x1"], -2 * df["x1"], 2.5 * df["x2"]])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    flip = rng.random(n) < noise
    y[flip] = rng.integers(0, 3, flip.sum())
    df["y"] = np.array(["A", "B", "C"])[y]
    return df


def measure(check, model, **kw):
    ctx = prepare_objects(model, registry=CheckRegistry([type(check)]), **kw).context
    return check.measure(ctx), ctx


# ---- membership inference --------------------------------------------------------------------------

def test_three_class_forest_memorises_and_the_attack_uses_the_true_class_probability() -> None:
    df = three_class(1000, 0, noise=0.3)
    train, test = df.iloc[:500].reset_index(drop=True), df.iloc[500:].reset_index(drop=True)
    model = RandomForestClassifier(n_estimators=40, random_state=0).fit(train[X3], train["y"])
    r = run_check(MembershipInferenceCheck, model, test=test, train=train, target="y", options=FAST)
    (f,) = r.findings
    assert f.severity is Severity.HIGH and f.rule is not None and f.rule.interval[0] >= 0.75
    cols = {c: i for i, c in enumerate(model.classes_)}
    conf_m = model.predict_proba(train[X3])[np.arange(len(train)), train["y"].map(cols)]
    conf_n = model.predict_proba(test[X3])[np.arange(len(test)), test["y"].map(cols)]
    direct = roc_auc_score(np.r_[np.ones(len(train)), np.zeros(len(test))], np.r_[conf_m, conf_n])
    assert r.evidence.metrics["threshold_auc"] == pytest.approx(direct, abs=1e-12)
    assert any("k = 3 classes" in n for n in r.evidence.notes)


def test_three_class_logistic_regression_does_not_leak() -> None:
    df = three_class(3000, 1)
    train, test = df.iloc[:1500], df.iloc[1500:]
    model = LogisticRegression(C=0.5, max_iter=1000).fit(train[X3], train["y"])
    r = run_check(MembershipInferenceCheck, model, test=test, train=train, target="y", options=FAST)
    assert RANK[r.findings[0].severity.value] <= RANK["low"]


def test_membership_severity_uses_the_lower_end_of_the_auc_interval() -> None:
    df = three_class(600, 2)
    train, test = df.iloc[:300], df.iloc[300:]
    model = LogisticRegression(max_iter=1000).fit(train[X3], train["y"])
    check = MembershipInferenceCheck(n_resamples=50)
    m, _ = measure(check, model, test=test, train=train, target="y")

    def with_auc(value: float, low: float, high: float):
        attacks = tuple(replace(a, score=replace(a.score, auc=Estimate(value, low, high),
                                                 advantage=Estimate(0.1, 0.05, 0.15)))
                        for a in m.result.attacks)
        return replace(m, result=replace(m.result, attacks=attacks))

    assert check.severity(with_auc(0.80, 0.76, 0.84)) is Severity.HIGH
    sev, rule = check.rule(with_auc(0.80, 0.72, 0.88))  # point above 0.75, interval not: not high
    assert sev is Severity.MEDIUM and rule.threshold == 0.60 and rule.interval == (0.72, 0.88)
    assert check.severity(with_auc(0.62, 0.51, 0.70)) is Severity.LOW
    assert check.severity(with_auc(0.56, 0.49, 0.62)) is Severity.INFO  # interval includes 0.5


# ---- model extraction ------------------------------------------------------------------------------

def test_three_class_copy_is_judged_on_the_predicted_class() -> None:
    df = three_class(2400, 3)
    train, test = df.iloc[:1200].reset_index(drop=True), df.iloc[1200:].reset_index(drop=True)
    model = LogisticRegression(max_iter=1000).fit(train[X3], train["y"])
    r = run_check(ModelExtractionCheck, model, test=test, train=train, target="y",
                  options={"queries": 500, "exposed": True})
    (f,) = r.findings
    assert f.severity is Severity.MEDIUM and "predicted classes" in f.title
    assert f.rule is not None and f.rule.metric == "agreement" and f.rule.interval[0] >= 0.95
    assert r.evidence.metrics["classes"] == 3
    assert any("k-class model" in n for n in r.evidence.notes)


def test_three_class_extraction_analysis_matches_direct_computations() -> None:
    df = three_class(1500, 4)
    model = LogisticRegression(max_iter=1000).fit(df[X3], df["y"])
    X, Xe = df[X3].iloc[:700].reset_index(drop=True), df[X3].iloc[700:].reset_index(drop=True)
    p, pe = model.predict_proba(X), model.predict_proba(Xe)
    y = pd.Series(df["y"].iloc[700:]).map({"A": 0, "B": 1, "C": 2}).to_numpy()
    res = extraction_attack(task="classification", query_sets={"real": QuerySet(X, p, p.argmax(axis=1))},
                            eval_rows=Xe, eval_score=pe, eval_label=pe.argmax(axis=1), eval_target=y,
                            categorical=[], budgets=(100,), rng=np.random.default_rng(0))
    assert res.n_classes == 3 and np.isnan(res.threshold)
    assert res.model_metric == pytest.approx(roc_auc_score(y, pe, multi_class="ovr", average="macro"), abs=1e-12)
    for api in ("scores", "labels"):
        pt = res.best("real", api, 700)
        assert pt.agreement >= 0.95 and pt.agreement_low <= pt.agreement <= pt.agreement_high
    # plotted: the model's probability of its predicted class
    np.testing.assert_allclose(res.eval_score, pe.max(axis=1))
    # a labels copy trained on 100 queries where one class is never predicted still answers k columns
    one_class_missing = QuerySet(X.iloc[:100], p[:100], np.where(p[:100].argmax(axis=1) == 2, 0, p[:100].argmax(1)))
    res2 = extraction_attack(task="classification", query_sets={"real": one_class_missing}, eval_rows=Xe,
                             eval_score=pe, eval_label=pe.argmax(axis=1), eval_target=y, categorical=[],
                             budgets=(), rng=np.random.default_rng(0))
    assert res2.best("real", "labels", 100).agreement < 0.9  # class C is never copied


def test_extraction_severity_uses_the_wilson_interval() -> None:
    df = three_class(1200, 5)
    model = LogisticRegression(max_iter=1000).fit(df[X3], df["y"])
    check = ModelExtractionCheck(queries=300, exposed=True)
    m, _ = measure(check, model, test=df, target="y")

    def all_points(agreement: float, low: float, high: float):
        pts = tuple(replace(p, agreement=agreement, agreement_low=low, agreement_high=high, kappa=0.9)
                    for p in m.result.points)
        return replace(m, result=replace(m.result, points=pts))

    (f,) = check.judge(all_points(0.97, 0.955, 0.98))
    assert f.severity is Severity.MEDIUM and f.rule.interval == (0.955, 0.98)
    (f,) = check.judge(all_points(0.97, 0.93, 0.985))  # point above the bar, interval straddles it
    assert f.severity is Severity.LOW and "lower end" in f.summary
    (f,) = check.judge(all_points(0.90, 0.87, 0.93))
    assert f.severity is Severity.INFO


# ---- attribute inference ---------------------------------------------------------------------------

class HiddenGroup3:
    """A 3-class model whose probabilities shift with a group hidden in the tens digit of 'code'."""

    classes_ = np.array(["A", "B", "C"])

    def predict_proba(self, X):
        g = (X["code"].to_numpy() // 10) % 2
        logits = np.column_stack([X["x1"].to_numpy(), -X["x1"].to_numpy(), 3.0 * (g - 0.5)])
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


def test_three_class_probabilities_reveal_a_hidden_group() -> None:
    rng = np.random.default_rng(7)
    n = 900
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "code": rng.integers(100000, 999999, n)})
    df["group"] = np.where((df["code"] // 10) % 2 == 1, "B", "A")
    df["y"] = rng.choice(["A", "B", "C"], n)
    r = run_check(AttributeInferenceCheck, HiddenGroup3(), test=df, target="y", protected=["group"],
                  features=["x1", "x2", "code"], options=FAST)
    (f,) = r.findings
    assert f.severity is Severity.HIGH and "probabilities" in f.title
    assert f.rule is not None and f.rule.interval[0] >= 0.8
    assert any("k-vector of class probabilities (3 columns)" in n for n in r.evidence.notes)
    # the control: the same model without the group shift reveals nothing
    class NoShift(HiddenGroup3):
        def predict_proba(self, X):
            return super().predict_proba(X.assign(code=0))

    r = run_check(AttributeInferenceCheck, NoShift(), test=df, target="y", protected=["group"],
                  features=["x1", "x2", "code"], options=FAST)
    assert RANK[r.findings[0].severity.value] <= RANK["low"]
