"""sensitivity.adversarial: planted defects (a knife-edge step), clean controls, domain rules,
batching, regression, HopSkipJump, and the analysis against a direct computation."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import run_check
from sklearn.linear_model import LogisticRegression, Ridge

from auditor.analysis.adversarial import (
    FlipRule,
    Perturbation,
    RowOutcome,
    ScoreScale,
    SearchOptions,
    adversarial_search,
    select_start_rows,
)
from auditor.analysis.domain import feature_domains
from auditor.checks.base import CheckRegistry
from auditor.checks.sensitivity.adversarial import AdversarialCheck, AdversarialMeasurement
from auditor.engine import prepare_objects
from auditor.findings import Finding, Severity
from auditor.runner import run_checks

NO_HSJ = {"hop_skip_jump": False}


# ---- models and data ---------------------------------------------------------------------------------
class StepModel:
    """P(positive) jumps from 0.15 to 0.85 where ``amount`` crosses 5000, plus small smooth terms."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        base = np.where(X["amount"].to_numpy(dtype=float) >= 5000.0, 0.85, 0.15)
        smooth = 0.05 * np.tanh((X["income"].to_numpy(dtype=float) - 50) / 20) \
            + 0.01 * (X["age"].to_numpy(dtype=float) - 40) / 20
        p = np.clip(base + smooth, 0.0, 1.0)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class Counting:
    """Wraps a model and counts predict_proba calls and rows."""

    def __init__(self, model) -> None:
        self.model, self.calls, self.rows = model, 0, 0

    def predict_proba(self, X):
        self.calls += 1
        self.rows += len(X)
        return self.model.predict_proba(X)

    def predict(self, X):
        return self.model.predict(X)


class RulesModel:
    """Depends strongly on an immutable feature (age), a protected one (sex), an integer count and
    a categorical purpose, so a search that ignored the rules would change them."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        z = (0.08 * (X["age"].to_numpy(dtype=float) - 40) + 1.5 * (X["sex"].to_numpy() == "f")
             + 0.6 * (X["children"].to_numpy(dtype=float) - 2)
             + X["purpose"].map({"car": -1.0, "tv": 0.0, "edu": 1.2}).fillna(0).to_numpy(dtype=float)
             + 0.00015 * (X["amount"].to_numpy(dtype=float) - 5000))
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def mixed_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "amount": rng.uniform(0, 10000, n).round(2),
        "age": rng.integers(18, 70, n),
        "income": rng.normal(50, 10, n),
        "children": rng.integers(0, 5, n),
        "purpose": rng.choice(["car", "tv", "edu"], n),
        "sex": rng.choice(["m", "f"], n),
    })


def with_target(df: pd.DataFrame, model, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = df.copy()
    out["y"] = (model.predict_proba(df)[:, 1] > rng.uniform(0, 1, len(df))).astype(int)
    return out


def separated_data(n: int = 800, seed: int = 3) -> tuple[pd.DataFrame, LogisticRegression]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = pd.DataFrame({"x1": rng.normal(0, 1, n) + 3.0 * y, "x2": rng.normal(0, 1, n) - 2.0 * y,
                      "x3": rng.normal(0, 1, n)})
    model = LogisticRegression().fit(X, y)
    return X.assign(y=y), model


def measure(model, df: pd.DataFrame, options: dict | None = None, **kwargs) -> AdversarialMeasurement:
    """The check's measurement on a real context (to inspect every perturbation, not just tables)."""
    registry = CheckRegistry([AdversarialCheck])
    audit = prepare_objects(model, test=df, target="y", registry=registry, **kwargs)
    return AdversarialCheck(**(options or {})).measure(audit.context)


def perturbations(m: AdversarialMeasurement) -> list[Perturbation]:
    return [p for r in m.result.rows for p in (r.flip, r.swing_up, r.swing_down, r.reach_max, r.reach_min)
            if p is not None]


