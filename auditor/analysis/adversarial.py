"""Adversarial example search within plausible bounds, the way a validator would probe a model.

Pure numerics: a batched score function, real starting rows and the observed feature domains
in; a frozen :class:`AdversarialResult` out. Nothing here knows about severities.

* **Search space.** Each searched feature is an :class:`Axis`: numeric features move within
  their observed range widened by ``margin`` of the span, but not below zero when no observed
  value is negative (integer features stay integer, with the bounds rounded inwards); categorical features take only their observed levels. Features
  named in ``fixed`` (declared immutable, protected attributes) and constant features never move.
* **Distance** between a row and a changed copy is normalised: the sum over numeric features of
  ``|change| / std``, plus 1 for each changed categorical feature (or a value filled in where
  the original was missing).
* **Importance** is a cheap batched sensitivity: for each feature, the mean over the starting
  rows of the score range when that feature alone sweeps a coarse grid. The top
  ``max_features`` features are searched.
* **Smallest flip** (a decision crossing the threshold, or a regression prediction moving by
  more than an amount, see :class:`FlipRule`): every grid value and a few small local steps of
  each searched feature for each row in one batch, refined by batched bisection to the exact
  crossing; then pairs of the most important features; a shrinking line search on the best
  multi-feature flips; then a seeded genetic search over several features. The change with the
  smallest distance wins.
* **Knife edges:** where a single feature's sweep shows a large score step between neighbouring
  grid values, batched bisection narrows it down to ``knife_width`` of the span and records the
  jump across it.
* **Extremes:** batched coordinate ascent (and descent) over the grids of the searched features
  finds the combination that drives the score to its maximum and minimum within bounds.
* **HopSkipJump** (ART, classification only) is a second opinion on minimal flips over the
  continuous numeric features: categorical and fixed features are held by ``mask=``, results are
  clipped to the plausible bounds, integers rounded, and every result is re-scored, so only
  verified flips count. Its starting points come from a seeded batched search so the run is
  repeatable; the global NumPy state ART draws its noise from is seeded and then restored.

* **k classes** (``FlipRule("class", 0)``, ``score_fn`` returning the n x k probabilities): a flip
  is a change of the predicted class (arg max); the search reads the margin P(start row's
  class) - P(runner-up) (a flip is a margin below 0), swings, knife edges and extremes the
  probability of the start row's class. HopSkipJump then attacks "still the row's class" against
  "any other class".
* **Model failures** are evidence, never a crash: a batch that raises is split in halves until
  the failing candidates are isolated (calls grow with the log of the batch, never row by row);
  a failing candidate with a single changed value teaches that (feature, value), and later
  candidates holding it are not sent. NaN, infinite or out-of-range probabilities are recorded
  too. Failed candidates score NaN, never count as flips, and are reported in
  :class:`ScoringFailures` (counts, examples, whether the changed values were in the observed
  range).

Every model call scores a batch of many candidate rows; the number of rows scored is capped by
``max_queries`` and reported with the number of calls.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .domain import FeatureDomain

ScoreFn = Callable[[pd.DataFrame], np.ndarray]

_BIG = 1e6
# local steps around a row's own value, in standard deviations, for the single-feature sweep
_LOCAL_STEPS = (0.25, 0.5, 1.0)
# steps for the pairwise search, in standard deviations
_PAIR_STEPS = (0.1, 0.25, 0.5, 1.0)
_PAIR_LEVELS = 6
_IMPORTANCE_GRID = 7
_BISECT_STEPS = 14
_KNIFE_STEPS = 10
_SHRINK = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


# ---- small value types ----------------------------------------------------------------------
@dataclass(frozen=True)
class FlipRule:
    """When a changed prediction counts as a flip.

    ``kind="threshold"``: the decision (score >= ``value``) changes (binary classification).
    ``kind="amount"``: the prediction moves by more than ``value`` (regression).
    ``kind="class"``: the predicted class (arg max) changes (k classes). The flip value is then the
    *margin*: the start row's class probability minus the largest other class probability, so a
    flip is a margin below 0 (``value`` is 0).

    A non-finite score never counts as a flip (the model failed: see :class:`ScoringFailures`).
    """

    kind: str
    value: float

    def flipped(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        before, after = np.asarray(before, float), np.asarray(after, float)
        ok = np.isfinite(before) & np.isfinite(after)
        if self.kind == "class":
            return ok & (after < 0.0)
        if self.kind == "threshold":
            return ok & ((after >= self.value) != (before >= self.value))
        return ok & (np.abs(after - before) > self.value)

    def gap(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """How far the score still is from a flip (0 once flipped, inf when not finite)."""
        before, after = np.asarray(before, float), np.asarray(after, float)
        ok = np.isfinite(before) & np.isfinite(after)
        with np.errstate(invalid="ignore"):
            if self.kind in ("threshold", "class"):
                g = np.where(self.flipped(before, after), 0.0, np.abs(after - self.value))
            else:
                g = np.maximum(0.0, self.value - np.abs(after - before))
        return np.where(ok, g, np.inf)


@dataclass(frozen=True)
class ScoreScale:
    """Scores on a 0-1 scale for judging: probabilities as they are (``identity``), regression
    predictions as their percentile rank among ``reference`` predictions (``rank``)."""

    kind: str = "identity"
    reference: tuple[float, ...] = ()

    @classmethod
    def rank_of(cls, scores: np.ndarray) -> ScoreScale:
        return cls("rank", tuple(np.sort(np.asarray(scores, float)).tolist()))

    def __call__(self, scores: Any) -> np.ndarray:
        s = np.asarray(scores, dtype=float)
        if self.kind == "identity" or not self.reference:
            return s
        ref = np.asarray(self.reference)
        n = len(ref)
        return np.interp(s, ref, (np.arange(n) + 0.5) / n, left=0.0, right=1.0)


@dataclass(frozen=True)
class Axis:
    """One searchable feature: plausible ``low``/``high`` bounds (numeric) or known ``levels``."""

    name: str
    categorical: bool
    low: float = float("nan")
    high: float = float("nan")
    observed_low: float = float("nan")
    observed_high: float = float("nan")
    std: float = 1.0
    integer: bool = False
    levels: tuple = ()

    @property
    def span(self) -> float:
        return float(self.observed_high - self.observed_low)

    def grid(self, n: int) -> np.ndarray:
        """``n`` evenly spaced values over the plausible range (unique integers for integer
        features), or every level code."""
        if self.categorical:
            return np.arange(len(self.levels), dtype=float)
        return np.unique(self.clip(np.linspace(self.low, self.high, max(int(n), 2))))

    def clip(self, values: np.ndarray) -> np.ndarray:
        if self.categorical:
            return values
        v = np.clip(np.asarray(values, dtype=float), self.low, self.high)
        return np.round(v) if self.integer else v


def plausible_axes(domains: Mapping[str, FeatureDomain], features: Sequence[str], *, margin: float,
                   max_levels: int = 30) -> tuple[Axis, ...]:
    """Axes for ``features`` from their observed domains; constant features are left out."""
    axes: list[Axis] = []
    for name in features:
        d = domains[name]
        if d.categorical:
            if len(d.levels) >= 2:
                axes.append(Axis(name, True, levels=tuple(d.levels[:max_levels])))
            continue
        if not (np.isfinite(d.low) and np.isfinite(d.high)) or d.high <= d.low:
            continue
        low, high = d.margin_bounds(margin)
        if d.low >= 0:  # the margin never flips a feature's sign (no negative amounts or ages)
            low = max(low, 0.0)
        if d.integer:
            low, high = math.ceil(low - 1e-9), math.floor(high + 1e-9)
        std = d.std if np.isfinite(d.std) and d.std > 0 else d.span
        axes.append(Axis(name, False, low=float(low), high=float(high), observed_low=d.low,
                         observed_high=d.high, std=float(std), integer=d.integer))
    return tuple(axes)


@dataclass(frozen=True)
class Change:
    """One feature's value before and after (plain Python values)."""

    feature: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Perturbation:
    """A changed copy of a starting row: what changed, how far (normalised), and the scores."""

    changes: tuple[Change, ...]
    distance: float
    score_before: float
    score_after: float
    method: str
    class_after: int = -1  # k classes: the predicted class after the change (index into the classes)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(c.feature for c in self.changes)


@dataclass(frozen=True)
class RowOutcome:
    """What the search found for one starting row.

    ``flip``: the smallest change found that flips the decision. ``swing_up``/``swing_down``: the
    largest score increase/decrease within ``small_distance``. ``reach_max``/``reach_min``: the
    extremes reached by coordinate ascent within bounds (only for rows in the extremes subset).
    """

    position: int  # row position in the frame the rows were taken from
    label: str
    kind: str  # "high" | "low" | "near" | "random"
    score: float
    flip: Perturbation | None = None
    swing_up: Perturbation | None = None
    swing_down: Perturbation | None = None
    reach_max: Perturbation | None = None
    reach_min: Perturbation | None = None
    start_class: int = -1  # k classes: the predicted class of the row (index into the classes)
    margin: float = float("nan")  # k classes: P(predicted class) - P(runner-up) of the row


