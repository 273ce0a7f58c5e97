"""Remedies "guard" and "anomaly_detector" (issue 11, sections 2 and 3): planted defects the guard must
stop, controls where it must not claim a fix, the detector's rates recomputed from its saved file."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from conftest import SCHEMA
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from auditor.checks.base import CheckRegistry
from auditor.checks.sensitivity.adversarial import AdversarialCheck
from auditor.checks.sensitivity.partial_dependence import PartialDependenceCheck
from auditor.checks.sensitivity.random_attack import RandomAttackCheck
from auditor.engine import prepare_objects
from auditor.findings import Status
from auditor.guard import Guard
from auditor.remediation import RemedyResult, run_remedies
from auditor.remediation.anomaly import EXPECTED_UNTRUSTED, AnomalyDetectorRemedy
from auditor.remediation.guard import GuardRemedy
from auditor.runner import run_checks

FEATURES = ["income", "age", "purpose"]
LEVELS = ["car", "tv", "furniture", "education"]
CHECKS = (RandomAttackCheck, AdversarialCheck, PartialDependenceCheck)
FAST = {"sensitivity.adversarial": {"rows": 20, "max_rows": 20, "hop_skip_jump": False},
        "sensitivity.partial_dependence": {"rows": 100, "n_bootstrap": 50}}
REMEDIES = {"guard": GuardRemedy, "anomaly_detector": AnomalyDetectorRemedy}


def _data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = np.round(rng.lognormal(8, 0.5, n))
    age = rng.integers(18, 76, n)
    purpose = rng.choice(LEVELS, n, p=[.4, .3, .2, .1])
    logit = 0.0008 * (income - 3000) + 0.03 * (age - 45) + (purpose == "car") * 0.8
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"income": income, "age": age, "purpose": purpose, "y": y})


TRAIN = _data(400, 0)
TEST = _data(200, 1)
SPAN = float(TRAIN["income"].max() - TRAIN["income"].min())


def _strict_pipeline() -> Any:
    """One-hot encoding that raises on an unseen level (the planted defect), scaling that passes NaN on."""
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="error"), ["purpose"]),
                             ("num", StandardScaler(), ["income", "age"])])
    return make_pipeline(pre, LogisticRegression(max_iter=500)).fit(TRAIN[FEATURES], TRAIN["y"])


def _tolerant_pipeline() -> Any:
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["purpose"]),
                             ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["income", "age"])])
    return make_pipeline(pre, LogisticRegression(max_iter=500)).fit(TRAIN[FEATURES], TRAIN["y"])


class _Logistic:
    """A plain Python model: P(y=1) from income and age; subclasses plant their defect in ``_bad``."""

    classes_ = np.array([0, 1])

    def _p(self, X: pd.DataFrame) -> np.ndarray:
        income = pd.to_numeric(X["income"]).to_numpy(dtype=float)
        age = pd.to_numeric(X["age"]).to_numpy(dtype=float)
        with np.errstate(all="ignore"):
            return 1 / (1 + np.exp(-(0.0008 * (income - 3000) + 0.03 * (age - 45))))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self._p(X)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self._p(X) >= 0.5).astype(int)


class NanFarAbove(_Logistic):
    """NaN probabilities for incomes beyond three times the largest training income."""

    def _p(self, X: pd.DataFrame) -> np.ndarray:
        p = super()._p(X)
        return np.where(pd.to_numeric(X["income"]).to_numpy(dtype=float) > 3 * TRAIN["income"].max(), np.nan, p)


class RaisesJustAbove(_Logistic):
    """Raises for incomes just above the training range, inside the margin the audit probes."""

    def _p(self, X: pd.DataFrame) -> np.ndarray:
        if (pd.to_numeric(X["income"]).to_numpy(dtype=float) > TRAIN["income"].max() + 0.03 * SPAN).any():
            raise ValueError("income beyond the supported range")
        return super()._p(X)


class NanInsideRange(_Logistic):
    """NaN for incomes in a band well inside the training range: no input rule can stop that."""

    lo, hi = float(TRAIN["income"].quantile(0.4)), float(TRAIN["income"].quantile(0.6))

    def _p(self, X: pd.DataFrame) -> np.ndarray:
        p = super()._p(X)
        x = pd.to_numeric(X["income"]).to_numpy(dtype=float)
        return np.where((x > self.lo) & (x < self.hi), np.nan, p)


def _audit(model: Any, *, train: pd.DataFrame | None = TRAIN, test: pd.DataFrame = TEST,
           checks: tuple = CHECKS, remedies: dict | None = None, **options: Any) -> tuple[Any, Any, dict]:
    registry = CheckRegistry(checks)
    audit = prepare_objects(model, test=test, train=train, target="y", features=FEATURES, registry=registry,
                            checks={k: v for k, v in FAST.items() if k in registry}, remediation=options or None)
    out = run_checks(audit.context, registry)
    assert all(r.status is Status.OK for r in out.results), [(r.id, r.error) for r in out.results]
    results = run_remedies(audit.context, out.results, out.measurements, remedies=remedies or REMEDIES)
    return audit.context, out, {r.id: r for r in results}


def _one(result: RemedyResult) -> Any:
    assert result.status is Status.OK, (result.error, result.reason)
    (rem,) = result.remediations
    return rem


def _guard_file(result: RemedyResult) -> Guard:
    (artifact,) = [a for a in result.artifacts if a.path == "remediation/guard.json"]
    return Guard.loads(artifact.data.decode("utf-8"))


def _expected_pass_share(test: pd.DataFrame, train: pd.DataFrame, margin: float = 0.1) -> float:
    """The test rows within the training domain plus the margin, computed directly from the data."""
    ok = test["purpose"].isin(set(train["purpose"])) & test[FEATURES].notna().all(axis=1)
    for col in ("income", "age"):
        lo, hi = train[col].min(), train[col].max()
        pad = margin * (hi - lo)
        ok &= (test[col] >= max(math.ceil(lo - pad), 0)) & (test[col] <= math.floor(hi + pad))
    return float(ok.mean())


@pytest.fixture(scope="module")
def strict() -> tuple[Any, Any, dict]:
    return _audit(_strict_pipeline())


# ---- the planted defects -------------------------------------------------------------------------------------------

def test_model_crashing_on_unseen_levels_gets_a_guard_that_rejects_them(strict) -> None:
    ctx, out, results = strict
    found = {f.id for r in out.results for f in r.findings}
    assert "sensitivity.random_attack/guard/unseen_level" in found  # the defect, as the audit saw it
    rem = _one(results["guard"])
    assert rem.kind == "guard" and rem.verified
    assert "sensitivity.random_attack/guard/unseen_level" in rem.addresses
    assert set(rem.addresses) <= found
    assert rem.before == {"test_rows_passed_share": 1.0, "breaking_inputs_accepted_share": 1.0}
    assert rem.after["breaking_inputs_accepted_share"] == 0.0
    assert rem.after["test_rows_passed_share"] >= 0.99
    assert rem.after["test_rows_passed_share"] == pytest.approx(_expected_pass_share(TEST, TRAIN))
    assert rem.artifacts == ("remediation/guard.json",)
    breaking = {t.name: t for t in rem.evidence.tables}["guard_breaking"].records()
    assert breaking and all(r["guard"] == "rejects" for r in breaking)
    assert any("unseen" in r["input"] and r["source"] == "random_attack" for r in breaking)

    guard = _guard_file(results["guard"])
    assert guard.rule("purpose").levels == tuple(TRAIN["purpose"].value_counts().index)
    new = TEST.head(5).assign(purpose=["car", "yacht", "tv", "yacht", "car"])
    model = ctx.model.adapter
    with pytest.raises(ValueError):  # the model itself falls over on the unseen level
        model.predict_proba(new[FEATURES])
    check = guard.check(new)
    assert check.passed.tolist() == [True, False, True, False, True]
    assert check.reasons.tolist()[1] == ("purpose='yacht' not an allowed level",)
    assert model.predict_proba(new[check.passed][FEATURES]).shape == (3, 2)  # what passes, scores
    assert guard.check(TEST).pass_share == rem.after["test_rows_passed_share"]


def test_numeric_far_out_of_range_non_finite_score_is_rejected() -> None:
    _, out, results = _audit(NanFarAbove(), remedies={"guard": GuardRemedy})
    found = {f.id for r in out.results for f in r.findings}
    assert "sensitivity.random_attack/non_finite/income" in found
    rem = _one(results["guard"])
    assert rem.verified and rem.after["breaking_inputs_accepted_share"] == 0.0
    assert "sensitivity.random_attack/non_finite/income" in rem.addresses
    guard = _guard_file(results["guard"])
    r = guard.check(TEST.head(2).assign(income=[1e9, 5000.0]))
    assert r.passed.tolist() == [False, True]
    assert r.reasons.iloc[0][0].startswith("income > ") and "+ margin" in r.reasons.iloc[0][0]


def test_crash_inside_the_margin_takes_the_margin_away_on_that_side() -> None:
    test = TEST.assign(income=TEST["income"].clip(upper=TRAIN["income"].max()))
    _, _, results = _audit(RaisesJustAbove(), test=test, remedies={"guard": GuardRemedy})
    rem = _one(results["guard"])
    guard = _guard_file(results["guard"])
    income = guard.rule("income")
    assert income.max == TRAIN["income"].max()  # no margin above: the model broke there
    assert income.min < TRAIN["income"].min()  # the margin below stays
    assert "income above" in rem.parameters["tightened"]
    assert rem.verified and rem.after["breaking_inputs_accepted_share"] == 0.0
    assert guard.check(test.head(1).assign(income=TRAIN["income"].max() + 0.05 * SPAN)).reasons.iloc[0] == (
        f"income > {TRAIN['income'].max():.6g} (max of the training data)",)


# ---- controls: where the guard must not claim a remedy ------------------------------------------------------

def test_clean_model_guard_passes_test_rows_and_claims_nothing_it_did_not_check() -> None:
    _, out, results = _audit(_tolerant_pipeline())
    rem = _one(results["guard"])
    assert rem.after["test_rows_passed_share"] >= 0.99
    assert rem.after["test_rows_passed_share"] == pytest.approx(_expected_pass_share(TEST, TRAIN))
    assert rem.verified
    findings = {f.id: f for r in out.results for f in r.findings}
    assert set(rem.addresses) <= {i for i, f in findings.items() if f.severity.rank >= 1}  # low or above only
    assert not any(f.severity.value in ("high", "medium") for f in findings.values())
    # the detector catches no adversarial example here, so it addresses no adversarial finding
    assert _one(results["anomaly_detector"]).addresses == ()


def test_failure_inside_the_domain_is_not_claimed_as_fixed() -> None:
    # (the partial-dependence check refuses a model that fails on observed values: left out)
    _, out, results = _audit(NanInsideRange(), checks=(RandomAttackCheck, AdversarialCheck),
                             remedies={"guard": GuardRemedy})
    assert any(f.id.startswith("sensitivity.random_attack/non_finite") for r in out.results for f in r.findings)
    rem = _one(results["guard"])
    assert not rem.verified
    assert rem.after["breaking_inputs_accepted_share"] > 0.0
    assert "sensitivity.random_attack/non_finite/income" not in rem.addresses
    assert any("fix the model" in c for c in rem.caveats)


def _shifted_test() -> pd.DataFrame:
    """5% of the test rows with an income well beyond the training range (the model still scores them)."""
    test = TEST.copy()
    test.loc[test.index[:10], "income"] = 1.5 * TRAIN["income"].max()
    return test


def test_test_rows_beyond_the_training_range_widen_the_guard_and_it_says_so() -> None:
    test = _shifted_test()
    _, _, results = _audit(_tolerant_pipeline(), test=test, checks=(RandomAttackCheck, AdversarialCheck),
                           remedies={"guard": GuardRemedy})
    rem = _one(results["guard"])
    assert _guard_file(results["guard"]).rule("income").max == test["income"].max()
    assert "income max" in rem.parameters["widened"]
    assert any(c.startswith("Widened to the test rows") for c in rem.caveats)
    assert rem.after["test_rows_passed_share"] >= 0.99 and rem.verified


def test_without_widening_too_many_rejected_test_rows_are_not_verified() -> None:
    _, _, results = _audit(_tolerant_pipeline(), test=_shifted_test(), checks=(RandomAttackCheck,),
                           remedies={"guard": GuardRemedy}, guard={"widen": False})
    rem = _one(results["guard"])
    assert rem.parameters["widened"] == "none"
    assert rem.after["test_rows_passed_share"] == pytest.approx(_expected_pass_share(_shifted_test(), TRAIN, 0.0))
    assert rem.after["test_rows_passed_share"] < 0.99 and not rem.verified
    assert any("rejects too many real records" in c for c in rem.caveats)


def test_the_margin_is_the_one_the_adversarial_search_used() -> None:
    registry = CheckRegistry((RandomAttackCheck, AdversarialCheck))
    audit = prepare_objects(_tolerant_pipeline(), test=TEST, train=TRAIN, target="y", features=FEATURES,
                            registry=registry, checks={"sensitivity.adversarial": {**FAST["sensitivity.adversarial"],
                                                                                   "margin": 0.05}})
    out = run_checks(audit.context, registry)
    (result,) = run_remedies(audit.context, out.results, out.measurements, remedies={"guard": GuardRemedy})
    assert _one(result).parameters["margin"] == 0.05
    income = _guard_file(result).rule("income")
    lo, hi = TRAIN["income"].min(), TRAIN["income"].max()
    # never across zero (incomes are not negative), whole numbers rounded inwards, as the search does
    assert (income.min, income.max) == (max(math.ceil(lo - 0.05 * (hi - lo)), 0), math.floor(hi + 0.05 * (hi - lo)))


def test_without_training_data_the_guard_uses_the_test_data_and_the_detector_is_not_tried() -> None:
    _, _, results = _audit(_tolerant_pipeline(), train=None, checks=(RandomAttackCheck,))
    rem = _one(results["guard"])
    assert rem.parameters["source"].startswith("test data")
    assert rem.parameters["margin"] == 0.0  # no check probed beyond the range
    assert rem.after["test_rows_passed_share"] == 1.0  # its own rows
    det = results["anomaly_detector"]
    assert det.status is Status.SKIPPED and "no training data" in det.reason


# ---- the anomaly detector ------------------------------------------------------------------------------------------

def _far_rows(n: int = 100, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    top = TRAIN["income"].max()
    return pd.DataFrame({"income": rng.uniform(5 * top, 10 * top, n), "age": rng.uniform(150, 300, n),
                         "purpose": rng.choice(LEVELS, n), "y": 0})


def test_anomaly_detector_flags_far_rows_more_than_test_rows_and_its_rates_recompute(strict) -> None:
    ctx, out, results = strict
    result = results["anomaly_detector"]
    rem = _one(result)
    assert rem.kind == "anomaly_detector" and rem.verified
    (artifact,) = result.artifacts
    assert artifact.path == "remediation/anomaly_detector.skops" and rem.artifacts == (artifact.path,)
    untrusted = sio.get_untrusted_types(data=artifact.data)
    assert set(untrusted) <= EXPECTED_UNTRUSTED
    detector = sio.loads(artifact.data, trusted=untrusted)
    # the reported rates, recomputed from the saved file
    test_flagged = float(np.mean(detector.decision_function(TEST[FEATURES]) < 0))
    assert rem.after["test_rows_flagged_share"] == pytest.approx(test_flagged)
    assert rem.before["test_rows_flagged_share"] == 0.0
    train_flagged = float(np.mean(detector.decision_function(TRAIN[FEATURES]) < 0))
    assert train_flagged == pytest.approx(0.01, abs=1 / len(TRAIN))  # the threshold is set on the training rows
    assert rem.parameters["train_rows_flagged_share"] == pytest.approx(train_flagged)
    far = float(np.mean(detector.predict(_far_rows()[FEATURES]) == -1))
    assert far >= 0.9 > 0.1 >= test_flagged
    # adversarial examples: the search's small flips, rebuilt here from its measurement
    adv = out.measurements["sensitivity.adversarial"].result
    flips = [r for r in adv.rows if r.flip is not None and r.flip.distance <= adv.small_distance]
    assert rem.parameters["adversarial_examples"] == len(flips) > 0
    rows = ctx.X("test").iloc[[r.position for r in flips]].reset_index(drop=True)
    for i, r in enumerate(flips):
        for c in r.flip.changes:
            rows.loc[i, c.feature] = c.after
    assert rem.after["adversarial_examples_flagged_share"] == pytest.approx(
        float(np.mean(detector.decision_function(rows[FEATURES]) < 0)))
    table = {t.name: t for t in rem.evidence.tables}["anomaly_rates"].records()
    assert [r["rows"] for r in table][:4] == ["training rows (fitted)", "test rows", "adversarial examples",
                                              "their starting test rows"]
    assert rem.evidence.figures[0].plot == "remedy_guard.anomaly_scores_figure"


def test_both_files_are_the_same_bytes_on_a_rerun(strict) -> None:
    ctx, out, results = strict
    again = {r.id: r for r in run_remedies(ctx, out.results, out.measurements, remedies=REMEDIES)}
    for rid in REMEDIES:
        assert [a.sha256 for a in again[rid].artifacts] == [a.sha256 for a in results[rid].artifacts]
        assert again[rid].remediations[0].to_json() == results[rid].remediations[0].to_json()


def test_anomaly_detector_without_adversarial_examples_reports_alarm_rates_only() -> None:
    _, _, results = _audit(_strict_pipeline(), checks=(RandomAttackCheck,),
                           remedies={"anomaly_detector": AnomalyDetectorRemedy})
    rem = _one(results["anomaly_detector"])
    assert "adversarial_examples_flagged_share" not in rem.after
    assert set(rem.after) == {"test_rows_flagged_share", "random_attack_inputs_flagged_share"}
    assert "no adversarial example" in rem.summary.lower() or "found no" in rem.summary
    assert any("only the alarm rates" in c for c in rem.caveats)


def test_alarm_rate_option_sets_the_training_alarm_rate() -> None:
    _, _, results = _audit(_tolerant_pipeline(), checks=(RandomAttackCheck,),
                           remedies={"anomaly_detector": AnomalyDetectorRemedy},
                           **{"anomaly_detector": {"alarm_rate": 0.05}})
    rem = _one(results["anomaly_detector"])
    assert rem.parameters["alarm_rate"] == 0.05
    assert rem.parameters["train_rows_flagged_share"] == pytest.approx(0.05, abs=1 / len(TRAIN))


# ---- the whole audit: findings.json and the report folder ---------------------------------------------------

@pytest.mark.slow
def test_findings_json_lists_both_remedies_and_the_folder_holds_their_files(tmp_path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from auditor.render import write_report

    registry = CheckRegistry(CHECKS)
    audit = prepare_objects(_strict_pipeline(), test=TEST, train=TRAIN, target="y", features=FEATURES,
                            registry=registry, checks=FAST)
    result = audit.run()
    doc = json.loads(json.dumps(result.to_json()))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text(encoding="utf-8")))
    kinds = {r["kind"]: r for r in doc["remediations"]}
    assert {"guard", "anomaly_detector"} <= set(kinds)
    assert kinds["guard"]["artifacts"] == ["remediation/guard.json"]
    write_report(result, tmp_path, ("json",))
    assert Guard.load(tmp_path / "remediation" / "guard.json").check(TEST).pass_share >= 0.99
    assert (tmp_path / "remediation" / "anomaly_detector.skops").stat().st_size > 0
