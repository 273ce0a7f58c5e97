"""Residual numerics: per-row residuals, residual patterns by feature and by prediction, a
surrogate tree of the residuals, heteroscedasticity, outliers, data-quality suspects among the
worst rows, and SHAP contributions to the loss of those rows.

Residual definitions:

* regression: ``residual = actual - predicted``; ``standardized = residual / sd(residual)``;
  ``loss`` is the squared error;
* classification (P = probability of the positive class, y in {0, 1}): ``residual = y - P``
  (observed minus predicted rate, whose mean in any region is zero for a calibrated model);
  ``loss = -log p(true class)``; ``deviance = sign(y - P) * sqrt(2 * loss)``;
  ``standardized`` is the Pearson residual ``(y - P) / sqrt(P (1 - P))``;
* k classes (task ``multiclass``; p = the row's predicted distribution, y = the true class index):
  ``loss = -log p[y]`` (the k-class log loss of the row); ``residual = loss - H(p)``, the log loss
  in excess of its expectation under the model's own distribution (its entropy), whose mean in any
  region is zero for a calibrated model (positive: worse than the model claims);
  ``prediction`` is the probability of the predicted (most probable) class; ``deviance =
  sqrt(2 * loss)``; ``standardized = residual / sd(residual)``. ``class_residual`` is the n x k
  matrix ``1{y = j} - p_j`` (observed minus predicted rate of each class, the k-class form of
  ``y - P``): the log loss is blind where the model's distribution is flat (every class then costs
  about the same), so patterns by feature and the surrogate tree use these per-class residuals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .multiple_testing import bh
from .segments import EPS, Interval, entropy_rows, fit_coding, fmt_number, log_loss_rows, log_loss_rows_k, mean_interval

# ---- per-row residuals -------------------------------------------------------------------------

@dataclass(frozen=True)
class Residuals:
    task: str
    y: np.ndarray  # regression target, or 1 for the positive class
    prediction: np.ndarray  # regression prediction, or P(positive)
    residual: np.ndarray  # y - prediction
    standardized: np.ndarray
    deviance: np.ndarray  # classification deviance residual; regression: the residual
    loss: np.ndarray  # squared error, or -log p(true class)
    proba: np.ndarray | None = None  # multiclass: the n x k predicted distribution
    p_true: np.ndarray | None = None  # multiclass: probability of the true class
    pred_class: np.ndarray | None = None  # multiclass: index of the most probable class
    class_residual: np.ndarray | None = None  # multiclass: n x k, 1{y = j} - p_j

    @property
    def error_size(self) -> np.ndarray:
        """What ranks the worst rows: |residual| (regression) or the log loss (classification)."""
        return np.abs(self.residual) if self.task == "regression" else self.loss

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def residual_sd(self) -> float:
        """The SD of the residual (NaN for fewer than two rows)."""
        return float(self.residual.std(ddof=1)) if self.n > 1 else float("nan")

    @property
    def target_variance(self) -> float:
        """The variance of the target (0/1 for classification); k classes: the summed variance of the
        class indicators (Gini impurity), so a structure share reads as Brier skill, as in binary."""
        if self.n <= 1:
            return float("nan")
        if self.task == "multiclass" and self.class_residual is not None and self.proba is not None:
            return float(np.var(self.class_residual + self.proba, axis=0, ddof=1).sum())
        return float(np.var(self.y, ddof=1))

    def worst_positions(self, k: int) -> np.ndarray:
        """Positions of the ``k`` largest errors, worst first (ties in row order)."""
        return np.argsort(-self.error_size, kind="stable")[:k]


def compute_residuals(y: np.ndarray, prediction: np.ndarray, *, task: str) -> Residuals:
    """Per-row residuals (see the module docstring); ``multiclass`` takes the class index and the
    n x k probability matrix."""
    pred = np.asarray(prediction, dtype=float)
    if task == "multiclass":
        yi = np.asarray(y).astype(int)
        P = pred
        loss = log_loss_rows_k(yi, P)
        r = loss - entropy_rows(P)
        sd = float(r.std(ddof=1)) if r.size > 1 else float("nan")
        std = r / sd if sd and math.isfinite(sd) and sd > 0 else np.zeros_like(r)
        pc = P.argmax(axis=1)
        onehot = np.zeros_like(P)
        onehot[np.arange(len(yi)), yi] = 1.0
        return Residuals(task, yi.astype(float), P.max(axis=1), r, std, np.sqrt(2 * loss), loss, proba=P,
                         p_true=P[np.arange(len(yi)), yi], pred_class=pc, class_residual=onehot - P)
    if task == "classification":
        yb = np.asarray(y).astype(int)
        p = np.clip(pred, EPS, 1 - EPS)
        r = yb - pred
        loss = log_loss_rows(yb, pred)
        return Residuals(task, yb.astype(float), pred, r, r / np.sqrt(p * (1 - p)),
                         np.sign(r) * np.sqrt(2 * loss), loss)
    yv = np.asarray(y, dtype=float)
    r = yv - pred
    sd = float(r.std(ddof=1)) if r.size > 1 else float("nan")
    std = r / sd if sd and math.isfinite(sd) and sd > 0 else np.zeros_like(r)
    return Residuals(task, yv, pred, r, std, r, r ** 2)


# ---- residual pattern along one variable -----------------------------------------------------------

@dataclass(frozen=True)
class BoxStats:
    label: str
    q1: float
    median: float
    q3: float
    whislo: float  # 5th percentile
    whishi: float  # 95th percentile


@dataclass(frozen=True)
class ResidualPattern:
    """Mean residual by bin (numeric: quantile bins; categorical: levels) with confidence
    intervals and one-sample t-tests of mean = 0, plus the strength of the pattern.

    ``strength`` is epsilon-squared of a one-way ANOVA of the residual on the bins (the share of
    residual variance explained by the bin means, corrected for the number of bins);
    ``p_value`` is the ANOVA F-test's.
    """

    feature: str
    categorical: bool
    labels: tuple[str, ...]
    x: np.ndarray  # numeric: mean value in each bin; categorical: 0..k-1
    count: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    sd: np.ndarray
    p_values: np.ndarray  # per bin, mean != 0
    p_adjusted: np.ndarray  # BH over the bins; a bin without a test (one row) counts as p = 1
    strength: float
    p_value: float
    boxes: tuple[BoxStats, ...]  # categorical, per level
    points_x: np.ndarray  # a sample of raw points for scatter plots (numeric)
    points_y: np.ndarray
    points_group: np.ndarray  # e.g. the true class, for colouring
    target_class: str = ""  # multiclass: the class whose residual 1{y = class} - p_class this is


def residual_pattern(x: pd.Series, r: np.ndarray, *, feature: str, categorical: bool, bins: int = 10,
                     max_levels: int = 8, confidence: float = 0.95, sample: np.ndarray | None = None,
                     group: np.ndarray | None = None) -> ResidualPattern:
    """Mean residual by bin of ``x``. Categorical levels beyond the ``max_levels`` most frequent are
    pooled as "other"; missing values are their own bin."""
    r = np.asarray(r, dtype=float)
    if categorical:
        vals = x.astype(object)
        top_levels = _levels_to_show(vals, r, max_levels)
        labels = [str(k) for k in top_levels]
        cat = pd.Categorical(vals, categories=pd.Index(top_levels, dtype=object))
        codes = np.asarray(cat.codes, dtype=np.int64)
        miss = vals.isna().to_numpy()
        other = (codes < 0) & ~miss
        if other.any():
            codes[other] = len(labels)
            labels.append("other")
        if miss.any():
            codes[miss] = len(labels)
            labels.append("missing")
        xs = np.arange(len(labels), dtype=float)
    else:
        coding = fit_coding(x, feature=feature, categorical=False, n_bins=bins)
        codes = coding.codes(x)
        xv = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        present = [c for c in range(coding.n_codes) if np.any(codes == c)]
        remap = {c: i for i, c in enumerate(present)}
        lut = np.full(coding.n_codes, -1, dtype=np.int64)
        for c, i in remap.items():
            lut[c] = i
        codes = np.where(codes >= 0, lut[np.clip(codes, 0, None)], -1)
        labels = [coding.labels[c].replace(f"{feature} ", "", 1) if c != coding.missing_code else "missing"
                  for c in present]
        ok = (codes >= 0) & np.isfinite(xv)
        sums = np.bincount(codes[ok], weights=xv[ok], minlength=len(present))
        cnts = np.bincount(codes[ok], minlength=len(present))
        xs = np.where(cnts > 0, sums / np.maximum(cnts, 1), np.nan)
    k = len(labels)
    count = np.bincount(codes[codes >= 0], minlength=k)
    mean, low, high, sd, pv = (np.full(k, np.nan) for _ in range(5))
    boxes: list[BoxStats] = []
    groups = []
    for i in range(k):
        ri = r[codes == i]
        groups.append(ri)
        if ri.size == 0:
            continue
        ci = mean_interval(ri, confidence)
        mean[i], low[i], high[i] = ci.value, ci.low, ci.high
        if ri.size > 1:
            sd[i] = ri.std(ddof=1)
            pv[i] = float(stats.ttest_1samp(ri, 0.0).pvalue) if sd[i] > 0 else (1.0 if ci.value == 0 else 0.0)
        if categorical:
            q = np.quantile(ri, [0.05, 0.25, 0.5, 0.75, 0.95])
            boxes.append(BoxStats(labels[i], float(q[1]), float(q[2]), float(q[3]), float(q[0]), float(q[4])))
    strength, p_value = _anova([g for g in groups if g.size > 0])
    if sample is None:
        sample = np.arange(len(r))
    px = (pd.to_numeric(x.iloc[sample], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
          if not categorical else codes[sample].astype(float))
    pg = group[sample] if group is not None else np.zeros(len(sample))
    return ResidualPattern(feature, categorical, tuple(labels), xs, count, mean, low, high, sd, pv,
                           bh(np.nan_to_num(pv, nan=1.0)), strength, p_value, tuple(boxes), px, r[sample], pg)


def _levels_to_show(vals: pd.Series, r: np.ndarray, k: int) -> list[Any]:
    """The ``k`` levels whose mean residual deviates most from zero (largest |t|), so a rare but
    badly predicted level is never hidden in "other"; shown most frequent first."""
    frame = pd.DataFrame({"v": vals.to_numpy(), "r": r}).dropna(subset=["v"])
    g = frame.groupby("v", sort=False)["r"]
    agg = pd.DataFrame({"n": g.size(), "mean": g.mean(), "sd": g.std(ddof=1)})
    se = agg["sd"].fillna(0).to_numpy() / np.sqrt(agg["n"].to_numpy())
    t = np.abs(agg["mean"].to_numpy()) / np.where(se > 0, se, np.inf)
    t = np.where(np.isfinite(t), t, 0.0)
    levels = list(agg.index)
    ranked = sorted(range(len(levels)), key=lambda i: (-t[i], -agg["n"].iloc[i], str(levels[i])))[:k]
    return [levels[i] for i in sorted(ranked, key=lambda i: (-agg["n"].iloc[i], str(levels[i])))]


def _anova(groups: list[np.ndarray]) -> tuple[float, float]:
    """Epsilon-squared and the F-test p-value of a one-way ANOVA."""
    k = len(groups)
    n = sum(g.size for g in groups)
    if k < 2 or n <= k:
        return 0.0, 1.0
    allr = np.concatenate(groups)
    grand = allr.mean()
    ss_t = float(((allr - grand) ** 2).sum())
    ss_b = float(sum(g.size * (g.mean() - grand) ** 2 for g in groups))
    ss_w = ss_t - ss_b
    if ss_t <= 0:
        return 0.0, 1.0
    ms_w = ss_w / (n - k)
    eps2 = max((ss_b - (k - 1) * ms_w) / ss_t, 0.0)
    if ms_w <= 0:
        return eps2, 0.0
    f = (ss_b / (k - 1)) / ms_w
    return eps2, float(stats.f.sf(f, k - 1, n - k))


# ---- surrogate tree of the residuals --------------------------------------------------------------

@dataclass(frozen=True)
class Leaf:
    rule: str
    n_fit: int
    n: int  # held-out rows in the leaf
    mean: float  # held-out mean residual
    low: float
    high: float
    p_value: float  # held-out, mean != 0
    p_adjusted: float  # BH over the leaves
    klass: int = -1  # multi-output tree: the class whose mean residual is shown (most significant)


@dataclass(frozen=True)
class SurrogateTree:
    """A shallow regression tree of the residual on the features, fitted on one random half and
    evaluated on the other. ``explained`` is the share of residual variance it explains on held-out
    rows, cross-fitted (each half predicted by the tree of the other half); ``p_value`` is a
    one-sided t-test that the per-row reduction in squared residual is positive."""

    max_depth: int
    min_leaf: int
    n_fit: int
    n_eval: int
    explained: float
    p_value: float
    importances: tuple[tuple[str, float], ...]  # features it splits on, most important first
    leaves: tuple[Leaf, ...]
    explained_low: float = float("nan")  # t interval of the mean per-row gain, scaled like ``explained``
    explained_high: float = float("nan")

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f for f, _ in self.importances)


def structure_share(tree: SurrogateTree | None, res: Residuals) -> float:
    """The structured part of the residuals as a share of the target's variance: how much R² (or
    Brier skill) fixing it would add. Tiny for a near-perfect model, however structured."""
    target_var = res.target_variance
    if tree is None or not (target_var > 0):
        return 0.0
    if res.task == "multiclass" and res.class_residual is not None:
        return float(tree.explained * np.var(res.class_residual, axis=0, ddof=1).sum() / target_var)
    return float(tree.explained * np.var(res.residual, ddof=1) / target_var)


class _TreeEncoding:
    """Numeric columns as floats (missing stays NaN, which the tree routes); categorical columns as
    the rank of each level's mean residual in the fitting rows (CART's ordering for squared loss),
    so every split is a set of levels."""

    MISSING = "(missing)"

    def __init__(self, X: pd.DataFrame, r: np.ndarray, categorical: Sequence[str]) -> None:
        self.features = list(X.columns)
        self.cats = set(categorical)
        self.orders: dict[str, list[Any]] = {}
        self.had_missing: dict[str, bool] = {}
        for col in self.features:
            s = X[col]
            self.had_missing[col] = bool(s.isna().any())
            if col in self.cats:
                vals = s.astype(object).where(s.notna(), self.MISSING)
                rc = r
                if np.ndim(r) == 2:  # order by the class whose level means vary most
                    frame = pd.DataFrame(r, index=vals.index).groupby(vals.to_numpy())
                    lm, ln = frame.mean(), frame.size().to_numpy()
                    spread = ((lm - lm.mean()) ** 2).mul(ln, axis=0).sum().to_numpy()
                    rc = r[:, int(np.argmax(spread))]
                means = pd.Series(rc, index=vals.index).groupby(vals.to_numpy()).mean()
                order = sorted(means.items(), key=lambda kv: (kv[1], str(kv[0])))
                self.orders[col] = [k for k, _ in order]

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(X), len(self.features)), dtype=float)
        for j, col in enumerate(self.features):
            s = X[col]
            if col in self.orders:
                vals = s.astype(object).where(s.notna(), self.MISSING)
                cat = pd.Categorical(vals, categories=pd.Index(self.orders[col], dtype=object))
                codes = np.asarray(cat.codes, dtype=float)
                out[:, j] = np.where(codes >= 0, codes, np.nan)
            else:  # an infinite value is not a measurement: routed like a missing one
                v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                out[:, j] = np.where(np.isfinite(v), v, np.nan)
        return out


def surrogate_tree(X: pd.DataFrame, residual: np.ndarray, *, categorical: Sequence[str], rng: np.random.Generator,
                   max_depth: int = 3, min_leaf: int = 30, confidence: float = 0.95) -> SurrogateTree | None:
    """Fit and cross-evaluate the residual tree; None when there are too few rows to split.
    A 2-d ``residual`` (n x k per-class residuals) fits a multi-output tree: the explained share is
    then of the summed squared residuals over the columns, and each leaf shows its most significant
    column (p-value Bonferroni-corrected over the k columns)."""
    from sklearn.tree import DecisionTreeRegressor

    r = np.asarray(residual, dtype=float)
    multi = r.ndim == 2
    n = len(r)
    if n < 4 * min_leaf:
        return None
    perm = rng.permutation(n)
    halves = (np.sort(perm[: n // 2]), np.sort(perm[n // 2:]))
    d = np.empty(n)
    shown = None
    for fit, ev in ((halves[0], halves[1]), (halves[1], halves[0])):
        enc = _TreeEncoding(X.iloc[fit], r[fit], categorical)
        tree = DecisionTreeRegressor(max_depth=max_depth, min_samples_leaf=min_leaf, random_state=0)
        tree.fit(enc.transform(X.iloc[fit]), r[fit])
        Z = enc.transform(X.iloc[ev])
        m = r[fit].mean(axis=0)
        gain = (r[ev] - m) ** 2 - (r[ev] - tree.predict(Z)) ** 2
        d[ev] = gain.sum(axis=1) if multi else gain
        if shown is None:
            shown = (enc, tree, fit, ev, Z)
    base = float(((r - r.mean(axis=0)) ** 2).sum())
    explained = float(d.sum() / base) if base > 0 else 0.0
    ci = mean_interval(d, confidence)
    scale = n / base if base > 0 else 0.0
    ex_lo, ex_hi = (float(ci.low * scale), float(ci.high * scale)) if math.isfinite(ci.low) else (explained, explained)
    if d.std(ddof=1) > 0:
        p = float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue)
    else:
        p = 1.0
    assert shown is not None
    enc, tree, fit, ev, Z = shown
    imp = tree.feature_importances_
    importances = tuple(sorted(((enc.features[j], float(imp[j])) for j in range(len(imp)) if imp[j] > 0),
                               key=lambda kv: (-kv[1], kv[0])))
    leaves = _leaves(r[ev], tree.apply(Z), tree.apply(enc.transform(X.iloc[fit])), _leaf_rules(tree, enc),
                     confidence=confidence)
    return SurrogateTree(max_depth=max_depth, min_leaf=min_leaf, n_fit=len(fit), n_eval=len(ev),
                         explained=explained, p_value=p, importances=importances, leaves=leaves,
                         explained_low=ex_lo, explained_high=ex_hi)


def _leaf_p(rv: np.ndarray) -> float:
    """Two-sided one-sample t-test of mean = 0 (1 when there is no spread to test)."""
    if rv.size > 1 and rv.std(ddof=1) > 0:
        return float(stats.ttest_1samp(rv, 0.0).pvalue)
    return 1.0


def _leaves(r_eval: np.ndarray, leaf_eval: np.ndarray, leaf_fit: np.ndarray, rules: list[tuple[int, str]], *,
            confidence: float) -> tuple[Leaf, ...]:
    """Each leaf's held-out mean residual with its interval and p-value, BH-adjusted over the leaves.
    A 2-d residual shows the leaf's most significant column (Bonferroni over the columns)."""
    multi = r_eval.ndim == 2
    raw: list[tuple[str, int, int, Interval | None, float, int]] = []
    for node, rule in rules:
        rows = r_eval[leaf_eval == node]
        klass = -1
        if multi:
            ps = [_leaf_p(rows[:, j]) for j in range(r_eval.shape[1])]
            klass = int(min(range(len(ps)), key=lambda j: (ps[j], -abs(rows[:, j].mean()) if len(rows) else 0)))
            rv = rows[:, klass]
            pl = min(1.0, ps[klass] * r_eval.shape[1])
        else:
            rv = rows
            pl = _leaf_p(rv)
        ci = mean_interval(rv, confidence) if rv.size else None
        raw.append((rule, int((leaf_fit == node).sum()), int(rv.size), ci, pl, klass))
    padj = bh([pl for *_, pl, _ in raw])
    nan = float("nan")
    return tuple(Leaf(rule, nf, ne, ci.value if ci else nan, ci.low if ci else nan, ci.high if ci else nan,
                      pl, float(pa), kl)
                 for (rule, nf, ne, ci, pl, kl), pa in zip(raw, padj))


