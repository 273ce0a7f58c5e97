"""Outcomes and errors by group of a protected attribute: pure numerics for the fairness checks.

* ``make_groupings`` turns protected columns into group labels: missing values become their own
  group ``(missing)``, numeric columns with many values become bands (fixed cut points when given,
  else quantile bands; a protected column that is already a banding of it is preferred), and pairs
  of protected columns give intersectional groups.
* ``disparate_impact`` compares favorable-outcome rates with a reference group (adverse impact
  ratio, two-sided Fisher exact test, standardized mean difference of the score).
* ``mean_difference`` does the same for a regression prediction (SMD, Welch t-test).
* ``error_parity`` computes error rates by group with fairlearn's ``MetricFrame``, tests the gaps in
  FNR and FPR against the reference group, calibration in the large by group, and the
  equalized-odds difference (fairlearn's over all groups, and over the eligible groups with a
  bootstrap interval). Intervals: Katz log for the adverse impact ratio, Newcombe for rate gaps,
  Welch for mean differences.
* ``holm_adjust_impact`` and ``holm_adjust_errors`` return the results with Holm-adjusted p-values
  next to the raw ones: one family per kind of test over every grouping of an audit, so many groups
  (and intersections) do not produce chance findings.

Nothing here knows about severities or findings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from .multiple_testing import holm_by_key

MISSING_GROUP = "(missing)"
INTERSECTION = " × "


# ---- group labels --------------------------------------------------------------------------------

def level_text(value: Any) -> str:
    """A group label for one raw value: integral numbers without '.0', missing as '(missing)'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return MISSING_GROUP
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:g}"
    return str(value)


def _edge_text(x: float) -> str:
    return f"{x:.4g}"