# ---- planted defect and controls -----------------------------------------------------------------------
def test_knife_edge_step_is_found_and_named():
    df = with_target(mixed_frame(), StepModel())
    result = run_check(AdversarialCheck, StepModel(), test=df, target="y", options=NO_HSJ)
    knife = [f for f in result.findings if f.id == "sensitivity.adversarial/knife_edge/amount"]
    assert knife, [f.id for f in result.findings]
    assert knife[0].severity.rank >= Severity.MEDIUM.rank
    assert knife[0].features == ("amount",)
    assert abs(knife[0].metrics["location"] - 5000.0) < 50
    assert knife[0].metrics["median_jump"] == pytest.approx(0.7, abs=0.05)
    flip = next(f for f in result.findings if f.id == "sensitivity.adversarial/flip")
    assert flip.severity.rank >= Severity.MEDIUM.rank and "amount" in flip.features
    # the smallest flips move amount to just across 5000
    examples = result.evidence.tables[0].records()
    assert examples[0]["changed"] == "amount"
    after = float(examples[0]["after"].split("=")[1])
    assert 4990 < after < 5010
    assert examples[0]["distance"] <= 0.25


def test_smooth_logistic_on_separated_data_gets_no_high():
    df, model = separated_data()
    result = run_check(AdversarialCheck, model, test=df, target="y", options=NO_HSJ)
    assert all(f.severity is not Severity.HIGH for f in result.findings), \
        [(f.id, f.severity.value, f.title) for f in result.findings]
    assert not any(f.id.startswith("sensitivity.adversarial/knife_edge") for f in result.findings)
    flip = next(f for f in result.findings if f.id == "sensitivity.adversarial/flip")
    assert flip.metrics["confident_small_flip_share"] < 0.05


# ---- plausibility rules -----------------------------------------------------------------------------
def test_immutable_and_protected_never_change_categories_known_integers_whole():
    model = RulesModel()
    df = with_target(mixed_frame(), model)
    m = measure(model, df, options=NO_HSJ, protected=["sex"], expect={"immutable": ["age"]},
                features=["amount", "age", "income", "children", "purpose", "sex"])
    found = perturbations(m)
    assert len(found) > 50
    changed = {c.feature for p in found for c in p.changes}
    assert "age" not in changed and "sex" not in changed
    assert {"children", "purpose"} <= changed  # the search did use them
    bounds = {a.name: a for a in m.result.axes}
    for p in found:
        for c in p.changes:
            if c.feature == "purpose":
                assert c.after in {"car", "tv", "edu"}
            elif c.feature == "children":
                assert float(c.after).is_integer() and isinstance(c.after, int)
                assert 0 <= c.after <= 4  # 10% of a span of 4 rounds inwards to nothing
            else:
                assert bounds[c.feature].low - 1e-9 <= c.after <= bounds[c.feature].high + 1e-9
    assert {"age", "sex"} == set(m.result.fixed)


def test_reported_examples_respect_the_rules_and_inputs_are_untouched():
    model = RulesModel()
    df = with_target(mixed_frame(), model)
    before = pd.util.hash_pandas_object(df, index=True).sum()
    result = run_check(AdversarialCheck, model, test=df, target="y", options=NO_HSJ, protected=["sex"],
                       expect={"immutable": ["age"]},
                       features=["amount", "age", "income", "children", "purpose", "sex"])
    assert pd.util.hash_pandas_object(df, index=True).sum() == before
    tables = {t.name: t for t in result.evidence.tables}
    for name in ("examples", "extremes"):
        for rec in tables[name].records():
            assert "age" not in rec["changed"].split(", ") and "sex" not in rec["changed"].split(", ")
    roles = {r["feature"]: r["role"] for r in tables["importance"].records()}
    assert roles["age"] == "held fixed (immutable)" and roles["sex"] == "held fixed (protected)"
    for f in result.findings:
        assert "age" not in f.features and "sex" not in f.features
    assert any("Held fixed: age, sex" in n for n in result.evidence.notes)


def test_all_features_fixed_is_skipped_with_reason():
    df, model = separated_data(200)
    result = run_check(AdversarialCheck, model, test=df, target="y", expect={"immutable": ["x1", "x2", "x3"]})
    assert result.status.value == "skipped" and "held fixed" in result.reason


