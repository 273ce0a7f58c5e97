"""Remedies of issue 11 sections 4 and 5: the monotone-constraint refit (``constraint``) and the
learning curves on weak segments (``data``). Planted defects they must remedy, controls where they
must not claim a remedy, and the numbers recomputed independently."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import SCHEMA, run_check
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import partial_dependence
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    PolynomialFeatures,
    SplineTransformer,
    StandardScaler,
)

from auditor.analysis.constraint import existing_constraints, map_feature
from auditor.analysis.segment_data import curve_trend, nested_subsets, segment_mask
from auditor.analysis.segments import SegmentOptions, find_weak_segments
from auditor.checks.base import CheckRegistry
from auditor.checks.residual.segments import WeakSegmentsCheck
from auditor.checks.sensitivity.partial_dependence import PartialDependenceCheck
from auditor.engine import prepare_objects
from auditor.plots import draw
from auditor.render.json import render_json

PD = "sensitivity.partial_dependence"
PD_FAST = {"rows": 200, "n_bootstrap": 100, "ale_bins": 5}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def remedy(result, rid):
    return next(r for r in result.remedies if r.id == rid)


def audit(model, train, test, target, registry_checks, **kw):
    registry = CheckRegistry(list(registry_checks))
    return prepare_objects(model, test=test, train=train, target=target, registry=registry, **kw).run()


def load_artifact(result, path):
    import skops.io as sio

    data = next(a.data for a in result.artifacts if a.path == path)
    return sio.loads(data, trusted=sio.get_untrusted_types(data=data))


# ---- analysis: the feature -> model column map, the learning-curve statistics -------------------

def _frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.uniform(0, 10, n), "z": rng.normal(size=n), "g": rng.choice(list("abc"), n)})


def _fitted(transformer, X):
    return transformer.fit(X)


def test_map_feature_finds_the_scaled_column_and_its_direction():
    X = _frame()
    ct = _fitted(ColumnTransformer([("num", StandardScaler(), ["z", "x"]), ("cat", OneHotEncoder(), ["g"])]), X)
    grid = np.linspace(0, 10, 7)
    m = map_feature(ct.transform, X, "x", grid, names=list(ct.get_feature_names_out()))
    assert m.constrainable and m.columns == (1,) and m.names == ("num__x",) and m.direction == 1
    neg = _fitted(ColumnTransformer([("neg", FunctionTransformer(np.negative), ["x"])], remainder="passthrough"), X)
    assert map_feature(neg.transform, X, "x", grid).direction == -1


def test_map_feature_refuses_one_hot_and_expanded_features():
    X = _frame()
    X["grade"] = np.resize([1, 2, 3, 4], len(X))
    ct = _fitted(ColumnTransformer([("cat", OneHotEncoder(), ["grade"])], remainder="passthrough"), X)
    m = map_feature(ct.transform, X[["grade", "x", "z"]].assign(g="a"), "grade", [1, 2, 3, 4], categorical=True)
    assert not m.constrainable and len(m.columns) == 4 and "one-hot encoded" in m.reason
    poly = _fitted(ColumnTransformer([("p", PolynomialFeatures(2), ["x", "z"])]), X)
    m = map_feature(poly.transform, X, "x", np.linspace(0, 10, 5))
    assert not m.constrainable and "cannot be constrained" in m.reason
    spline = _fitted(ColumnTransformer([("s", SplineTransformer(n_knots=4), ["x"])]), X)
    assert not map_feature(spline.transform, X, "x", np.linspace(0, 10, 5)).constrainable


def test_existing_constraints_are_read_in_each_form():
    assert existing_constraints("xgboost", "(1,0,-1)", 3, None) == [1, 0, -1]
    assert existing_constraints("lightgbm", [0, 2, 0], 3, None) == [0, 1, 0]
    assert existing_constraints("hist_gradient_boosting", {"b": -1}, 2, ["a", "b"]) == [0, -1]
    assert existing_constraints("hist_gradient_boosting", None, 2, None) == [0, 0]
    with pytest.raises(ValueError):
        existing_constraints("lightgbm", [1], 3, None)


def test_nested_subsets_are_nested_and_sized():
    subs = nested_subsets(10, (0.25, 0.5, 0.75, 1.0), np.random.default_rng(0))
    assert [len(s) for s in subs] == [3, 5, 8, 10]
    assert all(set(a) <= set(b) for a, b in zip(subs, subs[1:]))


def test_curve_trend_slope_matches_least_squares_and_its_interval_sees_noise():
    rng = np.random.default_rng(1)
    f = (0.25, 0.5, 0.75, 1.0)
    falling = [np.atleast_2d(2.0 - x + 0.3 * rng.normal(size=300)) for x in f]
    t = curve_trend(f, falling, rng=np.random.default_rng(2), n_boot=500)
    means = [L.mean() for L in falling]
    assert t.losses == pytest.approx(means)
    assert t.slope == pytest.approx(np.polyfit(f, means, 1)[0])
    assert t.last_drop == pytest.approx(means[-2] - means[-1])
    assert t.slope_ci[1] < 0 and t.supports_more_data
    # flat: the same noisy rows at every point, plus independent draw noise; the interval covers 0
    base = rng.exponential(size=200)
    flat = [base + 0.2 * rng.normal(size=(3, 200)) for _ in f]
    t = curve_trend(f, flat, rng=np.random.default_rng(3), n_boot=500)
    assert t.slope_ci[0] < 0 < t.slope_ci[1] and not t.supports_more_data
    # the draws enter the interval: identical rows, but draws that disagree widen it
    agree = [np.vstack([base, base]) for _ in f]
    disagree = [np.vstack([base - 0.5, base + 0.5]) for _ in f]
    w = [np.subtract(*reversed(curve_trend(f, L, rng=np.random.default_rng(4), n_boot=500).slope_ci))
         for L in (agree, disagree)]
    assert w[1] > w[0]


def test_segment_mask_selects_the_rows_the_search_counted():
    rng = np.random.default_rng(3)

    def make(n):
        X = pd.DataFrame({"x": rng.normal(size=n), "z": rng.uniform(0, 5, n), "g": rng.choice(list("ab"), n)})
        y = (rng.random(n) < sigmoid(2 * X["x"])).astype(int).to_numpy()
        return X, y

    X, y = make(900)
    X_train, y_train = make(700)
    bad = (X["z"] > 3.4).to_numpy() & (X["g"] == "b").to_numpy()
    score = np.where(bad, 1 - sigmoid(2 * X["x"]), sigmoid(2 * X["x"]))  # confidently wrong there
    search = find_weak_segments(X, y, score, task="classification", categorical=["g"], X_train=X_train,
                                y_train=y_train, score_train=sigmoid(2 * X_train["x"]).to_numpy(),
                                options=SegmentOptions(min_excess=0.1))
    assert search.segments and any(len(s.conditions) == 2 for s in search.segments)
    for s in search.segments:
        masks = segment_mask(X, s, [X, X_train], categorical=["g"], bins=5, pair_bins=3)
        assert masks is not None
        # the search's own counts: on the searched rows, and on the training rows it coded itself
        assert int(masks[0].sum()) == s.n and int(masks[1].sum()) == s.n_train
        for feature, value in s.groups:
            if feature == "g":
                assert set(X_train.loc[masks[1], "g"]) <= {value}
    # conditions that do not select the counted rows are refused
    s0 = search.segments[0]
    assert segment_mask(X.iloc[:500], s0, [X], categorical=["g"], bins=5, pair_bins=3) is None


# ---- the constraint remedy ------------------------------------------------------------------------

def hump_data(n=1500, seed=5):
    """The chance of good credit rises, then falls in income; declared increasing."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"income": rng.uniform(0, 100, n), "debt": rng.normal(10, 3, n),
                       "region": rng.choice(list("abc"), n)})
    df["good"] = (rng.random(n) < sigmoid(2.0 - ((df["income"] - 50) / 20) ** 2)).astype(int)
    return df.iloc[:1000].reset_index(drop=True), df.iloc[1000:].reset_index(drop=True)


