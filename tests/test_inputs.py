"""Model and data sources: skops trust rules, pickle trust, ONNX, Python objects, CSV and Parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

import auditor
from auditor.config import parse_config
from auditor.context import build_context
from auditor.errors import AuditInputError
from auditor.inputs import load_model, load_table, sha256_file


def data(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(10, 3, n),
                       "region": rng.choice(["north", "south"], n)})
    logit = 0.08 * (df["income"] - 50) - 0.3 * (df["debt"] - 10)
    df["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def pipeline(df: pd.DataFrame) -> Pipeline:
    return Pipeline([("enc", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])],
                                               remainder="passthrough")),
                     ("gbm", HistGradientBoostingClassifier(max_iter=20))]).fit(
        df[["income", "debt", "region"]], df["default"])


def context_for(model_path: str, test_path: str, *, trusted: bool = False, **data_opts):
    raw = {"model": {"path": model_path, "trusted": trusted},
           "data": {"test": test_path, "target": "default", **data_opts}}
    cfg = parse_config(raw, base_dir=Path("/"))
    return build_context(cfg, load_model(cfg.model.path, trusted=trusted), load_table(cfg.data.test, role="test"), None)


def test_skops_pipeline_with_sklearn_types_loads_without_trust(tmp_path: Path) -> None:
    df = data()
    sio.dump(pipeline(df), tmp_path / "m.skops")
    loaded = load_model(str(tmp_path / "m.skops"), trusted=False)
    assert loaded.sha256 == sha256_file(tmp_path / "m.skops")
    assert loaded.adapter.kind == "sklearn.pipeline.Pipeline"
    assert loaded.adapter.feature_names() == ("income", "debt", "region")


def test_skops_with_foreign_types_needs_trust(tmp_path: Path) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    df = data()
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(df[["income", "debt"]], df["default"])
    sio.dump(model, tmp_path / "m.skops")
    with pytest.raises(AuditInputError, match=r"lightgbm.*trusted = true"):
        load_model(str(tmp_path / "m.skops"), trusted=False)
    assert load_model(str(tmp_path / "m.skops"), trusted=True).adapter.has_proba()


def test_pickle_needs_trust_and_corrupt_files_are_named(tmp_path: Path) -> None:
    df = data()
    joblib.dump(pipeline(df), tmp_path / "m.pkl")
    with pytest.raises(AuditInputError, match="m.pkl"):
        load_model(str(tmp_path / "m.pkl"), trusted=False)
    assert load_model(str(tmp_path / "m.pkl"), trusted=True).adapter.has_proba()
    (tmp_path / "bad.skops").write_bytes(b"not a zip")
    with pytest.raises(AuditInputError, match="bad.skops"):
        load_model(str(tmp_path / "bad.skops"), trusted=False)
    (tmp_path / "m.txt").write_text("model")
    with pytest.raises(AuditInputError, match="unsupported format"):
        load_model(str(tmp_path / "m.txt"), trusted=True)


def test_parquet_and_csv_give_the_same_audit_inputs(tmp_path: Path) -> None:
    df = data()
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    a = load_table(str(tmp_path / "t.csv"), role="test").frame
    b = load_table(str(tmp_path / "t.parquet"), role="test").frame
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    (tmp_path / "broken.parquet").write_bytes(b"garbage")
    with pytest.raises(AuditInputError, match="broken.parquet"):
        load_table(str(tmp_path / "broken.parquet"), role="test")


def test_onnx_pipeline_with_string_column_matches_sklearn(tmp_path: Path) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    df = data()
    model = Pipeline([("enc", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])],
                                                remainder="passthrough")),
                      ("lr", LogisticRegression(max_iter=500))]).fit(df[["income", "debt", "region"]], df["default"])
    onx = skl2onnx.convert_sklearn(
        model, initial_types=[("income", FloatTensorType([None, 1])), ("debt", FloatTensorType([None, 1])),
                              ("region", StringTensorType([None, 1]))],
        options={id(model): {"zipmap": False}}, target_opset=17)
    (tmp_path / "m.onnx").write_bytes(onx.SerializeToString())
    df.to_csv(tmp_path / "t.csv", index=False)
    ctx = context_for(str(tmp_path / "m.onnx"), str(tmp_path / "t.csv"))
    assert ctx.task == "classification" and ctx.features == ("income", "debt", "region")
    expected = model.predict_proba(df[["income", "debt", "region"]])[:, 1]
    np.testing.assert_allclose(ctx.predictions("test").score, expected, atol=1e-5)


def test_module_object_needs_trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "scoring_pkg.py").write_text(
        "import numpy as np\n"
        "def build():\n"
        "    class M:\n"
        "        def predict_proba(self, X):\n"
        "            p = 1 / (1 + np.exp(-(X['income'].to_numpy() - 50) / 10))\n"
        "            return np.column_stack([1 - p, p])\n"
        "        def predict(self, X):\n"
        "            return (self.predict_proba(X)[:, 1] > 0.5).astype(int)\n"
        "    return M()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AuditInputError, match="trusted"):
        load_model("scoring_pkg:build", trusted=False)
    loaded = load_model("scoring_pkg:build", trusted=True)
    assert loaded.adapter.has_proba() and loaded.sha256 == sha256_file(tmp_path / "scoring_pkg.py")
    with pytest.raises(AuditInputError, match="nothing"):
        load_model("scoring_pkg:nothing", trusted=True)
    sys.modules.pop("scoring_pkg", None)


def test_string_target_and_positive_class(tmp_path: Path) -> None:
    df = data()
    df["default"] = np.where(df["default"] == 1, "bad", "good")
    model = pipeline(df)
    sio.dump(model, tmp_path / "m.skops")
    df.to_csv(tmp_path / "t.csv", index=False)
    ctx = context_for(str(tmp_path / "m.skops"), str(tmp_path / "t.csv"))
    assert ctx.classes == ("bad", "good") and ctx.positive_class == "good"
    np.testing.assert_array_equal(ctx.y_binary("test"), (df["default"] == "good").astype(int))


def test_notebook_api_audits_and_writes(tmp_path: Path) -> None:
    df = data(400)
    model = pipeline(df.iloc[:300])
    result = auditor.audit(model, test=df.iloc[300:], train=df.iloc[:300], target="default",
                           skip=["sensitivity.adversarial", "explain.importance", "residual.analysis"])
    assert result.status == "complete"
    assert "Gate" in result._repr_html_() or "gate" in result._repr_html_()
    written = result.write(tmp_path / "out", ("json", "html"))
    assert sorted(p.name for p in written.values()) == ["findings.json", "report.html"]
    doc = result.to_json()
    assert doc["inputs"]["test"]["path"].startswith("<in-memory")


def test_a_large_model_call_goes_in_pieces_in_order(monkeypatch) -> None:
    """The adapter splits a call above BATCH_ROWS rows (tree ensembles score cache-sized pieces
    faster) and puts the pieces back in row order; a call at or below it goes whole."""
    from auditor.model import PythonModel

    seen: list[int] = []

    class Echo:
        def predict_proba(self, X):
            seen.append(len(X))
            v = X["x"].to_numpy(dtype=float)
            return np.column_stack([1 - v / 1e4, v / 1e4])

        def predict(self, X):
            return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    monkeypatch.setattr("auditor.model.BATCH_ROWS", 100)
    adapter = PythonModel(Echo())
    X = pd.DataFrame({"x": np.arange(250)})
    out = adapter.predict_proba(X)
    assert seen == [100, 100, 50]
    np.testing.assert_array_equal(out[:, 1], np.arange(250) / 1e4)
    seen.clear()
    adapter.predict_proba(X.iloc[:100])
    assert seen == [100]
