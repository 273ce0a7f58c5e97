"""A model-host process: the user's model code is loaded and called in one child process.

Python-object models (``file.py:NAME``, ``module:NAME``) and trusted pickles run the user's own
code. Called in this process, ``sys.exit(0)`` would end the audit with exit 0 (a passed gate in
CI), ``os._exit``, a segmentation fault or a hang would end or stall it with no report. Here the
model lives in a child process started with ``subprocess`` (a fresh interpreter, no fork), fed one
pickled DataFrame per batched call over a pipe. The parent's adapter, ``HostedModel``, sees a
dead or timed-out host as a ``ModelCallError`` (an ordinary ``Exception``), restarts the host for
the next call, and the audit goes on: the check that made the call records the failure.

The channel back to the parent carries no pickles: a JSON header and, for results, a ``.npy``
array read with ``allow_pickle=False``, so nothing the model returns is unpickled in the auditor.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import AuditInputError
from .model import BATCH_ROWS, ModelCallError

DEFAULT_TIMEOUT_S = 300.0
MAX_RESTARTS = 25  # a model that keeps crashing: later calls fail at once instead of restarting forever
_HEADER = struct.Struct(">Q")
_BUILTIN_ERRORS = {name: obj for name, obj in vars(builtins).items()
                   if isinstance(obj, type) and issubclass(obj, Exception)}


class HostedModel:
    """A ModelAdapter whose model runs in a model-host process (see the module docstring).

    ``obj`` is None: the model object is not in this process, so checks that would use it
    directly (e.g. unwrapping a pipeline's final estimator) take their model-agnostic path.
    """

    obj: Any = None
    hosted = True

    def __init__(self, spec: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.spec = spec
        self.timeout_s = float(timeout_s)
        self.restarts = 0
        self._origin = (list(sys.path), os.getcwd())  # where the model spec is resolved, for every host
        self._fresh = False  # True: no host of this process yet (after a fork or unpickling); not a restart
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen] = []  # at most one live host; a list for the finalizer
        self._finalizer = weakref.finalize(self, _stop_all, self._procs)
        try:
            meta = self._start(during=f"while loading '{spec}'")
        except ModelCallError as exc:
            raise AuditInputError(str(exc)) from None
        except (KeyboardInterrupt, AuditInputError):
            _stop_all(self._procs)
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. the interpreter could not be started
            _stop_all(self._procs)
            raise AuditInputError(f"the model process for '{spec}' could not be started: "
                                  f"{type(exc).__name__}: {exc}") from None
        self.kind: str = str(meta.get("kind") or "python")
        classes = meta.get("classes")
        self.classes: tuple[Any, ...] | None = tuple(classes) if classes is not None else None
        self._has_proba = bool(meta.get("has_proba"))
        names = meta.get("feature_names")
        self._feature_names = tuple(str(n) for n in names) if names is not None else None
        self.sha256: str = str(meta.get("sha256") or "")

    # ---- the adapter ----------------------------------------------------------------------------
    def has_proba(self) -> bool:
        return self._has_proba

    def feature_names(self) -> tuple[str, ...] | None:
        return self._feature_names

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if not len(X):
            return np.empty(0)
        return self._batched("predict", X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._batched("predict_proba", X), dtype=float)

    def close(self) -> None:
        """Stop the host process (also done when the adapter is garbage-collected or at exit); a
        later call starts a new one."""
        with self._lock:
            _stop_all(self._procs)

    # ---- other processes: a forked check worker, a cluster worker ---------------------------------
    def after_fork(self) -> None:
        """In a forked worker process (``auditor.parallel``): the parent's host and its pipe stay the
        parent's, and two processes must never talk to one host at once. This process closes its copies
        of the pipe's ends, forgets that host without stopping it, and starts a host of its own at its
        first model call (one model load per worker)."""
        self._finalizer.detach()
        for proc in self._procs:
            for f in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError, ValueError):
                    if f is not None:
                        f.close()
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._procs = []
        self._finalizer = weakref.finalize(self, _stop_all, self._procs)
        self._fresh = True

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (sent to a cluster worker) as what loads the model again there: its spec, limits and
        metadata; the worker starts its own host at its first call (the spec's file must be readable
        there)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_procs", "_finalizer", "_fresh")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.restarts = 0
        self._reset()

    # ---- calls --------------------------------------------------------------------------------
    def _batched(self, op: str, X: pd.DataFrame) -> np.ndarray:
        if len(X) <= BATCH_ROWS:
            return self._call(op, X)
        parts = [self._call(op, X.iloc[i:i + BATCH_ROWS]) for i in range(0, len(X), BATCH_ROWS)]
        return np.concatenate(parts, axis=0)

    def _call(self, op: str, X: pd.DataFrame) -> np.ndarray:
        during = f"during {op} on {len(X)} rows"
        with self._lock:
            proc = self._live()
            if proc is None and self._fresh:
                self._fresh = False
                try:
                    self._start(during=f"while loading '{self.spec}' in this process")
                except ModelCallError as exc:
                    raise ModelCallError(f"the model process could not be started: {exc}",
                                         original=exc.original) from None
                proc = self._live()
            if proc is None:
                if self.restarts >= MAX_RESTARTS:
                    raise ModelCallError(f"the model process failed again after {self.restarts} restarts in this "
                                         f"audit and is not restarted ({op} on {len(X)} rows not run)",
                                         original="restarts")
                self.restarts += 1
                try:
                    self._start(during=f"while loading '{self.spec}' again")
                except ModelCallError as exc:
                    raise ModelCallError(f"the model process could not be restarted: {exc}",
                                         original=exc.original) from None
                proc = self._live()
            assert proc is not None
            payload = pickle.dumps({"op": op, "X": X}, protocol=pickle.HIGHEST_PROTOCOL)
            header, body = self._exchange(proc, payload, during)
        if header.get("ok"):
            return np.load(io.BytesIO(body), allow_pickle=False)
        raise _model_error(header, during)

    def _live(self) -> subprocess.Popen | None:
        if self._procs and self._procs[-1].poll() is None:
            return self._procs[-1]
        _stop_all(self._procs)
        return None

    def _start(self, *, during: str) -> dict[str, Any]:
        """Start a host and load the model in it; the host's metadata (kind, classes, ...)."""
        _stop_all(self._procs)
        env = dict(os.environ)
        threads = _threads()
        for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(key, threads)
        env["AUDITOR_HOST_PARENT"] = str(os.getpid())
        # Linux delivers the parent-death signal when the *thread* that started the host ends:
        # arm it only for hosts started from the main thread
        env["AUDITOR_HOST_PDEATHSIG"] = "1" if threading.current_thread() is threading.main_thread() else "0"
        root = str(Path(__file__).resolve().parent.parent)
        boot = f"import sys; sys.path.insert(0, {root!r}); from auditor.modelhost import _serve; _serve()"
        proc = subprocess.Popen([sys.executable, "-c", boot], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env, close_fds=True)
        self._procs.append(proc)
        assert proc.stdin is not None and proc.stdout is not None  # both are pipes (PIPE above)
        for f in (proc.stdin, proc.stdout):
            os.set_blocking(f.fileno(), False)
        sys_path, cwd = self._origin
        request = pickle.dumps({"op": "load", "spec": self.spec, "sys_path": sys_path, "cwd": cwd},
                               protocol=pickle.HIGHEST_PROTOCOL)
        header, _ = self._exchange(proc, request, during)
        if header.get("input_error"):
            _stop_all(self._procs)
            raise ModelCallError(str(header["input_error"]), original="load")
        if not header.get("ok"):
            _stop_all(self._procs)
            raise _model_error(header, during)
        return header

    def _exchange(self, proc: subprocess.Popen, payload: bytes, during: str) -> tuple[dict[str, Any], bytes]:
        """Send one request and read its reply within the time limit; a dead or timed-out host is
        stopped and reported as a ModelCallError."""
        deadline = time.monotonic() + self.timeout_s
        assert proc.stdin is not None and proc.stdout is not None  # hosts are started with both pipes
        try:
            _write_all(proc.stdin.fileno(), _HEADER.pack(len(payload)) + payload, deadline)
            fd = proc.stdout.fileno()
            header = json.loads(_read_frame(fd, deadline).decode("utf-8"))
            body = _read_frame(fd, deadline) if header.get("ok") and header.get("array") else b""
            return header, body
        except TimeoutError:
            _stop_all(self._procs)
            raise ModelCallError(f"the model call timed out after {self.timeout_s:g} s {during} "
                                 "(the model process was stopped; [model] timeout_s sets the limit)",
                                 original="timeout") from None
        except (EOFError, OSError):
            code = _reap(proc)
            _stop_all(self._procs)
            raise ModelCallError(f"the model process {_describe_exit(code)} {during}", original="exit") from None
        except ValueError:  # not our protocol: something in the host wrote into the channel
            _stop_all(self._procs)
            raise ModelCallError(f"the model process sent an unreadable reply {during} (it was stopped)",
                                 original="protocol") from None


def _model_error(header: dict[str, Any], during: str) -> Exception:
    """The exception a model raised in the host, rebuilt in this process without unpickling:
    a built-in exception type as itself, anything else as a ModelCallError naming it."""
    name = str(header.get("type") or "Exception")
    message = str(header.get("message") or "")
    if header.get("module") == "builtins" and name in _BUILTIN_ERRORS:
        try:
            return _BUILTIN_ERRORS[name](*header.get("args", [message]))
        except Exception:  # noqa: BLE001 - an exception type with special arguments
            pass
    if name == "ModelCallError":
        return ModelCallError(message, original=str(header.get("original") or ""))
    if header.get("base"):
        return ModelCallError(f"model code raised {message or name} {during}", original=name)
    return ModelCallError(f"{name}: {message}" if message else name, original=name)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            sig = signal.Signals(-code).name
        except ValueError:
            sig = str(-code)
        return f"was killed by signal {sig}"
    return f"exited with code {code}"


def _reap(proc: subprocess.Popen) -> int | None:
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return None


def _stop_all(procs: list[subprocess.Popen]) -> None:
    """Stop every host in the list (kill: a host may be stuck in model code) and forget them."""
    while procs:
        proc = procs.pop()
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        for f in (proc.stdin, proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass


def _threads() -> str:
    try:
        return str(max(1, int(os.environ.get("AUDITOR_THREADS", "1"))))
    except ValueError:
        return "1"


# ---- framing ---------------------------------------------------------------------------------------
def _write_all(fd: int, data: bytes, deadline: float | None) -> None:
    view = memoryview(data)
    while view:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            _, ready, _ = select.select([], [fd], [], remaining)
            if not ready:
                raise TimeoutError
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise TimeoutError
        try:
            chunk = os.read(fd, min(n, 1 << 20))
        except BlockingIOError:
            continue
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int, deadline: float | None) -> bytes:
    (n,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return _read_exact(fd, n, deadline)


def _send(fd: int, header: dict[str, Any], body: bytes | None = None) -> None:
    data = json.dumps(header, default=str).encode("utf-8")
    _write_all(fd, _HEADER.pack(len(data)) + data, None)
    if body is not None:
        _write_all(fd, _HEADER.pack(len(body)) + body, None)


# ---- the host process ------------------------------------------------------------------------------
def _serve() -> None:
    """The host's main loop: load the model, then answer one batched call at a time until the
    parent closes the pipe. Model output never reaches the protocol's stdout."""
    rfd, wfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # the model's prints go where stderr goes (nowhere), not into the protocol
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the auditor's to handle
    _die_with_parent()
    import warnings

    warnings.simplefilter("ignore")
    adapter = None
    while True:
        try:
            request = pickle.loads(_read_frame(rfd, None))
        except (EOFError, OSError):
            os._exit(0)
        op = request.get("op")
        if op == "load":
            adapter = _load(request, wfd)
            continue
        try:
            X = request["X"]
            out = np.asarray(getattr(adapter, op)(X))
            if out.dtype == object:
                try:
                    out = out.astype(float)
                except (TypeError, ValueError):
                    out = out.astype(str)
            buf = io.BytesIO()
            np.save(buf, out, allow_pickle=False)
            reply, body = {"ok": True, "array": True}, buf.getvalue()
        except BaseException as exc:  # noqa: BLE001 - everything, KeyboardInterrupt included, is model code here
            reply, body = _error_reply(exc), None
        _send(wfd, reply, body)


def _load(request: dict[str, Any], wfd: int) -> Any:
    sys.path[:] = list(request.get("sys_path") or sys.path)
    with contextlib.suppress(OSError):
        os.chdir(request.get("cwd") or os.getcwd())
    try:
        from .inputs import load_model

        loaded = load_model(request["spec"], trusted=True)
        adapter = loaded.adapter
        classes = adapter.classes
        names = adapter.feature_names()
        meta = {"ok": True, "kind": adapter.kind, "has_proba": bool(adapter.has_proba()),
                "classes": None if classes is None else [_plain(c) for c in classes],
                "feature_names": None if names is None else [str(n) for n in names],
                "sha256": loaded.sha256}
        _threadpool_limits()
    except AuditInputError as exc:
        meta = {"ok": False, "input_error": str(exc)}
        adapter = None
    except BaseException as exc:  # noqa: BLE001 - model code at load time
        from .inputs import _load_failure

        meta = {"ok": False, "input_error": _load_failure(exc, request["spec"])}
        adapter = None
    _send(wfd, meta)
    return adapter


def _error_reply(exc: BaseException) -> dict[str, Any]:
    from .model import describe_base_exception

    args: list[Any] = []
    for a in exc.args:
        if isinstance(a, (str, int, float, bool)) or a is None:
            args.append(a)
        else:
            args = [str(exc)]
            break
    base = not isinstance(exc, Exception)
    return {"ok": False, "type": type(exc).__name__, "module": type(exc).__module__, "args": args,
            "message": describe_base_exception(exc) if base else str(exc), "base": base,
            "original": getattr(exc, "original", "")}


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _threadpool_limits() -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=int(_threads()))
    except Exception:  # noqa: BLE001 - optional
        pass


def _die_with_parent() -> None:
    """Linux: the host is killed when the auditor dies, even while stuck in model code."""
    if os.environ.get("AUDITOR_HOST_PDEATHSIG") != "1":
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the host still ends when its pipe closes
        pass
    parent = os.environ.get("AUDITOR_HOST_PARENT")
    if parent and parent.isdigit() and os.getppid() != int(parent):
        os._exit(0)  # the auditor ended before the signal was armed
