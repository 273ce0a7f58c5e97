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
    # check id -> why it ran in this process although the audit ran its checks elsewhere (worker
    # processes or a cluster), e.g. its measurement could not be sent back
    in_process: dict[str, str] = field(default_factory=dict)
    where: str = "in this process"  # how the checks ran, e.g. "2 worker processes"


@dataclass
class Outcome:
    """One check's run: its result (status, findings, evidence, duration), the traceback of an error
    and, for a check that completed, its measurement (read by the remediation step)."""

    result: CheckResult
    traceback: str = ""
    measurement: Any = None
    measured: bool = False  # whether ``measurement`` is the check's (None is a valid measurement)


class Executor(Protocol):
    """Runs checks somewhere (this process, worker processes, a cluster) and reports each outcome as
    it arrives; the runner keeps the results in registry order."""

    @property
    def where(self) -> str:
        """How the checks run, for the progress line and ``RunOutput.where``."""
        ...

    def open(self) -> None:
        """Start the workers (idempotent); ``run`` does it when not done before."""
        ...

    def close(self) -> None:
        """Stop the workers and let go of any connection."""
        ...

    def run(self, check_ids: list[str], *, started: Callable[[str], None],
            done: Callable[[str, Outcome], None]) -> dict[str, str]:
        """Run every check once; return check id -> reason for checks it ran in this process."""
        ...


def _make_check(cls: type[Check], options: dict[str, Any]) -> Check:
    return cls(**options)


def run_checks(ctx: AuditContext, registry: CheckRegistry, *, progress: Progress | None = None,
               clock: Callable[[], float] = time.perf_counter, executor: Executor | None = None,
               follow: Callable[[str, Outcome], None] | None = None,
               first: frozenset[str] = frozenset()) -> RunOutput:
    """Run every registered check once. A crashing check is recorded as ``error`` with its message and
    the audit goes on. Without ``executor``, the checks run in this process, one after another, in
    registry order; with one (``auditor.parallel``, ``auditor.cluster``), progress is told of each
    check as it finishes, and the results are in registry order all the same. ``follow`` is told of
    each outcome as it arrives too (``EarlyRemedies``: the remedies that may start); an executor
    starts the checks in ``first`` (those the remedies read) before the others."""
    progress = progress or _NoProgress()
    skip = set(ctx.config.checks.skip)
    outcomes: dict[str, Outcome] = {}

    def done(check_id: str, outcome: Outcome) -> None:
        cls = registry[check_id]
        outcome.result = replace(outcome.result, family_title=cls.family.title)
        outcomes[check_id] = outcome
        progress.finished(outcome.result)
        if follow is not None:
            follow(check_id, outcome)

    def skipped(check_id: str) -> Outcome:
        cls = registry[check_id]
        return Outcome(CheckResult(check_id, cls.title or check_id, cls.family.name, Status.SKIPPED,
                                   reason="skipped by config"))

    in_process: dict[str, str] = {}
    if executor is None:
        for check_id in registry.ids():
            cls = registry[check_id]
            progress.started(check_id, cls.title or check_id)
            done(check_id, skipped(check_id) if check_id in skip else execute(ctx, cls, clock=clock))
        where = "in this process"
    else:
        for check_id in registry.ids():
            if check_id in skip:
                progress.started(check_id, registry[check_id].title or check_id)
                done(check_id, skipped(check_id))
        # the costliest first, so that no worker is left with a long check when the others are done;
        # before them the checks a remedy waits for (a remedy refits models: it is long too)
        runnable = sorted((c for c in registry.ids() if c not in skip), key=lambda c: (c not in first,
                                                                                     -registry[c].cost))
        in_process = executor.run(runnable, started=lambda c: progress.started(c, registry[c].title or c), done=done)
        where = executor.where
    results = [outcomes[c].result for c in registry.ids()]
    tracebacks = {c: outcomes[c].traceback for c in registry.ids() if outcomes[c].traceback}
    measurements = {c: outcomes[c].measurement for c in registry.ids() if outcomes[c].measured}
    return RunOutput(results=results, tracebacks=tracebacks, measurements=measurements, in_process=in_process,
                     where=where)


def execute(ctx: AuditContext, cls: type[Check], *, clock: Callable[[], float] = time.perf_counter) -> Outcome:
    """Run one check on the context, timed; any exception becomes the check's ``error``."""
    t0 = clock()
    outcome = _run_one(ctx, cls, cls.title or cls.id, cls.family.name)
    outcome.result = replace(outcome.result, duration_s=clock() - t0, family_title=cls.family.title)
    return outcome


def _run_one(ctx: AuditContext, cls: type[Check], title: str, family: str) -> Outcome:
    check_id = cls.id
    try:
        check = _make_check(cls, dict(ctx.config.checks.options.get(check_id, {})))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reason = check.skip_reason(ctx)
            if reason:
                return Outcome(CheckResult(check_id, title, family, Status.SKIPPED, reason=reason))
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
        return Outcome(CheckResult(check_id, title, family, Status.ERROR, error=error_message(exc)),
                       traceback=traceback.format_exc())
    findings.sort(key=lambda f: (-f.severity.rank, f.id))
    return Outcome(CheckResult(check_id, title, family, Status.OK, evidence=evidence, findings=tuple(findings)),
                   measurement=measurement, measured=True)


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
