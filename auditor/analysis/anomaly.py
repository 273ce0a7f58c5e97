"""An anomaly detector for production inputs: an isolation forest (scikit-learn) on the training
inputs, its threshold set so it flags a chosen share of the training rows.

The detector is one scikit-learn pipeline, so it saves with skops and runs wherever the model does:
numeric features imputed with their training median, categorical features coded by
``OrdinalEncoder`` (an unseen level gets its own code, a missing value another), then
``IsolationForest(contamination=alarm_rate)``, whose offset is the ``alarm_rate`` quantile of the
training rows' scores. It expects rows of the right types: a text in a numeric column or ±infinity
is the input guard's to reject (``detector_scores`` reports such rows as not scoreable instead of
scoring them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True, eq=False)
class AnomalyDetector:
    """The fitted pipeline and what it was fitted on. ``numeric`` are the numeric columns (and the
    categorical ones whose levels are numbers, which must also read as finite numbers)."""

    pipeline: Any
    columns: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    number_coded: tuple[str, ...]  # categorical columns whose training levels are numbers
    alarm_rate: float
    fit_rows: int
    n_estimators: int


@dataclass(frozen=True, eq=False)
class DetectorScores:
    """Per row: ``scoreable`` (the types are right), ``score`` (the decision function: below 0 is an
    alarm; NaN where not scoreable) and ``flagged``."""

    scoreable: np.ndarray
    score: np.ndarray
    flagged: np.ndarray

    def part(self, start: int, stop: int) -> DetectorScores:
        return DetectorScores(self.scoreable[start:stop], self.score[start:stop], self.flagged[start:stop])

    def where(self, keep: np.ndarray) -> DetectorScores:
        return DetectorScores(self.scoreable[keep], self.score[keep], self.flagged[keep])

    @property
    def n_scored(self) -> int:
        return int(self.scoreable.sum())

    @property
    def flagged_share(self) -> float:
        """The share of the scoreable rows flagged (NaN when none is scoreable)."""
        n = self.n_scored
        return float(self.flagged[self.scoreable].sum() / n) if n else float("nan")


def _numeric_levels(s: pd.Series) -> bool:
    values = s.dropna()
    return bool(len(values)) and (pd.api.types.is_numeric_dtype(values.dtype) and not
                                  pd.api.types.is_bool_dtype(values.dtype))


def detector_pipeline(numeric: Sequence[str], categorical: Sequence[str], *, alarm_rate: float,
                      n_estimators: int, seed: int) -> Any:
    """The unfitted pipeline: encode, then the isolation forest."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import IsolationForest
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("numeric", SimpleImputer(strategy="median", keep_empty_features=True), list(numeric)))
    if categorical:
        parts.append(("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                                     encoded_missing_value=-2, dtype=np.float64), list(categorical)))
    return Pipeline([("encode", ColumnTransformer(parts, remainder="drop")),
                     ("forest", IsolationForest(n_estimators=int(n_estimators), contamination=float(alarm_rate),
                                                random_state=int(seed)))])


def prepare_rows(X: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str],
                 number_coded: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows as the pipeline reads them (numbers as floats, text levels as text) and which rows
    are scoreable: every numeric value (and number-coded level) missing or a finite number."""
    ok = np.ones(len(X), dtype=bool)
    out: dict[str, Any] = {}
    for c in numeric:
        x = pd.to_numeric(X[c].astype(object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        missing = X[c].isna().to_numpy(dtype=bool)
        ok &= missing | np.isfinite(x)
        out[c] = np.where(np.isfinite(x), x, np.nan)
    for c in categorical:
        s = X[c]
        if c in number_coded:
            x = pd.to_numeric(s.astype(object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            ok &= s.isna().to_numpy(dtype=bool) | np.isfinite(x)
            out[c] = np.where(np.isfinite(x), x, np.nan)
        else:
            obj = s.astype(object)
            out[c] = obj.where(obj.isna(), obj.astype(str)).to_numpy(dtype=object)
    return pd.DataFrame(out, index=X.index), ok


def fit_detector(X: pd.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str], alarm_rate: float,
                 n_estimators: int = 100, seed: int = 0) -> AnomalyDetector:
    """An isolation forest on the rows ``X``, flagging ``alarm_rate`` of them."""
    if not 0.0 < alarm_rate <= 0.5:
        raise ValueError(f"alarm_rate must be in (0, 0.5], got {alarm_rate}")
    number_coded = tuple(c for c in categorical if _numeric_levels(X[c]))
    frame, ok = prepare_rows(X, numeric, categorical, number_coded)
    frame = frame[ok]
    if len(frame) < 2:
        raise ValueError("an anomaly detector needs at least two training rows of the right types")
    pipe = detector_pipeline(numeric, categorical, alarm_rate=alarm_rate, n_estimators=n_estimators, seed=seed)
    pipe.fit(frame)
    return AnomalyDetector(pipe, tuple(numeric) + tuple(categorical), tuple(numeric), tuple(categorical),
                           number_coded, float(alarm_rate), len(frame), int(n_estimators))


def detector_scores(det: AnomalyDetector, X: pd.DataFrame, pipeline: Any = None) -> DetectorScores:
    """The detector's decision on each row of ``X`` (``pipeline``: a reloaded copy to use instead)."""
    frame, ok = prepare_rows(X, det.numeric, det.categorical, det.number_coded)
    score = np.full(len(X), np.nan)
    if ok.any():
        score[ok] = (pipeline if pipeline is not None else det.pipeline).decision_function(frame[ok])
    return DetectorScores(scoreable=ok, score=score, flagged=ok & (np.nan_to_num(score, nan=1.0) < 0))


