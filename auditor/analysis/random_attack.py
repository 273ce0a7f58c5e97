"""Random and hostile inputs: feed the model batches of odd rows and record what comes back.

Every perturbed row is a real row with one column (or, in the combined batches, every column)
replaced. Families of inputs:

* ``in_range``: values drawn independently and uniformly within each feature's observed range
  (numeric) or levels (categorical);
* ``extreme``: huge (±1e9, ±1e12), tiny (±1e-12), zero, negative, the observed minimum and
  maximum, and both pushed beyond by 10 spans (numeric columns);
* ``infinite``: ±inf (numeric columns);
* ``missing``: a missing value in the column;
* ``unseen_category``: a level never observed (categorical columns);
* ``empty_string``: ``""`` (categorical columns stored as text);
* ``wrong_type``: a string in a numeric column, a number in a text column (object dtype);
* ``jitter``: the in-range random rows with one numeric column moved by a tiny relative amount,
  to measure how far the score moves.

Every group of perturbed rows is classified against the observed (training) domain: in-domain
when its values lie within the observed range, use seen levels, and are missing only in columns
where the observed data had missing values; otherwise out-of-domain, with the violated
constraint named (``missing``, ``unseen_level``, ``out_of_range``, ``wrong_type``). The carrier
rows are real rows that are themselves in-domain, so a violation is always the perturbation's.

Calls are batched: one call per family for all columns at once, and one call per family for
the per-column groups concatenated. Only a call that raises (or returns the wrong shape) is split,
by halving its list of groups (column and value), until each crash is pinned to one column and value: at most two
calls per group, and never one call per row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .domain import FeatureDomain

FAMILIES: tuple[str, ...] = ("in_range", "extreme", "infinite", "missing", "unseen_category",
                             "empty_string", "wrong_type", "jitter")
#: the constraints of the observed domain an input can violate, in report order
VIOLATIONS: tuple[str, ...] = ("missing", "unseen_level", "out_of_range", "wrong_type")
COMBINED = ""  # the column label of a batch where every column is perturbed at once

_TEXT_WRONG_TYPE = 12345  # a number in a text column
_NUMERIC_WRONG_TYPE = "abc"  # a string in a numeric column
_UNSEEN = "__unseen_level__"
_REPR_CHARS = 40
_MESSAGE_CHARS = 160


@dataclass(frozen=True)
class Outcome:
    """What the model did with one group of perturbed rows sharing family, column and value.

    ``column`` is ``""`` for the combined batch (every column perturbed at once).
    ``violations`` are the domain constraints the perturbed values break (empty: in-domain).
    ``crash`` is ``"Type: first line of the message"`` when the call raised, else ``""``;
    ``bad_output`` says what was wrong when the call returned an output of the wrong shape
    (rows or probability columns missing) without raising. The counts are over the perturbed
    rows of the group: ``non_finite`` rows with a NaN or infinite output, ``out_of_range`` rows
    with a probability outside [0, 1], ``bad_sum`` rows whose probabilities do not sum to one.
    """

    family: str
    column: str
    value: str
    violations: tuple[str, ...]
    rows: int
    crash: str = ""
    non_finite: int = 0
    out_of_range: int = 0
    bad_sum: int = 0
    example_output: str = ""
    bad_output: str = ""

    @property
    def in_domain(self) -> bool:
        return not self.violations

    @property
    def bad_rows(self) -> int:
        if self.crash or self.bad_output:
            return self.rows
        return self.non_finite + self.out_of_range + self.bad_sum

    @property
    def kinds(self) -> tuple[str, ...]:
        """Failure kinds seen in this group: crash, bad_shape, non_finite, out_of_range, bad_sum."""
        if self.crash:
            return ("crash",)
        if self.bad_output:
            return ("bad_shape",)
        return tuple(k for k, n in (("non_finite", self.non_finite), ("out_of_range", self.out_of_range),
                                    ("bad_sum", self.bad_sum)) if n)


@dataclass(frozen=True)
class JitterOutcome:
    """Absolute score changes when ``column`` (``""``: every numeric column) of the in-range random
    rows moves by a tiny relative amount. NaN where either score was not finite."""

    column: str
    changes: tuple[float, ...]

    @property
    def max_change(self) -> float:
        finite = [c for c in self.changes if math.isfinite(c)]
        return max(finite) if finite else float("nan")

    def n_above(self, tolerance: float) -> int:
        return sum(1 for c in self.changes if math.isfinite(c) and c > tolerance)


@dataclass(frozen=True)
class RandomAttackResult:
    """All groups tried, in a stable order (family, column in feature order, value)."""

    outcomes: tuple[Outcome, ...]
    jitter: tuple[JitterOutcome, ...]
    calls: int
    rows_tried: tuple[tuple[str, int], ...]  # (family, rows), in FAMILIES order
    n_random: int
    rows_per_column: int
    jitter_relative: float
    tolerance: float
    missing_in_domain: bool = False  # missing values counted as in-domain in every column
    n_outputs: int | None = None  # probability columns expected (k classes), None: not checked
    carriers_in_domain: bool = True  # the carrier rows were all in-domain real rows

    @property
    def total_rows(self) -> int:
        return sum(n for _, n in self.rows_tried)

    def rows_in(self, family: str) -> int:
        return dict(self.rows_tried).get(family, 0)

    @property
    def failures(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.kinds)


# ---- perturbations --------------------------------------------------------------------------

def _is_text(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)


def extreme_values(d: FeatureDomain) -> list[float]:
    """Huge, tiny, zero, negative, the observed minimum and maximum (in-domain edges), and the
    observed range pushed out by ten spans."""
    span = d.span if math.isfinite(d.span) and d.span > 0 else max(abs(d.high), 1.0) if math.isfinite(d.high) else 1.0
    values = [1e9, -1e9, 1e12, -1e12, 1e-12, -1e-12, 0.0, -1.0]
    if math.isfinite(d.low):
        values += [float(d.low), float(d.high), d.low - 10 * span, d.high + 10 * span]
    return list(dict.fromkeys(values))


def _unseen_level(d: FeatureDomain, text: bool) -> Any | None:
    if text:
        seen = {str(v) for v in d.levels}
        value = _UNSEEN
        while value in seen:
            value += "_"
        return value
    numbers = [v for v in d.levels if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)]
    if not numbers or len(numbers) != len(d.levels):
        return None
    top = max(float(v) for v in numbers)
    return int(top) + 1 if all(float(v).is_integer() for v in numbers) else top + 1.0


def family_values(family: str, d: FeatureDomain, text: bool, is_bool: bool) -> list[Any]:
    """The fixed values a family puts into one column (empty: the family does not apply)."""
    numeric = not d.categorical
    if family == "extreme":
        return extreme_values(d) if numeric else []
    if family == "infinite":
        return [math.inf, -math.inf] if numeric else []
    if family == "missing":
        return [np.nan]
    if family == "unseen_category":
        if not d.categorical or is_bool:
            return []
        level = _unseen_level(d, text)
        return [] if level is None else [level]
    if family == "empty_string":
        return [""] if d.categorical and text and not is_bool else []
    if family == "wrong_type":
        return [_TEXT_WRONG_TYPE] if text and not is_bool else [_NUMERIC_WRONG_TYPE]
    raise ValueError(f"unknown family {family!r}")


def random_in_range(d: FeatureDomain, n: int, rng: np.random.Generator) -> list[Any] | None:
    """``n`` values drawn uniformly within the observed range or levels (None: no observed values)."""
    if d.categorical:
        if not d.levels:
            return None
        idx = rng.integers(0, len(d.levels), size=n)
        return [d.levels[i] for i in idx]
    if not math.isfinite(d.low):
        return None
    v = rng.uniform(d.low, d.high, size=n) if d.high > d.low else np.full(n, d.low)
    if d.integer:
        v = np.round(v)
    return v.tolist()


def column_series(values: Sequence[Any], like: pd.Series, *, object_dtype: bool = False) -> pd.Series:
    """A replacement column for ``like`` holding ``values``, in the closest sensible dtype.

    Wrong types always get object dtype (so pandas does not coerce them away); numbers keep an
    integer dtype only when every value is a whole number within its range; text keeps its dtype.
    """
    idx = like.index
    dtype = like.dtype
    if object_dtype:
        return pd.Series(list(values), index=idx, dtype=object)
    if isinstance(dtype, pd.CategoricalDtype):
        cats = list(dtype.categories)
        extra = [v for v in dict.fromkeys(values) if not _missing(v) and v not in cats]
        return pd.Series(pd.Categorical(list(values), categories=cats + extra), index=idx)
    if pd.api.types.is_bool_dtype(dtype):
        if all(isinstance(v, (bool, np.bool_)) for v in values):
            return pd.Series(list(values), index=idx, dtype=dtype)
        return pd.Series(list(values), index=idx, dtype=object)
    if pd.api.types.is_numeric_dtype(dtype):
        arr = np.asarray(values, dtype=float)
        if isinstance(dtype, np.dtype) and dtype.kind in "iu" and np.all(np.isfinite(arr)) \
                and np.all(arr == np.round(arr)):
            info = np.iinfo(dtype)
            if arr.size == 0 or (arr.min() >= info.min and arr.max() <= info.max):
                return pd.Series(arr.astype(dtype), index=idx)
        return pd.Series(arr, index=idx, dtype="float64")
    try:
        return pd.Series(list(values), index=idx, dtype=dtype)
    except (TypeError, ValueError):
        return pd.Series(list(values), index=idx, dtype=object)


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _short_repr(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        text = repr(float(v))
    elif isinstance(v, np.generic):
        text = repr(v.item())
    else:
        text = repr(v)
    return text if len(text) <= _REPR_CHARS else text[:_REPR_CHARS - 1] + "…"


def describe_exception(exc: BaseException) -> str:
    """``Type: first line of the message``, trimmed."""
    msg = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else ""
    if len(msg) > _MESSAGE_CHARS:
        msg = msg[:_MESSAGE_CHARS - 1] + "…"
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


# ---- the observed domain -----------------------------------------------------------------------

def missing_allowed(d: FeatureDomain, missing_in_domain: bool = False) -> bool:
    """Whether a missing value is in-domain: the observed data had one in this column (or the
    caller declares missing values expected everywhere)."""
    return missing_in_domain or d.missing_share > 0


def domain_violation(family: str, d: FeatureDomain, value: Any, *, missing_in_domain: bool = False) -> str:
    """The domain constraint ``value`` (put into a column by ``family``) breaks, or ``""`` when
    it is in-domain: within the observed range, a seen level, missing only where observed."""
    if family in ("in_range", "jitter"):
        return ""
    if family == "wrong_type":
        return "wrong_type"
    if family == "missing" or _missing(value):
        return "" if missing_allowed(d, missing_in_domain) else "missing"
    if d.categorical:
        return "" if str(value) in {str(v) for v in d.levels} else "unseen_level"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "wrong_type"
    return "" if math.isfinite(d.low) and d.low <= x <= d.high else "out_of_range"


def in_domain_rows(X: pd.DataFrame, domains: Mapping[str, FeatureDomain], *,
                   missing_in_domain: bool = False) -> np.ndarray:
    """Rows of ``X`` whose every value is in-domain (a boolean mask)."""
    ok = np.ones(len(X), dtype=bool)
    for c, d in domains.items():
        if c not in X.columns:
            continue
        s = X[c]
        miss = s.isna().to_numpy()
        if d.categorical:
            seen = {str(v) for v in d.levels}
            inside = np.fromiter((str(x) in seen for x in s.astype(object)), dtype=bool, count=len(s))
        else:
            v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                inside = (v >= d.low) & (v <= d.high) if math.isfinite(d.low) else np.zeros(len(s), dtype=bool)
        ok &= np.where(miss, missing_allowed(d, missing_in_domain), inside)
    return ok


# ---- running batches -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Group:
    family: str
    column: str
    value: str
    violations: tuple[str, ...]
    frame: pd.DataFrame
    hit: np.ndarray  # which rows of the frame carry the perturbation


@dataclass(frozen=True)
class _Fail:
    """A call that raised (``kind="crash"``) or returned an output of the wrong shape."""

    kind: str
    message: str


class _Caller:
    """Calls the model on a frame and checks the shape of what comes back."""

    def __init__(self, predict: Callable[[pd.DataFrame], Any], *, proba: bool,
                 n_outputs: int | None = None) -> None:
        self.predict = predict
        self.proba = proba
        self.n_outputs = n_outputs
        self.calls = 0

    def __call__(self, X: pd.DataFrame) -> np.ndarray | _Fail:
        self.calls += 1
        try:
            out = np.asarray(self.predict(X), dtype=float)
        except Exception as exc:  # noqa: BLE001 - any failure of the model is the measurement
            return _Fail("crash", describe_exception(exc))
        if out.ndim == 1 and out.shape[0] == len(X):
            out = out.reshape(-1, 1)
        if out.ndim != 2 or out.shape[0] != len(X):
            return _Fail("bad_shape", f"returned shape {tuple(out.shape)} for {len(X)} rows")
        if self.n_outputs is not None and out.shape[1] != self.n_outputs:
            return _Fail("bad_shape", f"returned {out.shape[1]} probability columns for {self.n_outputs} classes")
        return out


def _row_flags(out: np.ndarray, proba: bool, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: any non-finite output; (probabilities) any of the k columns outside [0, 1]; the k
    columns not summing to one."""
    finite = np.all(np.isfinite(out), axis=1)
    non_finite = ~finite
    if not proba:
        zeros = np.zeros(len(out), dtype=bool)
        return non_finite, zeros, zeros
    with np.errstate(invalid="ignore"):
        out_of_range = finite & np.any((out < -tol) | (out > 1 + tol), axis=1)
        bad_sum = finite & ~out_of_range & (np.abs(out.sum(axis=1) - 1.0) > tol)
    return non_finite, out_of_range, bad_sum


