"""Monotone constraints for gradient-boosting estimators: which estimators take them, which model
column a raw feature becomes after the preprocessing, and the constraint vector to set.

A monotone constraint applies to one column the final estimator sees. Inside a pipeline that is
the preprocessing's output, so a raw feature can be constrained only when exactly one output
column moves with it, that column depends on no other feature, and it is a monotone function of
the feature (a scaler, an imputer, an ordinal code in order, a passthrough). A one-hot encoded or
otherwise expanded feature cannot be constrained: ``map_feature`` says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .partial_dependence import _column

HGB = "hist_gradient_boosting"
LIGHTGBM = "lightgbm"
XGBOOST = "xgboost"
FAMILY_NAMES = {HGB: "scikit-learn HistGradientBoosting", LIGHTGBM: "LightGBM", XGBOOST: "XGBoost"}
PARAMETER = {HGB: "monotonic_cst", LIGHTGBM: "monotone_constraints", XGBOOST: "monotone_constraints"}


def estimator_family(est: Any) -> str | None:
    """``HGB``, ``LIGHTGBM`` or ``XGBOOST`` for an estimator that takes monotone constraints, else None."""
    for cls in type(est).__mro__:
        module, name = cls.__module__, cls.__name__
        if module.startswith("sklearn.ensemble") and name.startswith("HistGradientBoosting"):
            return HGB
        if module.startswith("lightgbm") and name.startswith("LGBM"):
            return LIGHTGBM
        if module.startswith("xgboost") and name.startswith("XGB"):
            return XGBOOST
    return None


@dataclass(frozen=True)
class ColumnMap:
    """Where one raw feature goes in the matrix the final estimator sees.

    ``columns``: the output columns that change when only this feature changes; ``direction``:
    +1 (or -1) when there is one such column, a function of this feature alone that rises (or
    falls) with it, 0 otherwise; ``reason`` says why the feature cannot be constrained ("" when it can).
    """

    feature: str
    columns: tuple[int, ...]
    names: tuple[str, ...]
    direction: int
    reason: str = ""

    @property
    def constrainable(self) -> bool:
        return self.direction != 0 and len(self.columns) == 1

    @property
    def column(self) -> int:
        return self.columns[0]


def _matrix(a: Any) -> np.ndarray:
    """The transform's output as a 2-d array: floats, or objects when some columns are not numbers."""
    if hasattr(a, "toarray"):
        a = a.toarray()
    try:
        return np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        return np.asarray(a, dtype=object)


