"""Model extraction: how closely a copy trained on the model's answers to queries reproduces it.

The caller queries the model (one batched call per query set) and passes the answers in; this
module only trains copies and measures them, so the query budget is the caller's to count.

* **Query sources**: any named set of attacker rows, e.g. ``synthetic`` rows drawn independently
  per feature from the observed domains (:func:`synthetic_rows`, a weak attacker who knows only
  ranges and levels) and ``real`` in-distribution rows (a strong attacker).
* **APIs**: for a classifier, ``scores`` (the API returns P(positive); the copy is a regressor
  on its logit, thresholded like the model) and ``labels`` (the API returns only the decision;
  the copy is a classifier); for a regressor, ``predictions``. For k > 2 classes the scores API
  returns the probability vector (the copy regresses the centred log-probabilities, one output
  per class, and predicts the most probable class) and the labels API the predicted class (the
  copy is a k-class classifier); fidelity is agreement on the predicted class.
* **Copies**: histogram gradient boosting (ordinal codes, native categorical splits) and a linear
  model (logistic/ridge on one-hot + standardised features), each seeded; both are reported and
  an attacker would keep the better one.
* **Fidelity** on held-out real rows the attacker never queried: decision agreement with its
  Wilson interval and Cohen's kappa (classification), R² and correlation between copy and model
  scores, and the copy's own AUC (R² for regression) on the true target next to the model's.
* **Learning curve**: every copy is trained on the first ``b`` queries for each budget ``b``.

Nothing here knows about severities.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .domain import FeatureDomain
from .intervals import wilson
from .security import TabularEncoder, fill_empty_columns, hgb_params, seed_of

_CLIP = 1e-6
FAMILIES = ("boosted trees", "linear")


@dataclass(frozen=True)
class QuerySet:
    """Attacker rows and the model's answers to them, in query order."""

    rows: pd.DataFrame
    score: np.ndarray  # P(positive) (binary), the (n, k) probabilities (k classes) or the prediction (regression)
    label: np.ndarray  # the decision (binary 0/1), the predicted class index (k classes) or the prediction


@dataclass(frozen=True)
class CopyFidelity:
    """One copy (source × API × budget × model family) measured on the evaluation rows."""

    source: str
    api: str
    budget: int
    family: str
    agreement: float  # share of evaluation rows where copy and model decide alike (nan: regression)
    agreement_low: float  # Wilson interval (regression: bootstrap interval of score R²)
    agreement_high: float
    kappa: float  # Cohen's kappa of the decisions (nan: regression)
    score_r2: float  # R² of the copy's score as a predictor of the model's score (nan for the labels API)
    score_corr: float  # Pearson correlation of copy and model scores
    copy_metric: float  # the copy's AUC (classification) or R² (regression) on the true target

    score_r2_low: float = float("nan")  # regression: percentile-bootstrap interval of score R²
    score_r2_high: float = float("nan")

    @property
    def fidelity(self) -> float:
        """The headline: decision agreement (classification) or score R² (regression)."""
        return self.agreement if np.isfinite(self.agreement) else self.score_r2

    @property
    def fidelity_low(self) -> float:
        return self.agreement_low if np.isfinite(self.agreement) else self.score_r2_low

    @property
    def fidelity_high(self) -> float:
        return self.agreement_high if np.isfinite(self.agreement) else self.score_r2_high


@dataclass(frozen=True)
class ExtractionResult:
    task: str
    threshold: float
    n_eval: int
    queries: tuple[tuple[str, int], ...]  # source -> queries answered
    budgets: tuple[tuple[str, tuple[int, ...]], ...]  # source -> learning-curve budgets
    points: tuple[CopyFidelity, ...]
    model_metric: float  # the model's AUC / R² on the evaluation rows
    eval_score: np.ndarray  # the model's scores on the evaluation rows
    copy_score: np.ndarray  # the best full-budget copy's scores on them (for plotting)
    copy_point: CopyFidelity | None  # which copy ``copy_score`` is
    n_classes: int = 2  # classification: classes of the model (k > 2: probabilities are (n, k))
    confidence: float = 0.95  # level of the fidelity intervals

    def best(self, source: str, api: str, budget: int) -> CopyFidelity:
        """The better copy family at one point of the learning curve."""
        cands = [p for p in self.points if (p.source, p.api, p.budget) == (source, api, budget)]
        return max(cands, key=_rank)

    def curve(self, source: str, api: str) -> list[CopyFidelity]:
        budgets = dict(self.budgets)[source]
        return [self.best(source, api, b) for b in budgets]

    @property
    def apis(self) -> tuple[str, ...]:
        return ("scores", "labels") if self.task == "classification" else ("predictions",)


