"""Errors that stop an audit before it starts (exit code 2)."""

from __future__ import annotations


class AuditInputError(Exception):
    """Bad config, missing file or column, untrusted model: the audit cannot start.

    The message is one line that names the problem; the CLI prints it without a traceback.
    """


class ConfigError(AuditInputError):
    """The config file is malformed or has an unknown or invalid key."""
