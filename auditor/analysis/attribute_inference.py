"""Attribute inference: how well a sensitive attribute can be inferred from the model's outputs,
beyond what the other features already reveal.

Follows the pattern of ART's ``AttributeInferenceBlackBox`` and ``AttributeInferenceBaseline``
with seeded scikit-learn attack models of one class (histogram gradient boosting), compared on the
same cross-validation folds of the same rows:

* **baseline**: the other model features → the attribute (what the data reveals without the model);
* **with output**: the other features and the model's output → the attribute;
* **output alone**: the model's output → the attribute (an attacker who sees only a published score).

The gain in AUC from adding the output (with output − baseline) is the leakage attributable to
the model; intervals come from a paired bootstrap over the out-of-fold predictions. Categorical
attributes keep levels with enough rows (rarer ones pooled as ``(other)``); numeric attributes
with many values are binned at quantiles. Multi-level attributes use the macro one-vs-rest AUC.
Nothing here knows about severities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .metrics import Estimate, bootstrap_counts, percentile_interval, weighted_auc
from .security import TabularEncoder, fill_empty_columns, hgb_params, seed_of

OTHER = "(other)"
MISSING = "(missing)"
ATTACKERS = ("baseline", "with_output", "output_only")
# attackers are fitted folds × 3 times per attribute: smaller than the extraction copies
ATTACK_PARAMS = {"learning_rate": 0.2, "max_leaf_nodes": 8}


@dataclass(frozen=True)
class AttributeClasses:
    """The attribute as classes to infer: per-row codes (-1: row left out) and level labels."""

    levels: tuple[str, ...]
    codes: np.ndarray
    counts: tuple[int, ...]
    binned: bool
    note: str = ""  # why it cannot be analysed (then ``levels`` has fewer than two entries)


@dataclass(frozen=True)
class AttributeInference:
    """One attribute's three attacks. AUCs are out-of-fold with paired-bootstrap intervals;
    ``skipped`` says why an attribute was not analysed (then the estimates are NaN)."""

    attribute: str
    is_feature: bool
    levels: tuple[str, ...]
    counts: tuple[int, ...]
    binned: bool
    n_rows: int
    n_features: int  # other features the attacker knows
    baseline: Estimate
    with_output: Estimate
    output_only: Estimate
    gain: Estimate  # with_output − baseline, paired
    balanced_accuracy: tuple[float, float, float]  # baseline, with output, output alone
    skipped: str = ""

    @property
    def analysed(self) -> bool:
        return not self.skipped


_NAN = Estimate(float("nan"), float("nan"), float("nan"))


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _bin_labels(edges: np.ndarray) -> list[str]:
    if not len(edges):
        return ["all"]
    inner = ["(" + _fmt(a) + ", " + _fmt(b) + "]" for a, b in zip(edges[:-1], edges[1:])]
    return ["≤ " + _fmt(edges[0]), *inner, "> " + _fmt(edges[-1])]


def attribute_classes(values: pd.Series, *, numeric_bins: int = 4, max_levels: int = 10,
                      min_level_rows: int = 20) -> AttributeClasses:
    """Classes of an attribute: categorical levels (or numeric with at most ``max_levels``
    values) as they are, rare ones pooled; other numeric attributes in quantile bins."""
    s = values.reset_index(drop=True)
    numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    missing = s.isna().to_numpy()
    binned = False
    if numeric and s.nunique(dropna=True) > max_levels:
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        edges = np.unique(np.nanquantile(v[~missing], np.linspace(0, 1, numeric_bins + 1)[1:-1]))
        idx = np.searchsorted(edges, v, side="left")  # bin i: edges[i-1] < v <= edges[i]
        labels = _bin_labels(edges)
        text = np.array([labels[i] if not m else MISSING for i, m in zip(idx, missing)], dtype=object)
        order = labels
        binned = True
    else:
        text = np.array([str(x) if not m else MISSING for x, m in zip(s.to_numpy(), missing)], dtype=object)
        order = None
    text[missing] = None
    counts = pd.Series(text[~missing]).value_counts()
    keep = [lv for lv, c in counts.items() if c >= min_level_rows]
    rare = [lv for lv, c in counts.items() if c < min_level_rows]
    rare_rows = int(counts[rare].sum()) if rare else 0
    if order is not None:
        levels = [lv for lv in order if lv in keep]
    else:
        levels = sorted(keep, key=lambda lv: (-counts[lv], str(lv)))
    if rare and rare_rows >= min_level_rows:
        levels.append(OTHER)
    lookup = {lv: i for i, lv in enumerate(levels)}
    other = lookup.get(OTHER, -1)
    codes = np.array([-1 if t is None else lookup.get(t, other) for t in text], dtype=int)
    note = ""
    if len(levels) < 2:
        note = (f"fewer than two levels with at least {min_level_rows} rows" if len(counts) >= 2
                else "the attribute takes a single value")
    return AttributeClasses(tuple(levels), codes, tuple(int(np.sum(codes == i)) for i in range(len(levels))),
                            binned, note)


def _oof_proba(X: np.ndarray, y: np.ndarray, params: dict, folds: list[tuple[np.ndarray, np.ndarray]],
               k: int) -> np.ndarray:
    """Out-of-fold class probabilities of a seeded gradient-boosting attacker (prior when no columns)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    out = np.zeros((len(y), k))
    for train, test in folds:
        if X.shape[1] == 0:
            prior = np.bincount(y[train], minlength=k) / len(train)
            out[test] = prior
            continue
        m = HistGradientBoostingClassifier(**params)
        m.fit(fill_empty_columns(X[train]), y[train])
        proba = np.zeros((len(test), k))
        proba[:, m.classes_.astype(int)] = m.predict_proba(X[test])
        out[test] = proba
    return out


