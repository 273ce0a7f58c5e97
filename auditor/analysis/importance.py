"""Model-agnostic SHAP importance for DataFrame models with string columns.

shap's maskers need a numeric matrix (STACK.md, pitfall 3), so categorical features are
integer-coded with codes learned from the data the audit has; the explained function decodes
a coded matrix back into a DataFrame with the original dtypes and calls the model once per
shap evaluation batch. Values are computed by ``shap.PermutationExplainer`` with an
``Independent`` masker on a coded background sample, so contributions are on the scale of the
explained output (probability of one class, or the regression prediction) and add up:
base value + sum of contributions = prediction, row by row.

Samples (:func:`stratified_sample`): rows with rare non-modal values of a spiked (zero-inflated)
numeric feature, such as a capital gain that is 0 for 92% of people, carry most of that feature's
attribution; a plain random sample of 200 rows sees anywhere from 5 to 30 of them and the
feature's rank moves with the seed. Rows are therefore stratified by those values, each stratum
gets its exact proportional share (and rare strata at least a minimum count), and every explained
row carries the weight of the population rows it stands for, so the global importance stays an
unbiased estimate. :func:`share_intervals` bootstraps the importance shares within strata.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .memo import RowMemo
from .sampling import level_key

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
            categorical: Sequence[str]) -> FeatureCoder:
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
            levels.append(tuple(sorted(values, key=level_key)))
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
    mean_abs: np.ndarray  # (features,) mean |contribution| (weighted by ``weights``)
    max_evals: int
    n_background: int
    n_model_rows: int  # model evaluations the explainer asked for (rows of masked data)
    n_scored_rows: int  # distinct ones among them: the rows the model scored
    weights: np.ndarray | None = None  # (rows,) population rows each explained row stands for (0: not in the sample)
    group_values: np.ndarray | None = None  # (rows, features, groups): contributions against each background group

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


def _value_masker(shap: Any, background: np.ndarray, recorder: dict | None = None) -> Any:
    """shap's Independent masker, masking by value with ``np.where``.

    The stock masker's delta-masking kernel is a large numba function: compiling it on first use
    tripled the one-off JIT cost (about 20 s instead of 7 s on two busy cores). Its full-mask
    fallback (x * mask + data * ~mask) would turn a NaN into NaN in the other operand. Masking by
    value avoids both; the permutation explainer then takes its full-mask path and returns the
    same values as with the stock masker (the tests compare it with brute-force Shapley values).

    With ``recorder``, every mask and the explained row's variant cells are recorded, so the
    model outputs can be split by background row afterwards (see :func:`_group_values`).
    """

    class ValueMasker(shap.maskers.Independent):
        def __init__(self, data: np.ndarray) -> None:
            super().__init__(data, max_samples=len(data))
            self.supports_delta_masking = False
            self.immutable_outputs = True  # every call returns a fresh array: no defensive copy

        def invariants(self, x: np.ndarray) -> np.ndarray:
            inv = super().invariants(x)
            if recorder is not None and recorder.get("on"):
                recorder["variants"] = ~np.asarray(inv, dtype=bool)
            return inv

        def __call__(self, mask: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
            if recorder is not None and recorder.get("on"):
                recorder["masks"].append(np.array(mask, dtype=bool).reshape(-1))
            mask = np.broadcast_to(np.asarray(mask, dtype=bool), x.shape)  # (True/False: all/none)
            return (np.where(mask, x, self.data),)

    return ValueMasker(background)


def _group_values(masks: list[np.ndarray], outs: list[np.ndarray], variants: np.ndarray | None,
                  groups: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray] | None:
    """One row's SHAP values against each background group, from the recorded masks and model outputs
    of shap's permutation explainer: (features, groups) values and (groups,) base values.

    shap scores, for each mask, the background rows whose masked value changes (all rows for the
    first mask of a call) and carries the other rows' outputs over; the permutation explainer adds
    the output change of each one-feature step to that feature (forward passes switch features on,
    backward passes off) and divides by twice the number of permutations. Rebuilding the same per
    background row and averaging within groups gives each group's values; returns None when the
    recording does not fit that pattern (the caller checks the group values against shap's)."""
    n_bg = len(groups)
    n_calls = len(outs)
    if n_calls == 0 or len(masks) % n_calls:
        return None
    per = len(masks) // n_calls
    n_groups = int(groups.max()) + 1
    size = np.bincount(groups, minlength=n_groups).astype(float)
    values = np.zeros((n_features, n_groups))
    base = np.zeros(n_groups)
    for c in range(n_calls):
        out = np.asarray(outs[c], dtype=float).reshape(-1)
        ms = masks[c * per:(c + 1) * per]
        full = np.empty((per, n_bg))
        pos = 0
        for t, m in enumerate(ms):
            if t == 0 or variants is None:
                rows = np.ones(n_bg, dtype=bool)
            else:
                rows = np.any(variants & (m ^ ms[t - 1]), axis=1)
                full[t] = full[t - 1]
            k = int(rows.sum())
            if pos + k > len(out):
                return None
            full[t, rows] = out[pos:pos + k]
            pos += k
        if pos != len(out):
            return None
        gmean = np.zeros((per, n_groups))
        for g in range(n_groups):
            gmean[:, g] = full[:, groups == g].sum(axis=1) / max(size[g], 1.0)
        for t in range(1, per):
            diff = ms[t] ^ ms[t - 1]
            if diff.sum() != 1:
                return None
            j = int(np.flatnonzero(diff)[0])
            sign = 1.0 if ms[t][j] else -1.0
            values[j] += sign * (gmean[t] - gmean[t - 1])
        base = gmean[0]
    return values / (2 * n_calls), base


def _import_shap() -> Any:
    """shap, imported without its plotting part. shap loads ``shap.plots`` (and with it matplotlib,
    about a second) whenever matplotlib is importable; auditor only uses its explainers, and a
    JSON-only audit must not load matplotlib. shap supports running without it: while shap is first
    imported, ``import matplotlib`` is made to fail (unless matplotlib is already loaded)."""
    import sys
    import warnings

    if "shap" in sys.modules:
        return sys.modules["shap"]
    block = "matplotlib" not in sys.modules
    if block:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]  # the import system's "not importable" marker
    try:
        with warnings.catch_warnings():  # shap's import warns about deprecations
            warnings.simplefilter("ignore")
            import shap
    finally:
        if block and sys.modules.get("matplotlib", 0) is None:
            del sys.modules["matplotlib"]
    _cache_masking_kernels()
    _build_outputs_with_numpy()
    return shap


