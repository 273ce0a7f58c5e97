"""Would more data of a weak segment's kind help? The segment's rows in any frame, nested seeded
subsets of its training rows, and a learning curve's trend with a paired bootstrap interval.

A weak segment (``auditor.analysis.segments``) is one or two conditions on features, each a level
or a quantile bin of a coding fitted on the searched test rows. ``segment_mask`` refits those
codings on the same rows (they are a function of the data), so a segment's rows can be selected in
the training and test data exactly; it refuses (None) when the conditions do not pick the rows the
search counted.

The learning curve is the segment's mean loss on its test rows for models refitted on all other
training rows plus growing shares of the segment's training rows, each share drawn (seeded) a few
times and the draws' losses averaged. ``curve_trend`` fits the least-squares slope of that loss on
the share, with a percentile interval from a two-level bootstrap: the segment's test rows are
resampled (the same rows for every point: paired) and so are each point's draws, so the interval
covers both which test rows were scored and which training rows were drawn. The curve supports
more data when the slope's whole interval is below zero and the last step still lowers the loss
over its whole interval (the curve has not levelled off).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .segments import FeatureCoding, WeakSegment, fit_coding, log_loss_rows, log_loss_rows_k


def _codings(X: pd.DataFrame, segment: WeakSegment, *, categorical: Sequence[str], bins: int,
             pair_bins: int) -> list[tuple[FeatureCoding, int]] | None:
    """Each condition's coding (fitted on ``X``, the searched rows) and the code it names."""
    n_bins = bins if len(segment.conditions) == 1 else pair_bins
    out = []
    for feature, condition in zip(segment.features, segment.conditions):
        if feature not in X.columns:
            return None
        coding = fit_coding(X[feature], feature=feature, categorical=feature in set(categorical), n_bins=n_bins)
        codes = [i for i, label in enumerate(coding.labels) if label == condition]
        if len(codes) != 1:
            return None
        out.append((coding, codes[0]))
    return out


def segment_mask(X_searched: pd.DataFrame, segment: WeakSegment, frames: Sequence[pd.DataFrame], *,
                 categorical: Sequence[str], bins: int, pair_bins: int) -> list[np.ndarray] | None:
    """Boolean masks of the segment's rows in each of ``frames``, from the codings refitted on
    ``X_searched`` (the rows the search ran on); None when they do not select the ``segment.n``
    rows the search counted."""
    codings = _codings(X_searched, segment, categorical=categorical, bins=bins, pair_bins=pair_bins)
    if codings is None:
        return None

    def mask(X: pd.DataFrame) -> np.ndarray:
        m = np.ones(len(X), dtype=bool)
        for coding, code in codings:
            m &= coding.codes(X[coding.feature]) == code
        return m

    if int(mask(X_searched).sum()) != segment.n:
        return None
    return [mask(X) for X in frames]


def subset_size(n: int, fraction: float) -> int:
    """``ceil(fraction * n)`` rows, at most ``n``."""
    return min(n, int(math.ceil(fraction * n - 1e-9)))


def nested_subsets(n: int, fractions: Sequence[float], rng: np.random.Generator) -> list[np.ndarray]:
    """Positions of ``subset_size(n, f)`` of ``n`` rows for each fraction, nested (each subset holds
    the smaller ones), from one seeded permutation; sorted."""
    order = rng.permutation(n)
    return [np.sort(order[:subset_size(n, f)]) for f in fractions]


def row_losses(y: np.ndarray, score: np.ndarray, *, task: str) -> np.ndarray:
    """The per-row loss the weak-segment check reports: log loss of the true class (two classes:
    ``score`` is P(positive) and ``y`` 1/0; k classes: ``score`` the probability matrix and ``y`` the
    class index), or absolute error (regression)."""
    if task == "classification":
        s = np.asarray(score, dtype=float)
        return log_loss_rows_k(y, s) if s.ndim == 2 else log_loss_rows(y, s)
    return np.abs(np.asarray(y, dtype=float) - np.asarray(score, dtype=float))


