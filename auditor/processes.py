"""Forked helper processes on this machine: whether they are available, and what a forked process
must make its own first. Used by the check workers (``auditor.parallel``), the remedies and the
figure drawing; it imports nothing of auditor, so every layer may use it."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys


def fork_available() -> bool:
    """Forked processes share the audit's memory copy-on-write. Only on Linux: macOS's system libraries
    are not safe to use after a fork, and Windows has none; elsewhere the work stays in this process."""
    import multiprocessing

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def die_with_parent() -> None:
    """Linux: this process is killed when the audit process dies, even in the middle of its work."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the process still ends when its pipe closes
        pass


def quiet_child() -> None:
    """In a freshly forked process: Ctrl-C is the parent's (it stops the children), it dies with the
    parent, and its standard streams are new objects with new locks (another thread of the parent,
    e.g. the progress display, may have held the old ones at the fork)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    die_with_parent()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the process's streams for its lifetime
    sys.stdout = sys.stderr = devnull
    sys.stdin = io.StringIO()


def exit_now(code: int) -> None:
    """End this process with ``code`` without freeing its heap object by object.

    For the console script, once the report is written and every file and pool is closed: the
    interpreter's own shutdown frees the audit's data, model and modules one object at a time, which
    takes about a second on a large audit and gives the user nothing. The exit handlers still run
    (temporary folders, multiprocessing's clean-up) and the standard streams are flushed first.
    Never call it where the caller goes on (tests, an embedding program): it does not return."""
    import atexit
    import logging

    try:
        atexit._run_exitfuncs()
        logging.shutdown()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed or broken stream: nothing left to flush
                stream.flush()
        os._exit(code)
