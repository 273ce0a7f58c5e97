"""Issue 8, items 8-11: faulty data and models get a clear answer, not a crashed check.

* Item 8: problems found before any check runs are exit 2 with one line (scores of the wrong
  shape, outside [0, 1] or non-finite everywhere; repeated CSV header names; empty
  ``report.formats``; seeds outside [0, 2**32); an id or protected column equal to the target).
* Item 9: an all-missing feature, infinities, NaN scores on some rows and duplicate ids are
  ``data.quality`` findings naming the column, and every check of a whole audit completes.
* Item 10: a category level with ``$`` goes through figures and the HTML report.
* Item 11: a test target written 1.0/0.0 against a training target 1/0 has not drifted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, run_check, svg_of
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from auditor.analysis.drift import categorical_drift
from auditor.analysis.quality import duplicated_ids, label_balance, level_text, unseen_levels
from auditor.checks.data import DriftCheck, QualityCheck
from auditor.config import AuditConfig, parse_config
from auditor.engine import prepare_objects
from auditor.errors import AuditInputError, ConfigError
from auditor.findings import Status
from auditor.inputs import load_model, load_table

# the module's expensive fixtures (whole audits) run once: all its tests in one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("hostile_data")

SAMPLES = ROOT / "sample_models"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


# ---- small synthetic data and models ---------------------------------------------------------

def small_data(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(10, 3, n),
                       "region": rng.choice(["north", "south", "east"], n)})
    logit = 0.08 * (df["income"] - 50) - 0.3 * (df["debt"] - 10)
    df["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def small_model(train: pd.DataFrame) -> Pipeline:
    model = Pipeline([("enc", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])],
                                                remainder="passthrough")),
                      ("lr", LogisticRegression(max_iter=1000))])
    return model.fit(train[["income", "debt", "region"]], train["default"])


class Proba:
    """A classifier whose predict_proba is whatever ``fn(X)`` returns (a broken model)."""

    classes_ = np.array([0, 1])
    feature_names_in_ = np.array(["income", "debt", "region"])

    def __init__(self, fn):
        self.fn = fn

    def predict_proba(self, X):
        return self.fn(X)

    def predict(self, X):
        return (np.asarray(self.fn(X))[:, 1] >= 0.5).astype(int)


class NanWhere:
    """Wraps a fitted classifier: NaN probabilities on rows where ``column > cut``."""

    def __init__(self, model, column: str, cut: float):
        self.model, self.column, self.cut = model, column, cut
        self.classes_ = model.classes_
        self.feature_names_in_ = model.feature_names_in_

    def predict_proba(self, X):
        p = np.asarray(self.model.predict_proba(X), dtype=float).copy()
        p[(pd.to_numeric(X[self.column], errors="coerce") > self.cut).to_numpy()] = np.nan
        return p

    def predict(self, X):
        return self.classes_[np.argmax(np.nan_to_num(self.predict_proba(X)), axis=1)]


@pytest.fixture(scope="module")
def small():
    df = small_data()
    train, test = df.iloc[:300].reset_index(drop=True), df.iloc[300:].reset_index(drop=True)
    return small_model(train), train, test


def _prepare(model, train, test, **kw):
    return prepare_objects(model, test=test, train=train, target="default", **kw)


# ---- item 8: initial scores ------------------------------------------------------------------

def _half(X):
    return np.full((len(X), 2), 0.5)


@pytest.mark.parametrize("fn, words", [
    (lambda X: np.full((len(X), 2, 2), 0.25), ["shape (", "2, 2)", "one probability column per class"]),
    (lambda X: np.full((len(X), 3), 1 / 3), ["shape (", ", 3)", "2 classes"]),
    (lambda X: np.full((len(X), 2), np.nan), ["no finite probabilities", "test"]),
    (lambda X: np.column_stack([-np.ones(len(X)), 2 * np.ones(len(X))]), ["outside [0, 1]", "from -1 to 2"]),
    (lambda X: np.where(np.arange(len(X))[:, None] == 3, [[1.5, -0.5]], [[0.4, 0.6]]), ["outside [0, 1]", "1 of"]),
])
def test_broken_probabilities_are_refused_before_any_check(small, fn, words) -> None:
    _, train, test = small
    with pytest.raises(AuditInputError) as err:
        _prepare(Proba(fn), train, test)
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_regression_predictions_non_finite_everywhere_are_refused() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=100)})
    df["y"] = df["x"] * 2 + rng.normal(size=100)

    class Inf:
        def predict(self, X):
            return np.full(len(X), np.inf)

    with pytest.raises(AuditInputError, match="no finite predictions"):
        prepare_objects(Inf(), test=df, target="y", features=["x"], task="regression")
    good = LinearRegression().fit(df[["x"]], df["y"])
    assert prepare_objects(good, test=df, target="y").context.unscored == {}


def test_valid_probabilities_pass_and_nothing_is_left_out(small) -> None:
    model, train, test = small
    ctx = _prepare(model, train, test).context
    assert ctx.unscored == {} and len(ctx.test) == len(test) and len(ctx.train) == len(train)


def test_nan_scores_on_some_rows_leave_them_out_and_are_reported(small) -> None:
    model, train, test = small
    cut = float(test["income"].quantile(0.9))
    audit = _prepare(NanWhere(model, "income", cut), train, test, id=None)
    ctx = audit.context
    expected = np.flatnonzero(test["income"].to_numpy() > cut)
    assert ctx.unscored["test"].positions == tuple(expected.tolist())
    assert len(ctx.test) == len(test) - len(expected)
    assert np.isfinite(ctx.predictions("test").proba).all()
    assert ctx.unscored["test"].set_apart_by == ("income",)
    r = run_check(QualityCheck, NanWhere(model, "income", cut), test=test, train=train, target="default")
    f = next(f for f in r.findings if f.id == "data.quality/unscored/test")
    assert f.features == ("income",) and f.metrics["unscored_rows"] == len(expected)
    assert f.rule is not None and f.rule.interval is not None and f.rule.interval[0] < len(expected) / len(test)
    assert "income" in f.summary and "left out" in f.summary
    # 10 of 100 rows: the 95% Wilson interval, computed directly, starts above 5%, so high
    k, n, z = len(expected), len(test), 1.959963984540054
    p = k / n
    lo = (p + z * z / (2 * n) - z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    assert k == 10 and f.rule.interval[0] == pytest.approx(lo, abs=1e-6) and lo > 0.05
    assert f.severity.value == "high"


def test_a_few_nan_scores_are_medium(small) -> None:
    model, train, test = small
    cut = float(test["income"].sort_values().iloc[-3])  # 2 of 100 rows
    r = run_check(QualityCheck, NanWhere(model, "income", cut), test=test, train=train, target="default")
    f = next(f for f in r.findings if f.id == "data.quality/unscored/test")
    assert f.metrics["unscored_rows"] == 2 and f.severity.value == "medium"


def test_nan_scores_leaving_too_few_rows_are_refused(small) -> None:
    model, train, test = small
    cut = float(test["income"].sort_values().iloc[5])
    with pytest.raises(AuditInputError, match="rows without a finite score"):
        _prepare(NanWhere(model, "income", cut), train.assign(income=cut - 1.0), test)


# ---- item 8: files and config ----------------------------------------------------------------

def test_repeated_csv_header_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("id,credit_amount,age,credit_amount\n1,100,30,999\n2,200,40,888\n")
    assert "credit_amount.1" in pd.read_csv(path).columns  # what pandas would silently do
    with pytest.raises(AuditInputError) as err:
        load_table(str(path), role="test")
    assert "'credit_amount'" in str(err.value) and "repeated" in str(err.value)
    ok = tmp_path / "ok.csv"
    ok.write_text(",credit_amount,age\n0,100,30\n1,200,40\n")  # a blank index header is fine
    assert list(load_table(str(ok), role="test").frame.columns)[1:] == ["credit_amount", "age"]


def _raw(**sections) -> dict:
    raw = {"audit": {"name": "x"}, "model": {"path": "m.skops"}, "data": {"test": "t.csv", "target": "y"}}
    for k, v in sections.items():
        raw[k] = {**raw.get(k, {}), **v}
    return raw


def _config(**sections) -> AuditConfig:
    return parse_config(_raw(**sections), base_dir=Path("/tmp"))


def test_empty_report_formats_is_refused() -> None:
    with pytest.raises(ConfigError, match="report.formats"):
        _config(report={"formats": []})
    cfg = _config(report={"formats": ["json"]})
    with pytest.raises(ConfigError, match="--format"):
        cfg.with_overrides(formats=())


@pytest.mark.parametrize("seed", [-1, 2**32, 2**40])
def test_seed_outside_the_numpy_range_is_refused(seed: int) -> None:
    with pytest.raises(ConfigError, match="audit.seed"):
        _config(audit={"seed": seed})
    with pytest.raises(ConfigError, match="--seed"):
        _config().with_overrides(seed=seed)


def test_seed_at_the_range_ends_is_accepted() -> None:
    assert _config(audit={"seed": 2**32 - 1}).audit.seed == 2**32 - 1
    assert _config().with_overrides(seed=0).audit.seed == 0


def test_id_or_protected_equal_to_the_target_is_refused() -> None:
    with pytest.raises(ConfigError, match="data.id.*target column 'y'"):
        _config(data={"id": "y"})
    with pytest.raises(ConfigError, match="data.protected.*target column 'y'"):
        _config(data={"protected": ["sex", "y"]})
    assert _config(data={"id": "key", "protected": ["sex"]}).data.id == "key"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True, cwd=cwd,
                          env={**ENV, "PYTHONPATH": str(ROOT)}, timeout=300)


def _one_line_exit_2(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture()
def demo_copy(tmp_path: Path) -> Path:
    for name in ("credit_model.skops", "train.csv", "test.csv", "audit.toml"):
        (tmp_path / name).write_bytes((SAMPLES / name).read_bytes())
    return tmp_path


def test_cli_exit_2_with_one_line(demo_copy: Path) -> None:
    toml = (demo_copy / "audit.toml").read_text()
    (demo_copy / "empty.toml").write_text(toml.replace('formats = ["html", "pdf", "json"]', "formats = []"))
    line = _one_line_exit_2(_cli("run", "empty.toml", cwd=demo_copy))
    assert "report.formats" in line
    line = _one_line_exit_2(_cli("run", "audit.toml", "--seed", str(2**32), cwd=demo_copy))
    assert "--seed" in line
    text = (demo_copy / "test.csv").read_text().splitlines()
    header = text[0].split(",")
    dup = [h if h != "age" else "credit_amount" for h in header]
    (demo_copy / "test.csv").write_text("\n".join([",".join(dup)] + text[1:]) + "\n")
    line = _one_line_exit_2(_cli("run", "audit.toml", "--out", str(demo_copy / "out"), cwd=demo_copy))
    assert "credit_amount" in line and "test.csv" in line
    assert not (demo_copy / "out").exists()


# ---- item 11: labels by value ----------------------------------------------------------------

def test_level_text_compares_numbers_by_value() -> None:
    assert level_text(pd.Series([1, 0])).tolist() == level_text(pd.Series([1.0, 0.0])).tolist() == ["1", "0"]
    assert level_text(pd.Series(["1.0", "007", "a"])).tolist() == ["1", "007", "a"]
    assert level_text(pd.Series([2**62 + 1])).tolist() == [str(2**62 + 1)]
    assert level_text(pd.Series([0.5, np.nan])).tolist()[0] == "0.5"
    assert pd.isna(level_text(pd.Series([0.5, np.nan])).tolist()[1])
    assert label_balance(pd.Series([1.0, 0.0, 1.0])).classes == label_balance(pd.Series([1, 0, 1])).classes
    assert unseen_levels(pd.Series([1, 2]), pd.Series([1.0, 2.0, np.nan])).levels == ()
    d = categorical_drift(pd.Series([1, 0] * 50), pd.Series([1.0, 0.0] * 50))
    assert d.psi == 0.0 and d.p_value == 1.0


def test_target_written_as_floats_has_not_drifted(small) -> None:
    model, train, test = small
    r = run_check(DriftCheck, model, test=test.assign(default=test["default"].astype(float)), train=train,
                  target="default")
    assert not any(f.id == "data.drift/default" for f in r.findings)
    assert r.evidence.metrics["target_psi"] < 0.05


def test_a_real_target_shift_is_still_found(small) -> None:
    model, train, test = small
    rng = np.random.default_rng(3)
    shifted = test.assign(default=(rng.random(len(test)) < 0.9).astype(float))  # about 90% 1.0
    r = run_check(DriftCheck, model, test=shifted, train=train, target="default")
    f = next(f for f in r.findings if f.id == "data.drift/default")
    # the direct PSI of the two class shares
    p_tr = train["default"].mean()
    p_te = shifted["default"].mean()
    direct = (p_te - p_tr) * np.log(p_te / p_tr) + ((1 - p_te) - (1 - p_tr)) * np.log((1 - p_te) / (1 - p_tr))
    assert f.metrics["psi"] == pytest.approx(direct, rel=1e-6)


# ---- item 9: findings, not crashes (quality check on small data) ---------------------------------

def test_infinities_and_duplicate_ids_are_quality_findings(small) -> None:
    _, train, test = small
    train = train.assign(key=np.arange(len(train)))
    test = test.assign(key=np.arange(len(test)))
    train.loc[[1, 2], "debt"] = np.inf
    test.loc[[4], "income"] = -np.inf
    test.loc[[7, 8, 9], "key"] = 5
    r = run_check(QualityCheck, Proba(_half), test=test, train=train, target="default", id="key",
                  features=["income", "debt", "region"])
    by_id = {f.id: f for f in r.findings}
    inf_debt, inf_income = by_id["data.quality/infinite/debt"], by_id["data.quality/infinite/income"]
    assert inf_debt.metrics == {"infinite_train": 2} and inf_income.metrics == {"infinite_test": 1}
    assert inf_debt.features == ("debt",) and inf_debt.rule is not None
    dup = by_id["data.quality/duplicate_ids/test"]
    assert dup.features == ("key",) and dup.metrics["rows_with_shared_id"] == 4 and dup.severity.value == "medium"
    assert "'5' (4 rows)" in dup.summary and dup.rule is not None
    assert "data.quality/duplicate_ids/train" not in by_id
    assert duplicated_ids(pd.Series([1, 1.0, 2, np.nan, np.nan])).duplicated == 2  # by value; missing not an id


def test_clean_data_has_no_new_quality_findings(small) -> None:
    model, train, test = small
    r = run_check(QualityCheck, model, test=test.assign(key=np.arange(len(test))),
                  train=train.assign(key=np.arange(len(train))), target="default", id="key",
                  features=["income", "debt", "region"])
    kinds = {f.id.split("/")[1] for f in r.findings}
    assert not kinds & {"infinite", "duplicate_ids", "unscored", "missing"}


# ---- whole audits on the demo data -------------------------------------------------------------

def _demo():
    model = load_model(str(SAMPLES / "credit_model.skops"), trusted=False).adapter.obj
    return model, pd.read_csv(SAMPLES / "train.csv"), pd.read_csv(SAMPLES / "test.csv")


def _demo_audit(model, train, test, **kw):
    return prepare_objects(model, test=test, train=train, target="risk", id="applicant_id",
                           protected=["sex", "age_band"], reference={"sex": "male", "age_band": "25 and over"},
                           positive_class=1, favorable=1, expect={"monotone": {"duration": -1}}, **kw)


def _no_errors(audit, result) -> None:
    bad = {c.id: (c.error, audit.tracebacks.get(c.id, "")[-600:]) for c in result.checks if c.status == Status.ERROR}
    assert not bad, bad
    for c in result.checks:
        assert c.status == Status.OK or c.reason, c.id


@pytest.fixture(scope="module")
def faulty_demo(tmp_path_factory):
    """The demo audit with every data fault of items 9-11 at once: an all-missing feature,
    infinities in train and test, NaN scores on the test rows over 60 years (train ages capped at 60), duplicate ids, a
    category level 'x^2 $_$', and a test target written 1.0/0.0. Every check runs."""
    model, train, test = _demo()
    for df in (train, test):
        df["credit_amount"] = np.nan
        df["duration"] = df["duration"].astype(float)
        df.loc[df.index[:20], "purpose"] = "x^2 $_$"
    train.loc[[3, 5], "duration"] = np.inf
    test.loc[[7], "duration"] = -np.inf
    test.loc[[10, 11, 12], "applicant_id"] = test.loc[10, "applicant_id"]
    train["age"] = train["age"].clip(upper=60)  # NaN scores on test rows only (train is not screened)
    test["risk"] = test["risk"].astype(float)
    audit = _demo_audit(NanWhere(model, "age", 60), train, test)
    result = audit.run()
    out = tmp_path_factory.mktemp("faulty") / "report"
    written = result.write(out, ("html", "json"))
    return audit, result, written, (train, test)


def test_faulty_demo_every_check_completes(faulty_demo) -> None:
    audit, result, written, _ = faulty_demo
    _no_errors(audit, result)
    assert {c.id for c in result.checks if c.status == Status.OK} >= {
        "residual.analysis", "residual.segments", "fairness.proxy", "security.model_extraction",
        "security.attribute_inference", "sensitivity.random_attack", "sensitivity.partial_dependence",
        "performance.metrics", "benchmark.comparison", "data.leakage"}
    html = written["html"].read_text(encoding="utf-8")
    assert "x^2 $_$" in html  # drawn as text in a figure or shown in a table, never parsed as math


def test_faulty_demo_each_fault_is_a_named_finding(faulty_demo) -> None:
    audit, result, _, (train, test) = faulty_demo
    q = next(c for c in result.checks if c.id == "data.quality")
    by_id = {f.id: f for f in q.findings}
    missing = by_id["data.quality/missing/credit_amount"]
    assert "entirely missing" in missing.title and missing.rule is not None
    assert "data.quality/constant/credit_amount" not in by_id
    inf = by_id["data.quality/infinite/duration"]
    # one of the infinite test rows may be over 60 and left out; train keeps both
    assert inf.metrics["infinite_train"] == 2 and inf.features == ("duration",)
    unscored = by_id["data.quality/unscored/test"]
    n_old = int((test["age"] > 60).sum())
    assert unscored.metrics["unscored_rows"] == n_old and unscored.features == ("age",)
    assert "train" not in audit.context.unscored
    dup = by_id["data.quality/duplicate_ids/test"]
    assert dup.features == ("applicant_id",)
    for f in (missing, inf, unscored, dup):
        assert f.rule is not None and f.rule.text and f.rule.text in f.summary
    drift = next(c for c in result.checks if c.id == "data.drift")
    assert not any(f.id == "data.drift/risk" for f in drift.findings)  # 1.0/0.0 against 1/0


def test_dollar_level_in_a_figure_does_not_crash() -> None:
    """The partial-dependence figure of a categorical with a '$' level (crashed before)."""
    from auditor.checks.sensitivity.partial_dependence import PartialDependenceCheck

    rng = np.random.default_rng(1)
    n = 300
    df = pd.DataFrame({"x": rng.normal(size=n), "kind": rng.choice(["x^2 $_$", "a_b^c", "$$"], n)})
    df["y"] = ((df["x"] + (df["kind"] == "$$")) > 0.3).astype(int)
    model = Pipeline([("enc", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["kind"])],
                                                remainder="passthrough")),
                      ("lr", LogisticRegression())]).fit(df[["x", "kind"]], df["y"])
    r = run_check(PartialDependenceCheck, model, test=df, train=df, target="y")
    svg = "".join(svg_of(fig) for fig in r.evidence.figures)
    assert "x^2 $_$" in svg
