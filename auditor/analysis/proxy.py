"""Proxies for a protected attribute: how well model features, alone and together, reconstruct it.

Pure numerics. For one protected attribute (given as group labels per row) and each feature:

* association: bias-corrected Cramér's V (categorical feature), correlation ratio η (numeric
  feature against the groups), or |Spearman ρ| against the raw attribute when it is numeric;
* single-feature power: cross-validated AUC (macro one-vs-rest over the groups) of a depth-limited
  decision tree on a numeric feature, or of the smoothed level frequencies of a categorical feature
  (the best single-feature predictor, which a tree could only approximate);
* whether the feature *determines* the attribute (each of its values belongs to one group: the
  attribute at a finer resolution, e.g. age for an age band).

All features together: a small gradient-boosting classifier's cross-validated AUC.
``permutation_shift`` measures how much a model's output moves when one feature is shuffled, and
``redraw_effect`` how much a group's favorable rate moves when its values of one feature are
redrawn from the reference group's values (a counterfactual on the proxy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .sampling import sample_positions
from .security import fill_empty_columns

MAX_CATEGORICAL_LEVELS = 250  # more levels are passed to the combined model as plain codes


@dataclass(frozen=True)
class FeatureProxy:
    feature: str
    kind: str  # "numeric" | "categorical"
    association: float
    association_measure: str  # "Cramér's V" | "η" | "|Spearman ρ|"
    cramers_v: float  # categorical features (NaN for numeric ones)
    auc: float  # cross-validated single-feature AUC for the attribute
    method: str  # "depth-3 tree" | "level frequencies"
    determines: bool  # every value of the feature belongs to one group


@dataclass(frozen=True)
class ProxyResult:
    protected: str
    groups: tuple[str, ...]  # the groups predicted (those with at least min_group_size rows)
    counts: tuple[int, ...]
    left_out: tuple[str, ...]  # smaller groups, left out of the analysis
    n_rows: int
    features: tuple[FeatureProxy, ...]  # in the order given
    combined_auc: float
    combined_method: str
    cv_folds: int


# ---- association measures ------------------------------------------------------------------------

def _codes(values: pd.Series) -> np.ndarray:
    """Integer codes with missing as a level of its own."""
    return pd.factorize(values.astype("string").fillna("\x00missing").astype(str), sort=True)[0]


def cramers_v(a: np.ndarray, b: np.ndarray, *, corrected: bool = True) -> float:
    """Cramér's V of two categorical code arrays; ``corrected`` applies Bergsma's (2013) small-sample
    bias correction, so a many-level feature does not look associated by chance."""
    from scipy.stats import chi2_contingency

    table = pd.crosstab(a, b).to_numpy()
    r, k = table.shape
    n = table.sum()
    if min(r, k) < 2 or n < 2:
        return 0.0
    chi2 = chi2_contingency(table, correction=False)[0]
    phi2 = chi2 / n
    if not corrected:
        return float(math.sqrt(phi2 / min(r - 1, k - 1)))
    phi2c = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    rc = r - (r - 1) ** 2 / (n - 1)
    kc = k - (k - 1) ** 2 / (n - 1)
    denom = min(rc - 1, kc - 1)
    return float(math.sqrt(phi2c / denom)) if denom > 0 else 0.0


def correlation_ratio(x: np.ndarray, groups: np.ndarray) -> float:
    """η: the square root of the share of the variance of ``x`` between groups (NaN rows dropped)."""
    ok = np.isfinite(x)
    x, groups = x[ok], groups[ok]
    if x.size < 2:
        return float("nan")
    total = float(((x - x.mean()) ** 2).sum())
    if total == 0:
        return 0.0
    _, inv = np.unique(groups, return_inverse=True)
    n = np.bincount(inv)
    means = np.bincount(inv, weights=x) / n
    between = float((n * (means - x.mean()) ** 2).sum())
    return float(math.sqrt(between / total))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return 0.0
    return float(abs(spearmanr(x[ok], y[ok]).statistic))


# ---- predictive power ----------------------------------------------------------------------------

def multiclass_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """AUC for codes 0..C-1: binary AUC for two groups, else macro one-vs-rest."""
    from sklearn.metrics import roc_auc_score

    n_classes = proba.shape[1]
    if n_classes == 2:
        return float(roc_auc_score(y == 1, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=np.arange(n_classes)))


def _level_frequency_cv(codes: np.ndarray, y: np.ndarray, folds, n_classes: int, smoothing: float = 1.0
                        ) -> np.ndarray:
    proba = np.empty((len(y), n_classes))
    n_levels = int(codes.max()) + 1
    for fit, hold in folds:
        prior = np.bincount(y[fit], minlength=n_classes) / len(fit)
        counts = np.zeros((n_levels, n_classes))
        np.add.at(counts, (codes[fit], y[fit]), 1.0)
        table = (counts + smoothing * prior) / (counts.sum(axis=1, keepdims=True) + smoothing)
        proba[hold] = table[codes[hold]]
    return proba


def _tree_cv(x: np.ndarray, y: np.ndarray, folds, n_classes: int, *, depth: int, seed: int) -> np.ndarray:
    from sklearn.tree import DecisionTreeClassifier

    proba = np.empty((len(y), n_classes))
    X = x.reshape(-1, 1)
    for fit, hold in folds:
        tree = DecisionTreeClassifier(max_depth=depth, min_samples_leaf=max(5, len(fit) // 100), random_state=seed)
        tree.fit(X[fit], y[fit])
        out = np.zeros((len(hold), n_classes))
        out[:, tree.classes_] = tree.predict_proba(X[hold])
        proba[hold] = out
    return proba


def _combined_cv(X: pd.DataFrame, categorical: set[str], y: np.ndarray, folds, n_classes: int, *,
                 seed: int) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier

    cols, is_cat = [], []
    for c in X.columns:
        if c in categorical:
            codes = pd.factorize(X[c].astype("string"), sort=True)[0].astype(float)
            codes[codes < 0] = np.nan
            cols.append(codes)
            is_cat.append(bool(np.nanmax(codes, initial=0) < MAX_CATEGORICAL_LEVELS))
        else:
            v = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            cols.append(np.where(np.isfinite(v), v, np.nan))
            is_cat.append(False)
    M = np.column_stack(cols) if cols else np.zeros((len(y), 0))
    proba = np.zeros((len(y), n_classes))
    for fit, hold in folds:
        model = HistGradientBoostingClassifier(max_iter=40, max_depth=3, learning_rate=0.15, early_stopping=False,
                                               categorical_features=np.array(is_cat, dtype=bool), random_state=seed)
        model.fit(fill_empty_columns(M[fit]), y[fit])
        proba[np.ix_(hold, model.classes_)] = model.predict_proba(M[hold])
    return proba


def _determines(values: pd.Series, y: np.ndarray) -> bool:
    ok = values.notna().to_numpy()
    v = values[ok]
    n_unique = v.nunique()
    if n_unique == 0 or n_unique > ok.sum() / 2:
        return False
    return bool(pd.DataFrame({"v": v.to_numpy(), "y": y[ok]}).groupby("v")["y"].nunique().max() == 1)


def proxy_analysis(X: pd.DataFrame, labels: np.ndarray, *, protected: str, categorical: Sequence[str] = (),
                   raw_protected: pd.Series | None = None, min_group_size: int = 30, cv_folds: int = 3,
                   tree_depth: int = 3, seed: int = 0) -> ProxyResult:
    """How well each column of ``X`` alone, and all together, predict the group ``labels``.

    Rows of groups with fewer than ``min_group_size`` rows are left out. ``raw_protected`` (the
    attribute's raw values, when numeric) adds |Spearman ρ| for numeric features.
    """
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels, dtype=object)
    levels, counts = np.unique(labels.astype(str), return_counts=True)
    groups = [str(g) for g in levels]
    keep_groups = [g for g, c in zip(groups, counts) if c >= max(min_group_size, cv_folds)]
    left_out = tuple(sorted(g for g in groups if g not in keep_groups))
    keep = np.isin(labels.astype(str), keep_groups)
    cats = set(categorical)
    if len(keep_groups) < 2:
        return ProxyResult(protected=protected, groups=tuple(keep_groups),
                           counts=tuple(int(c) for g, c in zip(groups, counts) if g in keep_groups),
                           left_out=left_out, n_rows=int(keep.sum()), features=(), combined_auc=float("nan"),
                           combined_method="", cv_folds=cv_folds)
    Xk = X.loc[keep].reset_index(drop=True)
    y = np.searchsorted(np.array(keep_groups), labels[keep].astype(str))
    n_classes = len(keep_groups)
    raw = None
    if raw_protected is not None and pd.api.types.is_numeric_dtype(raw_protected):
        raw = pd.to_numeric(raw_protected, errors="coerce").to_numpy(dtype=float, na_value=np.nan)[keep]
    folds = list(StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))

    out = []
    for col in Xk.columns:
        s = Xk[col]
        is_cat = col in cats or not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
        if is_cat:
            codes = _codes(s)
            v = cramers_v(codes, y)
            assoc, measure = v, "Cramér's V"
            proba = _level_frequency_cv(codes, y, folds, n_classes)
            method = "level frequencies"
        else:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            x = np.where(np.isfinite(x), x, np.nan)
            v = float("nan")
            if raw is not None:
                assoc, measure = _spearman(x, raw), "|Spearman ρ|"
            else:
                assoc, measure = correlation_ratio(x, y), "η"
            proba = _tree_cv(x, y, folds, n_classes, depth=tree_depth, seed=seed)
            method = f"depth-{tree_depth} tree"
        auc = multiclass_auc(y, proba)
        out.append(FeatureProxy(feature=str(col), kind="categorical" if is_cat else "numeric", association=assoc,
                                association_measure=measure, cramers_v=v, auc=auc, method=method,
                                determines=auc >= 0.95 and _determines(s, y)))
    combined = float("nan")
    if len(Xk.columns):
        combined = multiclass_auc(y, _combined_cv(Xk, cats | {c for c in Xk.columns
                                                              if not pd.api.types.is_numeric_dtype(Xk[c])
                                                              or pd.api.types.is_bool_dtype(Xk[c])},
                                                  y, folds, n_classes, seed=seed))
    return ProxyResult(protected=protected, groups=tuple(keep_groups),
                       counts=tuple(int(c) for g, c in zip(groups, counts) if g in keep_groups), left_out=left_out,
                       n_rows=int(keep.sum()), features=tuple(out), combined_auc=combined,
                       combined_method=f"gradient boosting, 40 rounds of depth-3 trees, {cv_folds}-fold CV",
                       cv_folds=cv_folds)


# ---- how much the model uses a feature -----------------------------------------------------------

def _output_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row |a − b| for one output, or the total-variation distance ½·Σ|a − b| between two
    rows of class probabilities (equal to |ΔP(positive)| for two classes)."""
    if a.ndim == 1:
        return np.abs(a - b)
    return 0.5 * np.abs(a - b).sum(axis=1)


def permutation_shift(score_fn: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, features: Sequence[str], *,
                      rng: np.random.Generator) -> np.ndarray:
    """Mean change in the model's output when each feature is shuffled across the rows of ``X``
    (one batched model call per feature; the other columns keep their values). ``score_fn`` may
    return one value per row (|change|) or an n × k matrix of class probabilities (total-variation
    distance between the two probability vectors, so k classes are treated as k classes)."""
    base = np.asarray(score_fn(X), dtype=float)
    work = X.copy()
    out = np.empty(len(features))
    for j, col in enumerate(features):
        original = work[col]
        work[col] = pd.Series(original.to_numpy()[rng.permutation(len(work))], index=work.index, dtype=original.dtype)
        out[j] = float(np.mean(_output_distance(np.asarray(score_fn(work), dtype=float), base)))
        work[col] = original
    return out


# ---- counterfactual on a proxy -------------------------------------------------------------------

@dataclass(frozen=True)
class RedrawEffect:
    """A group's favorable rate when its values of ``feature`` are redrawn from the reference group's.

    ``lift`` = counterfactual AIR − AIR, the part of the disparity that flows through the feature;
    ``lift_low``/``lift_high`` its normal interval over the group's rows (paired changes).
    """

    feature: str
    group: str
    reference: str
    n_rows: int  # group rows scored (all, or a seeded sample)
    group_count: int  # all rows of the group
    n_values: int  # reference values averaged over per row
    exact: bool  # every distinct reference value, weighted by its frequency (no random draw)
    rate: float  # the group's favorable rate
    counterfactual_rate: float
    reference_rate: float
    air: float
    counterfactual_air: float
    lift: float
    lift_low: float
    lift_high: float
    rows_changed: float  # share of the scored rows whose expected decision moves (|change| > 0)
    confidence: float

    @property
    def gap_share(self) -> float:
        """Share of the gap to parity (1 − AIR) the redraw closes."""
        return self.lift / (1 - self.air) if self.air < 1 else float("nan")


def redraw_effect(decide: Callable[[pd.DataFrame], np.ndarray], group_X: pd.DataFrame, feature: str,
                  reference_values: pd.Series, *, base_decision: np.ndarray, group_rate: float, reference_rate: float,
                  group: str = "", reference: str = "", group_count: int | None = None, max_values: int = 100,
                  max_cells: int = 200_000, rng: np.random.Generator, confidence: float = 0.95) -> RedrawEffect:
    """Counterfactual on a proxy: each row of ``group_X`` is scored with ``feature`` set to the
    reference group's values, and its expected favorable decision is the frequency-weighted mean.

    With at most ``max_values`` distinct reference values the expectation is exact (no random
    draw); otherwise ``max_values`` values are drawn with ``rng``. At most ``max_cells`` rows are
    scored, in one batched call: a larger group is sub-sampled with ``rng``. ``decide`` returns 1
    where the decision is favorable; ``base_decision`` is the decision of the rows of ``group_X``
    as they are; the lift is computed from the paired per-row changes, so the group's rate on all
    its rows (``group_rate``) is moved by the mean change of the scored rows.
    """
    from scipy.stats import norm

    ref = reference_values.reset_index(drop=True)
    codes, uniques = pd.factorize(ref, use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(uniques))
    if len(uniques) <= max_values:
        positions = np.array([int(np.flatnonzero(codes == i)[0]) for i in range(len(uniques))])
        weights = counts / counts.sum()
        exact = True
    else:
        positions = np.sort(rng.choice(len(ref), size=max_values, replace=True))
        weights = np.full(max_values, 1.0 / max_values)
        exact = False
    n_v = len(positions)
    X = group_X.reset_index(drop=True)
    base = np.asarray(base_decision, dtype=float)
    cap = max(1, max_cells // n_v)
    if len(X) > cap:
        keep = sample_positions(len(X), cap, rng)
        X, base = X.iloc[keep].reset_index(drop=True), base[keep]
    n = len(X)
    big = X.iloc[np.tile(np.arange(n), n_v)].reset_index(drop=True)
    big[feature] = ref.iloc[np.repeat(positions, n)].reset_index(drop=True)
    dec = np.asarray(decide(big), dtype=float).reshape(n_v, n)
    expected = weights @ dec
    change = expected - base
    mean_change = float(change.mean()) if n else float("nan")
    se = float(change.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    z = float(norm.ppf(0.5 + confidence / 2))
    cf_rate = group_rate + mean_change
    air = group_rate / reference_rate if reference_rate > 0 else float("nan")
    lift = mean_change / reference_rate if reference_rate > 0 else float("nan")
    half = z * se / reference_rate if reference_rate > 0 else float("nan")
    return RedrawEffect(feature=feature, group=group, reference=reference, n_rows=n,
                        group_count=len(group_X) if group_count is None else group_count, n_values=n_v, exact=exact,
                        rate=group_rate, counterfactual_rate=cf_rate, reference_rate=reference_rate, air=air,
                        counterfactual_air=air + lift, lift=lift, lift_low=lift - half, lift_high=lift + half,
                        rows_changed=float(np.mean(np.abs(change) > 1e-12)) if n else float("nan"),
                        confidence=confidence)
