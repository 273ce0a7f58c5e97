"""Signs of target leakage: single-feature predictive power and identifier-like columns.

Pure numerics. Single-feature power is *out of sample*: a depth-limited decision tree is fitted
on one feature of the training data and scored on the test data (or, without training data,
by k-fold cross-validation on the test data), so a column that merely memorises the training
rows (an identifier) gets no power, while a copy of the target gets nearly perfect power.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

MISSING_LEVEL = "\x00missing"  # a level text no real value uses
ID_TOKENS = frozenset({"id", "ids", "uuid", "guid", "key", "index", "idx", "identifier", "rowid"})


@dataclass(frozen=True)
class FeaturePower:
    """How well one feature alone predicts the target out of sample.

    ``metric`` is ``"auc"`` (binary classification), ``"auc_ovr_macro"`` (k classes: the mean over
    the classes of the one-vs-rest AUC of the feature's k-class prediction) or ``"r2"`` (regression).
    ``low``/``high``: an interval at the ``confidence`` of ``single_feature_power`` (AUC:
    Hanley-McNeil, for k classes the mean of the per-class half-widths, an upper bound on the macro
    average's; R²: percentile bootstrap of the held-out rows).
    """

    feature: str
    kind: str  # "numeric" | "categorical"
    metric: str
    value: float
    method: str  # "train/test" | "k-fold CV on test"
    low: float = float("nan")
    high: float = float("nan")


@dataclass(frozen=True)
class IdLikeStats:
    """How much a column looks like a row identifier.

    ``value_kind`` is ``"integer"`` (integers, including integral floats), ``"text"`` or ``"float"``
    (continuous). ``unique_share`` is the smallest share of distinct values among non-missing
    values over the frames; ``density`` (integers only) is the number of distinct values divided
    by the span max - min + 1 over all frames, near 1 for a running number.
    """

    feature: str
    value_kind: str
    unique_share: float
    density: float
    name_hint: bool


# ---- encoding ----------------------------------------------------------------------------------

def _level_text(values: pd.Series) -> pd.Series:
    """Levels as text, numbers by value (1 in train and 1.0 in test are one level)."""
    from .quality import level_text

    return level_text(values).fillna(MISSING_LEVEL).astype(str)


def _ordinal_mapping(levels: pd.Series, y: np.ndarray, *, smoothing: float = 5.0) -> pd.Series:
    """Level -> code, ordering levels by their (smoothed) mean target so a shallow tree can
    separate any grouping of them. Learned on training rows only."""
    y = np.asarray(y, dtype=float)
    prior = float(y.mean())
    stats = pd.DataFrame({"level": levels.to_numpy(), "y": y}).groupby("level", sort=True)["y"].agg(["sum", "count"])
    stats["m"] = (stats["sum"] + smoothing * prior) / (stats["count"] + smoothing)
    stats["name"] = stats.index.astype(str)
    stats = stats.sort_values(["m", "name"], kind="mergesort")
    return pd.Series(np.arange(len(stats), dtype=float), index=stats.index)


def _ordinal_mapping_k(levels: pd.Series, y: np.ndarray, n_classes: int, *, smoothing: float = 5.0) -> pd.Series:
    """k classes: level -> code, levels grouped by their most frequent class and ordered within it
    by that class's (smoothed) share, so levels that give one class away sit next to each other."""
    yk = np.asarray(y).astype(int)
    frame = pd.DataFrame({"level": levels.to_numpy(), "y": yk})
    counts = pd.crosstab(frame["level"], frame["y"]).reindex(columns=range(n_classes), fill_value=0)
    prior = np.bincount(yk, minlength=n_classes) / max(len(yk), 1)
    shares = (counts.to_numpy() + smoothing * prior) / (counts.sum(axis=1).to_numpy()[:, None] + smoothing)
    top = shares.argmax(axis=1)
    keys = pd.DataFrame({"top": top, "share": shares[np.arange(len(top)), top], "name": counts.index.astype(str)},
                        index=counts.index)
    keys = keys.sort_values(["top", "share", "name"], kind="mergesort")
    return pd.Series(np.arange(len(keys), dtype=float), index=keys.index)


def _encode(train_values: pd.Series, y_train: np.ndarray, other: pd.Series, *, categorical: bool,
            n_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """One feature as a float column for train and another split; unseen levels become NaN."""
    if categorical:
        tr = _level_text(train_values)
        te = _level_text(other)
        mapping = (_ordinal_mapping_k(tr, y_train, n_classes) if n_classes > 2 else _ordinal_mapping(tr, y_train))
        return (tr.map(mapping).to_numpy(dtype=float), te.map(mapping).to_numpy(dtype=float))

    def num(s: pd.Series) -> np.ndarray:
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        return np.where(np.isfinite(x), x, np.nan)  # a new array: never write into the user's data

    return num(train_values), num(other)


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, task: str,
                 max_depth: int, min_leaf: int, seed: int, n_classes: int = 2) -> np.ndarray:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    Xtr, Xte = x_train.reshape(-1, 1), x_test.reshape(-1, 1)
    if task == "classification" and n_classes > 2:  # the n x k class probabilities
        yk = y_train.astype(int)
        out = np.zeros((len(x_test), n_classes))
        if np.unique(yk).size < 2:
            out[:] = np.bincount(yk, minlength=n_classes) / max(len(yk), 1)
            return out
        tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_leaf, random_state=seed)
        tree.fit(Xtr, yk)
        out[:, np.asarray(tree.classes_, dtype=int)] = tree.predict_proba(Xte)
        return out
    if task == "classification":
        if np.unique(y_train).size < 2:
            return np.full(len(x_test), float(np.mean(y_train)))
        tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_leaf, random_state=seed)
        tree.fit(Xtr, y_train)
        return tree.predict_proba(Xte)[:, list(tree.classes_).index(1)]
    tree = DecisionTreeRegressor(max_depth=max_depth, min_samples_leaf=min_leaf, random_state=seed)
    tree.fit(Xtr, y_train)
    return tree.predict(Xte)


