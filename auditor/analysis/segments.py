"""Weak segments: slices of the data (one feature, or a pair) where the model's error is
significantly worse than elsewhere.

The per-row error that is tested is the loss *in excess of rows that got a similar prediction*:

* classification: log loss minus its expectation under the model's own probability
  (the binary entropy of p), centred within quantile bins of the prediction;
* regression: absolute error, centred within quantile bins of the prediction.

A perfectly calibrated classifier has zero expected excess everywhere, so segments that merely
hold harder-to-predict rows (probabilities near 0.5) are not reported; a regressor whose noise
grows with its prediction is not reported either (that is heteroscedasticity, which
``residual.analysis`` covers). A one-sided Welch t-test compares the excess inside a segment with
the excess outside it, for every single-feature and pair segment with enough support, and the
Benjamini-Hochberg procedure controls the false discovery rate over all of them.

The raw metrics shown for a segment (accuracy, log loss, AUC; MAE, RMSE) are computed directly on
its rows, with normal-approximation confidence intervals (Wilson for accuracy, Hanley-McNeil for
AUC).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .intervals import wilson
from .multiple_testing import bh
from .sampling import level_key

EPS = 1e-15  # probability clipping for log loss


# ---- number formatting shared by rule and segment text -------------------------------------------

def fmt_number(x: Any) -> str:
    """Compact, readable text for a number in a rule (3 significant digits, no exponent for
    everyday magnitudes)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e9:
        return str(int(v))
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 1e-3:
        return f"{v:.3g}"
    return f"{v:.2e}"


# ---- feature coding: a value -> the segment it falls in ----------------------------------------

@dataclass(frozen=True)
class FeatureCoding:
    """Integer segment codes for one feature.

    ``kind`` is ``categorical`` (levels), ``discrete`` (a numeric column with few distinct values,
    one code per value) or ``binned`` (quantile bins ``[edge_i-1, edge_i)``, outer bins open).
    ``labels`` holds one condition per code; the last code is always "missing". Values not seen
    when the coding was fitted get code -1 and belong to no segment.
    """

    feature: str
    kind: str
    levels: tuple[Any, ...]
    edges: tuple[float, ...]
    labels: tuple[str, ...]

    @property
    def n_codes(self) -> int:
        return len(self.labels)

    @property
    def missing_code(self) -> int:
        return len(self.labels) - 1

    def codes(self, values: pd.Series) -> np.ndarray:
        missing = values.isna().to_numpy()
        if self.kind == "binned":
            v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            out = np.searchsorted(np.asarray(self.edges, dtype=float), v, side="right").astype(np.int64)
        elif self.kind == "discrete":
            v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            lv = np.asarray(self.levels, dtype=float)
            if len(lv) == 0:  # no observed value (an all-missing feature): every row is "missing" or unseen
                out = np.full(len(v), -1, dtype=np.int64)
            else:
                pos = np.clip(np.searchsorted(lv, v), 0, len(lv) - 1)
                out = np.where(lv[pos] == v, pos, -1).astype(np.int64)
        else:
            cat = pd.Categorical(values.astype(object), categories=pd.Index(self.levels, dtype=object))
            out = np.asarray(cat.codes, dtype=np.int64)
        out[missing] = self.missing_code
        return out

    def id_value(self, code: int) -> str:
        """The segment's value in a finding id, stable across samples of the same data: the level
        (categorical/discrete) or the bin's position ``bin2of5`` (binned), never the sample-dependent
        quantile edges of its range text."""
        if code == self.missing_code:
            return "missing"
        if self.kind == "categorical":
            return str(self.levels[code])
        if self.kind == "discrete":
            return fmt_number(self.levels[code])
        return f"bin{code + 1}of{len(self.edges) + 1}"

    def group_value(self, code: int) -> str:
        """The level (categorical/discrete) or the range text (binned) of one code."""
        if code == self.missing_code:
            return "missing"
        if self.kind in ("categorical", "discrete"):
            return str(self.levels[code])
        return self.labels[code].split(" ", 1)[1] if " " in self.labels[code] else self.labels[code]


