"""Remediation (Hall's fourth step): remedies computed and measured on held-out rows, after the checks.

``discover_remedies()`` finds every ``Remedy`` class in this package's modules; ``run_remedies``
runs them in report order on the checks' results, isolating a failing remedy as ``error``.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from ..findings import CheckResult, Status
from .base import Artifact, Remediation, Remedy, RemedyInputs, RemedyOutput, RemedyResult

if TYPE_CHECKING:
    from ..context import AuditContext

__all__ = ["Artifact", "EarlyRemedies", "EarlyTask", "Remediation", "Remedy", "RemedyInputs", "RemedyOutput",
           "RemedyResult", "discover_remedies", "run_remedies"]


def _subclasses(cls: type[Remedy]) -> Iterable[type[Remedy]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def discover_remedies() -> dict[str, type[Remedy]]:
    """Every remedy class of this package, keyed by id, in report order."""
    pkg = importlib.import_module(__name__)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=__name__ + "."):
        importlib.import_module(info.name)
    found: dict[str, type[Remedy]] = {}
    for cls in _subclasses(Remedy):
        if not cls.id or not cls.__module__.startswith(__name__ + "."):
            continue
        if cls.id in found and found[cls.id] is not cls:
            raise ValueError(f"two remedies have the id {cls.id}")
        found[cls.id] = cls
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


def run_remedies(ctx: AuditContext, checks: Iterable[CheckResult], measurements: Mapping[str, Any], *,
                 remedies: Mapping[str, type[Remedy]] | None = None,
                 done: Callable[[RemedyResult], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter, workers: int = 1,
                 early: Mapping[str, RemedyResult] | None = None) -> tuple[RemedyResult, ...]:
    """Run every remedy once. A remedy that raises is recorded as ``error`` and the others go on.

    With ``workers`` > 1 (Linux), the remedies run in that many forked processes, as the checks do
    (``auditor.parallel``): they read only the shared context and the checks' results, each from its
    own seeded generator, so the results are the same. ``early`` holds the results of remedies that
    already ran beside the checks (``EarlyRemedies``); they are not run again. ``done`` is told of
    each in report order. A remedy that declares its ``reads`` is given only those checks' results."""
    section = ctx.config.remediation
    if not section.enabled:
        return ()
    registry = remedies if remedies is not None else discover_remedies()
    before = dict(early or {})
    inputs = RemedyInputs(ctx=ctx, checks={c.id: c for c in checks}, measurements=dict(measurements))
    todo = [rid for rid in registry if rid not in section.skip and rid not in before]
    job = _Job(registry, inputs, {rid: dict(section.options.get(rid, {})) for rid in todo}, clock)
    ahead = _in_workers(job, todo, workers)
    results: list[RemedyResult] = []
    for rid, cls in registry.items():
        if rid in section.skip:
            result = RemedyResult(rid, cls.title or rid, Status.SKIPPED, reason="skipped by config")
        elif rid in before:
            result = before[rid]
        else:
            result = next(ahead, None) or job.run(rid)
        results.append(result)
        if done is not None:
            done(result)
    _check_unique(results)
    return tuple(results)


class _Job:
    """Running one remedy, timed: in this process or in a forked one (which inherits the job)."""

    def __init__(self, registry: Mapping[str, type[Remedy]], inputs: RemedyInputs,
                 options: dict[str, dict[str, Any]], clock: Callable[[], float]) -> None:
        self.registry, self.inputs, self.options, self.clock = registry, inputs, options, clock

    def run(self, rid: str) -> RemedyResult:
        cls = self.registry[rid]
        return timed_run(cls, self.inputs.only(cls.reads), self.options[rid], self.clock)


def timed_run(cls: type[Remedy], inputs: RemedyInputs, options: dict[str, Any],
              clock: Callable[[], float] = time.perf_counter) -> RemedyResult:
    t0 = clock()
    result = _run_one(cls, inputs, options)
    return RemedyResult(result.id, result.title, result.status, duration_s=clock() - t0,
                        reason=result.reason, error=result.error, output=result.output)


# ---- remedies beside the checks ----------------------------------------------------------------------
@dataclass(frozen=True)
class EarlyTask:
    """One remedy sent to a check worker: what it reads travels with it, pickled; the context is the
    worker's own (forked from the audit process)."""

    remedy: type[Remedy]
    options: dict[str, Any]
    checks: dict[str, CheckResult]
    measurements: dict[str, Any]

    @property
    def remedy_id(self) -> str:
        return self.remedy.id

    def run(self, ctx: AuditContext) -> RemedyResult:
        return timed_run(self.remedy, RemedyInputs(ctx=ctx, checks=self.checks, measurements=self.measurements),
                         self.options)


