"""Distribution shift between a reference sample (train) and a current sample (test).

Pure numerics: arrays in, frozen results out. Nothing here knows about severities.

* PSI (population stability index) over bins: ``sum((c - r) * ln(c / r))`` where ``r`` and
  ``c`` are the reference and current shares of each bin, floored at a small ``epsilon`` so an
  empty bin does not give an infinite index.
* Numeric values are binned on quantiles of the reference (10 by default); tied quantiles are
  merged, a feature with few distinct values gets one bin per value, values outside the
  reference range fall into the outer bins and missing values form their own bin.
* Categorical values get one bin per level seen in either sample (so levels unseen in the
  reference are their own bins) and one for missing values.
* Jensen–Shannon distance (base 2, in [0, 1]) on the same bins; KS statistic and p-value
  (numeric) or chi-square p-value (categorical); Wasserstein distance divided by the reference
  standard deviation (numeric), so it reads as "shift in reference standard deviations".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_EPSILON = 1e-4
MISSING_BIN = "(missing)"


@dataclass(frozen=True)
class Bins:
    """Counts of the reference and current samples over the same bins."""

    labels: tuple[str, ...]
    reference: np.ndarray  # counts
    current: np.ndarray  # counts

    @property
    def reference_share(self) -> np.ndarray:
        return _shares(self.reference)

    @property
    def current_share(self) -> np.ndarray:
        return _shares(self.current)


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one column.

    ``p_value`` is the test of "same distribution": chi-square over the levels (categorical);
    for numeric columns the KS test of the values, combined (Bonferroni, x2) with a chi-square
    test of the missing-value share when either sample has missing values, so a change in
    missingness alone is not invisible.
    """

    feature: str
    kind: str  # "numeric" | "categorical"
    n_reference: int
    n_current: int
    psi: float
    js_distance: float
    p_value: float
    test: str  # "ks" | "chi2"
    ks_statistic: float = float("nan")
    ks_pvalue: float = float("nan")
    missing_pvalue: float = float("nan")  # chi-square on missing vs present (numeric, when any missing)
    wasserstein: float = float("nan")  # raw, in the feature's units
    wasserstein_norm: float = float("nan")  # divided by the reference standard deviation
    mean_reference: float = float("nan")
    mean_current: float = float("nan")
    missing_reference: float = 0.0  # share of missing values
    missing_current: float = 0.0
    bins: Bins | None = None


@dataclass(frozen=True)
class DriftReport:
    """Drift of many columns, in the order given."""

    columns: tuple[FeatureDrift, ...]

    def get(self, feature: str) -> FeatureDrift:
        for c in self.columns:
            if c.feature == feature:
                return c
        raise KeyError(feature)


# ---- PSI ---------------------------------------------------------------------------------------

def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def psi(reference_share: Sequence[float] | np.ndarray, current_share: Sequence[float] | np.ndarray, *,
        epsilon: float = DEFAULT_EPSILON) -> float:
    """Population stability index of two share vectors over the same bins.

    Shares are floored at ``epsilon`` (an empty bin would otherwise make the index infinite).
    """
    r = np.clip(np.asarray(reference_share, dtype=float), epsilon, None)
    c = np.clip(np.asarray(current_share, dtype=float), epsilon, None)
    if r.shape != c.shape:
        raise ValueError("reference and current shares must have the same bins")
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference_share: np.ndarray, current_share: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2): 0 for identical distributions, 1 for disjoint ones."""
    from scipy.spatial.distance import jensenshannon

    r = np.asarray(reference_share, dtype=float)
    c = np.asarray(current_share, dtype=float)
    if r.sum() <= 0 or c.sum() <= 0:
        return float("nan")
    return float(jensenshannon(r, c, base=2))


# ---- binning -----------------------------------------------------------------------------------

def _fmt(x: float) -> str:
    return f"{x:.4g}"


def quantile_edges(reference: np.ndarray, *, n_bins: int = 10) -> np.ndarray:
    """Inner bin edges from the finite reference values (bins are right-closed, outer bins open).

    Tied quantiles are merged; with at most ``n_bins`` distinct values each value is its own bin.
    """
    ref = np.asarray(reference, dtype=float)
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        return np.empty(0)
    distinct = np.unique(ref)
    if distinct.size <= n_bins:
        return distinct[:-1]
    qs = np.quantile(ref, np.arange(1, n_bins) / n_bins)
    edges = np.unique(qs)
    # the top edge at the maximum would leave an empty last bin
    return edges[edges < distinct[-1]]


def numeric_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` over the bins of ``edges`` (right-closed, outer bins open) plus one
    last bin for missing values: the drift check's binning of a numeric column, reused by the
    production monitor on the bins it stored."""
    x = np.asarray(values, dtype=float)
    edges = np.asarray(edges, dtype=float)
    missing = np.isnan(x)
    idx = np.searchsorted(edges, x[~missing], side="left")  # bin i holds (edge[i-1], edge[i]]
    return np.append(np.bincount(idx, minlength=edges.size + 1), missing.sum())