def hgb_pipeline(**kw):
    pre = ColumnTransformer([("num", StandardScaler(), ["debt", "income"]),
                             ("cat", OneHotEncoder(sparse_output=False), ["region"])])
    return Pipeline([("pre", pre), ("gbm", HistGradientBoostingClassifier(max_iter=60, random_state=0, **kw))])


def constraint_audit(model, train, test, categorical=("region",), **kw):
    return audit(model, train, test, "good", [PartialDependenceCheck], categorical=list(categorical),
                 expect={"monotone": {"income": 1}}, checks={PD: PD_FAST}, **kw)


@pytest.fixture(scope="module")
def hump():
    train, test = hump_data()
    model = hgb_pipeline().fit(train.drop(columns="good"), train["good"])
    return model, train, test, constraint_audit(model, train, test)


def test_breached_monotonicity_gets_a_constrained_refit_without_the_breach(hump):
    model, train, test, result = hump
    f = next(f for f in result.findings if f.id == f"{PD}/monotone/income")
    assert f.severity.value in ("medium", "high")
    r = remedy(result, "constraint")
    assert r.status.value == "ok", (r.reason, r.error)
    (rem,) = r.remediations
    assert rem.kind == "constraint" and rem.addresses == (f.id,) and rem.verified
    assert rem.parameters["parameter"] == "gbm__monotonic_cst" and rem.parameters["model_column"] == "num__income"
    assert rem.parameters["value"] == "[0, 1, 0, 0, 0]"
    assert rem.before["pdp_fall"] == pytest.approx(f.metrics["pdp_fall"])
    assert rem.before["breach_severity"] == f.severity.value and rem.after["breach_severity"] == "none"
    assert rem.after["pdp_fall"] == 0 and rem.after["ice_breach_share"] == 0
    assert set(rem.before) == {"pdp_fall", "ice_breach_share", "breach_severity", "auc", "accuracy"}

    # the saved model, recomputed independently: monotone (sklearn's PDP), its AUC and accuracy as reported
    constrained = load_artifact(result, rem.artifacts[0])
    X = test.drop(columns="good")
    p = constrained.predict_proba(X)[:, 1]
    assert rem.after["auc"] == pytest.approx(roc_auc_score(test["good"], p), abs=1e-12)
    assert rem.after["accuracy"] == pytest.approx(accuracy_score(test["good"], (p >= 0.5).astype(int)))
    p0 = model.predict_proba(X)[:, 1]
    assert rem.before["auc"] == pytest.approx(roc_auc_score(test["good"], p0), abs=1e-12)
    assert rem.after["auc"] < rem.before["auc"]  # the effect is genuinely non-monotone: the constraint costs
    assert "AUC" in rem.summary and "removes the breach" in rem.summary
    pdp = partial_dependence(constrained, X, ["income"], kind="average")["average"][0]
    assert np.all(np.diff(pdp) >= -1e-12)
    # and the partial-dependence check itself finds no breach in the saved model
    again = run_check(PartialDependenceCheck, constrained, test=test, train=train, target="good",
                      categorical=["region"], expect={"monotone": {"income": 1}}, options=PD_FAST)
    assert not [x for x in again.findings if x.id.startswith(f"{PD}/monotone/")]