def _rank(p: CopyFidelity) -> tuple[float, float, str]:
    f = p.fidelity if np.isfinite(p.fidelity) else -np.inf
    r2 = p.score_r2 if np.isfinite(p.score_r2) else -np.inf
    return (f, r2, p.family)


def synthetic_rows(domains: Mapping[str, FeatureDomain], features: Sequence[str], n: int,
                   rng: np.random.Generator, template: pd.DataFrame | None = None) -> pd.DataFrame:
    """``n`` rows drawn independently per feature: numeric uniformly over the observed range
    (integers stay whole), categorical uniformly over the observed levels. Columns take the
    template's dtypes where the values allow it."""
    data: dict[str, object] = {}
    for f in features:
        d = domains[f]
        if d.categorical:
            if d.levels:
                data[f] = np.asarray(d.levels, dtype=object)[rng.integers(0, len(d.levels), n)]
            else:
                data[f] = np.full(n, None, dtype=object)
        elif np.isfinite(d.low) and np.isfinite(d.high):
            v = rng.uniform(d.low, d.high, n) if d.high > d.low else np.full(n, d.low)
            data[f] = np.round(v) if d.integer else v
        else:
            data[f] = np.full(n, np.nan)
    out = pd.DataFrame(data, columns=list(features))
    if template is not None:
        for f in features:
            if f in template.columns:
                with contextlib.suppress(TypeError, ValueError):  # keep the drawn values' own type
                    out[f] = out[f].astype(template[f].dtype)
    return out


def _r2(target: np.ndarray, pred: np.ndarray) -> float:
    ss = float(np.sum((target - target.mean()) ** 2))
    if ss <= 0:
        return float("nan")
    return 1.0 - float(np.sum((target - pred) ** 2)) / ss


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    """Binary AUC, or the macro one-vs-rest AUC over the classes present when ``s`` is (n, k)."""
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    s = np.asarray(s, dtype=float)
    if s.ndim == 2:
        y = np.asarray(y).astype(int)
        aucs = [roc_auc_score(y == j, s[:, j]) for j in range(s.shape[1]) if 0 < np.sum(y == j) < len(y)]
        return float(np.mean(aucs)) if aucs else float("nan")
    return float(roc_auc_score(y, s))


def _clr(p: np.ndarray) -> np.ndarray:
    """Centred log-probabilities: a k-vector regression target that softmax maps back."""
    lp = np.log(np.clip(np.asarray(p, dtype=float), _CLIP, 1.0))
    return lp - lp.mean(axis=1, keepdims=True)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _CLIP, 1 - _CLIP)
    return np.log(p / (1 - p))


