"""Checks in worker processes on this machine: ``[engine] workers`` (contract 5, "Execution engine").

The workers are forked (Linux) from the audit process after its shared caches are filled
(``AuditContext.warm``: test and train predictions, the favourable outcome), so every worker reads
the same model, data and predictions copy-on-write: nothing is loaded, pickled or predicted again per
check or per worker. The parent hands out one check id at a time to an idle worker, prints each
check's line as its result arrives, and keeps the results in registry order; a check's outcome
(result, traceback, measurement) comes back pickled.

What is not shared with a forked worker:

- a model hosted in its own process (``auditor.modelhost``): its pipe belongs to the parent, and two
  processes must never talk over it at once. Each worker forgets the parent's host and starts its own
  at its first model call (``HostedModel.after_fork``): one more model load per worker, never per check;
- an ONNX session (onnxruntime's threads do not survive a fork): each worker opens its own session
  from the model's bytes (``OnnxModel.after_fork``);
- threads: a fork copies only the forking thread. The workers are forked before the progress display
  starts (``ForkPool`` is entered before it), replacement workers are forked from the same parent
  later, and a worker replaces its standard streams (whose locks another thread may have held), so it
  never waits on a lock nobody will release. GNU OpenMP (scikit-learn's, LightGBM's) hangs in a forked
  child that asks for more than one thread once the parent has used its thread pool: OpenMP runs one
  thread per worker, and so do the LightGBM and XGBoost models inside the audited model, whose
  scikit-learn wrappers ask for their own thread count at each call (``model.limit_library_threads``);
  BLAS gets the worker's share of the cores (``worker_threads``).

A check whose measurement (or result) cannot be pickled is run again in the parent, after the
workers, so the remediation step still reads its measurement; ``RunOutput.in_process`` says which and
why. A check that crashes its worker (``os._exit``, a segmentation fault, the kernel's out-of-memory
killer) is that check's ``error``; a new worker is forked for the checks still to run. So is a check
still running after ``[engine] check_timeout`` seconds (the watchdog kills its worker): a model call
that never returns or a loop in a check's own code stops the audit's progress no longer.

Results are identical whatever the number of workers: a check reads only the shared, read-only
context and its own seeded generator (``AuditContext.rng``), never state left by another check.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from .findings import CheckResult, Status
from .processes import fork_available, quiet_child
from .runner import Outcome, error_message, execute

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from .checks.base import Check, CheckRegistry
    from .context import AuditContext

THREADS_ENV = "AUDITOR_THREADS"  # BLAS/OpenMP threads inside model calls (the CLI's default: 1)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def requested_threads() -> int:
    """Threads for BLAS/OpenMP in model calls: ``AUDITOR_THREADS`` if set, else 1 (the checks make many
    small batched calls, where extra threads only spin and, on a busy machine, slow a call down)."""
    try:
        return max(1, int(os.environ.get(THREADS_ENV, "1")))
    except ValueError:
        return 1


def worker_count(workers: int) -> int:
    """``[engine] workers`` as a number of processes: 0 is one per core."""
    return cores() if workers == 0 else max(1, workers)


def worker_threads(workers: int) -> int:
    """BLAS threads per worker process: the requested threads, at most the worker's share of the
    cores, so the workers together do not oversubscribe them."""
    return max(1, min(requested_threads(), cores() // max(1, workers)))


def local_executor(ctx: AuditContext, registry: CheckRegistry, n_checks: int) -> ForkPool | None:
    """The worker pool ``[engine] workers`` asks for, or None when the checks run in this process (one
    worker, one check to run, or no fork on this system)."""
    n = min(worker_count(ctx.config.engine.workers), n_checks)
    if n <= 1 or not fork_available():
        return None
    return ForkPool(ctx, registry, n)


# ---- the pool --------------------------------------------------------------------------------------
@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    check_id: str | None = None  # the check it is running
    task: Any = None  # or the remedy (``remediation.EarlyTask``)
    since: float = 0.0  # when it was given its check or task (``time.monotonic``)

    @property
    def busy(self) -> bool:
        return self.check_id is not None or self.task is not None


@dataclass
class ForkPool:
    """``workers`` forked processes running checks of ``registry`` on ``ctx`` (an ``Executor`` of
    ``auditor.runner``). Enter it before any thread starts in this process (e.g. the progress display);
    ``run`` starts it by itself when it was not entered."""

    ctx: AuditContext
    registry: CheckRegistry
    workers: int
    threads: int = 0  # BLAS threads per worker; 0: ``worker_threads(workers)``
    # remedies to start beside the checks as the checks they read finish (``remediation.EarlyRemedies``)
    early: Any = None
    _pool: list[_Worker] = field(default_factory=list, repr=False)
    _opened: bool = field(default=False, repr=False)

    @property
    def where(self) -> str:
        return f"{self.workers} worker processes"

    def __enter__(self) -> ForkPool:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._opened:
            return
        self.threads = self.threads or worker_threads(self.workers)
        self.ctx.warm()  # before the fork: every worker shares the predictions instead of making its own
        self._opened = True
        try:
            for _ in range(self.workers):
                self._pool.append(self._fork())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop every worker: idle ones are asked to exit, busy ones (an interrupted run) are killed."""
        for w in self._pool:
            with contextlib.suppress(OSError, ValueError):
                if not w.busy and w.process.is_alive():
                    w.conn.send_bytes(b"")
        for w in self._pool:
            w.process.join(timeout=0 if w.busy else 2)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=5)
            with contextlib.suppress(OSError):
                w.conn.close()
        self._pool.clear()
        self._opened = False

    def _fork(self) -> _Worker:
        import multiprocessing

        mp = multiprocessing.get_context("fork")
        parent_end, child_end = mp.Pipe(duplex=True)
        proc = mp.Process(target=_worker_main, args=(child_end, parent_end, self.ctx, self.registry, self.threads),
                          name="auditor-check-worker", daemon=True)
        proc.start()
        child_end.close()
        return _Worker(proc, parent_end)

    def run(self, check_ids: list[str], *, started: Callable[[str], None],
            done: Callable[[str, Outcome], None]) -> dict[str, str]:
        """Run every check once in the workers; checks whose outcome cannot come back run here after.
        With ``early``, the remedies it makes ready are run in the workers too, each ahead of the
        checks still waiting (a remedy refits models: the longest tasks go first)."""
        self.open()
        queue: list[Any] = list(check_ids)  # check ids and remedy tasks
        again: dict[str, str] = {}  # check id -> why it runs in this process
        try:
            while True:
                if self.early is not None:
                    queue[:0] = self.early.take()
                if not queue and not any(w.busy for w in self._pool):
                    break
                for w in self._pool:
                    if not w.busy and queue:
                        item = queue.pop(0)
                        w.since = time.monotonic()
                        if isinstance(item, str):
                            w.check_id = item
                            started(item)
                            w.conn.send_bytes(_CHECK + item.encode("utf-8"))
                        else:
                            w.task = item
                            w.conn.send_bytes(_TASK + pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))
                busy = [w for w in self._pool if w.busy]
                limit = self.ctx.config.engine.check_timeout
                left = max(0.0, min(w.since for w in busy) + limit - time.monotonic()) if limit > 0 else None
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=left))
                for w in list(self._pool):
                    if not w.busy:
                        continue
                    if not (w.conn in ready or w.process.sentinel in ready):
                        if limit > 0 and time.monotonic() - w.since >= limit:
                            self._stop_overdue(w, limit, done)
                        continue
                    if w.task is not None:
                        task, w.task = w.task, None
                        self.early.task_done(task, self._receive_task(w))
                        continue
                    check_id, w.check_id = str(w.check_id), None
                    outcome = self._receive(w, check_id, again)
                    if outcome is not None:
                        done(check_id, outcome)
        except BaseException:
            self.close()
            raise
        self.close()
        for check_id in again:
            started(check_id)
            outcome = execute(self.ctx, self.registry[check_id])
            done(check_id, outcome)
        return again

    def _receive(self, w: _Worker, check_id: str, again: dict[str, str]) -> Outcome | None:
        """The outcome a worker sent, or the check's error when the worker died running it (the worker
        is then replaced). None when the check must run again in this process."""
        data = self._reply(w)
        if data is None:
            message = f"WorkerDied: the check's worker process {_describe_exit(w.process.exitcode)} while it ran"
            return failed_outcome(self.registry[check_id], message)
        return unpack_reply(data, check_id, again)

    def _reply(self, w: _Worker) -> bytes | None:
        """What the worker sent back; None when it died instead (it is then replaced by a new one)."""
        try:
            data = w.conn.recv_bytes() if w.conn.poll() else None
        except (EOFError, OSError):
            data = None
        if data is None:
            w.process.join(timeout=5)
            self._replace(w)
        return data

    def _stop_overdue(self, w: _Worker, limit: float, done: Callable[[str, Outcome], None]) -> None:
        """The watchdog: a worker still on its check (or remedy) after ``[engine] check_timeout`` seconds
        is killed and replaced; the check (or remedy) is an error that says so, the others go on."""
        w.process.kill()
        w.process.join(timeout=5)
        elapsed = time.monotonic() - w.since
        check_id, task = w.check_id, w.task
        w.check_id = w.task = None
        self._replace(w)
        def message(what: str) -> str:
            return (f"CheckTimeout: stopped after {limit:g} s ([engine] check_timeout), still running: a model "
                    f"call or the code of the {what} did not return; raise check_timeout for a slow model")

        if task is not None:
            from .remediation import RemedyResult

            cls = task.remedy
            self.early.task_done(task, RemedyResult(cls.id, cls.title or cls.id, Status.ERROR, duration_s=elapsed,
                                                    error=message("remedy")))
        elif check_id is not None:
            outcome = failed_outcome(self.registry[check_id], message("check"))
            outcome.result = replace(outcome.result, duration_s=elapsed)  # the time it ran before it was stopped
            done(check_id, outcome)

    def _receive_task(self, w: _Worker) -> Any:
        """A remedy's result from a worker, or None (the remedy then runs after the checks, in the
        remedies' own processes): its result could not be pickled, or its worker died (replaced)."""
        data = self._reply(w)
        return None if data is None else pickle.loads(data)

    def _replace(self, w: _Worker) -> None:
        with contextlib.suppress(OSError):
            w.conn.close()
        self._pool.remove(w)
        self._pool.append(self._fork())


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


