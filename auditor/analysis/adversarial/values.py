"""The value types of the adversarial search: the flip rule, the judging scale, perturbations,
per-row outcomes, knife edges, HopSkipJump rows, scoring failures, the options and the result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .space import Axis

ScoreFn = Callable[[pd.DataFrame], np.ndarray]


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
    mass_share: float = 0.5  # a numeric value held by this share of rows is a mass point (see Space.distance)
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
    scored: int = 0  # distinct candidates among the queries: the rows the model scored


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
    queries: int = 0  # rows asked for, including re-asked parts of failing batches
    calls: int = 0
    scored: int = 0  # distinct rows among them, the rows the model scored
