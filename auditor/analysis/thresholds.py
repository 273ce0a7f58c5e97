"""Decision thresholds against adverse impact: pure numerics for the threshold remedy.

* ``threshold_sweep`` moves one group-blind threshold over a grid and, at each, computes every
  judged group's adverse impact ratio (the definition of ``group_metrics.disparate_impact``:
  group favourable rate over the reference group's), the accuracy and the favourable rate.
* ``choose_threshold`` picks the threshold with the highest accuracy among those that bring every
  judged group to ``min_ratio``, or, when none does, the one with the highest worst ratio.
* ``holdout_halves`` splits the rows into two halves (even and odd positions), so a threshold
  chosen on one half can be measured on the other.
* ``group_thresholds`` fits fairlearn's ``ThresholdOptimizer`` (demographic parity, accuracy
  objective) on the scores: one randomised threshold per group, for comparison only.

The decision rule is the audited model's: predicted positive when P(positive) >= threshold; the
favourable outcome is that decision or its opposite (``favorable_is_positive``).
Nothing here knows about severities or findings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .group_metrics import DisparateImpactResult, Grouping, disparate_impact


def subset_grouping(g: Grouping, rows: np.ndarray) -> Grouping:
    """The same groups and reference on a subset of the rows (positions)."""
    labels = g.labels[rows]
    return replace(g, labels=labels, counts=tuple(int((labels == x).sum()) for x in g.groups))


def threshold_grid(points: int, current: float) -> np.ndarray:
    """``points`` evenly spaced thresholds on [0, 1] (0.01 apart for 101), and the current one."""
    grid = np.round(np.linspace(0.0, 1.0, max(2, int(points))), 6)
    return np.unique(np.append(grid, float(current)))


def favorable_decision(score: np.ndarray, threshold: float, favorable_is_positive: bool) -> np.ndarray:
    """The favourable decision at a threshold under the model's rule (positive when score >= t)."""
    positive = np.asarray(score, dtype=float) >= threshold
    return positive if favorable_is_positive else ~positive


@dataclass(frozen=True)
class ThresholdSweep:
    """Adverse impact ratios, accuracy and favourable rate at each threshold of a grid, on a set of rows."""

    grouping: str  # name of the protected column (or pair)
    groups: tuple[str, ...]  # the judged groups (not the reference)
    reference: str
    thresholds: np.ndarray  # ascending
    air: np.ndarray  # len(thresholds) x len(groups)
    accuracy: np.ndarray
    favorable_rate: np.ndarray
    n_rows: int
    counts: tuple[int, ...]  # rows of each judged group
    reference_count: int

    @property
    def worst_air(self) -> np.ndarray:
        """The lowest ratio of the judged groups at each threshold (NaN when one is undefined)."""
        if not self.groups:
            return np.full(len(self.thresholds), np.nan)
        bad = np.isnan(self.air).any(axis=1)
        return np.where(bad, np.nan, np.nanmin(np.where(np.isnan(self.air), np.inf, self.air), axis=1))

    def index(self, threshold: float) -> int:
        """The grid position of a threshold (the nearest one)."""
        return int(np.argmin(np.abs(self.thresholds - float(threshold))))


def _rate(k: np.ndarray, n: int) -> np.ndarray:
    return k / n if n > 0 else np.full(k.shape, np.nan)


