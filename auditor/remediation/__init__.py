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
from typing import TYPE_CHECKING, Any

from ..findings import CheckResult, Status
from .base import Artifact, Remediation, Remedy, RemedyInputs, RemedyOutput, RemedyResult

if TYPE_CHECKING:
    from ..context import AuditContext

__all__ = ["Artifact", "Remediation", "Remedy", "RemedyInputs", "RemedyOutput", "RemedyResult",
           "discover_remedies", "run_remedies"]


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
                 clock: Callable[[], float] = time.perf_counter, workers: int = 1) -> tuple[RemedyResult, ...]:
    """Run every remedy once. A remedy that raises is recorded as ``error`` and the others go on.

    With ``workers`` > 1 (Linux), the remedies run in that many forked processes, as the checks do
    (``auditor.parallel``): they read only the shared context and the checks' results, each from its
    own seeded generator, so the results are the same. ``done`` is told of each in report order."""
    section = ctx.config.remediation
    if not section.enabled:
        return ()
    registry = remedies if remedies is not None else discover_remedies()
    inputs = RemedyInputs(ctx=ctx, checks={c.id: c for c in checks}, measurements=dict(measurements))
    todo = [rid for rid in registry if rid not in section.skip]
    job = _Job(registry, inputs, {rid: dict(section.options.get(rid, {})) for rid in todo}, clock)
    ahead = _in_workers(job, todo, workers)
    results: list[RemedyResult] = []
    for rid, cls in registry.items():
        if rid in section.skip:
            result = RemedyResult(rid, cls.title or rid, Status.SKIPPED, reason="skipped by config")
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
        t0 = self.clock()
        result = _run_one(self.registry[rid], self.inputs, self.options[rid])
        return RemedyResult(result.id, result.title, result.status, duration_s=self.clock() - t0,
                            reason=result.reason, error=result.error, output=result.output)


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
