"""The performance family on k-class models (contract 1.1): k-class metrics equal sklearn on the
test rows, a model that confuses two classes shows the pair, clean models stay quiet, and no
number is "one class against the rest" in disguise."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from sklearn import metrics as skm
from sklearn.datasets import load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from auditor.checks.base import CheckRegistry
from auditor.checks.performance import CalibrationCheck, MetricsCheck, OverfitCheck

CHECKS = (MetricsCheck, OverfitCheck, CalibrationCheck)
from conftest import SCHEMA, run_check, severities, svg_of

from auditor.engine import prepare_objects
from auditor.findings import CheckResult, Status
from auditor.render import write_report

BLOCKING = {"medium", "high"}
FEATURES = ["x0", "x1", "x2", "x3"]


def three_class_data(n: int, seed: int, *, signal: float = 1.6) -> pd.DataFrame:
    """Four numeric features; the class follows a multinomial logistic model of x0..x2 (x3 is noise)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    W = signal * np.array([[1.5, -1.0, 0.0], [0.0, 1.5, -1.5], [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    p = softmax(X @ W, axis=1)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    df = pd.DataFrame(X, columns=FEATURES)
    df["y"] = y
    return df


class SwapsClasses1And2:
    """A fitted 3-class model that swaps the probabilities of classes 1 and 2 on about half of the
    rows (those with x3 > 0, a feature without signal): the planted confusion of 1 and 2."""

    def __init__(self, base) -> None:
        self.base = base
        self.classes_ = base.classes_
        self.feature_names_in_ = base.feature_names_in_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.base.predict_proba(X).copy()
        swap = X["x3"].to_numpy() > 0
        p[swap, 1], p[swap, 2] = p[swap, 2].copy(), p[swap, 1].copy()
        return p

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class Tempered:
    """A fitted k-class model whose probabilities are sharpened (t > 1) or flattened (t < 1)."""

    def __init__(self, base, t: float) -> None:
        self.base, self.t = base, t
        self.classes_ = base.classes_
        self.feature_names_in_ = base.feature_names_in_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return softmax(self.t * np.log(np.clip(self.base.predict_proba(X), 1e-12, 1.0)), axis=1)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


@pytest.fixture(scope="module")
def synth() -> tuple[pd.DataFrame, pd.DataFrame, LogisticRegression]:
    train, test = three_class_data(1500, 1), three_class_data(1500, 2)
    model = LogisticRegression(max_iter=1000).fit(train[FEATURES], train["y"])
    return train, test, model


def _assert_well_formed(result: CheckResult) -> None:
    assert result.status is Status.OK
    names = {t.name for t in result.evidence.tables} | {f.name for f in result.evidence.figures}
    for f in result.findings:
        assert f.id.startswith(result.id + "/")
        assert set(f.evidence) <= names, (f.evidence, names)
        if f.severity.value in BLOCKING:
            assert f.rule is not None and "Rule:" in f.summary
    for fig in result.evidence.figures:
        assert svg_of(fig).lstrip().startswith("<svg")
    assert result.evidence.notes


def _table(result: CheckResult, name: str):
    return next(t for t in result.evidence.tables if t.name == name)


# ---- planted defect: classes 1 and 2 confused ---------------------------------------------------------

def test_confused_pair_is_found_and_accuracy_is_the_k_class_accuracy(synth) -> None:
    train, test, base = synth
    model = SwapsClasses1And2(base)
    r = run_check(MetricsCheck, model, test=test, train=train, target="y")
    _assert_well_formed(r)
    m = r.evidence.metrics

    # k-class numbers against sklearn on the test rows, computed here from the model directly
    proba = model.predict_proba(test[FEATURES])
    pred = model.predict(test[FEATURES])
    y = test["y"].to_numpy()
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert m["brier"] == pytest.approx(np.mean(((np.eye(3)[y] - proba) ** 2).sum(axis=1)))
    assert m["auc_ovr_macro"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "log_loss", "brier", "auc_ovr_macro"):
        assert m[f"{name}_ci_low"] <= m[name] <= m[f"{name}_ci_high"], name
    assert "auc" not in m and "precision" not in m  # no positive-vs-rest numbers

    # the confused pair is in the k x k table: actual 1 predicted 2 and actual 2 predicted 1
    conf = _table(r, "confusion_matrix")
    assert conf.columns == ("actual", "0", "1", "2")
    cells = np.array([row[1:] for row in conf.rows])
    assert np.array_equal(cells, skm.confusion_matrix(y, pred))
    support = cells.sum(axis=1)
    assert cells[1, 2] > 0.3 * support[1] and cells[2, 1] > 0.3 * support[2]
    assert cells[0, 1] < 0.2 * support[0] and cells[0, 2] < 0.2 * support[0]

    pair = [f for f in r.findings if f.id.startswith("performance.metrics/confused/")]
    assert [f.id for f in pair] == ["performance.metrics/confused/1/2"]
    f = pair[0]
    assert f.severity.value in BLOCKING
    assert "'1'" in f.title and "'2'" in f.title
    assert f.rule.metric == "confused_share" and f.rule.interval[0] >= 0.2
    a, b = int(f.metrics["actual_class"]), int(f.metrics["predicted_class"])
    assert f.metrics["confused_share"] == pytest.approx(cells[a, b] / support[a])


def test_clean_model_on_the_same_data_has_no_confused_pair(synth) -> None:
    train, test, model = synth
    r = run_check(MetricsCheck, model, test=test, train=train, target="y")
    assert not BLOCKING & set(severities(r)), [f.title for f in r.findings]
    conf = np.array([row[1:] for row in _table(r, "confusion_matrix").rows])
    assert conf[1, 2] < 0.2 * conf[1].sum()
    defect = run_check(MetricsCheck, SwapsClasses1And2(model), test=test, train=train, target="y")
    assert defect.evidence.metrics["accuracy"] < r.evidence.metrics["accuracy"] - 0.15


def test_by_class_table_equals_sklearn_per_class(synth) -> None:
    train, test, model = synth
    r = run_check(MetricsCheck, model, test=test, train=train, target="y")
    y = test["y"].to_numpy()
    proba = model.predict_proba(test[FEATURES])
    pred = model.predict(test[FEATURES])
    prec, rec, f1, support = skm.precision_recall_fscore_support(y, pred, labels=[0, 1, 2])
    rows = _table(r, "by_class").records()
    assert [row["class"] for row in rows] == ["0", "1", "2"]
    for i, row in enumerate(rows):
        assert row["support"] == support[i]
        assert row["precision"] == pytest.approx(prec[i])
        assert row["recall"] == pytest.approx(rec[i])
        assert row["f1"] == pytest.approx(f1[i])
        assert row["auc_ovr"] == pytest.approx(skm.roc_auc_score(y == i, proba[:, i]))


# ---- clean controls on sklearn's bundled data ---------------------------------------------------------

@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_good_multinomial_model_is_quiet(loader) -> None:
    data = loader(as_frame=True).frame
    train, test = train_test_split(data, test_size=0.4, random_state=0, stratify=data["target"])
    cols = [c for c in data if c != "target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train[cols], train["target"])
    for check in CHECKS:
        r = run_check(check, model, test=test, train=train, target="target")
        _assert_well_formed(r)
        assert not BLOCKING & set(severities(r)), (check.id, [f.title for f in r.findings])
    m = run_check(MetricsCheck, model, test=test, train=train, target="target").evidence.metrics
    assert m["n_classes"] == 3 and m["accuracy"] > 0.9


# ---- the iris trap: the easy class last ---------------------------------------------------------------

def test_iris_with_the_easy_class_last_reports_the_three_class_accuracy() -> None:
    iris = load_iris(as_frame=True).frame
    names = {0: "z_setosa", 1: "versicolor", 2: "virginica"}  # setosa sorts last: the default positive class
    iris["species"] = iris.pop("target").map(names)
    cols = ["sepal length (cm)", "sepal width (cm)"]  # a weak model: versicolor and virginica overlap
    train, test = train_test_split(iris, test_size=0.5, random_state=0, stratify=iris["species"])
    model = LogisticRegression(max_iter=2000).fit(train[cols], train["species"])
    assert list(model.classes_)[-1] == "z_setosa"
    r = run_check(MetricsCheck, model, test=test[cols + ["species"]], train=train[cols + ["species"]],
                  target="species")
    _assert_well_formed(r)
    m = r.evidence.metrics
    y, pred = test["species"].to_numpy(), model.predict(test[cols])
    k_class = skm.accuracy_score(y, pred)
    one_vs_rest = np.mean((y == "z_setosa") == (pred == "z_setosa"))
    assert one_vs_rest > k_class + 0.1  # the trap is real on this split
    assert m["accuracy"] == pytest.approx(k_class)
    assert m["auc_ovr_macro"] == pytest.approx(
        skm.roc_auc_score(y, model.predict_proba(test[cols]), multi_class="ovr", average="macro"))
    assert "auc" not in m
    assert _table(r, "confusion_matrix").columns == ("actual", "versicolor", "virginica", "z_setosa")
    # versicolor and virginica are the pair the model mixes up, and the finding names them
    pair = [f for f in r.findings if "/confused/" in f.id]
    assert pair and pair[0].id == "performance.metrics/confused/versicolor/virginica"


# ---- overfit and calibration on k-class quantities ------------------------------------------------

def test_one_nearest_neighbour_overfit_on_k_class_quantities() -> None:
    train, test = three_class_data(900, 3, signal=0.6), three_class_data(900, 4, signal=0.6)
    model = KNeighborsClassifier(n_neighbors=1).fit(train[FEATURES], train["y"])
    r = run_check(OverfitCheck, model, test=test, train=train, target="y")
    _assert_well_formed(r)
    assert [(f.id, f.severity.value) for f in r.findings] == [("performance.overfit/auc_ovr_macro_gap", "high")]
    m = r.evidence.metrics
    assert m["auc_ovr_macro_train"] == pytest.approx(1.0) and m["accuracy_train"] == pytest.approx(1.0)
    p_te = model.predict_proba(test[FEATURES])
    assert m["auc_ovr_macro_test"] == pytest.approx(skm.roc_auc_score(test["y"], p_te, multi_class="ovr"))
    assert m["accuracy_test"] == pytest.approx(skm.accuracy_score(test["y"], model.predict(test[FEATURES])))
    assert m["log_loss_test"] == pytest.approx(skm.log_loss(test["y"], p_te))
    assert m["auc_ovr_macro_gap_ci_low"] > 0.15
    f = r.findings[0]
    assert f.rule.interval == (m["auc_ovr_macro_gap_ci_low"], m["auc_ovr_macro_gap_ci_high"])
    assert "k-class accuracy" in f.summary


def test_regularised_multinomial_model_is_not_overfit(synth) -> None:
    train, test, model = synth
    r = run_check(OverfitCheck, model, test=test, train=train, target="y")
    _assert_well_formed(r)
    assert not BLOCKING & set(severities(r))
    assert {"auc_ovr_macro_gap", "log_loss_gap", "accuracy_gap", "brier_gap"} <= set(r.evidence.metrics)
    assert "auc_gap" not in r.evidence.metrics


def test_over_confident_k_class_model_is_found_by_top_label_calibration(synth) -> None:
    train, test, base = synth
    model = Tempered(base, 3.0)
    r = run_check(CalibrationCheck, model, test=test, train=train, target="y")
    _assert_well_formed(r)
    assert [f.id for f in r.findings] == ["performance.calibration/top_label_ece"]
    f = r.findings[0]
    assert f.severity.value in BLOCKING
    assert "over-confident" in f.title and "Top-label" in f.summary
    assert f.rule.p_value < 0.01 and f.rule.metric == "top_label_ece"
    assert any("top-label" in n for n in r.evidence.notes)
    # the reported ECE is the top-label ECE computed directly
    proba = model.predict_proba(test[FEATURES])
    conf, correct = proba.max(axis=1), (proba.argmax(axis=1) == test["y"].to_numpy())
    order = np.argsort(conf, kind="mergesort")
    direct = sum(len(b) / len(conf) * abs(conf[b].mean() - correct[b].mean()) for b in np.array_split(order, 10))
    assert f.metrics["ece"] == pytest.approx(direct)


def test_well_specified_multinomial_model_is_calibrated(synth) -> None:
    train, test, model = synth
    r = run_check(CalibrationCheck, model, test=test, train=train, target="y")
    _assert_well_formed(r)
    assert r.findings == ()
    assert r.evidence.metrics["calibration"] == "top-label"
    assert r.evidence.metrics["ece_p_value"] > 0.01


# ---- determinism and rendering ------------------------------------------------------------------------

def test_k_class_results_are_deterministic(synth) -> None:
    train, test, base = synth
    model = SwapsClasses1And2(base)
    for check in CHECKS:
        a = run_check(check, model, test=test, train=train, target="y")
        b = run_check(check, model, test=test, train=train, target="y")
        assert dict(a.evidence.metrics) == dict(b.evidence.metrics)
        assert a.findings == b.findings


def test_k_class_evidence_renders_to_html_and_valid_json(synth, tmp_path) -> None:
    train, test, base = synth
    labels = np.array(["alpha", "beta", "gamma"])
    tr, te = train.assign(y=labels[train["y"]]), test.assign(y=labels[test["y"]])
    model = SwapsClasses1And2(LogisticRegression(max_iter=1000).fit(tr[FEATURES], tr["y"]))
    audit = prepare_objects(model, test=te, train=tr, target="y", registry=CheckRegistry(CHECKS))
    out = write_report(audit.run(), tmp_path / "report", ["html", "json"])
    data = json.loads(out["json"].read_text(encoding="utf-8"))
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, json.loads(SCHEMA.read_text(encoding="utf-8")))
    metrics = next(c for c in data["checks"] if c["id"] == "performance.metrics")
    assert metrics["status"] == "ok"
    assert [row["actual"] for row in metrics["tables"]["confusion_matrix"]] == ["alpha", "beta", "gamma"]
    assert set(metrics["tables"]["confusion_matrix"][0]) == {"actual", "alpha", "beta", "gamma"}
    assert [row["class"] for row in metrics["tables"]["by_class"]] == ["alpha", "beta", "gamma"]
    pair = next(f for f in data["findings"] if f["id"] == "performance.metrics/confused/beta/gamma")
    assert pair["rule"]["metric"] == "confused_share" and len(pair["rule"]["interval"]) == 2
    html = out["html"].read_text(encoding="utf-8")
    assert "Confusion matrix (rows: actual class, columns: predicted class)" in html
    svgs = [base64.b64decode(s).decode("utf-8") for s in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)]
    assert any("Predicted class" in s and "gamma" in s for s in svgs)  # the confusion-matrix figure
