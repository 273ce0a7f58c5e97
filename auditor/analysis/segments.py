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
    labels: list[str] = []
    for i in range(edges.size + 1):
        if i == 0:
            labels.append(f"{feature} < {fmt_number(edges[0])}")
        elif i == edges.size:
            labels.append(f"{feature} >= {fmt_number(edges[-1])}")
        else:
            labels.append(f"{feature} in [{fmt_number(edges[i - 1])}, {fmt_number(edges[i])})")
    return FeatureCoding(feature, "binned", (), tuple(float(e) for e in edges),
                         tuple(labels) + (f"{feature} is missing",))


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
    p_adj = stats.false_discovery_control(p, method="bh") if p.size else p
    return SegmentScan(keys=tuple(keys), n=n.astype(int), mean_in=m1 + mean, mean_out=m2 + mean, t=t, df=df,
                       p_value=p, p_adjusted=np.asarray(p_adj, dtype=float))


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


def find_weak_segments(X: pd.DataFrame, y: np.ndarray, score: np.ndarray, *, task: str,
                       categorical: Sequence[str], threshold: float = 0.5,
                       X_train: pd.DataFrame | None = None, y_train: np.ndarray | None = None,
                       score_train: np.ndarray | None = None, bins: int = 5, pair_bins: int = 3,
                       pairs: bool = True, max_pair_features: int = 15, min_support: int = 30,
                       alpha: float = 0.05, min_excess: float = 0.1, pair_gain: float = 1.5,
                       max_overlap: float = 0.8, max_segments: int = 10, prediction_bins: int = 10,
                       underrep_ratio: float = 0.5, confidence: float = 0.95) -> SegmentSearch:
    """Single-feature and pair segments whose excess loss is significantly (BH-adjusted) above the
    rest, at least ``min_excess`` of the overall mean loss, deduplicated and ranked by their
    total excess loss (rows x mean excess)."""
    features = list(X.columns)
    cats = set(categorical)
    rl = row_loss(y, score, task=task, prediction_bins=prediction_bins)
    overall_loss = float(rl.loss.mean())

    single = [fit_coding(X[f], feature=f, categorical=f in cats, n_bins=bins) for f in features]
    single_codes = [c.codes(X[c.feature]) for c in single]
    first = scan_segments(single_codes, [c.n_codes for c in single], rl.excess, min_support=min_support)

    # pair features: strongest single-feature signal first, ties by name
    best: dict[int, float] = {}
    for key, p in zip(first.keys, first.p_value):
        j = key[0][0]
        best[j] = min(best.get(j, 1.0), float(p))
    order = sorted(range(len(features)), key=lambda j: (best.get(j, 1.0), features[j]))
    pair_idx = sorted(order[:max_pair_features]) if pairs else []
    coarse = [fit_coding(X[f], feature=f, categorical=f in cats, n_bins=pair_bins) for f in features]
    # codings: singles 0..p-1, coarse pair codings p..2p-1
    codings = single + coarse
    codes = single_codes + [c.codes(X[c.feature]) for c in coarse]
    p = len(features)
    pair_list = [(p + a, p + b) for i, a in enumerate(pair_idx) for b in pair_idx[i + 1:]]
    scan = scan_segments(codes, [c.n_codes for c in codings], rl.excess, min_support=min_support,
                         pairs=pair_list)
    # only the fine (single) codings are tested as singles; coarse singles were scanned to size
    # pairs and are dropped from the family
    keep_idx = [i for i, k in enumerate(scan.keys) if len(k) == 2 or k[0][0] < p]
    keys = [scan.keys[i] for i in keep_idx]
    pv = scan.p_value[keep_idx]
    p_adj = np.asarray(stats.false_discovery_control(pv, method="bh"), dtype=float) if pv.size else pv
    n_single = sum(1 for k in keys if len(k) == 1)

    def mask_of(key: tuple[tuple[int, int], ...]) -> np.ndarray:
        m = np.ones(len(X), dtype=bool)
        for j, code in key:
            m &= codes[j] == code
        return m

    sig = [i for i in range(len(keys))
           if p_adj[i] < alpha and overall_loss > 0
           and scan.mean_in[keep_idx[i]] >= min_excess * overall_loss]
    n_significant = len(sig)
    sig_single = {keys[i][0]: i for i in sig if len(keys[i]) == 1}
    # rank by total excess (rows x mean excess), then by definition text for stability
    def label(key: tuple[tuple[int, int], ...]) -> str:
        return " & ".join(codings[j].labels[c] for j, c in key)

    sig.sort(key=lambda i: (-scan.n[keep_idx[i]] * scan.mean_in[keep_idx[i]], label(keys[i])))

    e = rl.excess
    kept: list[tuple[int, np.ndarray]] = []
    for i in sig:
        key = keys[i]
        m = mask_of(key)
        if len(key) == 2:
            adds = True
            for j, code in key:
                fine_parents = _fine_parents(codings[j], code, codings[j - p], codes[j - p], m)
                for parent_code in fine_parents:
                    pi = sig_single.get((j - p, parent_code))
                    if pi is None:
                        continue
                    pm = codes[j - p] == parent_code
                    rest = pm & ~m
                    if rest.sum() < 2:
                        adds = False
                        break
                    _, _, _, _, pp = welch_greater(*_moments(e[m]), *_moments(e[rest]))
                    if not (float(pp) < alpha and e[m].mean() >= pair_gain * scan.mean_in[keep_idx[pi]]):
                        adds = False
                        break
                if not adds:
                    break
            if not adds:
                continue
        if any((m & km).sum() >= max_overlap * m.sum() for _, km in kept):
            continue
        kept.append((i, m))
        if len(kept) >= max_segments:
            break

    overall = slice_metrics(y, score, task=task, threshold=threshold, confidence=confidence)
    has_train = X_train is not None and len(X_train) > 0
    train_codes: dict[int, np.ndarray] = {}
    overall_train = None
    if has_train and y_train is not None and score_train is not None:
        overall_train = slice_metrics(y_train, score_train, task=task, threshold=threshold, confidence=confidence)

    segments: list[WeakSegment] = []
    for i, m in kept:
        key = keys[i]
        conds = tuple(codings[j].labels[c] for j, c in key)
        feats = tuple(codings[j].feature for j, _ in key)
        groups = tuple((codings[j].feature, codings[j].group_value(c)) for j, c in key)
        n_train = share_train = underrep_p = None
        underrep = False
        train_m = None
        if has_train:
            tm = np.ones(len(X_train), dtype=bool)
            for j, c in key:
                if j not in train_codes:
                    train_codes[j] = codings[j].codes(X_train[codings[j].feature])
                tm &= train_codes[j] == c
            n_train = int(tm.sum())
            share_train = n_train / len(X_train)
            underrep_p = _two_proportion_less(n_train, len(X_train), int(m.sum()), len(X))
            underrep = bool(share_train < underrep_ratio * m.mean() and underrep_p < alpha)
            if y_train is not None and score_train is not None and n_train > 0:
                train_m = slice_metrics(y_train[tm], score_train[tm], task=task, threshold=threshold,
                                        confidence=confidence)
        ki = keep_idx[i]
        segments.append(WeakSegment(
            definition=" & ".join(conds), conditions=conds, features=feats, groups=groups,
            n=int(m.sum()), share=float(m.mean()), excess=float(scan.mean_in[ki]),
            excess_outside=float(scan.mean_out[ki]), relative_excess=float(scan.mean_in[ki] / overall_loss),
            p_value=float(scan.p_value[ki]), p_adjusted=float(p_adj[i]),
            test=slice_metrics(y[m], score[m], task=task, threshold=threshold, confidence=confidence),
            n_train=n_train, share_train=share_train, underrepresented=underrep, underrep_p_value=underrep_p,
            train=train_m))

    return SegmentSearch(
        task=task, n=len(X), n_train=len(X_train) if has_train else None, min_support=min_support,
        n_single_tested=n_single, n_pair_tested=len(keys) - n_single, n_significant=n_significant,
        pair_features=tuple(features[j] for j in pair_idx), bins=bins, pair_bins=pair_bins,
        prediction_bins=prediction_bins, alpha=alpha, overall=overall, overall_train=overall_train,
        overall_loss=overall_loss, segments=tuple(segments))


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
