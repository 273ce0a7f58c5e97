"""Shared machinery of the security probes (membership inference, model extraction, attribute
inference): ROC summaries with bootstrap intervals, a small tabular encoder for attack and copy
models, and a context manager that keeps ART quiet.

Nothing here knows about severities or findings.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .metrics import Estimate, bootstrap_counts, percentile_interval, weighted_auc

MAX_LEVELS = 250  # categorical levels kept per column (HistGradientBoosting allows < 256 bins)


# ---- ART ------------------------------------------------------------------------------------------

@contextmanager
def quiet_art() -> Iterator[None]:
    """Silence ART while importing and running it: the "PyTorch not found" warning on import and
    its INFO logging. Restores the logger level and warning filters on exit."""
    logger = logging.getLogger("art")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*PyTorch not found.*")
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


# Settings of the gradient-boosting attack and copy models: small and fast, still flexible.
HGB_PARAMS = {"max_iter": 60, "learning_rate": 0.15, "max_leaf_nodes": 15, "min_samples_leaf": 20,
              "early_stopping": False}


def hgb_params(encoder: TabularEncoder, extra_columns: int = 0, /, **overrides: object) -> dict[str, object]:
    """Keyword arguments for a HistGradientBoosting model on ``encoder.codes`` (plus ``extra_columns``
    numeric columns appended): native categorical splits, as few bins as the levels allow."""
    mask = np.r_[encoder.categorical_mask, np.zeros(extra_columns, dtype=bool)]
    most = max((len(lv) + 1 for lv in encoder.levels), default=0)
    params: dict[str, object] = dict(HGB_PARAMS)
    params.update(categorical_features=mask if mask.any() else None, max_bins=int(min(255, max(64, most))))
    params.update(overrides)
    return params


def fill_empty_columns(X: np.ndarray) -> np.ndarray:
    """``X`` with every column that has no finite value (an all-missing feature) set to 0.

    HistGradientBoosting cannot bin a column without values; a constant column carries the same
    (no) information and is never split on. Returns ``X`` itself when no column is empty."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] == 0:
        return X
    empty = ~np.isfinite(X).any(axis=0)
    if not empty.any():
        return X
    X = X.copy()
    X[:, empty] = 0.0
    return X


def seed_of(rng: np.random.Generator) -> int:
    """An int seed for a library estimator, drawn from a per-check generator."""
    return int(rng.integers(0, 2**31 - 1))


# ---- ROC summaries ------------------------------------------------------------------------------