@dataclass(frozen=True)
class KnifeEdge:
    """A score step of one feature for one row: a change of ``width_share`` of the observed span
    moves the score by ``jump`` (on the judging scale); the step lies in
    ``[value_low, value_high]``, where the score goes from ``score_low`` to ``score_high``."""

    feature: str
    label: str
    value_low: float
    value_high: float
    score_low: float
    score_high: float
    jump: float  # |change| on the judging scale (ScoreScale)
    width_share: float


@dataclass(frozen=True)
class HopSkipJumpRow:
    """HopSkipJump on one row: the verified result after clipping to bounds and rounding."""

    label: str
    flipped: bool
    distance: float  # normalised distance of the clipped adversarial example (nan if none)
    own_distance: float  # the smallest flip the domain-aware search had found before (inf if none)
    score_after: float


@dataclass(frozen=True)
class HopSkipJumpResult:
    ran: bool
    features: tuple[str, ...] = ()
    rows: tuple[HopSkipJumpRow, ...] = ()
    queries: int = 0
    calls: int = 0
    note: str = ""


@dataclass(frozen=True)
class FailureExample:
    """One candidate the model could not score: it raised (``kind="exception"``) or returned a
    non-finite or out-of-range score without an error (``kind="non-finite"``). ``in_domain``: every
    changed value lies within the observed range (numeric) or is a seen level."""

    label: str
    kind: str
    changes: tuple[Change, ...]
    in_domain: bool
    detail: str


@dataclass(frozen=True)
class ScoringFailures:
    """Candidates the model failed on while being searched, counted as evidence (never a crash).

    ``raised``: candidates isolated (by splitting the failing batch) as raising; ``unresolved``:
    rows of failing batches left unsplit when the split budget ran out; ``skipped``: candidates not
    sent because they hold a (feature, value) already seen to make the model raise (listed in
    ``failing_values``); ``non_finite``: candidates scored, without an error, to NaN, infinity or a
    probability outside [0, 1]; ``start_rows``: real test rows among them (nothing changed)."""

    raised: int = 0
    unresolved: int = 0
    skipped: int = 0
    non_finite: int = 0
    in_domain_raised: int = 0
    in_domain_non_finite: int = 0
    start_rows: int = 0
    split_calls: int = 0
    messages: tuple[str, ...] = ()
    failing_values: tuple[tuple[str, Any], ...] = ()
    examples: tuple[FailureExample, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.raised or self.unresolved or self.non_finite or self.start_rows)

    def merged(self, other: ScoringFailures, max_examples: int = 10) -> ScoringFailures:
        msgs = tuple(dict.fromkeys(self.messages + other.messages))[:5]
        vals = tuple(dict.fromkeys(self.failing_values + other.failing_values))
        return ScoringFailures(
            self.raised + other.raised, self.unresolved + other.unresolved, self.skipped + other.skipped,
            self.non_finite + other.non_finite, self.in_domain_raised + other.in_domain_raised,
            self.in_domain_non_finite + other.in_domain_non_finite, self.start_rows + other.start_rows,
            self.split_calls + other.split_calls, msgs, vals, (self.examples + other.examples)[:max_examples])


@dataclass(frozen=True)
class SearchOptions:
    """Budgets and tolerances of the search (see the module docstring)."""

    margin: float = 0.10
    grid: int = 25
    max_features: int = 8
    pair_features: int = 4
    small_distance: float = 0.25
    knife_width: float = 0.02
    knife_jump: float = 0.3
    population: int = 32
    generations: int = 5
    extremes_rows: int = 20
    max_queries: int = 200_000
    max_levels: int = 30
    hsj_rows: int = 5
    hsj_max_iter: int = 5
    hsj_max_eval: int = 50
    hsj_init_eval: int = 10


@dataclass(frozen=True)
class AdversarialResult:
    """Everything the search found. ``importance`` covers every movable feature, most
    important first; ``searched`` are the ones searched."""

    rule: FlipRule
    scale: ScoreScale
    axes: tuple[Axis, ...]
    importance: tuple[tuple[str, float], ...]
    searched: tuple[str, ...]
    fixed: tuple[str, ...]
    rows: tuple[RowOutcome, ...]
    knife_edges: tuple[KnifeEdge, ...]
    hop_skip_jump: HopSkipJumpResult
    queries: int
    calls: int
    max_queries: int
    small_distance: float
    notes: tuple[str, ...] = ()
    failures: ScoringFailures = ScoringFailures()


@dataclass(frozen=True)
class ScoreSurface:
    """Scores over a grid of one or two features, the others held at a base row.

    ``z[i][j]`` is the score at ``y_values[i]``, ``x_values[j]`` (a single row when ``y`` is None).
    ``*_observed`` is the observed range of a numeric axis (the rest of the grid is the margin).
    """

    x: str
    y: str | None
    x_values: tuple
    y_values: tuple
    x_categorical: bool
    y_categorical: bool
    z: tuple[tuple[float, ...], ...]
    x_observed: tuple[float, float] | None
    y_observed: tuple[float, float] | None
    base_label: str
    base_x: Any
    base_y: Any
    base_score: float
    failed: int = 0  # grid points the model could not score (drawn as gaps)
    queries: int = 0  # rows scored, including re-scored parts of failing batches
    calls: int = 0