def _build_outputs_with_numpy() -> None:
    """Replace ``shap.utils._masked_model._build_fixed_output`` by the same loop in numpy. shap's
    version is a numba function that takes the link function as an argument, so numba compiles it
    anew in every process (about five seconds, more than the rest of a small explanation) and cannot
    cache it. The loop runs once per explained row over that row's masks (a few dozen), so numpy is
    as fast; it sums in the same order, so the values are shap's to the last bit (the demo's stored
    findings are unchanged; tests/test_metrics_analysis.py compares it with shap's own loop). Left
    alone when the function is not there (another shap version)."""
    import sys

    masked_model = sys.modules.get("shap.utils._masked_model")
    links = sys.modules.get("shap.links")
    if masked_model is None or not callable(getattr(masked_model, "_build_fixed_output", None)) \
            or getattr(masked_model._build_fixed_output, "__module__", "") == __name__:
        return
    identity, logit = getattr(links, "identity", None), getattr(links, "logit", None)

    def python_link(link: Any) -> Callable[[Any], Any]:
        if link is identity:
            return lambda x: x
        if link is logit:
            return lambda x: np.log(x / (1 - x))
        return link

    def _build_fixed_output(averaged_outs: np.ndarray, last_outs: np.ndarray, outputs: np.ndarray,
                            batch_positions: np.ndarray, varying_rows: Any, num_varying_rows: np.ndarray,
                            link: Any, linearizing_weights: np.ndarray | None) -> None:
        f = python_link(link)
        sample_count = last_outs.shape[0]
        for i in range(len(averaged_outs)):
            start, stop = batch_positions[i], batch_positions[i + 1]
            if start < stop:
                if num_varying_rows[i] == sample_count:
                    last_outs[:] = outputs[start:stop]
                else:
                    last_outs[varying_rows[i]] = outputs[start:stop]
                if linearizing_weights is not None:
                    averaged_outs[i] = _sequential_mean(linearizing_weights * f(last_outs))
                else:
                    averaged_outs[i] = f(_sequential_mean(last_outs))
            else:
                averaged_outs[i] = averaged_outs[i - 1]

    masked_model._build_fixed_output = _build_fixed_output  # type: ignore[attr-defined]