def _format_output(row: np.ndarray) -> str:
    text = np.array2string(np.asarray(row, dtype=float), precision=4, separator=", ")
    text = text if row.size > 1 else text.strip("[]")
    return text if len(text) <= _REPR_CHARS else text[:_REPR_CHARS - 1] + "…"


def _evaluate(g: _Group, out: np.ndarray | _Fail, proba: bool, tol: float) -> Outcome:
    rows = int(g.hit.sum())
    if isinstance(out, _Fail):
        if out.kind == "crash":
            return Outcome(g.family, g.column, g.value, g.violations, rows, crash=out.message)
        return Outcome(g.family, g.column, g.value, g.violations, rows, bad_output=out.message)
    sub = out[g.hit]
    nf, oor, bs = _row_flags(sub, proba, tol)
    bad = nf | oor | bs
    example = _format_output(sub[np.argmax(bad)]) if bad.any() else ""
    return Outcome(g.family, g.column, g.value, g.violations, rows, non_finite=int(nf.sum()),
                   out_of_range=int(oor.sum()), bad_sum=int(bs.sum()), example_output=example)


def _run(groups: list[_Group], call: _Caller, tol: float) -> tuple[list[Outcome], list[np.ndarray | None]]:
    """Outcomes per group, calling once for all; a call that fails is split in halves."""
    if not groups:
        return [], []
    frame = groups[0].frame if len(groups) == 1 else pd.concat([g.frame for g in groups], ignore_index=True)
    out = call(frame)
    if isinstance(out, _Fail) and len(groups) > 1:
        mid = len(groups) // 2
        a, ao = _run(groups[:mid], call, tol)
        b, bo = _run(groups[mid:], call, tol)
        return a + b, ao + bo
    outcomes: list[Outcome] = []
    outputs: list[np.ndarray | None] = []
    start = 0
    for g in groups:
        part = out if isinstance(out, _Fail) else out[start:start + len(g.frame)]
        start += len(g.frame)
        outcomes.append(_evaluate(g, part, call.proba, tol))
        outputs.append(None if isinstance(part, _Fail) else part)
    return outcomes, outputs