# ---- starting rows -------------------------------------------------------------------------
def select_start_rows(scores: np.ndarray, *, n: int, prototype_share: float, center: float,
                      rng: np.random.Generator, prototypes: Sequence[str] = ("high", "low", "near")
                      ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Positions and kinds of the starting rows: the highest-score, lowest-score and
    nearest-to-``center`` rows (``prototype_share`` of ``n``, split evenly among ``prototypes``),
    then a seeded random sample of the rest. With ``n`` rows or fewer, every row is used as the
    sample."""
    s = np.asarray(scores, dtype=float)
    if len(s) <= n:
        return np.arange(len(s)), ("random",) * len(s)
    k = int(round(n * prototype_share / max(len(prototypes), 1)))
    taken: list[int] = []
    kinds: list[str] = []
    used = np.zeros(len(s), dtype=bool)
    for kind, order in (("high", np.argsort(-s, kind="stable")), ("low", np.argsort(s, kind="stable")),
                        ("near", np.argsort(np.abs(s - center), kind="stable"))):
        if kind not in prototypes:
            continue
        picked = [int(i) for i in order if not used[i]][:k]
        used[picked] = True
        taken += picked
        kinds += [kind] * len(picked)
    rest = np.flatnonzero(~used)
    sample = np.sort(rng.choice(rest, size=min(n - len(taken), len(rest)), replace=False))
    return np.array(taken + sample.tolist(), dtype=int), tuple(kinds + ["random"] * len(sample))


def typical_row(frame: pd.DataFrame, axes: Sequence[Axis]) -> int:
    """Position of the real row closest to the medians (numeric) and modes (categorical)."""
    cost = np.zeros(len(frame))
    for ax in axes:
        col = frame[ax.name]
        if ax.categorical:
            cost += (col.astype(object).to_numpy() != ax.levels[0]).astype(float)
        else:
            v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
            dev = np.abs(v - np.nanmedian(v)) / ax.std if np.isfinite(v).any() else np.ones(len(v))
            cost += np.where(np.isnan(dev), 1.0, dev)
    return int(np.argmin(cost))


# ---- internals -----------------------------------------------------------------------------
class _Budget(Exception):
    pass


class _Scores(NamedTuple):
    """Scores of a batch of candidates: ``s`` the judged score (P(positive), the prediction, or
    for k classes P(start row's class)); ``f`` the value the flip rule reads (the score itself,
    or the k-class margin); ``c`` the predicted class for k classes (-1 otherwise or on failure)."""

    s: np.ndarray
    f: np.ndarray
    c: np.ndarray

    def take(self, k: np.ndarray) -> _Scores:
        return _Scores(self.s[k], self.f[k], self.c[k])


class _Scorer:
    """Scores candidates (start row + encoded axis values) in batches; counts model calls and rows
    scored; refuses to go past the query budget.

    A batch that raises is split in halves (then quarters ...) so the rows that score are kept and
    the failing ones isolated; a single failing candidate with one changed value teaches a
    (feature, value) pair, and later candidates holding it are not sent again. Non-finite or
    out-of-range results are recorded too. Failures come back as NaN scores and never count as
    flips; see :class:`ScoringFailures`."""

    def __init__(self, fn: ScoreFn, max_queries: int, space: _Space, *, k_class: bool = False,
                 probability: bool = False, labels: Sequence[str] | None = None,
                 max_split_calls: int = 400, max_examples: int = 10) -> None:
        self.fn, self.max_queries, self.space = fn, int(max_queries), space
        self.k_class, self.probability = k_class, probability
        self.labels = list(labels) if labels is not None else [str(i) for i in range(space.V0.shape[0])]
        self.max_split_calls, self.max_examples = int(max_split_calls), int(max_examples)
        self.calls = 0
        self.rows = 0
        self.c0: np.ndarray | None = None
        self.bad: dict[tuple[int, float], None] = {}
        self.raised = self.unresolved = self.skipped = self.non_finite = 0
        self.in_domain_raised = self.in_domain_non_finite = self.start_rows = self.split_calls = 0
        self.messages: dict[str, None] = {}
        self.examples: list[tuple[str, bool, int, np.ndarray, str]] = []

    @property
    def remaining(self) -> int:
        return max(self.max_queries - self.rows, 0)

    def start(self) -> _Scores:
        """The start rows themselves (always scored); fixes each row's class for k classes."""
        n = self.space.V0.shape[0]
        raw = self._raw(np.arange(n), self.space.V0, decode=False, force=True)
        if self.k_class:
            filled = np.where(np.isfinite(raw), raw, -np.inf)
            self.c0 = np.argmax(filled, axis=1) if raw.size else np.zeros(0, dtype=int)
        return self._convert(np.arange(n), raw)

    def __call__(self, rows: np.ndarray, V: np.ndarray, *, decode: bool = False, force: bool = False) -> _Scores:
        rows = np.asarray(rows, dtype=int)
        return self._convert(rows, self._raw(rows, V, decode=decode, force=force))

    # ---- internals ----
    def _convert(self, rows: np.ndarray, raw: np.ndarray) -> _Scores:
        if not self.k_class:
            return _Scores(raw, raw, np.full(len(raw), -1))
        n = len(rows)
        if n == 0:
            return _Scores(np.empty(0), np.empty(0), np.empty(0, dtype=int))
        ok = np.isfinite(raw).all(axis=1)
        c0 = self.c0[rows] if self.c0 is not None else np.zeros(n, dtype=int)
        own = raw[np.arange(n), c0]
        other = raw.copy()
        other[np.arange(n), c0] = -np.inf
        runner = np.max(np.where(np.isfinite(other), other, -np.inf), axis=1) if raw.shape[1] > 1 else \
            np.zeros(n)
        pred = np.argmax(np.where(np.isfinite(raw), raw, -np.inf), axis=1)
        m = np.abs(own - runner)
        # a tie the arg max breaks against the row's class is a flip (a margin just below 0)
        margin = np.where(pred == c0, m, -np.maximum(m, np.nextafter(0.0, 1.0)))
        nan = np.full(n, np.nan)
        return _Scores(np.where(ok, own, nan), np.where(ok, margin, nan), np.where(ok, pred, -1))

    def _raw(self, rows: np.ndarray, V: np.ndarray, *, decode: bool, force: bool) -> np.ndarray:
        n = len(rows)
        if n == 0:
            return np.empty((0, 0)) if self.k_class else np.empty(0)
        if n > self.remaining and not force:
            raise _Budget()
        known = self._known(rows, V)
        self.skipped += int(known.sum())
        stack = [np.flatnonzero(~known)]
        results: list[tuple[np.ndarray, np.ndarray]] = []
        while stack:
            idx = stack.pop()
            if len(idx) and self.bad:
                k = self._known(rows[idx], V[idx])
                self.skipped += int(k.sum())
                idx = idx[~k]
            if not len(idx):
                continue
            frame = (self.space.decode if decode else self.space.frame)(rows[idx], V[idx])
            self.calls += 1
            self.rows += len(idx)
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # log(0) and the like: counted below
                    raw = np.asarray(self.fn(frame), dtype=float)
            except _Budget:
                raise
            except Exception as exc:  # noqa: BLE001 - a failing model is evidence, not an error
                msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
                self.messages.setdefault(msg[:200], None)
                if len(idx) == 1:
                    self._failed(int(rows[idx[0]]), V[idx[0]], "exception", msg)
                elif self.split_calls >= self.max_split_calls:
                    self.unresolved += len(idx)
                else:
                    self.split_calls += 2
                    h = len(idx) // 2
                    stack.append(idx[h:])
                    stack.append(idx[:h])
                continue
            raw = raw.reshape(len(idx), -1) if self.k_class else raw.reshape(-1)
            if raw.shape[0] != len(idx):
                raise ValueError(f"the model returned {raw.shape[0]} scores for {len(idx)} rows")
            bad = ~np.isfinite(raw) if raw.ndim == 1 else ~np.isfinite(raw).all(axis=1)
            if self.probability:
                with np.errstate(invalid="ignore"):
                    outside = (raw < -1e-9) | (raw > 1 + 1e-9)
                bad |= outside if outside.ndim == 1 else outside.any(axis=1)
            for i in np.flatnonzero(bad):
                v = raw[i] if raw.ndim == 1 else ", ".join(f"{x:.4g}" for x in raw[i])
                self._failed(int(rows[idx[i]]), V[idx[i]], "non-finite",
                             f"returned {v if isinstance(v, str) else f'{v:.4g}'}")
            raw = raw.copy()
            raw[bad] = np.nan
            results.append((idx, raw))
        tail = next((r.shape[1:] for _, r in results), None)
        if tail is None:
            tail = (max(int(self.c0.max()) + 1, 2),) if self.k_class and self.c0 is not None and len(self.c0) \
                else ((2,) if self.k_class else ())
        out = np.full((n,) + tuple(tail), np.nan)
        for idx, raw in results:
            out[idx] = raw
        return out

    def _known(self, rows: np.ndarray, V: np.ndarray) -> np.ndarray:
        hit = np.zeros(len(rows), dtype=bool)
        for (j, v) in self.bad:
            hit |= (V[:, j] == v) & (self.space.V0[rows, j] != v)
        return hit

    def _in_domain(self, r: int, v: np.ndarray) -> bool:
        v0 = self.space.V0[r]
        for j in np.flatnonzero(~_same(v, v0)):
            ax = self.space.axes[j]
            if not np.isfinite(v[j]):
                return False
            if ax.categorical:
                if v[j] < 0:
                    return False
            elif not ax.observed_low - 1e-9 <= v[j] <= ax.observed_high + 1e-9:
                return False
        return True

    def _failed(self, r: int, v: np.ndarray, kind: str, detail: str) -> None:
        changed = np.flatnonzero(~_same(v, self.space.V0[r]))
        inside = self._in_domain(r, v)
        if not len(changed):
            self.start_rows += 1
        if kind == "exception":
            self.raised += 1
            self.in_domain_raised += int(inside)
            if len(changed) == 1:
                self.bad.setdefault((int(changed[0]), float(v[changed[0]])), None)
        else:
            self.non_finite += 1
            self.in_domain_non_finite += int(inside)
        same = sum(1 for e in self.examples if e[0] == kind and e[1] == inside)
        if same < self.max_examples:
            self.examples.append((kind, inside, r, np.array(v, dtype=float), detail))

    def failures(self) -> ScoringFailures:
        names = [ax.name for ax in self.space.axes]
        ex = sorted(self.examples, key=lambda e: (e[0] != "non-finite", not e[1]))[:self.max_examples]
        examples = []
        if ex:
            rows = np.array([e[2] for e in ex])
            V = np.array([e[3] for e in ex])
            frame = self.space.frame(rows, V)
            for i, (kind, inside, r, v, detail) in enumerate(ex):
                changed = np.flatnonzero(~_same(v, self.space.V0[r]))
                changes = tuple(Change(names[j], _plain(self.space.base[names[j]].iloc[r]),
                                       _plain(frame[names[j]].iloc[i])) for j in changed)
                examples.append(FailureExample(str(self.labels[r]), kind, changes, inside, detail))
        values = []
        for (j, v) in self.bad:
            ax = self.space.axes[j]
            values.append((ax.name, str(ax.levels[int(v)]) if ax.categorical else float(v)))
        return ScoringFailures(
            raised=self.raised, unresolved=self.unresolved, skipped=self.skipped, non_finite=self.non_finite,
            in_domain_raised=self.in_domain_raised, in_domain_non_finite=self.in_domain_non_finite,
            start_rows=self.start_rows, split_calls=self.split_calls, messages=tuple(self.messages)[:5],
            failing_values=tuple(sorted(values, key=lambda t: (t[0], str(t[1])))), examples=tuple(examples))


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b))


