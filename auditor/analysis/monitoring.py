"""Production monitoring numerics: reference distributions over the drift check's bins, their shift
on new data, and group favourable rates on the fairness check's groupings.

Pure numerics: arrays and frames in, frozen results out. The bins are those of ``analysis.drift``
(``quantile_edges`` / ``numeric_counts`` for a numeric column, the levels of ``categorical_bins``
for a categorical one) and the PSI and its chi-square test are ``drift.psi`` and
``drift.homogeneity_pvalue``, so a column checked against its stored reference gets exactly the
number the drift check computes from the raw samples. Groups are labelled as
``group_metrics.make_groupings`` labels them and their rates come from
``group_metrics.disparate_impact``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .drift import (
    DEFAULT_EPSILON,
    MISSING_BIN,
    Bins,
    categorical_bins,
    homogeneity_pvalue,
    level_strings,
    numeric_counts,
    numeric_labels,
    psi,
    quantile_edges,
)
from .group_metrics import INTERSECTION, Grouping, band_labels, level_text

NUMERIC, CATEGORICAL = "numeric", "categorical"


# ---- reference distributions -------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnReference:
    """One column's reference distribution: its bins (the last one holds missing values) and how
    many reference rows fell into each."""

    name: str
    kind: str  # "numeric" | "categorical"
    source: str  # the rows the reference was taken from ("train", "test")
    labels: tuple[str, ...]
    counts: tuple[float, ...]
    edges: tuple[float, ...] = ()  # numeric: inner bin edges, bins right-closed, outer bins open
    mean: float = float("nan")  # numeric: of the finite reference values
    sd: float = float("nan")

    @property
    def n(self) -> int:
        return int(round(sum(self.counts)))

    @property
    def shares(self) -> np.ndarray:
        return Bins(self.labels, np.asarray(self.counts, dtype=float), np.zeros(len(self.counts))).reference_share

    @property
    def levels(self) -> tuple[str, ...]:
        """Categorical: the levels seen in the reference (the labels without the missing bin)."""
        return self.labels[:-1] if self.kind == CATEGORICAL else ()


def _numbers(values: Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)


def reference_bins(values: Any, *, name: str, kind: str, source: str, n_bins: int = 10) -> ColumnReference:
    """The reference distribution of a column over the drift check's bins: ``n_bins`` quantiles of
    these values (numeric) or their levels (categorical), plus the missing bin."""
    if kind == NUMERIC:
        x = _numbers(values)
        edges = quantile_edges(x, n_bins=n_bins)
        finite = x[np.isfinite(x)]
        return ColumnReference(name=name, kind=NUMERIC, source=source, labels=numeric_labels(edges),
                               counts=tuple(float(c) for c in numeric_counts(x, edges)),
                               edges=tuple(float(e) for e in edges),
                               mean=float(finite.mean()) if finite.size else float("nan"),
                               sd=float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan"))
    s = pd.Series(values).reset_index(drop=True)
    b = categorical_bins(s, s.iloc[:0])
    return ColumnReference(name=name, kind=CATEGORICAL, source=source, labels=b.labels,
                           counts=tuple(float(c) for c in b.reference))


# ---- shift of new data against a reference -----------------------------------------------------

@dataclass(frozen=True)
class ColumnShift:
    """New data against a column's reference over the reference's bins (a level the reference
    never had is a bin of its own, as in the drift check)."""

    name: str
    kind: str
    n_reference: int
    n_current: int
    psi: float
    p_value: float  # chi-square test of the bin counts (reference vs current)
    labels: tuple[str, ...]
    reference_share: tuple[float, ...]
    current_share: tuple[float, ...]
    unseen: tuple[str, ...] = ()  # categorical levels absent from the reference
    mean_reference: float = float("nan")
    mean_current: float = float("nan")
    sd_reference: float = float("nan")

    @property
    def largest_change(self) -> tuple[str, float, float] | None:
        """The bin whose share moved most: (label, reference share, current share)."""
        if not self.labels:
            return None
        i = int(np.argmax(np.abs(np.subtract(self.current_share, self.reference_share))))
        return self.labels[i], self.reference_share[i], self.current_share[i]

    @property
    def mean_shift_sd(self) -> float:
        """The move of the mean in reference standard deviations (numeric)."""
        if not (math.isfinite(self.mean_current) and math.isfinite(self.sd_reference)) or self.sd_reference <= 0:
            return float("nan")
        return (self.mean_current - self.mean_reference) / self.sd_reference


def _current_counts(ref: ColumnReference,
                    values: Any) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, tuple[str, ...]]:
    """(labels, reference counts, current counts, unseen levels) over the reference's bins."""
    if ref.kind == NUMERIC:
        cur = numeric_counts(_numbers(values), np.asarray(ref.edges, dtype=float))
        return ref.labels, np.asarray(ref.counts, dtype=float), cur.astype(float), ()
    s = level_strings(pd.Series(values).reset_index(drop=True))
    counts = s.value_counts(dropna=True)
    levels = ref.levels
    known = set(levels)
    extra = sorted((str(lv) for lv in counts.index if str(lv) not in known), key=lambda lv: (-int(counts[lv]), lv))
    labels = levels + tuple(extra) + (MISSING_BIN,)
    ref_counts = np.asarray(ref.counts[:-1] + (0.0,) * len(extra) + ref.counts[-1:], dtype=float)
    cur = np.asarray([float(counts.get(lv, 0)) for lv in levels + tuple(extra)] + [float(s.isna().sum())])
    return labels, ref_counts, cur, tuple(extra)