# ---- the attack ----------------------------------------------------------------------------------

def random_attack(X: pd.DataFrame, domains: Mapping[str, FeatureDomain],
                  predict: Callable[[pd.DataFrame], Any], *, proba: bool, n_outputs: int | None = None,
                  rng: np.random.Generator, n_random: int = 200, rows_per_column: int = 20,
                  jitter: float = 1e-6, tolerance: float = 1e-6, missing_in_domain: bool = False,
                  families: Sequence[str] = FAMILIES) -> RandomAttackResult:
    """Feed ``predict`` (a batched DataFrame -> outputs function: the k-column probability matrix
    when ``proba``, else predictions) families of random and hostile rows built from the real
    rows ``X`` and the observed ``domains`` (pass the training data's); record crashes and bad
    outputs per family, column and value, each group classified in- or out-of-domain.

    ``n_outputs`` is the number of probability columns expected (the k classes); ``tolerance``
    bounds how far probabilities may stray outside [0, 1] or from summing to one;
    ``missing_in_domain`` counts a missing value as in-domain in every column (default: only
    where the observed data had missing values).
    """
    if len(X) == 0:
        raise ValueError("random_attack needs at least one real row")
    columns = [c for c in X.columns if c in domains]
    call = _Caller(predict, proba=proba, n_outputs=n_outputs if proba else None)
    ok = in_domain_rows(X[columns], {c: domains[c] for c in columns}, missing_in_domain=missing_in_domain)
    carriers = X[ok] if ok.any() else X
    base = carriers.iloc[rng.choice(len(carriers), size=rows_per_column + 1,
                                    replace=len(carriers) < rows_per_column + 1)]
    plan = _Plan(X, domains, columns, carriers, base.reset_index(drop=True), rng, n_random, rows_per_column,
                 missing_in_domain)
    outcomes: list[Outcome] = []
    rows_tried: dict[str, int] = {}
    random_rows: pd.DataFrame | None = None
    random_out: np.ndarray | None = None
    for family in families:
        if family == "jitter":
            continue
        groups, joint_group = plan.in_range_groups() if family == "in_range" else plan.family_groups(family)
        if joint_group is None and not groups:
            continue
        if joint_group is not None:
            res, outs = _run([joint_group], call, tolerance)
            outcomes += res
            if family == "in_range" and outs[0] is not None:
                random_rows, random_out = joint_group.frame, outs[0]
        res, _ = _run(groups, call, tolerance)
        outcomes += res
        rows_tried[family] = sum(int(g.hit.sum()) for g in groups) + (
            len(joint_group.frame) if joint_group is not None else 0)

    jitter_outcomes: list[JitterOutcome] = []
    if "jitter" in families and random_rows is not None and random_out is not None:
        jitter_outcomes, jitter_groups, n_rows = _jitter(random_rows, random_out, domains, columns, call,
                                                          relative=jitter, tolerance=tolerance)
        outcomes += jitter_groups
        rows_tried["jitter"] = n_rows

    return RandomAttackResult(
        outcomes=tuple(outcomes), jitter=tuple(jitter_outcomes), calls=call.calls,
        rows_tried=tuple((f, rows_tried[f]) for f in FAMILIES if f in rows_tried),
        n_random=n_random, rows_per_column=rows_per_column, jitter_relative=jitter, tolerance=tolerance,
        missing_in_domain=missing_in_domain, n_outputs=call.n_outputs, carriers_in_domain=bool(ok.any()))


