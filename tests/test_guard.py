"""auditor.Guard on its own: constraints, reasons per row, JSON round trip, and a vectorised check that
agrees with a row-by-row reading of the same rules."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import auditor
from auditor.guard import CATEGORICAL, NUMERIC, FeatureRule, Guard, GuardError


def _guard() -> Guard:
    return Guard((
        FeatureRule("age", NUMERIC, min=14.0, max=80.0, observed_min=19.0, observed_max=75.0),
        FeatureRule("purpose", CATEGORICAL, levels=("car", "tv", "education")),
        FeatureRule("duration", NUMERIC, min=0.0, max=72.0, observed_min=4.0, observed_max=72.0),
        FeatureRule("income", NUMERIC, min=0.0, max=1e5, observed_min=10.0, observed_max=9e4, missing_allowed=True,
                    excluded=(0.0,)),
    ), margin=0.1, source="training data (test)")


def test_reasons_name_each_broken_constraint_per_row() -> None:
    df = pd.DataFrame({"age": [30, 95, "abc", np.inf, 10],
                       "purpose": ["car", "yacht", None, 3, "tv"],
                       "duration": [12, np.nan, 5, 80, -1],
                       "income": [100.0, np.nan, 0.0, 5.0, 2e5],
                       "other": ["ignored"] * 5}, index=[10, 11, 12, 13, 14])
    r = _guard().check(df)
    assert r.passed.tolist() == [True, False, False, False, False]
    assert r.reasons.index.tolist() == [10, 11, 12, 13, 14]
    assert r.reasons.loc[10] == ()
    assert r.reasons.loc[11] == ("age > 80 (max 75 + margin)", "purpose='yacht' not an allowed level",
                                 "duration missing")  # income may be missing
    assert r.reasons.loc[12] == ("age='abc' not a number", "purpose missing", "income=0 broke the model in the audit")
    assert r.reasons.loc[13] == ("age=inf not finite", "purpose=3 not an allowed level",
                                 "duration > 72 (max of the training data)")
    assert r.reasons.loc[14] == ("age < 14 (min 19 - margin)", "duration < 0 (min 4 - margin)",
                                 "income > 100000 (max 90000 + margin)")
    assert r.n_rejected == 4 and r.pass_share == pytest.approx(0.2)
    s = r.summary()
    assert s["rejected_by"]["age:max"] == 1 and s["rejected_by"]["purpose:level"] == 2
    assert "income:missing" not in s["rejected_by"]  # allowed, so never broken
    assert r.violations.loc[11, "duration:missing"] and not r.violations.loc[10].any()
    assert r.frame().loc[12, "reasons"].startswith("age='abc' not a number; purpose missing")


def test_missing_guarded_column_is_a_clear_error() -> None:
    with pytest.raises(GuardError, match="lacks 2 columns the guard checks: purpose, income"):
        _guard().check(pd.DataFrame({"age": [30], "duration": [10]}))


def test_round_trip_through_json(tmp_path) -> None:
    g = _guard()
    path = tmp_path / "guard.json"
    g.save(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "auditor.guard" and doc["version"] == 1
    assert [f["name"] for f in doc["features"]] == ["age", "purpose", "duration", "income"]
    back = auditor.Guard.load(path)
    assert back == g
    assert Guard.from_dict(g.to_dict()) == g
    df = pd.DataFrame({"age": [30, 90], "purpose": ["car", "boat"], "duration": [1, 2], "income": [5.0, 7.0]})
    assert back.check(df).reasons.tolist() == g.check(df).reasons.tolist()


@pytest.mark.parametrize("bad, message", [
    ({"format": "something else"}, "not an auditor guard"),
    ({"format": "auditor.guard", "version": 99, "features": []}, "version 99"),
    ({"format": "auditor.guard", "version": 1, "features": [{"name": "a", "kind": "text"}]}, "kind must be"),
    ({"format": "auditor.guard", "version": 1, "features": [{"name": "a", "kind": "categorical"}]}, "needs its levels"),
    ({"format": "auditor.guard", "version": 1,
      "features": [{"name": "a", "kind": "numeric", "min": 3, "max": 1}]}, "above max"),
])
def test_a_broken_guard_file_is_refused(bad: dict, message: str) -> None:
    with pytest.raises(GuardError, match=message):
        Guard.from_dict(bad)
    with pytest.raises(GuardError, match="must be JSON"):
        Guard.loads("{not json")


def test_numeric_levels_compare_as_numbers_and_dtypes_do_not_matter() -> None:
    g = Guard((FeatureRule("code", CATEGORICAL, levels=(1, 2, 3)), FeatureRule("x", NUMERIC, min=0.0, max=1.0),
               FeatureRule("c", CATEGORICAL, levels=("a", "b"))))
    df = pd.DataFrame({"code": pd.Series([1.0, 2, 4, 3], dtype=object),
                       "x": pd.array([0, None, 1, 0], dtype="Int64"),
                       "c": pd.Categorical(["a", "b", "a", "z"])})
    r = g.check(df)
    assert r.passed.tolist() == [True, False, False, False]
    assert r.reasons.tolist()[1] == ("x missing",)
    assert r.reasons.tolist()[2] == ("code=4 not an allowed level",)
    assert r.reasons.tolist()[3] == ("c='z' not an allowed level",)
    assert g.check(df.assign(code=["1", "2", "3", "3"])).violations["code:level"].sum() == 0


def _by_rows(g: Guard, df: pd.DataFrame) -> list[bool]:
    """The same rules read row by row in plain Python: the independent computation."""
    out = []
    for _, row in df.iterrows():
        ok = True
        for r in g.features:
            v = row[r.name]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                ok &= r.missing_allowed
                continue
            if r.kind == NUMERIC:
                try:
                    x = float(v)
                except (TypeError, ValueError):
                    ok = False
                    continue
                ok &= math.isfinite(x) and (r.min is None or x >= r.min) and (r.max is None or x <= r.max) \
                    and x not in r.excluded
            else:
                ok &= str(v) in {str(lev) for lev in r.levels}
        out.append(bool(ok))
    return out


def test_vectorised_check_agrees_with_a_row_by_row_reading() -> None:
    rng = np.random.default_rng(0)
    n = 2_000
    age = rng.normal(45, 25, n).round()
    purpose = rng.choice(["car", "tv", "education", "yacht", ""], n, p=[.4, .3, .2, .05, .05]).astype(object)
    purpose[rng.random(n) < 0.03] = None
    duration = rng.uniform(-10, 90, n)
    duration[rng.random(n) < 0.03] = np.nan
    income = rng.choice([0.0, 50.0, 5e4, 2e5, np.inf], n, p=[.1, .4, .4, .05, .05])
    df = pd.DataFrame({"age": age.astype(object), "purpose": purpose, "duration": duration, "income": income})
    df.loc[rng.random(n) < 0.02, "age"] = "n/a"
    g = _guard()
    r = g.check(df)
    assert r.passed.tolist() == _by_rows(g, df)
    assert 0.1 < r.pass_share < 0.9  # both outcomes are exercised
    # every rejected row says why, every passing row says nothing
    assert all(bool(reasons) != ok for reasons, ok in zip(r.reasons, r.passed))
