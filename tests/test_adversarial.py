"""sensitivity.adversarial: planted defects (a knife-edge step), clean controls, domain rules,
batching, regression, HopSkipJump, and the analysis against a direct computation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from auditor.analysis.adversarial import (FlipRule, Perturbation, RowOutcome, ScoreScale, SearchOptions,
                                          adversarial_search, select_start_rows)
from auditor.analysis.domain import feature_domains
from auditor.checks.base import CheckRegistry
from auditor.checks.sensitivity.adversarial import AdversarialCheck, AdversarialMeasurement
from auditor.engine import prepare_objects
from auditor.findings import Severity

from conftest import run_check

NO_HSJ = {"hsj_rows": 0}


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
    result = run_check(AdversarialCheck, model, test=df, target="y", options=NO_HSJ)
    assert model.calls < 200
    assert model.rows > 100 * model.calls
    assert model.rows <= 200_000 + len(df)
    metrics = result.evidence.metrics
    assert metrics["queries"] + len(df) == model.rows  # everything the check asked for, plus the context's own call
    assert any("budget 200,000 rows" in n for n in result.evidence.notes)


def test_query_budget_is_respected():
    model = Counting(StepModel())
    df = with_target(mixed_frame(), StepModel())
    result = run_check(AdversarialCheck, model, test=df, target="y", options={**NO_HSJ, "max_queries": 6000})
    assert model.rows - len(df) <= 6000
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
                                                    (3, Severity.HIGH)])
def test_flip_severity_rules(small_flips, expected):
    rows = [_row(i, 0.1, 0.1 if i < small_flips else 2.0) for i in range(50)]
    flip = next(f for f in AdversarialCheck().judge(_measurement(rows)) if f.id.endswith("/flip"))
    assert flip.severity is expected  # 3 of 50 = 6% >= 5% -> high; 2 of 50 -> medium


def test_near_threshold_flips_are_never_more_than_info():
    rows = [_row(i, 0.52, 0.01) for i in range(30)] + [_row(30 + i, 0.05, None) for i in range(20)]
    findings = AdversarialCheck().judge(_measurement(rows))
    flip = next(f for f in findings if f.id.endswith("/flip"))
    assert flip.severity is Severity.INFO and flip.metrics["near_threshold_small_flips"] == 30
