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
from collections.abc import Callable, Iterable, Mapping
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
                 clock: Callable[[], float] = time.perf_counter) -> tuple[RemedyResult, ...]:
    """Run every remedy once. A remedy that raises is recorded as ``error`` and the others go on."""
    section = ctx.config.remediation
    if not section.enabled:
        return ()
    registry = remedies if remedies is not None else discover_remedies()
    inputs = RemedyInputs(ctx=ctx, checks={c.id: c for c in checks}, measurements=dict(measurements))
    results: list[RemedyResult] = []
    for rid, cls in registry.items():
        title = cls.title or rid
        t0 = clock()
        if rid in section.skip:
            result = RemedyResult(rid, title, Status.SKIPPED, reason="skipped by config")
        else:
            result = _run_one(cls, inputs, dict(section.options.get(rid, {})))
        result = RemedyResult(result.id, result.title, result.status, duration_s=clock() - t0,
                              reason=result.reason, error=result.error, output=result.output)
        results.append(result)
        if done is not None:
            done(result)
    _check_unique(results)
    return tuple(results)


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