# ---- batching and budget --------------------------------------------------------------------------------
def test_model_calls_are_batched_and_budget_is_stated():
    model = Counting(StepModel())
    df = with_target(mixed_frame(), StepModel())
    registry = CheckRegistry([AdversarialCheck])
    audit = prepare_objects(model, test=df, target="y", registry=registry, checks={AdversarialCheck.id: NO_HSJ})
    audit.context.predictions("test")
    before_rows, before_calls = model.rows, model.calls  # the context's own calls
    result = run_checks(audit.context, registry).results[0]
    assert result.status.value == "ok", result.error
    rows, calls = model.rows - before_rows, model.calls - before_calls
    assert calls < 200
    assert rows > 100 * calls
    metrics = result.evidence.metrics
    assert metrics["model_rows"] == rows  # every row the model scored, each distinct candidate once
    assert metrics["queries"] > rows  # what the check asked for (and its budget counts): repeats too
    assert metrics["model_calls"] == calls
    searched = metrics["rows_searched"]
    assert rows <= 2_500 * searched + 30 ** 2 + 1
    assert any("budget 2,500 rows per searched row, 1,000,000 rows at most" in n for n in result.evidence.notes)


def test_query_budget_is_respected():
    model = Counting(StepModel())
    df = with_target(mixed_frame(), StepModel())
    registry = CheckRegistry([AdversarialCheck])
    audit = prepare_objects(model, test=df, target="y", registry=registry,
                            checks={AdversarialCheck.id: {**NO_HSJ, "max_queries": 6000}})
    audit.context.predictions("test")
    before = model.rows
    result = run_checks(audit.context, registry).results[0]
    assert result.status.value == "ok", result.error
    assert model.rows - before <= 6000
    assert any("query budget" in n for n in result.evidence.notes)


# ---- regression -------------------------------------------------------------------------------------
def test_regression_runs_and_is_sane():
    rng = np.random.default_rng(5)
    n = 500
    X = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.uniform(0, 10, n), "c": rng.choice(["u", "v"], n)})
    y = 2 * X["a"] + 0.5 * X["b"] + (X["c"] == "v") + rng.normal(0, 0.3, n)
    Xe = X.assign(c=(X["c"] == "v").astype(float))
    ridge = Ridge().fit(Xe, y)

    class Wrapped:
        def predict(self, frame):
            return ridge.predict(frame.assign(c=(frame["c"] == "v").astype(float)))

    result = run_check(AdversarialCheck, Wrapped(), test=X.assign(y=y), target="y", task="regression")
    assert result.status.value == "ok"
    assert all(f.severity is not Severity.HIGH for f in result.findings)
    flip = next(f for f in result.findings if f.id == "sensitivity.adversarial/flip")
    assert flip.metrics["confident_small_flip_share"] == 0.0
    tables = {t.name: t.records() for t in result.evidence.tables}
    assert tables["extremes"] and {r["direction"] for r in tables["extremes"]} == {"max", "min"}
    top = max(r["score_after"] for r in tables["extremes"] if r["direction"] == "max")
    assert top > np.max(ridge.predict(Xe)) - 1.0
    assert any("HopSkipJump not run: classification only" in n for n in result.evidence.notes)
    json.dumps(result.to_json())


# ---- HopSkipJump ----------------------------------------------------------------------------------------
def test_hop_skip_jump_second_opinion_runs_and_is_repeatable():
    df, model = separated_data(300)
    opts = {"hsj_rows": 3, "hsj_max_iter": 2, "hsj_max_eval": 20, "hsj_init_eval": 5, "rows": 30,
            "generations": 1}
    first = run_check(AdversarialCheck, model, test=df, target="y", options=opts)
    hsj = {t.name: t for t in first.evidence.tables}.get("hop_skip_jump")
    assert hsj is not None and 1 <= len(hsj.rows) <= 3, first.evidence.notes
    for rec in hsj.records():
        if rec["flipped"]:
            assert rec["hsj_distance"] > 0
    assert any(n.startswith("HopSkipJump (ART") for n in first.evidence.notes)
    second = run_check(AdversarialCheck, model, test=df, target="y", options=opts)
    assert [f.to_json() for f in first.findings] == [f.to_json() for f in second.findings]
    assert first.to_json()["tables"] == second.to_json()["tables"]


