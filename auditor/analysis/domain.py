"""The observed domain of each feature: what values are plausible, for checks that invent rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FeatureDomain:
    """Observed range of one feature.

    Numeric: ``low``/``high`` are the observed min and max, ``q01``/``q99`` robust bounds,
    ``std`` the standard deviation, ``integer`` whether every observed value is whole.
    Categorical: ``levels`` are the observed levels, most frequent first (ties by text).
    ``missing_share`` is the share of missing values.
    """

    name: str
    categorical: bool
    levels: tuple = ()
    low: float = float("nan")
    high: float = float("nan")
    q01: float = float("nan")
    q99: float = float("nan")
    std: float = float("nan")
    integer: bool = False
    missing_share: float = 0.0
    mode: float = float("nan")  # numeric: the most frequent value (smallest on ties)
    mode_share: float = 0.0  # numeric: the share of the non-missing values it holds

    @property
    def span(self) -> float:
        return float(self.high - self.low) if not self.categorical else float("nan")

    def margin_bounds(self, fraction: float) -> tuple[float, float]:
        """The observed range widened by ``fraction`` of its span on each side."""
        pad = fraction * (self.span if self.span > 0 else (abs(self.high) or 1.0))
        return self.low - pad, self.high + pad


def feature_domains(frame: pd.DataFrame, *, categorical: tuple[str, ...] | list[str],
                    features: tuple[str, ...] | list[str]) -> dict[str, FeatureDomain]:
    """Domains of ``features`` observed in ``frame`` (pass train and test concatenated, or train)."""
    out: dict[str, FeatureDomain] = {}
    for col in features:
        s = frame[col]
        miss = float(s.isna().mean()) if len(s) else 0.0
        if col in categorical:
            counts = s.dropna().astype(object).value_counts()
            order = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
            out[col] = FeatureDomain(col, True, levels=tuple(k for k, _ in order), missing_share=miss)
            continue
        v = pd.to_numeric(s, errors="coerce").dropna().to_numpy(dtype=float)
        v = v[np.isfinite(v)]  # an infinite value is not part of the plausible range
        if len(v) == 0:
            out[col] = FeatureDomain(col, False, missing_share=miss)
            continue
        values, counts = np.unique(v, return_counts=True)
        top = int(np.argmax(counts))  # np.unique sorts, so ties go to the smallest value
        out[col] = FeatureDomain(
            col, False, low=float(v.min()), high=float(v.max()), q01=float(np.quantile(v, 0.01)),
            q99=float(np.quantile(v, 0.99)), std=float(v.std()), integer=bool(np.all(np.mod(v, 1) == 0)),
            missing_share=miss, mode=float(values[top]), mode_share=float(counts[top] / len(v)))
    return out