def _macro_auc(y: np.ndarray, proba: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Binary AUC (k = 2) or the macro one-vs-rest AUC of each weighted resample."""
    k = proba.shape[1]
    if k == 2:
        return weighted_auc(y == 1, proba[:, 1], counts)
    return np.mean([weighted_auc(y == j, proba[:, j], counts) for j in range(k)], axis=0)


def _balanced_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y, np.argmax(proba, axis=1)))


def attribute_inference(*, attribute: str, classes: AttributeClasses, other: pd.DataFrame,
                        categorical: Sequence[str], output: np.ndarray, is_feature: bool,
                        rng: np.random.Generator, folds: int = 5, n_resamples: int = 200,
                        confidence: float = 0.95, max_iter: int = 40) -> AttributeInference:
    """The three attacks on the rows where ``classes.codes >= 0`` (see the module docstring).

    ``other`` holds the other features the attacker knows (rows aligned with ``classes.codes``),
    ``output`` the model's output per row as an (n, m) matrix.
    """
    from sklearn.model_selection import StratifiedKFold

    keep = classes.codes >= 0
    y = classes.codes[keep]
    k = len(classes.levels)
    n_other = other.shape[1]
    if classes.note or k < 2 or np.bincount(y, minlength=k).min() < folds:
        note = classes.note or f"a level has fewer than {folds} rows"
        return AttributeInference(attribute, is_feature, classes.levels, classes.counts, classes.binned,
                                  int(keep.sum()), n_other, _NAN, _NAN, _NAN, _NAN,
                                  (float("nan"),) * 3, skipped=note)
    frame = other.reset_index(drop=True).loc[keep]
    enc = TabularEncoder.fit(frame, columns=list(other.columns), categorical=categorical)
    Xf = enc.codes(frame)
    out = np.asarray(output, dtype=float).reshape(len(classes.codes), -1)[keep]
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed_of(rng))
    fold_list = list(split.split(np.zeros(len(y)), y))
    seed = seed_of(rng)
    none = TabularEncoder((), (), (), (), ())
    kw = dict(ATTACK_PARAMS, random_state=seed, max_iter=max_iter)
    designs = {
        "baseline": (Xf, hgb_params(enc, **kw)),
        "with_output": (np.hstack([Xf, out]), hgb_params(enc, out.shape[1], **kw)),
        "output_only": (out, hgb_params(none, out.shape[1], **kw)),
    }
    probas = {name: _oof_proba(X, y, params, fold_list, k) for name, (X, params) in designs.items()}
    ones = np.ones((1, len(y)))
    point = {name: float(_macro_auc(y, p, ones)[0]) for name, p in probas.items()}
    draws: dict[str, list[np.ndarray]] = {name: [] for name in probas}
    for counts in bootstrap_counts(len(y), n_resamples, rng):
        for name, p in probas.items():
            draws[name].append(_macro_auc(y, p, counts))
    d = {name: np.concatenate(v) if v else np.empty(0) for name, v in draws.items()}
    balanced = [_balanced_accuracy(y, probas[n]) for n in ATTACKERS]
    return AttributeInference(
        attribute=attribute, is_feature=is_feature, levels=classes.levels, counts=classes.counts,
        binned=classes.binned, n_rows=len(y), n_features=n_other,
        baseline=percentile_interval(point["baseline"], d["baseline"], confidence),
        with_output=percentile_interval(point["with_output"], d["with_output"], confidence),
        output_only=percentile_interval(point["output_only"], d["output_only"], confidence),
        gain=percentile_interval(point["with_output"] - point["baseline"], d["with_output"] - d["baseline"],
                                 confidence),
        balanced_accuracy=(balanced[0], balanced[1], balanced[2]))