def test_constraint_evidence_draws_and_findings_json_validates(hump):
    jsonschema = pytest.importorskip("jsonschema")
    _, _, _, result = hump
    (rem,) = remedy(result, "constraint").remediations
    assert [t.name for t in rem.evidence.tables] == ["cost_income"]
    for fig in rem.evidence.figures:
        assert draw(fig).lstrip().startswith(("<?xml", "<svg"))
    doc = json.loads(render_json(result))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    (out,) = [x for x in doc["remediations"] if x["kind"] == "constraint"]
    assert out["artifacts"] == ["remediation/constraint_income.skops"]


def test_a_model_that_respects_the_declaration_gets_no_constraint_remedy():
    train, test = hump_data()
    model = hgb_pipeline(monotonic_cst=[0, 1, 0, 0, 0]).fit(train.drop(columns="good"), train["good"])
    r = remedy(constraint_audit(model, train, test), "constraint")
    assert r.status.value == "skipped" and "no medium-or-high breach" in r.reason and not r.remediations


def test_a_breaching_logistic_model_gets_a_skip_reason():
    train, test = hump_data()
    pre = ColumnTransformer([("spline", SplineTransformer(n_knots=5), ["income"]),
                             ("num", StandardScaler(), ["debt"])])
    model = Pipeline([("pre", pre), ("lr", LogisticRegression(max_iter=1000))])
    model.fit(train.drop(columns="good"), train["good"])
    result = constraint_audit(model, train, test)
    assert any(f.id == f"{PD}/monotone/income" and f.severity.rank >= 2 for f in result.findings)
    r = remedy(result, "constraint")
    assert r.status.value == "skipped" and not r.remediations
    assert "only HistGradientBoosting, LightGBM and XGBoost take monotone constraints" in r.reason
    assert "LogisticRegression" in r.reason