# ---- the analysis against a direct computation ----------------------------------------------------------
def test_smallest_flip_matches_the_closed_form_for_a_linear_score():
    """For sigmoid(w.x + b) the smallest normalised change that crosses 0.5 moves the single feature
    with the largest |w_j| * std_j by |w.x + b| / |w_j| (when that stays within bounds)."""
    rng = np.random.default_rng(11)
    X = pd.DataFrame({"p": rng.normal(0, 1, 400), "q": rng.normal(0, 2, 400), "r": rng.normal(0, 0.5, 400)})
    w, b = np.array([1.0, 0.7, 0.3]), 0.2

    def score(frame: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-(frame[["p", "q", "r"]].to_numpy() @ w + b)))

    domains = feature_domains(X, categorical=(), features=("p", "q", "r"))
    s = score(X)
    pos, kinds = select_start_rows(s, n=40, prototype_share=0.3, center=0.5, rng=np.random.default_rng(0))
    res = adversarial_search(score, X.iloc[pos], labels=[str(i) for i in pos], kinds=kinds, positions=pos,
                             domains=domains, rule=FlipRule("threshold", 0.5), scale=ScoreScale(),
                             options=SearchOptions(), rng=np.random.default_rng(1), hop_skip_jump=False)
    std = np.array([domains[c].std for c in "pqr"])
    j = int(np.argmax(np.abs(w) * std))
    checked = 0
    for row in res.rows:
        x = X.iloc[row.position][["p", "q", "r"]].to_numpy(dtype=float)
        logit = x @ w + b
        target = x[j] - logit / w[j]
        lo, hi = res.axes[j].low, res.axes[j].high
        if not lo <= target <= hi:
            continue
        expected = abs(logit / w[j]) / std[j]
        assert row.flip is not None
        assert row.flip.distance == pytest.approx(expected, rel=1e-3, abs=1e-3)
        checked += 1
    assert checked >= 20


def test_select_start_rows_prototypes_and_sample():
    s = np.linspace(0, 1, 101)
    pos, kinds = select_start_rows(s, n=20, prototype_share=0.3, center=0.5, rng=np.random.default_rng(0))
    assert kinds[:2] == ("high", "high") and set(pos[:2]) == {100, 99}
    assert set(pos[2:4]) == {0, 1} and pos[4] == 50 and pos[5] in (49, 51)
    assert kinds.count("random") == 14 and len(set(pos)) == 20


# ---- severity rules, without a model --------------------------------------------------------------------
def _row(i: int, score: float, flip: float | None, kind: str = "random") -> RowOutcome:
    p = None if flip is None else Perturbation((), flip, score, 1 - score, "single feature")
    return RowOutcome(position=i, label=str(i), kind=kind, score=score, flip=p)


def _measurement(rows: list[RowOutcome]) -> AdversarialMeasurement:
    from auditor.analysis.adversarial import AdversarialResult, HopSkipJumpResult

    res = AdversarialResult(rule=FlipRule("threshold", 0.5), scale=ScoreScale(), axes=(), importance=(),
                            searched=(), fixed=(), rows=tuple(rows), knife_edges=(),
                            hop_skip_jump=HopSkipJumpResult(False), queries=0, calls=0, max_queries=1,
                            small_distance=0.25)
    return AdversarialMeasurement(task="classification", threshold=0.5, result=res, surface=None, surface_queries=0,
                                  prediction_range=(0.0, 1.0), n_test=100, immutable=(), protected=())


@pytest.mark.parametrize("small_flips, expected", [(0, Severity.INFO), (1, Severity.LOW), (2, Severity.MEDIUM),
                                                    (3, Severity.MEDIUM), (5, Severity.MEDIUM), (8, Severity.HIGH)])
def test_flip_severity_rules(small_flips, expected):
    """The conservative (lower) end of the 95% Wilson interval against 5% (high) and 1% (medium):
    3 of 50 (6%) is no longer high, its interval reaching down to 2.1%."""
    rows = [_row(i, 0.1, 0.1 if i < small_flips else 2.0) for i in range(50)]
    flip = next(f for f in AdversarialCheck().judge(_measurement(rows)) if f.id.endswith("/flip"))
    assert flip.severity is expected
    lo, hi = wilson(small_flips, 50)
    assert flip.rule is not None and flip.rule.interval == pytest.approx((lo, hi))
    assert flip.rule.value == pytest.approx(small_flips / 50)
    assert expected is not Severity.HIGH or lo >= 0.05
    assert expected is Severity.HIGH or small_flips < 2 or lo < 0.05


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval, written out (an independent check of the check's interval)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_near_threshold_flips_are_never_more_than_info():
    rows = [_row(i, 0.52, 0.01) for i in range(30)] + [_row(30 + i, 0.05, None) for i in range(20)]
    findings = AdversarialCheck().judge(_measurement(rows))
    flip = next(f for f in findings if f.id.endswith("/flip"))
    assert flip.severity is Severity.INFO and flip.metrics["near_threshold_small_flips"] == 30


# ---- a model that fails for some inputs: evidence, not a crash ------------------------------------------
def positive_data(n: int = 500, seed: int = 4) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.lognormal(0, 0.5, n), "b": rng.lognormal(1, 0.3, n), "c": rng.uniform(1, 5, n)})
    y = (np.log(X["a"]) - 0.5 * np.log(X["b"]) + 0.2 * X["c"] + rng.normal(0, 0.5, n) > 0).astype(int)
    return X, y.to_numpy()


