"""sensitivity.partial_dependence, issue 7: grids that resolve zero-inflated features (and ALE
bins built the same way), severities read at the conservative end of an interval so they do not
hinge on the seed, and k-class models audited on one class's probability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED, run_check, svg_of
from sklearn.linear_model import LogisticRegression
from test_partial_dependence import CHECK, ProbaModel, _judge, _metrics, finding, ids, sigmoid, split

from auditor.analysis.partial_dependence import (
    PartnerIndex,
    accumulated_local_effects,
    ale_edges,
    bootstrap_weights,
    dependence_metrics,
    feature_dependence,
    ice_curves,
    link_scale,
    long_tailed,
    make_grid,
    row_drawdowns,
    wilson_ci,
)
from auditor.checks.sensitivity.partial_dependence import PartialDependenceCheck
from auditor.engine import prepare_objects
from auditor.findings import Severity

# the shared data folder beside the checkout (or beside the folder of worktrees)
ADULT = next((p for p in [SHARED / "data" / "adult.data"] + [a / "shared" / "data" / "adult.data"
                                                              for a in Path(__file__).resolve().parents]
              if p.is_file()), SHARED / "data" / "adult.data")
ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
                 "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
                 "native-country", "income"]


def zero_inflated(n: int, rng: np.random.Generator, share_zero: float = 0.9) -> np.ndarray:
    """``share_zero`` zeros, the rest lognormal around a few thousand (like capital gain)."""
    x = np.round(rng.lognormal(mean=8.3, sigma=0.8, size=n))
    return np.where(rng.random(n) < share_zero, 0.0, x)


def step(x: np.ndarray) -> np.ndarray:
    """Sharp and non-monotone in the non-zero part: 0 -> 0.24, small gains -> 0.05,
    3,000 to 7,000 -> 0.41, from 7,000 -> 0.91 (the capital-gain shape of issue 7)."""
    x = np.asarray(x, dtype=float)
    return np.select([x <= 0, x < 3000, x < 7000], [0.24, 0.05, 0.41], 0.91)


def plain_quantile_grid(v: np.ndarray, size: int = 20) -> np.ndarray:
    """The grid before issue 7: unique quantiles of all observed values."""
    return np.unique(np.quantile(v, np.linspace(0, 1, size), method="inverted_cdf"))


# ---- grids ---------------------------------------------------------------------------------------

def test_zero_inflated_grid_has_the_spike_and_quantiles_of_the_rest():
    rng = np.random.default_rng(0)
    v = zero_inflated(3000, rng)
    g = make_grid(pd.Series(v, name="gain"), categorical=False, grid_size=20)
    inside = np.asarray(g.values_of("in_range"))
    assert g.spikes == (0.0,) and inside[0] == 0.0 and len(inside) == 20
    nonzero = v[v > 0]
    # the other 19 points are quantiles of the non-zero values: observed values, min and max included
    assert set(inside[1:]) <= set(nonzero) and inside[1] == nonzero.min() and inside[-1] == nonzero.max()
    direct = np.quantile(nonzero, np.linspace(0, 1, 19), method="inverted_cdf")
    np.testing.assert_array_equal(inside[1:], np.unique(direct))
    # the plain quantile grid sees almost nothing of the non-zero part (what this fixes)
    assert np.sum(plain_quantile_grid(v) > 0) <= 2
    # out-of-range and missing points are kept
    assert g.values_of("below") and g.values_of("above") and g.kinds[-1] == "missing"


def test_spike_inside_the_range_and_few_unique_values():
    rng = np.random.default_rng(1)
    hours = np.where(rng.random(2000) < 0.45, 40.0, np.round(rng.normal(40, 12, 2000)).clip(1, 99))
    g = make_grid(pd.Series(hours, name="hours"), categorical=False, grid_size=20)
    inside = g.values_of("in_range")
    assert 40.0 in g.spikes and 40.0 in inside and len(inside) == 20
    assert inside == sorted(inside) and min(inside) == hours.min() and max(inside) == hours.max()
    # few unique values: all of them, spikes or not
    few = np.array([0.0] * 90 + [1.0, 2.0, 5.0] * 10)
    g_few = make_grid(pd.Series(few, name="k"), categorical=False)
    assert g_few.values_of("in_range") == [0.0, 1.0, 2.0, 5.0] and g_few.spikes == ()


def test_smooth_feature_keeps_the_plain_quantile_grid():
    rng = np.random.default_rng(2)
    v = rng.normal(50, 10, 1000)
    g = make_grid(pd.Series(v, name="income"), categorical=False, grid_size=20)
    assert g.spikes == ()
    np.testing.assert_array_equal(g.values_of("in_range"), plain_quantile_grid(v))


@pytest.mark.skipif(not ADULT.is_file(), reason="UCI Adult not available")
def test_adult_capital_gain_grid_resolves_the_non_zero_part():
    df = pd.read_csv(ADULT, header=None, names=ADULT_COLUMNS, skipinitialspace=True)
    gain = df["capital-gain"]
    assert plain_quantile_grid(gain.to_numpy(float)).tolist() == [0.0, 4650.0, 99999.0]  # the grid
    inside = np.asarray(make_grid(gain, categorical=False).values_of("in_range"))
    assert inside[0] == 0.0 and len(inside) == 20
    # points in every part of the sharp effect: small gains, around 5,100, around 10,000, the top
    for lo, hi in ((1, 3000), (3000, 7000), (7000, 12000), (12000, 100000)):
        assert np.sum((inside >= lo) & (inside < hi)) >= 2, (lo, hi, inside)


def test_ale_edges_use_the_spike_and_quantiles_of_the_rest():
    rng = np.random.default_rng(3)
    x = zero_inflated(2000, rng)
    e = ale_edges(x, 20)
    assert e[0] == 0.0 and len(e) == 21 and set(e) <= set(x)
    np.testing.assert_array_equal(e[1:], np.unique(np.quantile(x[x > 0], np.linspace(0, 1, 20),
                                                               method="inverted_cdf")))
    # the grid's spikes are used when given (even when the sample alone would not call it one)
    e2 = ale_edges(np.concatenate([[0.0] * 5, x[x > 0]]), 20, spikes=(0.0,))
    assert e2[0] == 0.0 and len(e2) == 21


def test_ale_on_zero_inflated_feature_matches_pdp_up_to_a_constant():
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"gain": zero_inflated(800, rng), "z": rng.normal(size=800)})

    def f(Z):  # additive, so ALE and PDP agree up to a constant at the edges
        return step(Z["gain"]) + 0.1 * Z["z"]

    dep = feature_dependence(f, X, "gain", grid=make_grid(X["gain"], categorical=False), ale_bins=20)
    ale = dep.ale
    assert ale.edges[0] == 0.0 and np.sum(ale.edges > 0) >= 15 and ale.counts[0] >= 0.85 * 800
    pdp_at_edges = ice_curves(f, X, "gain", ale.edges).mean(axis=0)
    assert np.ptp(ale.values - pdp_at_edges) < 1e-9
    np.testing.assert_allclose(accumulated_local_effects(f, X, "gain", edges=ale.edges).values, ale.values)
    # the ALE sees the dip and the rise of the non-zero part
    assert ale.values.max() - ale.values.min() > 0.8


# ---- the check: planted zero-inflated effect, clean control ----------------------------------------

def gain_data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"gain": zero_inflated(n, rng), "age": rng.uniform(20, 70, n)})
    df["y"] = (rng.random(n) < 0.3).astype(int)
    return df


def test_zero_inflated_non_monotone_effect_is_seen():
    train, test = split(gain_data(2500, 0), 2000)
    model = ProbaModel(lambda X: np.clip(step(X["gain"]) + 0.002 * (X["age"] - 45), 0, 1))
    r = run_check(PartialDependenceCheck, model, test=test, train=train, target="y",
                  expect={"monotone": {"gain": 1}})
    f = finding(r, "monotone", "gain")
    assert f.severity is Severity.HIGH
    # the fall from 0.24 at zero to 0.05 for small gains, found on the grid's non-zero points
    assert f.metrics["from_value"] == 0.0 and 0 < f.metrics["to_value"] < 3000
    assert f.metrics["pdp_fall"] == pytest.approx(0.19, abs=1e-9)
    assert f.rule is not None and f.rule.metric == "pdp_fall" and f.rule.interval is not None
    assert "interval" in f.summary and "lower end" in f.summary
    row = next(rec for rec in r.evidence.tables[0].records() if rec["feature"] == "gain")
    assert row["pdp_range"] == pytest.approx(0.86, abs=1e-3)  # 0.05 to 0.91
    assert r.evidence.tables[0].records()[0]["feature"] == "gain"  # the strongest effect comes first
    # the long tail is drawn on a symmetric log x axis, so the grid's non-zero points stay readable
    assert long_tailed(make_grid(train["gain"], categorical=False).values_of("in_range"))
    assert "gain (log x)" in svg_of(r.evidence.figures[0])
    assert any("grid point and an ALE edge of its own" in n and "gain (0)" in n for n in r.evidence.notes)
    # direct computation: on the plain quantile grid the dip between 0 and 3,000 is invisible
    plain = plain_quantile_grid(train["gain"].to_numpy(float))
    assert not np.any((plain > 0) & (plain < 3000))


def test_smooth_monotone_feature_is_not_flagged_and_keeps_its_grid():
    rng = np.random.default_rng(5)
    n = 1200
    df = pd.DataFrame({"income": rng.normal(50, 10, n), "gain": zero_inflated(n, rng)})
    df["y"] = (rng.random(n) < sigmoid(0.08 * (df["income"] - 50))).astype(int)
    train, test = split(df, 900)
    model = LogisticRegression(max_iter=1000).fit(train[["income", "gain"]] / [1, 1000], train["y"])
    scaled = ProbaModel(lambda X: model.predict_proba(X[["income", "gain"]] / [1, 1000])[:, 1])
    r = run_check(PartialDependenceCheck, scaled, test=test, train=train, target="y",
                  expect={"monotone": {"income": 1}})
    assert ids(r, "monotone") == [] and "high" not in [f.severity.value for f in r.findings]
    g = make_grid(train["income"], categorical=False)
    np.testing.assert_array_equal(g.values_of("in_range"), plain_quantile_grid(train["income"].to_numpy()))
    assert not long_tailed(g.values_of("in_range")) and "income (log x)" not in svg_of(r.evidence.figures[0])


# ---- intervals: direct computations -----------------------------------------------------------------

def test_bootstrap_intervals_match_a_direct_resampling():
    rng = np.random.default_rng(6)
    n = 120
    X = pd.DataFrame({"x1": rng.uniform(-1.5, 1.5, n), "x2": rng.uniform(-1.5, 1.5, n)})

    def f(Z):
        return sigmoid(Z["x1"] + Z["x1"] * Z["x2"] - 0.5 * np.sin(3 * Z["x1"]))

    dep = feature_dependence(f, X, "x1", grid=make_grid(X["x1"], categorical=False))
    W = bootstrap_weights(np.random.default_rng(7), n, 60)
    assert W.shape == (60, n) and np.all(W.sum(axis=1) == n)
    m = dependence_metrics(dep, monotone=1, link="logit", partners=PartnerIndex.from_frame(X), boot=W,
                           confidence=0.9)
    ice = dep.ice[:, dep.grid.in_range]
    L = link_scale(ice, "logit")
    shares, spreads, drops, effects = [], [], [], []
    for w in W.astype(int):
        idx = np.repeat(np.arange(n), w)
        A = L[idx] - L[idx].mean(axis=1, keepdims=True)
        shares.append(np.sum((A - A.mean(axis=0)) ** 2) / np.sum(A ** 2))
        C = ice[idx] - ice[idx].mean(axis=1, keepdims=True)
        spreads.append(np.sqrt(np.mean((C - C.mean(axis=0)) ** 2)))
        drops.append(row_drawdowns(ice[idx].mean(axis=0)[None, :])[0])
        effects.append(np.mean(np.ptp(ice[idx], axis=1)))
    for got, draws in ((m.interaction_share_ci, shares), (m.ice_spread_ci, spreads), (m.pdp_drop_ci, drops),
                       (m.effect_ci, effects)):
        np.testing.assert_allclose(got, np.percentile(draws, [5, 95]), rtol=1e-9, atol=1e-12)
    k = int(round(m.ice_breach_share * n))
    from scipy.stats import binomtest
    direct = binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
    np.testing.assert_allclose(m.ice_breach_ci, (direct.low, direct.high), atol=1e-9)
    assert wilson_ci(0, 50, 0.95)[0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kw, kind, expected", [
    # point estimates past a threshold, but the interval's conservative end is not
    (dict(ice_breach_share=0.12, ice_breach_ci=(0.07, 0.18)), "monotone", None),
    (dict(ice_breach_share=0.30, ice_breach_ci=(0.2, 0.4)), "monotone", "medium"),
    (dict(pdp_drop=0.06, pdp_drop_ci=(0.03, 0.09)), "monotone", "medium"),
    (dict(pdp_drop=0.06, pdp_drop_ci=(0.051, 0.07)), "monotone", "high"),
    (dict(interaction_share=0.55, interaction_share_ci=(0.45, 0.65), ice_spread=0.2), "interaction", "low"),
    (dict(interaction_share=0.3, interaction_share_ci=(0.2, 0.4), ice_spread=0.2), "interaction", None),
    (dict(interaction_share=0.9, interaction_share_ci=(0.85, 0.95), ice_spread=0.06,
          ice_spread_ci=(0.04, 0.08)), "interaction", None),
    (dict(above_change=0.35, above_change_ci=(0.2, 0.5), max_step=0.05), "erratic", "medium"),
    (dict(above_change=-0.35, above_change_ci=(-0.5, -0.31), max_step=0.05), "erratic", "high"),
    (dict(above_change=0.08, above_change_ci=(-0.01, 0.15), max_step=0.0), "erratic", None),
    (dict(effect=0.001, effect_ci=(0.0, 0.005), pdp_range=0.001), "no_effect", None),
    (dict(effect=0.001, effect_ci=(0.0, 0.0015), pdp_range=0.001), "no_effect", "low"),
])
def test_judge_reads_the_conservative_end_of_the_interval(kw, kind, expected):
    base = dict(n_rows=200, n_boot=400, confidence=0.95)
    assert _judge(PartialDependenceCheck(), _metrics(**base, **kw)).get(kind) == expected


def test_every_finding_states_its_rule_and_interval():
    rng = np.random.default_rng(8)
    n = 900
    df = pd.DataFrame({"x1": rng.uniform(-2, 2, n), "x2": rng.uniform(-2, 2, n), "x3": rng.normal(size=n),
                       "noise": rng.normal(size=n)})
    df["y"] = (rng.random(n) < 0.5).astype(int)
    train, test = split(df, 600)
    top = float(train["x3"].max())

    def fn(X):
        p = sigmoid(2 * X["x1"] * X["x2"] + 0.2 * X["x3"] - 0.5 * (X["x3"] > 1))
        return np.where(X["x3"].to_numpy(float) > top, 0.99, p)

    r = run_check(PartialDependenceCheck, ProbaModel(fn), test=test, train=train, target="y",
                  expect={"monotone": {"x3": 1}})
    kinds = {f.id.split("/")[1] for f in r.findings}
    assert kinds >= {"interaction", "monotone", "erratic", "no_effect"}
    for f in r.findings:
        assert f.rule is not None and f.rule.text and f.rule.threshold is not None, f.id
        assert f.rule.interval is not None and f.rule.interval[0] <= f.rule.interval[1], f.id
        assert "Severity" in f.summary and "interval" in f.summary, f.id
        assert f.rule.to_json()["interval"] == list(f.rule.interval)
    assert any("conservative end" in n and "bootstrap" in n for n in r.evidence.notes)


# ---- seed stability ---------------------------------------------------------------------------------

def interaction_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(2)
    n = 1500
    df = pd.DataFrame({"x1": rng.uniform(-1.5, 1.5, n), "x2": rng.uniform(-1.5, 1.5, n), "x3": rng.normal(size=n)})
    df["y"] = (rng.random(n) < 0.5).astype(int)
    return split(df, 500)


def interaction_over_seeds(model: ProbaModel, seeds: int = 5,
                           expect: dict | None = None) -> list[tuple[str | None, float]]:
    train, test = interaction_data()
    out = []
    for seed in range(seeds):  # 150 of 1,000 test rows: each seed samples different rows
        r = run_check(PartialDependenceCheck, model, test=test, train=train, target="y", seed=seed,
                      options={"rows": 150}, expect=expect)
        f = [x for x in r.findings if x.id == f"{CHECK}/interaction/x1"]
        share = next(rec for rec in r.evidence.tables[0].records() if rec["feature"] == "x1")["interaction_share"]
        out.append((f[0].severity.value if f else None, share))
    return out


def test_planted_interaction_has_the_same_severity_across_seeds():
    # x1 is declared additive, so a strong interaction of x1 is a defect: medium on every seed
    runs = interaction_over_seeds(ProbaModel(lambda X: sigmoid(2 * X["x1"] * X["x2"] + 0.5 * X["x3"])),
                                  expect={"additive": ["x1"]})
    assert [sev for sev, _ in runs] == ["medium"] * 5


def test_undeclared_interaction_is_routine_and_low():
    # the control (issue 10): the same strong interaction without a declaration is routine for a
    # flexible model, so it stays low; declaring x1 monotone makes it medium again
    model = ProbaModel(lambda X: sigmoid(2 * X["x1"] * X["x2"] + 0.5 * X["x3"]))
    assert [sev for sev, _ in interaction_over_seeds(model, seeds=2)] == ["low"] * 2
    train, test = interaction_data()
    r = run_check(PartialDependenceCheck, model, test=test, train=train, target="y", options={"rows": 150})
    f = next(x for x in r.findings if x.id == f"{CHECK}/interaction/x1")
    assert f.rule is not None and "declared additive or monotone" in f.rule.text and "routine" in f.rule.text
    r = run_check(PartialDependenceCheck, model, test=test, train=train, target="y", options={"rows": 150},
                  expect={"monotone": {"x1": 1}})
    f = next(x for x in r.findings if x.id == f"{CHECK}/interaction/x1")
    assert f.severity is Severity.MEDIUM and "declared monotone" in f.rule.text


def test_expect_additive_must_name_a_feature():
    from auditor.errors import AuditInputError

    train, test = interaction_data()
    with pytest.raises(AuditInputError, match="expect.additive"):
        run_check(PartialDependenceCheck, ProbaModel(lambda X: sigmoid(X["x1"])), test=test, train=train,
                  target="y", expect={"additive": ["x9"]})


def test_borderline_interaction_stays_below_medium_across_seeds():
    # true interaction share about 0.46 on the log-odds scale, just under the medium cut of 0.5
    runs = interaction_over_seeds(ProbaModel(lambda X: sigmoid(X["x1"] + 1.15 * X["x1"] * X["x2"] + 0.5 * X["x3"])),
                                  expect={"additive": ["x1"]})
    assert all(sev in (None, "low") for sev, _ in runs), runs
    # the point estimate alone would have crossed the cut on some seed: the interval is what holds
    assert max(share for _, share in runs) >= 0.5 > min(share for _, share in runs)


# ---- k classes -------------------------------------------------------------------------------------

def three_class_data(n: int = 900, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.uniform(0, 10, n)})
    logits = np.column_stack([df["a"], -df["a"] + 0.5 * df["b"], 0.3 * (df["c"] - 5)])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    df["grade"] = np.array(["A", "B", "C"])[(rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)]
    return df


def test_three_class_model_curves_are_the_favourable_class_probability():
    df = three_class_data()
    train, test = split(df, 600)
    feats = ["a", "b", "c"]
    model = LogisticRegression(max_iter=1000).fit(train[feats], train["grade"])
    r = run_check(PartialDependenceCheck, model, test=test, train=train, target="grade", favorable="B")
    assert r.status.value == "ok"
    assert any("for 3 classes the curves show P(class = B)" in n and "favourable" in n for n in r.evidence.notes)
    assert "P(class = B)" in svg_of(r.evidence.figures[0])
    # the measured curve is P(B): a point against mean(proba[:, B]) with the feature set to the grid value
    audit = prepare_objects(model, test=test, train=train, target="grade", favorable="B")
    ctx = audit.context
    m = PartialDependenceCheck().measure(ctx)
    idx = list(model.classes_).index("B")
    assert ctx.favorable_index == idx
    dep = next(d for d in m.dependences if d.feature == "a")
    Xs = test[feats].reset_index(drop=True)  # 300 test rows < rows = 500: the sample is every row
    assert dep.n_rows == len(Xs)
    for j in np.flatnonzero(dep.grid.in_range)[[0, 7, -1]]:
        Z = Xs.copy()
        Z["a"] = dep.grid.values[j]
        assert dep.pdp[j] == pytest.approx(model.predict_proba(Z)[:, idx].mean(), abs=1e-12)
    # P(B) falls in a: without the favourable class it would be the last class, C, which ignores a
    fm = next(x for x in m.metrics if x.feature == "a")
    assert fm.effect > 0.2
    m_last = PartialDependenceCheck().measure(prepare_objects(model, test=test, train=train, target="grade").context)
    assert m_last.class_label == "C" and m_last.class_role == "positive"
    assert next(x for x in m_last.metrics if x.feature == "c").effect > next(
        x for x in m_last.metrics if x.feature == "a").effect


def test_three_class_declared_monotone_breach_on_the_favourable_class():
    df = three_class_data(seed=1)
    train, test = split(df, 600)

    class ThreeClass:
        classes_ = np.array(["A", "B", "C"])

        def predict_proba(self, X):
            # P(B) rises then falls in c (peak at 5); the other classes share the rest
            pb = 0.2 + 0.6 * np.exp(-((X["c"].to_numpy(float) - 5) / 2) ** 2)
            pa = (1 - pb) * sigmoid(X["a"].to_numpy(float))
            return np.column_stack([pa, pb, 1 - pb - pa])

        def predict(self, X):
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    r = run_check(PartialDependenceCheck, ThreeClass(), test=test, train=train, target="grade", favorable="B",
                  expect={"monotone": {"c": 1}})
    f = finding(r, "monotone", "c")
    assert f.severity is Severity.HIGH and "probability of class B" in f.title
    assert 4 <= f.metrics["from_value"] <= 6 and f.metrics["pdp_fall"] > 0.4
