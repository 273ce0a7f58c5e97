"""Placeholder until the checks are built; the registry reports them as not implemented."""

CHECKS: tuple = ()