def _leaf_rules(tree: Any, enc: _TreeEncoding) -> list[tuple[int, str]]:
    """Readable rules of every leaf, left to right: conditions on one feature are merged."""
    t = tree.tree_
    mgl = getattr(t, "missing_go_to_left", None)
    out: list[tuple[int, str]] = []

    def walk(node: int, path: list[tuple[int, str, float, bool]]) -> None:
        if t.children_left[node] == -1:
            out.append((node, _render_path(path, enc)))
            return
        j, thr = int(t.feature[node]), float(t.threshold[node])
        miss_left = bool(mgl[node]) if mgl is not None else False
        walk(int(t.children_left[node]), path + [(j, "le", thr, miss_left)])
        walk(int(t.children_right[node]), path + [(j, "gt", thr, not miss_left)])

    walk(0, [])
    return out


def _render_path(path: list[tuple[int, str, float, bool]], enc: _TreeEncoding) -> str:
    if not path:
        return "all rows"
    per: dict[int, list[tuple[str, float, bool]]] = {}
    for j, op, thr, miss in path:
        per.setdefault(j, []).append((op, thr, miss))
    parts = []
    for j in sorted(per, key=lambda j: [p[0] for p in path].index(j)):
        col = enc.features[j]
        conds = per[j]
        if col in enc.orders:
            order = enc.orders[col]
            allowed = set(range(len(order)))
            for op, thr, _ in conds:
                allowed = {i for i in allowed if (i <= thr if op == "le" else i > thr)}
            inside = [order[i] for i in sorted(allowed)]
            outside = [order[i] for i in range(len(order)) if i not in allowed]
            parts.append(_set_text(col, inside, outside))
        else:
            lo = max((thr for op, thr, _ in conds if op == "gt"), default=None)
            hi = min((thr for op, thr, _ in conds if op == "le"), default=None)
            if lo is not None and hi is not None:
                text = f"{fmt_number(lo)} < {col} <= {fmt_number(hi)}"
            elif lo is not None:
                text = f"{col} > {fmt_number(lo)}"
            else:
                text = f"{col} <= {fmt_number(hi)}"
            if enc.had_missing[col] and all(m for _, _, m in conds):
                text += " (or missing)"
            parts.append(text)
    return " & ".join(parts)