def _sequential_mean(a: np.ndarray) -> Any:
    """The mean over the first axis summed in row order, as numba's ``np.mean`` sums (numpy's sums
    pairwise): the same floating-point result as shap's compiled loop, to the last bit."""
    return np.cumsum(a, axis=0)[-1] / len(a)


CACHED_KERNELS = ("_delta_masking", "_single_delta_mask")  # shap.maskers._tabular: arrays in, arrays out
NUMBA_CACHE_ENV = "AUDITOR_NUMBA_CACHE"


def _cache_masking_kernels() -> None:
    """Ask numba to keep shap's tabular masking kernels in its on-disk cache. shap compiles them with
    numba at their first call in every process (several seconds each time: the largest part of a
    small SHAP explanation); cached, a later process loads them in milliseconds. The cache is numba's
    own (next to shap's files, or ``NUMBA_CACHE_DIR``, or the user's cache folder when those are
    read-only), keyed by the source and numba's version like Python's ``.pyc`` files. Only kernels
    whose arguments are plain arrays are cached (a kernel taking a function argument would be
    compiled and written again on every run). ``AUDITOR_NUMBA_CACHE=0`` leaves shap as it is."""
    import contextlib
    import os
    import sys

    if os.environ.get(NUMBA_CACHE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return
    tabular = sys.modules.get("shap.maskers._tabular")
    for name in CACHED_KERNELS:
        kernel = getattr(tabular, name, None)
        if kernel is None or not hasattr(kernel, "enable_caching") or getattr(kernel, "signatures", None):
            continue  # not a numba function (another shap version), or compiled already
        with contextlib.suppress(Exception):  # no cache (e.g. nowhere writable): shap compiles as before
            kernel.enable_caching()


def _checked_group_values(per_group: list[tuple[np.ndarray, np.ndarray] | None], groups: np.ndarray | None,
                          values: np.ndarray) -> np.ndarray | None:
    """The per-group contributions rebuilt from the recorded model calls, when every row was rebuilt
    and their size-weighted mean reproduces shap's values (otherwise None)."""
    rebuilt = [pg for pg in per_group if pg is not None]
    if groups is None or not per_group or len(rebuilt) != len(per_group):
        return None
    gv = np.stack([pg[0] for pg in rebuilt])
    share_of = np.bincount(groups) / len(groups)
    scale = max(float(np.max(np.abs(values))), 1e-12)
    return gv if np.max(np.abs(gv @ share_of - values)) <= 1e-8 * max(scale, 1.0) else None


PREFETCH_ROWS = 65_536  # masked rows decoded and scored at a time between the two passes


def _pieces(arrays: list[np.ndarray], size: int) -> list[np.ndarray]:
    """The rows of ``arrays`` stacked, in pieces of about ``size`` rows (whole arrays)."""
    out: list[np.ndarray] = []
    group: list[np.ndarray] = []
    n = 0
    for a in arrays:
        group.append(a)
        n += len(a)
        if n >= size:
            out.append(np.vstack(group))
            group, n = [], 0
    if group:
        out.append(np.vstack(group))
    return out


def _masked_rows_asked(shap: Any, masker: Any, Z: np.ndarray, *, seed: int, max_evals: int,
                       features: Sequence[str]) -> list[np.ndarray]:
    """The masked rows shap's permutation explainer asks for on each row of ``Z``, in order,
    collected by a stand-in model that answers 0 (the masks do not depend on the answers).

    shap asks for each explained row's masked rows in a call of its own, and one call per row is
    what a model with a fixed cost per call (a pipeline's column transformer) pays for most. So a
    first pass collects them, the model scores the distinct ones in large batched calls, and the
    second pass, whose values are kept, finds every answer in the memo. A row it did not find
    would be scored then: the values never depend on the first pass."""
    asked: list[np.ndarray] = []

    def stand_in(z: np.ndarray) -> np.ndarray:
        asked.append(np.array(z, dtype=float))
        return np.zeros(len(z))

    explainer = shap.PermutationExplainer(stand_in, masker, seed=int(seed), feature_names=list(features))
    for i in range(len(Z)):  # one row per call, as in the pass that keeps its values (see there)
        explainer(Z[i:i + 1], max_evals=max_evals, batch_size=min_max_evals(len(features)), silent=True)
    return asked


def shap_importance(predict: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, background: pd.DataFrame,
                    *, coder: FeatureCoder, max_evals: int | None = None, seed: int = 0,
                    weights: np.ndarray | None = None, background_groups: np.ndarray | None = None) -> ShapImportance:
    """SHAP values of ``predict`` (DataFrame -> 1-d output) for the rows of ``X`` against
    ``background``, by the permutation method on integer-coded features. ``weights`` (one per
    row of ``X``, default equal) make ``mean_abs`` a weighted mean, e.g. for a stratified sample.

    ``background_groups`` (a group number 0..G-1 per background row) also returns each row's
    contributions against each group alone (``group_values``), from the same model calls and
    permutations: with the independent masker a Shapley value is linear in the background
    distribution, so the group values' size-weighted mean is the ordinary SHAP value. They let
    a bootstrap resample the background too.

    shap's permutation explainer shuffles with numpy's global generator; it is seeded with
    ``seed`` for the call and the global state is restored afterwards.
    """
    shap = _import_shap()
    features = coder.features
    Z = coder.encode(X[list(features)])
    B = coder.encode(background[list(features)])
    me = max(int(max_evals or 0), min_max_evals(len(features)))
    memo = RowMemo()  # masked rows repeat (a row and a background row agreeing on the switched features)

    def f(z: np.ndarray) -> np.ndarray:
        return memo(z, lambda positions: np.asarray(predict(coder.decode(z[positions])), dtype=float))

    groups = None if background_groups is None else np.asarray(background_groups, dtype=int)
    if groups is not None and len(groups) != len(B):
        raise ValueError(f"{len(groups)} background groups for {len(B)} background rows")
    recorder: dict | None = {"on": False} if groups is not None else None

    def explained(z: np.ndarray) -> np.ndarray:
        out = f(z)
        if recorder is not None and recorder["on"]:
            recorder["outs"].append(np.array(out, dtype=float))
        return out

    masker = _value_masker(shap, B, recorder)
    state = np.random.get_state()
    rows = []
    per_group: list[tuple[np.ndarray, np.ndarray] | None] = []
    try:
        # first pass: the masked rows, scored in large calls; the second finds them in the memo
        asked = _masked_rows_asked(shap, masker, Z, seed=seed, max_evals=me, features=features)
        n_evaluated = sum(len(a) for a in asked)
        for part in _pieces(asked, PREFETCH_ROWS):
            f(part)
        del asked
        explainer = shap.PermutationExplainer(explained, masker, seed=int(seed), feature_names=list(features))
        # One row per call: shap 0.51's Explainer.__call__ passes its (growing) list of main effects
        # as the ``main_effects`` flag, which from the second row of a batch on doubles the model
        # calls. A fresh call per row keeps the flag False; the seeded global generator carries on.
        # batch_size counts masks: all 2M+1 masks of a permutation go to the model in one call
        for i in range(len(Z)):
            if recorder is not None:
                recorder.update(on=True, masks=[], outs=[], variants=None)
            rows.append(explainer(Z[i:i + 1], max_evals=me, batch_size=min_max_evals(len(features)), silent=True))
            if recorder is not None and groups is not None:  # a recorder exactly when there are groups
                recorder["on"] = False
                per_group.append(_group_values(recorder["masks"], recorder["outs"], recorder["variants"], groups,
                                               len(features)))
    finally:
        np.random.set_state(state)
    values = np.vstack([np.asarray(r.values, dtype=float).reshape(1, len(features)) for r in rows]) \
        if rows else np.empty((0, len(features)))
    base = np.array([float(np.asarray(r.base_values, dtype=float).reshape(-1)[0]) for r in rows])
    group_values = _checked_group_values(per_group, groups, values)
    outputs = f(Z)  # the explained output itself, to check additivity against (the memo holds it: a full mask)
    w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=float)
    if len(w) != len(values):
        raise ValueError(f"{len(w)} weights for {len(values)} explained rows")
    mean_abs = (w @ np.abs(values)) / w.sum() if len(values) and w.sum() > 0 else np.zeros(len(features))
    return ShapImportance(
        features=tuple(features), values=values, base_values=base, outputs=outputs,
        data=X[list(features)].reset_index(drop=True), mean_abs=mean_abs,
        max_evals=me, n_background=len(B), n_model_rows=int(n_evaluated), n_scored_rows=int(memo.scored), weights=w,
        group_values=group_values,
    )


