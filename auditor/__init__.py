"""auditor: model-risk audit reports for trained tabular models."""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .result import AuditResult


def audit(model: Any, **kwargs: Any) -> AuditResult:
    """Audit a model object in a notebook; see ``auditor.api.audit`` for the arguments."""
    from .api import audit as _audit

    return _audit(model, **kwargs)


__all__ = ["__version__", "audit"]