def _differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise a != b, with two missing values equal."""
    return ~((a == b) | (pd.isna(a) & pd.isna(b)))


def map_feature(transform: Callable[[pd.DataFrame], Any], X: pd.DataFrame, feature: str, values: Sequence[Any],
                *, names: Sequence[str] | None = None, categorical: bool = False) -> ColumnMap:
    """Find the output column of ``transform`` (the fitted preprocessing) that carries ``feature``.

    Every row of ``X`` is set to each of ``values`` (the feature's ordered grid) in turn and
    transformed: the columns that change across the grid carry the feature; a column that also
    differs between rows at one grid value mixes in other features.
    """
    vals = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if len(vals) < 2:
        return ColumnMap(feature, (), (), 0, f"{feature} has fewer than two observed values")
    X = X.reset_index(drop=True)
    n = len(X)
    stacked = pd.concat([X] * len(vals), ignore_index=True)
    stacked[feature] = _column(np.repeat(np.asarray(vals, dtype=object), n), X[feature].dtype)
    T = _matrix(transform(stacked))
    T = T.reshape(len(vals), n, -1)  # (grid, rows, columns)
    moves = np.any(_differs(T[1:], T[:-1]), axis=(0, 1))
    cols = tuple(int(c) for c in np.flatnonzero(moves))
    col_names = tuple(str(names[c]) if names is not None and c < len(names) else f"column {c}" for c in cols)
    if not cols:
        return ColumnMap(feature, cols, col_names, 0,
                         f"the preprocessing drops {feature} (no model column moves with it)")
    if len(cols) > 1:
        how = "one-hot encoded" if categorical or _looks_one_hot(T[:, :, list(cols)]) else "expanded"
        return ColumnMap(feature, cols, col_names, 0,
                         f"{feature} is {how} into {len(cols)} model columns ({', '.join(col_names[:4])}"
                         f"{', ...' if len(cols) > 4 else ''}); a monotone constraint applies to one column, "
                         f"so {feature} cannot be constrained")
    c = cols[0]
    try:
        M = np.asarray(T[:, :, c], dtype=float)
    except (TypeError, ValueError):
        return ColumnMap(feature, cols, col_names, 0, f"the model column {col_names[0]} that carries {feature} "
                                                      "is not numeric")
    if np.any(_differs(M[:, 1:], M[:, :1])):
        return ColumnMap(feature, cols, col_names, 0,
                         f"the model column {col_names[0]} that carries {feature} also depends on other features, "
                         "so a constraint on it is not a constraint on the feature")
    curve = M[:, 0]
    steps = np.diff(curve)
    if np.all(steps >= 0) and np.any(steps > 0):
        return ColumnMap(feature, cols, col_names, 1)
    if np.all(steps <= 0) and np.any(steps < 0):
        return ColumnMap(feature, cols, col_names, -1)
    return ColumnMap(feature, cols, col_names, 0,
                     f"the model column {col_names[0]} is not a monotone function of {feature}")


def _looks_one_hot(T: np.ndarray) -> bool:
    finite = T[np.isfinite(T)]
    return bool(finite.size) and bool(np.all(np.isin(finite, (0.0, 1.0))))


def existing_constraints(family: str, value: Any, n_columns: int, names: Sequence[str] | None) -> list[int]:
    """The constraints an estimator already has, as one int per model column (0: none)."""
    out = [0] * n_columns
    if value is None or (isinstance(value, str) and not value.strip()):
        return out
    if isinstance(value, Mapping):
        index = {str(n): i for i, n in enumerate(names or ())}
        for key, v in value.items():
            i = index.get(str(key))
            if i is None:
                raise ValueError(f"the existing {PARAMETER[family]} names {key!r}, which is not a model column")
            out[i] = int(np.sign(int(v)))
        return out
    if isinstance(value, str):
        items = [s for s in re.split(r"[(),\s]+", value) if s]
        value = [int(s) for s in items]
    vals = [int(np.sign(int(v))) for v in np.asarray(value).ravel()]
    if len(vals) != n_columns:
        raise ValueError(f"the existing {PARAMETER[family]} has {len(vals)} entries for {n_columns} model columns")
    return vals


def constraint_value(family: str, vector: Sequence[int]) -> Any:
    """The parameter value for an estimator family (XGBoost's portable string form)."""
    ints = [int(v) for v in vector]
    if family == XGBOOST:
        return "(" + ",".join(str(v) for v in ints) + ")"
    return ints


# ---- what the refit cost ----------------------------------------------------------------------

def performance(task: str, y: np.ndarray, score: np.ndarray, label: np.ndarray, *,
                proba: np.ndarray | None = None, y_index: np.ndarray | None = None) -> dict[str, float]:
    """The test metrics a constrained refit is compared on: AUC and accuracy (two classes),
    accuracy and log loss (k classes), RMSE and MAE (regression)."""
    from sklearn.metrics import log_loss, roc_auc_score

    if task != "classification":
        r = np.asarray(y, dtype=float) - np.asarray(score, dtype=float)
        return {"rmse": float(np.sqrt(np.mean(r ** 2))), "mae": float(np.mean(np.abs(r)))}
    if proba is not None and proba.shape[1] > 2 and y_index is not None:
        yi = np.asarray(y_index).astype(int)
        return {"accuracy": float(np.mean(np.argmax(proba, axis=1) == yi)),
                "log_loss": float(log_loss(yi, np.clip(proba, 1e-15, 1.0), labels=np.arange(proba.shape[1])))}
    yb = np.asarray(y).astype(int)
    auc = float(roc_auc_score(yb, score)) if 0 < yb.sum() < len(yb) else float("nan")
    return {"auc": auc, "accuracy": float(np.mean(np.asarray(label).astype(int) == yb))}
