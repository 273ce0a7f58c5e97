"""Checks: one small class per contract check id, grouped by family.

A check class declares its id, title, family and report order itself; ``default_registry`` finds
every check class in this package, so adding a check touches nothing else (see CONTRIBUTING.md).
"""

from __future__ import annotations

from .base import Check, CheckRegistry, Family, discover


def default_registry() -> CheckRegistry:
    """Every check this version has, in report order."""
    return discover()


__all__ = ["Check", "CheckRegistry", "Family", "default_registry"]