def _fit_copy(family: str, kind: str, Xc: np.ndarray, Xd: np.ndarray, target: np.ndarray,
              enc: TabularEncoder, seed: int, enc_k: int = 2):
    """Train one copy; returns a function (codes, design) -> copy score ((n, k) for the multi kinds)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    Xc = fill_empty_columns(Xc)  # an all-missing feature cannot be binned
    if kind == "multiclassifier":  # (n, k) probabilities over the classes 0..k-1
        k = int(enc_k)
        classes = np.unique(target)
        if len(classes) < 2:
            onehot = np.zeros(k)
            if len(classes):
                onehot[int(classes[0])] = 1.0
            return lambda c, d: np.tile(onehot, (len(c), 1))
        if family == "boosted trees":
            m = HistGradientBoostingClassifier(**hgb_params(enc, random_state=seed)).fit(Xc, target)
        else:
            m = LogisticRegression(C=1.0, max_iter=2000).fit(Xd, target)

        def proba(c, d, m=m):
            out = np.zeros((len(c), k))
            out[:, m.classes_.astype(int)] = m.predict_proba(c if family == "boosted trees" else d)
            return out
        return proba
    if kind == "multiregressor":  # (n, k) targets
        if family == "boosted trees":
            ms = [HistGradientBoostingRegressor(**hgb_params(enc, random_state=seed)).fit(Xc, target[:, j])
                  if np.ptp(target[:, j]) > 0 else float(target[0, j]) for j in range(target.shape[1])]
            return lambda c, d: np.column_stack([m.predict(c) if not isinstance(m, float) else np.full(len(c), m)
                                                 for m in ms])
        m = Ridge(alpha=1.0).fit(Xd, target)
        return lambda c, d: m.predict(d)
    if kind == "classifier":
        classes = np.unique(target)
        if len(classes) < 2:
            const = float(classes[0]) if len(classes) else 0.0
            return lambda c, d: np.full(len(c), const)
        if family == "boosted trees":
            m = HistGradientBoostingClassifier(**hgb_params(enc, random_state=seed)).fit(Xc, target)
            return lambda c, d: m.predict_proba(c)[:, 1]
        m = LogisticRegression(C=1.0, max_iter=2000).fit(Xd, target)
        return lambda c, d: m.predict_proba(d)[:, 1]
    if np.ptp(target) == 0:
        const = float(target[0])
        return lambda c, d: np.full(len(c), const)
    if family == "boosted trees":
        m = HistGradientBoostingRegressor(**hgb_params(enc, random_state=seed)).fit(Xc, target)
        return lambda c, d: m.predict(c)
    m = Ridge(alpha=1.0).fit(Xd, target)
    return lambda c, d: m.predict(d)


def extraction_attack(*, task: str, query_sets: Mapping[str, QuerySet], eval_rows: pd.DataFrame,
                      eval_score: np.ndarray, eval_label: np.ndarray, eval_target: np.ndarray,
                      categorical: Sequence[str], threshold: float = 0.5, budgets: Sequence[int] = (100, 300, 1000),
                      families: Sequence[str] = FAMILIES, confidence: float = 0.95,
                      rng: np.random.Generator) -> ExtractionResult:
    """Train copies on the first ``b`` answered queries of each source for each budget ``b`` (plus
    the whole set) and measure them on the evaluation rows (see the module docstring). Fidelity
    intervals (Wilson for agreement, percentile bootstrap for R²) are at level ``confidence``.

    ``eval_target`` is the true target (0/1 for a binary classifier, the class index for k
    classes); ``eval_label`` the model's decisions (k classes: predicted class indices) and
    ``eval_score`` its P(positive) or, for k classes, its (n, k) probabilities.
    """
    cls = task == "classification"
    features = list(eval_rows.columns)
    eval_score = np.asarray(eval_score, dtype=float)
    eval_label = np.asarray(eval_label)
    eval_target = np.asarray(eval_target, dtype=float)
    multi = cls and eval_score.ndim == 2
    k = eval_score.shape[1] if multi else 2
    model_metric = _auc(eval_target, eval_score) if cls else _r2(eval_target, eval_score)
    points: list[CopyFidelity] = []
    curve_budgets: list[tuple[str, tuple[int, ...]]] = []
    best_full: tuple[tuple, CopyFidelity, np.ndarray] | None = None
    apis = ("scores", "labels") if cls else ("predictions",)
    for source in sorted(query_sets):
        qs = query_sets[source]
        n = len(qs.rows)
        bs = tuple(sorted({int(b) for b in budgets if 0 < b < n} | ({n} if n else set())))
        curve_budgets.append((source, bs))
        if not n:
            continue
        enc = TabularEncoder.fit(qs.rows, columns=features, categorical=categorical)
        Qc, Qd = enc.codes(qs.rows), enc.design(qs.rows)
        Ec, Ed = enc.codes(eval_rows), enc.design(eval_rows)
        for b in bs:
            for api in apis:
                for family in families:
                    if multi and api == "labels":
                        fn = _fit_copy(family, "multiclassifier", Qc[:b], Qd[:b], np.asarray(qs.label[:b]).astype(int),
                                       enc, seed_of(rng), enc_k=k)
                        copy_score = fn(Ec, Ed)
                        copy_label = np.argmax(copy_score, axis=1)
                    elif multi:
                        fn = _fit_copy(family, "multiregressor", Qc[:b], Qd[:b], _clr(qs.score[:b]), enc, seed_of(rng))
                        copy_score = _softmax(fn(Ec, Ed))
                        copy_label = np.argmax(copy_score, axis=1)
                    elif api == "labels":
                        fn = _fit_copy(family, "classifier", Qc[:b], Qd[:b], np.asarray(qs.label[:b]).astype(int),
                                       enc, seed_of(rng))
                        copy_score = fn(Ec, Ed)
                        copy_label = (copy_score >= 0.5).astype(int)
                    elif api == "scores":
                        fn = _fit_copy(family, "regressor", Qc[:b], Qd[:b], _logit(qs.score[:b]), enc, seed_of(rng))
                        copy_score = 1.0 / (1.0 + np.exp(-fn(Ec, Ed)))
                        copy_label = (copy_score >= threshold).astype(int)
                    else:
                        fn = _fit_copy(family, "regressor", Qc[:b], Qd[:b], np.asarray(qs.score[:b], dtype=float),
                                       enc, seed_of(rng))
                        copy_score = fn(Ec, Ed)
                        copy_label = None
                    p = _measure(source, api, b, family, copy_score, copy_label, eval_score, eval_label,
                                 eval_target, cls, rng, confidence=confidence)
                    points.append(p)
                    if b == n and api == apis[0] and (best_full is None or _rank(p) > best_full[0]):
                        best_full = (_rank(p), p, copy_score)
    plot_model, plot_copy = eval_score, (best_full[2] if best_full else np.empty(0))
    if multi:  # plotted: the probability of the class the model predicts, by the model and by the copy
        rows = np.arange(len(eval_label))
        lab = eval_label.astype(int)
        plot_model = eval_score[rows, lab]
        plot_copy = plot_copy[rows, lab] if len(plot_copy) else plot_copy
    return ExtractionResult(
        task=task, threshold=float(threshold) if cls and not multi else float("nan"), n_eval=len(eval_rows),
        queries=tuple((s, len(query_sets[s].rows)) for s in sorted(query_sets)), budgets=tuple(curve_budgets),
        points=tuple(points), model_metric=model_metric, eval_score=plot_model,
        copy_score=plot_copy, copy_point=best_full[1] if best_full else None, n_classes=k if cls else 0,
        confidence=confidence)


def _r2_interval(target: np.ndarray, pred: np.ndarray, rng: np.random.Generator | None,
                 n_resamples: int = 200, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of R² over the evaluation rows."""
    if rng is None or len(target) < 10:
        return float("nan"), float("nan")
    idx = rng.integers(0, len(target), size=(n_resamples, len(target)))
    t, p = target[idx], pred[idx]
    ss = np.sum((t - t.mean(axis=1, keepdims=True)) ** 2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - np.sum((t - p) ** 2, axis=1) / ss
    r2 = r2[np.isfinite(r2)]
    if not r2.size:
        return float("nan"), float("nan")
    a = (1 - confidence) / 2
    lo, hi = np.quantile(r2, [a, 1 - a])
    return float(lo), float(hi)


def _measure(source: str, api: str, budget: int, family: str, copy_score: np.ndarray,
             copy_label: np.ndarray | None, eval_score: np.ndarray, eval_label: np.ndarray,
             eval_target: np.ndarray, cls: bool, rng: np.random.Generator | None = None, *,
             confidence: float = 0.95) -> CopyFidelity:
    copy_score = np.asarray(copy_score, dtype=float)
    if cls and copy_label is not None:
        from sklearn.metrics import cohen_kappa_score

        agree = copy_label == eval_label.astype(int)
        k = int(agree.sum())
        lo, hi = wilson(k, len(agree), confidence=confidence)
        agreement = k / len(agree) if len(agree) else float("nan")
        both_const = len(np.unique(copy_label)) < 2 and len(np.unique(eval_label)) < 2
        kappa = float("nan") if both_const else float(cohen_kappa_score(copy_label, eval_label.astype(int)))
        copy_metric = _auc(eval_target, copy_score)
    else:
        agreement = lo = hi = kappa = float("nan")
        copy_metric = _r2(eval_target, copy_score)
    # a labels-API copy's probability estimates its own decision, not the model's score: no R² for it
    # (k classes: R² and correlation over all probability cells)
    flat_m, flat_c = eval_score.reshape(-1), copy_score.reshape(-1)
    score_r2 = float("nan") if api == "labels" else _r2(flat_m, flat_c)
    r2_lo = r2_hi = float("nan")
    if not cls:
        r2_lo, r2_hi = _r2_interval(eval_score, copy_score, rng, confidence=confidence)
    return CopyFidelity(source=source, api=api, budget=int(budget), family=family, agreement=float(agreement),
                        agreement_low=lo, agreement_high=hi, kappa=kappa, score_r2=score_r2,
                        score_corr=_corr(flat_m, flat_c), copy_metric=copy_metric, score_r2_low=r2_lo,
                        score_r2_high=r2_hi)