FAST = {"grid": 15, "generations": 2, "population": 16, "surface_grid": 12, "hsj_rows": 2, "hsj_max_iter": 2,
        "hsj_max_eval": 20, "hsj_init_eval": 5}


def test_log_pipeline_failures_are_evidence_and_the_search_goes_on():
    """log(0) at the lower bound (observed minimum minus the margin, floored at 0): sklearn raises
    "Input X contains infinity". The check completes, counts and shows the failures as a medium
    finding (an exception out of the observed range), splits failing batches instead of scoring
    row by row, and HopSkipJump runs on the same model without crashing."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    X, y = positive_data()
    pipe = Pipeline([("log", FunctionTransformer(np.log)), ("scale", StandardScaler()),
                     ("lr", LogisticRegression())]).fit(X, y)
    with pytest.raises(ValueError), np.errstate(divide="ignore"):  # the defect is real
        pipe.predict_proba(X.assign(a=0.0).iloc[:3])
    model = Counting(pipe)
    result = run_check(AdversarialCheck, model, test=X.assign(y=y), target="y", options=FAST)
    assert result.status.value == "ok"
    found = {f.id: f for f in result.findings}
    failing = found["sensitivity.adversarial/non_finite"]
    assert failing.severity is Severity.MEDIUM  # a clear error, only beyond the observed range
    assert failing.metrics["raised"] >= 1 and failing.metrics["raised_in_domain"] == 0
    assert failing.metrics["non_finite"] == 0
    assert "a" in failing.features and "a within its observed range" in failing.summary
    assert "Input X contains infinity" in failing.summary
    assert failing.rule is not None and failing.rule.metric == "failing_inputs"
    table = {t.name: t for t in result.evidence.tables}["scoring_failures"].records()
    assert table and all(r["failure"] == "exception" and not r["in_domain"] for r in table)
    assert all(float(r["after"].split("=")[1]) == 0.0 for r in table if r["changed"] == "a")
    assert failing.metrics["surface_points_failed"] > 0  # the score surface has gaps, not a crash
    assert "Blank:" in {f.name: f for f in result.evidence.figures}["score_surface"].caption
    # the search went on: flips were still found, all at finite scores
    flip = found["sensitivity.adversarial/flip"]
    assert result.evidence.metrics["rows_with_flip"] > 10
    assert flip.metrics["min_flip_distance"] is not None
    assert any(n.startswith("HopSkipJump (ART") for n in result.evidence.notes), result.evidence.notes
    # batched: failing batches were split, never scored row by row
    assert model.calls < 1500 and model.rows > 20 * model.calls


def test_clean_pipeline_gets_no_failure_finding():
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    X, y = positive_data()
    pipe = Pipeline([("log", FunctionTransformer(np.log1p)), ("scale", StandardScaler()),
                     ("lr", LogisticRegression())]).fit(X, y)
    result = run_check(AdversarialCheck, pipe, test=X.assign(y=y), target="y", options=FAST)
    assert result.status.value == "ok"
    assert not any(f.id.endswith("/non_finite") for f in result.findings)
    assert "scoring_failures" not in {t.name for t in result.evidence.tables}


class SilentNaN:
    """A smooth logistic score that silently returns NaN where x1 is above 2.5 (inside the
    observed range): silent garbage on in-domain input."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x1, x2 = X["x1"].to_numpy(dtype=float), X["x2"].to_numpy(dtype=float)
        p = 1 / (1 + np.exp(-(1.5 * x1 - x2)))
        p = np.where((x1 > 1.5) & (x2 < -1.5), np.nan, p)
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def test_silent_non_finite_output_in_domain_is_high_and_never_a_flip():
    rng = np.random.default_rng(8)
    n = 400
    X = pd.DataFrame({"x1": rng.uniform(-3, 2.4, n), "x2": rng.normal(0, 1, n)})
    # no real row has x1 > 1.5 and x2 < -1.5, but both values are within the observed ranges, so
    # the search's inputs that combine them are in-domain
    X = X[~((X["x1"] > 1.5) & (X["x2"] < -1.5))].reset_index(drop=True)
    model = SilentNaN()
    y = (rng.uniform(size=len(X)) < np.nan_to_num(model.predict_proba(X)[:, 1], nan=0.5)).astype(int)
    m = measure(model, X.assign(y=y), options={**FAST, "hop_skip_jump": False})
    assert m.test_non_finite == 0  # NaN-scored real rows are set apart by the context (data.quality)
    assert m.result.failures.non_finite > 0 and m.result.failures.in_domain_non_finite > 0
    for p in perturbations(m):  # every reported score is finite
        assert np.isfinite(p.score_after)
    for r in m.result.rows:
        if r.flip is not None:
            assert (r.flip.score_after >= 0.5) != (r.score >= 0.5)
    findings = {f.id: f for f in AdversarialCheck(**{**FAST, "hop_skip_jump": False}).judge(m)}
    failing = findings["sensitivity.adversarial/non_finite"]
    assert failing.severity is Severity.HIGH and "without an error" in failing.title
    assert failing.metrics["test_rows_non_finite"] == 0


