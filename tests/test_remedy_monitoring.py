"""The monitoring remedy and ``auditor.monitor`` on small synthetic audits: the baseline it writes,
the monitor run from that file on the audit's own test rows (before = after), drifted and unfair
batches that must alert, and the numbers against direct computations."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from conftest import SCHEMA
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from auditor.analysis.drift import psi as drift_psi
from auditor.analysis.monitoring import ColumnShift, column_shift, reference_bins
from auditor.checks.base import CheckRegistry
from auditor.checks.data import DriftCheck
from auditor.checks.fairness.disparate_impact import DisparateImpactCheck
from auditor.engine import prepare_objects
from auditor.monitor import (
    ALERT,
    OK,
    WARN,
    AlertLevels,
    GroupCheck,
    MonitorInputError,
    air_level,
    baseline_from_json,
    drift_level,
    load_baseline,
    monitor,
    rate_level,
)
from auditor.remediation import run_remedies
from auditor.remediation.monitoring import MonitoringRemedy
from auditor.runner import run_checks

FEATURES = ["x1", "x2", "cat"]
REGISTRY = CheckRegistry([DriftCheck, DisparateImpactCheck])


def frame(n: int, seed: int, *, shift: float = 0.0, unfair: float = 0.0) -> pd.DataFrame:
    """x1 drives the outcome; ``unfair`` lowers x1 for group B (a disparity through the inputs)."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], n, p=[0.65, 0.35])
    x1 = rng.normal(0.0, 1.0, n) + shift - unfair * (group == "B")
    x2 = rng.normal(5.0, 2.0, n)
    cat = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    age = rng.integers(18, 75, n)
    logit = 1.0 + 1.5 * x1 - 0.3 * (x2 - 5.0) + 0.5 * (cat == "a")
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "cat": cat, "group": group, "age": age, "y": y})


