"""Less discriminatory alternatives: pure numerics for the retraining remedy.

* ``neutral_values`` and ``neutralised`` set proxy features to one constant (the training median, or
  the most frequent level) before a model sees them, when it is fitted and when it scores: a first
  pipeline step of scikit-learn parts (a ``ColumnTransformer`` of ``numpy.full_like``), so it works
  for any pipeline that takes the feature frame and is saved with it.
* ``regularisation_settings`` proposes a few stronger regularisation settings of a final estimator
  with an obvious one (C, alpha, l2_regularization, reg_lambda, max_depth, min_samples_leaf).
* ``benchmark_estimators`` builds the benchmark family of ``benchmark.fit_benchmarks`` (penalised
  logistic regression, shallow tree, on its shared encoding) as pipelines that can be saved.
* ``score_candidate`` measures one candidate's test predictions: AUC, accuracy, favourable rate and
  each judged group's adverse impact ratio (``group_metrics.disparate_impact``); ``pick_alternative``
  picks the candidate that raises the worst ratio within an AUC tolerance.

Nothing here knows about severities or findings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .benchmark import LOGISTIC_CS, _encoder, _l2_only_kwargs
from .group_metrics import Grouping, disparate_impact

Judged = tuple[Grouping, tuple[str, ...]]  # a grouping and the groups that must reach the line


# ---- neutralising proxies ------------------------------------------------------------------------

def neutral_values(X: pd.DataFrame, columns: Sequence[str], categorical: Sequence[str]) -> dict[str, Any]:
    """One constant per column: the most frequent value of a categorical (ties: the first in sorted
    text order), the median of a numeric one (rounded for an integer column)."""
    out: dict[str, Any] = {}
    for c in columns:
        s = X[c]
        if c in categorical or not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            counts = s.dropna().value_counts()
            if counts.empty:
                out[c] = None
                continue
            top = counts[counts == counts.max()].index
            value = sorted(top, key=str)[0]
            out[c] = value.item() if hasattr(value, "item") else value
        else:
            v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            med = float(np.median(v)) if v.size else 0.0
            out[c] = int(round(med)) if pd.api.types.is_integer_dtype(s) else med
    return out


def neutraliser(features: Sequence[str], constants: Mapping[str, Any]) -> Any:
    """A transformer that returns the feature frame (same columns, same order) with each column of
    ``constants`` set to its constant, built of scikit-learn and numpy parts only."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import FunctionTransformer

    parts = []
    for i, f in enumerate(features):
        if f in constants:
            step: Any = FunctionTransformer(np.full_like, kw_args={"fill_value": constants[f]},
                                            feature_names_out="one-to-one")
        else:
            step = "passthrough"
        parts.append((f"c{i}", step, [f]))
    ct = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    return ct.set_output(transform="pandas")


def neutralised(estimator: Any, features: Sequence[str], constants: Mapping[str, Any]) -> Any:
    """``Pipeline([("neutralise", ...), ("model", estimator)])``: the model never sees the proxies' values."""
    from sklearn.pipeline import Pipeline

    return Pipeline([("neutralise", neutraliser(features, constants)), ("model", estimator)])


# ---- regularisation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """A hyper-parameter setting of the final estimator (``set_params`` names without prefix)."""

    label: str  # "C = 0.1 (was 1)"
    params: Mapping[str, Any]


def _num(params: Mapping[str, Any], key: str, default: float) -> float:
    v = params.get(key, default)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else default


def _depth(params: Mapping[str, Any], key: str = "max_depth") -> int:
    """A shallower tree depth: one less than the current, 3 when unlimited."""
    v = params.get(key)
    return 3 if not isinstance(v, int) or isinstance(v, bool) or v <= 0 else max(1, v - 1)


def regularisation_settings(params: Mapping[str, Any], *, limit: int = 2) -> list[Setting]:
    """Up to ``limit`` stronger regularisation settings for a final estimator's parameters
    (``get_params(deep=False)``), by the parameters it has; none when it has no obvious one."""
    out: list[Setting] = []
    if "C" in params:
        c = _num(params, "C", 1.0)
        out += [Setting(f"C = {c / 10:g} (was {c:g})", {"C": c / 10}),
                Setting(f"C = {c / 100:g} (was {c:g})", {"C": c / 100})]
    elif "l2_regularization" in params:
        l2 = _num(params, "l2_regularization", 0.0)
        out.append(Setting(f"l2_regularization = {max(10 * l2, 1.0):g} (was {l2:g})",
                           {"l2_regularization": max(10 * l2, 1.0)}))
        if "max_depth" in params:
            out.append(Setting(f"max_depth = {_depth(params)} (was {params.get('max_depth')})",
                               {"max_depth": _depth(params)}))
    elif "reg_lambda" in params:
        lam = _num(params, "reg_lambda", 1.0) or 1.0
        out.append(Setting(f"reg_lambda = {10 * lam:g} (was {params.get('reg_lambda')})", {"reg_lambda": 10 * lam}))
        if "max_depth" in params:
            out.append(Setting(f"max_depth = {_depth(params)} (was {params.get('max_depth')})",
                               {"max_depth": _depth(params)}))
    elif "alpha" in params and isinstance(params["alpha"], (int, float)):
        a = _num(params, "alpha", 1e-4)
        out += [Setting(f"alpha = {a * 10:g} (was {a:g})", {"alpha": a * 10}),
                Setting(f"alpha = {a * 100:g} (was {a:g})", {"alpha": a * 100})]
    elif "max_depth" in params:
        out.append(Setting(f"max_depth = {_depth(params)} (was {params.get('max_depth')})",
                           {"max_depth": _depth(params)}))
        if isinstance(params.get("min_samples_leaf"), int):
            leaf = max(20, 2 * int(params["min_samples_leaf"]))
            out.append(Setting(f"min_samples_leaf = {leaf} (was {params['min_samples_leaf']})",
                               {"min_samples_leaf": leaf}))
    return out[:limit]