@dataclass(frozen=True)
class CurveTrend:
    """The trend of a learning curve: ``slope`` of the mean loss on the share of the segment's
    training rows (loss per 100 % of them), its paired-bootstrap ``slope_ci``; ``last_drop`` the
    fall of the loss over the last step (second-to-last point minus last) and ``last_drop_ci``."""

    fractions: tuple[float, ...]
    losses: tuple[float, ...]
    loss_ci: tuple[tuple[float, float], ...]
    slope: float
    slope_ci: tuple[float, float]
    last_drop: float
    last_drop_ci: tuple[float, float]
    n_rows: int
    n_boot: int
    confidence: float

    @property
    def slope_falls(self) -> bool:
        """The slope's whole interval is below zero."""
        return bool(math.isfinite(self.slope_ci[1]) and self.slope_ci[1] < 0)

    @property
    def last_step_falls(self) -> bool:
        """The last step lowers the loss over its whole interval."""
        return bool(math.isfinite(self.last_drop_ci[0]) and self.last_drop_ci[0] > 0)

    @property
    def supports_more_data(self) -> bool:
        """The loss falls with more segment data by more than the test-row noise, over the whole
        curve (the slope's interval below zero) and still at its last step (that step's interval
        above zero): the curve has not levelled off at the data the audit has."""
        return self.slope_falls and self.last_step_falls


def _slopes(fractions: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of ``means`` (resamples x points) on ``fractions``."""
    x = fractions - fractions.mean()
    return (means - means.mean(axis=-1, keepdims=True)) @ x / float(x @ x)


def _ci(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    d = draws[np.isfinite(draws)]
    if d.size == 0:
        return float("nan"), float("nan")
    a = (1 - confidence) / 2
    lo, hi = np.quantile(d, [a, 1 - a])
    return float(lo), float(hi)


def curve_trend(fractions: Sequence[float], losses: Sequence[np.ndarray], *, rng: np.random.Generator,
                n_boot: int = 1000, confidence: float = 0.95) -> CurveTrend:
    """``losses[j]`` (draws x test rows): the per-row loss of the segment's test rows under each
    refit of point ``j`` (one refit per seeded draw of the segment's training rows). A point's loss
    is the mean over its draws and rows; the intervals come from a two-level bootstrap that
    resamples the test rows (the same rows for every point: paired) and, at each point, its draws."""
    f = np.asarray(fractions, dtype=float)
    Ls = [np.atleast_2d(np.asarray(x, dtype=float)) for x in losses]
    k = len(Ls)
    n = Ls[0].shape[1] if k else 0
    means = np.array([L.mean() for L in Ls])
    slope = float(_slopes(f, means[None, :])[0])
    last = float(means[-2] - means[-1]) if k >= 2 else float("nan")
    if n == 0 or n_boot <= 0:
        nan = (float("nan"), float("nan"))
        return CurveTrend(tuple(f.tolist()), tuple(means.tolist()), tuple(nan for _ in range(k)), slope, nan, last,
                          nan, n, 0, confidence)
    W = rng.multinomial(n, np.full(n, 1.0 / n), size=int(n_boot)).astype(float) / n  # resamples x rows
    boot = np.empty((int(n_boot), k))
    for j, L in enumerate(Ls):
        per_draw = W @ L.T  # resamples x draws: each draw's mean loss on the resampled rows
        d = L.shape[0]
        if d == 1:
            boot[:, j] = per_draw[:, 0]
        else:
            pick = rng.integers(0, d, size=(int(n_boot), d))
            boot[:, j] = np.take_along_axis(per_draw, pick, axis=1).mean(axis=1)
    slope_draws = _slopes(f, boot)
    last_draws = boot[:, -2] - boot[:, -1] if k >= 2 else np.full(int(n_boot), np.nan)
    return CurveTrend(
        fractions=tuple(float(x) for x in f), losses=tuple(float(x) for x in means),
        loss_ci=tuple(_ci(boot[:, j], confidence) for j in range(k)), slope=slope,
        slope_ci=_ci(slope_draws, confidence), last_drop=last, last_drop_ci=_ci(last_draws, confidence),
        n_rows=n, n_boot=int(n_boot), confidence=float(confidence))
