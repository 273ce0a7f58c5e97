"""The validated, read-only audit inputs with cached, batched predictions.

Every check reads the same context. The model is called once per dataset (in batches) and the
result is cached, so no check recomputes predictions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .analysis.group_metrics import level_text
from .analysis.sampling import sample_positions
from .config import AuditConfig
from .errors import AuditInputError
from .inputs import LoadedModel, LoadedTable

Split = Literal["train", "test"]
MIN_ROWS = 10


@dataclass(frozen=True)
class Predictions:
    """The model's outputs on one dataset.

    ``score`` is P(positive class) for classification and the prediction for regression;
    ``label`` is 1 where the decision is the positive class (binary: P(positive) >= threshold;
    k classes: the positive class has the highest probability), or the prediction (regression);
    ``pred_class`` is the index (into ``AuditContext.classes``) of the predicted class: for two
    classes the thresholded decision, for k classes the most probable class.
    """

    score: np.ndarray
    label: np.ndarray
    proba: np.ndarray | None = None
    pred_class: np.ndarray | None = None


@dataclass(frozen=True)
class FavorableOutcome:
    """The favorable outcome on the test data (classification): each row's decision, P(favorable)
    and actual outcome, and how the favorable class maps onto the model's outputs."""

    target: str
    favorable: str  # the favorable class, as text
    positive: str
    favorable_is_positive: bool
    threshold: float
    decision: np.ndarray  # True where the decision is the favorable outcome
    p_favorable: np.ndarray  # P(favorable class)
    observed: np.ndarray  # True where the actual outcome is the favorable class
    n_classes: int = 2

    @property
    def label(self) -> str:
        return f"{self.target} = {self.favorable}"

    @property
    def multiclass(self) -> bool:
        return self.n_classes > 2


@dataclass(frozen=True)
class UnscoredRows:
    """Rows of one split on which the model returned no finite score (NaN or infinite).

    They are left out of the audit (every check sees only scored rows) and reported by
    ``data.quality``. ``positions`` are 0-based row positions in the input; ``ids`` their id
    values when an id column is configured; ``set_apart_by`` names the features whose values on
    these rows never occur on the scored rows (missing, out of the scored range, or unseen levels).
    """

    split: str
    rows: int  # rows in the input
    positions: tuple[int, ...]
    ids: tuple[str, ...] = ()
    set_apart_by: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.positions)

    @property
    def share(self) -> float:
        return self.count / self.rows if self.rows else 0.0