def _weighted_roc(y: np.ndarray, score: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of each weighted resample (rows of ``counts``) at every distinct score threshold,
    highest threshold first, starting at (0, 0). Shapes (b, d + 1)."""
    y = np.asarray(y).astype(bool)
    order = np.argsort(-np.asarray(score, dtype=float), kind="mergesort")
    s = np.asarray(score, dtype=float)[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    c = counts[:, order]
    wp = np.add.reduceat(c * y[order], starts, axis=1)
    wn = np.add.reduceat(c * ~y[order], starts, axis=1)
    tp, fp = np.cumsum(wp, axis=1), np.cumsum(wn, axis=1)
    P, N = tp[:, -1:], fp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.where(P > 0, tp / np.where(P > 0, P, 1.0), np.nan)
        fpr = np.where(N > 0, fp / np.where(N > 0, N, 1.0), np.nan)
    zeros = np.zeros((len(c), 1))
    return np.hstack([zeros, fpr]), np.hstack([zeros, tpr])


def _advantage(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    return np.max(tpr - fpr, axis=1)


def _tpr_at(fpr: np.ndarray, tpr: np.ndarray, alpha: float) -> np.ndarray:
    return np.max(np.where(fpr <= alpha + 1e-12, tpr, 0.0), axis=1)


@dataclass(frozen=True)
class AttackScore:
    """How well scores separate positives (e.g. members) from negatives, with bootstrap intervals.

    ``advantage`` is the best threshold's TPR − FPR (in-sample, i.e. the attacker's best case);
    ``tpr_at_fpr`` pairs each low false-positive rate with the best TPR at or below it.
    ``roc_fpr``/``roc_tpr`` is the full curve (for plotting).
    """

    n_positive: int
    n_negative: int
    auc: Estimate
    advantage: Estimate
    tpr_at_fpr: tuple[tuple[float, Estimate], ...]
    roc_fpr: np.ndarray
    roc_tpr: np.ndarray

    def tpr_at(self, alpha: float) -> Estimate:
        for a, e in self.tpr_at_fpr:
            if abs(a - alpha) < 1e-12:
                return e
        raise KeyError(alpha)


def attack_score(y: np.ndarray, score: np.ndarray, *, low_fpr: Sequence[float] = (0.01, 0.05),
                 n_resamples: int = 200, confidence: float = 0.95,
                 rng: np.random.Generator) -> AttackScore:
    """AUC, best-threshold advantage and TPR at low FPR of ``score`` for the 0/1 labels ``y``,
    with percentile-bootstrap intervals (rows resampled with replacement)."""
    y = np.asarray(y).astype(int)
    score = np.asarray(score, dtype=float)
    ones = np.ones((1, len(y)))
    fpr0, tpr0 = _weighted_roc(y, score, ones)
    auc0 = float(weighted_auc(y, score, ones)[0])
    adv0 = float(_advantage(fpr0, tpr0)[0])
    tpr0s = [float(_tpr_at(fpr0, tpr0, a)[0]) for a in low_fpr]
    aucs: list[np.ndarray] = []
    advs: list[np.ndarray] = []
    tprs: list[list[np.ndarray]] = [[] for _ in low_fpr]
    for counts in bootstrap_counts(len(y), n_resamples, rng):
        aucs.append(weighted_auc(y, score, counts))
        f, t = _weighted_roc(y, score, counts)
        advs.append(_advantage(f, t))
        for i, a in enumerate(low_fpr):
            tprs[i].append(_tpr_at(f, t, a))
    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0)

    return AttackScore(
        n_positive=int(y.sum()), n_negative=int(len(y) - y.sum()),
        auc=percentile_interval(auc0, cat(aucs), confidence),
        advantage=percentile_interval(adv0, cat(advs), confidence),
        tpr_at_fpr=tuple((float(a), percentile_interval(t0, cat(tprs[i]), confidence))
                         for i, (a, t0) in enumerate(zip(low_fpr, tpr0s))),
        roc_fpr=fpr0[0], roc_tpr=tpr0[0])


# ---- encoding -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TabularEncoder:
    """Numeric matrices of raw feature frames for attack and copy models.

    ``codes``: numeric columns as floats (missing stays NaN) and categorical columns as level
    codes (unknown or missing: NaN), for tree models (``categorical_mask`` marks the codes).
    ``design``: numeric columns standardised (missing: 0, i.e. the mean) and categorical columns
    one-hot (unknown or missing: all zeros), for linear models.
    Levels are those of the fitting frame, most frequent first; at most ``MAX_LEVELS`` are kept,
    the rest share one extra code.
    """

    columns: tuple[str, ...]
    categorical: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]  # per categorical column, as text
    mean: tuple[float, ...]  # per numeric column
    std: tuple[float, ...]

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, columns: Sequence[str], categorical: Sequence[str]) -> TabularEncoder:
        cats = tuple(c for c in columns if c in set(categorical))
        levels = []
        for c in cats:
            counts = frame[c].dropna().astype(str).value_counts()
            order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            levels.append(tuple(k for k, _ in order[:MAX_LEVELS]))
        means, stds = [], []
        for c in columns:
            if c in cats:
                continue
            v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            m = float(v.mean()) if v.size else 0.0
            s = float(v.std()) if v.size else 1.0
            means.append(m)
            stds.append(s if s > 0 else 1.0)
        return cls(tuple(columns), cats, tuple(levels), tuple(means), tuple(stds))

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([c in self.categorical for c in self.columns], dtype=bool)

    def _numeric(self, frame: pd.DataFrame, col: str) -> np.ndarray:
        v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        return np.where(np.isfinite(v), v, np.nan)

    def _code(self, frame: pd.DataFrame, col: str, levels: tuple[str, ...]) -> np.ndarray:
        s = frame[col]
        lookup = {lv: i for i, lv in enumerate(levels)}
        text = s.astype(str).to_numpy()
        missing = s.isna().to_numpy()
        other = float(len(levels)) if len(levels) >= MAX_LEVELS else np.nan
        out = np.array([lookup.get(t, other) for t in text], dtype=float)
        out[missing] = np.nan
        return out

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.columns)))
        k = 0
        for j, c in enumerate(self.columns):
            if c in self.categorical:
                out[:, j] = self._code(frame, c, self.levels[k])
                k += 1
            else:
                out[:, j] = self._numeric(frame, c)
        return out

    def design(self, frame: pd.DataFrame) -> np.ndarray:
        parts, k, i = [], 0, 0
        for c in self.columns:
            if c in self.categorical:
                code = self._code(frame, c, self.levels[k])
                n = len(self.levels[k])
                onehot = np.zeros((len(frame), n))
                ok = np.isfinite(code) & (code < n)
                onehot[np.flatnonzero(ok), code[ok].astype(int)] = 1.0
                parts.append(onehot)
                k += 1
            else:
                v = (self._numeric(frame, c) - self.mean[i]) / self.std[i]
                parts.append(np.nan_to_num(v, nan=0.0)[:, None])
                i += 1
        return np.hstack(parts) if parts else np.empty((len(frame), 0))


def class_index(values: np.ndarray, classes: Sequence[object]) -> np.ndarray:
    """Index of each target value in ``classes`` (tolerant of 1 vs "1" vs 1.0); -1 when absent."""
    def same(a: Any, b: Any) -> bool:
        if a == b:
            return True
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return str(a) == str(b)

    lookup: dict[object, int] = {}
    out = np.full(len(values), -1, dtype=int)
    for i, v in enumerate(values):
        key = v if isinstance(v, (str, int, float, bool, np.generic)) else str(v)
        if key not in lookup:
            lookup[key] = next((k for k, c in enumerate(classes) if same(v, c)), -1)
        out[i] = lookup[key]
    return out
