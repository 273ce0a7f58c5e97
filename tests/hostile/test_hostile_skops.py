"""Hostile .skops files (issue 8, security 1): an untrusted file must not run code or crash Python.

Each crafted file is built in the test. The crafted trees are shown to be real (they crash a plain
trusted skops load in a subprocess) before auditor is shown to refuse them with exit 2.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from conftest import ROOT, one_line_error
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import dump_svmlight_file, load_iris
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from auditor import inputs
from auditor.errors import AuditInputError
from auditor.inputs import load_model

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
FEATURES = ["income", "debt"]
N_TEST = 100
TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def run_cli(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", "run", "config.toml", "--out", str(project / "out")],
                          capture_output=True, text=True, cwd=project, env={**ENV, "PYTHONPATH": str(ROOT)},
                          timeout=300)


def make_project(tmp_path: Path, model: Any, *, trusted: bool = False) -> Path:
    """Data, the model saved with skops as model.skops, and config.toml in tmp_path."""
    X, y = data()
    frame = X.assign(default=y)
    frame.iloc[:-N_TEST].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[-N_TEST:].to_csv(tmp_path / "test.csv", index=False)
    sio.dump(model, tmp_path / "model.skops")
    (tmp_path / "config.toml").write_text(
        f'[audit]\nname = "hostile"\n[model]\npath = "model.skops"\ntrusted = {str(trusted).lower()}\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\ntarget = "default"\nfeatures = ["income", "debt"]\n'
        '[checks]\nskip = ["explain.importance", "sensitivity.adversarial", "sensitivity.partial_dependence"]\n')
    return tmp_path


def data(n: int = 400) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(10, 3, n)})
    logit = 0.08 * (X["income"] - 50) - 0.3 * (X["debt"] - 10)
    return X, pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), name="default")


def svmlight_pipeline(target: Path) -> Pipeline:
    """A pipeline whose first step calls sklearn.datasets.dump_svmlight_file(X, y, f=target)."""
    X, y = data()
    model = LogisticRegression().fit(X, y)
    writer = FunctionTransformer(dump_svmlight_file, kw_args={"y": np.zeros(N_TEST), "f": str(target)})
    return Pipeline([("write", writer), ("model", model)])


def craft_nodes(src: Path, dst: Path, class_name: str, field: str, value: int) -> None:
    """Copy a skops zip, setting ``field`` of node 0 in the first ``class_name`` object's node array."""
    with zipfile.ZipFile(src) as zin:
        schema = json.loads(zin.read("schema.json"))
        found: list[str] = []

        def visit(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("__class__") == class_name and not found:
                    state = node["content"]["content"]
                    found.append(state["nodes"]["file"])
                for v in node.values():
                    visit(v)
            elif isinstance(node, list):
                for v in node:
                    visit(v)

        visit(schema)
        assert found, f"no {class_name} in {src}"
        nodes = np.load(io.BytesIO(zin.read(found[0])), allow_pickle=False)
        nodes[field][0] = value
        buf = io.BytesIO()
        np.save(buf, nodes, allow_pickle=False)
        with zipfile.ZipFile(dst, "w") as zout:
            for item in zin.infolist():
                zout.writestr(item, buf.getvalue() if item.filename == found[0] else zin.read(item.filename))


def trusted_skops_predict_returncode(path: Path) -> int:
    """Load with skops trusting every type and predict, in a subprocess (the crash a refusal prevents)."""
    code = ("import sys, numpy as np, skops.io as sio\n"
            "m = sio.load(sys.argv[1], trusted=sio.get_untrusted_types(file=sys.argv[1]))\n"
            "m.predict(np.zeros((5, 2)))\n")
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, env=ENV,
                          timeout=120).returncode


# 1. Functions are never trusted by name -------------------------------------------------------------


def test_function_transformer_calling_a_sklearn_function_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "written_by_model.svm"
    path = tmp_path / "m.skops"
    sio.dump(svmlight_pipeline(target), path)
    assert "sklearn.datasets._svmlight_format_io.dump_svmlight_file" in sio.get_untrusted_types(file=path)
    before = files_under(tmp_path)
    with pytest.raises(AuditInputError, match=r"auditor does not trust: sklearn\.datasets\._svmlight_format_io"
                                              r"\.dump_svmlight_file.*trusted = true only if you trust"):
        load_model(str(path), trusted=False)
    assert not target.exists()
    assert files_under(tmp_path) == before


def test_cli_refuses_the_function_model_with_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "written_by_model.svm"
    project = make_project(tmp_path, svmlight_pipeline(target))
    before = files_under(project)
    line = one_line_error(run_cli(project))
    assert "dump_svmlight_file" in line and "trusted = true" in line
    assert not target.exists() and not (project / "out").exists()
    assert files_under(project) == before