# ---- the benchmark family ------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchmarkSpec:
    name: str  # "logistic" | "tree"
    label: str
    estimator: Any  # an unfitted pipeline: encoding + model


def benchmark_estimators(numeric: Sequence[str], categorical: Sequence[str], *, seed: int, tree_depth: int = 4,
                         tree_min_leaf: int = 20, cv_folds: int = 3,
                         min_category_count: int = 10) -> list[BenchmarkSpec]:
    """The benchmark family as pipelines on the benchmark check's encoding: an L2 logistic regression
    (C chosen by cross-validation from the benchmark grid) and a shallow decision tree."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    if not numeric and not categorical:
        return []
    cv = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    logistic = LogisticRegressionCV(Cs=list(LOGISTIC_CS), cv=cv, scoring="neg_log_loss", max_iter=2000,
                                    **_l2_only_kwargs(LogisticRegressionCV))
    tree = DecisionTreeClassifier(max_depth=tree_depth, min_samples_leaf=tree_min_leaf, random_state=seed)
    return [
        BenchmarkSpec("logistic", "logistic regression (L2, C by cross-validation)",
                      Pipeline([("encode", _encoder(numeric, categorical, min_category_count)), ("model", logistic)])),
        BenchmarkSpec("tree", f"decision tree (depth {tree_depth})",
                      Pipeline([("encode", _encoder(numeric, categorical, min_category_count)), ("model", tree)])),
    ]


# ---- measuring candidates ------------------------------------------------------------------------

@dataclass(frozen=True)
class CandidateScore:
    """One model measured on the test rows: quality, favourable rate and the judged groups' ratios."""

    name: str  # unique id: "model/neutralised", "benchmark/logistic" ...
    short: str  # figure label
    label: str  # what it is, in words
    family: str  # "audited" | "model" | "benchmark"
    neutralised: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    auc: float = float("nan")
    accuracy: float = float("nan")
    favorable_rate: float = float("nan")
    worst_air: float = float("nan")
    worst_group: str = ""  # "age_band = under 25"
    air: Mapping[str, float] = field(default_factory=dict)  # "column = group" -> ratio
    reference: bool = False  # a point of comparison (refit unchanged), never proposed
    error: str = ""  # why it could not be measured

    @property
    def quality(self) -> float:
        return self.auc if math.isfinite(self.auc) else self.accuracy

    @property
    def ok(self) -> bool:
        return not self.error and math.isfinite(self.worst_air)


def group_ratios(judged: Sequence[Judged], decision: np.ndarray, p_favorable: np.ndarray) -> dict[str, float]:
    """Every judged group's adverse impact ratio (``disparate_impact``), keyed ``"column = group"``."""
    out: dict[str, float] = {}
    for g, groups in judged:
        res = disparate_impact(g, decision, p_favorable, min_group_size=1)
        for grp in groups:
            out[" and ".join(f"{c} = {v}" for c, v in g.part_pairs(grp))] = float(res.row(grp).air)
    return out


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if score.ndim == 2:  # k classes: macro one-vs-rest
        present = [j for j in range(score.shape[1]) if 0 < (y == j).sum() < len(y)]
        if not present:
            return float("nan")
        return float(np.mean([roc_auc_score(y == j, score[:, j]) for j in present]))
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def score_candidate(base: CandidateScore, *, y: np.ndarray, score: np.ndarray, predicted: np.ndarray,
                    decision: np.ndarray, p_favorable: np.ndarray, judged: Sequence[Judged]) -> CandidateScore:
    """``base`` with its measurements: ``y`` and ``predicted`` as 0/1 (binary) or class indices,
    ``score`` P(positive) or the n x k probabilities, ``decision`` the favourable decision."""
    from dataclasses import replace

    air = group_ratios(judged, np.asarray(decision, dtype=bool), np.asarray(p_favorable, dtype=float))
    finite = {k: v for k, v in air.items() if math.isfinite(v)}
    worst = min(finite, key=lambda k: (finite[k], k)) if finite and len(finite) == len(air) else ""
    return replace(base, auc=_auc(y, np.asarray(score, dtype=float)),
                   accuracy=float(np.mean(np.asarray(predicted) == np.asarray(y))),
                   favorable_rate=float(np.mean(decision)), air=air,
                   worst_air=finite[worst] if worst else float("nan"), worst_group=worst)


def pick_alternative(model: CandidateScore, candidates: Sequence[CandidateScore], *, tolerance: float,
                     min_ratio: float, min_gain: float = 0.0) -> CandidateScore | None:
    """The candidate (not a reference point) that raises the worst ratio by more than ``min_gain``
    over the model and over every reference refit (so the gain is not the refit's own noise), while
    losing at most ``tolerance`` of AUC (accuracy when there is no AUC): among those reaching
    ``min_ratio`` the best AUC, else the highest worst ratio; None when none qualifies."""
    refs = [c.worst_air for c in candidates if c.reference and c.ok]
    floor = max([model.worst_air, *refs]) + min_gain
    ok = [c for c in candidates if c.ok and not c.reference and math.isfinite(c.quality)
          and c.worst_air > floor and c.quality >= model.quality - tolerance - 1e-12]
    if not ok:
        return None
    meets = [c for c in ok if c.worst_air >= min_ratio]
    if meets:
        return max(meets, key=lambda c: (c.quality, c.worst_air, c.name))
    return max(ok, key=lambda c: (c.worst_air, c.quality, c.name))