# ---- samples that see rare values ---------------------------------------------------------------

@dataclass(frozen=True)
class SpikedFeature:
    """A numeric feature whose most frequent value holds at least half the rows (e.g. zero)."""

    feature: str
    modal: float
    modal_share: float
    rare_rows: int  # rows with another (non-missing) value


@dataclass(frozen=True)
class Stratum:
    """One stratum: rows whose ``feature`` is not its modal value (the first such spiked feature,
    rarest first), or the rest (``feature`` None)."""

    feature: str | None
    population: int
    sampled: int
    proportional: int  # the stratum's exact proportional share of the requested rows


@dataclass(frozen=True)
class StratifiedSample:
    positions: np.ndarray  # sorted row positions in the frame
    weights: np.ndarray  # per position: population rows it stands for (sum = rows of the frame)
    stratum: np.ndarray  # per position: index into ``strata``
    strata: tuple[Stratum, ...]
    spiked: tuple[SpikedFeature, ...]
    requested: int

    @property
    def enlarged(self) -> int:
        """Rows added beyond the requested size to give rare strata their minimum."""
        return max(0, len(self.positions) - min(self.requested, sum(s.population for s in self.strata)))


def spiked_features(frame: pd.DataFrame, features: Sequence[str], *, categorical: Sequence[str] = (),
                    min_modal_share: float = 0.5) -> tuple[SpikedFeature, ...]:
    """Numeric features whose modal value holds at least ``min_modal_share`` of the non-missing
    rows while some rows differ: zero-inflated amounts and rare flags. Rarest first."""
    cats = set(categorical)
    out = []
    for f in features:
        col = frame[f]
        if f in cats or not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            continue
        v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        values, counts = np.unique(v, return_counts=True)
        top = int(np.argmax(counts))
        share = counts[top] / v.size
        rare = int(v.size - counts[top])
        if share >= min_modal_share and rare > 0:
            out.append(SpikedFeature(f, float(values[top]), float(share), rare))
    return tuple(sorted(out, key=lambda s: (s.rare_rows, s.feature)))


