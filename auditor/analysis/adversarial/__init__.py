"""Adversarial example search within plausible bounds, the way a validator would probe a model.

Pure numerics: a batched score function, real starting rows and the observed feature domains
in; a frozen :class:`AdversarialResult` out. Nothing here knows about severities.

* **Search space.** Each searched feature is an :class:`Axis`: numeric features move within
  their observed range widened by ``margin`` of the span, but not below zero when no observed
  value is negative (integer features stay integer, with the bounds rounded inwards);
  categorical features take only their observed levels. Features named in ``fixed`` (declared
  immutable, protected attributes) and constant features never move.
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

Modules: ``values`` (the rule, scale, perturbations, outcomes and the result), ``space`` (axes,
the encoding of rows over them, starting rows), ``scoring`` (batched scoring within the budget,
failures, the best-so-far tracker), ``phases`` (importance, single features, pairs, shrinking,
genetic search, extremes), ``hop_skip_jump`` (the ART second opinion), ``search`` (all phases on
a batch of rows) and ``surface`` (the score surface).
"""

from __future__ import annotations

from .search import adversarial_search, merge_results
from .space import Axis, plausible_axes, select_start_rows, typical_row
from .surface import score_surface
from .values import (
    AdversarialResult,
    Change,
    FailureExample,
    FlipRule,
    HopSkipJumpResult,
    HopSkipJumpRow,
    KnifeEdge,
    Perturbation,
    RowOutcome,
    ScoreFn,
    ScoreScale,
    ScoreSurface,
    ScoringFailures,
    SearchOptions,
)

__all__ = [
    "AdversarialResult",
    "Axis",
    "Change",
    "FailureExample",
    "FlipRule",
    "HopSkipJumpResult",
    "HopSkipJumpRow",
    "KnifeEdge",
    "Perturbation",
    "RowOutcome",
    "ScoreFn",
    "ScoreScale",
    "ScoreSurface",
    "ScoringFailures",
    "SearchOptions",
    "adversarial_search",
    "merge_results",
    "plausible_axes",
    "score_surface",
    "select_start_rows",
    "typical_row",
]