class _Space:
    """Encodes the starting rows over the axes (numeric values, level codes) and builds
    candidate frames with the original dtypes from encoded candidates."""

    def __init__(self, base: pd.DataFrame, axes: Sequence[Axis]) -> None:
        self.base = base.reset_index(drop=True)
        self.axes = tuple(axes)
        self.cat = np.array([a.categorical for a in axes], dtype=bool)
        self.std = np.array([1.0 if a.categorical else a.std for a in axes], dtype=float)
        self.V0 = np.column_stack([self._encode(self.base[a.name], a) for a in axes]) if axes else \
            np.empty((len(base), 0))
        self._dtypes = {c: self.base[c].dtype for c in self.base.columns}
        self._cols = {c: self.base[c].to_numpy() for c in self.base.columns}
        self._typed = {c: self.base[c].array for c in self.base.columns}
        self._numeric = {a.name: pd.to_numeric(self.base[a.name], errors="coerce").to_numpy(dtype=float)
                         for a in axes if not a.categorical}

    @staticmethod
    def _encode(col: pd.Series, ax: Axis) -> np.ndarray:
        if ax.categorical:
            lookup = {lv: i for i, lv in enumerate(ax.levels)}
            return np.array([lookup.get(v, -1) if not _isna(v) else -1 for v in col.astype(object)],
                            dtype=float)
        return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)

    def distance(self, rows: np.ndarray, V: np.ndarray) -> np.ndarray:
        V0 = self.V0[rows]
        changed = ~_same(V, V0)
        step = np.abs(V - V0) / self.std
        step = np.where(self.cat | np.isnan(step), 1.0, step)
        return np.where(changed, step, 0.0).sum(axis=1)

    def frame(self, rows: np.ndarray, V: np.ndarray) -> pd.DataFrame:
        """Candidate rows: row ``rows[i]`` with the axis values of ``V[i]`` where they differ
        from the row's own (so unchanged cells keep their exact original value)."""
        V0 = self.V0[rows]
        over: dict[str, np.ndarray] = {}
        for j, ax in enumerate(self.axes):
            col = V[:, j]
            changed = ~_same(col, V0[:, j])
            if not changed.any():
                continue
            vals = self._cols[ax.name][rows]
            if ax.categorical:
                vals = vals.astype(object)
                vals[changed] = np.asarray(ax.levels, dtype=object)[col[changed].astype(int)]
            else:
                vals = self._numeric[ax.name][rows]
                vals[changed] = col[changed]
            over[ax.name] = vals
        return self.assemble(rows, over)

    def decode(self, rows: np.ndarray, V: np.ndarray) -> pd.DataFrame:
        """Rows where every axis column comes from ``V`` (level code -1: missing)."""
        over: dict[str, np.ndarray] = {}
        for j, ax in enumerate(self.axes):
            col = V[:, j]
            if ax.categorical:
                codes = np.where((col < 0) | ~np.isfinite(col), len(ax.levels), col).astype(int)
                over[ax.name] = np.asarray(ax.levels + (None,), dtype=object)[codes]
            else:
                over[ax.name] = col.astype(float)
        return self.assemble(rows, over)

    def assemble(self, rows: np.ndarray, over: Mapping[str, np.ndarray]) -> pd.DataFrame:
        """One frame, column by column, in the original column order and dtypes."""
        data = {}
        for c in self.base.columns:
            data[c] = _as_dtype(over[c], self._dtypes[c]) if c in over else self._typed[c][rows]
        return pd.DataFrame(data, copy=False)


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _as_dtype(values: np.ndarray, dtype: Any) -> Any:
    """``values`` in the column's original dtype where it can hold them (a NaN cannot live in a
    NumPy integer column: float then)."""
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iu":
            f = values.astype(float)
            return f if np.isnan(f).any() else np.rint(f).astype(dtype)
        try:
            return values.astype(dtype)
        except (TypeError, ValueError):
            return values
    try:
        return pd.array(values, dtype=dtype)
    except (TypeError, ValueError):
        return values