def pipeline(final) -> object:
    pre = ColumnTransformer([("num", "passthrough", ["x1", "x2"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["cat"])])
    return make_pipeline(pre, final)


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return frame(800, 1)


@pytest.fixture(scope="module")
def model(train: pd.DataFrame):
    return pipeline(LogisticRegression(max_iter=500)).fit(train[FEATURES], train["y"])


def remedy(model, test: pd.DataFrame, train: pd.DataFrame | None, *, target: str = "y", **kwargs):
    """Run the two checks the baseline reads, then the monitoring remedy alone."""
    kwargs.setdefault("protected", ["group"])
    kwargs.setdefault("reference", {"group": "A"})
    audit = prepare_objects(model, test=test, train=train, target=target, registry=REGISTRY, **kwargs)
    out = run_checks(audit.context, REGISTRY)
    (result,) = run_remedies(audit.context, out.results, out.measurements,
                             remedies={"monitoring": MonitoringRemedy})
    assert result.status.value == "ok", result.error
    (rem,) = result.remediations
    (artifact,) = result.artifacts
    baseline = baseline_from_json(json.loads(artifact.data), source=artifact.path)
    return audit, out, rem, baseline


def by_feature(out, check_id: str = "data.drift") -> dict:
    return {d.feature: d for d in out.measurements[check_id].features}


# ---- the remedy on the audit's own test rows -----------------------------------------------------

def test_clean_audit_gets_a_baseline_that_reproduces_the_audit_and_does_not_alert(model, train) -> None:
    test = frame(400, 2)
    audit, out, rem, baseline = remedy(model, test, train)
    assert rem.kind == "monitoring" and rem.verified and rem.artifacts == ("remediation/monitoring.json",)
    assert rem.addresses == ()  # a clean audit: nothing the monitor answers
    assert rem.before == rem.after
    assert rem.after["alerts_on_test_rows"] == 0 and rem.after["score_psi"] == 0.0
    drift = by_feature(out)
    assert rem.before["max_feature_psi"] == pytest.approx(max(d.psi for d in drift.values()), abs=1e-12)
    # the file's model, rule and references
    m = baseline.model
    assert (m.task, m.features, m.classes, m.positive_class, m.favorable, m.threshold) == \
        ("classification", tuple(FEATURES), (0, 1), 1, 1, 0.5)
    assert [c.source for c in baseline.features] == ["train"] * 3 and baseline.score.source == "test"
    assert baseline.levels == AlertLevels(psi_warn=0.10, psi_alert=0.25, drift_alpha=0.01, epsilon=1e-4,
                                          min_ratio=0.8, fairness_alpha=0.05, rate_warn=0.05, rate_alert=0.10,
                                          rate_alpha=0.01, min_group_rows=30)


def test_reference_bins_are_the_drift_checks_quantiles_of_the_training_data(model, train) -> None:
    _, _, _, baseline = remedy(model, frame(300, 3), train)
    x1 = next(c for c in baseline.features if c.name == "x1")
    edges = np.quantile(train["x1"], np.arange(1, 10) / 10)  # independent: numpy quantiles, pandas counts
    assert np.allclose(x1.edges, edges)
    counts = pd.cut(train["x1"], [-np.inf, *edges, np.inf], right=True).value_counts(sort=False).to_numpy()
    assert list(x1.counts) == [*counts.tolist(), 0]  # the last bin holds missing values
    cat = next(c for c in baseline.features if c.name == "cat")
    shares = train["cat"].value_counts(normalize=True)
    assert dict(zip(cat.levels, cat.shares)) == pytest.approx(shares.to_dict())


def test_train_test_drift_is_addressed_and_the_monitor_alerts_on_those_test_rows(model, train) -> None:
    test = frame(400, 4, shift=1.5)  # planted: the test rows drifted from training on x1
    _, out, rem, _ = remedy(model, test, train)
    assert "data.drift/x1" in rem.addresses
    assert rem.before == rem.after and rem.verified
    assert rem.after["alerts_on_test_rows"] >= 1 and "data.drift/y" not in rem.addresses  # the target is not watched
    assert rem.after["max_feature_psi"] == pytest.approx(by_feature(out)["x1"].psi, abs=1e-12)
    assert any("already raise" in c and "x1" in c for c in rem.caveats)


def test_findings_json_lists_the_remediation_and_validates(model, train) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    audit = prepare_objects(model, test=frame(300, 5), train=train, target="y", protected=["group"],
                            registry=REGISTRY)
    result = audit.run(today=date(2026, 1, 1))
    doc = json.loads(json.dumps(result.to_json()))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    (entry,) = [r for r in doc["remediations"] if r["id"] == "monitoring"]
    assert entry["kind"] == "monitoring" and entry["verified"] is True
    assert set(entry["before"]) == set(entry["after"]) and "alerts_on_test_rows" in entry["after"]
    assert "remediation/monitoring.json" in [a.path for a in result.artifacts]


# ---- the monitor on new batches --------------------------------------------------------------------

def independent_psi(reference: pd.Series, current: pd.Series) -> float:
    edges = np.unique(np.quantile(reference, np.arange(1, 10) / 10))
    bins = [-np.inf, *edges, np.inf]
    r = pd.cut(reference, bins).value_counts(sort=False, normalize=True).to_numpy()
    c = pd.cut(current, bins).value_counts(sort=False, normalize=True).to_numpy()
    r, c = np.clip(r, 1e-4, None), np.clip(c, 1e-4, None)
    return float(np.sum((c - r) * np.log(c / r)))


def test_a_shifted_batch_alerts_on_the_shifted_feature_with_the_independent_psi(model, train) -> None:
    _, _, _, baseline = remedy(model, frame(400, 6), train)
    batch = frame(500, 7)
    batch["x2"] = batch["x2"] + 2 * train["x2"].std()  # x2 moves by two training SDs
    result = monitor(baseline, batch, model)
    x2 = result.column("x2")
    assert x2.level == ALERT and "x2" in {a.subject.split("'")[1] for a in result.alerts if a.level == ALERT
                                          and a.subject.startswith("feature")}
    assert x2.shift.psi == pytest.approx(independent_psi(train["x2"], batch["x2"]), rel=1e-9)
    assert result.column("x1").level == OK and result.column("cat").level == OK
    assert result.status == ALERT and result.n_alerts >= 1
    doc = result.to_json()
    assert doc["status"] == "alert" and any(f["subject"] == "feature 'x2'" for f in doc["alerts"])


def test_a_category_share_change_alerts(model, train) -> None:
    _, _, _, baseline = remedy(model, frame(400, 8), train)
    batch = frame(500, 9)
    batch.loc[batch.index[:200], "cat"] = "c"
    r = monitor(baseline, batch)  # no model: drift of the features only
    assert r.column("cat").level == ALERT and r.score is None and r.groups == ()
    shares = train["cat"].value_counts(normalize=True)
    now = batch["cat"].value_counts(normalize=True)
    expected = sum((now[k] - shares[k]) * np.log(now[k] / shares[k]) for k in shares.index)
    assert r.column("cat").shift.psi == pytest.approx(expected, rel=1e-9)


def test_an_unseen_level_is_its_own_bin(model, train) -> None:
    _, _, _, baseline = remedy(model, frame(300, 10), train)
    batch = frame(400, 11)
    batch.loc[batch.index[:80], "cat"] = "zz"
    shift = monitor(baseline, batch).column("cat").shift
    assert shift.unseen == ("zz",) and shift.labels[-2:] == ("zz", "(missing)")
    assert shift.psi > 0.25


def test_the_unshifted_batch_passes_and_group_rates_match_a_direct_computation(model, train) -> None:
    _, _, _, baseline = remedy(model, frame(400, 12), train)
    batch = frame(600, 13)
    r = monitor(baseline, batch, model)
    assert r.status == OK and r.n_alerts == 0 and r.score is not None and r.score.level == OK
    fav = model.predict_proba(batch[FEATURES])[:, 1] >= 0.5
    rates = {g: fav[batch["group"].to_numpy() == g].mean() for g in ("A", "B")}
    got = {g.group: g for g in r.groups if g.grouping == "group"}
    assert got["B"].favorable_rate == pytest.approx(rates["B"]) and got["A"].favorable_rate == pytest.approx(rates["A"])
    assert got["B"].adverse_impact_ratio == pytest.approx(rates["B"] / rates["A"])
    overall = next(g for g in r.groups if g.grouping == "all rows")
    assert overall.favorable_rate == pytest.approx(fav.mean())


def test_a_new_disparity_alerts_and_a_known_one_only_warns(model, train) -> None:
    _, _, _, fair_baseline = remedy(model, frame(500, 14), train)
    unfair = frame(800, 15, unfair=1.5)  # planted in production: group B's inputs (and decisions) drop
    r = monitor(fair_baseline, unfair, model)
    b = next(g for g in r.groups if g.grouping == "group" and g.group == "B")
    assert b.adverse_impact_ratio < 0.8 and b.air_level == ALERT and b.rate_level == ALERT
    assert any(a.metric == "adverse_impact_ratio" and a.level == ALERT and a.subject == "group = B" for a in r.alerts)
    # the same disparity already in the audit: a known finding, a warning
    _, _, rem, unfair_baseline = remedy(model, frame(500, 16, unfair=1.5), train)
    assert "fairness.disparate_impact/group=B" in rem.addresses
    again = monitor(unfair_baseline, frame(800, 17, unfair=1.5), model)
    b2 = next(g for g in again.groups if g.grouping == "group" and g.group == "B")
    assert b2.air_level == WARN and "known" in b2.air_reason and again.n_alerts == 0


def test_missing_protected_columns_skip_their_groups_and_a_missing_feature_is_refused(model, train) -> None:
    _, _, _, baseline = remedy(model, frame(300, 18), train)
    batch = frame(300, 19)
    r = monitor(baseline, batch.drop(columns=["group"]), model)
    assert r.groups and all(g.grouping == "all rows" for g in r.groups)
    assert any("group" in n and "not in the data" in n for n in r.notes)
    with pytest.raises(MonitorInputError, match="'x1'"):
        monitor(baseline, batch.drop(columns=["x1"]), model)


def test_load_baseline_reads_the_file_or_refuses(tmp_path, model, train) -> None:
    _, _, _, baseline = remedy(model, frame(300, 20), train)
    path = tmp_path / "remediation" / "monitoring.json"
    path.parent.mkdir()
    path.write_bytes(baseline.to_bytes())
    again = load_baseline(tmp_path)  # the report folder
    assert again.to_json() == baseline.to_json() and again.source == str(path)
    (tmp_path / "other.json").write_text(json.dumps({"schema_version": "1.1", "findings": []}))
    with pytest.raises(MonitorInputError, match="not a monitoring baseline"):
        load_baseline(tmp_path / "other.json")
    with pytest.raises(MonitorInputError, match="not found"):
        load_baseline(tmp_path / "missing.json")


# ---- other audits ------------------------------------------------------------------------------------

def test_without_training_data_the_reference_is_the_test_rows(model) -> None:
    test = frame(400, 21)
    _, _, rem, baseline = remedy(model, test, None)
    assert {c.source for c in baseline.features} == {"test"}
    assert rem.before == rem.after and rem.after["max_feature_psi"] == 0.0 and rem.after["alerts_on_test_rows"] == 0


def test_multiclass_watches_the_predicted_class_and_the_favourable_class(train) -> None:
    def three(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        out["grade"] = np.where(df["x1"] > 0.5, "hi", np.where(df["x1"] < -0.5, "lo", "mid"))
        return out

    tr = three(train)
    clf = pipeline(LogisticRegression(max_iter=500)).fit(tr[FEATURES], tr["grade"])
    test = three(frame(500, 22)).drop(columns=["y"])
    _, _, rem, baseline = remedy(clf, test, tr.drop(columns=["y"]), target="grade", favorable="hi")
    assert baseline.score.kind == "categorical" and set(baseline.score.levels) <= {"hi", "lo", "mid"}
    assert rem.verified and rem.before == rem.after and rem.after["alerts_on_test_rows"] == 0
    r = monitor(baseline, three(frame(500, 23)), clf)
    fav = clf.predict(three(frame(500, 23))[FEATURES]) == "hi"
    assert next(g for g in r.groups if g.grouping == "all rows").favorable_rate == pytest.approx(fav.mean())


def test_regression_watches_drift_only(train) -> None:
    reg = pipeline(LinearRegression()).fit(train[FEATURES], train["x1"] * 2 + train["x2"])
    tr = train.assign(t=train["x1"] * 2 + train["x2"])
    te = frame(400, 24)
    te = te.assign(t=te["x1"] * 2 + te["x2"])
    _, _, rem, baseline = remedy(reg, te, tr, target="t")
    assert baseline.fairness is None and baseline.score.kind == "numeric"
    assert rem.verified and rem.before == rem.after and "min_adverse_impact_ratio" not in rem.after
    shifted = te.assign(x1=te["x1"] + 2)
    r = monitor(baseline, shifted, reg)
    assert r.column("x1").level == ALERT and r.score.level == ALERT


def test_a_banded_numeric_protected_column_is_reproduced(model, train) -> None:
    _, out, rem, baseline = remedy(model, frame(600, 25), train, protected=["age"], reference=None)
    (g,) = baseline.fairness.groupings
    assert g.spec.columns == ("age",) and g.spec.cuts[0] is not None  # quantile bands of the test rows
    assert rem.verified and rem.before == rem.after
    measured = out.measurements["fairness.disparate_impact"].rates[0]
    assert [r.group for r in g.groups] == list(measured.grouping.groups)


# ---- the rules alone -----------------------------------------------------------------------------------

def shift(psi: float, p: float, n: int = 500) -> ColumnShift:
    return ColumnShift(name="f", kind="numeric", n_reference=1000, n_current=n, psi=psi, p_value=p,
                       labels=("a", "b"), reference_share=(0.5, 0.5), current_share=(0.4, 0.6))


def test_drift_levels_need_both_effect_and_significance() -> None:
    lv = AlertLevels()
    assert drift_level(shift(0.30, 1e-6), 0.001, lv)[0] == ALERT
    assert drift_level(shift(0.15, 1e-6), 0.001, lv)[0] == WARN
    assert drift_level(shift(0.05, 1e-9), 0.001, lv)[0] == OK
    level, reason = drift_level(shift(0.40, 0.2, n=20), 0.001, lv)  # a big PSI on 20 rows is noise
    assert level == OK and "not significant" in reason


def group(**kw) -> GroupCheck:
    base = dict(grouping="g", group="B", is_reference=False, rows=200, favorable=100, favorable_rate=0.5,
                adverse_impact_ratio=0.6, air_p=1e-6, reference_rows=400, baseline_rows=200, baseline_favorable=160,
                baseline_rate=0.8, baseline_air=0.95)
    base.update(kw)
    return GroupCheck(**base)


def test_group_rules() -> None:
    lv = AlertLevels()
    assert air_level(group(), 0.05, lv)[0] == ALERT  # a new, significant breach
    assert air_level(group(baseline_air=0.7), 0.05, lv)[0] == WARN  # known from the audit
    assert air_level(group(air_p=0.3), 0.05, lv)[0] == WARN  # not significant
    assert air_level(group(adverse_impact_ratio=0.9), 0.05, lv)[0] == OK
    assert air_level(group(rows=10), 0.05, lv)[0] == "not judged"
    assert rate_level(group(), 0.01, lv)[0] == ALERT  # 80% -> 50%, Fisher p tiny
    assert rate_level(group(favorable=148, favorable_rate=0.74), 0.01, lv)[0] in (OK, WARN)
    assert rate_level(group(favorable=160, favorable_rate=0.8), 0.01, lv)[0] == OK


def test_column_shift_uses_the_drift_psi() -> None:
    rng = np.random.default_rng(0)
    ref = reference_bins(rng.normal(size=1000), name="v", kind="numeric", source="train")
    new = rng.normal(0.5, 1, size=700)
    s = column_shift(ref, new)
    assert s.psi == pytest.approx(drift_psi(ref.shares, s.current_share))