def _set_text(col: str, inside: list[Any], outside: list[Any], max_shown: int = 4) -> str:
    def names(vals: list[Any]) -> str:
        shown = ", ".join(str(v) for v in sorted(vals, key=str)[:max_shown])
        return shown + (f", ... (+{len(vals) - max_shown})" if len(vals) > max_shown else "")

    if len(inside) == 1:
        return f"{col} = {inside[0]}"
    if len(outside) == 1:
        return f"{col} != {outside[0]}"
    if len(outside) < len(inside):
        return f"{col} not in {{{names(outside)}}}"
    return f"{col} in {{{names(inside)}}}"


# ---- spread against the prediction ----------------------------------------------------------------

@dataclass(frozen=True)
class Heteroscedasticity:
    """Spearman rank correlation of |residual| with the prediction, and the ratio of the residual
    SD in the top to the bottom fifth of predictions."""

    rho: float
    p_value: float
    spread_ratio: float


def heteroscedasticity(residual: np.ndarray, prediction: np.ndarray) -> Heteroscedasticity:
    r = np.asarray(residual, dtype=float)
    pred = np.asarray(prediction, dtype=float)
    if r.size < 10 or np.all(pred == pred[0]):
        return Heteroscedasticity(float("nan"), 1.0, float("nan"))
    res = stats.spearmanr(np.abs(r), pred)
    lo, hi = np.quantile(pred, [0.2, 0.8])
    bottom, top = r[pred <= lo], r[pred >= hi]
    sd_b = bottom.std(ddof=1) if bottom.size > 1 else float("nan")
    sd_t = top.std(ddof=1) if top.size > 1 else float("nan")
    ratio = float(sd_t / sd_b) if sd_b and math.isfinite(sd_b) and sd_b > 0 else float("nan")
    return Heteroscedasticity(float(res.statistic), float(res.pvalue), ratio)