def test_a_one_hot_encoded_feature_is_said_to_be_unconstrainable():
    rng = np.random.default_rng(7)
    n = 1500
    df = pd.DataFrame({"grade": rng.integers(1, 6, n), "debt": rng.normal(10, 3, n)})
    df["good"] = (rng.random(n) < sigmoid(np.where(df["grade"] == 3, 2.0, -1.0))).astype(int)
    train, test = df.iloc[:1000].reset_index(drop=True), df.iloc[1000:].reset_index(drop=True)
    pre = ColumnTransformer([("cat", OneHotEncoder(sparse_output=False), ["grade"])], remainder="passthrough")
    model = Pipeline([("pre", pre), ("gbm", HistGradientBoostingClassifier(max_iter=40, random_state=0))])
    model.fit(train.drop(columns="good"), train["good"])
    result = audit(model, train, test, "good", [PartialDependenceCheck], categorical=["grade"],
                   expect={"monotone": {"grade": 1}}, checks={PD: PD_FAST})
    assert any(f.id == f"{PD}/monotone/grade" for f in result.findings)
    r = remedy(result, "constraint")
    assert r.status.value == "ok" and not r.remediations and not r.artifacts
    assert any("grade: not constrained" in n and "one-hot encoded into 5 model columns" in n for n in r.output.notes)


def test_a_regressor_reports_the_rmse_cost():
    from sklearn.ensemble import HistGradientBoostingRegressor

    train, test = hump_data()
    for df in (train, test):
        df["good"] = 2.0 - ((df["income"] - 50) / 20) ** 2 + 0.1 * df["debt"]
    feats = ["income", "debt"]
    model = HistGradientBoostingRegressor(max_iter=60, random_state=0).fit(train[feats], train["good"])
    result = constraint_audit(model, train[feats + ["good"]], test[feats + ["good"]], categorical=(),
                              task="regression")
    (rem,) = remedy(result, "constraint").remediations
    assert set(rem.after) == {"pdp_fall", "ice_breach_share", "breach_severity", "rmse", "mae"}
    assert rem.after["breach_severity"] == "none" and "RMSE" in rem.summary
    pred = load_artifact(result, rem.artifacts[0]).predict(test[feats])
    assert rem.after["rmse"] == pytest.approx(float(np.sqrt(np.mean((test["good"] - pred) ** 2))), rel=1e-9)
    assert rem.after["rmse"] > rem.before["rmse"]


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_lightgbm_and_xgboost_take_the_constraint(library):
    pytest.importorskip(library)
    train, test = hump_data()
    feats = ["income", "debt"]
    if library == "lightgbm":
        from lightgbm import LGBMClassifier

        model = LGBMClassifier(n_estimators=60, verbose=-1, random_state=0)
        expected = [1, 0]
    else:
        from xgboost import XGBClassifier

        model = XGBClassifier(n_estimators=60, max_depth=3, random_state=0)
        expected = "(1,0)"
    model.fit(train[feats], train["good"])
    result = constraint_audit(model, train[feats + ["good"]], test[feats + ["good"]], categorical=())
    (rem,) = remedy(result, "constraint").remediations
    assert rem.parameters["parameter"] == "monotone_constraints" and rem.parameters["value"] == str(expected)
    assert rem.after["breach_severity"] == "none" and rem.verified
    constrained = load_artifact(result, rem.artifacts[0])
    assert constrained.get_params()["monotone_constraints"] == expected
    p = constrained.predict_proba(test[feats])[:, 1]
    assert rem.after["auc"] == pytest.approx(roc_auc_score(test["good"], p), abs=1e-9)


# ---- the data remedy --------------------------------------------------------------------------------

def segment_pipeline(**kw):
    pre = ColumnTransformer([("cat", OneHotEncoder(sparse_output=False, handle_unknown="ignore"), ["g"])],
                            remainder="passthrough")
    return Pipeline([("pre", pre), ("gbm", HistGradientBoostingClassifier(random_state=0, **kw))])


def rare_segment_data(seed=0):
    """Segment g = B follows the opposite pattern and is 2% of training rows but 25% of test rows."""
    rng = np.random.default_rng(seed)

    def make(n, share_b):
        g = rng.choice(["A", "B"], n, p=[1 - share_b, share_b])
        x1, x2 = rng.normal(size=n), rng.normal(size=n)
        y = (rng.random(n) < np.where(g == "B", sigmoid(-3 * x1), sigmoid(3 * x1))).astype(int)
        return pd.DataFrame({"x1": x1, "x2": x2, "g": g, "y": y})

    return make(1500, 0.02), make(600, 0.25)


def noisy_segment_data(seed=0):
    """Segment g = C has coin-flip labels (in training and test alike, at the same share)."""
    rng = np.random.default_rng(seed)

    def make(n):
        g = rng.choice(["A", "C"], n, p=[0.8, 0.2])
        x1, x2 = rng.normal(size=n), rng.normal(size=n)
        y = (rng.random(n) < sigmoid(3 * x1)).astype(int)
        y = np.where(g == "C", (rng.random(n) < 0.5).astype(int), y)
        return pd.DataFrame({"x1": x1, "x2": x2, "g": g, "y": y})

    return make(1500), make(600)