def _proportional(sizes: np.ndarray, n: int) -> np.ndarray:
    """Largest-remainder allocation of ``n`` rows in proportion to ``sizes`` (never above a size)."""
    total = int(sizes.sum())
    if n >= total:
        return sizes.astype(int).copy()
    exact = sizes * n / total
    base = np.floor(exact).astype(int)
    order = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[: n - int(base.sum())]:
        base[i] += 1
    return np.minimum(base, sizes.astype(int))


def stratified_sample(frame: pd.DataFrame, n: int, rng: np.random.Generator, *,
                      spiked: Sequence[SpikedFeature] = (), min_rare_rows: int = 0,
                      candidates: np.ndarray | None = None) -> StratifiedSample:
    """A seeded sample of about ``n`` rows of ``frame`` (among ``candidates``, default all),
    stratified by the rare values of ``spiked`` features (see the module docstring).

    Each stratum gets its largest-remainder proportional share; a rare stratum gets at least
    ``min_rare_rows`` (all its rows when it has fewer), which enlarges the sample. Weights are
    stratum size / rows drawn from it, so weighted means estimate the candidates' means.
    """
    cand = np.arange(len(frame)) if candidates is None else np.sort(np.asarray(candidates, dtype=int))
    k = len(spiked)
    label = np.full(len(cand), k, dtype=int)  # k: the common stratum
    for i, sf in enumerate(spiked):
        v = pd.to_numeric(frame[sf.feature].iloc[cand], errors="coerce").to_numpy(dtype=float)
        rare = np.isfinite(v) & (v != sf.modal) & (label == k)
        label[rare] = i
    sizes = np.bincount(label, minlength=k + 1)
    prop = _proportional(sizes, int(n))
    take = prop.copy()
    for i in range(k):
        take[i] = min(sizes[i], max(prop[i], int(min_rare_rows)))
    positions, weights, stratum, strata = [], [], [], []
    for i in range(k + 1):
        members = cand[label == i]
        if take[i] > 0:
            pick = rng.choice(members, size=int(take[i]), replace=False)
            positions.append(pick)
            weights.append(np.full(len(pick), sizes[i] / take[i]))
            stratum.append(np.full(len(pick), i))
        strata.append(Stratum(spiked[i].feature if i < k else None, int(sizes[i]), int(take[i]), int(prop[i])))
    pos = np.concatenate(positions) if positions else np.empty(0, dtype=int)
    order = np.argsort(pos, kind="stable")
    return StratifiedSample(
        positions=pos[order].astype(int),
        weights=(np.concatenate(weights) if weights else np.empty(0))[order],
        stratum=(np.concatenate(stratum) if stratum else np.empty(0, dtype=int))[order].astype(int),
        strata=tuple(strata), spiked=tuple(spiked), requested=int(n))