def column_shift(ref: ColumnReference, values: Any, *, epsilon: float = DEFAULT_EPSILON) -> ColumnShift:
    """PSI (``drift.psi``, shares floored at ``epsilon``) and the chi-square p-value of new values
    against a stored reference distribution."""
    labels, rc, cc, unseen = _current_counts(ref, values)
    bins = Bins(labels, rc, cc)
    rs, cs = bins.reference_share, bins.current_share
    mean_cur = float("nan")
    if ref.kind == NUMERIC:
        x = _numbers(values)
        finite = x[np.isfinite(x)]
        mean_cur = float(finite.mean()) if finite.size else float("nan")
    return ColumnShift(name=ref.name, kind=ref.kind, n_reference=int(round(rc.sum())), n_current=int(round(cc.sum())),
                       psi=psi(rs, cs, epsilon=epsilon) if cc.sum() > 0 else float("nan"),
                       p_value=homogeneity_pvalue(rc, cc), labels=labels,
                       reference_share=tuple(float(v) for v in rs), current_share=tuple(float(v) for v in cs),
                       unseen=unseen, mean_reference=ref.mean, mean_current=mean_cur, sd_reference=ref.sd)


# ---- groups --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupingSpec:
    """How to label rows with the groups of one fairness grouping: per column either its levels
    (``None``) or band cut points, the groups the audit saw and its reference group."""

    name: str
    columns: tuple[str, ...]
    cuts: tuple[tuple[float, ...] | None, ...]
    groups: tuple[str, ...]
    reference: str


def group_labels(frame: pd.DataFrame, spec: GroupingSpec) -> np.ndarray:
    """Each row's group, labelled exactly as ``make_groupings`` labels the test rows."""
    parts = []
    for col, cuts in zip(spec.columns, spec.cuts):
        s = frame[col]
        if cuts is None:  # level_text of each distinct value, then per row
            codes, uniques = pd.factorize(s, use_na_sentinel=False)
            texts = np.array([level_text(v) for v in np.asarray(uniques, dtype=object)], dtype=object)
            parts.append(texts[codes] if len(codes) else np.array([], dtype=object))
        else:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            parts.append(band_labels(x, list(cuts))[0])
    labels = parts[0]
    for more in parts[1:]:
        labels = np.char.add(np.char.add(labels.astype(str), INTERSECTION), more.astype(str)).astype(object)
    return np.asarray(labels, dtype=object)


def grouping_of(frame: pd.DataFrame, spec: GroupingSpec) -> Grouping:
    """The grouping of new rows: the audit's groups in its order (those present), then groups the
    audit never saw; the audit's reference group."""
    labels = group_labels(frame, spec)
    present = set(pd.unique(labels))
    groups = [g for g in spec.groups if g in present or g == spec.reference]  # the reference, even when absent
    groups += sorted(str(g) for g in present if g not in set(spec.groups))
    split = INTERSECTION if len(spec.columns) > 1 else None
    parts = tuple(tuple(g.split(split)) if split else (g,) for g in groups)
    counts = tuple(int((labels == g).sum()) for g in groups)
    return Grouping(name=spec.name, columns=spec.columns, labels=labels, groups=tuple(groups), parts=parts,
                    counts=counts, reference=spec.reference, reference_source="monitoring baseline",
                    method="intersection" if split else "levels")


def cuts_reproduce(frame: pd.DataFrame, spec: GroupingSpec, labels: Sequence[Any]) -> bool:
    """Whether ``spec`` labels the rows of ``frame`` as the audit did (``labels``)."""
    return bool(np.array_equal(group_labels(frame, spec).astype(str), np.asarray(labels).astype(str)))
