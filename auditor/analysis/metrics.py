"""Headline performance metrics with percentile-bootstrap confidence intervals, and the
train-versus-test gap, for binary, k-class (multiclass) and regression models.

Point estimates come from ``sklearn.metrics``. The bootstrap draws one index matrix
(resamples x rows) from the caller's generator and turns it into a matrix of resample counts,
so every resampled metric is a weighted sum over the cached scores: no per-row work and no
model calls. ``bootstrap_counts`` is exposed so tests can compare a resample with sklearn on
the same rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

# Bootstrap count matrices are built in chunks of at most this many cells (resamples x rows).
_CHUNK_CELLS = 4_000_000
_EPS = np.finfo(float).eps  # the clipping sklearn's log_loss uses for float64


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile-bootstrap confidence interval."""

    value: float
    low: float
    high: float

    def excludes(self, x: float) -> bool:
        """True when the interval lies entirely above or below ``x``."""
        return bool(self.low > x or self.high < x)


@dataclass(frozen=True)
class Curve:
    """An x/y curve thinned for plotting."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class ClassificationMetrics:
    n: int
    n_positive: int
    base_rate: float
    majority_class: int  # 1 when positives are the majority, else 0
    majority_accuracy: Estimate
    threshold: float
    predicted_positive_share: float
    auc: Estimate
    accuracy: Estimate
    precision: Estimate
    recall: Estimate
    f1: Estimate
    log_loss: Estimate
    brier: Estimate
    accuracy_lift: Estimate  # accuracy minus always-predict-the-majority accuracy, paired resamples
    accuracy_lift_p_value: float  # one-sided bootstrap p-value for lift <= 0
    average_precision: float
    confusion: tuple[tuple[int, int], tuple[int, int]]  # ((tn, fp), (fn, tp))
    roc: Curve  # x = false positive rate, y = true positive rate
    pr: Curve  # x = recall, y = precision
    n_resamples: int
    confidence: float


@dataclass(frozen=True)
class MulticlassMetrics:
    """k-class metrics of class indices ``y`` (0..k-1) against an n x k probability matrix; the
    decision is the most probable class. Per-class arrays are in class-index order."""

    n: int
    n_classes: int
    support: np.ndarray  # (k,) test rows per true class
    predicted_count: np.ndarray  # (k,) test rows per predicted class
    majority_class: int  # the most frequent true class
    majority_accuracy: Estimate  # share of rows in the majority class
    accuracy: Estimate
    balanced_accuracy: Estimate
    macro_f1: Estimate
    weighted_f1: Estimate
    log_loss: Estimate
    brier: Estimate  # mean over rows of the sum over classes of (p - 1[y = class])^2, range 0..2
    auc_ovr_macro: Estimate  # mean over classes of the one-vs-rest ROC AUC
    accuracy_lift: Estimate  # accuracy minus the majority share, paired resamples
    accuracy_lift_p_value: float  # one-sided bootstrap p-value for lift <= 0
    precision: np.ndarray  # (k,) per class, one-vs-rest, zero_division=0
    recall: np.ndarray
    f1: np.ndarray
    auc_ovr: np.ndarray  # (k,) one-vs-rest AUC per class (NaN when the class is absent)
    confusion: np.ndarray  # (k, k) counts, rows = actual class, columns = predicted class
    confusion_rate: np.ndarray  # (k, k) confusion[i, j] / support[i]: share of class i predicted j
    confusion_rate_low: np.ndarray  # (k, k) bootstrap interval of confusion_rate
    confusion_rate_high: np.ndarray
    n_resamples: int
    confidence: float


@dataclass(frozen=True)
class RegressionMetrics:
    n: int
    rmse: Estimate
    mae: Estimate
    r2: Estimate
    mean_target: float
    std_target: float
    n_resamples: int
    confidence: float


@dataclass(frozen=True)
class Gap:
    """A metric on train and on test, and their gap oriented so that positive = better on train."""

    metric: str
    train: Estimate
    test: Estimate
    gap: Estimate


@dataclass(frozen=True)
class GapResult:
    task: str
    gaps: tuple[Gap, ...]
    n_train: int
    n_test: int
    n_resamples: int
    confidence: float

    def get(self, metric: str) -> Gap:
        for g in self.gaps:
            if g.metric == metric:
                return g
        raise KeyError(metric)


# ---- bootstrap machinery --------------------------------------------------------------------------

def bootstrap_counts(n: int, n_resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield (chunk, n) float matrices: how often each row appears in each bootstrap resample.

    The resamples come from an index matrix ``rng.integers(0, n, (chunk, n))``; chunking only
    bounds memory and always yields ``n_resamples`` rows in total.
    """
    per_chunk = max(1, min(n_resamples, _CHUNK_CELLS // max(n, 1)))
    done = 0
    while done < n_resamples:
        b = min(per_chunk, n_resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        flat = (idx + (np.arange(b) * n)[:, None]).ravel()
        yield np.bincount(flat, minlength=b * n).reshape(b, n).astype(float)
        done += b


def weighted_auc(y: np.ndarray, score: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """ROC AUC of each weighted resample (rows of ``counts``), ties counted as one half.

    Equals ``roc_auc_score`` on the resampled rows; NaN where a resample has only one class.
    """
    y = np.asarray(y).astype(bool)
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first row of each distinct score
    c = counts[:, order]
    wp = np.add.reduceat(c * y[order], starts, axis=1)
    wn = np.add.reduceat(c * ~y[order], starts, axis=1)
    below = np.cumsum(wn, axis=1) - wn  # negative weight strictly below each distinct score
    num = (wp * (below + 0.5 * wn)).sum(axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den with 0 where den is 0 (sklearn's ``zero_division=0``)."""
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def percentile_interval(value: float, draws: np.ndarray, confidence: float) -> Estimate:
    """A point estimate with the percentile interval of its bootstrap draws (non-finite draws dropped)."""
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0 or not np.isfinite(value):
        return Estimate(float(value), float("nan"), float("nan"))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(draws, [100 * alpha, 100 * (1 - alpha)])
    return Estimate(float(value), float(low), float(high))


def _thin(x: np.ndarray, y: np.ndarray, max_points: int = 400) -> Curve:
    if len(x) > max_points:
        keep = np.unique(np.linspace(0, len(x) - 1, max_points).round().astype(int))
        x, y = x[keep], y[keep]
    return Curve(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


def roc_points(y: np.ndarray, score: np.ndarray, max_points: int = 400) -> Curve:
    """The ROC curve (x: false positive rate, y: true positive rate) thinned to at most
    ``max_points`` points for a figure."""
    fpr, tpr, _ = skm.roc_curve(y, score)
    return _thin(fpr, tpr, max_points)


# ---- classification ----------------------------------------------------------------------------

def _classification_draws(y: np.ndarray, score: np.ndarray, *, threshold: float, n_resamples: int,
                          rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Bootstrap distributions of every classification metric (arrays of length n_resamples)."""
    y = np.asarray(y).astype(int)
    p = np.clip(np.asarray(score, dtype=float), _EPS, 1 - _EPS)
    pred = np.asarray(score) >= threshold
    n = len(y)
    yb = y.astype(bool)
    majority = int(y.mean() >= 0.5)
    vectors = np.column_stack([
        yb & pred, ~yb & pred, yb & ~pred, ~yb & ~pred,                # tp fp fn tn
        -(y * np.log(p) + (1 - y) * np.log(1 - p)),                     # log loss terms
        (np.asarray(score, dtype=float) - y) ** 2,                      # Brier terms
        y == majority,                                                  # majority-class hits
    ]).astype(float)
    sums, aucs = [], []
    for counts in bootstrap_counts(n, n_resamples, rng):
        sums.append(counts @ vectors)
        aucs.append(weighted_auc(y, score, counts))
    s = np.vstack(sums)
    tp, fp, fn, tn, ll, br, maj = s.T
    acc = (tp + tn) / n
    return {
        "auc": np.concatenate(aucs),
        "accuracy": acc,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "log_loss": ll / n,
        "brier": br / n,
        "majority_accuracy": maj / n,
        "accuracy_lift": acc - maj / n,
    }


def classification_metrics(y_true: np.ndarray, score: np.ndarray, *, threshold: float = 0.5,
                           n_resamples: int = 200, confidence: float = 0.95,
                           rng: np.random.Generator | int = 0) -> ClassificationMetrics:
    """AUC, accuracy, precision, recall, F1 (at ``threshold``), log loss and Brier score of binary
    labels ``y_true`` (1 = positive) against P(positive) ``score``, each with a bootstrap CI."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    return _classification(y_true, score, threshold=threshold, n_resamples=n_resamples,
                           confidence=confidence, rng=rng)[0]


def _classification(y_true: np.ndarray, score: np.ndarray, *, threshold: float, n_resamples: int,
                    confidence: float, rng: np.random.Generator
                    ) -> tuple[ClassificationMetrics, dict[str, np.ndarray]]:
    y = np.asarray(y_true).astype(int)
    s = np.asarray(score, dtype=float)
    pred = (s >= threshold).astype(int)
    majority = int(y.mean() >= 0.5)
    two_classes = len(np.unique(y)) == 2
    point = {
        "auc": float(skm.roc_auc_score(y, s)) if two_classes else float("nan"),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "log_loss": float(skm.log_loss(y, np.clip(s, _EPS, 1 - _EPS), labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, s, pos_label=1)) if two_classes else float(np.mean((s - y) ** 2)),
        "majority_accuracy": float(np.mean(y == majority)),
    }
    point["accuracy_lift"] = point["accuracy"] - point["majority_accuracy"]
    draws = _classification_draws(y, s, threshold=threshold, n_resamples=n_resamples, rng=rng)
    est = {k: percentile_interval(v, draws[k], confidence) for k, v in point.items()}
    lift = draws["accuracy_lift"]
    lift_p = float((1 + np.sum(lift <= 0)) / (1 + len(lift)))
    (tn, fp), (fn, tp) = skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    if two_classes:
        fpr, tpr, _ = skm.roc_curve(y, s)
        prec, rec, _ = skm.precision_recall_curve(y, s)
        ap = float(skm.average_precision_score(y, s))
    else:
        fpr = tpr = prec = rec = np.array([])
        ap = float("nan")
    return ClassificationMetrics(
        n=len(y), n_positive=int(y.sum()), base_rate=float(y.mean()), majority_class=majority,
        majority_accuracy=est["majority_accuracy"], threshold=float(threshold),
        predicted_positive_share=float(pred.mean()),
        auc=est["auc"], accuracy=est["accuracy"], precision=est["precision"], recall=est["recall"],
        f1=est["f1"], log_loss=est["log_loss"], brier=est["brier"],
        accuracy_lift=est["accuracy_lift"], accuracy_lift_p_value=lift_p, average_precision=ap,
        confusion=((int(tn), int(fp)), (int(fn), int(tp))),
        roc=_thin(fpr, tpr), pr=_thin(rec[::-1], prec[::-1]),
        n_resamples=int(n_resamples), confidence=float(confidence),
    ), draws


# ---- k classes ---------------------------------------------------------------------------------

def _multiclass_draws(y: np.ndarray, proba: np.ndarray, *, n_resamples: int,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Bootstrap distributions of the k-class metrics: each resample's k x k confusion matrix comes
    from one product of the count matrix with the rows' cell indicators, the rest from it."""
    y = np.asarray(y, dtype=int)
    proba = np.asarray(proba, dtype=float)
    n, k = proba.shape
    pred = np.argmax(proba, axis=1)
    onehot = np.eye(k)[y]
    cells = np.zeros((n, k * k))
    cells[np.arange(n), y * k + pred] = 1.0
    p_true = np.clip(proba[np.arange(n), y], _EPS, 1 - _EPS)
    vectors = np.column_stack([cells, -np.log(p_true), ((proba - onehot) ** 2).sum(axis=1)])
    sums, aucs = [], []
    for counts in bootstrap_counts(n, n_resamples, rng):
        sums.append(counts @ vectors)
        aucs.append(np.column_stack([weighted_auc(y == c, proba[:, c], counts) for c in range(k)]))
    s = np.vstack(sums)
    conf = s[:, : k * k].reshape(-1, k, k)
    tp = np.einsum("bii->bi", conf)
    support = conf.sum(axis=2)
    predicted = conf.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / np.where(support > 0, support, 1.0), np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / np.where(support + predicted > 0, support + predicted, 1.0),
                      np.nan)  # NaN: class neither present nor predicted (sklearn leaves it out)
        rate = conf / np.where(support > 0, support, np.nan)[:, :, None]
    majority = int(np.argmax(np.bincount(y, minlength=k)))
    acc = tp.sum(axis=1) / n
    auc = np.vstack(aucs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: a resample without the class
        balanced = np.nanmean(recall, axis=1)
        macro_f1 = np.nanmean(f1, axis=1)
        auc_macro = np.where(np.isnan(auc).any(axis=1), np.nan, np.nanmean(auc, axis=1))
    return {
        "accuracy": acc,
        "balanced_accuracy": balanced,
        "macro_f1": macro_f1,
        "weighted_f1": np.nansum(f1 * support, axis=1) / n,
        "log_loss": s[:, k * k] / n,
        "brier": s[:, k * k + 1] / n,
        "auc_ovr_macro": auc_macro,
        "majority_accuracy": support[:, majority] / n,
        "accuracy_lift": acc - support[:, majority] / n,
        "confusion_rate": rate,  # (resamples, k, k)
    }


def _auc_ovr(y: np.ndarray, proba: np.ndarray) -> tuple[float, np.ndarray]:
    """Macro one-vs-rest AUC (sklearn's multi_class="ovr") and the per-class AUCs."""
    k = proba.shape[1]
    per_class = np.array([skm.roc_auc_score(y == c, proba[:, c]) if 0 < np.sum(y == c) < len(y) else np.nan
                          for c in range(k)])
    if np.isnan(per_class).any():
        return float("nan"), per_class
    try:
        macro = float(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=list(range(k))))
    except ValueError:  # rows that do not sum to one: the same average, class by class
        macro = float(per_class.mean())
    return macro, per_class


def multiclass_metrics(y_true: np.ndarray, proba: np.ndarray, *, n_resamples: int = 200,
                       confidence: float = 0.95, rng: np.random.Generator | int = 0) -> MulticlassMetrics:
    """k-class accuracy, balanced accuracy, macro and weighted F1, log loss, Brier score and macro
    one-vs-rest AUC of class indices ``y_true`` against probabilities ``proba`` (n x k), each with
    a bootstrap CI; per-class precision, recall, F1 and AUC; the confusion matrix."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    return _multiclass(y_true, proba, n_resamples=n_resamples, confidence=confidence, rng=rng)[0]


def _multiclass(y_true: np.ndarray, proba: np.ndarray, *, n_resamples: int, confidence: float,
                rng: np.random.Generator) -> tuple[MulticlassMetrics, dict[str, np.ndarray]]:
    y = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    n, k = proba.shape
    labels = list(range(k))
    pred = np.argmax(proba, axis=1)
    support = np.bincount(y, minlength=k)
    majority = int(np.argmax(support))
    auc_macro, auc_per_class = _auc_ovr(y, proba)
    point = {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)),
        "macro_f1": float(skm.f1_score(y, pred, average="macro", zero_division=0)),
        "weighted_f1": float(skm.f1_score(y, pred, average="weighted", zero_division=0)),
        "log_loss": float(skm.log_loss(y, np.clip(proba, _EPS, 1 - _EPS), labels=labels)),
        "brier": float(skm.brier_score_loss(y, proba, labels=labels)),
        "auc_ovr_macro": auc_macro,
        "majority_accuracy": float(support[majority] / n),
    }
    point["accuracy_lift"] = point["accuracy"] - point["majority_accuracy"]
    draws = _multiclass_draws(y, proba, n_resamples=n_resamples, rng=rng)
    est = {key: percentile_interval(v, draws[key], confidence) for key, v in point.items()}
    lift = draws["accuracy_lift"]
    precision, recall, f1, _ = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    conf = skm.confusion_matrix(y, pred, labels=labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = conf / np.where(support > 0, support, np.nan)[:, None]
    rate_low = np.full((k, k), np.nan)
    rate_high = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            e = percentile_interval(float(rate[i, j]), draws["confusion_rate"][:, i, j], confidence)
            rate_low[i, j], rate_high[i, j] = e.low, e.high
    return MulticlassMetrics(
        n=n, n_classes=k, support=support, predicted_count=np.bincount(pred, minlength=k),
        majority_class=majority, majority_accuracy=est["majority_accuracy"],
        accuracy=est["accuracy"], balanced_accuracy=est["balanced_accuracy"], macro_f1=est["macro_f1"],
        weighted_f1=est["weighted_f1"], log_loss=est["log_loss"], brier=est["brier"],
        auc_ovr_macro=est["auc_ovr_macro"], accuracy_lift=est["accuracy_lift"],
        accuracy_lift_p_value=float((1 + np.sum(lift <= 0)) / (1 + len(lift))),
        precision=np.asarray(precision, dtype=float), recall=np.asarray(recall, dtype=float),
        f1=np.asarray(f1, dtype=float), auc_ovr=auc_per_class, confusion=conf, confusion_rate=rate,
        confusion_rate_low=rate_low, confusion_rate_high=rate_high,
        n_resamples=int(n_resamples), confidence=float(confidence),
    ), draws


# ---- regression --------------------------------------------------------------------------------

def _regression_draws(y: np.ndarray, pred: np.ndarray, *, n_resamples: int,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    y = np.asarray(y, dtype=float)
    e = np.asarray(pred, dtype=float) - y
    n = len(y)
    vectors = np.column_stack([e ** 2, np.abs(e), y, y ** 2])
    s = np.vstack([counts @ vectors for counts in bootstrap_counts(n, n_resamples, rng)])
    sse, sae, sy, syy = s.T
    sst = syy - sy ** 2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), np.nan)
    return {"rmse": np.sqrt(sse / n), "mae": sae / n, "r2": r2}


def regression_metrics(y_true: np.ndarray, prediction: np.ndarray, *, n_resamples: int = 200,
                       confidence: float = 0.95, rng: np.random.Generator | int = 0) -> RegressionMetrics:
    """RMSE, MAE and R² of ``prediction`` against ``y_true``, each with a bootstrap CI."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    return _regression(y_true, prediction, n_resamples=n_resamples, confidence=confidence, rng=rng)[0]


def _regression(y_true: np.ndarray, prediction: np.ndarray, *, n_resamples: int, confidence: float,
                rng: np.random.Generator) -> tuple[RegressionMetrics, dict[str, np.ndarray]]:
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(prediction, dtype=float)
    point = {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
        "mae": float(skm.mean_absolute_error(y, p)),
        "r2": float(skm.r2_score(y, p)),
    }
    draws = _regression_draws(y, p, n_resamples=n_resamples, rng=rng)
    est = {k: percentile_interval(v, draws[k], confidence) for k, v in point.items()}
    return RegressionMetrics(n=len(y), rmse=est["rmse"], mae=est["mae"], r2=est["r2"],
                             mean_target=float(y.mean()), std_target=float(y.std()),
                             n_resamples=int(n_resamples), confidence=float(confidence)), draws


# ---- train/test gap ----------------------------------------------------------------------------

# metric -> +1 when larger is better, -1 when smaller is better
_GAP_METRICS = {
    "classification": {"auc": 1, "log_loss": -1, "accuracy": 1, "brier": -1},
    "multiclass": {"auc_ovr_macro": 1, "log_loss": -1, "accuracy": 1, "brier": -1},
    "regression": {"r2": 1, "rmse": -1, "mae": -1},
}


def train_test_gap(y_train: np.ndarray, score_train: np.ndarray, y_test: np.ndarray,
                   score_test: np.ndarray, *, task: str, threshold: float = 0.5,
                   n_resamples: int = 200, confidence: float = 0.95,
                   rng: np.random.Generator | int = 0) -> GapResult:
    """Each metric on train and on test with bootstrap CIs, and the CI of their gap.

    The two splits are resampled independently; resample b of the gap is train_b - test_b
    (test_b - train_b for error metrics), so a positive gap always means "better on train".
    ``task="multiclass"`` takes class indices as ``y`` and n x k probability matrices as scores.
    """
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    m_tr: ClassificationMetrics | MulticlassMetrics | RegressionMetrics
    m_te: ClassificationMetrics | MulticlassMetrics | RegressionMetrics
    if task == "classification":
        m_tr, d_tr = _classification(y_train, score_train, threshold=threshold, n_resamples=n_resamples,
                                     confidence=confidence, rng=rng)
        m_te, d_te = _classification(y_test, score_test, threshold=threshold, n_resamples=n_resamples,
                                     confidence=confidence, rng=rng)
    elif task == "multiclass":
        m_tr, d_tr = _multiclass(y_train, score_train, n_resamples=n_resamples, confidence=confidence, rng=rng)
        m_te, d_te = _multiclass(y_test, score_test, n_resamples=n_resamples, confidence=confidence, rng=rng)
    else:
        m_tr, d_tr = _regression(y_train, score_train, n_resamples=n_resamples, confidence=confidence, rng=rng)
        m_te, d_te = _regression(y_test, score_test, n_resamples=n_resamples, confidence=confidence, rng=rng)
    gaps = []
    for metric, sign in _GAP_METRICS[task].items():
        tr, te = getattr(m_tr, metric), getattr(m_te, metric)
        gap_draws = sign * (d_tr[metric] - d_te[metric])
        gaps.append(Gap(metric=metric, train=tr, test=te,
                        gap=percentile_interval(sign * (tr.value - te.value), gap_draws, confidence)))
    return GapResult(task=task, gaps=tuple(gaps), n_train=len(y_train), n_test=len(y_test),
                     n_resamples=int(n_resamples), confidence=float(confidence))