# ---- outliers --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outliers:
    """Regression: rows whose robust z-score of the residual (median/MAD) exceeds ``threshold``,
    and their share of the total squared error. Classification: rows whose true class got a
    probability below ``threshold`` ("confidently wrong"), against the count a calibrated model
    would produce (sum of the small probabilities), with a one-sided Poisson test."""

    kind: str  # "robust_z" or "confident_errors"
    threshold: float
    rows: np.ndarray  # positions, worst first
    count: int
    share: float  # of rows
    error_share: float  # of the total loss
    expected: float  # classification: count expected under calibration
    p_value: float


def outliers(res: Residuals, *, z: float = 5.0, confident_p: float = 0.02) -> Outliers:
    if res.task == "regression":
        r = res.residual
        med = float(np.median(r))
        mad = float(np.median(np.abs(r - med))) * 1.4826
        if mad <= 0:
            mad = float(np.std(r)) or 1.0
        rz = np.abs(r - med) / mad
        hit = np.flatnonzero(rz > z)
        hit = hit[np.argsort(-rz[hit], kind="stable")]
        total = float(res.loss.sum())
        return Outliers("robust_z", z, hit, int(hit.size), hit.size / max(r.size, 1),
                        float(res.loss[hit].sum() / total) if total > 0 else 0.0, float("nan"), float("nan"))
    if res.task == "multiclass" and res.proba is not None and res.p_true is not None:
        p_true = res.p_true
        P = res.proba
        # a calibrated model's true class is class j with probability P[:, j]: summed over the
        # classes whose probability is below confident_p
        expected = float(np.where(confident_p > P, P, 0.0).sum())
    else:
        p = res.prediction
        p_true = np.where(res.y == 1, p, 1 - p)
        # a calibrated model gives the true class a probability q < confident_p with probability q
        expected = float(np.where(p < confident_p, p, 0.0).sum() + np.where(1 - p < confident_p, 1 - p, 0.0).sum())
    hit = np.flatnonzero(p_true < confident_p)
    hit = hit[np.argsort(p_true[hit], kind="stable")]
    pv = float(stats.poisson.sf(hit.size - 1, expected)) if expected > 0 else (0.0 if hit.size else 1.0)
    total = float(res.loss.sum())
    return Outliers("confident_errors", confident_p, hit, int(hit.size), hit.size / max(p_true.size, 1),
                    float(res.loss[hit].sum() / total) if total > 0 else 0.0, expected, pv)


