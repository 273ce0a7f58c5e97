"""Partial dependence (PDP), individual conditional expectation (ICE) and accumulated local
effects (ALE), model-agnostic and batched.

Any ``score_fn`` (DataFrame -> 1-d score: P(positive) or the regression prediction) works:
sklearn pipelines with string columns, ONNX graphs, user Python objects. For one feature and a
grid of G values the sample of n rows is repeated G times with the feature set to each value,
and the model is called once on those n x G rows (plus 2 n rows for ALE). Grid points beyond
the observed range, a missing value and an unseen level are scored in the same call; when the
model refuses them, the call is retried point kind by point kind and the refusal is recorded.

Nothing here knows about severities or findings: results are frozen dataclasses of arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

ScoreFn = Callable[[pd.DataFrame], np.ndarray]

IN_RANGE = "in_range"
BELOW = "below"
ABOVE = "above"
MISSING = "missing"
UNSEEN = "unseen"
EXTRA_KINDS = (BELOW, ABOVE, MISSING, UNSEEN)
KIND_LABELS = {IN_RANGE: "in range", BELOW: "below observed range", ABOVE: "above observed range",
               MISSING: "missing value", UNSEEN: "unseen level"}
UNSEEN_LEVEL = "__unseen__"
LINK_EPS = 0.01  # probabilities are clipped to [eps, 1 - eps] before the logit link
SPIKE_SHARE = 0.1  # a value holding at least this share of the rows is a spike (e.g. the zeros of capital gain)
MAX_SPIKES = 3
NAN_CI = (float("nan"), float("nan"))


# ---- grid -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Grid:
    """The values one feature is set to, each tagged with its kind (in_range, below, above,
    missing, unseen). Numeric grids are ordered below < in range < above, then missing;
    categorical grids list the observed levels, then the unseen level, then missing."""

    feature: str
    categorical: bool
    values: tuple[Any, ...]
    kinds: tuple[str, ...]
    levels_dropped: int = 0  # categorical levels beyond the cap, not on the grid
    spikes: tuple[float, ...] = ()  # numeric values holding a large share of the rows, always on the grid

    def __len__(self) -> int:
        return len(self.values)

    def mask(self, kind: str) -> np.ndarray:
        return np.array([k == kind for k in self.kinds], dtype=bool)

    @property
    def in_range(self) -> np.ndarray:
        return self.mask(IN_RANGE)

    def values_of(self, kind: str) -> list[Any]:
        return [v for v, k in zip(self.values, self.kinds) if k == kind]

    @property
    def ordered(self) -> bool:
        """Whether the in-range values have an order (numeric features, numeric levels)."""
        vals = self.values_of(IN_RANGE)
        return not self.categorical or all(_is_number(v) for v in vals)


def make_grid(reference: pd.Series, *, categorical: bool, grid_size: int = 20,
              outside_fraction: float = 0.1, outside_points: int = 2, max_levels: int = 12,
              missing: bool = True, unseen: bool = True, spike_share: float = SPIKE_SHARE,
              max_spikes: int = MAX_SPIKES) -> Grid | None:
    """The grid for one feature from its observed values (``None`` when nothing is observed).

    Numeric: all observed values when there are at most ``grid_size``; otherwise the spikes
    (up to ``max_spikes`` values each holding at least ``spike_share`` of the rows, such as the
    zeros of a zero-inflated feature) plus quantiles of the remaining values, so that plain
    quantiles do not collapse onto the spike and miss the rest of the range (observed values
    themselves, so integer features stay integer); then ``outside_points`` points each side
    beyond min and max up to ``outside_fraction`` of the span, and NaN. Categorical: the
    ``max_levels`` most frequent levels, an unseen level and a missing value (None).
    """
    name = str(reference.name)
    s = reference.dropna()
    if categorical:
        counts = s.astype(object).value_counts()
        if counts.empty:
            return None
        order = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        levels = [_plain(k) for k, _ in order[:max_levels]]
        numeric_levels = all(_is_number(v) for v in levels)
        if numeric_levels:
            levels = sorted(levels, key=float)
        values: list[Any] = list(levels)
        kinds = [IN_RANGE] * len(levels)
        if unseen:
            if numeric_levels:
                top = max(float(v) for v in counts.index)
                new = top + 1
                values.append(int(new) if float(new).is_integer() else new)
            else:
                values.append(UNSEEN_LEVEL)
            kinds.append(UNSEEN)
        if missing:
            values.append(np.nan if numeric_levels else None)
            kinds.append(MISSING)
        return Grid(name, True, tuple(values), tuple(kinds), levels_dropped=max(0, len(order) - max_levels))

    v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return None
    # spikes matter only when the grid cannot hold every observed value
    spikes = spike_values(v, share=spike_share, max_spikes=max_spikes) \
        if len(np.unique(v)) > grid_size else np.empty(0)
    inside = spiked_quantiles(v, grid_size, spikes)
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    integer = bool(np.all(np.mod(v, 1) == 0))
    steps = [outside_fraction * span * k / outside_points for k in range(1, outside_points + 1)] \
        if outside_points > 0 and outside_fraction > 0 else []
    below = sorted({_outward(lo - d, integer, down=True) for d in steps})
    above = sorted({_outward(hi + d, integer, down=False) for d in steps})
    below = [b for b in below if b < lo]
    above = [a for a in above if a > hi]
    values = [*below, *inside.tolist(), *above]
    kinds = [BELOW] * len(below) + [IN_RANGE] * len(inside) + [ABOVE] * len(above)
    if missing:
        values.append(np.nan)
        kinds.append(MISSING)
    return Grid(name, False, tuple(float(x) for x in values), tuple(kinds),
                spikes=tuple(float(x) for x in spikes if np.isin(x, inside)))


def spike_values(v: np.ndarray, *, share: float = SPIKE_SHARE, max_spikes: int = MAX_SPIKES) -> np.ndarray:
    """The (at most ``max_spikes``, most frequent first) values holding at least ``share`` of the
    finite observations, sorted: the point masses a quantile grid collapses onto."""
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0 or share <= 0 or max_spikes <= 0:
        return np.empty(0)
    uniq, counts = np.unique(v, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:max_spikes]
    keep = order[counts[order] >= share * len(v)]
    return np.sort(uniq[keep])


def spiked_quantiles(v: np.ndarray, n_points: int, spikes: Sequence[float] | np.ndarray = ()) -> np.ndarray:
    """About ``n_points`` observed values that resolve ``v``: every unique value when there are
    at most ``n_points``; otherwise the ``spikes`` plus quantiles of the values that are not
    spikes (all of those when few), and always the minimum and maximum. Without spikes these are
    the plain quantiles. Sorted and unique."""
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    uniq = np.unique(v)
    if len(uniq) <= n_points:
        return uniq
    kept = np.asarray([x for x in spikes if np.isin(x, uniq)], dtype=float)
    rest = v[~np.isin(v, kept)] if len(kept) else v
    budget = max(2, n_points - len(kept))
    if len(rest) == 0:
        q = np.empty(0)
    elif len(np.unique(rest)) <= budget:
        q = np.unique(rest)
    else:
        q = _distinct_quantiles(np.sort(rest), budget)
    return np.unique(np.concatenate([kept, q, [v.min(), v.max()]]))


def _distinct_quantiles(sorted_v: np.ndarray, n_points: int) -> np.ndarray:
    """Quantiles (inverted CDF, so observed values) of ``sorted_v`` on a probability grid refined
    until ``n_points`` distinct values come out: smaller point masses (15,024 for 13 % of the
    non-zero capital gains) would otherwise swallow several grid points."""
    N = len(sorted_v)
    q = np.unique(sorted_v[[0, -1]])
    for m in range(n_points, 4 * n_points + 1):
        p = np.linspace(0.0, 1.0, m)
        idx = np.clip(np.ceil(p * N).astype(int) - 1, 0, N - 1)
        q = np.unique(sorted_v[idx])
        if len(q) >= n_points:
            break
    return q


def long_tailed(values: Sequence[float]) -> bool:
    """Whether sorted grid values have a long right tail: the top gap is more than half the span
    (a capital gain's grid runs 0, 114, ..., 20,051, 99,999). Such features are binned and drawn
    on a symmetric log scale."""
    v = np.sort(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    if len(v) < 4 or v[-1] <= v[0]:
        return False
    return bool((v[-1] - v[-2]) > 0.5 * (v[-1] - v[0]))


def symlog_constant(values: Sequence[float]) -> float:
    """The constant c of the symmetric log sign(x) log(1 + |x| / c): the smallest non-zero magnitude."""
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v) & (v > 0)]
    return float(v.min()) if len(v) else 1.0


def symlog(x: Any, c: float) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.sign(x) * np.log1p(np.abs(x) / c)


def symlog_inverse(t: Any, c: float) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    return np.sign(t) * c * np.expm1(np.abs(t))


def _outward(x: float, integer: bool, *, down: bool) -> float:
    if not integer:
        return float(x)
    return float(np.floor(x) if down else np.ceil(x))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# ---- batched scoring --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Part:
    """Rows ``rows`` of the sample with the feature set to ``values`` (one per row)."""

    group: str
    rows: np.ndarray
    values: np.ndarray


def _column(values: np.ndarray, dtype: Any) -> Any:
    """The feature column for a batch, in the original dtype where the values allow it."""
    if isinstance(dtype, pd.CategoricalDtype):
        cats = list(dtype.categories)
        extra = [v for v in pd.unique(pd.Series(values, dtype=object).dropna()) if v not in cats]
        return pd.Categorical(values, categories=cats + extra)
    if pd.api.types.is_bool_dtype(dtype):
        ok = all(isinstance(v, (bool, np.bool_)) for v in values)
        return values.astype(bool) if ok else values.astype(object)
    if pd.api.types.is_numeric_dtype(dtype):
        arr = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if isinstance(dtype, pd.api.extensions.ExtensionDtype):
            try:
                return pd.array(arr, dtype=dtype)
            except (TypeError, ValueError):
                return arr
        if np.dtype(dtype).kind in "iu" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return arr.astype(dtype)
        return arr
    try:
        return pd.array(values, dtype=dtype)
    except (TypeError, ValueError):
        return values.astype(object)


def _frame(X: pd.DataFrame, feature: str, parts: Sequence[_Part]) -> pd.DataFrame:
    rows = np.concatenate([p.rows for p in parts])
    values = np.concatenate([np.asarray(p.values, dtype=object) for p in parts])
    out = X.iloc[rows].reset_index(drop=True)
    out[feature] = _column(values, X[feature].dtype)
    return out


def _call(score_fn: ScoreFn, frame: pd.DataFrame) -> np.ndarray:
    scores = np.asarray(score_fn(frame), dtype=float).reshape(-1)
    if len(scores) != len(frame):
        raise ValueError(f"the model returned {len(scores)} scores for {len(frame)} rows")
    return scores


def _score_parts(score_fn: ScoreFn, X: pd.DataFrame, feature: str,
                 parts: Sequence[_Part]) -> tuple[list[np.ndarray | None], dict[str, str]]:
    """Scores for every part from one model call; on failure, one call per group, recording
    which groups the model refuses (the in-range group must succeed)."""
    try:
        scores = _call(score_fn, _frame(X, feature, parts))
        bounds = np.cumsum([0] + [len(p.rows) for p in parts])
        return [scores[bounds[i]:bounds[i + 1]] for i in range(len(parts))], {}
    except Exception:  # noqa: BLE001 - retried below to find which points the model refuses
        if all(p.group == IN_RANGE for p in parts):
            raise
    out: list[np.ndarray | None] = [None] * len(parts)
    errors: dict[str, str] = {}
    groups = [IN_RANGE] + sorted({p.group for p in parts} - {IN_RANGE})
    for group in groups:
        idx = [i for i, p in enumerate(parts) if p.group == group]
        if not idx:
            continue
        sub = [parts[i] for i in idx]
        try:
            scores = _call(score_fn, _frame(X, feature, sub))
        except Exception as exc:  # noqa: BLE001 - the model refusing a value is a result
            if group == IN_RANGE:
                raise
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            errors[group] = f"{type(exc).__name__}: {text}"[:200].rstrip(": ")
            continue
        bounds = np.cumsum([0] + [len(p.rows) for p in sub])
        for j, i in enumerate(idx):
            out[i] = scores[bounds[j]:bounds[j + 1]]
    return out, errors


def ice_curves(score_fn: ScoreFn, X: pd.DataFrame, feature: str, values: Sequence[Any]) -> np.ndarray:
    """ICE matrix (rows of ``X`` x ``values``) from one model call; the PDP is its column mean."""
    n = len(X)
    parts = [_Part(IN_RANGE, np.arange(n), np.full(n, v, dtype=object)) for v in values]
    scores, _ = _score_parts(score_fn, X, feature, parts)
    return np.column_stack(_all_scored(scores, feature)) if parts else np.empty((n, 0))


def _all_scored(scores: Sequence[np.ndarray | None], feature: str) -> list[np.ndarray]:
    """The scores of in-range parts, which the model scores (``_score_parts`` raises when it
    refuses observed values)."""
    out = [s for s in scores if s is not None]
    if len(out) != len(scores):
        raise ValueError(f"the model refused observed values of '{feature}'")
    return out


# ---- ALE --------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ALEResult:
    """First-order ALE of one numeric feature, centred to mean zero over the data.

    ``edges`` are the bin edges (observed values: spikes plus quantiles of the other values, as
    for the grid), ``values`` the centred accumulated effect at each edge, ``counts`` the rows in
    each bin (a row at an edge belongs to the bin below it; the first bin includes its lower edge).
    """

    feature: str
    edges: np.ndarray
    values: np.ndarray
    counts: np.ndarray


def ale_edges(x: np.ndarray, bins: int, spikes: Sequence[float] | None = None) -> np.ndarray:
    """Bin edges that are observed values, so no bin is empty: the spikes (detected on ``x``
    unless given, e.g. the grid's) each as an edge of its own, plus quantiles of the other values,
    built like the grid so ALE and PDP resolve the same parts of a zero-inflated feature."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return spiked_quantiles(x, bins + 1, spike_values(x) if spikes is None else spikes)


def _ale_parts(x: np.ndarray, edges: np.ndarray) -> tuple[list[_Part], np.ndarray, np.ndarray]:
    """The two ALE parts (each row at its bin's lower and upper edge) and each row's bin."""
    ok = np.flatnonzero(np.isfinite(x))
    k = np.clip(np.searchsorted(edges, x[ok], side="left"), 1, len(edges) - 1) - 1  # first bin holds z_0
    lower = _Part(IN_RANGE, ok, edges[k].astype(object))
    upper = _Part(IN_RANGE, ok, edges[k + 1].astype(object))
    return [lower, upper], ok, k


def _ale_from_scores(feature: str, edges: np.ndarray, bins_of_rows: np.ndarray, lower: np.ndarray,
                     upper: np.ndarray) -> ALEResult:
    K = len(edges) - 1
    counts = np.bincount(bins_of_rows, minlength=K).astype(float)
    sums = np.bincount(bins_of_rows, weights=upper - lower, minlength=K)
    local = np.divide(sums, counts, out=np.zeros(K), where=counts > 0)
    acc = np.concatenate([[0.0], np.cumsum(local)])
    mean = float(np.sum(counts * (acc[:-1] + acc[1:]) / 2.0) / counts.sum()) if counts.sum() else 0.0
    return ALEResult(feature, np.asarray(edges, dtype=float), acc - mean, counts.astype(int))


def accumulated_local_effects(score_fn: ScoreFn, X: pd.DataFrame, feature: str, *, bins: int = 20,
                              edges: Sequence[float] | None = None) -> ALEResult | None:
    """First-order ALE (Apley and Zhu) with quantile bins (spikes as their own edges), centred;
    ``None`` for a constant feature."""
    x = pd.to_numeric(X[feature], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    e = np.asarray(edges, dtype=float) if edges is not None else ale_edges(x, bins)
    if len(e) < 2:
        return None
    parts, _, k = _ale_parts(x, e)
    scores, _ = _score_parts(score_fn, X, feature, parts)
    lower, upper = _all_scored(scores, feature)
    return _ale_from_scores(feature, e, k, lower, upper)


# ---- one feature ------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class FeatureDependence:
    """PDP, ICE (and ALE for numeric features) of one feature on a row sample.

    ``ice`` is (rows x grid points); columns the model refused (or answered with non-finite
    scores) hold NaN. ``status`` says, per point kind beyond the in-range grid, ``ok``,
    ``rejected`` or ``non-finite``; ``errors`` holds the model's message for refusals.
    ``hist_edges``/``hist_counts`` describe the observed distribution (numeric), and
    ``level_counts`` the observed count of each in-range level (categorical).
    """

    feature: str
    grid: Grid
    ice: np.ndarray
    base_score: np.ndarray
    ice_rows: tuple[int, ...]
    status: Mapping[str, str]
    errors: Mapping[str, str]
    ale: ALEResult | None = None
    hist_edges: np.ndarray | None = None
    hist_counts: np.ndarray | None = None
    level_counts: tuple[int, ...] = ()
    missing_observed: int = 0

    @property
    def categorical(self) -> bool:
        return self.grid.categorical

    @property
    def n_rows(self) -> int:
        return int(self.ice.shape[0])

    @property
    def pdp(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return self.ice.mean(axis=0) if self.n_rows else np.full(len(self.grid), np.nan)

    @property
    def mean_score(self) -> float:
        return float(np.mean(self.base_score)) if len(self.base_score) else float("nan")

    def part(self, kind: str) -> tuple[list[Any], np.ndarray, np.ndarray]:
        """(values, PDP, ICE columns) of the grid points of one kind."""
        m = self.grid.mask(kind)
        return self.grid.values_of(kind), self.pdp[m], self.ice[:, m]


def representative_rows(score: np.ndarray, n_curves: int = 10) -> tuple[int, ...]:
    """Rows at the quantiles (5 %, 15 %, ..., 95 % for 10 curves) of the predicted score."""
    n = len(score)
    if n == 0 or n_curves <= 0:
        return ()
    order = np.argsort(np.asarray(score, dtype=float), kind="stable")
    qs = (np.arange(n_curves) + 0.5) / n_curves
    picked = order[np.round(qs * (n - 1)).astype(int)]
    return tuple(int(i) for i in dict.fromkeys(picked.tolist()))


def feature_dependence(score_fn: ScoreFn, X: pd.DataFrame, feature: str, *, grid: Grid,
                       reference: pd.Series | None = None, base_score: np.ndarray | None = None,
                       ale_bins: int | None = 20, n_curves: int = 10, hist_bins: int = 30) -> FeatureDependence:
    """PDP, ICE and ALE of ``feature`` on the rows of ``X`` over ``grid``: one model call.

    ``reference`` (the observed values the grid came from) feeds the distribution shown under
    the curves; it defaults to ``X[feature]``.
    """
    X = X.reset_index(drop=True)
    n = len(X)
    G = len(grid)
    parts = [_Part(kind, np.arange(n), np.full(n, v, dtype=object)) for v, kind in zip(grid.values, grid.kinds)]
    ale_info = None
    if not grid.categorical and ale_bins:
        x = pd.to_numeric(X[feature], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        edges = ale_edges(x, ale_bins, spikes=grid.spikes)
        if len(edges) >= 2:
            ale_parts, _, k = _ale_parts(x, edges)
            ale_info = (edges, k)
            parts = parts + ale_parts
    scores, errors = _score_parts(score_fn, X, feature, parts)
    ice = np.full((n, G), np.nan)
    status: dict[str, str] = {}
    for j, kind in enumerate(grid.kinds):
        s = scores[j]
        if s is None:
            status[kind] = "rejected"
            continue
        if not np.all(np.isfinite(s)):
            if kind == IN_RANGE:
                raise ValueError(f"the model returned non-finite scores for observed values of '{feature}'")
            status[kind] = "non-finite"
            continue
        ice[:, j] = s
        if kind != IN_RANGE:
            status.setdefault(kind, "ok")
    ale = None
    if ale_info is not None:
        edges, k = ale_info
        lower, upper = _all_scored(scores[G:G + 2], feature)
        ale = _ale_from_scores(feature, edges, k, lower, upper)
    if base_score is None:
        base_score = _call(score_fn, X)
    ref = X[feature] if reference is None else reference
    hist_edges = hist_counts = None
    level_counts: tuple[int, ...] = ()
    if grid.categorical:
        counts = ref.dropna().astype(object).value_counts()
        level_counts = tuple(int(counts.get(v, 0)) for v in grid.values_of(IN_RANGE))
    else:
        v = pd.to_numeric(ref, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        v = v[np.isfinite(v)]
        if len(v):
            bins: Any = min(hist_bins, max(1, len(np.unique(v))))
            inside = grid.values_of(IN_RANGE)
            if long_tailed(inside) and v.max() > v.min():
                # bins even on the symmetric log scale, so a long tail's bulk is not one bin
                c = symlog_constant(inside)
                bins = symlog_inverse(np.linspace(symlog(v.min(), c), symlog(v.max(), c), hist_bins + 1), c)
                bins[0], bins[-1] = v.min(), v.max()
            hist_counts, hist_edges = np.histogram(v, bins=bins)
    return FeatureDependence(
        feature=feature, grid=grid, ice=ice, base_score=np.asarray(base_score, dtype=float),
        ice_rows=representative_rows(base_score, n_curves), status=status, errors=errors, ale=ale,
        hist_edges=hist_edges, hist_counts=hist_counts, level_counts=level_counts,
        missing_observed=int(ref.isna().sum()))


# ---- summary numbers ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DependenceMetrics:
    """Plain numbers describing one feature's dependence, for judging and tables.

    Score units throughout (probability, or the regression prediction), except
    ``interaction_share`` which is measured on the link scale (logit for probabilities).

    * ``effect``: mean over rows of the ICE curve's range over the in-range grid;
    * ``pdp_range``: range of the PDP over the in-range grid;
    * ``ice_spread``: RMS distance of row-centred ICE curves from the centred PDP;
    * ``interaction_share``: share of the centred ICE variance the PDP does not explain
      (0: all curves parallel, 1: the average hides everything); ``partner`` is the other
      feature most associated with how curves deviate, with ``partner_strength`` in [0, 1];
    * monotonicity (``monotone`` = declared sign, 0 if none): ``pdp_drop`` the largest fall
      against the declared direction between ``drop_from`` and ``drop_to``, and
      ``ice_breach_share`` the share of rows whose ICE curve falls by more than the tolerance;
    * beyond the range: ``max_step`` the largest step between adjacent in-range PDP values;
      ``below_change``/``above_change`` the PDP change from the nearest in-range point (the
      largest in magnitude; ``below_value``/``above_value`` where), ``below_trend``/``above_trend``
      the PDP change over the last in-range points in the same outward direction;
      ``missing_change``/``unseen_change`` how far the PDP at a missing value / unseen level lies
      outside the in-range PDP values (0 when inside). NaN where not scored.

    Each ``*_ci`` is the percentile interval of the estimate over bootstrap resamples of the
    sampled rows (the grid fixed; for the partner, its deviation score fixed), and
    ``ice_breach_ci`` the Wilson interval of the breach share: severities read their
    conservative end, so they do not hinge on which rows were sampled.
    """

    feature: str
    categorical: bool
    in_range_points: int
    effect: float
    pdp_range: float
    ice_spread: float
    interaction_share: float
    partner: str | None
    partner_strength: float
    monotone: int
    monotone_checked: bool
    pdp_drop: float
    drop_from: Any
    drop_to: Any
    ice_breach_share: float
    max_step: float
    below_change: float
    below_value: float
    below_trend: float
    above_change: float
    above_value: float
    above_trend: float
    missing_change: float
    unseen_change: float
    status: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    levels_dropped: int = 0
    # intervals (low, high) of the estimates above, over resamples of the sampled rows (NaN when
    # not computed); ``ice_breach_ci`` is the Wilson interval of the breach count
    n_rows: int = 0
    n_boot: int = 0
    confidence: float = float("nan")
    effect_ci: tuple[float, float] = NAN_CI
    ice_spread_ci: tuple[float, float] = NAN_CI
    interaction_share_ci: tuple[float, float] = NAN_CI
    partner_strength_ci: tuple[float, float] = NAN_CI
    pdp_drop_ci: tuple[float, float] = NAN_CI
    ice_breach_ci: tuple[float, float] = NAN_CI
    below_change_ci: tuple[float, float] = NAN_CI
    above_change_ci: tuple[float, float] = NAN_CI
    missing_change_ci: tuple[float, float] = NAN_CI
    unseen_change_ci: tuple[float, float] = NAN_CI


def link_scale(score: np.ndarray, link: str) -> np.ndarray:
    if link == "logit":
        p = np.clip(score, LINK_EPS, 1 - LINK_EPS)
        return np.log(p / (1 - p))
    return np.asarray(score, dtype=float)


def max_drawdown(y: np.ndarray) -> tuple[float, int, int]:
    """Largest fall of ``y`` from an earlier value: (amount, index of the peak, index of the trough)."""
    y = np.asarray(y, dtype=float)
    if len(y) < 2:
        return 0.0, 0, 0
    peak = np.maximum.accumulate(y)
    drop = peak - y
    k = int(np.argmax(drop))
    i = int(np.argmax(y[:k + 1]))
    return float(drop[k]), i, k


def row_drawdowns(M: np.ndarray) -> np.ndarray:
    """Largest fall along each row of ``M``."""
    if M.shape[1] < 2:
        return np.zeros(M.shape[0])
    return np.max(np.maximum.accumulate(M, axis=1) - M, axis=1)


@dataclass(frozen=True, eq=False)
class PartnerIndex:
    """The sample's features prepared once for finding interaction partners: numeric columns as
    ranks (missing values at the mean rank), categorical ones as integer codes."""

    names: tuple[str, ...]
    ranks: np.ndarray  # (rows, numeric features), centred and scaled to unit norm
    numeric: tuple[str, ...]
    codes: tuple[np.ndarray, ...]  # per categorical feature
    categorical: tuple[str, ...]

    @classmethod
    def from_frame(cls, X: pd.DataFrame, categorical: Sequence[str] = ()) -> PartnerIndex:
        cats = set(categorical)
        numeric, cols, cat_names, codes = [], [], [], []
        for col in X.columns:
            s = X[col].reset_index(drop=True)
            if col in cats or not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                cat_names.append(str(col))
                codes.append(pd.factorize(s.astype(object), use_na_sentinel=False)[0])
                continue
            r = pd.to_numeric(s, errors="coerce").rank().to_numpy(dtype=float, na_value=np.nan)
            r = np.where(np.isnan(r), np.nanmean(r) if np.isfinite(r).any() else 0.0, r)
            r = r - r.mean()
            norm = float(np.sqrt(np.sum(r ** 2)))
            if norm == 0:
                continue
            numeric.append(str(col))
            cols.append(r / norm)
        ranks = np.column_stack(cols) if cols else np.empty((len(X), 0))
        return cls(tuple(X.columns.astype(str)), ranks, tuple(numeric), tuple(codes), tuple(cat_names))


def interaction_partner(deviation: np.ndarray, partners: PartnerIndex, feature: str) -> tuple[str | None, float]:
    """The other feature most associated with how rows' ICE curves deviate from the PDP.

    The deviations are summarised per row by their first principal component; the association
    is |Spearman correlation| for numeric features and the correlation ratio for categorical ones.
    """
    found = _partner(deviation, partners, feature)
    return (found.name, found.strength) if found is not None else (None, 0.0)


@dataclass(frozen=True, eq=False)
class _Found:
    name: str
    strength: float
    numeric: bool
    x: np.ndarray  # the partner's centred ranks (numeric) or integer codes (categorical)
    y: np.ndarray  # the rows' deviation score: centred ranks (numeric) or centred values


def _partner(deviation: np.ndarray, partners: PartnerIndex, feature: str) -> _Found | None:
    if deviation.size == 0 or not np.any(deviation):
        return None
    u, _, _ = np.linalg.svd(deviation - deviation.mean(axis=0), full_matrices=False)
    score = u[:, 0]
    r = pd.Series(score).rank().to_numpy(dtype=float)
    r = r - r.mean()
    norm = float(np.sqrt(np.sum(r ** 2)))
    if norm == 0:
        return None
    candidates: list[tuple[float, str, bool, np.ndarray, np.ndarray]] = []
    if partners.ranks.shape[1]:
        corr = np.abs(partners.ranks.T @ (r / norm))
        candidates += [(float(c), name, True, partners.ranks[:, j], r) for j, (c, name)
                       in enumerate(zip(corr, partners.numeric)) if name != feature]
    y = score - score.mean()
    total = float(np.sum(y ** 2))
    for name, code in zip(partners.categorical, partners.codes):
        if name == feature or total == 0:
            continue
        counts = np.bincount(code)
        sums = np.bincount(code, weights=y)
        between = float(np.sum(np.divide(sums ** 2, counts, out=np.zeros(len(counts)), where=counts > 0)))
        candidates.append((float(np.sqrt(min(1.0, between / total))), name, False, code, y))
    if not candidates:
        return None
    best = max(candidates, key=lambda c: (c[0], c[1]))
    return _Found(best[1], best[0], best[2], best[3], best[4]) if best[0] > 0 else None


def _partner_draws(found: _Found, W: np.ndarray) -> np.ndarray:
    """The partner association under each resample (rows of ``W``: counts per sampled row)."""
    n = W.shape[1]
    x, y = found.x, found.y
    with np.errstate(invalid="ignore", divide="ignore"):
        my = W @ y / n
        if found.numeric:
            mx = W @ x / n
            cov = W @ (x * y) / n - mx * my
            vx = W @ (x * x) / n - mx ** 2
            vy = W @ (y * y) / n - my ** 2
            return np.abs(cov / np.sqrt(vx * vy))
        onehot = np.zeros((n, int(x.max()) + 1))
        onehot[np.arange(n), x] = 1.0
        counts = W @ onehot
        sums = W @ (onehot * y[:, None])
        total = W @ (y * y) - n * my ** 2
        between = np.sum(np.divide(sums ** 2, counts, out=np.zeros_like(sums), where=counts > 0), axis=1) - n * my ** 2
        return np.sqrt(np.clip(between / total, 0.0, 1.0))


def bootstrap_weights(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """``n_boot`` resamples of ``n`` rows with replacement, as counts per row (n_boot x n)."""
    if n == 0 or n_boot <= 0:
        return np.zeros((0, n))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def percentile_ci(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of bootstrap draws (non-finite draws dropped)."""
    d = np.asarray(draws, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return NAN_CI
    a = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(d, [100 * a, 100 * (1 - a)])
    return float(lo), float(hi)


def wilson_ci(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a share k / n."""
    from .intervals import wilson

    return NAN_CI if n == 0 else wilson(k, n, confidence=confidence)


def dependence_metrics(dep: FeatureDependence, *, monotone: int = 0, tolerance: float = 0.01,
                       link: str = "identity", partners: PartnerIndex | None = None,
                       boot: np.ndarray | None = None, confidence: float = 0.95) -> DependenceMetrics:
    """Summarise one feature's PDP/ICE into plain numbers (``partners``: the sample's features,
    to name the likeliest interaction partner). ``boot`` (resamples x rows, counts per sampled
    row, from :func:`bootstrap_weights`) adds ``confidence`` intervals to the estimates."""
    grid = dep.grid
    vals, order = _in_range_order(grid)
    ice_in = dep.ice[:, grid.in_range][:, order]
    pdp_in = dep.pdp[grid.in_range][order]
    G = len(vals)
    n = ice_in.shape[0]
    W = boot if boot is not None and boot.size and boot.shape[1] == n and n and G else None
    ci: dict[str, tuple[float, float]] = {}
    spread = _spread(dep, ice_in, link, partners, W, ci, confidence)
    checked = bool(monotone) and grid.ordered and G >= 2
    pdp_drop, drop_from, drop_to, breach_share = 0.0, None, None, 0.0
    if checked:
        sgn = float(np.sign(monotone))
        pdp_drop, i, k = max_drawdown(sgn * pdp_in)
        if pdp_drop > 0:
            drop_from, drop_to = _plain(vals[i]), _plain(vals[k])
        breaches = int(np.sum(row_drawdowns(sgn * ice_in) > tolerance)) if n else 0
        breach_share = breaches / n if n else 0.0
        ci["ice_breach_ci"] = wilson_ci(breaches, n, confidence)
        if W is not None:
            ci["pdp_drop_ci"] = percentile_ci(row_drawdowns(sgn * (W @ ice_in / n)), confidence)
    steps = np.abs(np.diff(np.sort(pdp_in))) if grid.categorical else np.abs(np.diff(pdp_in))
    outside = _Outside(dep, pdp_in, order, W, ci, confidence)
    below = outside.side(BELOW)
    above = outside.side(ABOVE)
    return DependenceMetrics(
        feature=dep.feature, categorical=grid.categorical, in_range_points=G, effect=spread.effect,
        pdp_range=float(np.ptp(pdp_in)) if G else 0.0, ice_spread=spread.ice_spread,
        interaction_share=spread.share, partner=spread.partner, partner_strength=spread.strength,
        monotone=int(np.sign(monotone)) if monotone else 0,
        monotone_checked=checked, pdp_drop=pdp_drop, drop_from=drop_from, drop_to=drop_to,
        ice_breach_share=breach_share, max_step=float(steps.max()) if len(steps) else 0.0,
        below_change=below[0], below_value=below[1], below_trend=below[2],
        above_change=above[0], above_value=above[1], above_trend=above[2],
        missing_change=outside.envelope(MISSING), unseen_change=outside.envelope(UNSEEN),
        status=dict(dep.status), errors=dict(dep.errors), levels_dropped=grid.levels_dropped,
        n_rows=n, n_boot=int(W.shape[0]) if W is not None else 0,
        confidence=float(confidence) if (W is not None or checked) else float("nan"), **ci)


def _in_range_order(grid: Grid) -> tuple[list[Any], np.ndarray]:
    """The in-range grid values in their order (numeric levels by value) and the permutation of
    the in-range columns that puts them there."""
    vals = grid.values_of(IN_RANGE)
    order = np.arange(len(vals))
    if grid.categorical and grid.ordered:
        order = np.argsort([float(v) for v in vals], kind="stable")
    return [vals[i] for i in order], order


@dataclass(frozen=True)
class _Spread:
    effect: float
    ice_spread: float
    share: float
    partner: str | None
    strength: float


def _spread(dep: FeatureDependence, ice_in: np.ndarray, link: str, partners: PartnerIndex | None,
            W: np.ndarray | None, ci: dict[str, tuple[float, float]], confidence: float) -> _Spread:
    """Effect (mean ICE range), ICE spread around the PDP, interaction share (on the link scale)
    and the interaction partner; their intervals go into ``ci`` when resamples ``W`` are given."""
    n, G = ice_in.shape
    ranges = np.ptp(ice_in, axis=1) if n and G else np.zeros(n)
    effect = float(np.mean(ranges)) if n and G else 0.0
    centred = ice_in - ice_in.mean(axis=1, keepdims=True) if G else ice_in
    dev = centred - centred.mean(axis=0) if n else centred
    ice_spread = float(np.sqrt(np.mean(dev ** 2))) if dev.size else 0.0
    L = link_scale(ice_in, link)
    Lc = L - L.mean(axis=1, keepdims=True) if G else L
    Ld = Lc - Lc.mean(axis=0) if n else Lc
    total = float(np.sum(Lc ** 2))
    floor = 1e-12 * max(1, Lc.size)
    share = float(np.sum(Ld ** 2) / total) if total > floor else 0.0
    partner, strength, found = None, 0.0, None
    if partners is not None and share > 0:
        found = _partner(Ld, partners, dep.feature)
        if found is not None:
            partner, strength = found.name, found.strength
    if W is not None:
        # sum_i w_i |c_i - m_w|^2 = sum_i w_i |c_i|^2 - n |m_w|^2 for counts w summing to n
        ci["effect_ci"] = percentile_ci(W @ ranges / n, confidence)
        m_w = W @ centred / n
        ss = W @ np.sum(centred ** 2, axis=1) - n * np.sum(m_w ** 2, axis=1)
        ci["ice_spread_ci"] = percentile_ci(np.sqrt(np.clip(ss, 0.0, None) / (n * G)), confidence)
        mL = W @ Lc / n
        tot = W @ np.sum(Lc ** 2, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(tot > floor, (tot - n * np.sum(mL ** 2, axis=1)) / tot, 0.0)
        ci["interaction_share_ci"] = percentile_ci(np.clip(shares, 0.0, 1.0), confidence)
        if found is not None:
            ci["partner_strength_ci"] = percentile_ci(_partner_draws(found, W), confidence)
    return _Spread(effect, ice_spread, share, partner, strength)


class _Outside:
    """The PDP beyond the observed range (``side``) and for a missing value or an unseen level
    (``envelope``), with the intervals of those changes over resamples ``W`` put into ``ci``."""

    def __init__(self, dep: FeatureDependence, pdp_in: np.ndarray, order: np.ndarray, W: np.ndarray | None,
                 ci: dict[str, tuple[float, float]], confidence: float) -> None:
        self.dep, self.grid, self.pdp_in, self.ci, self.confidence = dep, dep.grid, pdp_in, ci, confidence
        n = dep.ice.shape[0]
        full = dep.ice
        scored = np.all(np.isfinite(full), axis=0) if n else np.zeros(full.shape[1], dtype=bool)
        # resampled PDPs, all grid points
        self.P = W @ np.where(scored, full, 0.0) / n if W is not None else None
        self.P_in = self.P[:, np.flatnonzero(self.grid.in_range)[order]] if self.P is not None else None

    def side(self, kind: str) -> tuple[float, float, float]:
        """(largest PDP change from the nearest in-range point, the value where, the in-range trend)."""
        nan = float("nan")
        grid, pdp_in, G = self.grid, self.pdp_in, len(self.pdp_in)
        if grid.categorical or G == 0 or self.dep.status.get(kind) != "ok":
            return nan, nan, nan
        outside = grid.values_of(kind)
        p = self.dep.pdp[grid.mask(kind)]
        edge = pdp_in[0] if kind == BELOW else pdp_in[-1]
        deltas = p - edge
        j = int(np.argmax(np.abs(deltas)))
        back = min(2, G - 1)
        trend = float(pdp_in[0] - pdp_in[back]) if kind == BELOW else float(pdp_in[-1] - pdp_in[-1 - back])
        if self.P is not None and self.P_in is not None:
            col = np.flatnonzero(grid.mask(kind))[j]
            near = self.P_in[:, 0] if kind == BELOW else self.P_in[:, -1]
            self.ci[f"{kind}_change_ci"] = percentile_ci(self.P[:, col] - near, self.confidence)
        return float(deltas[j]), float(outside[j]), trend

    def envelope(self, kind: str) -> float:
        """How far the PDP at the point of ``kind`` lies outside the in-range PDP values (0 inside)."""
        grid, pdp_in = self.grid, self.pdp_in
        if len(pdp_in) == 0 or self.dep.status.get(kind) != "ok":
            return float("nan")
        p = float(self.dep.pdp[grid.mask(kind)][0])
        lo, hi = float(np.min(pdp_in)), float(np.max(pdp_in))
        if self.P is not None and self.P_in is not None:
            pb = self.P[:, np.flatnonzero(grid.mask(kind))[0]]
            lob, hib = self.P_in.min(axis=1), self.P_in.max(axis=1)
            self.ci[f"{kind}_change_ci"] = percentile_ci(
                np.where(pb > hib, pb - hib, np.where(pb < lob, pb - lob, 0.0)), self.confidence)
        return p - hi if p > hi else (p - lo if p < lo else 0.0)
