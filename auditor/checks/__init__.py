"""Checks: one small class per contract check id, grouped by family."""

from __future__ import annotations

from .base import CONTRACT_CHECKS, Check, CheckRegistry, placeholder


def default_registry() -> CheckRegistry:
    """Every check this version has, plus honest placeholders for contract ids not built yet."""
    from . import benchmark, data, explain, fairness, performance, residual, security, sensitivity

    registry = CheckRegistry()
    for module in (data, performance, sensitivity, residual, fairness, benchmark, security, explain):
        for cls in module.CHECKS:
            registry.add(cls)
    for check_id, title in CONTRACT_CHECKS:
        if check_id not in registry:
            registry.add(placeholder(check_id, title))
    return registry


__all__ = ["Check", "CheckRegistry", "default_registry", "CONTRACT_CHECKS"]
