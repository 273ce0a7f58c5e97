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
    ``categorical``, ``id``, ``reference``, ``title``, ``owner``, ``waivers`` (a list of dicts with the keys of a
    ``[[waiver]]`` table: ``finding``, ``reason``, ``approved_by``, ``expires``).

    The result shows a summary in Jupyter and writes reports with ``result.write(folder)``.
    Raises ``auditor.errors.AuditInputError`` when the inputs cannot be audited.
    """
    _check_keywords(options)
    return prepare_objects(model, test=test, target=target, train=train, protected=tuple(protected),
                           **options).run()


def _check_keywords(options: dict[str, Any]) -> None:
    """A misspelt keyword is a clear input error naming it, not a TypeError from deep inside."""
    import difflib
    import inspect

    from .errors import ConfigError

    valid = [p for p in inspect.signature(prepare_objects).parameters
             if p not in ("model", "test", "target", "train", "protected", "registry")]
    for key in options:
        if key not in valid:
            close = difflib.get_close_matches(key, valid + ["protected", "train", "target"], n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (valid: {', '.join(valid)})"
            raise ConfigError(f"unknown keyword '{key}' for auditor.audit{hint}")