def test_the_function_model_is_real_it_writes_when_trusted(tmp_path: Path) -> None:
    """Control for the refusal above: with explicit trust the same file loads, and predicting writes."""
    target = tmp_path / "written_by_model.svm"
    path = tmp_path / "m.skops"
    sio.dump(svmlight_pipeline(target), path)
    model = load_model(str(path), trusted=True)
    assert not target.exists()  # loading alone runs nothing
    X, _ = data()
    with pytest.raises(Exception):  # noqa: B017 - whatever the dumped rows make the final step raise
        model.adapter.predict_proba(X.iloc[-N_TEST:])
    assert target.is_file()


def test_a_selection_score_function_is_a_function_too(tmp_path: Path) -> None:
    X, y = data()
    sio.dump(make_pipeline(SelectKBest(f_classif, k=1), LogisticRegression()).fit(X, y), tmp_path / "m.skops")
    with pytest.raises(AuditInputError, match="f_classif"):
        load_model(str(tmp_path / "m.skops"), trusted=False)
    assert load_model(str(tmp_path / "m.skops"), trusted=True).adapter.has_proba()


def test_allow_list_holds_only_classes() -> None:
    for name in inputs._TRUSTED_CLASSES | inputs._CHECKED_TREE_TYPES:
        module, _, attr = name.rpartition(".")
        obj = getattr(importlib.import_module(module), attr)
        assert isinstance(obj, type), name
    assert not any("dump_svmlight" in n or n.startswith("sklearn.datasets") for n in inputs._TRUSTED_CLASSES)


# 2. Tree arrays that compiled code walks unchecked --------------------------------------------------


@pytest.mark.parametrize("kind", ["hgb", "tree"])
def test_crafted_out_of_range_child_is_refused_without_a_crash(tmp_path: Path, kind: str) -> None:
    X, y = data()
    if kind == "hgb":
        model, name, field = HistGradientBoostingClassifier(max_iter=3).fit(X, y), "TreePredictor", "left"
    else:
        model = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
        name, field = "Tree", "left_child"
    project = make_project(tmp_path, model)
    crafted = project / "crafted.skops"
    craft_nodes(project / "model.skops", crafted, name, field, 10**9)
    crafted.replace(project / "model.skops")
    # The craft is real: skops with every type trusted crashes the interpreter when predicting.
    assert trusted_skops_predict_returncode(project / "model.skops") < 0
    with pytest.raises(AuditInputError, match=rf"tree bounds check \({name}: a child index is out of range"):
        load_model(str(project / "model.skops"), trusted=False)
    before = files_under(project)
    line = one_line_error(run_cli(project))
    assert "tree bounds check" in line and name in line and "trusted = true" in line
    assert files_under(project) == before


@pytest.mark.parametrize(("field", "value", "message"), [
    ("left", 0, "not after its parent"),  # a loop: predict would never end
    ("feature_idx", 7, "feature index out of range"),
    ("feature_idx", -1, "feature index out of range"),
])
def test_other_crafted_predictor_fields_are_refused(tmp_path: Path, field: str, value: int, message: str) -> None:
    X, y = data()
    sio.dump(HistGradientBoostingRegressor(max_iter=2).fit(X, y.astype(float)), tmp_path / "m.skops")
    craft_nodes(tmp_path / "m.skops", tmp_path / "bad.skops", "TreePredictor", field, value)
    with pytest.raises(AuditInputError, match=message):
        load_model(str(tmp_path / "bad.skops"), trusted=False)


def test_crafted_tree_node_count_cutting_off_children_is_refused(tmp_path: Path) -> None:
    """A node_count below the stored nodes leaves children outside the arrays sklearn exposes.

    (A count above them is clamped by Tree.__setstate__, but auditor checks that too.)"""
    X, y = data()
    sio.dump(DecisionTreeClassifier(max_depth=2).fit(X, y), tmp_path / "m.skops")
    with zipfile.ZipFile(tmp_path / "m.skops") as zin:
        schema = json.loads(zin.read("schema.json"))
        count = schema["content"]["content"]["tree_"]["content"]["content"]["node_count"]
        count.update(content="3", __id__=1)  # a fresh id: skops reuses objects with the same id
        with zipfile.ZipFile(tmp_path / "bad.skops", "w") as zout:
            for item in zin.infolist():
                body = json.dumps(schema) if item.filename == "schema.json" else zin.read(item.filename)
                zout.writestr(item, body)
    with pytest.raises(AuditInputError, match="Tree: a child index is out of range"):
        load_model(str(tmp_path / "bad.skops"), trusted=False)


