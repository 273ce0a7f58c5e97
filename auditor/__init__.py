"""auditor: model-risk audit reports for trained tabular models."""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .guard import Guard
    from .result import AuditResult


def audit(model: Any, **kwargs: Any) -> AuditResult:
    """Audit a model object in a notebook; see ``auditor.api.audit`` for the arguments."""
    from .api import audit as _audit

    return _audit(model, **kwargs)


def __getattr__(name: str) -> Any:
    """``auditor.Guard`` (the input guard of ``remediation/guard.json``), imported on first use so
    ``import auditor`` stays light."""
    if name == "Guard":
        from .guard import Guard

        return Guard
    raise AttributeError(f"module 'auditor' has no attribute {name!r}")


__all__ = ["Guard", "__version__", "audit"]
