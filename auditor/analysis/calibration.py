"""Reliability of predicted probabilities: reliability curve, expected calibration error (ECE)
with a consistency-resampling significance test, the Brier decomposition and a logistic
recalibration (slope and intercept). Binary models are analysed on P(positive); k-class models
on the top label (the confidence of the predicted class against whether it is right).

Consistency resampling (Bröcker & Smith, 2007): if the model were calibrated, outcomes drawn as
y* ~ Bernoulli(p) from its own scores would look like the observed ones. The ECE of many such
draws, with the same bins, is the null distribution of the observed ECE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CHUNK_CELLS = 4_000_000
_LOGIT_CLIP = 1e-6


@dataclass(frozen=True)
class CalibrationResult:
    n: int
    n_bins: int
    # reliability curve from sklearn.calibration.calibration_curve(strategy="quantile")
    curve_predicted: np.ndarray
    curve_observed: np.ndarray
    # equal-count bins used for the ECE, the Brier decomposition and the consistency band
    bin_count: np.ndarray
    bin_predicted: np.ndarray
    bin_observed: np.ndarray
    band_low: np.ndarray  # consistency band: where a calibrated model's observed rate would fall (95%)
    band_high: np.ndarray
    ece: float
    ece_null_mean: float
    ece_null_q95: float
    p_value: float
    n_resamples: int
    brier: float
    reliability: float  # Brier = reliability - resolution + uncertainty (binned)
    resolution: float
    uncertainty: float
    mean_predicted: float
    observed_rate: float
    slope: float  # logistic recalibration: logit P(y=1) = intercept + slope * logit(p)
    intercept: float
    hist_edges: np.ndarray  # histogram of scores on [0, 1]
    hist_counts: np.ndarray

    @property
    def direction(self) -> str:
        """How the probabilities are off: 'over-confident', 'under-confident', 'too high',
        'too low', or 'none'."""
        return miscalibration_direction(self.slope, self.mean_predicted, self.observed_rate)


def miscalibration_direction(slope: float, mean_predicted: float, observed_rate: float, *,
                             slope_tolerance: float = 0.2, bias_tolerance: float = 0.02) -> str:
    """Name the main pattern: a recalibration slope well below 1 means the probabilities are too
    extreme (over-confident), well above 1 too timid (under-confident); otherwise a shift in the
    mean prediction means they are systematically too high or too low."""
    if np.isfinite(slope) and slope < 1 - slope_tolerance:
        return "over-confident"
    if np.isfinite(slope) and slope > 1 / (1 - slope_tolerance):
        return "under-confident"
    bias = mean_predicted - observed_rate
    if bias > bias_tolerance:
        return "too high"
    if bias < -bias_tolerance:
        return "too low"
    return "none"


def equal_count_bins(p: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Bin index (0..n_bins-1) per row: rows sorted by score and split into ``n_bins`` groups
    whose sizes differ by at most one (ties broken by row order, so the split is stable)."""
    p = np.asarray(p, dtype=float)
    n_bins = max(1, min(int(n_bins), len(p)))
    order = np.argsort(p, kind="mergesort")
    bins = np.empty(len(p), dtype=int)
    for k, chunk in enumerate(np.array_split(order, n_bins)):
        bins[chunk] = k
    return bins


