"""Multiple-testing corrections, in one place: analyses return raw and adjusted p-values, and
checks only read them.

* ``bh``: Benjamini-Hochberg, controls the false discovery rate among many screened tests
  (weak segments, residual bias by feature, disagreement segments).
* ``holm``: Holm's step-down, controls the chance of any false alarm in a small family of tests
  (the groups of a protected attribute).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


def bh(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (scipy's ``false_discovery_control``); NaN stays NaN
    and is not counted as a test."""
    from scipy import stats

    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = np.asarray(stats.false_discovery_control(p[ok], method="bh"), dtype=float)
    return out


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (NaN stays NaN and is not counted as a test)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok], kind="mergesort")]
    m = order.size
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def holm_by_key(tests: Sequence[tuple[Hashable, float]]) -> dict[Hashable, float]:
    """Holm-adjusted p-values of one family of keyed tests, by key."""
    adjusted = holm([p for _, p in tests])
    return {k: float(v) for (k, _), v in zip(tests, adjusted)}