def share_draws(abs_values: np.ndarray, weights: np.ndarray, stratum: np.ndarray, rng: np.random.Generator,
                n_resamples: int = 1000, group_values: np.ndarray | None = None,
                group_share: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap draws (n_resamples, features) of each feature's share of the weighted mean
    |SHAP|: rows resampled with replacement within their stratum (weights kept) and, with
    ``group_values`` (rows, features, groups) and the groups' shares of the background, the
    background groups resampled too (each row's value recomputed from the drawn groups)."""
    abs_values = np.asarray(abs_values, dtype=float)
    n, k = abs_values.shape
    if n == 0 or n_resamples <= 0:
        return np.empty((0, k))
    counts = np.zeros((n_resamples, n))
    for h in np.unique(stratum):
        idx = np.flatnonzero(stratum == h)
        draw = rng.integers(0, len(idx), size=(n_resamples, len(idx)))
        flat = (draw + (np.arange(n_resamples) * len(idx))[:, None]).ravel()
        counts[:, idx] = np.bincount(flat, minlength=n_resamples * len(idx)).reshape(n_resamples, len(idx))
    rw = counts * weights
    if group_values is None or group_values.shape[2] < 2:
        totals = rw @ abs_values
    else:
        G = group_values.shape[2]
        gs = np.ones(G) / G if group_share is None else np.asarray(group_share, dtype=float)
        gdraw = rng.integers(0, G, size=(n_resamples, G))
        gcounts = np.zeros((n_resamples, G))
        np.add.at(gcounts, (np.repeat(np.arange(n_resamples), G), gdraw.ravel()), 1.0)
        gw = gcounts * gs
        gw /= gw.sum(axis=1, keepdims=True)
        totals = np.empty((n_resamples, k))
        chunk = max(1, 4_000_000 // max(n * k, 1))
        for a in range(0, n_resamples, chunk):
            b = min(n_resamples, a + chunk)
            v = np.abs(np.einsum("nfg,bg->bnf", group_values, gw[a:b]))
            totals[a:b] = np.einsum("bn,bnf->bf", rw[a:b], v)
    sums = totals.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sums > 0, totals / np.where(sums > 0, sums, 1.0), np.nan)


def rank_draws(share_draws_: np.ndarray) -> np.ndarray:
    """Rank (1 = most important) of each feature in each bootstrap draw."""
    order = np.argsort(-share_draws_, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(order.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, order.shape[1] + 1)
    return ranks