# ---- k classes ------------------------------------------------------------------------------------------
class ThreeClassStep:
    """Three classes: class 0 follows income smoothly; classes 1 and 2 swap where amount crosses
    5000 (a planted knife edge between two classes)."""

    classes_ = np.array(["a", "b", "c"])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        amount = X["amount"].to_numpy(dtype=float)
        z0 = 0.5 * np.tanh((X["income"].to_numpy(dtype=float) - 50) / 20)
        z1 = np.where(amount < 5000, 2.0, 0.0)
        z2 = 2.0 - z1
        z = np.column_stack([z0, z1, z2])
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def three_class_frame(model, n: int = 600, seed: int = 2) -> pd.DataFrame:
    df = mixed_frame(n, seed)
    rng = np.random.default_rng(seed + 1)
    P = model.predict_proba(df)
    draw = (P.cumsum(axis=1) > rng.uniform(size=(len(df), 1))).argmax(axis=1)
    return df.assign(y=np.array(["a", "b", "c"])[draw])


def _apply(df: pd.DataFrame, position: int, p: Perturbation) -> pd.DataFrame:
    row = df.drop(columns="y").iloc[[position]].copy()
    for c in p.changes:
        row[c.feature] = c.after
    return row


def test_three_classes_flips_are_changes_of_the_predicted_class():
    model = ThreeClassStep()
    df = three_class_frame(model)
    m = measure(model, df, options={**FAST, "hop_skip_jump": False})
    assert m.multiclass and m.classes == ("a", "b", "c")
    assert m.result.rule.kind == "class"
    P = model.predict_proba(df.drop(columns="y"))
    checked = 0
    for r in m.result.rows:
        start = int(np.argmax(P[r.position]))
        srt = np.sort(P[r.position])
        assert r.start_class == start
        assert r.margin == pytest.approx(srt[-1] - srt[-2])
        assert r.score == pytest.approx(P[r.position, start])  # judged on P(predicted class)
        if r.flip is not None:
            after = model.predict_proba(_apply(df, r.position, r.flip))[0]
            assert int(np.argmax(after)) != start  # a flip is a change of the arg max, verified directly
            assert r.flip.class_after == int(np.argmax(after))
            assert r.flip.score_after == pytest.approx(after[start])
            checked += 1
    assert checked >= 20
    findings = {f.id: f for f in AdversarialCheck(**{**FAST, "hop_skip_jump": False}).judge(m)}
    flip = findings["sensitivity.adversarial/flip"]
    assert flip.severity is Severity.HIGH and flip.features[0] == "amount"
    assert "predicted class" in flip.summary
    knife = findings["sensitivity.adversarial/knife_edge/amount"]
    assert abs(knife.metrics["location"] - 5000) < 50