def test_a_tree_predictor_outside_its_estimator_is_refused(tmp_path: Path) -> None:
    X, y = data()
    hgb = HistGradientBoostingClassifier(max_iter=2).fit(X, y)
    sio.dump({"model": hgb, "spare": hgb._predictors[0][0].__class__(
        hgb._predictors[0][0].nodes.copy(), hgb._predictors[0][0].binned_left_cat_bitsets,
        hgb._predictors[0][0].raw_left_cat_bitsets)}, tmp_path / "m.skops")
    with pytest.raises(AuditInputError, match="TreePredictor outside the estimator"):
        load_model(str(tmp_path / "m.skops"), trusted=False)


def test_hgb_with_native_categorical_preprocessing_needs_trust(tmp_path: Path) -> None:
    X, y = data()
    X = X.assign(region=pd.Categorical(np.where(X["income"] > 50, "north", "south")))
    model = HistGradientBoostingClassifier(max_iter=2, categorical_features="from_dtype").fit(X, y)
    sio.dump(model, tmp_path / "m.skops")
    with pytest.raises(AuditInputError, match=r"functools\.partial.*trusted = true"):
        load_model(str(tmp_path / "m.skops"), trusted=False)
    assert load_model(str(tmp_path / "m.skops"), trusted=True).adapter.has_proba()


# 3. Real models still load without trust -------------------------------------------------------------


def test_demo_model_loads_without_trust() -> None:
    path = ROOT / "sample_models" / "credit_model.skops"
    assert TREE_PREDICTOR in sio.get_untrusted_types(file=path)  # the demo is a HistGradientBoosting pipeline
    test = pd.read_csv(ROOT / "sample_models" / "test.csv")
    reference = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    loaded = load_model(str(path), trusted=False)
    cols = list(reference.feature_names_in_)
    assert np.allclose(loaded.adapter.predict_proba(test[cols]), reference.predict_proba(test[cols]))


def common_models() -> dict[str, Any]:
    X, y = data()
    X = X.assign(region=np.where(X["income"] > 50, "north", "south"))
    X.loc[X.index[::9], "debt"] = np.nan

    def prep() -> ColumnTransformer:
        return ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), FEATURES),
                                  ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])])

    models = {
        "logistic": Pipeline([("prep", prep()), ("model", LogisticRegression())]),
        "forest": Pipeline([("prep", prep()), ("model", RandomForestClassifier(n_estimators=5, random_state=0))]),
        "gbm": Pipeline([("prep", prep()), ("model", GradientBoostingClassifier(n_estimators=5))]),
        "hgb": Pipeline([("prep", prep()), ("model", HistGradientBoostingClassifier(max_iter=5))]),
        "extra_selector": Pipeline([
            ("prep", ColumnTransformer([("num", SimpleImputer(), make_column_selector(dtype_include="number")),
                                        ("cat", OneHotEncoder(), ["region"])])),
            ("model", ExtraTreesClassifier(n_estimators=5, random_state=0))]),
        "ufunc_calibrated": Pipeline([("prep", prep()), ("tanh", FunctionTransformer(np.tanh)),
                                      ("model", CalibratedClassifierCV(LogisticRegression(), cv=3))]),
    }
    fitted = {name: (m.fit(X, y), X) for name, m in models.items()}
    iris_X, iris_y = load_iris(return_X_y=True, as_frame=True)
    fitted["gbm_3_classes"] = (GradientBoostingClassifier(n_estimators=3).fit(iris_X, iris_y), iris_X)
    fitted["hgb_3_classes"] = (HistGradientBoostingClassifier(max_iter=3).fit(iris_X, iris_y), iris_X)
    return fitted


def test_common_pipelines_load_without_trust_and_predict_the_same(tmp_path: Path) -> None:
    for name, (model, X) in common_models().items():
        sio.dump(model, tmp_path / f"{name}.skops")
        loaded = load_model(str(tmp_path / f"{name}.skops"), trusted=False)
        assert np.allclose(loaded.adapter.predict_proba(X), model.predict_proba(X)), name


# 4. Explicit trust still loads what the user trusts ---------------------------------------------------


def test_trusted_true_loads_files_auditor_does_not_trust(tmp_path: Path) -> None:
    X, y = data()
    lgb = pytest.importorskip("lightgbm")
    sio.dump(lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y), tmp_path / "m.skops")
    with pytest.raises(AuditInputError, match="lightgbm"):
        load_model(str(tmp_path / "m.skops"), trusted=False)
    assert load_model(str(tmp_path / "m.skops"), trusted=True).adapter.has_proba()
    # A crafted tree loads under explicit trust (the user vouched for the file; it is not run here).
    sio.dump(HistGradientBoostingClassifier(max_iter=2).fit(X, y), tmp_path / "h.skops")
    craft_nodes(tmp_path / "h.skops", tmp_path / "bad.skops", "TreePredictor", "left", 10**9)
    assert load_model(str(tmp_path / "bad.skops"), trusted=True).adapter.has_proba()