def threshold_sweep(grouping: Grouping, score: np.ndarray, y_positive: np.ndarray, *, groups: Sequence[str],
                    thresholds: Sequence[float] | np.ndarray, favorable_is_positive: bool,
                    rows: np.ndarray | None = None) -> ThresholdSweep:
    """Each judged group's adverse impact ratio, the accuracy and the favourable rate at every
    threshold, on ``rows`` (positions; all rows when None). Counts are vectorised over the grid; the
    ratio is ``disparate_impact``'s (``tests`` check that they agree)."""
    g = grouping if rows is None else subset_grouping(grouping, rows)
    s = np.asarray(score, dtype=float) if rows is None else np.asarray(score, dtype=float)[rows]
    y = np.asarray(y_positive, dtype=bool) if rows is None else np.asarray(y_positive, dtype=bool)[rows]
    t = np.asarray(sorted(float(x) for x in thresholds))
    positive = s[None, :] >= t[:, None]  # thresholds x rows
    fav = positive if favorable_is_positive else ~positive
    ref_mask = g.labels == g.reference
    n_ref = int(ref_mask.sum())
    ref_rate = _rate(fav[:, ref_mask].sum(axis=1).astype(float), n_ref)
    air = np.full((len(t), len(groups)), np.nan)
    counts = []
    for j, grp in enumerate(groups):
        mask = g.labels == grp
        n = int(mask.sum())
        counts.append(n)
        rate = _rate(fav[:, mask].sum(axis=1).astype(float), n)
        with np.errstate(divide="ignore", invalid="ignore"):
            air[:, j] = np.where(ref_rate > 0, rate / np.where(ref_rate > 0, ref_rate, 1.0), np.nan)
    n_rows = len(s)
    accuracy = (positive == y[None, :]).mean(axis=1) if n_rows else np.full(len(t), np.nan)
    favorable_rate = fav.mean(axis=1) if n_rows else np.full(len(t), np.nan)
    return ThresholdSweep(grouping=g.name, groups=tuple(groups), reference=g.reference, thresholds=t, air=air,
                          accuracy=np.asarray(accuracy, dtype=float), favorable_rate=np.asarray(favorable_rate, float),
                          n_rows=n_rows, counts=tuple(counts), reference_count=n_ref)


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold picked from a sweep, and whether it brings every judged group to ``min_ratio``.

    ``beyond_index``: when no threshold within the accuracy budget reaches ``min_ratio``, the one with
    the least accuracy loss that does (None when no threshold that still separates rows does)."""

    threshold: float
    index: int
    current_index: int
    meets: bool
    min_ratio: float
    max_accuracy_loss: float = math.inf
    beyond_index: int | None = None


def choose_threshold(sweep: ThresholdSweep, *, current: float, min_ratio: float,
                     max_accuracy_loss: float = math.inf) -> ThresholdChoice:
    """The threshold with the highest accuracy among those whose worst ratio is at least ``min_ratio``
    and that lose at most ``max_accuracy_loss`` of accuracy against ``current`` (ties: the nearest to
    ``current``); when none does, the one with the highest worst ratio within that loss (ties: higher
    accuracy, then nearer). Thresholds that give everyone (or no one) the favourable outcome are never
    chosen: they no longer decide anything, and make every ratio 1 (or undefined) trivially."""
    worst = sweep.worst_air
    cur = sweep.index(current)
    dist = np.abs(sweep.thresholds - float(current))
    acc = np.where(np.isfinite(sweep.accuracy), sweep.accuracy, -np.inf)
    fav = sweep.favorable_rate
    valid = np.isfinite(worst) & (fav > 0) & (fav < 1)
    affordable = valid & (acc >= acc[cur] - max_accuracy_loss - 1e-12)
    meets = valid & (worst >= min_ratio - 1e-12)

    def best_accuracy(mask: np.ndarray) -> int:
        return int(min(np.flatnonzero(mask), key=lambda i: (-acc[i], dist[i], i)))

    def choice(i: int, ok: bool, beyond: int | None = None) -> ThresholdChoice:
        return ThresholdChoice(float(sweep.thresholds[i]), i, cur, ok, min_ratio, max_accuracy_loss, beyond)

    if (meets & affordable).any():
        return choice(best_accuracy(meets & affordable), True)
    beyond = best_accuracy(meets) if meets.any() else None
    if not affordable.any():
        return choice(cur, False, beyond)
    i = int(min(np.flatnonzero(affordable), key=lambda k: (-round(float(worst[k]), 12), -acc[k], dist[k], k)))
    return choice(i, False, beyond)


def holdout_halves(n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows at even positions, rows at odd positions): a split anyone can redo, balanced within
    each group whatever the order of the rows."""
    pos = np.arange(n_rows)
    return pos[pos % 2 == 0], pos[pos % 2 == 1]


