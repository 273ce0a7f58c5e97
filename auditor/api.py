"""The notebook API: audit a model object and DataFrames directly."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .engine import prepare_objects
from .result import AuditResult


def audit(model: Any, *, test: pd.DataFrame, target: str, train: pd.DataFrame | None = None,
          protected: list[str] | tuple[str, ...] = (), **options: Any) -> AuditResult:
    """Run a full audit of ``model`` (anything with ``predict``/``predict_proba`` taking a DataFrame).

    Keyword options mirror the config file: ``features``, ``task``, ``positive_class``, ``threshold``,
    ``favorable``, ``seed``, ``name``, ``fail_on``, ``checks`` (per-check options), ``skip``, ``expect``,
    ``categorical``, ``id``, ``reference``, ``title``, ``owner``.

    The result shows a summary in Jupyter and writes reports with ``result.write(folder)``.
    Raises ``auditor.errors.AuditInputError`` when the inputs cannot be audited.
    """
    return prepare_objects(model, test=test, target=target, train=train, protected=tuple(protected),
                           **options).run()