def test_three_classes_smooth_separated_model_gets_no_high():
    rng = np.random.default_rng(6)
    n = 600
    y = rng.integers(0, 3, n)
    centers = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    X = pd.DataFrame(centers[y] + rng.normal(0, 0.7, (n, 2)), columns=["u", "v"])
    model = LogisticRegression().fit(X, y)
    result = run_check(AdversarialCheck, model, test=X.assign(y=y), target="y", options=FAST)
    assert result.status.value == "ok"
    assert all(f.severity.rank < Severity.HIGH.rank for f in result.findings), \
        [(f.id, f.severity.value, f.title) for f in result.findings]
    assert any("predicted class" in n for n in result.evidence.notes)
    for rec in {t.name: t for t in result.evidence.tables}["examples"].records():
        if rec["found"] == "flip":  # the class columns name real classes, and a flip changes it
            assert rec["class_before"] in {"0", "1", "2"} and rec["class_after"] in {"0", "1", "2"}
            assert rec["class_before"] != rec["class_after"]
    # HopSkipJump attacks "still the row's class" against "any other class"
    assert any(n.startswith("HopSkipJump (ART") for n in result.evidence.notes), result.evidence.notes


# ---- seed stability -------------------------------------------------------------------------------------
STABLE = {**FAST, "hop_skip_jump": False, "max_rows": 240}


def test_knife_edge_severity_is_the_same_across_seeds():
    df = with_target(mixed_frame(), StepModel())
    seen = set()
    for seed in range(5):
        result = run_check(AdversarialCheck, StepModel(), test=df, target="y", options=STABLE, seed=seed)
        flip = next(f for f in result.findings if f.id.endswith("/flip"))
        knife = next(f for f in result.findings if f.id.endswith("/knife_edge/amount"))
        seen.add((flip.severity, knife.severity))
        lo, hi = flip.rule.interval
        k, n = flip.metrics["confident_small_flips"], flip.metrics["confident_rows"]
        assert (lo, hi) == pytest.approx(wilson(k, n))
        assert f"[{lo:.1%}, {hi:.1%}]" in flip.summary
    assert seen == {(Severity.HIGH, Severity.MEDIUM)}


def test_smooth_model_stays_below_medium_across_seeds():
    df, model = separated_data()
    for seed in range(5):
        result = run_check(AdversarialCheck, model, test=df, target="y", options=STABLE, seed=seed)
        assert all(f.severity.rank < Severity.MEDIUM.rank for f in result.findings), \
            (seed, [(f.id, f.severity.value, f.title) for f in result.findings])


# ---- an interval that still straddles its threshold when the budget runs out ----------------------------
def _flip_of(rows: list[RowOutcome], **measurement) -> Finding:
    m = replace(_measurement(rows), **measurement)
    return next(f for f in AdversarialCheck().judge(m) if f.id.endswith("/flip"))


def test_flip_share_whose_interval_straddles_the_high_threshold_is_medium_and_says_so():
    """6 of 60 confident sampled rows flip: 10%, twice the 5% high threshold, but the Wilson
    interval (4.7% to 20.1%) still holds 5% when the max_rows budget ran out. The rule reads the
    interval, not the estimate: medium, and its text says why."""
    rows = [_row(i, 0.1, 0.1 if i < 6 else 2.0) for i in range(60)]
    lo, hi = wilson(6, 60)
    assert lo < 0.05 <= hi and 6 / 60 >= 0.05  # the case: the estimate clears 5%, its interval does not
    flip = _flip_of(rows, stages=(30, 60), sample_end="max_rows")
    assert flip.severity is Severity.MEDIUM
    assert flip.rule is not None and flip.rule.interval == pytest.approx((lo, hi))
    assert "still straddles 5% after the sample was enlarged to 60 rows" in flip.rule.text
    assert "max_rows budget of 800 searched rows ran out" in flip.rule.text
    assert "lower end reaches" in flip.summary
    # the control: 12 of 60 (11.8% to 31.9%) clears 5%: high, and no such clause
    rows = [_row(i, 0.1, 0.1 if i < 12 else 2.0) for i in range(60)]
    flip = _flip_of(rows, stages=(30, 60), sample_end="settled")
    assert wilson(12, 60)[0] >= 0.05
    assert flip.severity is Severity.HIGH and "straddles" not in flip.rule.text