def fit_coding(values: pd.Series, *, feature: str, categorical: bool, n_bins: int) -> FeatureCoding:
    """Segments of one feature: its levels, or ``n_bins`` quantile bins of its values."""
    present = values.dropna()
    if categorical:
        levels = tuple(sorted(present.astype(object).unique().tolist(), key=level_key))
        labels = tuple(f"{feature} = {lv}" for lv in levels)
        return FeatureCoding(feature, "categorical", levels, (), labels + (f"{feature} is missing",))
    v = pd.to_numeric(present, errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    distinct = np.unique(v)
    if distinct.size <= n_bins:
        levels = tuple(float(x) for x in distinct)
        labels = tuple(f"{feature} = {fmt_number(x)}" for x in levels)
        return FeatureCoding(feature, "discrete", levels, (), labels + (f"{feature} is missing",))
    qs = np.quantile(v, np.arange(1, n_bins) / n_bins)
    edges = np.unique(qs)
    edges = edges[edges > distinct[0]]  # an edge at the minimum would leave the first bin empty
    if edges.size == 0:  # a spike at the minimum (e.g. mostly zeros): split it from the rest
        edges = distinct[1:2]
    bin_labels: list[str] = []
    for i in range(edges.size + 1):
        if i == 0:
            bin_labels.append(f"{feature} < {fmt_number(edges[0])}")
        elif i == edges.size:
            bin_labels.append(f"{feature} >= {fmt_number(edges[-1])}")
        else:
            bin_labels.append(f"{feature} in [{fmt_number(edges[i - 1])}, {fmt_number(edges[i])})")
    return FeatureCoding(feature, "binned", (), tuple(float(e) for e in edges),
                         tuple(bin_labels) + (f"{feature} is missing",))


# ---- per-row loss and its excess over rows with a similar prediction -----------------------------

@dataclass(frozen=True)
class RowLoss:
    """Per-row loss and the tested excess.

    ``loss``: log loss of the true class (classification) or absolute error (regression).
    ``excess``: ``loss`` minus what is expected for rows with a similar prediction (see module doc).
    """

    task: str
    loss: np.ndarray
    excess: np.ndarray
    prediction_bins: int


def binary_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def log_loss_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """-log of the probability given to the true class, per row."""
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    y = np.asarray(y).astype(int)
    return -np.log(np.where(y == 1, p, 1 - p))


def log_loss_rows_k(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """k classes: -log of the probability given to the true class (``y``: class index), per row."""
    P = np.clip(np.asarray(proba, dtype=float), EPS, 1.0)
    y = np.asarray(y).astype(int)
    return -np.log(P[np.arange(len(y)), y])


def entropy_rows(proba: np.ndarray) -> np.ndarray:
    """k classes: the expected log loss of a row if its predicted distribution were right."""
    P = np.clip(np.asarray(proba, dtype=float), EPS, 1.0)
    return -(np.asarray(proba, dtype=float) * np.log(P)).sum(axis=1)


def is_proba(score: np.ndarray) -> bool:
    """A 2-d score is a k-class probability matrix (rows x classes, in the model's class order)."""
    return np.ndim(score) == 2


def quantile_codes(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Rank-based quantile bin of each value (ties share a bin)."""
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    ranks = stats.rankdata(x, method="min") - 1
    return np.minimum((ranks * n_bins) // x.size, n_bins - 1).astype(np.int64)


def row_loss(y: np.ndarray, score: np.ndarray, *, task: str, prediction_bins: int = 10) -> RowLoss:
    """``score``: P(positive) (binary), an n x k probability matrix with ``y`` the class index
    (k classes: loss minus the entropy of the row's distribution, binned by the predicted class's
    probability), or the prediction (regression)."""
    score = np.asarray(score, dtype=float)
    if task == "classification" and is_proba(score):
        loss = log_loss_rows_k(y, score)
        base = loss - entropy_rows(score)
        binned = score.max(axis=1)
    elif task == "classification":
        loss = log_loss_rows(y, score)
        base = loss - binary_entropy(score)
        binned = score
    else:
        loss = np.abs(np.asarray(y, dtype=float) - score)
        base = loss.copy()
        binned = score
    bins = quantile_codes(binned, prediction_bins)
    sums = np.bincount(bins, weights=base, minlength=prediction_bins)
    counts = np.bincount(bins, minlength=prediction_bins)
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return RowLoss(task=task, loss=loss, excess=base - means[bins], prediction_bins=prediction_bins)


# ---- vectorised scan of segment statistics -------------------------------------------------------

@dataclass(frozen=True)
class SegmentScan:
    """Welch statistics of the excess inside vs outside every tested segment.

    Segment ``i`` is ``keys[i]``: a tuple of (feature index, code) conditions (one or two).
    """

    keys: tuple[tuple[tuple[int, int], ...], ...]
    n: np.ndarray
    mean_in: np.ndarray
    mean_out: np.ndarray
    t: np.ndarray
    df: np.ndarray
    p_value: np.ndarray
    p_adjusted: np.ndarray


def welch_greater(n1: np.ndarray, s1: np.ndarray, q1: np.ndarray, n2: np.ndarray, s2: np.ndarray,
                  q2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One-sided Welch t-test (group 1 mean > group 2 mean) from counts, sums and sums of squares.

    Returns (mean1, mean2, t, df, p)."""
    n1 = np.asarray(n1, dtype=float)
    n2 = np.asarray(n2, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        m1, m2 = s1 / n1, s2 / n2
        v1 = np.maximum(q1 - n1 * m1 ** 2, 0) / (n1 - 1)
        v2 = np.maximum(q2 - n2 * m2 ** 2, 0) / (n2 - 1)
        a, b = v1 / n1, v2 / n2
        se = np.sqrt(a + b)
        t = (m1 - m2) / se
        df = (a + b) ** 2 / (a ** 2 / (n1 - 1) + b ** 2 / (n2 - 1))
    p = stats.t.sf(t, df)
    p = np.where(np.isfinite(p), p, np.where(m1 > m2, 0.0, 1.0))
    return m1, m2, t, df, p


def scan_segments(codes: Sequence[np.ndarray], n_codes: Sequence[int], excess: np.ndarray, *,
                  min_support: int, pairs: Sequence[tuple[int, int]] = ()) -> SegmentScan:
    """Test every single-feature segment and every cell of the given feature pairs that has at
    least ``min_support`` rows (and leaves as many outside), and BH-adjust the p-values."""
    e = np.asarray(excess, dtype=float)
    e = e - e.mean()  # centring keeps the sums of squares accurate
    N, S, Q = e.size, float(e.sum()), float((e ** 2).sum())
    keys: list[tuple[tuple[int, int], ...]] = []
    ns: list[np.ndarray] = []
    ss: list[np.ndarray] = []
    qs: list[np.ndarray] = []

    def add(code: np.ndarray, k: int, decode, parent_n: list[np.ndarray] | None = None) -> None:
        ok = code >= 0
        n = np.bincount(code[ok], minlength=k)
        s = np.bincount(code[ok], weights=e[ok], minlength=k)
        q = np.bincount(code[ok], weights=e[ok] ** 2, minlength=k)
        keep = (n >= min_support) & (N - n >= min_support)
        if parent_n is not None:  # a pair cell equal to one of its parents adds nothing
            for pn in parent_n:
                keep &= n < pn
        idx = np.flatnonzero(keep)
        keys.extend(decode(i) for i in idx)
        ns.append(n[idx])
        ss.append(s[idx])
        qs.append(q[idx])

    singles_n: list[np.ndarray] = []
    for j, (c, k) in enumerate(zip(codes, n_codes)):
        c = np.asarray(c, dtype=np.int64)
        add(c, k, lambda i, j=j: ((j, int(i)),))
        singles_n.append(np.bincount(c[c >= 0], minlength=k))
    for a, b in pairs:
        ca, cb = np.asarray(codes[a]), np.asarray(codes[b])
        kb = n_codes[b]
        combined = np.where((ca >= 0) & (cb >= 0), ca * kb + cb, -1)
        k = n_codes[a] * kb
        cells = np.arange(k)
        parent = [singles_n[a][cells // kb], singles_n[b][cells % kb]]
        add(combined, k, lambda i, a=a, b=b, kb=kb: ((a, int(i) // kb), (b, int(i) % kb)), parent)

    n = np.concatenate(ns) if ns else np.zeros(0)
    s = np.concatenate(ss) if ss else np.zeros(0)
    q = np.concatenate(qs) if qs else np.zeros(0)
    m1, m2, t, df, p = welch_greater(n, s, q, N - n, S - s, Q - q)
    mean = float(np.asarray(excess, dtype=float).mean()) if N else 0.0
    return SegmentScan(keys=tuple(keys), n=n.astype(int), mean_in=m1 + mean, mean_out=m2 + mean, t=t, df=df,
                       p_value=p, p_adjusted=bh(p))


# ---- metrics with confidence intervals -----------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


def mean_interval(x: np.ndarray, confidence: float) -> Interval:
    x = np.asarray(x, dtype=float)
    m = float(x.mean()) if x.size else float("nan")
    if x.size < 2:
        return Interval(m, float("nan"), float("nan"))
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Interval(m, m - half, m + half)


def rmse_interval(sq: np.ndarray, confidence: float) -> Interval:
    mi = mean_interval(sq, confidence)
    return Interval(math.sqrt(max(mi.value, 0.0)), math.sqrt(max(mi.low, 0.0)) if math.isfinite(mi.low) else mi.low,
                    math.sqrt(max(mi.high, 0.0)) if math.isfinite(mi.high) else mi.high)


def wilson_interval(k: int, n: int, confidence: float) -> Interval:
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    low, high = wilson(k, n, confidence=confidence)
    return Interval(k / n, low, high)


def auc_interval(y: np.ndarray, score: np.ndarray, confidence: float) -> Interval:
    """ROC AUC (Mann-Whitney) with the Hanley-McNeil standard error."""
    y = np.asarray(y).astype(int)
    n1, n0 = int(y.sum()), int((1 - y).sum())
    if n1 == 0 or n0 == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    ranks = stats.rankdata(score)
    auc = float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc ** 2) + (n0 - 1) * (q2 - auc ** 2)) / (n1 * n0)
    half = float(stats.norm.ppf(0.5 + confidence / 2) * math.sqrt(max(var, 0.0)))
    return Interval(auc, max(auc - half, 0.0), min(auc + half, 1.0))


@dataclass(frozen=True)
class SliceMetrics:
    """Raw error metrics on a set of rows. Classification fills accuracy, log_loss, auc,
    majority_rate; regression fills mae, rmse, bias (mean of actual minus predicted)."""

    n: int
    accuracy: Interval | None = None
    log_loss: Interval | None = None
    auc: Interval | None = None
    majority_rate: float | None = None
    mae: Interval | None = None
    rmse: Interval | None = None
    bias: Interval | None = None


def slice_metrics(y: np.ndarray, score: np.ndarray, *, task: str, threshold: float, confidence: float,
                  min_class_rows: int = 5) -> SliceMetrics:
    """Binary: accuracy at ``threshold``, log loss, AUC. k classes (``score`` an n x k probability
    matrix, ``y`` the class index): accuracy of the most probable class, k-class log loss, the
    majority-class rate; no AUC."""
    n = len(score)
    if task == "classification" and is_proba(score):
        y = np.asarray(y).astype(int)
        P = np.asarray(score, dtype=float)
        correct = int((P.argmax(axis=1) == y).sum()) if n else 0
        majority = float(np.bincount(y, minlength=P.shape[1]).max() / n) if n else float("nan")
        return SliceMetrics(n=n, accuracy=wilson_interval(correct, n, confidence),
                            log_loss=mean_interval(log_loss_rows_k(y, P), confidence), auc=None,
                            majority_rate=majority)
    if task == "classification":
        y = np.asarray(y).astype(int)
        correct = int(((score >= threshold).astype(int) == y).sum())
        pos = int(y.sum())
        auc = auc_interval(y, score, confidence) if min(pos, n - pos) >= min_class_rows else None
        return SliceMetrics(n=n, accuracy=wilson_interval(correct, n, confidence),
                            log_loss=mean_interval(log_loss_rows(y, score), confidence), auc=auc,
                            majority_rate=max(pos, n - pos) / n if n else float("nan"))
    r = np.asarray(y, dtype=float) - np.asarray(score, dtype=float)
    return SliceMetrics(n=n, mae=mean_interval(np.abs(r), confidence), rmse=rmse_interval(r ** 2, confidence),
                        bias=mean_interval(r, confidence))


# ---- the weak-segment search -----------------------------------------------------------------------

@dataclass(frozen=True)
class WeakSegment:
    """One reported segment: where it is, how big, how bad, and how it looks in train."""

    definition: str
    conditions: tuple[str, ...]
    features: tuple[str, ...]
    groups: tuple[tuple[str, str], ...]  # (feature, level or range)
    n: int
    share: float
    excess: float  # mean excess loss inside
    excess_outside: float
    relative_excess: float  # excess / overall mean loss
    p_value: float
    p_adjusted: float
    test: SliceMetrics
    n_train: int | None
    share_train: float | None
    underrepresented: bool
    underrep_p_value: float | None
    train: SliceMetrics | None  # the model's metrics on the segment's train rows
    key: str = ""  # stable id text: ``feature=level`` or ``feature=bin2of5``, joined by ``&``


@dataclass(frozen=True)
class SegmentSearch:
    task: str
    n: int
    n_train: int | None
    min_support: int
    n_single_tested: int
    n_pair_tested: int
    n_significant: int
    pair_features: tuple[str, ...]
    bins: int
    pair_bins: int
    prediction_bins: int
    alpha: float
    overall: SliceMetrics
    overall_train: SliceMetrics | None
    overall_loss: float  # mean per-row loss (log loss or MAE)
    segments: tuple[WeakSegment, ...]

    @property
    def n_tested(self) -> int:
        return self.n_single_tested + self.n_pair_tested


def _two_proportion_less(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided p-value that proportion 1 (train) is below proportion 2 (test)."""
    if n1 == 0 or n2 == 0:
        return float("nan")
    p = (k1 + k2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(stats.norm.cdf((k1 / n1 - k2 / n2) / se))


@dataclass(frozen=True)
class SegmentOptions:
    """What the weak-segment search tests and what it reports (see the module docstring)."""

    bins: int = 5  # quantile bins of a numeric feature for single-feature segments
    pair_bins: int = 3  # quantile bins of a numeric feature in pair segments
    pairs: bool = True  # also test pairs of features
    max_pair_features: int = 15  # features (strongest single-feature signal first) whose pairs are tested
    min_support: int = 30  # rows a tested segment needs (and leaves outside it)
    alpha: float = 0.05  # false discovery rate over every tested segment
    min_excess: float = 0.1  # mean excess loss a reported segment needs, as a share of the overall mean loss
    pair_gain: float = 1.5  # a pair is reported over its significant single parent only at this multiple of its excess
    max_overlap: float = 0.8  # a segment sharing this share of its rows with a better one is not reported
    max_segments: int = 10
    prediction_bins: int = 10  # quantile bins of the prediction within which the loss is centred
    underrep_ratio: float = 0.5  # train share below this multiple of the test share: under-represented
    confidence: float = 0.95  # level of the metrics' intervals


Key = tuple[tuple[int, int], ...]  # a segment: (coding index, code) conditions, one or two


@dataclass(frozen=True)
class _Family:
    """Every tested segment: the codings (fine single-feature codings 0..p-1, coarse pair codings
    p..2p-1) with their codes on the test rows, the scan, and the tested family (``keys``, which
    are ``scan.keys[keep[i]]``) with BH-adjusted p-values."""

    codings: tuple[FeatureCoding, ...]
    codes: tuple[np.ndarray, ...]
    n_features: int
    pair_features: tuple[int, ...]
    scan: SegmentScan
    keep: tuple[int, ...]
    keys: tuple[Key, ...]
    p_adjusted: np.ndarray

    def mask(self, key: Key) -> np.ndarray:
        m = np.ones(len(self.codes[0]), dtype=bool)
        for j, code in key:
            m &= self.codes[j] == code
        return m

    def label(self, key: Key) -> str:
        return " & ".join(self.codings[j].labels[c] for j, c in key)

    def mean_in(self, i: int) -> float:
        return float(self.scan.mean_in[self.keep[i]])


def _scan_family(X: pd.DataFrame, excess: np.ndarray, categorical: Sequence[str], o: SegmentOptions) -> _Family:
    """Scan single-feature segments, pick the pair features (strongest single-feature signal first,
    ties by name), scan singles and pairs together and BH-adjust over the tested family."""
    features = list(X.columns)
    cats = set(categorical)
    single = [fit_coding(X[f], feature=f, categorical=f in cats, n_bins=o.bins) for f in features]
    single_codes = [c.codes(X[c.feature]) for c in single]
    first = scan_segments(single_codes, [c.n_codes for c in single], excess, min_support=o.min_support)
    best: dict[int, float] = {}
    for key, pv in zip(first.keys, first.p_value):
        j = key[0][0]
        best[j] = min(best.get(j, 1.0), float(pv))
    order = sorted(range(len(features)), key=lambda j: (best.get(j, 1.0), features[j]))
    pair_idx = sorted(order[:o.max_pair_features]) if o.pairs else []
    coarse = [fit_coding(X[f], feature=f, categorical=f in cats, n_bins=o.pair_bins) for f in features]
    codings = single + coarse
    codes = single_codes + [c.codes(X[c.feature]) for c in coarse]
    p = len(features)
    pair_list = [(p + a, p + b) for i, a in enumerate(pair_idx) for b in pair_idx[i + 1:]]
    scan = scan_segments(codes, [c.n_codes for c in codings], excess, min_support=o.min_support, pairs=pair_list)
    # only the fine (single) codings are tested as singles; coarse singles were scanned to size
    # pairs and are dropped from the family
    keep = tuple(i for i, k in enumerate(scan.keys) if len(k) == 2 or k[0][0] < p)
    return _Family(codings=tuple(codings), codes=tuple(codes), n_features=p, pair_features=tuple(pair_idx),
                   scan=scan, keep=keep, keys=tuple(scan.keys[i] for i in keep),
                   p_adjusted=bh(scan.p_value[list(keep)]))


def _significant(fam: _Family, overall_loss: float, o: SegmentOptions) -> list[int]:
    """Family members that are significant and large enough, by total excess (rows x mean excess),
    then by definition text for stability."""
    sig = [i for i in range(len(fam.keys))
           if fam.p_adjusted[i] < o.alpha and overall_loss > 0 and fam.mean_in(i) >= o.min_excess * overall_loss]
    sig.sort(key=lambda i: (-fam.scan.n[fam.keep[i]] * fam.scan.mean_in[fam.keep[i]], fam.label(fam.keys[i])))
    return sig


def _pair_adds(fam: _Family, key: Key, m: np.ndarray, excess: np.ndarray, sig_single: dict[tuple[int, int], int],
               o: SegmentOptions) -> bool:
    """A pair segment adds to each significant single-feature segment it overlaps: its excess is
    significantly above the rest of that parent and at least ``pair_gain`` times the parent's."""
    p = fam.n_features
    for j, code in key:
        for parent_code in _fine_parents(fam.codings[j], code, fam.codings[j - p], fam.codes[j - p], m):
            pi = sig_single.get((j - p, parent_code))
            if pi is None:
                continue
            rest = (fam.codes[j - p] == parent_code) & ~m
            if rest.sum() < 2:
                return False
            _, _, _, _, pp = welch_greater(*_moments(excess[m]), *_moments(excess[rest]))
            if not (float(pp) < o.alpha and excess[m].mean() >= o.pair_gain * fam.mean_in(pi)):
                return False
    return True


def _reported(fam: _Family, sig: list[int], excess: np.ndarray, o: SegmentOptions) -> list[tuple[int, np.ndarray]]:
    """The significant segments to report, best first: pairs that add nothing over a significant
    single parent and segments that overlap a better one by ``max_overlap`` are dropped."""
    sig_single = {fam.keys[i][0]: i for i in sig if len(fam.keys[i]) == 1}
    kept: list[tuple[int, np.ndarray]] = []
    for i in sig:
        key = fam.keys[i]
        m = fam.mask(key)
        if len(key) == 2 and not _pair_adds(fam, key, m, excess, sig_single, o):
            continue
        if any((m & km).sum() >= o.max_overlap * m.sum() for _, km in kept):
            continue
        kept.append((i, m))
        if len(kept) >= o.max_segments:
            break
    return kept


@dataclass
class _TrainRows:
    """The train split as the search reads it, with each coding's codes computed once."""

    X: pd.DataFrame
    y: np.ndarray | None
    score: np.ndarray | None
    codes: dict[int, np.ndarray]

    def mask(self, fam: _Family, key: Key) -> np.ndarray:
        tm = np.ones(len(self.X), dtype=bool)
        for j, c in key:
            if j not in self.codes:
                self.codes[j] = fam.codings[j].codes(self.X[fam.codings[j].feature])
            tm &= self.codes[j] == c
        return tm


def _segment(fam: _Family, i: int, m: np.ndarray, y: np.ndarray, score: np.ndarray, train: _TrainRows | None, *,
             task: str, threshold: float, overall_loss: float, o: SegmentOptions) -> WeakSegment:
    """One reported segment: its definition, test metrics and how it looks in train."""
    key = fam.keys[i]
    cods = [fam.codings[j] for j, _ in key]
    conds = tuple(c.labels[code] for c, (_, code) in zip(cods, key))
    n_train = share_train = underrep_p = None
    underrep = False
    train_m = None
    if train is not None:
        tm = train.mask(fam, key)
        n_train = int(tm.sum())
        share_train = n_train / len(train.X)
        underrep_p = _two_proportion_less(n_train, len(train.X), int(m.sum()), len(m))
        underrep = bool(share_train < o.underrep_ratio * m.mean() and underrep_p < o.alpha)
        if train.y is not None and train.score is not None and n_train > 0:
            train_m = slice_metrics(train.y[tm], train.score[tm], task=task, threshold=threshold,
                                    confidence=o.confidence)
    ki = fam.keep[i]
    return WeakSegment(
        definition=" & ".join(conds), conditions=conds, features=tuple(c.feature for c in cods),
        groups=tuple((c.feature, c.group_value(code)) for c, (_, code) in zip(cods, key)),
        n=int(m.sum()), share=float(m.mean()), excess=float(fam.scan.mean_in[ki]),
        excess_outside=float(fam.scan.mean_out[ki]), relative_excess=float(fam.scan.mean_in[ki] / overall_loss),
        p_value=float(fam.scan.p_value[ki]), p_adjusted=float(fam.p_adjusted[i]),
        test=slice_metrics(y[m], score[m], task=task, threshold=threshold, confidence=o.confidence),
        n_train=n_train, share_train=share_train, underrepresented=underrep, underrep_p_value=underrep_p,
        train=train_m, key="&".join(f"{c.feature}={c.id_value(code)}" for c, (_, code) in zip(cods, key)))


def find_weak_segments(X: pd.DataFrame, y: np.ndarray, score: np.ndarray, *, task: str,
                       categorical: Sequence[str], threshold: float = 0.5,
                       X_train: pd.DataFrame | None = None, y_train: np.ndarray | None = None,
                       score_train: np.ndarray | None = None,
                       options: SegmentOptions = SegmentOptions()) -> SegmentSearch:
    """Single-feature and pair segments whose excess loss is significantly (BH-adjusted) above the
    rest, at least ``min_excess`` of the overall mean loss, deduplicated and ranked by their
    total excess loss (rows x mean excess)."""
    o = options
    features = list(X.columns)
    rl = row_loss(y, score, task=task, prediction_bins=o.prediction_bins)
    overall_loss = float(rl.loss.mean())
    fam = _scan_family(X, rl.excess, categorical, o)
    sig = _significant(fam, overall_loss, o)
    kept = _reported(fam, sig, rl.excess, o)
    train = (_TrainRows(X_train, y_train, score_train, {}) if X_train is not None and len(X_train) > 0 else None)
    overall_train = None
    if train is not None and y_train is not None and score_train is not None:
        overall_train = slice_metrics(y_train, score_train, task=task, threshold=threshold, confidence=o.confidence)
    segments = tuple(_segment(fam, i, m, y, score, train, task=task, threshold=threshold,
                              overall_loss=overall_loss, o=o) for i, m in kept)
    n_single = sum(1 for k in fam.keys if len(k) == 1)
    return SegmentSearch(
        task=task, n=len(X), n_train=len(train.X) if train is not None else None, min_support=o.min_support,
        n_single_tested=n_single, n_pair_tested=len(fam.keys) - n_single, n_significant=len(sig),
        pair_features=tuple(features[j] for j in fam.pair_features), bins=o.bins, pair_bins=o.pair_bins,
        prediction_bins=o.prediction_bins, alpha=o.alpha,
        overall=slice_metrics(y, score, task=task, threshold=threshold, confidence=o.confidence),
        overall_train=overall_train, overall_loss=overall_loss, segments=segments)


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    return np.asarray(x.size), np.asarray(x.sum()), np.asarray((x ** 2).sum())


def _fine_parents(coarse: FeatureCoding, code: int, fine: FeatureCoding, fine_codes: np.ndarray,
                  mask: np.ndarray) -> list[int]:
    """The single-feature (fine) segments a coarse pair condition overlaps with."""
    if coarse.kind == "categorical" or code == coarse.missing_code:
        if code == coarse.missing_code:
            return [fine.missing_code]
        return [fine.levels.index(coarse.levels[code])] if coarse.levels[code] in fine.levels else []
    present = np.unique(fine_codes[mask])
    return [int(c) for c in present if c >= 0]
