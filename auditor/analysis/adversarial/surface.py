"""The score surface: scores over a grid of one or two features, the others held at one row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .scoring import Scorer
from .space import Axis, Space, plain_value
from .values import ScoreFn, ScoreSurface


def score_surface(score_fn: ScoreFn, base: pd.DataFrame, x: Axis, y: Axis | None, *, n: int = 30,
                  label: str = "", probability: bool = False) -> ScoreSurface:
    """Scores over the plausible grid of ``x`` (and ``y``) with the other features held at the
    single row ``base``, in one batched call (split only where the model raises)."""
    gx = x.grid(n)
    gy = y.grid(n) if y is not None else np.array([np.nan])
    axes = (x,) if y is None else (x, y)
    space = Space(base.iloc[:1], axes)
    XX, YY = np.meshgrid(gx, gy)
    V = np.column_stack([XX.ravel()] + ([YY.ravel()] if y is not None else []))
    rows = np.zeros(len(V), dtype=int)
    # the model may fail on parts of the grid: those points are gaps (NaN), counted in ``failed``
    scorer = Scorer(score_fn, len(V) + 1, space, probability=probability)
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
        base_label=label, base_x=plain_value(base[x.name].iloc[0]),
        base_y=None if y is None else plain_value(base[y.name].iloc[0]), base_score=base_score, failed=failed,
        queries=scorer.rows, calls=scorer.calls, scored=scorer.scored)
