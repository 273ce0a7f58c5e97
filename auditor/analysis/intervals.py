"""Interval estimates shared by every analysis: one implementation each, checked against scipy."""

from __future__ import annotations


def wilson(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n (scipy's); (nan, nan) when n is 0."""
    if n <= 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)