@dataclass(frozen=True, eq=False)
class _Plan:
    """What the groups of one attack are built from: the real rows, their observed domains, the
    in-domain carrier rows, the ``rows_per_column + 1`` base rows drawn from them, the generator."""

    X: pd.DataFrame
    domains: Mapping[str, FeatureDomain]
    columns: list[str]
    carriers: pd.DataFrame
    base: pd.DataFrame
    rng: np.random.Generator
    n_random: int
    rows_per_column: int
    missing_in_domain: bool

    def in_range_groups(self) -> tuple[list[_Group], _Group | None]:
        """Random rows with every column drawn in range at once, then each column drawn alone."""
        domains, k = self.domains, self.rows_per_column
        joint, joint_ok = _random_rows(self.carriers, domains, self.columns, self.n_random, self.rng)
        groups: list[_Group] = []
        for c in self.columns:
            vals = random_in_range(domains[c], k, self.rng)
            if vals is None:
                continue
            frame = self.base.iloc[:k].copy()
            frame[c] = column_series(vals, frame[c])
            groups.append(_Group("in_range", c, f"random {_range_text(domains[c])}", (), frame,
                                 np.ones(len(frame), dtype=bool)))
        joint_group = _Group("in_range", COMBINED, "random rows", (), joint, np.ones(len(joint), dtype=bool)) \
            if joint_ok else None
        return groups, joint_group

    def family_groups(self, family: str) -> tuple[list[_Group], _Group | None]:
        """Each of the family's values in each column (on ``rows_per_column`` // values rows plus an
        unperturbed carrier), then one batch with a random value of it in every column at once."""
        k = self.rows_per_column
        per_value: dict[str, list[Any]] = {}
        groups: list[_Group] = []
        for c in self.columns:
            text = _is_text(self.X[c])
            vals = family_values(family, self.domains[c], text, pd.api.types.is_bool_dtype(self.X[c].dtype))
            if not vals:
                continue
            per_value[c] = vals
            r = max(1, k // len(vals))
            for i, v in enumerate(vals):
                rows = self.base.iloc[[(i * r + j) % k for j in range(r)] + [k]].copy()
                hit = np.arange(len(rows)) < r  # the last row is an unperturbed carrier
                filled = [v if h else orig for h, orig in zip(hit, rows[c].tolist())]
                rows[c] = column_series(filled, rows[c], object_dtype=family == "wrong_type")
                broken = self.violation(family, c, v)
                groups.append(_Group(family, c, _short_repr(v), (broken,) if broken else (), rows, hit))
        if not per_value:
            return groups, None
        joint = self.base.iloc[:k].copy()
        broken_all: set[str] = set()
        for c, vals in per_value.items():
            picks = [vals[i] for i in self.rng.integers(0, len(vals), size=len(joint))]
            broken_all |= {self.violation(family, c, v) for v in picks} - {""}
            joint[c] = column_series(picks, joint[c], object_dtype=family == "wrong_type")
        return groups, _Group(family, COMBINED, "every column at once", tuple(v for v in VIOLATIONS if v in broken_all),
                              joint, np.ones(len(joint), dtype=bool))

    def violation(self, family: str, c: str, v: Any) -> str:
        return domain_violation(family, self.domains[c], v, missing_in_domain=self.missing_in_domain)


def _range_text(d: FeatureDomain) -> str:
    if d.categorical:
        return f"level of {len(d.levels)}"
    return f"in [{d.low:.4g}, {d.high:.4g}]"


def _random_rows(X: pd.DataFrame, domains: Mapping[str, FeatureDomain], columns: list[str], n: int,
                 rng: np.random.Generator) -> tuple[pd.DataFrame, bool]:
    """``n`` rows with every feature drawn independently within its observed range or levels."""
    frame = X.iloc[rng.choice(len(X), size=n, replace=len(X) < n)].reset_index(drop=True).copy()
    for c in columns:
        vals = random_in_range(domains[c], n, rng)
        if vals is not None:
            frame[c] = column_series(vals, frame[c])
    return frame, n > 0


def _jitter(rows: pd.DataFrame, out: np.ndarray, domains: Mapping[str, FeatureDomain], columns: list[str],
            call: _Caller, *, relative: float,
            tolerance: float) -> tuple[list[JitterOutcome], list[Outcome], int]:
    """Move each numeric column (then all of them at once) up and down by ``relative`` of its
    value (of its span where the value is zero) and measure the output change: the largest
    absolute change over the output columns (all k class probabilities, or the prediction).

    The change of a row is the smaller of the two moves: a step function (a tree split) that
    happens to sit exactly at the value moves the score one way only, while an unstable model
    moves it both ways.
    """
    numeric = [c for c in columns if not domains[c].categorical and math.isfinite(domains[c].low)]
    if not numeric:
        return [], [], 0
    n = len(rows)

    def moved(cols: list[str]) -> pd.DataFrame:
        parts = []
        for sign in (1.0, -1.0):
            frame = rows.copy()
            for c in cols:
                x = pd.to_numeric(rows[c], errors="coerce").to_numpy(dtype=float)
                span = domains[c].span if domains[c].span > 0 else 1.0
                frame[c] = pd.Series(x + sign * relative * np.where(x != 0, np.abs(x), span),
                                     index=rows.index, dtype="float64")
            parts.append(frame)
        return pd.concat(parts, ignore_index=True)

    # only rows whose unjittered output was sound can show a failure caused by the jitter
    nf, oor, bs = _row_flags(out, call.proba, tolerance)
    hit = np.tile(~(nf | oor | bs), 2)
    label = f"×(1 ± {relative:g})"
    groups = [_Group("jitter", c, label, (), moved([c]), hit) for c in numeric]
    if len(numeric) > 1:
        groups.append(_Group("jitter", COMBINED, label, (), moved(numeric), hit))
    res, outs = _run(groups, call, tolerance)
    jitter: list[JitterOutcome] = []
    for g, part in zip(groups, outs):
        if part is None or part.shape[1] != out.shape[1]:
            continue
        with np.errstate(invalid="ignore"):
            up = np.max(np.abs(part[:n] - out), axis=1)
            down = np.max(np.abs(part[n:] - out), axis=1)
            change = np.minimum(up, down)
        jitter.append(JitterOutcome(g.column, tuple(float(v) if np.isfinite(v) else float("nan") for v in change)))
    return jitter, res, 2 * n * len(groups)
