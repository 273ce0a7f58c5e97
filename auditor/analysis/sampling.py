"""Row sampling and value ordering shared by the analyses: one way to draw a seeded sample."""

from __future__ import annotations

from typing import Any

import numpy as np


def sample_positions(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of a seeded random sample of ``size`` of ``n`` rows without replacement;
    every position when there are no more than ``size`` (the generator is then left untouched)."""
    if n <= size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=int(size), replace=False))


def level_key(v: Any) -> tuple[int, Any]:
    """A sort key for mixed category levels: booleans, then numbers by value, then text."""
    if isinstance(v, (bool, np.bool_)):
        return (0, int(v))
    if isinstance(v, (int, float, np.integer, np.floating)):
        return (1, float(v))
    return (2, str(v))