def segment_audit(model, train, test):
    return audit(model, train, test, "y", [WeakSegmentsCheck], categorical=["g"])


@pytest.fixture(scope="module")
def rare():
    train, test = rare_segment_data()
    model = segment_pipeline().fit(train.drop(columns="y"), train["y"])
    return model, train, test, segment_audit(model, train, test)


def test_under_represented_segment_gets_a_curve_that_supports_more_data(rare):
    model, train, test, result = rare
    f = next(f for f in result.findings if f.id == "residual.segments/g=B")
    r = remedy(result, "data")
    assert r.status.value == "ok", (r.reason, r.error)
    (rem,) = r.remediations
    assert rem.kind == "data" and rem.addresses == (f.id,) and rem.verified
    assert "More training data where g = B is likely to help" in rem.summary
    assert rem.parameters["slope_ci_high"] < 0
    n_b = int((train["g"] == "B").sum())
    assert rem.after["segment_training_rows"] == n_b and rem.before["segment_training_rows"] == int(np.ceil(0.75 * n_b))
    assert rem.after["log_loss"] < rem.before["log_loss"]
    # after (100% of the segment's rows, all other rows within the budget) is a refit on every training
    # row: recompute it, and the audited model's loss, directly
    X, y = train.drop(columns="y"), train["y"]
    refit = clone(model).fit(X, y)
    seg = test[test["g"] == "B"]
    p = refit.predict_proba(seg.drop(columns="y"))[:, 1]
    assert rem.after["log_loss"] == pytest.approx(log_loss(seg["y"], p, labels=[0, 1]), rel=1e-9)
    (curve,) = rem.evidence.tables
    audited = next(row for row in curve.records() if row["share_of_segment_rows"] == "audited model")
    p0 = model.predict_proba(seg.drop(columns="y"))[:, 1]
    assert audited["log_loss"] == pytest.approx(log_loss(seg["y"], p0, labels=[0, 1]), rel=1e-3)
    # the share table, against direct counts
    shares = next(t for t in r.output.evidence.tables if t.name == "segment_shares").records()
    (row,) = shares
    assert row["train_rows"] == n_b and row["test_rows"] == int((test["g"] == "B").sum())
    assert row["under_represented"] == "yes" and row["ratio"] < 0.5


def test_data_evidence_draws_and_findings_json_validates(rare):
    jsonschema = pytest.importorskip("jsonschema")
    _, _, _, result = rare
    (rem,) = remedy(result, "data").remediations
    for fig in rem.evidence.figures:
        assert draw(fig).lstrip().startswith(("<?xml", "<svg"))
    doc = json.loads(render_json(result))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    (out,) = [x for x in doc["remediations"] if x["kind"] == "data"]
    assert set(out["before"]) == set(out["after"]) == {"log_loss", "segment_training_rows"}


def test_a_segment_weak_from_label_noise_does_not_get_more_data_advice():
    train, test = noisy_segment_data()
    model = segment_pipeline(max_iter=60, min_samples_leaf=3, early_stopping=False)
    model.fit(train.drop(columns="y"), train["y"])
    result = segment_audit(model, train, test)
    assert any(f.id == "residual.segments/g=C" and f.severity.rank >= 2 for f in result.findings)
    r = remedy(result, "data")
    assert r.status.value == "ok" and not [x for x in r.remediations if "g = C" in x.title]
    assert any(n.startswith("`g = C`: more data of this kind is unlikely to help") for n in r.output.notes)
    assert any(t.name == "learning_curves" for t in r.output.evidence.tables)
    for fig in r.output.evidence.figures:
        assert draw(fig)


class _ScoreOnly:
    """A model the audit cannot refit (no fit method)."""

    def __init__(self, model):
        self._m = model
        self.classes_ = model.classes_

    def predict_proba(self, X):
        return self._m.predict_proba(X)

    def predict(self, X):
        return self._m.predict(X)


def test_without_a_refit_only_the_shares_are_reported(rare):
    model, train, test, _ = rare
    result = segment_audit(_ScoreOnly(model), train, test)
    r = remedy(result, "data")
    assert r.status.value == "ok" and not r.remediations
    assert any(n.startswith("No learning curves: the model") and "no fit method" in n for n in r.output.notes)
    n_b = int((train["g"] == "B").sum())
    assert any(n.startswith(f"`g = B`: {n_b} training rows") and "under-represented" in n for n in r.output.notes)