# ---- data-quality suspects among the worst rows ----------------------------------------------------

SUSPECT_KINDS = ("negative", "out_of_range", "missing", "unseen_level")


@dataclass(frozen=True)
class Suspect:
    """One (column, kind) of suspicious value, enriched among the worst rows."""

    column: str
    kind: str
    description: str  # e.g. "negative values; never negative in train"
    n_worst: int  # flagged rows among the worst
    n_rest: int  # flagged rows among the others
    worst_rows: int
    rest_rows: int
    p_value: float  # one-sided Fisher exact test of enrichment
    p_adjusted: float


@dataclass(frozen=True)
class SuspectScan:
    worst_share: float
    worst_rows: int
    reference: str  # "train" or "test"
    suspects: tuple[Suspect, ...]  # every tested (column, kind), most significant first
    flags: tuple[tuple[str, ...], ...]  # per row of the data, the flag texts (empty for most)


def scan_suspects(X: pd.DataFrame, error_size: np.ndarray, *, numeric: Sequence[str], categorical: Sequence[str],
                  reference: pd.DataFrame | None, worst_share: float = 0.05, min_worst: int = 20,
                  range_margin: float = 0.1) -> SuspectScan:
    """Flag impossible or implausible values and test whether they concentrate among the worst
    rows (the ``worst_share`` largest errors, at least ``min_worst`` rows).

    Flags: a negative value in a column that is never negative in the reference (train; without
    train, negative in at most 1% of test rows); a value outside the reference range widened by
    ``range_margin`` of its span (without train: outside the 1-99% quantile range widened by its
    own width); a missing value; a categorical level absent from train.
    """
    n = len(X)
    err = np.asarray(error_size, dtype=float)
    k = min(n, max(min_worst, int(math.ceil(worst_share * n))))
    order = np.argsort(-err, kind="stable")
    worst = np.zeros(n, dtype=bool)
    worst[order[:k]] = True
    ref_name = "train" if reference is not None else "test"
    ref = reference if reference is not None else X
    flags: list[list[str]] = [[] for _ in range(n)]
    tested: list[tuple[str, str, str, np.ndarray]] = []
    for col in X.columns:
        s = X[col]
        miss = s.isna().to_numpy()
        if miss.any():
            tested.append((col, "missing", "missing values", miss))
        if col in numeric:
            v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            rv = pd.to_numeric(ref[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            rv = rv[np.isfinite(rv)]
            if rv.size == 0:
                continue
            neg = np.zeros(n, dtype=bool)
            nonneg = (rv.min() >= 0) if reference is not None else (np.mean(rv < 0) <= 0.01)
            if nonneg:
                neg = v < 0
                if neg.any():
                    tested.append((col, "negative", f"negative values; never negative in {ref_name}"
                                   if reference is not None else "negative values in an otherwise non-negative column",
                                   neg))
            if reference is not None:
                lo, hi = float(rv.min()), float(rv.max())
                pad = range_margin * ((hi - lo) if hi > lo else max(abs(hi), 1.0))
                text = f"values outside the train range [{fmt_number(lo)}, {fmt_number(hi)}]"
            else:
                q01, q99 = np.quantile(rv, [0.01, 0.99])
                lo, hi = float(q01), float(q99)
                pad = (hi - lo) if hi > lo else max(abs(hi), 1.0)
                text = f"values far outside the 1-99% range [{fmt_number(lo)}, {fmt_number(hi)}]"
            far = ((v < lo - pad) | (v > hi + pad)) & ~neg
            if far.any():
                tested.append((col, "out_of_range", text, far))
        elif col in categorical and reference is not None:
            seen = set(reference[col].dropna().astype(object).tolist())
            unseen = np.array([(x not in seen) for x in s.astype(object)], dtype=bool) & ~miss
            if unseen.any():
                tested.append((col, "unseen_level", "levels never seen in train", unseen))
    raw = []
    for col, kind, text, mask in tested:
        a = int((mask & worst).sum())
        b = int((mask & ~worst).sum())
        p = float(stats.fisher_exact([[a, k - a], [b, (n - k) - b]], alternative="greater")[1]) if n > k else 1.0
        raw.append((col, kind, text, a, b, p))
        short = {"negative": "< 0", "out_of_range": "out of range", "missing": "missing",
                 "unseen_level": "unseen level"}[kind]
        for i in np.flatnonzero(mask):
            flags[i].append(f"{col} {short}")
    padj = bh([r[5] for r in raw])
    suspects = [Suspect(col, kind, text, a, b, k, n - k, p, float(pa))
                for (col, kind, text, a, b, p), pa in zip(raw, padj)]
    suspects.sort(key=lambda s: (s.p_value, -s.n_worst, s.column, s.kind))
    return SuspectScan(worst_share=worst_share, worst_rows=k, reference=ref_name, suspects=tuple(suspects),
                       flags=tuple(tuple(f) for f in flags))


# ---- SHAP drivers of a few rows ---------------------------------------------------------------------

@dataclass(frozen=True)
class RowDrivers:
    """SHAP contributions for a few rows against a background sample, to two outputs: the model's
    prediction (score) and the row's own loss (squared error, or log loss of its actual class).
    For each, base + sum of contributions = the output for that row."""

    features: tuple[str, ...]
    prediction: np.ndarray  # (rows, features)
    prediction_base: np.ndarray  # (rows,)
    loss: np.ndarray  # (rows, features)
    loss_base: np.ndarray  # (rows,)
    loss_value: np.ndarray  # (rows,) the explained loss itself
    n_background: int
    max_evals: int
    n_model_rows: int

    def top_prediction(self, row: int, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` largest |contributions| to the prediction."""
        v = self.prediction[row]
        order = sorted(range(len(self.features)), key=lambda j: (-abs(v[j]), self.features[j]))[:k]
        return [(self.features[j], float(v[j])) for j in order]

    def top_loss(self, row: int, k: int = 3, min_share: float = 0.05) -> list[tuple[str, float]]:
        """Up to ``k`` features that raise the row's loss most (positive contributions of at least
        ``min_share`` of the loss)."""
        v = self.loss[row]
        floor = min_share * abs(float(self.loss_value[row]))
        order = sorted((j for j in range(len(self.features)) if v[j] > 0 and v[j] >= floor),
                       key=lambda j: (-v[j], self.features[j]))[:k]
        return [(self.features[j], float(v[j])) for j in order]


def row_drivers(score: Callable[[pd.DataFrame], np.ndarray], rows: pd.DataFrame, y: np.ndarray,
                background: pd.DataFrame, *, task: str, categorical: Sequence[str],
                max_evals: int | None = None, seed: int = 0) -> RowDrivers:
    """SHAP values of the prediction and of the loss of each of ``rows`` (``y``: 0/1, the
    regression target, or for ``multiclass`` the class index with ``score`` returning the n x k
    probability matrix: the explained prediction is then P(true class) and the loss its -log),
    reusing the model-agnostic permutation explainer of ``analysis.importance`` on integer-coded
    features; one small batched explanation per row."""
    import hashlib

    from .importance import FeatureCoder, min_max_evals, shap_importance

    features = list(rows.columns)
    coder = FeatureCoder.fit([background, rows], features, categorical)
    me = max(int(max_evals or 0), min_max_evals(len(features)))
    k = len(features)
    out = {name: np.zeros((len(rows), k)) for name in ("pred", "loss")}
    base = {name: np.zeros(len(rows)) for name in ("pred", "loss")}
    loss_value = np.zeros(len(rows))
    memo: dict[bytes, np.ndarray] = {}
    scored = {"rows": 0}

    def cached(X: pd.DataFrame) -> np.ndarray:
        # the loss explanation of a row (same seed) masks exactly the frames its prediction
        # explanation did: score each frame once
        key = hashlib.sha1(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes()).digest()
        if key not in memo:
            memo[key] = np.asarray(score(X), dtype=float)
            scored["rows"] += len(X)
        return memo[key]

    for i in range(len(rows)):
        yi = y[i]
        pred_fn: Callable[[pd.DataFrame], np.ndarray] = cached
        if task == "multiclass":
            def pred_fn(X: pd.DataFrame, yi: Any = yi) -> np.ndarray:
                return cached(X)[:, int(yi)]

            def f(X: pd.DataFrame, yi: Any = yi) -> np.ndarray:
                return -np.log(np.clip(cached(X)[:, int(yi)], EPS, 1.0))
        elif task == "classification":
            def f(X: pd.DataFrame, yi: Any = yi) -> np.ndarray:
                return log_loss_rows(np.full(len(X), int(yi)), cached(X))
        else:
            def f(X: pd.DataFrame, yi: Any = yi) -> np.ndarray:
                return (float(yi) - cached(X)) ** 2
        for name, fn in (("pred", pred_fn), ("loss", f)):
            imp = shap_importance(fn, rows.iloc[i:i + 1], background, coder=coder, max_evals=me, seed=seed + i)
            out[name][i] = imp.values[0]
            base[name][i] = imp.base_values[0]
            if name == "loss":
                loss_value[i] = imp.outputs[0]
        memo.clear()
    return RowDrivers(tuple(features), out["pred"], base["pred"], out["loss"], base["loss"], loss_value,
                      len(background), me, scored["rows"])


# ---- the worst rows, ready to read ------------------------------------------------------------------

def value_text(v: Any) -> str:
    """A feature or target value as the worst-rows tables show it ("missing" for None or NaN)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "missing"
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return fmt_number(v)
    return str(v)


@dataclass(frozen=True)
class WorstRow:
    """One of the rows with the largest errors, with its values and drivers as text."""

    position: int  # row position in the analysed test data
    label: str  # the id column's value, or the test data's index label
    actual: Any
    predicted: float
    residual: float  # regression: actual - predicted; classification: probability of the actual class
    loss: float
    flags: tuple[str, ...]
    pushes: tuple[tuple[str, str, float], ...]  # (feature, value text, SHAP contribution to the prediction)
    raises: tuple[tuple[str, str, float], ...]  # (feature, value text, positive SHAP contribution to the loss)
    values: tuple[tuple[str, str], ...]  # (feature, value text)
    predicted_class: Any = None  # multiclass: the most probable class (``predicted`` is its probability)


def worst_value_features(drivers: RowDrivers | None, preferred: Sequence[str], k: int = 8) -> tuple[str, ...]:
    """Columns of the worst-rows value table: the features that drive the worst rows' prediction
    and loss most (summed |SHAP| of the prediction plus the positive SHAP of the loss), then
    ``preferred`` (e.g. the features with the strongest residual patterns); at most ``k``."""
    chosen: list[str] = []
    if drivers is not None:
        total = np.abs(drivers.prediction).sum(axis=0) + np.clip(drivers.loss, 0, None).sum(axis=0)
        for j in sorted(range(len(drivers.features)), key=lambda j: (-total[j], drivers.features[j])):
            if total[j] > 0:
                chosen.append(drivers.features[j])
    for f in preferred:
        if f not in chosen:
            chosen.append(f)
    return tuple(chosen[:k])


def worst_rows(res: Residuals, X: pd.DataFrame, order: np.ndarray, *, labels: Sequence[Any], actual: Sequence[Any],
               flags: Sequence[tuple[str, ...]], drivers: RowDrivers | None, value_features: Sequence[str],
               classes: Sequence[Any] = ()) -> tuple[WorstRow, ...]:
    """The rows at positions ``order`` of the analysed data ``X`` (worst first) as records to read:
    ``labels``, ``actual`` (raw target values) and ``flags`` are per analysed row; ``drivers``
    explains the rows of ``order`` in that order; ``classes`` names the k classes (multiclass)."""
    records = X.iloc[order].to_dict("records")
    out = []
    for rank, pos in enumerate(int(p) for p in order):
        row = records[rank]
        pushes: tuple[tuple[str, str, float], ...] = ()
        raises: tuple[tuple[str, str, float], ...] = ()
        if drivers is not None:
            pushes = tuple((f, value_text(row[f]), c) for f, c in drivers.top_prediction(rank))
            raises = tuple((f, value_text(row[f]), c) for f, c in drivers.top_loss(rank))
        predicted_class: Any = None
        if res.task == "multiclass" and res.p_true is not None and res.pred_class is not None:
            p_true = float(res.p_true[pos])
            predicted_class = classes[int(res.pred_class[pos])]
        else:
            p_true = float(res.prediction[pos] if res.y[pos] == 1 else 1 - res.prediction[pos])
        out.append(WorstRow(
            position=pos, label=str(labels[pos]), actual=actual[pos], predicted=float(res.prediction[pos]),
            residual=float(res.residual[pos]) if res.task == "regression" else p_true, loss=float(res.loss[pos]),
            flags=tuple(flags[pos]), pushes=pushes, raises=raises,
            values=tuple((f, value_text(row[f])) for f in value_features), predicted_class=predicted_class))
    return tuple(out)
