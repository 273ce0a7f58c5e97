"""Benchmark comparison: simple, interpretable models trained on the model's own training data,
compared with the model on the same test rows with paired uncertainty, and where the two disagree.

* ``fit_benchmarks`` trains a penalized linear model (logistic or ridge; regularisation by a small
  internal CV) and optionally a shallow decision tree, on one shared encoding (numerics: median
  imputation + missing indicators + standardisation; categoricals: one-hot with rare levels
  pooled and unseen levels ignored), and returns their test predictions and settings.
* ``compare_paired`` compares model and benchmark on the same rows: AUC by DeLong's test,
  every other metric by a paired bootstrap (one resample-count matrix shared by both models),
  accuracy additionally by an exact McNemar test, error metrics by a paired t-test on per-row losses.
* ``disagreement`` counts the rows where the benchmark is right and the model wrong (and the
  reverse), and finds single-feature segments (levels / quantile bins) where benchmark-right-model-wrong
  rows concentrate: a one-sided exact test of the segment's share against the other rows
  (hypergeometric, i.e. Fisher's exact test) with Benjamini–Hochberg across segments, and an exact sign
  test of whether the benchmark is right more often than the model within the segment.

Nothing here knows about severities or findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

from .metrics import Curve, Estimate, bootstrap_counts, percentile_interval, roc_points, weighted_auc
from .multiple_testing import bh

Task = Literal["classification", "regression"]

_EPS = np.finfo(float).eps  # sklearn's log-loss clipping for float64
MISSING_LEVEL = "(missing)"

# Regularisation grids searched by the internal CV (stated in the benchmark settings).
LOGISTIC_CS: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
RIDGE_ALPHAS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


# ---- result types ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchmarkFit:
    """One trained benchmark: what it is, how it was set, and its test-set predictions."""

    name: str  # short id: "logistic", "ridge", "tree"
    label: str  # "Logistic regression (L2)"
    noun: str  # for sentences: "logistic regression", "depth-4 decision tree"
    settings: str  # human-readable settings, including what the CV chose
    score: np.ndarray  # test P(positive) for classification, the prediction for regression
    n_train: int
    n_encoded: int  # columns after encoding


@dataclass(frozen=True)
class MetricComparison:
    """One metric for model and benchmark on the same rows; ``difference`` is model − benchmark."""

    metric: str
    higher_is_better: bool
    model: float
    benchmark: float
    difference: Estimate
    interval_method: str  # how the CI was obtained
    p_value: float  # two-sided test of "no difference"
    test: str  # which test gave the p-value

    @property
    def model_worse(self) -> bool:
        """The CI of the difference lies entirely on the model's worse side."""
        d = self.difference
        return bool(d.high < 0) if self.higher_is_better else bool(d.low > 0)

    @property
    def model_better(self) -> bool:
        """The CI of the difference lies entirely on the model's better side."""
        d = self.difference
        return bool(d.low > 0) if self.higher_is_better else bool(d.high < 0)


@dataclass(frozen=True)
class RocCurves:
    """Model and benchmark ROC curves on the same test rows, thinned to at most 400 points (their
    AUCs are the comparison's primary metric); for k classes, each class's one-vs-rest AUC instead
    (NaN for a class absent from the rows)."""

    model: Curve | None
    benchmark: Curve | None
    model_class_auc: tuple[float, ...] = ()
    benchmark_class_auc: tuple[float, ...] = ()


@dataclass(frozen=True)
class PairedComparison:
    """Model against one benchmark on the test rows. ``metrics[0]`` is the primary metric."""

    benchmark: str
    task: str
    metrics: tuple[MetricComparison, ...]
    n: int
    n_resamples: int
    confidence: float
    roc: RocCurves | None = None  # classification: what the comparison figure draws

    @property
    def primary(self) -> MetricComparison:
        return self.metrics[0]

    def get(self, metric: str) -> MetricComparison:
        for m in self.metrics:
            if m.metric == metric:
                return m
        raise KeyError(metric)


@dataclass(frozen=True)
class DeLongResult:
    """DeLong's test for two correlated ROC AUCs on the same rows (difference = a − b)."""

    auc_a: float
    auc_b: float
    difference: float
    se: float
    z: float
    p_value: float
    low: float
    high: float


@dataclass(frozen=True)
class Segment:
    """A single-feature segment and how model and benchmark fare in it."""

    feature: str
    level: str  # a category, "(missing)", or a bin such as "(3.2, 5.1]"
    n: int
    benchmark_wins: int  # benchmark right, model wrong
    model_wins: int  # model right, benchmark wrong
    share: float  # benchmark_wins / n
    overall_share: float  # the same share on all rows
    model_metric: float  # accuracy (classification) or RMSE (regression) in the segment
    benchmark_metric: float
    p_value: float  # one-sided Fisher exact: the share of benchmark wins is higher here than in the other rows
    q_value: float  # Benjamini–Hochberg adjusted p_value over every segment tested
    sign_p_value: float  # one-sided exact sign test: within the segment the benchmark wins more often than the model

    @property
    def lift(self) -> float:
        return self.share / self.overall_share if self.overall_share > 0 else float("nan")