def band_labels(values: np.ndarray, cuts: Sequence[float]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Bands ``< c1``, ``[c1, c2)``, ..., ``≥ ck`` for numeric values (NaN -> '(missing)')."""
    cuts = sorted({float(c) for c in cuts})
    names = ([f"< {_edge_text(cuts[0])}"]
             + [f"[{_edge_text(a)}, {_edge_text(b)})" for a, b in zip(cuts[:-1], cuts[1:])]
             + [f"≥ {_edge_text(cuts[-1])}"])
    idx = np.searchsorted(np.asarray(cuts), values, side="right")
    out = np.array(names, dtype=object)[np.clip(idx, 0, len(names) - 1)]
    out[~np.isfinite(values)] = MISSING_GROUP
    return out.astype(object), tuple(names)


def quantile_cuts(values: np.ndarray, n_bins: int) -> list[float]:
    """Interior cut points at quantiles, rounded to 3 significant digits, duplicates dropped."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return []
    qs = np.quantile(v, np.linspace(0, 1, n_bins + 1)[1:-1])
    cuts = sorted({float(f"{q:.3g}") for q in qs})
    return [c for c in cuts if v.min() < c <= v.max()]


@dataclass(frozen=True)
class Grouping:
    """Group membership of every test row for one protected column or a pair of them.

    ``labels[i]`` is row i's group; ``groups`` are the groups in report order and ``parts[k]``
    the per-column values of ``groups[k]`` (one value for a single column, two for a pair).
    """

    name: str  # "sex", or "sex × age_band" for an intersection
    columns: tuple[str, ...]
    labels: np.ndarray
    groups: tuple[str, ...]
    parts: tuple[tuple[str, ...], ...]
    counts: tuple[int, ...]
    reference: str
    reference_source: str  # "config" | "largest group" | "the configured references" ...
    method: str  # "levels" | "quantile bands" | "fixed bands" | "intersection"
    # per group, the per-column values a finding id uses: the values themselves, except quantile
    # bands, whose cut points move with the sample and are named by position (``band2of4``)
    id_parts: tuple[tuple[str, ...], ...] = ()

    @property
    def is_intersection(self) -> bool:
        return len(self.columns) > 1

    def count(self, group: str) -> int:
        return self.counts[self.groups.index(group)]

    def part_pairs(self, group: str) -> tuple[tuple[str, str], ...]:
        """((column, value), ...) of a group: the ``groups`` of a finding."""
        return tuple(zip(self.columns, self.parts[self.groups.index(group)]))

    def id_pairs(self, group: str) -> tuple[tuple[str, str], ...]:
        """((column, value), ...) of a group for a finding id: stable across samples of the data."""
        parts = self.id_parts or self.parts
        return tuple(zip(self.columns, parts[self.groups.index(group)]))


@dataclass(frozen=True)
class GroupingPlan:
    groupings: tuple[Grouping, ...]
    notes: tuple[str, ...]


def _order(levels: Sequence[str]) -> list[str]:
    """Numeric-looking levels numerically, others alphabetically, '(missing)' last."""
    real = [lv for lv in levels if lv != MISSING_GROUP]

    def key(s: str) -> tuple[int, float, str]:
        try:
            return (0, float(s), s)
        except ValueError:
            return (1, 0.0, s)

    real.sort(key=key)
    return real + ([MISSING_GROUP] if MISSING_GROUP in levels else [])


def _matches(label: str, wanted: Any) -> bool:
    if label == level_text(wanted) or label == str(wanted):
        return True
    try:
        return float(label) == float(wanted)
    except (TypeError, ValueError):
        return False


def _is_many_valued_numeric(s: pd.Series, max_levels: int) -> bool:
    return (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            and s.nunique(dropna=True) > max_levels)


def _determines(fine: pd.Series, coarse: pd.Series) -> bool:
    """Each value of ``fine`` maps to one value of ``coarse`` (``coarse`` is a banding of ``fine``)."""
    ok = fine.notna()
    if not ok.any():
        return False
    return bool(pd.DataFrame({"f": fine[ok].to_numpy(), "c": coarse[ok].astype(str).to_numpy()})
                .groupby("f")["c"].nunique().max() == 1)


def _single(frame: pd.DataFrame, col: str, *, reference: Any, max_levels: int, n_bins: int,
            cuts: Sequence[float] | None) -> Grouping:
    s = frame[col]
    if cuts or _is_many_valued_numeric(s, max_levels):
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        method = "fixed bands" if cuts else "quantile bands"
        cut_list = list(cuts) if cuts else quantile_cuts(x, n_bins)
        if cut_list:
            labels, names = band_labels(x, cut_list)
            order = [n for n in names if (labels == n).any()]
            order += [MISSING_GROUP] if (labels == MISSING_GROUP).any() else []
        else:  # a constant column
            labels = np.array([level_text(v) for v in s.to_numpy()], dtype=object)
            order = _order(list(pd.unique(labels)))
            method = "levels"
    else:
        labels = np.array([level_text(v) for v in s.to_numpy()], dtype=object)
        order = _order(list(pd.unique(labels)))
        method = "levels"
    counts = tuple(int((labels == g).sum()) for g in order)
    ref, source = _reference(col, order, counts, reference)
    id_parts: tuple[tuple[str, ...], ...] = ()
    if method == "quantile bands":
        id_parts = tuple((f"band{names.index(g) + 1}of{len(names)}" if g in names else "missing",) for g in order)
    return Grouping(name=col, columns=(col,), labels=labels, groups=tuple(order), parts=tuple((g,) for g in order),
                    counts=counts, reference=ref, reference_source=source, method=method, id_parts=id_parts)


def _reference(col: str, order: Sequence[str], counts: Sequence[int], wanted: Any) -> tuple[str, str]:
    if wanted is not None:
        hits = [g for g in order if _matches(g, wanted)]
        if not hits:
            raise ValueError(f"reference group {wanted!r} for protected column '{col}' does not occur in the test "
                             f"data (groups: {', '.join(order[:10])})")
        return hits[0], "config"
    candidates = [(c, -i) for i, (g, c) in enumerate(zip(order, counts)) if g != MISSING_GROUP] or \
        [(c, -i) for i, c in enumerate(counts)]
    best = max(candidates)
    return order[-best[1]], "largest group"


def intersect(a: Grouping, b: Grouping, *, min_group_size: int) -> Grouping:
    """The pair's groups (cells with at least one row), in the order of ``a`` then ``b``."""
    labels = np.char.add(np.char.add(a.labels.astype(str), INTERSECTION), b.labels.astype(str)).astype(object)
    present = set(pd.unique(labels))
    groups, parts, id_parts = [], [], []
    for ga in a.groups:
        for gb in b.groups:
            name = f"{ga}{INTERSECTION}{gb}"
            if name in present:
                groups.append(name)
                parts.append((ga, gb))
                id_parts.append((a.id_pairs(ga)[0][1], b.id_pairs(gb)[0][1]))
    counts = tuple(int((labels == g).sum()) for g in groups)
    both = f"{a.reference}{INTERSECTION}{b.reference}"
    if both in groups and counts[groups.index(both)] >= min_group_size:
        ref, source = both, "the two columns' reference groups"
    else:
        ref, _ = _reference(a.name, groups, counts, None)
        source = "largest group (the two reference groups together are too few)"
    return Grouping(name=f"{a.name}{INTERSECTION}{b.name}", columns=a.columns + b.columns, labels=labels,
                    groups=tuple(groups), parts=tuple(parts), counts=counts, reference=ref, reference_source=source,
                    method="intersection", id_parts=tuple(id_parts))


def make_groupings(frame: pd.DataFrame, protected: Sequence[str], *, reference: Mapping[str, Any] | None = None,
                   max_levels: int = 10, n_bins: int = 4, bands: Mapping[str, Sequence[float]] | None = None,
                   min_group_size: int = 30, intersections: bool = True,
                   max_intersection_groups: int = 20) -> GroupingPlan:
    """Groupings of the rows of ``frame`` by each protected column and by pairs of them.

    A numeric protected column with more than ``max_levels`` values is left out when another
    protected column is a banding of it (each of its values maps to one band), else cut at
    ``bands[col]`` or into ``n_bins`` quantile bands. A pair is analysed when it has at most
    ``max_intersection_groups`` non-empty cells, at least two of them with ``min_group_size``
    rows, and neither column determines the other.
    """
    reference = dict(reference or {})
    bands = dict(bands or {})
    notes: list[str] = []
    singles: list[Grouping] = []
    for col in protected:
        s = frame[col]
        if col not in bands and _is_many_valued_numeric(s, max_levels):
            banded_by = [o for o in protected if o != col and not _is_many_valued_numeric(frame[o], max_levels)
                         and _determines(s, frame[o])]
            if banded_by:
                notes.append(f"'{col}' has {s.nunique()} distinct values; it is analysed through the protected column "
                             f"'{banded_by[0]}', which bands it.")
                continue
        g = _single(frame, col, reference=reference.get(col), max_levels=max_levels, n_bins=n_bins,
                    cuts=bands.get(col))
        if g.method == "quantile bands":
            notes.append(f"'{col}' is numeric with {s.nunique()} distinct values: grouped into {len(g.groups)} "
                         f"quantile bands of the test data ({', '.join(x for x in g.groups if x != MISSING_GROUP)}); "
                         "declare fixed bands with the option bands or add a band column to [data] protected.")
        elif g.method == "fixed bands":
            notes.append(f"'{col}' grouped into the configured bands ({', '.join(g.groups)}).")
        if MISSING_GROUP in g.groups:
            notes.append(f"'{col}' has {g.count(MISSING_GROUP)} missing values, analysed as the group "
                         f"'{MISSING_GROUP}'.")
        singles.append(g)
    out = list(singles)
    if intersections:
        for i in range(len(singles)):
            for j in range(i + 1, len(singles)):
                a, b = singles[i], singles[j]
                inter = intersect(a, b, min_group_size=min_group_size)
                big = sum(c >= min_group_size for c in inter.counts)
                if len(inter.groups) in (len(a.groups), len(b.groups)):
                    notes.append(f"No intersection of '{a.name}' and '{b.name}': one determines the other.")
                elif len(inter.groups) > max_intersection_groups:
                    notes.append(f"No intersection of '{a.name}' and '{b.name}': {len(inter.groups)} groups "
                                 f"(more than max_intersection_groups = {max_intersection_groups}).")
                elif big < 2:
                    notes.append(f"No intersection of '{a.name}' and '{b.name}': fewer than two of its groups have "
                                 f"{min_group_size} rows.")
                else:
                    out.append(inter)
    return GroupingPlan(groupings=tuple(out), notes=tuple(notes))


# ---- tests and small statistics ------------------------------------------------------------------

def fisher_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact test of k1/n1 against k2/n2."""
    from scipy.stats import fisher_exact

    if min(n1, n2) <= 0:
        return float("nan")
    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="two-sided").pvalue)


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def ratio_interval(k1: float, n1: float, k2: float, n2: float, *, confidence: float = 0.95) -> tuple[float, float]:
    """Katz log interval for the ratio of two proportions (k1/n1) / (k2/n2): exp(log ratio ± z·se),
    se² = 1/k1 − 1/n1 + 1/k2 − 1/n2 (the interval of scipy's ``relative_risk``). A zero count gets
    Haldane's correction (0.5 added to each cell of both rows) so the interval stays finite."""
    if min(n1, n2) <= 0:
        return float("nan"), float("nan")
    if min(k1, k2) == 0:
        k1, n1, k2, n2 = k1 + 0.5, n1 + 1.0, k2 + 0.5, n2 + 1.0
    ratio = (k1 / n1) / (k2 / n2)
    se = math.sqrt(max(0.0, 1 / k1 - 1 / n1 + 1 / k2 - 1 / n2))
    z = _z(confidence)
    return float(ratio * math.exp(-z * se)), float(ratio * math.exp(z * se))


def wilson_interval(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n."""
    from .intervals import wilson

    return wilson(k, n, confidence=confidence)


def difference_interval(k1: int, n1: int, k2: int, n2: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) for k1/n1 − k2/n2, built from the two Wilson
    intervals: sound for small groups and rates near 0 or 1, where the Wald interval is not."""
    if min(n1, n2) <= 0:
        return float("nan"), float("nan")
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence=confidence)
    l2, u2 = wilson_interval(k2, n2, confidence=confidence)
    d = p1 - p2
    return float(d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)), float(d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import ttest_ind

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if np.var(a) == 0 and np.var(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    return float(ttest_ind(a, b, equal_var=False).pvalue)


def welch_interval(a: np.ndarray, b: np.ndarray, *, confidence: float = 0.95) -> tuple[float, float]:
    """Welch interval for mean(a) − mean(b) (Welch–Satterthwaite degrees of freedom)."""
    from scipy.stats import t

    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan")
    va, vb = float(np.var(a, ddof=1)) / len(a), float(np.var(b, ddof=1)) / len(b)
    d = float(np.mean(a) - np.mean(b))
    if va + vb == 0:
        return d, d
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(t.ppf(0.5 + confidence / 2, df)) * math.sqrt(va + vb)
    return d - half, d + half


def calibration_in_the_large(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(mean predicted − observed rate, two-sided p) with the observed count's variance under
    calibration, sum p(1−p) (a normal approximation of the Poisson-binomial)."""
    from scipy.stats import norm

    if len(y) == 0:
        return float("nan"), float("nan")
    gap = float(np.mean(p) - np.mean(y))
    var = float(np.sum(p * (1 - p)))
    if var <= 0:
        return gap, (1.0 if gap == 0 else 0.0)
    z = (float(np.sum(p)) - float(np.sum(y))) / math.sqrt(var)
    return gap, float(2 * norm.sf(abs(z)))


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


# ---- disparate impact ----------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupRate:
    """One group's favorable-outcome rate against the reference group."""

    group: str
    count: int
    favorable_count: int
    favorable_rate: float
    air: float  # favorable_rate / reference rate
    p_value: float  # Fisher exact, group vs reference (NaN for the reference itself)
    mean_score: float  # mean P(favorable)
    smd: float  # (mean_score - reference mean_score) / sd of P(favorable) over all rows
    observed_favorable_rate: float  # share of rows whose actual outcome is favorable (NaN if unknown)
    is_reference: bool
    eligible: bool  # group and reference both have at least min_group_size rows
    air_low: float = float("nan")  # Katz log interval of the adverse impact ratio
    air_high: float = float("nan")
    p_adjusted: float = float("nan")  # Holm-adjusted p_value (NaN: not tested; see holm_adjust_impact)


@dataclass(frozen=True)
class DisparateImpactResult:
    grouping: Grouping
    rows: tuple[GroupRate, ...]
    reference_rate: float
    overall_rate: float
    score_sd: float
    min_group_size: int
    confidence: float = 0.95
    n_tests: int = 0  # size of the Holm family p_adjusted was computed over (0: not adjusted)

    def row(self, group: str) -> GroupRate:
        return self.rows[self.grouping.groups.index(group)]


def disparate_impact(grouping: Grouping, favorable: np.ndarray, favorable_score: np.ndarray, *,
                     observed_favorable: np.ndarray | None = None, min_group_size: int = 30,
                     confidence: float = 0.95) -> DisparateImpactResult:
    """Favorable-decision rate per group, adverse impact ratio with its Katz log interval and the
    Fisher p against the reference, and the standardized mean difference of P(favorable) (divided
    by its SD over all rows)."""
    fav = np.asarray(favorable, dtype=bool)
    score = np.asarray(favorable_score, dtype=float)
    obs = None if observed_favorable is None else np.asarray(observed_favorable, dtype=bool)
    sd = float(np.std(score, ddof=1)) if len(score) > 1 else float("nan")
    labels = grouping.labels
    masks = {g: labels == g for g in grouping.groups}
    ref = grouping.reference
    n_ref = int(masks[ref].sum())
    k_ref = int(fav[masks[ref]].sum())
    ref_rate = _ratio(k_ref, n_ref)
    ref_mean = float(score[masks[ref]].mean()) if n_ref else float("nan")
    rows = []
    for g in grouping.groups:
        m = masks[g]
        n = int(m.sum())
        k = int(fav[m].sum())
        rate = _ratio(k, n)
        is_ref = g == ref
        mean = float(score[m].mean()) if n else float("nan")
        lo, hi = (float("nan"), float("nan")) if is_ref or k_ref == 0 else \
            ratio_interval(k, n, k_ref, n_ref, confidence=confidence)
        rows.append(GroupRate(
            group=g, count=n, favorable_count=k, favorable_rate=rate, air=_ratio(rate, ref_rate),
            p_value=float("nan") if is_ref else fisher_p(k, n, k_ref, n_ref),
            mean_score=mean, smd=(mean - ref_mean) / sd if sd > 0 else float("nan"),
            observed_favorable_rate=float(obs[m].mean()) if obs is not None and n else float("nan"),
            is_reference=is_ref, eligible=n >= min_group_size and n_ref >= min_group_size,
            air_low=lo, air_high=hi))
    return DisparateImpactResult(grouping=grouping, rows=tuple(rows), reference_rate=ref_rate,
                                 overall_rate=float(fav.mean()) if len(fav) else float("nan"), score_sd=sd,
                                 min_group_size=min_group_size, confidence=confidence)


@dataclass(frozen=True)
class GroupMean:
    """One group's mean prediction (regression) against the reference group."""

    group: str
    count: int
    mean_prediction: float
    difference: float  # mean_prediction - reference mean
    smd: float  # difference / sd of the prediction over all rows
    p_value: float  # Welch t-test, group vs reference
    mean_observed: float  # mean actual target
    is_reference: bool
    eligible: bool
    smd_low: float = float("nan")  # Welch interval of the difference, over the same SD
    smd_high: float = float("nan")
    p_adjusted: float = float("nan")  # Holm-adjusted p_value (NaN: not tested; see holm_adjust_impact)


@dataclass(frozen=True)
class MeanDifferenceResult:
    grouping: Grouping
    rows: tuple[GroupMean, ...]
    reference_mean: float
    prediction_sd: float
    higher_is_favorable: bool
    min_group_size: int
    n_tests: int = 0  # size of the Holm family p_adjusted was computed over (0: not adjusted)

    def row(self, group: str) -> GroupMean:
        return self.rows[self.grouping.groups.index(group)]


def mean_difference(grouping: Grouping, prediction: np.ndarray, *, observed: np.ndarray | None = None,
                    higher_is_favorable: bool = True, min_group_size: int = 30,
                    confidence: float = 0.95) -> MeanDifferenceResult:
    """Standardized mean difference of a prediction between each group and the reference
    (divided by the prediction's SD over all rows), with a Welch t-test and interval."""
    pred = np.asarray(prediction, dtype=float)
    obs = None if observed is None else np.asarray(observed, dtype=float)
    sd = float(np.std(pred, ddof=1)) if len(pred) > 1 else float("nan")
    ref = grouping.reference
    ref_vals = pred[grouping.labels == ref]
    ref_mean = float(ref_vals.mean()) if len(ref_vals) else float("nan")
    rows = []
    for g in grouping.groups:
        m = grouping.labels == g
        vals = pred[m]
        mean = float(vals.mean()) if len(vals) else float("nan")
        is_ref = g == ref
        lo, hi = (float("nan"), float("nan")) if is_ref or not sd > 0 else \
            tuple(v / sd for v in welch_interval(vals, ref_vals, confidence=confidence))
        rows.append(GroupMean(
            group=g, count=int(m.sum()), mean_prediction=mean, difference=mean - ref_mean,
            smd=(mean - ref_mean) / sd if sd > 0 else float("nan"),
            p_value=float("nan") if is_ref else welch_p(vals, ref_vals),
            mean_observed=float(obs[m].mean()) if obs is not None and m.any() else float("nan"),
            is_reference=is_ref, eligible=int(m.sum()) >= min_group_size and len(ref_vals) >= min_group_size,
            smd_low=lo, smd_high=hi))
    return MeanDifferenceResult(grouping=grouping, rows=tuple(rows), reference_mean=ref_mean, prediction_sd=sd,
                                higher_is_favorable=higher_is_favorable, min_group_size=min_group_size)


# ---- error parity ------------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupErrors:
    """One group's confusion counts, fairlearn's rates, and calibration in the large.

    Rates are with respect to the positive class (1 in ``y_true``); a rate whose denominator is
    empty is NaN.
    """

    group: str
    count: int
    n_pos: int
    n_neg: int
    tp: int
    fn: int
    fp: int
    tn: int
    selection_rate: float
    tpr: float
    fpr: float
    fnr: float
    accuracy: float
    fnr_gap: float  # fnr - reference fnr
    fnr_p: float  # Fisher exact on the positive rows, group vs reference
    fpr_gap: float
    fpr_p: float  # Fisher exact on the negative rows
    mean_predicted: float
    observed_rate: float
    calibration_gap: float  # mean predicted - observed rate
    calibration_p: float
    ece: float
    is_reference: bool
    eligible: bool
    fnr_gap_low: float = float("nan")  # Newcombe interval of the gap
    fnr_gap_high: float = float("nan")
    fpr_gap_low: float = float("nan")
    fpr_gap_high: float = float("nan")
    calibration_low: float = float("nan")  # normal interval of the calibration gap
    calibration_high: float = float("nan")
    # Holm-adjusted p-values (NaN: not tested, e.g. too few rows of the actual class; see holm_adjust_errors)
    fnr_p_adjusted: float = float("nan")
    fpr_p_adjusted: float = float("nan")
    calibration_p_adjusted: float = float("nan")


@dataclass(frozen=True)
class ErrorParityResult:
    """Error rates by group and two equalized-odds differences (STACK pitfall 14):
    ``equalized_odds_difference`` is fairlearn's ``equalized_odds_difference`` over *all* groups of
    the grouping (``eod_all_groups``: tiny groups included, no interval), and
    ``equalized_odds_difference_eligible`` the same quantity over the groups with enough rows
    (``eod_groups``), with a bootstrap interval (``eod_low``, ``eod_high``)."""

    grouping: Grouping
    rows: tuple[GroupErrors, ...]
    equalized_odds_difference: float  # fairlearn's, over every group
    equalized_odds_difference_eligible: float  # over eligible groups with enough rows of each class
    eod_low: float  # bootstrap interval of the eligible one
    eod_high: float
    eod_groups: tuple[str, ...]  # the eligible groups
    eod_all_groups: tuple[str, ...]
    tpr_difference: float  # eligible groups
    fpr_difference: float
    n_resamples: int
    confidence: float
    min_group_size: int
    min_class_rows: int
    n_rate_tests: int = 0  # size of the Holm family of the FNR and FPR comparisons (0: not adjusted)
    n_calibration_tests: int = 0  # size of the Holm family of the calibration tests

    def row(self, group: str) -> GroupErrors:
        return self.rows[self.grouping.groups.index(group)]


def _confusion_by_group(y_true: np.ndarray, y_pred: np.ndarray,
                        labels: np.ndarray) -> dict[str, tuple[int, int, int, int]]:
    """(tp, fn, fp, tn) per group from fairlearn's ``MetricFrame`` over sklearn's confusion matrix.

    One metric returning the whole matrix: fairlearn's per-metric overhead grows with the rows, and
    every rate of the report follows from these four counts.
    """
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import confusion_matrix

    def cells(y_t, y_p):
        return confusion_matrix(y_t, y_p, labels=[0, 1]).ravel()  # tn, fp, fn, tp

    mf = MetricFrame(metrics={"cells": cells}, y_true=y_true, y_pred=y_pred,
                     sensitive_features=pd.Series(labels, name="group"))
    out = {}
    for g, c in mf.by_group["cells"].items():
        tn, fp, fn, tp = (int(v) for v in c)
        out[str(g)] = (tp, fn, fp, tn)
    return out


def _gaps(tpr: np.ndarray, fpr: np.ndarray) -> np.ndarray:
    """max over (TPR, FPR) of max − min across groups, along the last axis."""
    return np.maximum(np.nanmax(tpr, axis=-1) - np.nanmin(tpr, axis=-1),
                      np.nanmax(fpr, axis=-1) - np.nanmin(fpr, axis=-1))


def error_parity(grouping: Grouping, y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray, *,
                 min_group_size: int = 30, min_class_rows: int = 10, calibration_bins: int = 5,
                 n_resamples: int = 200, confidence: float = 0.95,
                 rng: np.random.Generator | int = 0) -> ErrorParityResult:
    """Error rates by group (fairlearn ``MetricFrame``), gaps against the reference with Fisher
    tests and Newcombe intervals, calibration in the large and ECE by group, fairlearn's
    equalized-odds difference over every group, and the same difference over the groups with
    ``min_group_size`` rows and ``min_class_rows`` of each class, with a percentile bootstrap
    interval (rows resampled within each group, so group sizes are fixed)."""
    from .calibration import expected_calibration_error

    y = np.asarray(y_true, dtype=int)
    yp = np.asarray(y_pred, dtype=int)
    p = np.asarray(score, dtype=float)
    labels = grouping.labels
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    cells = _confusion_by_group(y, yp, labels)
    ref = grouping.reference
    rtp, rfn, rfp, rtn = cells[ref]
    ref_fnr, ref_fpr = _ratio(rfn, rtp + rfn), _ratio(rfp, rfp + rtn)
    ref_n = sum(cells[ref])
    rows = []
    for g in grouping.groups:
        tp, fn, fp, tn = cells[g]
        m = labels == g
        n_pos, n_neg, n = tp + fn, fp + tn, tp + fn + fp + tn
        is_ref = g == ref
        gap, cal_p = calibration_in_the_large(y[m], p[m])
        cal_half = _z(confidence) * math.sqrt(float(np.sum(p[m] * (1 - p[m])))) / n if n else float("nan")
        fnr, fpr = _ratio(fn, n_pos), _ratio(fp, n_neg)
        fnr_ci = (float("nan"), float("nan")) if is_ref else \
            difference_interval(fn, n_pos, rfn, rtp + rfn, confidence=confidence)
        fpr_ci = (float("nan"), float("nan")) if is_ref else \
            difference_interval(fp, n_neg, rfp, rfp + rtn, confidence=confidence)
        rows.append(GroupErrors(
            group=g, count=n, n_pos=n_pos, n_neg=n_neg, tp=tp, fn=fn, fp=fp, tn=tn,
            selection_rate=_ratio(tp + fp, n), tpr=_ratio(tp, n_pos), fpr=fpr, fnr=fnr, accuracy=_ratio(tp + tn, n),
            fnr_gap=fnr - ref_fnr, fnr_p=float("nan") if is_ref else fisher_p(fn, n_pos, rfn, rtp + rfn),
            fpr_gap=fpr - ref_fpr, fpr_p=float("nan") if is_ref else fisher_p(fp, n_neg, rfp, rfp + rtn),
            mean_predicted=float(p[m].mean()) if n else float("nan"),
            observed_rate=float(y[m].mean()) if n else float("nan"), calibration_gap=gap, calibration_p=cal_p,
            ece=expected_calibration_error(y[m], p[m], n_bins=min(calibration_bins, n)) if n else float("nan"),
            is_reference=is_ref, eligible=n >= min_group_size and ref_n >= min_group_size,
            fnr_gap_low=fnr_ci[0], fnr_gap_high=fnr_ci[1], fpr_gap_low=fpr_ci[0], fpr_gap_high=fpr_ci[1],
            calibration_low=gap - cal_half, calibration_high=gap + cal_half))

    from fairlearn.metrics import equalized_odds_difference

    present = tuple(r.group for r in rows if r.count > 0)
    eod_all = float(equalized_odds_difference(y, yp, sensitive_features=pd.Series(labels, name="group"))) \
        if len(present) >= 2 else float("nan")
    eod_groups = tuple(r.group for r in rows if r.count >= min_group_size and r.n_pos >= min_class_rows
                       and r.n_neg >= min_class_rows)
    eod = lo = hi = tpr_d = fpr_d = float("nan")
    if len(eod_groups) >= 2:
        # fairlearn's equalized_odds_difference (between groups, worst case) over these groups
        sel = [grouping.groups.index(g) for g in eod_groups]
        tprs = np.array([rows[i].tpr for i in sel])
        fprs = np.array([rows[i].fpr for i in sel])
        tpr_d, fpr_d = float(tprs.max() - tprs.min()), float(fprs.max() - fprs.min())
        eod = max(tpr_d, fpr_d)
        if n_resamples > 0:
            # resampling rows within a group = multinomial counts of its four confusion cells
            boot_tpr = np.empty((n_resamples, len(sel)))
            boot_fpr = np.empty((n_resamples, len(sel)))
            for j, g in enumerate(eod_groups):
                c = np.array(cells[g], dtype=float)
                draws = rng.multinomial(int(c.sum()), c / c.sum(), size=n_resamples).astype(float)
                with np.errstate(invalid="ignore", divide="ignore"):
                    boot_tpr[:, j] = draws[:, 0] / (draws[:, 0] + draws[:, 1])
                    boot_fpr[:, j] = draws[:, 2] / (draws[:, 2] + draws[:, 3])
            gaps = _gaps(boot_tpr, boot_fpr)
            alpha = (1 - confidence) / 2
            lo, hi = (float(v) for v in np.nanquantile(gaps, [alpha, 1 - alpha]))
    return ErrorParityResult(grouping=grouping, rows=tuple(rows), equalized_odds_difference=eod_all,
                             equalized_odds_difference_eligible=eod, eod_low=lo, eod_high=hi, eod_groups=eod_groups,
                             eod_all_groups=present, tpr_difference=tpr_d, fpr_difference=fpr_d,
                             n_resamples=n_resamples, confidence=confidence, min_group_size=min_group_size,
                             min_class_rows=min_class_rows)


# ---- multiple testing ----------------------------------------------------------------------------

ImpactResult = TypeVar("ImpactResult", DisparateImpactResult, MeanDifferenceResult)


def holm_adjust_impact(results: Sequence[ImpactResult]) -> tuple[ImpactResult, ...]:
    """The results with ``p_adjusted`` set on every group compared with its reference (eligible,
    finite p): Holm's adjustment over one family of all those groups, of every grouping together."""
    tests = [((i, j), r.p_value) for i, res in enumerate(results) for j, r in enumerate(res.rows)
             if r.eligible and not r.is_reference and math.isfinite(r.p_value)]
    adjusted = holm_by_key(tests)
    nan = float("nan")
    return tuple(replace(res, n_tests=len(tests),
                         rows=tuple(replace(r, p_adjusted=adjusted.get((i, j), nan)) for j, r in enumerate(res.rows)))
                 for i, res in enumerate(results))


def holm_adjust_errors(results: Sequence[ErrorParityResult]) -> tuple[ErrorParityResult, ...]:
    """The results with Holm-adjusted p-values in two families over every grouping together: the
    FNR and FPR comparisons made (an eligible group and its reference each have ``min_class_rows``
    rows of the actual class, finite p), and the calibration tests of the eligible groups."""
    rates: list[tuple[tuple[int, int, str], float]] = []
    calibration: list[tuple[tuple[int, int], float]] = []
    for i, res in enumerate(results):
        ref = res.row(res.grouping.reference)
        for j, r in enumerate(res.rows):
            if not r.eligible:
                continue
            if math.isfinite(r.calibration_p):
                calibration.append(((i, j), r.calibration_p))
            if r.is_reference:
                continue
            if min(r.n_pos, ref.n_pos) >= res.min_class_rows and math.isfinite(r.fnr_p):
                rates.append(((i, j, "fnr"), r.fnr_p))
            if min(r.n_neg, ref.n_neg) >= res.min_class_rows and math.isfinite(r.fpr_p):
                rates.append(((i, j, "fpr"), r.fpr_p))
    rate_p, cal_p = holm_by_key(rates), holm_by_key(calibration)
    nan = float("nan")
    return tuple(replace(res, n_rate_tests=len(rates), n_calibration_tests=len(calibration),
                         rows=tuple(replace(r, fnr_p_adjusted=rate_p.get((i, j, "fnr"), nan),
                                            fpr_p_adjusted=rate_p.get((i, j, "fpr"), nan),
                                            calibration_p_adjusted=cal_p.get((i, j), nan))
                                    for j, r in enumerate(res.rows)))
                 for i, res in enumerate(results))