def _first_per_row(rows: np.ndarray, *keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct row, the index of the candidate that sorts first by ``keys``."""
    order = np.lexsort(tuple(reversed(keys)) + (rows,)) if keys else np.argsort(rows, kind="stable")
    uniq, first = np.unique(rows[order], return_index=True)
    return uniq, order[first]


@dataclass
class _Best:
    V: np.ndarray
    score: np.ndarray
    dist: np.ndarray
    method: list[str]

    @classmethod
    def empty(cls, n: int, m: int, fill: float) -> _Best:
        return cls(np.full((n, m), np.nan), np.full(n, np.nan), np.full(n, fill), [""] * n)

    def put(self, rows: np.ndarray, idx: np.ndarray, V: np.ndarray, s: np.ndarray, d: np.ndarray,
            method: str) -> None:
        self.V[rows] = V[idx]
        self.score[rows] = s[idx]
        self.dist[rows] = d[idx]
        for r in rows:
            self.method[r] = method


class _Tracker:
    """Keeps, per starting row, the smallest flip seen and the largest swings within the small
    distance, over every batch scored by any phase."""

    def __init__(self, space: _Space, s0: _Scores, rule: FlipRule, scale: ScoreScale, small: float) -> None:
        n, m = space.V0.shape
        self.space, self.rule, self.scale, self.small = space, rule, scale, small
        self.s0, self.f0 = s0.s, s0.f
        self.flip = _Best.empty(n, m, np.inf)
        self.up = _Best.empty(n, m, np.inf)
        self.down = _Best.empty(n, m, np.inf)
        self.up.score[:] = s0.s
        self.down.score[:] = s0.s
        self.cls = np.full(n, -1)  # predicted class at the best flip (k classes)

    def update(self, rows: np.ndarray, V: np.ndarray, sc: _Scores, method: str,
               d: np.ndarray | None = None) -> np.ndarray:
        if len(rows) == 0:
            return np.empty(0)
        d = self.space.distance(rows, V) if d is None else d
        s, s0 = sc.s, self.s0[rows]
        flipped = self.rule.flipped(self.f0[rows], sc.f) & (d > 0)
        if flipped.any():
            k = np.flatnonzero(flipped)
            uniq, best = _first_per_row(rows[k], d[k], -np.abs(s[k] - s0[k]))
            better = d[k][best] < self.flip.dist[uniq] - 1e-12
            self.flip.put(uniq[better], k[best[better]], V, s, d, method)
            self.cls[uniq[better]] = sc.c[k[best[better]]]
        near = np.flatnonzero((d <= self.small + 1e-9) & (d > 0) & np.isfinite(s))
        if len(near):
            for best_of, sign in ((self.up, 1.0), (self.down, -1.0)):
                uniq, best = _first_per_row(rows[near], -sign * s[near], d[near])
                better = sign * (s[near][best] - best_of.score[uniq]) > 1e-12
                best_of.put(uniq[better], near[best[better]], V, s, d, method)
        return d


def _candidates(V0: np.ndarray, rows: Sequence[int], cols: Sequence[int], values: Sequence[float]
                ) -> tuple[np.ndarray, np.ndarray]:
    rows_a = np.asarray(rows, dtype=int)
    V = V0[rows_a].copy()
    if len(rows_a):
        V[np.arange(len(rows_a)), np.asarray(cols, dtype=int)] = np.asarray(values, dtype=float)
    return rows_a, V


# ---- the search ------------------------------------------------------------------------------
def adversarial_search(score_fn: ScoreFn, rows: pd.DataFrame, *, labels: Sequence[str],
                       kinds: Sequence[str], positions: Sequence[int] | None = None,
                       domains: Mapping[str, FeatureDomain], fixed: Sequence[str] = (),
                       rule: FlipRule, scale: ScoreScale = ScoreScale(),
                       options: SearchOptions = SearchOptions(), rng: np.random.Generator,
                       hop_skip_jump: bool = True, searched: Sequence[str] | None = None) -> AdversarialResult:
    """Search the neighbourhood of each starting row (see the module docstring).

    ``rows`` holds the model's feature columns, in the model's order; ``score_fn`` maps such a
    frame to scores (P(positive) or the regression prediction; for ``rule.kind == "class"`` the
    n x k class probabilities) in one batched call. ``searched`` fixes the searched features (no
    importance phase), e.g. to search more rows with the features an earlier search chose.
    Candidates the model raises on or scores to non-finite values are counted in ``failures``.
    """
    features = tuple(rows.columns)
    fixed_t = tuple(f for f in features if f in set(fixed))
    movable = [f for f in features if f not in set(fixed_t)]
    axes = plausible_axes(domains, movable, margin=options.margin, max_levels=options.max_levels)
    notes: list[str] = []
    space = _Space(rows, axes)
    scorer = _Scorer(score_fn, options.max_queries, space, k_class=rule.kind == "class",
                     probability=rule.kind in ("threshold", "class") and scale.kind == "identity", labels=labels)
    n, m = space.V0.shape
    positions_t = tuple(int(p) for p in positions) if positions is not None else tuple(range(n))
    s0 = scorer.start()  # the starting rows themselves are always scored
    tracker = _Tracker(space, s0, rule, scale, options.small_distance)
    knives: list[KnifeEdge] = []
    importance: list[tuple[str, float]] = []
    chosen: list[int] = []
    reach: dict[int, tuple[np.ndarray, float, np.ndarray, float]] = {}
    hsj = HopSkipJumpResult(False, note="nothing to search")
    phase_cap = max(options.max_queries // 8, 1)

    def run(phase: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except _Budget:
            note = f"{phase}: stopped at the query budget ({options.max_queries:,} rows)"
            if note not in notes:
                notes.append(note)
            return None

    if m and searched is not None:
        names = [ax.name for ax in axes]
        chosen = [names.index(f) for f in searched if f in names]
    elif m:
        imp = run("importance", lambda: _importance(scorer, space, tracker, phase_cap))
        if imp is not None:
            order = sorted(range(m), key=lambda j: (-imp[j], axes[j].name))
            importance = [(axes[j].name, float(imp[j])) for j in order]
            chosen = [j for j in order if imp[j] > 1e-12][:options.max_features]
    searched_j = chosen
    if not searched_j:
        notes.append("the score does not respond to any movable feature within its plausible range")
    else:
        run("single-feature search", lambda: _single(scorer, space, tracker, searched_j, options, knives))
        run("pair search", lambda: _pairs(scorer, space, tracker, searched_j[:options.pair_features],
                                          phase_cap * 2))
        run("shrinking", lambda: _shrink(scorer, space, tracker))
        run("genetic search", lambda: _genetic(scorer, space, tracker, searched_j, options, rng, phase_cap))
        run("shrinking", lambda: _shrink(scorer, space, tracker))
        sub = np.unique(np.round(np.linspace(0, n - 1, min(options.extremes_rows, n))).astype(int))
        out = run("extremes", lambda: _extremes(scorer, space, tracker, searched_j, sub, options.grid)) \
            if len(sub) else None
        if out is not None:
            reach = out
        if not hop_skip_jump or options.hsj_rows <= 0:
            hsj = HopSkipJumpResult(False, note="disabled")
        elif rule.kind == "amount":
            hsj = HopSkipJumpResult(False, note="classification only")
        else:
            hsj = _hop_skip_jump(scorer, space, tracker, kinds, labels, options, rng)
            if hsj.note:
                notes.append(f"HopSkipJump: {hsj.note}")

    outcomes = _outcomes(space, tracker, s0, labels, kinds, positions_t, reach, scorer)
    failures = scorer.failures()
    if failures.any or failures.skipped:
        notes.append(f"the model failed on {failures.raised + failures.unresolved + failures.non_finite:,} candidates "
                     f"(raised: {failures.raised + failures.unresolved:,}, non-finite: {failures.non_finite:,}); "
                     f"{failures.skipped:,} more held a value already seen to fail and were not sent; "
                     f"{failures.split_calls:,} extra calls split failing batches")
    return AdversarialResult(
        rule=rule, scale=scale, axes=axes, importance=tuple(importance),
        searched=tuple(axes[j].name for j in searched_j), fixed=fixed_t, rows=outcomes,
        knife_edges=tuple(sorted(_relabel(knives, labels), key=lambda k: (k.feature, -k.jump, k.label))),
        hop_skip_jump=hsj, queries=scorer.rows, calls=scorer.calls, max_queries=options.max_queries,
        small_distance=options.small_distance, notes=tuple(notes), failures=failures)


def merge_results(first: AdversarialResult, more: AdversarialResult) -> AdversarialResult:
    """One result from a search and a later search of more rows (same rule, axes and searched
    features): rows, knife edges, queries and failures add up; importance and HopSkipJump come
    from the first."""
    notes = tuple(dict.fromkeys(n for n in first.notes + more.notes if not n.startswith("the model failed")))
    return replace(first, rows=first.rows + more.rows,
                   knife_edges=tuple(sorted(first.knife_edges + more.knife_edges,
                                            key=lambda k: (k.feature, -k.jump, k.label))),
                   queries=first.queries + more.queries, calls=first.calls + more.calls,
                   max_queries=first.max_queries + more.max_queries, notes=notes,
                   failures=first.failures.merged(more.failures))


def _relabel(knives: list[KnifeEdge], labels: Sequence[str]) -> list[KnifeEdge]:
    """Row numbers (used while searching) to row labels."""
    return [replace(k, label=str(labels[int(k.label)])) for k in knives]


def _importance(scorer: _Scorer, space: _Space, tracker: _Tracker, cap: int) -> np.ndarray:
    n, m = space.V0.shape
    grids = [ax.grid(_IMPORTANCE_GRID) if not ax.categorical else
             np.arange(min(len(ax.levels), _IMPORTANCE_GRID), dtype=float) for ax in space.axes]
    per_row = sum(len(g) for g in grids)
    use = np.arange(min(n, max(cap // max(per_row, 1), 2)))
    rows, cols, vals = [], [], []
    for j, g in enumerate(grids):
        rows.append(np.repeat(use, len(g)))
        cols.append(np.full(len(use) * len(g), j))
        vals.append(np.tile(g, len(use)))
    r, V = _candidates(space.V0, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals))
    sc = scorer(r, V)
    tracker.update(r, V, sc, "single feature")
    s = sc.s
    out = np.zeros(m)
    start = 0
    for j, g in enumerate(grids):
        block = s[start:start + len(use) * len(g)].reshape(len(use), len(g))
        block = np.column_stack([block, tracker.s0[use]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rows the model failed on everywhere
            spread = np.nanmax(block, axis=1) - np.nanmin(block, axis=1)
        spread = spread[np.isfinite(spread)]
        out[j] = float(np.mean(spread)) if len(spread) else 0.0
        start += len(use) * len(g)
    return out


def _local_values(ax: Axis, v0: float, grid: np.ndarray, steps: Sequence[float]) -> np.ndarray:
    if ax.categorical:
        return np.array([c for c in grid if c != v0], dtype=float)
    vals = grid
    if np.isfinite(v0):
        local = v0 + ax.std * np.array([s * k for s in steps for k in (-1, 1)])
        if ax.integer:
            local = np.concatenate([local, [v0 - 1, v0 + 1]])
        vals = np.concatenate([grid, ax.clip(local)])
    vals = np.unique(vals)
    return vals[vals != v0] if np.isfinite(v0) else vals


def _single(scorer: _Scorer, space: _Space, tracker: _Tracker, searched: Sequence[int],
            options: SearchOptions, knives: list[KnifeEdge]) -> None:
    n = space.V0.shape[0]
    rows, cols, vals, pair = [], [], [], []
    small = options.small_distance
    steps = sorted({small / 4, small / 2, small, *_LOCAL_STEPS})
    grids = {j: space.axes[j].grid(options.grid) for j in searched}
    for j in searched:
        ax = space.axes[j]
        for r in range(n):
            v = _local_values(ax, space.V0[r, j], grids[j], steps)
            rows.append(np.full(len(v), r))
            cols.append(np.full(len(v), j))
            vals.append(v)
            pair.append((r, j, len(v)))
    r_all, V = _candidates(space.V0, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals))
    sc = scorer(r_all, V)
    tracker.update(r_all, V, sc, "single feature")
    s, f = sc.s, sc.f

    # per (row, feature): sort the sweep (with the row's own value) for bisection
    flip_iv: list[tuple[int, int, float, float]] = []  # row, col, a (no flip), b (flip)
    knife_iv: list[tuple[int, int, float, float, float, float]] = []
    start = 0
    for (r, j, k) in pair:
        ax = space.axes[j]
        xs, ss, fs = V[start:start + k, j], s[start:start + k], f[start:start + k]
        start += k
        if ax.categorical:
            continue
        v0 = space.V0[r, j]
        if not (np.isfinite(v0) and np.isfinite(tracker.f0[r])):
            continue
        ok = np.isfinite(ss) & np.isfinite(fs)  # points the model failed on are left out of the sweep
        xs = np.append(xs[ok], v0)
        ss = np.append(ss[ok], tracker.s0[r])
        fs = np.append(fs[ok], tracker.f0[r])
        o = np.argsort(xs, kind="stable")
        xs, ss, fs = xs[o], ss[o], fs[o]
        i0 = int(np.flatnonzero(xs == v0)[0])
        fl = tracker.rule.flipped(np.full(len(fs), tracker.f0[r]), fs)
        right = np.flatnonzero(fl[i0 + 1:])
        if len(right):
            b = i0 + 1 + int(right[0])
            flip_iv.append((r, j, xs[b - 1], xs[b]))
        left = np.flatnonzero(fl[:i0])
        if len(left):
            b = int(left[-1])
            flip_iv.append((r, j, xs[b + 1], xs[b]))
        width = options.knife_width * ax.span
        if ax.integer and width < 1:
            continue
        u = tracker.scale(ss)
        jumps = np.abs(np.diff(u))
        if len(jumps) and jumps.max() >= options.knife_jump:
            i = int(np.argmax(jumps))
            knife_iv.append((r, j, xs[i], xs[i + 1], ss[i], ss[i + 1]))
    _bisect_flips(scorer, space, tracker, flip_iv)
    _bisect_knives(scorer, space, tracker, knife_iv, options, knives)


def _mid(a: np.ndarray, b: np.ndarray, integer: np.ndarray) -> np.ndarray:
    mid = (a + b) / 2.0
    return np.where(integer, a + np.trunc((b - a) / 2.0), mid)


def _bisect_flips(scorer: _Scorer, space: _Space, tracker: _Tracker,
                  intervals: list[tuple[int, int, float, float]]) -> None:
    if not intervals:
        return
    r = np.array([iv[0] for iv in intervals])
    c = np.array([iv[1] for iv in intervals])
    a = np.array([iv[2] for iv in intervals], dtype=float)
    b = np.array([iv[3] for iv in intervals], dtype=float)
    integer = np.array([space.axes[j].integer for j in c])
    tol = np.where(integer, 1.0, 1e-4 * space.std[c])
    for _ in range(_BISECT_STEPS):
        active = np.flatnonzero(np.abs(b - a) > tol + 1e-12)
        if not len(active):
            break
        mid = _mid(a[active], b[active], integer[active])
        rows, V = _candidates(space.V0, r[active], c[active], mid)
        sc = scorer(rows, V)
        tracker.update(rows, V, sc, "single feature")
        fl = tracker.rule.flipped(tracker.f0[rows], sc.f)  # a failed point counts as no flip
        b[active] = np.where(fl, mid, b[active])
        a[active] = np.where(fl, a[active], mid)


def _bisect_knives(scorer: _Scorer, space: _Space, tracker: _Tracker, intervals: list, options: SearchOptions,
                   knives: list[KnifeEdge]) -> None:
    """Narrow each steepest sweep interval to the half with the larger score change. The jump is
    read when the interval first fits in ``knife_width`` of the span; narrowing then goes on
    (to 1/16 of that) only to locate the step."""
    if not intervals:
        return
    r = np.array([iv[0] for iv in intervals])
    c = np.array([iv[1] for iv in intervals])
    a, b, sa, sb = (np.array([iv[k] for iv in intervals], dtype=float) for k in (2, 3, 4, 5))
    integer = np.array([space.axes[j].integer for j in c])
    span = np.array([space.axes[j].span for j in c])
    width = options.knife_width * span
    jump = np.full(len(r), np.nan)
    at = np.full(len(r), np.nan)
    dead = np.zeros(len(r), dtype=bool)  # the model failed inside the interval: stop narrowing it

    def record() -> None:
        fits = np.isnan(jump) & (np.abs(b - a) <= width + 1e-12)
        jump[fits] = np.abs(tracker.scale(sb[fits]) - tracker.scale(sa[fits]))
        at[fits] = np.abs(b[fits] - a[fits]) / span[fits]

    record()
    for _ in range(_KNIFE_STEPS):
        active = np.flatnonzero((np.abs(b - a) > width / 16) & (~integer | (np.abs(b - a) > 1))
                                & (np.isnan(jump) | (jump >= options.knife_jump)) & ~dead)
        if not len(active):
            break
        mid = _mid(a[active], b[active], integer[active])
        rows, V = _candidates(space.V0, r[active], c[active], mid)
        sc = scorer(rows, V)
        tracker.update(rows, V, sc, "single feature")
        s = sc.s
        failed = ~np.isfinite(s)
        dead[active[failed]] = True
        active, mid, s = active[~failed], mid[~failed], s[~failed]
        u, ua, ub = tracker.scale(s), tracker.scale(sa[active]), tracker.scale(sb[active])
        left = np.abs(u - ua) >= np.abs(ub - u)
        b[active] = np.where(left, mid, b[active])
        sb[active] = np.where(left, s, sb[active])
        a[active] = np.where(left, a[active], mid)
        sa[active] = np.where(left, sa[active], s)
        record()
    for i in np.flatnonzero(jump >= options.knife_jump):
        lo, hi = sorted((a[i], b[i]))
        s_lo, s_hi = (sa[i], sb[i]) if a[i] <= b[i] else (sb[i], sa[i])
        knives.append(KnifeEdge(space.axes[c[i]].name, str(int(r[i])), float(lo), float(hi), float(s_lo),
                                float(s_hi), float(jump[i]), float(at[i])))


def _pair_values(ax: Axis, v0: float) -> np.ndarray:
    if ax.categorical:
        return np.array([c for c in range(min(len(ax.levels), _PAIR_LEVELS)) if c != v0], dtype=float)
    if not np.isfinite(v0):
        return ax.grid(5)
    v = np.unique(ax.clip(v0 + ax.std * np.array([s * k for s in _PAIR_STEPS for k in (-1, 1)])))
    return v[v != v0]


def _pairs(scorer: _Scorer, space: _Space, tracker: _Tracker, cols: Sequence[int], cap: int) -> None:
    n = space.V0.shape[0]
    if len(cols) < 2:
        return
    blocks_r, blocks_V = [], []
    for x in range(len(cols)):
        for y in range(x + 1, len(cols)):
            j1, j2 = cols[x], cols[y]
            for r in range(n):
                v1 = _pair_values(space.axes[j1], space.V0[r, j1])
                v2 = _pair_values(space.axes[j2], space.V0[r, j2])
                if not len(v1) or not len(v2):
                    continue
                g1, g2 = np.meshgrid(v1, v2, indexing="ij")
                V = np.repeat(space.V0[r:r + 1], g1.size, axis=0)
                V[:, j1], V[:, j2] = g1.ravel(), g2.ravel()
                blocks_r.append(np.full(g1.size, r))
                blocks_V.append(V)
    if not blocks_r:
        return
    rows, V = np.concatenate(blocks_r), np.concatenate(blocks_V)
    if len(rows) > cap:  # keep whole rows, in order, up to the cap
        keep_rows = np.unique(rows)[: max(int(cap * n / len(rows)), 1)]
        keep = np.isin(rows, keep_rows)
        rows, V = rows[keep], V[keep]
    tracker.update(rows, V, scorer(rows, V), "pair")


def _shrink(scorer: _Scorer, space: _Space, tracker: _Tracker) -> None:
    """Line search towards the row on each best flip, and the flip with one change undone."""
    best = tracker.flip
    rows_l, V_l, meth = [], [], []
    for r in np.flatnonzero(np.isfinite(best.dist)):
        v0, v1 = space.V0[r], best.V[r]
        changed = np.flatnonzero(~_same(v1, v0))
        num = [j for j in changed if not space.cat[j] and np.isfinite(v0[j])]
        cands = []
        if num:
            for t in _SHRINK:
                v = v1.copy()
                for j in num:
                    v[j] = space.axes[j].clip(np.array([v0[j] + t * (v1[j] - v0[j])]))[0]
                cands.append(v)
        if len(changed) > 1:
            for j in changed:
                v = v1.copy()
                v[j] = v0[j]
                cands.append(v)
        for v in cands:
            rows_l.append(r)
            V_l.append(v)
            meth.append(best.method[r])
    if not rows_l:
        return
    rows, V = np.array(rows_l), np.array(V_l)
    sc = scorer(rows, V)
    # keep each candidate's own method label
    for method in sorted(set(meth)):
        k = np.array([mm == method for mm in meth])
        tracker.update(rows[k], V[k], sc.take(k), method)


def _genetic(scorer: _Scorer, space: _Space, tracker: _Tracker, searched: Sequence[int],
             options: SearchOptions, rng: np.random.Generator, cap: int) -> None:
    n, m = space.V0.shape
    P = int(options.population)
    if P <= 0 or options.generations < 0:
        return
    per_row = P * (options.generations + 1)
    use = np.arange(min(n, max(cap // max(per_row, 1), 1)))
    cols = np.asarray(searched, dtype=int)
    scales = np.array([0.1, 0.25, 0.5, 1.0])
    E = min(6, P)

    def random_children(rows: np.ndarray) -> np.ndarray:
        """Random changes of 2-4 searched features per child, of random size."""
        k = len(rows)
        V = space.V0[rows].copy()
        hi = min(4, len(cols))
        n_change = rng.integers(min(2, hi), hi + 1, size=k)
        rank = np.argsort(rng.random((k, len(cols))), axis=1).argsort(axis=1)
        chosen = rank < n_change[:, None]
        values = _random_values(space, cols, V[:, cols], rng.choice(scales, size=(k, 1)), rng)
        V[:, cols] = np.where(chosen, values, V[:, cols])
        return V

    rows = np.repeat(use, P)
    V = random_children(rows)
    elite_V = np.repeat(space.V0[use][:, None, :], E, axis=1)
    elite_pen = np.full((len(use), E), np.inf)
    pos = {int(r): i for i, r in enumerate(use)}
    for gen in range(options.generations + 1):
        sc = scorer(rows, V)
        d = tracker.update(rows, V, sc, "random search")
        gap = tracker.rule.gap(tracker.f0[rows], sc.f)
        pen = np.where(gap == 0.0, d, _BIG + gap * 1e3 + d * 1e-3)
        # merge into the elites
        ri = np.array([pos[int(r)] for r in rows])
        allV = np.concatenate([elite_V.reshape(-1, m), V])
        allP = np.concatenate([elite_pen.ravel(), pen])
        allR = np.concatenate([np.repeat(np.arange(len(use)), E), ri])
        order = np.lexsort((allP, allR))
        counts = np.zeros(len(use), int)
        new_V = elite_V.copy()
        new_P = elite_pen.copy()
        for k in order:
            i = allR[k]
            if counts[i] < E:
                new_V[i, counts[i]], new_P[i, counts[i]] = allV[k], allP[k]
                counts[i] += 1
        elite_V, elite_pen = new_V, new_P
        if gen == options.generations:
            break
        # children: crossover of two elites, shrink/jitter, revert, add
        ia, ib = rng.integers(0, E, size=len(rows)), rng.integers(0, E, size=len(rows))
        pa, pb = elite_V[ri, ia], elite_V[ri, ib]
        cross = (rng.random((len(rows), m)) < 0.5) & (rng.random(len(rows)) < 0.3)[:, None]
        child = np.where(cross, pb, pa)
        V0r = space.V0[rows]
        numeric = ~space.cat
        factor = rng.uniform(0.6, 1.05, size=child.shape)
        jitter = rng.normal(0.0, 0.05, size=child.shape) * space.std
        moved = ~_same(child, V0r) & numeric
        shrunk = np.where(np.isnan(V0r), child, V0r + factor * (child - V0r) + jitter)
        child = np.where(moved, shrunk, child)
        revert = (rng.random(child.shape) < 0.15) & ~_same(child, V0r)
        child = np.where(revert, V0r, child)
        add = (rng.random(len(rows)) < 0.3)[:, None] & (rng.integers(0, len(cols), size=len(rows))[:, None]
                                                         == np.arange(len(cols))[None, :])
        fresh = _random_values(space, cols, V0r[:, cols], np.full((len(rows), 1), 0.25), rng)
        child[:, cols] = np.where(add, fresh, child[:, cols])
        for j in range(m):
            if not space.cat[j]:
                child[:, j] = np.where(np.isnan(child[:, j]), child[:, j], space.axes[j].clip(child[:, j]))
        mask = np.zeros(m, dtype=bool)
        mask[cols] = True
        V = np.where(mask, child, V0r)


def _random_values(space: _Space, cols: np.ndarray, V0: np.ndarray, scale: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Random values for ``cols`` near ``V0`` (normal steps of ``scale`` std, at least one unit
    for integers) or random levels; clipped to the plausible bounds."""
    out = np.empty_like(V0)
    noise = rng.normal(0.0, 1.0, size=V0.shape) * scale
    for i, j in enumerate(cols):
        ax = space.axes[j]
        if ax.categorical:
            out[:, i] = rng.integers(0, len(ax.levels), size=len(V0))
            continue
        base = np.where(np.isfinite(V0[:, i]), V0[:, i], (ax.low + ax.high) / 2.0)
        step = noise[:, i] * ax.std
        if ax.integer:
            step = np.where(np.abs(step) < 1, np.sign(step + 1e-12), step)
        out[:, i] = ax.clip(base + step)
    return out


def _extremes(scorer: _Scorer, space: _Space, tracker: _Tracker, searched: Sequence[int], sub: np.ndarray,
              grid: int) -> dict[int, tuple[np.ndarray, float, np.ndarray, float]]:
    """Coordinate ascent (and descent) from each row of ``sub``; two sweeps, batched per feature."""
    k = len(sub)
    rows = np.concatenate([sub, sub])
    V = space.V0[rows].copy()
    s = tracker.s0[rows].copy()
    sign = np.concatenate([np.ones(k), -np.ones(k)])
    for _sweep in range(2):
        changed = False
        for j in searched:
            g = space.axes[j].grid(grid)
            cand_r = np.repeat(np.arange(len(rows)), len(g))
            C = np.repeat(V, len(g), axis=0)
            C[:, j] = np.tile(g, len(rows))
            scs = scorer(rows[cand_r], C)
            tracker.update(rows[cand_r], C, scs, "ascent")
            sc = scs.s
            block = np.where(np.isfinite(sc), sc * sign[cand_r], -np.inf).reshape(len(rows), len(g))
            best = np.argmax(block, axis=1)
            with np.errstate(invalid="ignore"):
                gain = block[np.arange(len(rows)), best] - s * sign
            upd = np.isfinite(gain) & (gain > 1e-12)
            if upd.any():
                changed = True
                V[upd, j] = g[best[upd]]
                s[upd] = sc.reshape(len(rows), len(g))[np.arange(len(rows)), best][upd]
        if not changed:
            break
    return {int(r): (V[i], float(s[i]), V[k + i], float(s[k + i])) for i, r in enumerate(sub)}


# ---- HopSkipJump -----------------------------------------------------------------------------
def _hop_skip_jump(scorer: _Scorer, space: _Space, tracker: _Tracker, kinds: Sequence[str],
                   labels: Sequence[str], options: SearchOptions, rng: np.random.Generator
                   ) -> HopSkipJumpResult:
    """ART's HopSkipJump on the continuous numeric features (the rest held by ``mask=``)."""
    attack_cols = [j for j, ax in enumerate(space.axes)
                   if not ax.categorical and (not ax.integer or ax.span >= 20)]
    if not attack_cols:
        return HopSkipJumpResult(False, note="no continuous numeric feature to attack")
    n = space.V0.shape[0]
    # confident random rows first, then the other random rows, then prototypes
    margin = np.abs(tracker.f0 - tracker.rule.value)
    order = sorted(range(n), key=lambda r: (kinds[r] != "random", -np.nan_to_num(margin[r], nan=-1.0), r))
    cand = [r for r in order if np.isfinite(space.V0[r, attack_cols]).all() and np.isfinite(tracker.f0[r])]
    if not cand:
        return HopSkipJumpResult(False, note="no complete rows to attack")
    rows0, calls0 = scorer.rows, scorer.calls
    try:
        starts = _hsj_starts(scorer, space, tracker, cand, attack_cols, rng)
    except _Budget:
        return HopSkipJumpResult(False, note="query budget exhausted before the attack")
    attack_rows = [r for r in cand if r in starts][:options.hsj_rows]
    if not attack_rows:
        return HopSkipJumpResult(False, features=tuple(space.axes[j].name for j in attack_cols),
                                 note="no row flips through the continuous features alone within bounds")
    own = {r: float(tracker.flip.dist[r]) for r in attack_rows}
    try:
        adv = _run_art(scorer, space, tracker, attack_rows, attack_cols, starts, options, rng)
    except _Budget:
        return HopSkipJumpResult(False, note="stopped at the query budget")
    except Exception as exc:  # noqa: BLE001 - ART failing for a model is a note, never an error
        msg = str(exc).splitlines()[0] if str(exc) else ""
        return HopSkipJumpResult(False, features=tuple(space.axes[j].name for j in attack_cols),
                                 queries=scorer.rows - rows0, calls=scorer.calls - calls0,
                                 note=f"failed on this model ({type(exc).__name__}: {msg})")
    # clip to bounds, round integers, re-score: only verified flips count
    r_arr = np.array(attack_rows)
    V = space.V0[r_arr].copy()
    for jj, j in enumerate(attack_cols):
        V[:, j] = space.axes[j].clip(adv[:, jj])
    try:
        sc = scorer(r_arr, V)
    except _Budget:
        return HopSkipJumpResult(False, note="stopped at the query budget")
    d = tracker.update(r_arr, V, sc, "HopSkipJump")
    s = sc.s
    fl = tracker.rule.flipped(tracker.f0[r_arr], sc.f) & (d > 0)
    out = tuple(HopSkipJumpRow(str(labels[r]), bool(fl[i]), float(d[i]) if fl[i] else float("nan"),
                               own[r], float(s[i])) for i, r in enumerate(attack_rows))
    note = (f"only {len(attack_rows)} of {len(cand)} candidate rows had a flipping starting point"
            if len(attack_rows) < options.hsj_rows else "")
    return HopSkipJumpResult(True, features=tuple(space.axes[j].name for j in attack_cols), rows=out,
                             queries=scorer.rows - rows0, calls=scorer.calls - calls0, note=note)


def _hsj_starts(scorer: _Scorer, space: _Space, tracker: _Tracker, cand: list[int], cols: list[int],
                rng: np.random.Generator, per_row: int = 30) -> dict[int, np.ndarray]:
    """A flipping point for each row that changes only ``cols``: the best flip so far restricted
    to those features, or the nearest of a seeded uniform sample of the plausible box."""
    rows_l, V_l = [], []
    for r in cand:
        v = space.V0[r].copy()
        if np.isfinite(tracker.flip.dist[r]):
            v[cols] = tracker.flip.V[r, cols]
            rows_l.append(r)
            V_l.append(v.copy())
        for _ in range(per_row):
            v = space.V0[r].copy()
            for j in cols:
                ax = space.axes[j]
                v[j] = ax.clip(np.array([rng.uniform(ax.low, ax.high)]))[0]
            rows_l.append(r)
            V_l.append(v)
    rows, V = np.array(rows_l), np.array(V_l)
    sc = scorer(rows, V)
    d = tracker.update(rows, V, sc, "random search")
    fl = tracker.rule.flipped(tracker.f0[rows], sc.f) & (d > 0)
    out: dict[int, np.ndarray] = {}
    k = np.flatnonzero(fl)
    if len(k):
        uniq, best = _first_per_row(rows[k], d[k])
        for r, i in zip(uniq, k[best]):
            out[int(r)] = V[i, cols]
    return out


def _run_art(scorer: _Scorer, space: _Space, tracker: _Tracker, rows: list[int], cols: list[int],
             starts: dict[int, np.ndarray], options: SearchOptions, rng: np.random.Generator) -> np.ndarray:
    """HopSkipJump over the row's axis values, standardised, with only ``cols`` unmasked; returns
    the adversarial values of ``cols`` in original units (one row per attacked row).

    ART attacks rows one at a time anyway, so each row gets its own black box whose decoding
    fills the features off the axes (fixed, constant) from that row."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*PyTorch not found.*")
        warnings.simplefilter("ignore")
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier

    m = len(space.axes)
    center = np.array([0.0 if ax.categorical else ax.low for ax in space.axes])
    scale = np.array([1.0 if ax.categorical else ax.std for ax in space.axes])
    lo = np.array([0.0 if ax.categorical else (ax.low - c) / s for ax, c, s in zip(space.axes, center, scale)])
    hi = np.array([len(ax.levels) - 1.0 if ax.categorical else (ax.high - c) / s
                   for ax, c, s in zip(space.axes, center, scale)])
    Z = (space.V0[np.array(rows)] - center) / scale
    Z = np.where(np.isnan(Z), -1.0, Z)  # unseen categorical codes (-1) stay masked
    clip_min = np.minimum(lo, Z.min(axis=0))
    clip_max = np.maximum(np.maximum(hi, Z.max(axis=0)), clip_min + 1.0)
    mask = np.zeros((1, m), dtype=np.float32)
    mask[0, cols] = 1.0
    rule, f0 = tracker.rule, tracker.f0
    cat = space.cat
    n_levels = np.array([len(ax.levels) if ax.categorical else 0 for ax in space.axes])
    integer = np.array([ax.integer and not ax.categorical for ax in space.axes])

    def black_box(r: int):
        def predict(z: np.ndarray) -> np.ndarray:
            V = np.asarray(z, dtype=float).reshape(-1, m) * scale + center
            # masked columns: undo float32 round-off (level codes, integers)
            V[:, cat] = np.rint(V[:, cat])
            V[:, cat] = np.where((V[:, cat] < 0) | (V[:, cat] >= n_levels[cat]), -1, V[:, cat])
            V[:, integer] = np.rint(V[:, integer])
            rows_r = np.full(len(V), r)
            sc = scorer(rows_r, V, decode=True)
            # the row's own label, switched where verified flipped; a point the model failed on
            # keeps the row's label (never counts as adversarial)
            own = float(f0[r] >= rule.value)
            flipped = rule.flipped(f0[rows_r], sc.f)
            label = np.where(flipped, 1.0 - own, own)
            return np.column_stack([1.0 - label, label])

        return BlackBoxClassifier(predict, input_shape=(m,), nb_classes=2,
                                  clip_values=(clip_min.astype(np.float32), clip_max.astype(np.float32)))

    out = np.empty((len(rows), len(cols)))
    state = np.random.get_state()
    art_logger = logging.getLogger("art")
    level = art_logger.level
    art_logger.setLevel(logging.ERROR)
    try:
        np.random.seed(int(rng.integers(0, 2**31 - 1)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, r in enumerate(rows):
                attack = HopSkipJump(black_box(r), targeted=False, norm=2, max_iter=int(options.hsj_max_iter),
                                     max_eval=int(options.hsj_max_eval), init_eval=int(options.hsj_init_eval),
                                     init_size=1, batch_size=max(int(options.hsj_max_eval), 64), verbose=False)
                init = Z[i:i + 1].copy()
                init[0, cols] = (starts[r] - center[cols]) / scale[cols]
                adv = attack.generate(x=Z[i:i + 1].astype(np.float32), x_adv_init=init.astype(np.float32),
                                      mask=mask.copy())
                out[i] = np.asarray(adv, dtype=float)[0, cols] * scale[cols] + center[cols]
    finally:
        np.random.set_state(state)
        art_logger.setLevel(level)
    return out


# ---- results ---------------------------------------------------------------------------------
def _outcomes(space: _Space, tracker: _Tracker, scores0: _Scores, labels: Sequence[str], kinds: Sequence[str],
              positions: Sequence[int], reach: dict[int, tuple[np.ndarray, float, np.ndarray, float]],
              scorer: _Scorer) -> tuple[RowOutcome, ...]:
    s0 = scores0.s
    n = len(s0)
    # collect every perturbation, materialise once
    items: list[tuple[int, str, np.ndarray, float, str]] = []
    for r in range(n):
        for name, best in (("flip", tracker.flip), ("swing_up", tracker.up), ("swing_down", tracker.down)):
            if np.isfinite(best.dist[r]):
                items.append((r, name, best.V[r], float(best.score[r]), best.method[r]))
        if r in reach:
            vmax, smax, vmin, smin = reach[r]
            items.append((r, "reach_max", vmax, smax, "ascent"))
            items.append((r, "reach_min", vmin, smin, "ascent"))
    per_row: dict[int, dict[str, Perturbation]] = {r: {} for r in range(n)}
    if items:
        rows = np.array([it[0] for it in items])
        V = np.array([it[2] for it in items])
        frame = space.frame(rows, V)
        d = space.distance(rows, V)
        names = [ax.name for ax in space.axes]
        for i, (r, name, v, s, method) in enumerate(items):
            changed = np.flatnonzero(~_same(v, space.V0[r]))
            changes = tuple(Change(names[j], _plain(space.base[names[j]].iloc[r]), _plain(frame[names[j]].iloc[i]))
                            for j in changed)
            cls = int(tracker.cls[r]) if name == "flip" else -1
            per_row[r][name] = Perturbation(changes, float(d[i]), float(s0[r]), float(s), method, class_after=cls)
    k_class = scorer.k_class and scorer.c0 is not None
    return tuple(RowOutcome(position=int(positions[r]), label=str(labels[r]), kind=str(kinds[r]),
                            score=float(s0[r]), **per_row[r],
                            start_class=int(scorer.c0[r]) if k_class else -1,
                            margin=float(scores0.f[r]) if k_class else float("nan")) for r in range(n))


def _plain(v: Any) -> Any:
    if _isna(v):
        return None
    return v.item() if hasattr(v, "item") else v


# ---- the score surface -------------------------------------------------------------------------
def score_surface(score_fn: ScoreFn, base: pd.DataFrame, x: Axis, y: Axis | None, *, n: int = 30,
                  label: str = "", probability: bool = False) -> ScoreSurface:
    """Scores over the plausible grid of ``x`` (and ``y``) with the other features held at the
    single row ``base``, in one batched call (split only where the model raises)."""
    gx = x.grid(n)
    gy = y.grid(n) if y is not None else np.array([np.nan])
    axes = (x,) if y is None else (x, y)
    space = _Space(base.iloc[:1], axes)
    XX, YY = np.meshgrid(gx, gy)
    V = np.column_stack([XX.ravel()] + ([YY.ravel()] if y is not None else []))
    rows = np.zeros(len(V), dtype=int)
    # the model may fail on parts of the grid: those points are gaps (NaN), counted in ``failed``
    scorer = _Scorer(score_fn, len(V) + 1, space, probability=probability)
    z = scorer(rows, V, decode=True, force=True).s.reshape(len(gy), len(gx))
    base_scores = scorer(np.zeros(1, dtype=int), space.V0[:1], force=True).s

    def values(ax: Axis, g: np.ndarray) -> tuple:
        return tuple(str(ax.levels[int(c)]) for c in g) if ax.categorical else tuple(float(v) for v in g)

    def observed(ax: Axis | None) -> tuple[float, float] | None:
        return None if ax is None or ax.categorical else (ax.observed_low, ax.observed_high)

    base_score = float(base_scores[0])
    failed = scorer.raised + scorer.unresolved + scorer.non_finite + scorer.skipped
    return ScoreSurface(
        x=x.name, y=None if y is None else y.name, x_values=values(x, gx),
        y_values=() if y is None else values(y, gy), x_categorical=x.categorical,
        y_categorical=bool(y is not None and y.categorical),
        z=tuple(tuple(float(v) for v in row) for row in z), x_observed=observed(x), y_observed=observed(y),
        base_label=label, base_x=_plain(base[x.name].iloc[0]),
        base_y=None if y is None else _plain(base[y.name].iloc[0]), base_score=base_score, failed=failed,
        queries=scorer.rows, calls=scorer.calls)