# ---- the worker ------------------------------------------------------------------------------------
def _worker_main(conn: Connection, parent_end: Connection, ctx: AuditContext, registry: CheckRegistry,
                 threads: int) -> None:
    """A worker's life: set itself up after the fork, then run one check per request until told to stop
    (an empty request) or the parent goes away."""
    with contextlib.suppress(OSError):
        parent_end.close()  # the parent's end of the pipe: closed here so a dead parent means EOF
    _after_fork(ctx, threads)
    try:
        while True:
            try:
                request = conn.recv_bytes()
            except (EOFError, OSError):
                break
            if not request:
                break
            kind, body = request[:1], request[1:]
            if kind == _TASK:
                conn.send_bytes(_run_task(body, ctx))
                continue
            check_id = body.decode("utf-8")
            outcome = execute(ctx, registry[check_id])
            conn.send_bytes(pack_outcome(outcome))
    finally:
        close = getattr(ctx.model.adapter, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


_CHECK, _TASK = b"c", b"t"  # a request: a check id, or a pickled remedy task


def _run_task(body: bytes, ctx: AuditContext) -> bytes:
    """Run a remedy task; its result pickled, or the pickle of None when it cannot be."""
    result = pickle.loads(body).run(ctx)
    try:
        return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - not picklable: the remedy runs again after the checks
        return pickle.dumps(None)


def failed_outcome(cls: type[Check], message: str) -> Outcome:
    """The ``error`` outcome of a check whose worker (process or cluster task) did not reply."""
    return Outcome(CheckResult(cls.id, cls.title or cls.id, cls.family.name, Status.ERROR, error=message),
                   traceback=message + "\n")


def unpack_reply(data: bytes, check_id: str, again: dict[str, str]) -> Outcome | None:
    """A worker's reply: the check's outcome, or None after noting in ``again`` why the outcome
    could not be pickled (the check then runs again in the audit process)."""
    reply = pickle.loads(data)
    if isinstance(reply, Outcome):
        return reply
    again[check_id] = str(reply)
    return None


def pack_outcome(outcome: Outcome) -> bytes:
    """The outcome pickled; if it cannot be (a measurement holding a lambda, a lock, an open file), the
    reason instead, so the parent runs the check itself and keeps its measurement."""
    try:
        return pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - anything pickle raises
        what = "measurement" if _picklable(replace(outcome, measurement=None, measured=False)) else "result"
        return pickle.dumps(f"its {what} could not be sent back from the worker process ({error_message(exc)})",
                            protocol=pickle.HIGHEST_PROTOCOL)


def _picklable(obj: Any) -> bool:
    try:
        pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001
        return False
    return True


def _after_fork(ctx: AuditContext, threads: int) -> None:
    """What a forked worker must not share with the parent, made its own."""
    quiet_child()  # signals, death with the parent, its own standard streams
    os.environ[THREADS_ENV] = str(threads)  # a model host started here gets the same limit
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[key] = str(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
        threadpool_limits(limits=1, user_api="openmp")  # see the module docstring: GNU OpenMP after fork
    except Exception:  # noqa: BLE001 - threadpoolctl finds no library: nothing to limit
        pass
    limit = getattr(ctx.model.adapter, "limit_threads", None)
    if callable(limit):
        limit(1)  # LightGBM and XGBoost pass their own thread count to OpenMP at every call
    after = getattr(ctx.model.adapter, "after_fork", None)
    if callable(after):
        after()