def test_an_enlarged_sample_that_still_straddles_is_judged_by_the_lower_end():
    """End to end: with a 15% high threshold the step model's confident flips (about a fifth) keep
    an interval around 15% up to the max_rows budget of 160 rows, so the sample grows to the budget
    and the flip is medium although its estimate is above 15%; with the default 5% it is high."""
    df = with_target(mixed_frame(), StepModel())
    opts = {**STABLE, "high_share": 0.15, "max_rows": 160}
    result = run_check(AdversarialCheck, StepModel(), test=df, target="y", options=opts, seed=0)
    flip = next(f for f in result.findings if f.id.endswith("/flip"))
    lo, hi = flip.rule.interval
    assert lo < 0.15 <= hi and flip.rule.value >= 0.15, flip.rule.text
    assert flip.severity is Severity.MEDIUM
    assert "still straddles 15% after the sample was enlarged" in flip.rule.text
    assert result.evidence.metrics["rows_searched"] == 160
    note = next(n for n in result.evidence.notes if n.startswith("Sample enlarged"))
    assert "max_rows budget of 160 searched rows ran out" in note and "confident small-flip share" in note
    control = run_check(AdversarialCheck, StepModel(), test=df, target="y", options={**opts, "high_share": 0.05},
                        seed=0)
    flip = next(f for f in control.findings if f.id.endswith("/flip"))
    assert flip.severity is Severity.HIGH and "straddles" not in flip.rule.text


def test_a_failing_batch_is_split_not_scored_row_by_row():
    """The scorer halves a batch that raises until the failing candidates are isolated: the
    other candidates keep their exact scores, and the calls grow with log(batch size)."""
    from auditor.analysis.adversarial.scoring import Scorer
    from auditor.analysis.adversarial.space import Space, plausible_axes

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"p": rng.uniform(0, 1, 64), "q": rng.uniform(0, 1, 64)})
    axes = plausible_axes(feature_domains(X, categorical=(), features=("p", "q")), ["p", "q"], margin=0.1)
    calls = []

    def fn(frame: pd.DataFrame) -> np.ndarray:
        calls.append(len(frame))
        s = frame["p"].to_numpy() + frame["q"].to_numpy()
        if (s > 1.95).any():  # an interaction, not a single value: nothing to learn, only splitting helps
            raise ValueError("overflow")
        return s / 2

    space = Space(X, axes)
    scorer = Scorer(fn, 10_000, space)
    rows = np.repeat(np.arange(64), 16)
    V = np.repeat(space.V0, 16, axis=0)
    V[:, 0] = np.tile(np.linspace(0, 1, 16), 64)
    V[:, 1] = np.repeat(np.linspace(0.5, 1.0, 64), 16)
    out = scorer(rows, V).s
    bad = V[:, 0] + V[:, 1] > 1.95
    assert 1 <= bad.sum() <= 10
    assert np.isnan(out[bad]).all()
    assert np.allclose(out[~bad], (V[~bad, 0] + V[~bad, 1]) / 2)
    fails = scorer.failures()
    assert fails.raised == bad.sum() and fails.messages == ("ValueError: overflow",)
    assert len(calls) <= 2 * bad.sum() * np.log2(len(V)) + 1 < len(V) / 4


class RaisesAbove(SilentNaN):
    """A smooth score everywhere it answers, and a clear exception where x1 is above 2.5."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x1, x2 = X["x1"].to_numpy(dtype=float), X["x2"].to_numpy(dtype=float)
        if (x1 > 2.5).any():
            raise ValueError("x1 out of the supported range")
        p = 1 / (1 + np.exp(-(1.5 * x1 - x2)))
        return np.column_stack([1 - p, p])


def test_an_exception_on_in_domain_input_is_high():
    """Training data reach x1 = 3, so an error for x1 in (2.5, 3] is an error on in-domain input."""
    rng = np.random.default_rng(9)
    n = 400
    X = pd.DataFrame({"x1": rng.uniform(-3, 2.4, n), "x2": rng.normal(0, 1, n)})
    y = (rng.uniform(size=n) < SilentNaN().predict_proba(X)[:, 1]).astype(int)
    train = X.assign(y=y)
    train.loc[0, "x1"] = 3.0
    result = run_check(AdversarialCheck, RaisesAbove(), test=X.assign(y=y), train=train, target="y",
                       options={**FAST, "hop_skip_jump": False})
    failing = next(f for f in result.findings if f.id.endswith("/non_finite"))
    assert failing.severity is Severity.HIGH and "within the observed ranges" in failing.title
    assert failing.metrics["raised_in_domain"] >= 1 and failing.metrics["non_finite"] == 0
    assert "x1 out of the supported range" in failing.summary
