"""Refitting the audited model for remedies that need it: whether it can be, and how.

A remedy that retrains never touches the test rows: candidates are fitted on (a seeded sample of)
the training data given and measured on the test rows. A model that cannot be refitted (ONNX, a
Python object without ``fit``, a model hosted in its own process, an estimator that fails to clone)
gets only the remedies that need no refit, and ``refit_unavailable`` says why in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..model import PythonModel

if TYPE_CHECKING:
    from ..context import AuditContext, Predictions


@dataclass(frozen=True)
class TrainingRows:
    """The training rows a refit uses: features, the raw target, and how many of how many."""

    X: pd.DataFrame
    y: np.ndarray
    used: int
    total: int

    @property
    def note(self) -> str:
        if self.used == self.total:
            return f"refits use all {self.total:,} training rows"
        return f"refits use a seeded sample of {self.used:,} of the {self.total:,} training rows"


def model_object(ctx: AuditContext) -> Any | None:
    """The audited model as a Python object in this process, or None (ONNX, hosted)."""
    return getattr(ctx.model.adapter, "obj", None)


def refit_unavailable(ctx: AuditContext) -> str | None:
    """Why the audited model cannot be refitted on the training data, or None when it can."""
    if ctx.train is None:
        return "no training data was given ([data] train), and a refit never uses the test rows"
    obj = model_object(ctx)
    kind = getattr(ctx.model.adapter, "kind", "model")
    if obj is None:
        return (f"the model ({kind}) is not a Python object the audit can refit in its own process "
                "(an ONNX graph, or a model that runs in a separate model-host process)")
    if not callable(getattr(obj, "fit", None)):
        return f"the model ({kind}) has no fit method"
    try:
        clone_model(ctx)
    except Exception as exc:  # noqa: BLE001 - any failure to clone means: no refit
        return f"the model ({kind}) cannot be cloned for a refit ({type(exc).__name__}: {exc})"
    return None


def clone_model(ctx: AuditContext, **params: Any) -> Any:
    """An unfitted copy of the audited model with the same hyper-parameters (``sklearn.base.clone``),
    with ``params`` set (``set_params`` names, e.g. ``classifier__C``)."""
    from sklearn.base import clone

    est = clone(model_object(ctx))
    if params:
        est.set_params(**params)
    return est


def training_rows(ctx: AuditContext, max_rows: int, key: str) -> TrainingRows:
    """A seeded sample of at most ``max_rows`` training rows (all when fewer), drawn for ``key``."""
    train = ctx.frame("train")
    pos = ctx.sample_index(len(train), max_rows, key + ":train")
    X = ctx.X("train").iloc[pos]
    y = np.asarray(ctx.y("train"))[pos]
    return TrainingRows(X=X, y=y, used=len(pos), total=len(train))


def fit(estimator: Any, X: pd.DataFrame, y: np.ndarray) -> PythonModel:
    """Fit an estimator and wrap it as the audit reads models (batched predict / predict_proba)."""
    estimator.fit(X, y)
    return PythonModel(estimator)


def predict(ctx: AuditContext, adapter: Any, X: pd.DataFrame) -> Predictions:
    """A candidate's predictions read with the audited model's rule (positive class, threshold)."""
    return ctx.predict_frame(X[list(ctx.features)], adapter=adapter)


def final_prefix(obj: Any) -> str | None:
    """The ``set_params`` prefix of the estimator a model ends in (``"model__"`` for a pipeline whose
    last step is ``model``, ``""`` for a bare estimator), or None for a search (it refits itself)."""
    prefix = ""
    for _ in range(5):
        if hasattr(obj, "best_estimator_"):
            return None
        if not hasattr(obj, "steps"):
            break
        name, obj = obj.steps[-1]
        prefix += f"{name}__"
    return prefix


def final_step(obj: Any) -> Any:
    """The estimator ``final_prefix`` addresses: the last step of nested pipelines (the object
    itself when it is not a pipeline)."""
    for _ in range(5):
        if not hasattr(obj, "steps"):
            break
        obj = obj.steps[-1][1]
    return obj