@dataclass(frozen=True)
class Disagreement:
    """Where model and benchmark disagree on the test rows."""

    task: str
    n: int
    margin: float  # regression: |error| must be smaller by more than this; classification: 0
    benchmark_wins: int
    model_wins: int
    both_right: int  # classification only (regression: rows within the margin)
    both_wrong: int  # classification only
    mcnemar_p_value: float  # exact two-sided binomial test on the discordant rows
    benchmark_wins_mask: np.ndarray
    model_wins_mask: np.ndarray
    segments: tuple[Segment, ...]  # every segment with enough support, by p-value
    examples: tuple[int, ...]  # row positions of the clearest benchmark-right-model-wrong rows


# ---- training ---------------------------------------------------------------------------------------

def _prepare(X: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> pd.DataFrame:
    """A copy with numerics as float (inf -> NaN) and categoricals as strings (NaN -> a level)."""
    out = {}
    for c in numeric:
        v = pd.to_numeric(X[c], errors="coerce").astype("float64").to_numpy(copy=True)
        v[~np.isfinite(v)] = np.nan
        out[c] = v
    for c in categorical:
        s = X[c].astype(object)
        out[c] = np.where(s.isna().to_numpy(), MISSING_LEVEL, s.astype(str).to_numpy()).astype(object)
    return pd.DataFrame(out, index=X.index)[list(numeric) + list(categorical)]


def _encoder(numeric: Sequence[str], categorical: Sequence[str], min_category_count: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if numeric:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                           StandardScaler()), list(numeric)))
    if categorical:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=min_category_count,
                                           max_categories=50, sparse_output=False), list(categorical)))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def _fmt_grid(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _l2_only_kwargs(cls) -> dict:
    """An L2 penalty across scikit-learn versions: from 1.8 it is ``l1_ratios=(0,)`` (``penalty`` is
    deprecated); before, the default penalty is already L2."""
    import inspect

    params = inspect.signature(cls).parameters
    kw: dict = {}
    if "l1_ratios" in params and params["l1_ratios"].default == "warn":
        kw["l1_ratios"] = (0.0,)
    if "use_legacy_attributes" in params:
        kw["use_legacy_attributes"] = False
    return kw


@dataclass(frozen=True)
class _Encoded:
    """Training and test rows in the benchmarks' shared encoding."""

    train: np.ndarray
    test: np.ndarray
    text: str  # the encoding in words, for the benchmark settings

    @property
    def n(self) -> int:
        return int(self.train.shape[0])

    @property
    def width(self) -> int:
        return int(self.train.shape[1])


def _logistic_cv(E: _Encoded, y: np.ndarray, folds: int, seed: int):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    lr = LogisticRegressionCV(Cs=list(LOGISTIC_CS), cv=cv, scoring="neg_log_loss", max_iter=2000,
                              **_l2_only_kwargs(LogisticRegressionCV))
    lr.fit(E.train, y)
    return lr


def _fit_k_class(E: _Encoded, y: np.ndarray, k: int, *, cv_folds: int, tree_depth: int, tree_min_leaf: int,
                 seed: int) -> list[BenchmarkFit]:
    """k classes: a multinomial logistic regression and a tree with k-class leaf probabilities."""
    from sklearn.tree import DecisionTreeClassifier

    y = y.astype(int)
    counts = np.bincount(y, minlength=k)
    folds = max(2, min(cv_folds, int(counts[counts > 0].min())))
    lr = _logistic_cv(E, y, folds, seed)
    c = float(np.ravel(lr.C_)[0])
    P = np.zeros((len(E.test), k))
    P[:, np.asarray(lr.classes_, dtype=int)] = lr.predict_proba(E.test)  # a class absent from train gets 0
    fits = [BenchmarkFit(
        name="logistic", label="Multinomial logistic regression (L2)", noun="multinomial logistic regression",
        settings=(f"{k} classes, softmax; C = {c:g} chosen by {folds}-fold CV (k-class log loss) from "
                  f"{{{_fmt_grid(LOGISTIC_CS)}}}; {E.text}"),
        score=P, n_train=E.n, n_encoded=E.width)]
    if tree_depth > 0:
        tree = DecisionTreeClassifier(max_depth=tree_depth, min_samples_leaf=tree_min_leaf, random_state=seed)
        tree.fit(E.train, y)
        leaf_tr, leaf_te = tree.apply(E.train), tree.apply(E.test)
        nodes = tree.tree_.node_count
        size = np.bincount(leaf_tr, minlength=nodes)
        per = np.column_stack([np.bincount(leaf_tr, weights=(y == j), minlength=nodes) for j in range(k)])
        fits.append(BenchmarkFit(
            name="tree", label=f"Decision tree (depth {tree_depth})", noun=f"depth-{tree_depth} decision tree",
            settings=f"max depth {tree_depth}, min {tree_min_leaf} rows per leaf, "
                     f"{tree.get_n_leaves()} leaves, leaf probabilities (class rows + 1) / (rows + {k}); "
                     "same encoding",
            score=(per[leaf_te] + 1.0) / (size[leaf_te][:, None] + k), n_train=E.n, n_encoded=E.width))
    return fits


def _fit_binary(E: _Encoded, y: np.ndarray, *, cv_folds: int, tree_depth: int, tree_min_leaf: int,
                seed: int) -> list[BenchmarkFit]:
    """Two classes: a logistic regression and a tree with smoothed leaf probabilities."""
    from sklearn.tree import DecisionTreeClassifier

    y = y.astype(int)
    folds = max(2, min(cv_folds, int(np.bincount(y, minlength=2).min())))
    lr = _logistic_cv(E, y, folds, seed)
    c = float(np.ravel(lr.C_)[0])
    fits = [BenchmarkFit(
        name="logistic", label="Logistic regression (L2)", noun="logistic regression",
        settings=f"C = {c:g} chosen by {folds}-fold CV (log loss) from {{{_fmt_grid(LOGISTIC_CS)}}}; {E.text}",
        score=lr.predict_proba(E.test)[:, 1], n_train=E.n, n_encoded=E.width)]
    if tree_depth > 0:
        tree = DecisionTreeClassifier(max_depth=tree_depth, min_samples_leaf=tree_min_leaf, random_state=seed)
        tree.fit(E.train, y)
        # leaf probabilities Laplace-smoothed, so a pure leaf does not claim certainty
        leaf_tr, leaf_te = tree.apply(E.train), tree.apply(E.test)
        size = np.bincount(leaf_tr, minlength=tree.tree_.node_count)
        pos = np.bincount(leaf_tr, weights=y, minlength=tree.tree_.node_count)
        fits.append(BenchmarkFit(
            name="tree", label=f"Decision tree (depth {tree_depth})", noun=f"depth-{tree_depth} decision tree",
            settings=f"max depth {tree_depth}, min {tree_min_leaf} rows per leaf, "
                     f"{tree.get_n_leaves()} leaves, leaf probabilities (positives + 1) / (rows + 2); "
                     "same encoding",
            score=(pos[leaf_te] + 1.0) / (size[leaf_te] + 2.0), n_train=E.n, n_encoded=E.width))
    return fits


def _fit_regression(E: _Encoded, y: np.ndarray, *, cv_folds: int, tree_depth: int, tree_min_leaf: int,
                    seed: int) -> list[BenchmarkFit]:
    """Regression: a ridge regression and a regression tree."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.tree import DecisionTreeRegressor

    y = y.astype(float)
    folds = max(2, min(cv_folds, E.n))
    ridge = RidgeCV(alphas=RIDGE_ALPHAS, cv=KFold(n_splits=folds, shuffle=True, random_state=seed))
    ridge.fit(E.train, y)
    fits = [BenchmarkFit(
        name="ridge", label="Ridge regression", noun="ridge regression",
        settings=f"alpha = {float(ridge.alpha_):g} chosen by {folds}-fold CV (squared error) "
                 f"from {{{_fmt_grid(RIDGE_ALPHAS)}}}; {E.text}",
        score=np.asarray(ridge.predict(E.test), dtype=float), n_train=E.n, n_encoded=E.width)]
    if tree_depth > 0:
        tree = DecisionTreeRegressor(max_depth=tree_depth, min_samples_leaf=tree_min_leaf, random_state=seed)
        tree.fit(E.train, y)
        fits.append(BenchmarkFit(
            name="tree", label=f"Decision tree (depth {tree_depth})", noun=f"depth-{tree_depth} decision tree",
            settings=f"max depth {tree_depth}, min {tree_min_leaf} rows per leaf, "
                     f"{tree.get_n_leaves()} leaves; same encoding",
            score=np.asarray(tree.predict(E.test), dtype=float), n_train=E.n, n_encoded=E.width))
    return fits


def fit_benchmarks(X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame, *, task: Task,
                   numeric: Sequence[str], categorical: Sequence[str], cv_folds: int = 3,
                   min_category_count: int = 10, tree_depth: int = 4, tree_min_leaf: int = 20,
                   seed: int = 0, n_classes: int = 2) -> tuple[BenchmarkFit, ...]:
    """Train the linear benchmark (and a depth-``tree_depth`` tree unless it is 0) on the training
    rows and predict the test rows. ``y_train`` is 0/1 (1 = positive) for classification; with
    ``n_classes`` > 2 it is the class index 0..k-1, the benchmarks are a multinomial logistic
    regression and a tree with k-class leaf probabilities, and ``score`` is the n x k matrix."""
    Xtr = _prepare(X_train, numeric, categorical)
    Xte = _prepare(X_test, numeric, categorical)
    enc = _encoder(numeric, categorical, min_category_count)
    Etr = enc.fit_transform(Xtr)
    Ete = enc.transform(Xte)
    text = (f"{len(numeric)} numeric (median imputation, missing indicators, standardised), "
            f"{len(categorical)} categorical (one-hot, levels seen < {min_category_count} times pooled, "
            f"unseen ignored) -> {Etr.shape[1]} columns")
    E = _Encoded(Etr, Ete, text)
    y = np.asarray(y_train)
    options = {"cv_folds": cv_folds, "tree_depth": tree_depth, "tree_min_leaf": tree_min_leaf, "seed": seed}
    if task == "classification" and n_classes > 2:
        fits = _fit_k_class(E, y, int(n_classes), **options)
    elif task == "classification":
        fits = _fit_binary(E, y, **options)
    else:
        fits = _fit_regression(E, y, **options)
    return tuple(fits)


# ---- paired comparison ------------------------------------------------------------------------------

def delong_test(y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, *,
                confidence: float = 0.95) -> DeLongResult:
    """DeLong, DeLong & Clarke-Pearson (1988) for AUC(a) − AUC(b) on the same rows, via midranks
    (Sun & Xu 2014). Ties count one half, as in ``roc_auc_score``."""
    y = np.asarray(y_true).astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos < 2 or neg < 2:
        nan = float("nan")
        return DeLongResult(nan, nan, nan, nan, nan, nan, nan, nan)
    v10, v01, aucs = [], [], []
    for s in (np.asarray(score_a, dtype=float), np.asarray(score_b, dtype=float)):
        x, z = s[y], s[~y]
        tx, tz = stats.rankdata(x), stats.rankdata(z)
        t = stats.rankdata(np.concatenate([x, z]))
        aucs.append((t[:pos].sum() - pos * (pos + 1) / 2) / (pos * neg))
        v10.append((t[:pos] - tx) / neg)  # per positive: share of negatives scored below it
        v01.append(1.0 - (t[pos:] - tz) / pos)  # per negative: share of positives scored above it
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    cov = s10 / pos + s01 / neg
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    se = float(np.sqrt(max(var, 0.0)))
    zq = float(stats.norm.ppf(0.5 + confidence / 2))
    if se > 0:
        z = diff / se
        p = float(2 * stats.norm.sf(abs(z)))
    else:  # identical rankings: no difference and no uncertainty
        z, p = (0.0, 1.0) if diff == 0 else (float("inf") * np.sign(diff), 0.0)
    return DeLongResult(auc_a=float(aucs[0]), auc_b=float(aucs[1]), difference=diff, se=se, z=float(z),
                        p_value=p, low=diff - zq * se, high=diff + zq * se)


def mcnemar_exact(model_correct: np.ndarray, benchmark_correct: np.ndarray) -> tuple[int, int, float]:
    """(benchmark-only right, model-only right, exact two-sided p-value) on the discordant rows."""
    m = np.asarray(model_correct, dtype=bool)
    b = np.asarray(benchmark_correct, dtype=bool)
    bench_only, model_only = int(np.sum(b & ~m)), int(np.sum(m & ~b))
    k = bench_only + model_only
    p = float(stats.binomtest(bench_only, k, 0.5).pvalue) if k else 1.0
    return bench_only, model_only, p


def _paired_t(loss_model: np.ndarray, loss_bench: np.ndarray) -> float:
    d = np.asarray(loss_model, dtype=float) - np.asarray(loss_bench, dtype=float)
    if len(d) < 2 or np.all(d == d[0]):
        return 1.0 if np.all(d == 0) else 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def _log_loss_terms(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def compare_paired(y_true: np.ndarray, model_score: np.ndarray, benchmark_score: np.ndarray, *, task: Task,
                   benchmark: str = "benchmark", threshold: float = 0.5, n_resamples: int = 200,
                   confidence: float = 0.95, auc_method: Literal["delong", "bootstrap"] = "delong",
                   rng: np.random.Generator | int = 0) -> PairedComparison:
    """Model versus benchmark on the same rows, differences as model − benchmark.

    Classification (``y_true`` 0/1, scores = P(positive)): AUC (primary; DeLong or paired bootstrap),
    accuracy at ``threshold`` (paired bootstrap CI, exact McNemar p-value), log loss (paired bootstrap
    CI, paired t-test on per-row log loss). Regression: RMSE (primary), MAE, R² (paired bootstrap CIs;
    paired t-tests on per-row squared / absolute errors). Every bootstrap resample uses the same rows
    for both models. Classification also returns both ROC curves (k classes: each class's
    one-vs-rest AUC) for the comparison figure.
    """
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    sm = np.asarray(model_score, dtype=float)
    sb = np.asarray(benchmark_score, dtype=float)
    n = len(sm)
    boot = f"paired bootstrap ({n_resamples} resamples)"
    roc: RocCurves | None = None
    if task == "classification" and sm.ndim == 2:
        yk = np.asarray(y_true).astype(int)
        metrics = _compare_k_class(yk, sm, sb, n_resamples=n_resamples, confidence=confidence, rng=rng, boot=boot)
        roc = RocCurves(None, None, class_aucs(yk, sm), class_aucs(yk, sb))
    elif task == "classification":
        y = np.asarray(y_true).astype(int)
        metrics = _compare_binary(y, sm, sb, threshold=threshold, n_resamples=n_resamples, confidence=confidence,
                                  rng=rng, boot=boot, auc_method=auc_method)
        if len(np.unique(y)) == 2:
            roc = RocCurves(roc_points(y, sm), roc_points(y, sb))
    else:
        metrics = _compare_regression(np.asarray(y_true, dtype=float), sm, sb, n_resamples=n_resamples,
                                      confidence=confidence, rng=rng, boot=boot)
    return PairedComparison(benchmark=benchmark, task=task, metrics=metrics, n=n,
                            n_resamples=int(n_resamples), confidence=float(confidence), roc=roc)


def _compare_binary(y: np.ndarray, sm: np.ndarray, sb: np.ndarray, *, threshold: float, n_resamples: int,
                    confidence: float, rng: np.random.Generator, boot: str,
                    auc_method: str) -> tuple[MetricComparison, ...]:
    """Two classes: AUC (DeLong, or a paired bootstrap interval), accuracy at ``threshold`` and log loss."""
    n = len(sm)
    cm, cb = (sm >= threshold) == y, (sb >= threshold) == y
    llm, llb = _log_loss_terms(y, sm), _log_loss_terms(y, sb)
    V = np.column_stack([cm, cb, llm, llb]).astype(float)
    sums, auc_m, auc_b = [], [], []
    for counts in bootstrap_counts(n, n_resamples, rng):
        sums.append(counts @ V)
        if auc_method == "bootstrap":
            auc_m.append(weighted_auc(y, sm, counts))
            auc_b.append(weighted_auc(y, sb, counts))
    S = np.vstack(sums) / n
    two = len(np.unique(y)) == 2
    am = float(skm.roc_auc_score(y, sm)) if two else float("nan")
    ab = float(skm.roc_auc_score(y, sb)) if two else float("nan")
    if auc_method == "bootstrap":
        d_auc = percentile_interval(am - ab, np.concatenate(auc_m) - np.concatenate(auc_b), confidence)
        dl = delong_test(y, sm, sb, confidence=confidence)
        auc = MetricComparison("auc", True, am, ab, d_auc, boot, dl.p_value, "DeLong")
    else:
        dl = delong_test(y, sm, sb, confidence=confidence)
        auc = MetricComparison("auc", True, am, ab, Estimate(am - ab, dl.low, dl.high),
                               "DeLong (normal approximation)", dl.p_value, "DeLong")
    acc_m, acc_b = float(cm.mean()), float(cb.mean())
    _, _, p_mc = mcnemar_exact(cm, cb)
    acc = MetricComparison("accuracy", True, acc_m, acc_b,
                           percentile_interval(acc_m - acc_b, S[:, 0] - S[:, 1], confidence), boot, p_mc,
                           "McNemar (exact)")
    ll_m = float(skm.log_loss(y, np.clip(sm, _EPS, 1 - _EPS), labels=[0, 1]))
    ll_b = float(skm.log_loss(y, np.clip(sb, _EPS, 1 - _EPS), labels=[0, 1]))
    ll = MetricComparison("log_loss", False, ll_m, ll_b,
                          percentile_interval(ll_m - ll_b, S[:, 2] - S[:, 3], confidence), boot,
                          _paired_t(llm, llb), "paired t-test on per-row log loss")
    return (auc, acc, ll)


def _compare_regression(y: np.ndarray, sm: np.ndarray, sb: np.ndarray, *, n_resamples: int, confidence: float,
                        rng: np.random.Generator, boot: str) -> tuple[MetricComparison, ...]:
    """Regression: RMSE, MAE and R² with paired bootstrap intervals and paired t-tests."""
    n = len(sm)
    em, eb = sm - y, sb - y
    V = np.column_stack([em ** 2, eb ** 2, np.abs(em), np.abs(eb), y, y ** 2])
    S = np.vstack([counts @ V for counts in bootstrap_counts(n, n_resamples, rng)])
    sst = S[:, 5] - S[:, 4] ** 2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        r2_draw = np.where(sst > 0, (S[:, 1] - S[:, 0]) / np.where(sst > 0, sst, 1.0), np.nan)
    rm, rb = float(np.sqrt(np.mean(em ** 2))), float(np.sqrt(np.mean(eb ** 2)))
    mm, mb = float(np.mean(np.abs(em))), float(np.mean(np.abs(eb)))
    r2m, r2b = float(skm.r2_score(y, sm)), float(skm.r2_score(y, sb))
    p_sq = _paired_t(em ** 2, eb ** 2)
    return (
        MetricComparison("rmse", False, rm, rb,
                         percentile_interval(rm - rb, np.sqrt(S[:, 0] / n) - np.sqrt(S[:, 1] / n), confidence),
                         boot, p_sq, "paired t-test on squared errors"),
        MetricComparison("mae", False, mm, mb, percentile_interval(mm - mb, (S[:, 2] - S[:, 3]) / n, confidence),
                         boot, _paired_t(np.abs(em), np.abs(eb)), "paired t-test on absolute errors"),
        MetricComparison("r2", True, r2m, r2b, percentile_interval(r2m - r2b, r2_draw, confidence),
                         boot, p_sq, "paired t-test on squared errors"),
    )


def _k_log_loss_terms(y: np.ndarray, P: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(P[np.arange(len(y)), y], _EPS, 1.0))


def macro_ovr_auc(y: np.ndarray, P: np.ndarray) -> float:
    """Unweighted mean over the classes present (and absent from some rows) of the one-vs-rest AUC;
    equals ``roc_auc_score(y, P, multi_class="ovr", average="macro")`` when every class occurs."""
    aucs = [skm.roc_auc_score(y == j, P[:, j]) for j in range(P.shape[1]) if 0 < np.sum(y == j) < len(y)]
    return float(np.mean(aucs)) if aucs else float("nan")


def class_aucs(y: np.ndarray, P: np.ndarray) -> tuple[float, ...]:
    """The one-vs-rest AUC of each class's probability column; NaN for a class absent from the rows
    or on every row."""
    return tuple(float(skm.roc_auc_score(y == j, P[:, j])) if 0 < np.sum(y == j) < len(y) else float("nan")
                 for j in range(P.shape[1]))


def _bootstrap_p(value: float, draws: np.ndarray) -> float:
    """Two-sided percentile-bootstrap p-value of "no difference": twice the smaller tail share of
    the draws on either side of 0 (at least 1 / draws)."""
    d = np.asarray(draws, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.isfinite(value):
        return float("nan")
    tail = min(np.mean(d <= 0), np.mean(d >= 0))
    return float(min(1.0, max(2 * tail, 1.0 / d.size)))


def _compare_k_class(y: np.ndarray, sm: np.ndarray, sb: np.ndarray, *, n_resamples: int, confidence: float,
                     rng: np.random.Generator, boot: str) -> tuple[MetricComparison, ...]:
    """k classes: macro one-vs-rest AUC (primary; paired bootstrap interval and p-value), accuracy of
    the most probable class (paired bootstrap interval, exact McNemar), k-class log loss (paired
    bootstrap interval, paired t-test on per-row log loss)."""
    n, k = sm.shape
    cm, cb = sm.argmax(axis=1) == y, sb.argmax(axis=1) == y
    llm, llb = _k_log_loss_terms(y, sm), _k_log_loss_terms(y, sb)
    V = np.column_stack([cm, cb, llm, llb]).astype(float)
    present = [j for j in range(k) if 0 < np.sum(y == j) < n]
    sums, auc_m, auc_b = [], [], []
    for counts in bootstrap_counts(n, n_resamples, rng):
        sums.append(counts @ V)
        auc_m.append(np.nanmean(np.vstack([weighted_auc(y == j, sm[:, j], counts) for j in present]), axis=0)
                     if present else np.full(len(counts), np.nan))
        auc_b.append(np.nanmean(np.vstack([weighted_auc(y == j, sb[:, j], counts) for j in present]), axis=0)
                     if present else np.full(len(counts), np.nan))
    S = np.vstack(sums) / n
    am, ab = macro_ovr_auc(y, sm), macro_ovr_auc(y, sb)
    d_auc_draws = np.concatenate(auc_m) - np.concatenate(auc_b)
    auc = MetricComparison("auc_ovr_macro", True, am, ab, percentile_interval(am - ab, d_auc_draws, confidence),
                           boot, _bootstrap_p(am - ab, d_auc_draws), "paired bootstrap")
    acc_m, acc_b = float(cm.mean()), float(cb.mean())
    _, _, p_mc = mcnemar_exact(cm, cb)
    acc = MetricComparison("accuracy", True, acc_m, acc_b,
                           percentile_interval(acc_m - acc_b, S[:, 0] - S[:, 1], confidence), boot, p_mc,
                           "McNemar (exact)")
    ll_m = float(skm.log_loss(y, np.clip(sm, _EPS, 1.0), labels=list(range(k))))
    ll_b = float(skm.log_loss(y, np.clip(sb, _EPS, 1.0), labels=list(range(k))))
    ll = MetricComparison("log_loss", False, ll_m, ll_b,
                          percentile_interval(ll_m - ll_b, S[:, 2] - S[:, 3], confidence), boot,
                          _paired_t(llm, llb), "paired t-test on per-row log loss")
    return (auc, acc, ll)


# ---- disagreement -----------------------------------------------------------------------------------

def _fmt(v: float) -> str:
    return f"{v:.4g}"


def segment_levels(values: pd.Series, *, n_bins: int = 5, max_levels: int = 10,
                   categorical: bool = False) -> tuple[np.ndarray, list[str]]:
    """Integer codes and labels of single-feature segments: categories (and numerics with at most
    ``max_levels`` distinct values) by level, other numerics by quantile bins; missing is its own level."""
    s = values
    missing = s.isna().to_numpy()
    codes = np.full(len(s), -1, dtype=int)
    labels: list[str] = []
    numeric = (not categorical and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))
    if numeric:
        x = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
        missing = ~np.isfinite(x)
        uniq = np.unique(x[~missing])
    if numeric and len(uniq) > max_levels:
        edges = np.unique(np.quantile(x[~missing], np.linspace(0, 1, n_bins + 1))[1:-1])
        codes[~missing] = np.searchsorted(edges, x[~missing], side="left")
        bounds = [-np.inf, *edges, np.inf]
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if lo == -np.inf:
                labels.append(f"≤ {_fmt(hi)}")
            elif hi == np.inf:
                labels.append(f"> {_fmt(lo)}")
            else:
                labels.append(f"({_fmt(lo)}, {_fmt(hi)}]")
    else:
        keys = x if numeric else s.astype(object).to_numpy()
        present = ~missing
        cats = sorted(set(keys[present].tolist()), key=(lambda k: k) if numeric else str)
        index = {k: i for i, k in enumerate(cats)}
        codes[present] = [index[k] for k in keys[present]]
        labels = [(_fmt(k) if numeric else str(k)) for k in cats]
    if missing.any():
        codes[missing] = len(labels)
        labels.append(MISSING_LEVEL)
    return codes, labels


def disagreement(X: pd.DataFrame, y_true: np.ndarray, model_score: np.ndarray, benchmark_score: np.ndarray, *,
                 task: Task, threshold: float = 0.5, margin: float = 0.0, n_bins: int = 5,
                 min_support: int = 30, max_examples: int = 10,
                 categorical: Sequence[str] = ()) -> Disagreement:
    """Rows where the benchmark is right and the model wrong, and the reverse, and the segments where
    the benchmark wins more often than the model.

    Classification: right = decision at ``threshold`` equals the label. Regression: the benchmark
    "wins" a row when its absolute error is smaller than the model's by more than ``margin`` (and
    vice versa). Each segment with at least ``min_support`` rows gets a one-sided Fisher exact test of
    its share of benchmark wins against the other rows (q-values: Benjamini–Hochberg over all segments
    tested) and a one-sided exact sign test of benchmark wins against model wins within the segment.
    """
    sm = np.asarray(model_score, dtype=float)
    sb = np.asarray(benchmark_score, dtype=float)
    n = len(sm)
    if task == "classification" and sm.ndim == 2:  # k classes: right = the most probable class is the true one
        y = np.asarray(y_true).astype(int)
        cm, cb = sm.argmax(axis=1) == y, sb.argmax(axis=1) == y
        bw, mw = cb & ~cm, cm & ~cb
        both_right, both_wrong = int(np.sum(cm & cb)), int(np.sum(~cm & ~cb))
        loss_m, loss_b = cm.astype(float), cb.astype(float)
        severity = 1.0 - sm[np.arange(n), y]  # how badly the model missed: 1 - P(true class)
        margin = 0.0
        p_mc = mcnemar_exact(cm, cb)[2]
    elif task == "classification":
        y = np.asarray(y_true).astype(int)
        cm, cb = (sm >= threshold) == y, (sb >= threshold) == y
        bw, mw = cb & ~cm, cm & ~cb
        both_right, both_wrong = int(np.sum(cm & cb)), int(np.sum(~cm & ~cb))
        loss_m, loss_b = cm.astype(float), cb.astype(float)  # per-row accuracy
        severity = np.abs(y - sm)  # how badly the model missed
        margin = 0.0
        p_mc = mcnemar_exact(cm, cb)[2]
    else:
        y = np.asarray(y_true, dtype=float)
        am, ab = np.abs(sm - y), np.abs(sb - y)
        bw, mw = ab < am - margin, am < ab - margin
        both_right, both_wrong = int(np.sum(~bw & ~mw)), 0
        loss_m, loss_b = (sm - y) ** 2, (sb - y) ** 2
        severity = am - ab
        p_mc = _sign_p(int(bw.sum()), int(mw.sum()), "two-sided")
    overall = float(bw.mean()) if n else float("nan")

    raw: list[tuple[str, str, int, int, int, float, float, float, float]] = []
    total_bw = int(bw.sum())
    for feature in X.columns:
        codes, labels = segment_levels(X[feature], n_bins=n_bins, categorical=feature in categorical)
        size = np.bincount(codes, minlength=len(labels))
        nb = np.bincount(codes, weights=bw, minlength=len(labels))
        nm = np.bincount(codes, weights=mw, minlength=len(labels))
        lm = np.bincount(codes, weights=loss_m, minlength=len(labels))
        lb = np.bincount(codes, weights=loss_b, minlength=len(labels))
        for k, label in enumerate(labels):
            if size[k] < min_support or size[k] == n:
                continue
            met_m, met_b = lm[k] / size[k], lb[k] / size[k]
            if task == "regression":
                met_m, met_b = float(np.sqrt(met_m)), float(np.sqrt(met_b))
            raw.append((str(feature), label, int(size[k]), int(nb[k]), int(nm[k]), float(met_m), float(met_b),
                        concentration_p(int(nb[k]), int(size[k]), total_bw, n),
                        _sign_p(int(nb[k]), int(nm[k]), "greater")))
    qs = bh([r[7] for r in raw]) if raw else np.array([])
    segments = sorted(
        (Segment(feature=f, level=lv, n=sz, benchmark_wins=b, model_wins=m, share=b / sz, overall_share=overall,
                 model_metric=mm, benchmark_metric=mb, p_value=p, q_value=float(q), sign_p_value=sp)
         for (f, lv, sz, b, m, mm, mb, p, sp), q in zip(raw, qs)),
        key=lambda s: (s.p_value, -s.benchmark_wins, s.feature, s.level))
    pos = np.flatnonzero(bw)
    order = np.lexsort((pos, -severity[pos]))  # worst model miss first, then by row
    return Disagreement(task=task, n=n, margin=float(margin), benchmark_wins=int(bw.sum()),
                        model_wins=int(mw.sum()), both_right=both_right, both_wrong=both_wrong,
                        mcnemar_p_value=p_mc, benchmark_wins_mask=bw, model_wins_mask=mw,
                        segments=tuple(segments), examples=tuple(int(i) for i in pos[order][:max_examples]))


def figure_rows(bench_wins: np.ndarray, model_wins: np.ndarray, max_points: int = 1000) -> np.ndarray:
    """The rows a disagreement figure shows, sorted: every discordant row (up to half of
    ``max_points``, evenly spaced beyond that) plus evenly spaced agreeing rows. Deterministic."""
    disc = np.flatnonzero(bench_wins | model_wins)
    agree = np.flatnonzero(~(bench_wins | model_wins))
    if len(disc) > max_points // 2:
        disc = disc[np.unique(np.linspace(0, len(disc) - 1, max_points // 2).round().astype(int))]
    room = max_points - len(disc)
    if len(agree) > room:
        agree = agree[np.unique(np.linspace(0, len(agree) - 1, max(room, 1)).round().astype(int))]
    return np.sort(np.concatenate([disc, agree]))


def concentration_p(k: int, size: int, total_k: int, n: int) -> float:
    """One-sided Fisher exact p-value that a segment of ``size`` rows holding ``k`` of the ``total_k``
    marked rows (out of ``n``) has a higher share of them than the other rows."""
    if k == 0:
        return 1.0
    return float(stats.hypergeom.sf(k - 1, n, total_k, size))


def _sign_p(wins: int, losses: int, alternative: str) -> float:
    k = wins + losses
    return float(stats.binomtest(wins, k, 0.5, alternative=alternative).pvalue) if k else 1.0