def halves_large_enough(g: Grouping, groups: Sequence[str], halves: Sequence[np.ndarray], min_rows: int) -> bool:
    """Every judged group and the reference have ``min_rows`` rows in each half."""
    for rows in halves:
        labels = g.labels[rows]
        for grp in (*groups, g.reference):
            if int((labels == grp).sum()) < min_rows:
                return False
    return True


def impact_at(grouping: Grouping, score: np.ndarray, threshold: float, *, favorable_is_positive: bool,
              rows: np.ndarray | None = None, min_group_size: int = 1,
              confidence: float = 0.95) -> DisparateImpactResult:
    """``disparate_impact`` at one threshold on ``rows``: the ratios with their Katz intervals."""
    g = grouping if rows is None else subset_grouping(grouping, rows)
    s = np.asarray(score, dtype=float) if rows is None else np.asarray(score, dtype=float)[rows]
    fav = favorable_decision(s, threshold, favorable_is_positive)
    p_fav = s if favorable_is_positive else 1.0 - s
    return disparate_impact(g, fav, p_fav, min_group_size=min_group_size, confidence=confidence)


# ---- group-specific thresholds (fairlearn), an opt-in comparison ----------------------------------------

@dataclass(frozen=True)
class GroupThresholds:
    """fairlearn's ``ThresholdOptimizer`` fitted on the scores of some rows, applied to others."""

    rules: Mapping[str, str]  # group -> its (randomised) rule in words
    positive: np.ndarray  # the positive decision on the evaluation rows
    constraint: str
    n_fit: int


class _ScoreColumn(ClassifierMixin, BaseEstimator):
    """A fitted 'estimator' whose prediction is its one input column: lets fairlearn threshold any
    model's scores (ONNX and hosted models included) without calling the model again."""

    def fit(self, X: Any, y: Any) -> _ScoreColumn:
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=float)[:, 0]

    def __sklearn_is_fitted__(self) -> bool:
        return True


def _rule_text(d: Mapping[str, Any]) -> str:
    def op(o: Any) -> str:
        thr = float(getattr(o, "threshold", getattr(o, "_threshold", math.nan)))
        sign = getattr(o, "operator", getattr(o, "_operator", "?"))
        return f"score {sign} {thr:.4g}" if math.isfinite(thr) else f"score {sign} {thr}"

    p0, p1 = float(d.get("p0", 0.0)), float(d.get("p1", 0.0))
    if p1 <= 0 or d.get("operation1") is None:
        return op(d["operation0"])
    if p0 <= 0:
        return op(d["operation1"])
    return f"{op(d['operation0'])} with probability {p0:.3g}, else {op(d['operation1'])}"


def group_thresholds(score: np.ndarray, y_positive: np.ndarray, labels: np.ndarray, *, fit_rows: np.ndarray,
                     eval_rows: np.ndarray, seed: int,
                     constraint: str = "demographic_parity") -> GroupThresholds:
    """One threshold (randomised between two where needed) per group that equalises the selection
    rate (``constraint``) with the best accuracy, fitted on ``fit_rows`` and applied to ``eval_rows``."""
    import warnings

    from fairlearn.postprocessing import ThresholdOptimizer

    s = np.asarray(score, dtype=float).reshape(-1, 1)
    y = np.asarray(y_positive, dtype=int)
    lab = np.asarray(labels).astype(str)
    opt = ThresholdOptimizer(estimator=_ScoreColumn(), constraints=constraint, objective="accuracy_score",
                             prefit=True, predict_method="predict")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt.fit(s[fit_rows], y[fit_rows], sensitive_features=lab[fit_rows])
        pred = np.asarray(opt.predict(s[eval_rows], sensitive_features=lab[eval_rows], random_state=seed))
    rules = {str(k): _rule_text(v) for k, v in sorted(opt.interpolated_thresholder_.interpolation_dict.items())}
    return GroupThresholds(rules=rules, positive=pred.astype(bool), constraint=constraint, n_fit=len(fit_rows))