def expected_calibration_error(y: np.ndarray, p: np.ndarray, *, n_bins: int = 10) -> float:
    """Sum over equal-count bins of (bin share) x |mean predicted - observed rate|."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    bins = equal_count_bins(p, n_bins)
    k = bins.max() + 1
    gap = np.abs(np.bincount(bins, p, minlength=k) - np.bincount(bins, y, minlength=k))
    return float(gap.sum() / len(y))  # sum_k n_k/n * |mean_p - mean_y| = sum_k |sum p - sum y| / n


def _logistic_recalibration(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    q = np.clip(p, _LOGIT_CLIP, 1 - _LOGIT_CLIP)
    z = np.log(q / (1 - q)).reshape(-1, 1)
    if np.ptp(z) == 0:
        return float("nan"), float("nan")
    lr = LogisticRegression(C=np.inf, max_iter=1000).fit(z, y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def calibration_analysis(y_true: np.ndarray, p: np.ndarray, *, n_bins: int = 10, n_resamples: int = 200,
                         rng: np.random.Generator | int = 0) -> CalibrationResult:
    """Calibration of probabilities ``p`` for binary outcomes ``y_true`` (1 = positive)."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    y = np.asarray(y_true).astype(int)
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    n = len(y)
    curve_obs, curve_pred = calibration_curve(y, p, n_bins=n_bins, strategy="quantile")

    bins = equal_count_bins(p, n_bins)
    k = int(bins.max()) + 1
    count = np.bincount(bins, minlength=k).astype(float)
    sum_p = np.bincount(bins, p, minlength=k)
    sum_y = np.bincount(bins, y, minlength=k)
    bin_pred, bin_obs = sum_p / count, sum_y / count
    ece = float(np.abs(sum_p - sum_y).sum() / n)

    # consistency resampling: y* ~ Bernoulli(p), same bins, in chunks of resamples
    onehot = np.zeros((n, k))
    onehot[np.arange(n), bins] = 1.0
    per_chunk = max(1, min(n_resamples, _CHUNK_CELLS // max(n, 1)))
    null_sums = []
    done = 0
    while done < n_resamples:
        b = min(per_chunk, n_resamples - done)
        ystar = (rng.random((b, n)) < p).astype(float)
        null_sums.append(ystar @ onehot)  # (b, k) positives per bin
        done += b
    null_y = np.vstack(null_sums)
    null_ece = np.abs(sum_p - null_y).sum(axis=1) / n
    p_value = float((1 + np.sum(null_ece >= ece - 1e-12)) / (1 + n_resamples))
    band_low, band_high = np.percentile(null_y / count, [2.5, 97.5], axis=0)

    base = float(y.mean())
    reliability = float(np.sum(count * (bin_pred - bin_obs) ** 2) / n)
    resolution = float(np.sum(count * (bin_obs - base) ** 2) / n)
    slope, intercept = _logistic_recalibration(y, p)
    edges = np.linspace(0.0, 1.0, 21)
    hist, _ = np.histogram(p, bins=edges)
    return CalibrationResult(
        n=n, n_bins=k, curve_predicted=curve_pred, curve_observed=curve_obs,
        bin_count=count.astype(int), bin_predicted=bin_pred, bin_observed=bin_obs,
        band_low=band_low, band_high=band_high, ece=ece, ece_null_mean=float(null_ece.mean()),
        ece_null_q95=float(np.percentile(null_ece, 95)), p_value=p_value, n_resamples=int(n_resamples),
        brier=float(brier_score_loss(y, p)) if len(np.unique(y)) == 2 else float(np.mean((p - y) ** 2)),
        reliability=reliability, resolution=resolution, uncertainty=base * (1 - base),
        mean_predicted=float(p.mean()), observed_rate=base, slope=slope, intercept=intercept,
        hist_edges=edges, hist_counts=hist,
    )


def top_label_calibration(y_true: np.ndarray, proba: np.ndarray, *, n_bins: int = 10, n_resamples: int = 200,
                          rng: np.random.Generator | int = 0) -> CalibrationResult:
    """Top-label calibration of a k-class model: the confidence of the predicted (most probable)
    class against whether that prediction is right.

    ``y_true`` holds class indices into the columns of ``proba`` (n x k). A top-label calibrated
    model is right on a share ``c`` of the rows where its confidence is ``c``; this is the binary
    analysis of (prediction correct, confidence), so the ECE is the usual top-label ECE and the
    consistency resampling draws "correct" as Bernoulli(confidence).
    """
    proba = np.asarray(proba, dtype=float)
    pred = np.argmax(proba, axis=1)
    correct = (pred == np.asarray(y_true, dtype=int)).astype(int)
    confidence = proba[np.arange(len(pred)), pred]
    return calibration_analysis(correct, confidence, n_bins=n_bins, n_resamples=n_resamples, rng=rng)
