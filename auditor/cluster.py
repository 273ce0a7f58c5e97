"""Checks as tasks on an existing Dask distributed cluster: ``[engine] backend = "dask"`` with
``address`` of its scheduler (contract 5, "Execution engine"). Dask is an optional extra
(``pip install auditor[dask]``); nothing here is imported by a local audit.

- The audit process connects to the scheduler before it loads anything (an unreachable address is
  an input error, exit 2).
- A ``[data] test`` or ``train`` given as a Parquet dataset directory (part files side by side) is
  scored on the workers, one task per part file: each task reads the model's feature columns of its
  part and returns only the model's output on those rows (``predict_proba`` of a classifier, the
  predictions of a regressor) and the row count. The audit process reads the same part files for the
  rows the checks sample from; it does not call the model on them.
- The audit context (model, data, the predictions already made) is sent to every worker once
  (``Client.scatter(broadcast=True)``); each check is then one task on it, and its outcome (result,
  traceback, measurement) comes back pickled. A check whose measurement cannot be pickled runs again in
  the audit process afterwards (``RunOutput.in_process``); a task that fails or kills its worker is
  that check's ``error``.

The workers need the auditor package and the model's libraries at the same versions (a model file or
dataset path named in the config must be readable where it is used: by the audit process, and by
the workers for dataset directories and for models hosted in their own process).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import DASK_HINT
from .errors import AuditInputError, ConfigError
from .parallel import failed_outcome, pack_outcome, requested_threads, unpack_reply
from .runner import Outcome, error_message, execute

if TYPE_CHECKING:
    from .checks.base import Check, CheckRegistry
    from .config import AuditConfig
    from .context import AuditContext
    from .inputs import LoadedModel, LoadedTable

CONNECT_TIMEOUT_S = 10.0  # to reach the scheduler before the audit is refused


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Dask's own log lines (connection retries, version warnings) stay off the terminal: the audit
    prints one line for a failure to connect."""
    loggers = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def connect(address: str, *, timeout_s: float | None = None) -> Any:
    """A ``distributed.Client`` connected to the scheduler at ``address`` (within ``timeout_s``, default
    ``CONNECT_TIMEOUT_S``). Raises ConfigError when Dask is not installed and AuditInputError (one line)
    when the scheduler cannot be reached."""
    timeout_s = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        import distributed
    except ImportError:
        raise ConfigError(f"engine.backend = \"dask\" needs Dask, which is not installed: {DASK_HINT}") from None
    with _quiet():
        try:
            return distributed.Client(address, timeout=timeout_s, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, a malformed address (ValueError)
            raise AuditInputError(f"cannot reach the Dask scheduler at {address!r} (config key 'engine.address'): "
                                  f"{_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


# ---- scoring a dataset directory, partition by partition -----------------------------------------
def score_dataset(client: Any, model: LoadedModel, table: LoadedTable, config: AuditConfig,
                  role: str) -> np.ndarray | None:
    """The model's output on every row of a Parquet dataset directory, computed on the workers (one
    task per part file) and concatenated in row order. None when the model's features are not all
    columns of the data: the audit's own input check reports that."""
    from .context import _resolve_features

    adapter = model.adapter
    features = list(_resolve_features(config, adapter.feature_names(), table.frame.columns))
    if any(f not in table.frame.columns for f in features):
        return None
    task = config.model.task or ("classification" if adapter.has_proba() else "regression")
    op = "predict_proba" if task == "classification" else "predict"
    with _quiet():
        model_future = client.scatter(adapter, broadcast=True, hash=False)
        token = uuid.uuid4().hex[:8]
        futures = [client.submit(_score_part, model_future, part, features, op, requested_threads(),
                                 key=f"auditor-score-{role}-{i}-{token}", pure=False, retries=0)
                   for i, part in enumerate(table.parts)]
        try:
            scored = client.gather(futures)
        except Exception as exc:  # noqa: BLE001 - the model failed on a worker
            raise AuditInputError(f"the model failed to predict on the {role} data (on the Dask cluster): "
                                  f"{error_message(exc)}") from None
        finally:
            client.cancel([model_future, *futures])
    outputs = []
    for part, (rows, output) in zip(table.parts, scored):
        if len(output) != rows:
            raise AuditInputError(f"the model returned {len(output)} predictions for {rows} rows of {part}")
        outputs.append(output)
    total = sum(len(o) for o in outputs)
    if total != len(table.frame):
        raise AuditInputError(f"the workers read {total} rows of the {role} data, the audit process "
                              f"{len(table.frame)}: the part files changed while the audit started")
    return np.concatenate(outputs, axis=0)


def _score_part(adapter: Any, part: str, features: list[str], op: str, threads: int) -> tuple[int, np.ndarray]:
    """On a worker: one part file's feature columns scored in one batched call."""
    from threadpoolctl import threadpool_limits

    from .inputs import read_parts

    X = read_parts((part,), columns=features)
    with threadpool_limits(limits=threads):
        return len(X), np.asarray(getattr(adapter, op)(X))


# ---- the checks as tasks -------------------------------------------------------------------------
@dataclass
class DaskExecutor:
    """Runs checks as tasks on a Dask cluster (an ``Executor`` of ``auditor.runner``)."""

    ctx: AuditContext
    registry: CheckRegistry
    client: Any
    address: str

    _where: str = ""

    @property
    def where(self) -> str:
        """The cluster as it was when the checks were sent (the connection is closed after the run)."""
        if not self._where:
            try:
                n = len(self.client.scheduler_info().get("workers", {}))
            except Exception:  # noqa: BLE001 - the count is only for the progress line
                return f"the Dask cluster at {self.address}"
            self._where = f"{n} Dask worker{'s' if n != 1 else ''} at {self.address}"
        return self._where

    def open(self) -> None:
        pass

    def close(self) -> None:
        with _quiet(), contextlib.suppress(Exception):
            self.client.close()

    def run(self, check_ids: list[str], *, started: Callable[[str], None],
            done: Callable[[str, Outcome], None]) -> dict[str, str]:
        self.ctx.warm()  # the predictions every check reads, made once and sent with the context
        _ = self.where
        again: dict[str, str] = {}
        try:
            with _quiet():
                killed = self._run_all(check_ids, started, done, again)
                # A task whose workers all died (KilledWorker), or whose context died with them, is
                # either the check that killed them or one that was on the same worker: each runs
                # again alone, so only a check that kills its worker by itself is that check's error.
                for check_id in killed:
                    self._run_all([check_id], lambda _c: None, done, again, last_try=True)
        finally:
            self.close()
        for check_id in again:
            started(check_id)
            done(check_id, execute(self.ctx, self.registry[check_id]))
        return again

    def _run_all(self, check_ids: list[str], started: Callable[[str], None], done: Callable[[str, Outcome], None],
                 again: dict[str, str], *, last_try: bool = False) -> list[str]:
        """Send the context once and ``check_ids`` as tasks; report each outcome as it arrives. Returns
        the checks whose workers (or whose scattered context) died under them, unreported, unless
        this is their ``last_try``."""
        from distributed import as_completed

        # Scattered once to every worker; a last try carries the context in its task instead, so that
        # the scheduler can start it again on another worker when the one it ran on dies (scattered
        # data dies with the workers that held it)
        ctx = _shippable(self.ctx)
        shipped = ctx if last_try else self.client.scatter(ctx, broadcast=True, hash=False)
        token = uuid.uuid4().hex[:8]
        futures = {}
        for check_id in check_ids:
            started(check_id)
            fut = self.client.submit(_run_check, shipped, self.registry[check_id], requested_threads(),
                                     key=f"auditor-check-{check_id}-{token}", pure=False, retries=0)
            futures[fut] = check_id
        killed: list[str] = []
        for fut in as_completed(list(futures), loop=self.client.loop):
            check_id = futures[fut]
            try:
                data = fut.result()
            except Exception as exc:  # noqa: BLE001 - the task failed, or its worker died (KilledWorker)
                if not last_try and _died_under(exc):
                    killed.append(check_id)
                else:
                    message = f"ClusterError: the check's task failed on the Dask cluster: {error_message(exc)}"
                    done(check_id, failed_outcome(self.registry[check_id], message))
                continue
            outcome = unpack_reply(data, check_id, again)
            if outcome is not None:
                done(check_id, outcome)
        self.client.cancel([*futures] if last_try else [shipped, *futures])
        return [c for c in check_ids if c in killed]  # in the order they were sent


def _died_under(exc: BaseException) -> bool:
    """The task's workers died under it (KilledWorker), or what it needs or made died with a worker:
    the context scattered to them, or its result (fetching it then finds the future cancelled:
    distributed's FutureCancelledError is a concurrent.futures.CancelledError)."""
    from concurrent.futures import CancelledError

    from distributed import KilledWorker

    return isinstance(exc, (KilledWorker, CancelledError))


def _shippable(ctx: AuditContext) -> AuditContext:
    """The context as sent to the workers: the same, without the second copy of each data file's rows
    (``LoadedTable.frame``, read only for the report's input section, here)."""
    slim = copy.copy(ctx)
    if ctx.test_file is not None:
        slim.test_file = replace(ctx.test_file, frame=ctx.test_file.frame.iloc[:0])
    if ctx.train_file is not None:
        slim.train_file = replace(ctx.train_file, frame=ctx.train_file.frame.iloc[:0])
    return slim


def _run_check(ctx: AuditContext, cls: type[Check], threads: int) -> bytes:
    """On a worker: one check on the shared context, its outcome pickled (or why it cannot be)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        outcome = execute(ctx, cls)
    return pack_outcome(outcome)