def _score(y: np.ndarray, pred: np.ndarray, task: str, seed: int = 0, n_resamples: int = 200,
           confidence: float = 0.95) -> tuple[float, float, float]:
    """(value, low, high) of the held-out AUC (binary), macro one-vs-rest AUC (``pred`` n x k) or R²."""
    from sklearn.metrics import r2_score

    from .segments import auc_interval

    nan = float("nan")
    if task == "classification" and np.ndim(pred) == 2:
        yk = y.astype(int)
        ivs = [auc_interval(yk == j, pred[:, j], confidence) for j in range(pred.shape[1])
               if 0 < np.sum(yk == j) < len(yk)]
        if not ivs:
            return nan, nan, nan
        value = float(np.mean([iv.value for iv in ivs]))
        # half-width: the mean of the per-class half-widths bounds the macro average's (Cauchy-Schwarz)
        half = float(np.mean([(iv.high - iv.low) / 2 for iv in ivs]))
        return value, max(value - half, 0.0), min(value + half, 1.0)
    if task == "classification":
        if np.unique(y).size < 2:
            return nan, nan, nan
        iv = auc_interval(y.astype(int), pred, confidence)
        return float(iv.value), float(iv.low), float(iv.high)
    value = float(r2_score(y, pred))
    n = len(y)
    if n < 3:
        return value, nan, nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    yy, pp = y[idx], pred[idx]
    sst = ((yy - yy.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    sse = ((yy - pp) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = 1 - sse / sst
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return value, nan, nan
    tail = (100 - 100 * confidence) / 2  # 2.5 at 95%, exactly
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return value, float(lo), float(hi)


def _min_leaf(n: int, fraction: float) -> int:
    return max(1, int(round(fraction * n)))


# ---- single-feature power ----------------------------------------------------------------------

def single_feature_power(X_test: pd.DataFrame, y_test: np.ndarray, *, task: str,
                         X_train: pd.DataFrame | None = None, y_train: np.ndarray | None = None,
                         categorical: Sequence[str] = (), max_depth: int = 3, min_leaf_fraction: float = 0.01,
                         cv_folds: int = 5, seed: int = 0, n_classes: int = 2,
                         confidence: float = 0.95) -> tuple[FeaturePower, ...]:
    """Out-of-sample power of each column of ``X_test`` alone, in column order, each with an
    interval at ``confidence``.

    ``y`` is 0/1 for binary classification, the class index 0..k-1 with ``n_classes`` = k > 2
    (the tree then predicts the k class probabilities and the power is the macro one-vs-rest AUC),
    and numeric for regression. Categorical columns are ordinal-coded by mean target on the fitting
    rows (k classes: by the level's most frequent class, then that class's share, so a level that
    gives the class away is separable) - missing is a level, unseen levels are missing; numeric
    columns keep their value (missing handled by the tree).
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    cats = set(categorical)
    multi = task == "classification" and n_classes > 2
    metric = ("auc_ovr_macro" if multi else "auc") if task == "classification" else "r2"
    y_test = np.asarray(y_test, dtype=float)
    folds: list[tuple[np.ndarray, np.ndarray]] = []
    if X_train is None:
        n = len(X_test)
        if task == "classification":
            k = int(min(cv_folds, np.bincount(y_test.astype(int)).min()))
            splitter = StratifiedKFold(n_splits=max(k, 2), shuffle=True, random_state=seed)
        else:
            splitter = KFold(n_splits=min(cv_folds, n), shuffle=True, random_state=seed)
        folds = list(splitter.split(np.zeros((n, 1)), y_test if task == "classification" else None))
        method = f"{len(folds)}-fold CV on test"
    else:
        y_fit = np.asarray(y_train, dtype=float)
        method = "train/test"

    out = []
    for col in X_test.columns:
        is_cat = col in cats or not pd.api.types.is_numeric_dtype(X_test[col]) or \
            pd.api.types.is_bool_dtype(X_test[col]) or \
            (X_train is not None and not pd.api.types.is_numeric_dtype(X_train[col]))
        if X_train is not None:
            xtr, xte = _encode(X_train[col], y_fit, X_test[col], categorical=is_cat, n_classes=n_classes)
            pred = _fit_predict(xtr, y_fit, xte, task=task, max_depth=max_depth, seed=seed, n_classes=n_classes,
                                min_leaf=_min_leaf(len(xtr), min_leaf_fraction))
        else:
            pred = np.empty((len(X_test), n_classes)) if multi else np.empty(len(X_test))
            s = X_test[col].reset_index(drop=True)
            for fit_idx, hold_idx in folds:
                xtr, xte = _encode(s.iloc[fit_idx], y_test[fit_idx], s.iloc[hold_idx], categorical=is_cat,
                                   n_classes=n_classes)
                pred[hold_idx] = _fit_predict(xtr, y_test[fit_idx], xte, task=task, max_depth=max_depth,
                                              seed=seed, n_classes=n_classes,
                                              min_leaf=_min_leaf(len(xtr), min_leaf_fraction))
        value, low, high = _score(y_test, pred, task, seed=seed, confidence=confidence)
        out.append(FeaturePower(feature=col, kind="categorical" if is_cat else "numeric", metric=metric,
                                value=value, method=method, low=low, high=high))
    return tuple(out)


def model_power(y: np.ndarray, score: np.ndarray, *, task: str) -> float:
    """The model's own power on the test rows, on the metric ``single_feature_power`` reports:
    AUC (binary: ``y`` 0/1, ``score`` P(positive)), macro one-vs-rest AUC (``score`` the n x k
    probabilities, ``y`` class indices; over the classes present and not on every row) or R²
    (regression). NaN when no AUC is defined (a single class)."""
    from sklearn.metrics import r2_score, roc_auc_score

    if task == "classification" and np.ndim(score) == 2:
        P = np.asarray(score, dtype=float)
        present = [j for j in range(P.shape[1]) if 0 < np.sum(y == j) < len(y)]
        return float(np.mean([roc_auc_score(y == j, P[:, j]) for j in present])) if present else float("nan")
    if task == "classification":
        return float(roc_auc_score(y, score)) if np.unique(y).size > 1 else float("nan")
    return float(r2_score(y, score))


# ---- identifier-like columns -------------------------------------------------------------------

def name_tokens(name: str) -> tuple[str, ...]:
    """Lower-case word tokens of a column name (snake, kebab, camel and Pascal case)."""
    return tuple(t.lower() for t in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", str(name)))


def has_id_name(name: str) -> bool:
    return any(t in ID_TOKENS for t in name_tokens(name))


def _value_kind(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "other"
    if pd.api.types.is_integer_dtype(values):
        return "integer"
    if pd.api.types.is_float_dtype(values):
        v = values.to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        return "integer" if v.size and np.all(v == np.round(v)) else "float"
    if pd.api.types.is_string_dtype(values) or isinstance(values.dtype, pd.CategoricalDtype):
        return "text"
    return "other"


def id_like_stats(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> tuple[IdLikeStats, ...]:
    """Uniqueness, density and name of each column, measured over every frame given."""
    out = []
    for col in columns:
        parts = [f[col] for f in frames if col in f.columns]
        kinds = {_value_kind(p) for p in parts}
        kind = kinds.pop() if len(kinds) == 1 else "other"
        shares = []
        for p in parts:
            nn = p.dropna()
            shares.append(nn.nunique() / len(nn) if len(nn) else 0.0)
        density = float("nan")
        if kind == "integer":
            allv = np.concatenate([pd.to_numeric(p, errors="coerce").to_numpy(dtype=float) for p in parts])
            allv = allv[np.isfinite(allv)]
            if allv.size:
                span = float(allv.max() - allv.min() + 1)
                density = float(np.unique(allv).size / span)
        out.append(IdLikeStats(feature=col, value_kind=kind, unique_share=float(min(shares)) if shares else 0.0,
                               density=density, name_hint=has_id_name(col)))
    return tuple(out)