@dataclass(eq=False)
class AuditContext:
    """Inputs every check shares. Treat as read-only: frames are copies owned by the audit."""

    config: AuditConfig
    model: LoadedModel
    test: pd.DataFrame
    train: pd.DataFrame | None
    test_file: LoadedTable | None
    train_file: LoadedTable | None
    task: str
    target: str
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    protected: tuple[str, ...]
    positive_class: Any = None
    classes: tuple[Any, ...] = ()
    threshold: float = 0.5
    favorable: Any = None
    unscored: dict[str, UnscoredRows] = field(default_factory=dict)  # split -> rows left out
    _cache: dict = field(default_factory=dict, repr=False)

    # ---- data views -------------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return self.config.audit.seed

    def frame(self, split: Split) -> pd.DataFrame:
        df = self.test if split == "test" else self.train
        if df is None:
            raise ValueError(f"no {split} data in this audit")
        return df

    def X(self, split: Split = "test") -> pd.DataFrame:
        return self.frame(split)[list(self.features)]

    def y(self, split: Split = "test") -> np.ndarray:
        """The raw target values."""
        return self.frame(split)[self.target].to_numpy()

    def y_task(self, split: Split = "test") -> np.ndarray:
        """The target as the binary and regression checks read it: 1/0 for the positive class
        (one-vs-rest for k > 2 classes: a check that uses it must say so), floats for regression."""
        return self.y_binary(split) if self.is_classification else np.asarray(self.y(split), dtype=float)

    def y_classes(self, split: Split = "test") -> np.ndarray:
        """The target as a k-class check reads it: each row's class index for k > 2 classes (never
        one class against the rest), otherwise ``y_task``."""
        return self.y_index(split) if self.is_multiclass else self.y_task(split)

    def scores(self, split: Split = "test") -> np.ndarray:
        """The model's output as a k-class check reads it: the n x k distribution for k > 2 classes,
        otherwise P(positive) or the prediction (cached, one batched call per split)."""
        p = self.predictions(split)
        return np.asarray(p.proba, dtype=float) if self.is_multiclass else p.score

    def y_binary(self, split: Split = "test") -> np.ndarray:
        """1 where the target is the positive class (classification only). For k > 2 classes this
        is the positive class against the rest: a check that uses it must say so."""
        return _matches(self.frame(split)[self.target], self.positive_class).astype(int)

    def y_index(self, split: Split = "test") -> np.ndarray:
        """Each row's true class as an index into ``classes`` (classification only)."""
        values = self.frame(split)[self.target]
        out = np.full(len(values), -1, dtype=int)
        for i, c in enumerate(self.classes):
            out[_matches(values, c) & (out < 0)] = i
        return out

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def is_multiclass(self) -> bool:
        """A classifier with more than two classes: audited as a k-class model (contract 1.1)."""
        return self.is_classification and len(self.classes) > 2

    def class_index(self, value: Any) -> int:
        """The index of a class label in ``classes`` (tolerant of 1 vs "1" vs 1.0)."""
        for i, c in enumerate(self.classes):
            if same_class(c, value):
                return i
        raise KeyError(value)

    @property
    def positive_index(self) -> int:
        return self.class_index(self.positive_class)

    @property
    def favorable_index(self) -> int:
        return self.class_index(self.favorable)

    @property
    def has_train(self) -> bool:
        return self.train is not None

    @property
    def is_classification(self) -> bool:
        return self.task == "classification"

    # ---- randomness ---------------------------------------------------------------------------
    def rng(self, check_id: str) -> np.random.Generator:
        """A generator seeded from the audit seed and the check id: independent and repeatable."""
        digest = hashlib.sha256(f"{self.seed}:{check_id}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def sample_index(self, n_rows: int, size: int, key: str) -> np.ndarray:
        """Sorted positions of a seeded sample of at most ``size`` of ``n_rows`` rows, drawn from the
        generator of ``key`` (a check id, or a check id and a purpose: ``"<id>:train"``)."""
        return sample_positions(n_rows, size, self.rng(key))

    def sample_rows(self, split: Split, n: int, check_id: str) -> pd.DataFrame:
        """A seeded random sample of at most ``n`` rows (all rows when there are fewer)."""
        df = self.frame(split)
        if len(df) <= n:
            return df
        return df.iloc[self.sample_index(len(df), n, check_id + ":sample")]

    # ---- predictions --------------------------------------------------------------------------
    def predictions(self, split: Split = "test") -> Predictions:
        """Cached predictions on a whole dataset, computed in one batched call."""
        if split not in self._cache:
            self._cache[split] = self.predict_frame(self.X(split))
        return self._cache[split]

    def predict_frame(self, X: pd.DataFrame, adapter: Any = None) -> Predictions:
        """Predictions for any frame of feature columns (for checks that make their own rows), by the
        audited model or by ``adapter`` (a refitted candidate, read with the audited model's rule)."""
        adapter = adapter if adapter is not None else self.model.adapter
        if self.is_classification:
            return self.predictions_from(adapter.predict_proba(X))
        return self.predictions_from(adapter.predict(X))

    def predictions_from(self, output: np.ndarray) -> Predictions:
        """Predictions from the model's raw output on some rows: the n x k ``predict_proba`` array of a
        classifier, the ``predict`` values of a regressor (e.g. computed partition by partition on a
        cluster, ``auditor.cluster``)."""
        if self.is_classification:
            proba = output
            pos = self.positive_index
            score = proba[:, pos]
            if proba.shape[1] > 2:
                pred_class = np.argmax(proba, axis=1)
                label = (pred_class == pos).astype(int)
            else:
                label = (score >= self.threshold).astype(int)
                pred_class = np.where(label == 1, pos, 1 - pos)
            return Predictions(score=score, label=label, proba=proba, pred_class=pred_class)
        pred = np.asarray(output, dtype=float)
        return Predictions(score=pred, label=pred)

    def warm(self) -> None:
        """Compute every shared cache now (test and train predictions, the favourable outcome), e.g.
        before worker processes are forked so they share the results instead of each computing them.
        A failure here is left to the checks that read the cache (train predictions stay lazy, as the
        checks that probe the model there report its failures)."""
        import contextlib

        splits: tuple[Split, ...] = ("test", "train") if self.has_train else ("test",)
        for split in splits:
            with contextlib.suppress(Exception):  # the check that needs them records the failure
                self.predictions(split)
        if self.is_classification:
            with contextlib.suppress(Exception):
                self.favorable_outcome()

    def favorable_decision(self, preds: Predictions) -> np.ndarray:
        """True where a set of predictions is the favorable decision: the predicted class (k classes:
        the argmax; two classes: the thresholded decision) is the favorable class."""
        if self.is_multiclass:
            return np.asarray(preds.pred_class == self.favorable_index, dtype=bool)
        return np.asarray(preds.label == (1 if same_class(self.favorable, self.positive_class) else 0), dtype=bool)

    def favorable_outcome(self) -> FavorableOutcome:
        """Favorable decisions, P(favorable) and observed favorable outcomes on the test data (cached;
        classification only)."""
        if "favorable_outcome" not in self._cache:
            preds = self.predictions("test")
            pos_is_fav = same_class(self.favorable, self.positive_class)
            if self.is_multiclass:
                assert preds.proba is not None
                p_fav, observed = preds.proba[:, self.favorable_index], self.y_index("test") == self.favorable_index
            else:
                y_pos = self.y_binary("test").astype(bool)
                p_fav, observed = (preds.score, y_pos) if pos_is_fav else (1.0 - preds.score, ~y_pos)
            self._cache["favorable_outcome"] = FavorableOutcome(
                target=self.target, favorable=level_text(self.favorable), positive=level_text(self.positive_class),
                favorable_is_positive=pos_is_fav, threshold=float(self.threshold),
                decision=self.favorable_decision(preds), p_favorable=np.asarray(p_fav, dtype=float),
                observed=np.asarray(observed, dtype=bool), n_classes=max(2, self.n_classes))
        return self._cache["favorable_outcome"]

    def score_fn(self):
        """A batched function DataFrame -> score, for analysis code that perturbs rows."""
        return lambda X: self.predict_frame(X[list(self.features)]).score


def _matches(values: pd.Series, wanted: Any) -> np.ndarray:
    """Compare target values with a configured class, tolerant of 1 vs "1" vs 1.0."""
    arr = values.to_numpy()
    direct = arr == wanted
    if np.any(direct):
        return np.asarray(direct, dtype=bool)
    return np.asarray(values.astype(str).to_numpy() == str(wanted), dtype=bool) | \
        np.asarray(_num_equal(values, wanted), dtype=bool)


def _num_equal(values: pd.Series, wanted: Any) -> np.ndarray:
    try:
        return pd.to_numeric(values, errors="coerce").to_numpy() == float(wanted)
    except (TypeError, ValueError):
        return np.zeros(len(values), dtype=bool)


def same_class(a: Any, b: Any) -> bool:
    """Whether two class labels are the same, tolerant of 1 vs 1.0 vs "1"."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def build_context(config: AuditConfig, model: LoadedModel, test: LoadedTable,
                  train: LoadedTable | None, *, outputs: Mapping[str, np.ndarray] | None = None) -> AuditContext:
    """Validate inputs against each other and the config; raise AuditInputError on the first problem.

    ``outputs`` holds the model's raw output (``predict_proba`` or ``predict``) on a split's rows when it
    was computed elsewhere (partition by partition on a cluster); it is used instead of calling the
    model on that split again."""
    d = config.data
    tdf = test.frame
    trdf = train.frame if train is not None else None
    _check_columns(config, test, train)
    adapter = model.adapter
    features = _resolve_features(config, adapter.feature_names(), tdf.columns)
    _check_features(config, features, test, train)
    categorical = tuple(c for c in features if c in d.categorical or not pd.api.types.is_numeric_dtype(tdf[c])
                        or pd.api.types.is_bool_dtype(tdf[c]))
    numeric = tuple(c for c in features if c not in categorical)
    task = _task(config, adapter, tdf)
    classes: tuple[Any, ...] = ()
    positive = favorable = None
    if task == "classification":
        classes, positive, favorable = _classes(config, adapter, test, train)
        _check_proba_shape(adapter, tdf[list(features)], classes)

    ctx = AuditContext(
        config=config, model=model, test=tdf.copy(), train=None if trdf is None else trdf.copy(),
        test_file=test, train_file=train, task=task, target=d.target, features=features,
        categorical=categorical, numeric=numeric, protected=tuple(d.protected),
        positive_class=positive, classes=classes, threshold=config.model.threshold, favorable=favorable,
    )
    for split, output in (outputs or {}).items():
        frame = ctx.test if split == "test" else ctx.train
        if frame is not None and len(output) == len(frame):
            ctx._cache[split] = ctx.predictions_from(np.asarray(output))
    _first_predictions(ctx, test)
    return ctx


def _check_columns(config: AuditConfig, test: LoadedTable, train: LoadedTable | None) -> None:
    """Rows, the target, the id and the protected columns of the data files."""
    d = config.data
    tdf, target = test.frame, d.target
    if len(tdf) == 0:
        raise AuditInputError(f"test data file {test.path} has no rows")
    if target not in tdf.columns:
        raise AuditInputError(f"target column '{target}' not found in test data {test.path}")
    if train is not None and target not in train.frame.columns:
        raise AuditInputError(f"target column '{target}' not found in train data {train.path}")
    if d.id and d.id not in tdf.columns:
        raise AuditInputError(f"id column '{d.id}' not found in test data {test.path}")
    for col in d.protected:
        if col not in tdf.columns:
            raise AuditInputError(f"protected column '{col}' not found in test data {test.path}")
    _check_rows("test", tdf, target, test.path)
    if train is not None:
        _check_rows("train", train.frame, target, train.path)


def _check_features(config: AuditConfig, features: tuple[str, ...], test: LoadedTable,
                    train: LoadedTable | None) -> None:
    """The model's features in both files; config keys that name features or reference levels."""
    tdf = test.frame
    for col in features:
        if col not in tdf.columns:
            raise AuditInputError(f"feature column '{col}' not found in test data {test.path}")
        if train is not None and col not in train.frame.columns:
            raise AuditInputError(f"feature column '{col}' not found in train data {train.path}")
    for key, cols in (("data.categorical", config.data.categorical), ("expect.monotone", tuple(config.expect.monotone)),
                      ("expect.immutable", config.expect.immutable), ("expect.additive", config.expect.additive)):
        for col in cols:
            if col not in features:
                raise AuditInputError(f"config key '{key}' names '{col}', which is not a model feature"
                                      f"{_did_you_mean(col, features)}")
    for col, value in config.data.reference.items():
        levels = pd.Series(tdf[col].dropna().unique())
        if not _matches(levels, value).any():
            shown = sorted(map(str, levels.tolist()))
            listing = ", ".join(map(repr, shown[:12])) + (", …" if len(shown) > 12 else "")
            raise AuditInputError(f"config key 'data.reference.{col}' is {value!r}, which is not a value of column "
                                  f"'{col}' in the test data (values: {listing}){_did_you_mean(str(value), shown)}")


def _task(config: AuditConfig, adapter: Any, test: pd.DataFrame) -> str:
    """The configured task, or the model's (classification when it has predict_proba)."""
    task = config.model.task or ("classification" if adapter.has_proba() else "regression")
    target = config.data.target
    if task == "classification" and not adapter.has_proba():
        raise AuditInputError("model has no predict_proba, so it cannot be audited as a classifier; "
                              "set [model] task = \"regression\" if it predicts numbers")
    if task == "regression" and not pd.api.types.is_numeric_dtype(test[target]):
        raise AuditInputError(f"target column '{target}' is not numeric, so the model cannot be audited as a "
                              "regressor")
    return task


def _classes(config: AuditConfig, adapter: Any, test: LoadedTable,
             train: LoadedTable | None) -> tuple[tuple[Any, ...], Any, Any]:
    """The classes (the model's, typed like the target), the positive and the favourable class."""
    target = config.data.target
    y_test = test.frame[target]
    observed = sorted(pd.concat([y_test] + ([train.frame[target]] if train is not None else [])).unique().tolist(),
                      key=str)
    classes = tuple(adapter.classes) if adapter.classes else tuple(sorted(observed, key=_sort_key))
    if adapter.classes:
        # align the target's type with the model's (e.g. "1" in a CSV vs 1 in the model)
        classes = tuple(next((o for o in observed if same_class(o, c)), c) for c in classes)
    names = ", ".join(map(repr, classes))

    def _class(key: str, value: Any) -> Any:
        match = [c for c in classes if same_class(c, value)]
        if not match:
            close = [c for c in classes if str(c).strip().lower() == str(value).strip().lower()]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AuditInputError(f"config key 'model.{key}' is {value!r}, which is not one of the model's "
                                  f"classes ({names}){hint}")
        return match[0]

    multiclass = len(classes) > 2
    positive = config.model.positive_class
    if positive is None:
        # k classes: probability-based checks follow the favourable class when one is named
        occurring = [c for c in classes if _matches(y_test, c).any()] or list(classes)
        positive = config.model.favorable if multiclass and config.model.favorable is not None else occurring[-1]
    positive = _class("positive_class", positive)
    if not _matches(y_test, positive).any():
        raise AuditInputError(f"config key 'model.positive_class': class {positive!r} never occurs in the "
                              f"test target '{target}'")
    favorable = config.model.favorable if config.model.favorable is not None else positive
    return classes, positive, _class("favorable", favorable)


def _first_predictions(ctx: AuditContext, test: LoadedTable) -> None:
    """One batched call on the test data now: a model that cannot score its own test data is an
    input problem, not a check failure."""
    try:
        preds = ctx.predictions("test")
    except Exception as exc:  # noqa: BLE001 - any model failure
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise AuditInputError(f"the model failed to predict on the test data: {type(exc).__name__}: {first}") from None
    if len(preds.score) != len(test.frame):
        raise AuditInputError(f"the model returned {len(preds.score)} predictions for {len(test.frame)} test rows")
    # Only the test data is screened here. Train predictions stay lazy: a model that fails or
    # returns NaN on some training rows is a finding of the checks that probe it (e.g.
    # sensitivity.random_attack draws its domain from those rows), not a reason to refuse the audit.
    _screen_scores(ctx, "test", test.path)


def _check_rows(name: str, df: pd.DataFrame, target: str, path: str) -> None:
    """Enough rows and a usable target (no missing values, not constant)."""
    if len(df) < MIN_ROWS:
        raise AuditInputError(f"{name} data {path} has {len(df)} rows; at least {MIN_ROWS} are needed")
    n_missing = int(df[target].isna().sum())
    if n_missing == len(df):
        raise AuditInputError(f"target column '{target}' is empty in {name} data {path}")
    if df[target].nunique(dropna=True) < 2:
        raise AuditInputError(
            f"target column '{target}' is constant in {name} data {path} "
            f"(only the value {df[target].dropna().iloc[:1].tolist()[0]!r}); an audit needs both outcomes")
    if n_missing:
        raise AuditInputError(f"target column '{target}' has {n_missing} missing values in {name} data {path}")


PROBA_TOLERANCE = 1e-6  # rounding slack around [0, 1]


def _screen_scores(ctx: AuditContext, split: Split, path: str) -> None:
    """Validate the model's initial predictions on one split, before any check runs.

    Probabilities of the wrong shape, outside [0, 1], or non-finite on every row are an input
    problem (exit 2). Non-finite scores on *some* rows are a finding, not a crash: those rows
    are left out of the audit (``ctx.unscored``) and ``data.quality`` reports them.
    """
    preds = ctx.predictions(split)
    n = len(preds.score)
    if ctx.is_classification:
        proba = np.asarray(preds.proba, dtype=float)
        k = len(ctx.classes)
        if proba.ndim != 2 or proba.shape != (n, k):
            raise AuditInputError(
                f"the model's predict_proba returned shape {proba.shape} on the {split} data for {k} classes "
                f"({', '.join(map(str, ctx.classes))}); one probability column per class is needed")
        finite = np.isfinite(proba).all(axis=1)
        what = "probabilities"
    else:
        finite = np.isfinite(np.asarray(preds.score, dtype=float))
        what = "predictions"
    if not finite.any():
        raise AuditInputError(f"the model returned no finite {what} on the {split} data {path} "
                              f"(NaN or infinite on all {n} rows)")
    if ctx.is_classification:
        vals = proba[finite]
        bad = ((vals < -PROBA_TOLERANCE) | (vals > 1 + PROBA_TOLERANCE)).any(axis=1)
        if bad.any():
            raise AuditInputError(
                f"the model's predict_proba returned values outside [0, 1] on the {split} data {path} "
                f"({int(bad.sum())} of {n} rows, from {vals.min():.4g} to {vals.max():.4g}); "
                "probabilities are needed (is it returning scores or logits?)")
    if finite.all():
        return
    frame = ctx.frame(split)
    _check_rows(split, frame[finite], ctx.target, path + f" once the {int((~finite).sum())} rows without a "
                                                         "finite score are left out")
    if split == "test" and ctx.is_classification and not _matches(frame[ctx.target][finite],
                                                                   ctx.positive_class).any():
        raise AuditInputError(f"class {ctx.positive_class!r} never occurs in the test rows the model scores "
                              f"({int((~finite).sum())} rows have no finite score)")
    positions = np.flatnonzero(~finite)
    id_col = ctx.config.data.id
    ids = tuple(str(v) for v in frame[id_col].to_numpy()[positions]) if id_col and id_col in frame else ()
    ctx.unscored[split] = UnscoredRows(split=split, rows=n, positions=tuple(int(i) for i in positions), ids=ids,
                                       set_apart_by=_set_apart_by(frame[list(ctx.features)], finite))
    kept = frame[finite].copy()
    if split == "test":
        ctx.test = kept
    else:
        ctx.train = kept
    ctx._cache[split] = Predictions(
        score=preds.score[finite], label=preds.label[finite],
        proba=None if preds.proba is None else preds.proba[finite],
        pred_class=None if preds.pred_class is None else preds.pred_class[finite])


def _set_apart_by(X: pd.DataFrame, scored: np.ndarray) -> tuple[str, ...]:
    """Features whose values on the unscored rows never occur on the scored rows: missing where the
    scored rows have a value, outside the scored rows' range, or levels the scored rows lack."""
    out = []
    for col in X.columns:
        s = X[col]
        miss_u, miss_s = s[~scored].isna(), s[scored].isna()
        if miss_u.all() and not miss_s.any():
            out.append(col)
            continue
        u, v = s[~scored].dropna(), s[scored].dropna()
        if u.empty or v.empty or len(u) < (~scored).sum():
            continue
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            uf, vf = u.to_numpy(dtype=float), v.to_numpy(dtype=float)
            if (uf > vf.max()).all() or (uf < vf.min()).all():
                out.append(col)
        elif not u.astype(str).isin(set(v.astype(str))).any():
            out.append(col)
    return tuple(out)


def _check_proba_shape(adapter: Any, X: pd.DataFrame, classes: tuple[Any, ...]) -> None:
    """predict_proba must return one row per input row and one column per class: a 3-column output
    for a binary target, or an (n, 2, 2) array, would otherwise be audited on the wrong column.
    A probe on a few rows, before the full prediction; values are screened by ``_screen_scores``."""
    probe = X.iloc[: min(len(X), 50)]
    try:
        proba = np.asarray(adapter.predict_proba(probe), dtype=float)
    except Exception:  # noqa: BLE001 - reported by the full prediction below
        return
    if proba.ndim != 2 or proba.shape[0] != len(probe) or proba.shape[1] != len(classes):
        raise AuditInputError(
            f"the model's predict_proba returned shape {proba.shape} for {len(classes)} classes "
            f"({', '.join(map(str, classes))}); one probability column per class is needed")


def _did_you_mean(value: str, valid: Any) -> str:
    import difflib

    options = [str(v) for v in valid]
    lowered = {o.lower(): o for o in options}
    if str(value).lower() in lowered:
        return f" (did you mean '{lowered[str(value).lower()]}'?)"
    close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, (int, float, np.integer, np.floating)) else (1, str(v))


def _resolve_features(config: AuditConfig, model_names: tuple[str, ...] | None, columns: pd.Index) -> tuple[str, ...]:
    d = config.data
    if d.features:
        return tuple(d.features)
    if model_names:
        return tuple(model_names)
    excluded = {d.target, *([d.id] if d.id else [])}
    return tuple(c for c in columns if c not in excluded and c not in d.protected)