def numeric_labels(edges: np.ndarray) -> tuple[str, ...]:
    """The labels of the bins ``numeric_counts`` counts (the last one the missing bin)."""
    edges = np.asarray(edges, dtype=float)
    lo = np.concatenate([[-np.inf], edges])
    hi = np.concatenate([edges, [np.inf]])
    labels = tuple(f"({_fmt(a)}, {_fmt(b)}]" if np.isfinite(b) else f"> {_fmt(a)}" for a, b in zip(lo, hi))
    if edges.size == 0:
        labels = ("all values",)
    elif not np.isfinite(lo[0]):
        labels = (f"<= {_fmt(hi[0])}",) + labels[1:]
    return labels + (MISSING_BIN,)


def numeric_bins(reference: np.ndarray, current: np.ndarray, *, n_bins: int = 10) -> Bins:
    """Counts over the reference's quantile bins plus one bin for missing values."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    edges = quantile_edges(ref, n_bins=n_bins)
    return Bins(labels=numeric_labels(edges), reference=numeric_counts(ref, edges), current=numeric_counts(cur, edges))


def level_strings(values: pd.Series) -> pd.Series:
    """Levels as text (missing stays missing) with numbers compared by value, so 1, 1.0 and "1"
    are one level (a target written as 1.0/0.0 in one file and 1/0 in the other has not drifted)."""
    from .quality import level_text

    return level_text(values)


def categorical_bins(reference: pd.Series, current: pd.Series) -> Bins:
    """Counts per level (every level seen in either sample, sorted by reference count) plus missing."""
    r = level_strings(pd.Series(reference).reset_index(drop=True))
    c = level_strings(pd.Series(current).reset_index(drop=True))
    rc = r.value_counts(dropna=True)
    cc = c.value_counts(dropna=True)
    table = pd.DataFrame({"ref": rc, "cur": cc}).fillna(0)
    # deterministic order: most frequent in the reference first, then the level text
    table["level"] = table.index.astype(str)
    table = table.sort_values(["ref", "cur", "level"], ascending=[False, False, True], kind="mergesort")
    ref_counts = np.append(table["ref"].to_numpy(dtype=float), float(r.isna().sum()))
    cur_counts = np.append(table["cur"].to_numpy(dtype=float), float(c.isna().sum()))
    return Bins(labels=tuple(table["level"].tolist()) + (MISSING_BIN,), reference=ref_counts, current=cur_counts)


# ---- per-column drift --------------------------------------------------------------------------

def numeric_drift(reference: Any, current: Any, *, feature: str = "", n_bins: int = 10,
                  epsilon: float = DEFAULT_EPSILON) -> FeatureDrift:
    """PSI, JS distance, KS test and normalised Wasserstein distance of a numeric column."""
    from scipy.stats import ks_2samp, wasserstein_distance

    ref = pd.to_numeric(pd.Series(reference), errors="coerce").to_numpy(dtype=float)
    cur = pd.to_numeric(pd.Series(current), errors="coerce").to_numpy(dtype=float)
    bins = numeric_bins(ref, cur, n_bins=n_bins)
    rs, cs = bins.reference_share, bins.current_share
    rf, cf = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if rf.size and cf.size:
        ks = ks_2samp(rf, cf)
        ks_stat, p = float(ks.statistic), float(ks.pvalue)
        w = float(wasserstein_distance(rf, cf))
        sd = float(np.std(rf, ddof=1)) if rf.size > 1 else 0.0
        w_norm = w / sd if sd > 0 else (0.0 if w == 0 else float("nan"))
    else:
        ks_stat = p = w = w_norm = float("nan")
    ks_p = p
    miss_p = _missing_pvalue(np.isnan(ref), np.isnan(cur))
    if np.isfinite(miss_p):
        p = min(1.0, 2.0 * float(np.nanmin([p, miss_p])))
    return FeatureDrift(
        feature=feature, kind="numeric", n_reference=int(ref.size), n_current=int(cur.size),
        psi=psi(rs, cs, epsilon=epsilon), js_distance=js_distance(rs, cs), p_value=p, test="ks",
        ks_statistic=ks_stat, ks_pvalue=ks_p, missing_pvalue=miss_p, wasserstein=w, wasserstein_norm=w_norm,
        mean_reference=float(rf.mean()) if rf.size else float("nan"),
        mean_current=float(cf.mean()) if cf.size else float("nan"),
        missing_reference=float(np.isnan(ref).mean()) if ref.size else 0.0,
        missing_current=float(np.isnan(cur).mean()) if cur.size else 0.0,
        bins=bins,
    )


def _missing_pvalue(ref_missing: np.ndarray, cur_missing: np.ndarray) -> float:
    """Chi-square p-value of "same missing share"; NaN when neither sample has missing values."""
    from scipy.stats import chi2_contingency

    a, b = int(ref_missing.sum()), int(cur_missing.sum())
    if a + b == 0 or ref_missing.size == 0 or cur_missing.size == 0:
        return float("nan")
    table = np.array([[a, ref_missing.size - a], [b, cur_missing.size - b]], dtype=float)
    if (table.sum(axis=0) == 0).any():
        return 1.0
    return float(chi2_contingency(table, correction=True).pvalue)


def homogeneity_pvalue(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Chi-square p-value of "the same distribution over these bins" from two count vectors (bins
    empty in both are dropped; 1.0 when fewer than two bins or an empty sample remain)."""
    from scipy.stats import chi2_contingency

    table = np.vstack([np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2 and table.sum(axis=1).min() > 0:
        return float(chi2_contingency(table, correction=False).pvalue)
    return 1.0


def categorical_drift(reference: Any, current: Any, *, feature: str = "",
                      epsilon: float = DEFAULT_EPSILON) -> FeatureDrift:
    """PSI and JS distance over levels, and the chi-square test of homogeneity."""
    r = pd.Series(reference)
    c = pd.Series(current)
    bins = categorical_bins(r, c)
    p = homogeneity_pvalue(bins.reference, bins.current)
    rs, cs = bins.reference_share, bins.current_share
    return FeatureDrift(
        feature=feature, kind="categorical", n_reference=int(len(r)), n_current=int(len(c)),
        psi=psi(rs, cs, epsilon=epsilon), js_distance=js_distance(rs, cs), p_value=p, test="chi2",
        missing_reference=float(r.isna().mean()) if len(r) else 0.0,
        missing_current=float(c.isna().mean()) if len(c) else 0.0,
        bins=bins,
    )


def column_drift(reference: pd.Series, current: pd.Series, *, feature: str = "", categorical: bool,
                 n_bins: int = 10, epsilon: float = DEFAULT_EPSILON) -> FeatureDrift:
    """Numeric or categorical drift of one column, as chosen by ``categorical``."""
    if categorical:
        return categorical_drift(reference, current, feature=feature, epsilon=epsilon)
    return numeric_drift(reference, current, feature=feature, n_bins=n_bins, epsilon=epsilon)


def frame_drift(reference: pd.DataFrame, current: pd.DataFrame, *, columns: Sequence[str],
                categorical: Sequence[str] = (), n_bins: int = 10,
                epsilon: float = DEFAULT_EPSILON) -> DriftReport:
    """Drift of each of ``columns`` between two frames; ``categorical`` names the categorical ones.

    A column numeric in one frame and text in the other is compared as categorical.
    """
    cats = set(categorical)
    out = []
    for col in columns:
        r, c = reference[col], current[col]
        is_cat = col in cats or not (pd.api.types.is_numeric_dtype(r) and pd.api.types.is_numeric_dtype(c)) \
            or pd.api.types.is_bool_dtype(r) or pd.api.types.is_bool_dtype(c)
        out.append(column_drift(r, c, feature=col, categorical=is_cat, n_bins=n_bins, epsilon=epsilon))
    return DriftReport(columns=tuple(out))