class EarlyRemedies:
    """The remedies that declare their ``reads``, started in the check workers as soon as the checks
    they read are done (``auditor.parallel.ForkPool``), so the slow ones (refits) run beside the
    remaining checks instead of after all of them. Each is given exactly what ``run_remedies`` would
    give it: the results of its checks with the config's waivers applied, and their measurements.

    ``run_checks`` tells it of every check as it finishes (``check_done``); the pool takes the tasks
    that became ready (``take``) and hands back each result (``task_done``). A task that does not come
    back (its worker died, its result could not be pickled) is left to ``run_remedies``, which runs
    it after the checks like any other remedy; ``results`` holds the others."""

    def __init__(self, ctx: AuditContext, *, on: date, remedies: Mapping[str, type[Remedy]] | None = None) -> None:
        section = ctx.config.remediation
        self.ctx = ctx
        self.registry = remedies if remedies is not None else discover_remedies()
        self.waivers, self.on = tuple(ctx.config.waivers), on
        self.pending = {rid: cls for rid, cls in self.registry.items()
                        if section.enabled and rid not in section.skip and cls.reads is not None}
        self.options = {rid: dict(section.options.get(rid, {})) for rid in self.pending}
        self.checks: dict[str, CheckResult] = {}
        self.measurements: dict[str, Any] = {}
        self.results: dict[str, RemedyResult] = {}
        self._ready: list[EarlyTask] = []

    def check_done(self, check_id: str, outcome: Any) -> None:
        """``outcome``: the check's ``runner.Outcome`` (its result, and its measurement if measured)."""
        from ..waivers import waive_one

        self.checks[check_id] = waive_one(outcome.result, self.waivers, self.on)
        if outcome.measured:
            self.measurements[check_id] = outcome.measurement
        for rid, cls in list(self.pending.items()):
            if all(c in self.checks for c in cls.reads or ()):
                del self.pending[rid]
                given = RemedyInputs(ctx=self.ctx, checks=self.checks, measurements=self.measurements).only(cls.reads)
                self._ready.append(EarlyTask(cls, self.options[rid], dict(given.checks), dict(given.measurements)))

    @property
    def awaited(self) -> frozenset[str]:
        """The checks the remedies still to start read."""
        return frozenset(c for cls in self.pending.values() for c in (cls.reads or ()))

    def take(self) -> list[EarlyTask]:
        """The tasks that became ready since the last call, in the order they became ready (report
        order among those one check made ready)."""
        ready, self._ready = self._ready, []
        return ready

    def task_done(self, task: EarlyTask, result: RemedyResult | None) -> None:
        if result is not None:
            self.results[task.remedy_id] = result


_JOB: list[_Job] = []  # the job a forked remedy process reads (inherited, never pickled)


def _in_workers(job: _Job, todo: list[str], workers: int) -> Iterator[RemedyResult | None]:
    """The results of ``todo``'s remedies, in order, run in ``workers`` forked processes; None for a
    remedy to run in this process (its result could not be sent back). Nothing when there is one
    worker, one remedy, or no fork. A remedy whose process dies is run again alone in a new one, so
    only the remedy that kills its process is that remedy's ``error``."""
    from ..processes import fork_available

    n = min(workers, len(todo))
    if n <= 1 or not fork_available():
        return
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    def pool(size: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_remedy_process, initargs=(size,))

    _JOB[:] = [job]
    try:
        with pool(n) as executor:
            futures = [executor.submit(_run_in_worker, rid) for rid in todo]
            for rid, future in zip(todo, futures):
                try:
                    data = future.result()
                except KeyboardInterrupt:
                    executor.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: start no other remedy
                    raise
                except BrokenProcessPool:
                    with pool(1) as alone:
                        try:
                            data = alone.submit(_run_in_worker, rid).result()
                        except BrokenProcessPool:
                            cls = job.registry[rid]
                            yield RemedyResult(rid, cls.title or rid, Status.ERROR,
                                               error="the process running this remedy died (a crash in the "
                                                     "model's library or the memory limit)")
                            continue
                yield None if data is None else pickle.loads(data)
    finally:
        _JOB.clear()


def _remedy_process(workers: int) -> None:
    from ..parallel import _after_fork, worker_threads

    _after_fork(_JOB[0].inputs.ctx, worker_threads(workers))


def _run_in_worker(rid: str) -> bytes | None:
    import pickle

    result = _JOB[0].run(rid)
    try:
        return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - not picklable: the parent runs it itself
        return None


def _run_one(cls: type[Remedy], inputs: RemedyInputs, options: dict[str, Any]) -> RemedyResult:
    from ..runner import error_message

    title = cls.title or cls.id
    try:
        remedy = cls(**options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reason = remedy.skip_reason(inputs)
            if reason:
                return RemedyResult(cls.id, title, Status.SKIPPED, reason=reason)
            output: RemedyOutput = remedy.run(inputs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a failing remedy must not end the audit
        return RemedyResult(cls.id, title, Status.ERROR, error=error_message(exc),
                            reason=traceback.format_exc())
    return RemedyResult(cls.id, title, Status.OK, output=output)


def _check_unique(results: list[RemedyResult]) -> None:
    ids: set[str] = set()
    paths: set[str] = set()
    for r in results:
        for rem in r.remediations:
            if rem.id in ids:
                raise ValueError(f"two remediations have the id {rem.id}")
            ids.add(rem.id)
        for a in r.artifacts:
            if a.path in paths:
                raise ValueError(f"two remedies write {a.path}")
            paths.add(a.path)


def all_artifacts(results: Iterable[RemedyResult]) -> list[Artifact]:
    return [a for r in results for a in r.artifacts]


def all_remediations(results: Iterable[RemedyResult]) -> list[Remediation]:
    return [rem for r in results for rem in r.remediations]
