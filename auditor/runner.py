"""Runs the registered checks on a context: order, timing, and isolation of a failing check."""

from __future__ import annotations

import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

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


def _make_check(cls: type[Check], options: dict[str, Any]) -> Check:
    return cls(**options)


def run_checks(ctx: AuditContext, registry: CheckRegistry, *, progress: Progress | None = None,
               clock: Callable[[], float] = time.perf_counter) -> RunOutput:
    """Run every registered check once, in registry order. A crashing check is recorded as
    ``error`` with its message and the audit goes on."""
    progress = progress or _NoProgress()
    results: list[CheckResult] = []
    tracebacks: dict[str, str] = {}
    skip = set(ctx.config.checks.skip)
    for check_id in registry.ids():
        cls = registry[check_id]
        title = cls.title or check_id
        family = cls.family()
        progress.started(check_id, title)
        t0 = clock()
        if check_id in skip:
            result = CheckResult(check_id, title, family, Status.SKIPPED, reason="skipped by config")
        else:
            result = _run_one(ctx, cls, title, family, tracebacks)
        result = _with_duration(result, clock() - t0)
        results.append(result)
        progress.finished(result)
    return RunOutput(results=results, tracebacks=tracebacks)


def _run_one(ctx: AuditContext, cls: type[Check], title: str, family: str,
             tracebacks: dict[str, str]) -> CheckResult:
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
    except Exception as exc:  # noqa: BLE001 - isolation is the point
        tracebacks[check_id] = traceback.format_exc()
        message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0] if str(exc) else type(exc).__name__
        return CheckResult(check_id, title, family, Status.ERROR, error=message)
    for f in findings:
        if f.check != check_id:
            raise AssertionError(f"{check_id} returned a finding of another check: {f.check}")
    findings.sort(key=lambda f: (-f.severity.rank, f.id))
    return CheckResult(check_id, title, family, Status.OK, evidence=evidence, findings=tuple(findings))


def _with_duration(result: CheckResult, seconds: float) -> CheckResult:
    from dataclasses import replace

    return replace(result, duration_s=seconds)
