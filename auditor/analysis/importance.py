"""Model-agnostic SHAP importance for DataFrame models with string columns.

shap's maskers need a numeric matrix (STACK.md, pitfall 3), so categorical features are
integer-coded with codes learned from the data the audit has; the explained function decodes
a coded matrix back into a DataFrame with the original dtypes and calls the model once per
shap evaluation batch. Values are computed by ``shap.PermutationExplainer`` with an
``Independent`` masker on a coded background sample, so contributions are on the scale of the
explained output (probability of the positive class, or the regression prediction) and add up:
base value + sum of contributions = prediction, row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

MISSING_CODE = -1.0


@dataclass(frozen=True)
class FeatureCoder:
    """Integer codes for categorical columns (sorted levels; missing or unseen -> -1) and
    float64 for numeric ones, with the inverse that restores the original dtypes."""

    features: tuple[str, ...]
    levels: tuple[tuple[Any, ...] | None, ...]  # per feature: categorical levels, or None if numeric
    dtypes: tuple[Any, ...]

    @classmethod
    def fit(cls, frames: Sequence[pd.DataFrame], features: Sequence[str],
            categorical: Sequence[str]) -> "FeatureCoder":
        cats = set(categorical)
        levels: list[tuple[Any, ...] | None] = []
        dtypes = []
        for col in features:
            first = frames[0][col]
            dtypes.append(first.dtype)
            is_cat = col in cats or not pd.api.types.is_numeric_dtype(first) or pd.api.types.is_bool_dtype(first)
            if not is_cat:
                levels.append(None)
                continue
            values = pd.concat([f[col] for f in frames], ignore_index=True).dropna().unique().tolist()
            levels.append(tuple(sorted(values, key=_level_key)))
        return cls(tuple(features), tuple(levels), tuple(dtypes))

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(f for f, lv in zip(self.features, self.levels) if lv is not None)

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(X), len(self.features)), dtype=float)
        for j, (col, lv) in enumerate(zip(self.features, self.levels)):
            if lv is None:
                out[:, j] = pd.to_numeric(X[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            else:
                codes = pd.Categorical(X[col], categories=pd.Index(lv, dtype=object)).codes
                out[:, j] = codes.astype(float)
        return out

    def decode(self, Z: np.ndarray) -> pd.DataFrame:
        Z = np.asarray(Z, dtype=float).reshape(-1, len(self.features))
        cols: dict[str, Any] = {}
        for j, (col, lv, dtype) in enumerate(zip(self.features, self.levels, self.dtypes)):
            z = Z[:, j]
            if lv is None:
                cols[col] = _restore(z, dtype, missing=bool(np.isnan(z).any()))
            else:
                codes = np.where(np.isfinite(z), z, MISSING_CODE).astype(int)
                codes[(codes < 0) | (codes >= len(lv))] = -1
                table = np.empty(len(lv) + 1, dtype=object)
                table[:-1] = lv  # code -1 picks the trailing None
                cols[col] = _restore(table[codes], dtype, missing=bool((codes < 0).any()))
        return pd.DataFrame(cols, copy=False)


def _restore(values: np.ndarray, dtype: Any, *, missing: bool) -> Any:
    """``values`` in the column's original dtype where it can hold them (a numpy int or bool
    column cannot hold missing values: those stay float or object)."""
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        return pd.Series(values, dtype=object, copy=False)  # keep object: pandas 3 would infer str
    if isinstance(dtype, np.dtype):
        if values.dtype == dtype or (missing and dtype.kind in "biu"):
            return values
        try:
            return values.astype(dtype)
        except (TypeError, ValueError):
            return values
    try:
        return pd.array(values, dtype=dtype)  # extension dtypes: str, category, Int64, boolean ...
    except (TypeError, ValueError):
        return values


def _level_key(v: Any) -> tuple[int, Any]:
    if isinstance(v, (bool, np.bool_)):
        return (0, int(v))
    if isinstance(v, (int, float, np.integer, np.floating)):
        return (1, float(v))
    return (2, str(v))


def min_max_evals(n_features: int) -> int:
    """The smallest budget shap's permutation explainer accepts: one forward and one backward
    pass over all features."""
    return 2 * n_features + 1


@dataclass(frozen=True)
class ShapBudget:
    rows: int
    background: int
    max_evals: int
    capped: bool

    @property
    def model_rows(self) -> int:
        """Upper bound on the rows the model scores."""
        return self.rows * self.background * self.max_evals


def plan_budget(n_features: int, *, rows: int, background: int, max_evals: int | None = None,
                max_model_rows: int = 1_000_000, min_rows: int = 20, min_background: int = 10) -> ShapBudget:
    """Rows to explain, background size and evaluations per row, shrunk (background first,
    then explained rows) so that rows x background x max_evals stays within ``max_model_rows``."""
    me = max(int(max_evals or 0), min_max_evals(n_features))
    bg, r = int(background), int(rows)
    if r * bg * me > max_model_rows:
        bg = min(bg, max(min_background, max_model_rows // max(r * me, 1)))
        r = min(r, max(min_rows, max_model_rows // max(bg * me, 1)))
    return ShapBudget(rows=r, background=bg, max_evals=me, capped=(r, bg) != (int(rows), int(background)))


@dataclass(frozen=True)
class ShapImportance:
    features: tuple[str, ...]
    values: np.ndarray  # (rows, features) contributions
    base_values: np.ndarray  # (rows,) expected output over the background
    outputs: np.ndarray  # (rows,) the explained output f(x) for each row
    data: pd.DataFrame  # the explained rows, original values
    mean_abs: np.ndarray  # (features,) mean |contribution|
    max_evals: int
    n_background: int
    n_model_rows: int  # rows actually scored by the model

    @property
    def share(self) -> np.ndarray:
        total = self.mean_abs.sum()
        return self.mean_abs / total if total > 0 else np.zeros_like(self.mean_abs)

    def ranking(self) -> list[int]:
        """Feature indices by decreasing mean |SHAP|, ties by name."""
        return sorted(range(len(self.features)), key=lambda j: (-self.mean_abs[j], self.features[j]))

    def top_contributions(self, row: int, k: int = 5) -> list[tuple[str, Any, float]]:
        """The ``k`` largest |contributions| of one explained row: (feature, value, contribution)."""
        v = self.values[row]
        order = sorted(range(len(self.features)), key=lambda j: (-abs(v[j]), self.features[j]))[:k]
        return [(self.features[j], self.data.iloc[row, j], float(v[j])) for j in order]


def _value_masker(shap: Any, background: np.ndarray) -> Any:
    """shap's Independent masker, masking by value with ``np.where``.

    The stock masker's delta-masking kernel is a large numba function: compiling it on first use
    tripled the one-off JIT cost (about 20 s instead of 7 s on two busy cores). Its full-mask
    fallback (x * mask + data * ~mask) would turn a NaN into NaN in the other operand. Masking by
    value avoids both; the permutation explainer then takes its full-mask path and returns the
    same values as with the stock masker (the tests compare it with brute-force Shapley values).
    """

    class ValueMasker(shap.maskers.Independent):
        def __init__(self, data: np.ndarray) -> None:
            super().__init__(data, max_samples=len(data))
            self.supports_delta_masking = False
            self.immutable_outputs = True  # every call returns a fresh array: no defensive copy

        def __call__(self, mask: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
            mask = np.broadcast_to(np.asarray(mask, dtype=bool), x.shape)  # (True/False: all/none)
            return (np.where(mask, x, self.data),)

    return ValueMasker(background)


def shap_importance(predict: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, background: pd.DataFrame,
                    *, coder: FeatureCoder, max_evals: int | None = None, seed: int = 0) -> ShapImportance:
    """SHAP values of ``predict`` (DataFrame -> 1-d output) for the rows of ``X`` against
    ``background``, by the permutation method on integer-coded features.

    shap's permutation explainer shuffles with numpy's global generator; it is seeded with
    ``seed`` for the call and the global state is restored afterwards.
    """
    import warnings

    with warnings.catch_warnings():  # shap's import warns about matplotlib deprecations
        warnings.simplefilter("ignore")
        import shap

    features = coder.features
    Z = coder.encode(X[list(features)])
    B = coder.encode(background[list(features)])
    me = max(int(max_evals or 0), min_max_evals(len(features)))
    calls = {"rows": 0}

    def f(z: np.ndarray) -> np.ndarray:
        calls["rows"] += len(z)
        return np.asarray(predict(coder.decode(z)), dtype=float)

    masker = _value_masker(shap, B)
    state = np.random.get_state()
    try:
        explainer = shap.PermutationExplainer(f, masker, seed=int(seed), feature_names=list(features))
        # One row per call: shap 0.51's Explainer.__call__ passes its (growing) list of main effects
        # as the ``main_effects`` flag, which from the second row of a batch on doubles the model
        # calls. A fresh call per row keeps the flag False; the seeded global generator carries on.
        # batch_size counts masks: all 2M+1 masks of a permutation go to the model in one call
        rows = [explainer(Z[i:i + 1], max_evals=me, batch_size=min_max_evals(len(features)), silent=True)
                for i in range(len(Z))]
    finally:
        np.random.set_state(state)
    values = np.vstack([np.asarray(r.values, dtype=float).reshape(1, len(features)) for r in rows]) \
        if rows else np.empty((0, len(features)))
    base = np.array([float(np.asarray(r.base_values, dtype=float).reshape(-1)[0]) for r in rows])
    outputs = f(Z)  # the explained output itself, to check additivity against
    return ShapImportance(
        features=tuple(features), values=values, base_values=base, outputs=outputs,
        data=X[list(features)].reset_index(drop=True), mean_abs=np.abs(values).mean(axis=0),
        max_evals=me, n_background=len(B), n_model_rows=int(calls["rows"]),
    )
