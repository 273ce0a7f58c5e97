"""Runs the registered checks on a context: order, timing, and isolation of a failing check."""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .checks.base import Check, CheckRegistry
from .context import AuditContext
from .findings import CheckResult, Evidence, Finding, Status


class Progress(Protocol):
    def started(self, check_id: str, title: str) -> None: ...
    def finished(self, result: CheckResult) -> None: ...


@dataclass
class _NoProgress:
    def started(self, check_id: str, title: str) -> None:
        pass

    def finished(self, result: CheckResult) -> None:
        pass


@dataclass
class RunOutput:
    results: list[CheckResult]
    tracebacks: dict[str, str] = field(default_factory=dict)  # check id -> traceback text, for --debug
    measurements: dict[str, Any] = field(default_factory=dict)  # check id -> measurement (for remedies)


def _make_check(cls: type[Check], options: dict[str, Any]) -> Check:
    return cls(**options)


def run_checks(ctx: AuditContext, registry: CheckRegistry, *, progress: Progress | None = None,
               clock: Callable[[], float] = time.perf_counter) -> RunOutput:
    """Run every registered check once, in registry order. A crashing check is recorded as
    ``error`` with its message and the audit goes on."""
    progress = progress or _NoProgress()
    results: list[CheckResult] = []
    tracebacks: dict[str, str] = {}
    measurements: dict[str, Any] = {}
    skip = set(ctx.config.checks.skip)
    for check_id in registry.ids():
        cls = registry[check_id]
        title = cls.title or check_id
        family = cls.family.name
        progress.started(check_id, title)
        t0 = clock()
        if check_id in skip:
            result = CheckResult(check_id, title, family, Status.SKIPPED, reason="skipped by config",
                                 family_title=cls.family.title)
        else:
            result = _run_one(ctx, cls, title, family, tracebacks, measurements)
        result = replace(result, duration_s=clock() - t0, family_title=cls.family.title)
        results.append(result)
        progress.finished(result)
    return RunOutput(results=results, tracebacks=tracebacks, measurements=measurements)


def _run_one(ctx: AuditContext, cls: type[Check], title: str, family: str,
             tracebacks: dict[str, str], measurements: dict[str, Any]) -> CheckResult:
    check_id = cls.id
    try:
        check = _make_check(cls, dict(ctx.config.checks.options.get(check_id, {})))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reason = check.skip_reason(ctx)
            if reason:
                return CheckResult(check_id, title, family, Status.SKIPPED, reason=reason)
            measurement = check.measure(ctx)
            findings: list[Finding] = list(check.judge(measurement))
            evidence: Evidence = check.evidence(measurement)
        for f in findings:
            if f.check != check_id:
                raise ValueError(f"{check_id} returned a finding of another check ({f.check}): {f.id}")
        findings = _unique_ids(findings)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - isolation is the point (model code may raise SystemExit)
        tracebacks[check_id] = traceback.format_exc()
        return CheckResult(check_id, title, family, Status.ERROR, error=error_message(exc))
    findings.sort(key=lambda f: (-f.severity.rank, f.id))
    measurements[check_id] = measurement
    return CheckResult(check_id, title, family, Status.OK, evidence=evidence, findings=tuple(findings))


def error_message(exc: BaseException) -> str:
    """One line, never empty: the exception type and the last meaningful line of its message."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__


def _unique_ids(findings: list[Finding]) -> list[Finding]:
    """Finding ids are unique within an audit: a repeated id (e.g. two ids that differ only in
    characters made URL-safe) gets a ``+2``, ``+3`` suffix in a stable order."""
    seen: dict[str, int] = {}
    out = []
    for f in sorted(findings, key=lambda f: (f.id, -f.severity.rank, f.title)):
        n = seen.get(f.id, 0) + 1
        seen[f.id] = n
        out.append(f if n == 1 else replace(f, id=f"{f.id}+{n}"))
    return out
