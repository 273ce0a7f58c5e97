"""The output folder of one run: checked and locked before the audit, written beside itself, swapped in whole.

Reports hold personal data (the worst rows with their ids), so they are private by default: files
``0600``, the report folder ``0700``; ``shared=True`` widens them to ``0644``/``0755``.

While a run is going, everything it writes is in the output's parent folder (so on the same
filesystem, and the final move is a rename, never a copy across devices)::

    <parent>/.auditor-lock-<name>         the lock (``fcntl.flock``), held for the whole run, removed at the end
    <parent>/.auditor-<name>-XXXXXXXX/    the run's scratch folder (0700), removed at the end
        report/                          the new report; renamed to <parent>/<name> once complete
        home/                            matplotlib's, the XDG and ART's config/cache folders for the run
        old/                             a replaced (``--force``) older report, deleted with the scratch folder

On any failure before the final rename nothing is left: not the scratch folder, not the lock file,
not the parent folders the run created, and an older report being replaced is untouched.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import importlib.abc
import importlib.machinery
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .render import FILENAMES

LOCK_PREFIX = ".auditor-lock-"
SCRATCH_PREFIX = ".auditor-"
REPORT_FILES = frozenset({*FILENAMES.values(), "remediation"})  # remediation/: the remedies' files


@dataclass(frozen=True)
class Permissions:
    """Modes of the report's files and folder."""

    file: int
    folder: int


PRIVATE = Permissions(file=0o600, folder=0o700)
SHARED = Permissions(file=0o644, folder=0o755)


class OutputError(Exception):
    """The output folder cannot be used or written (exit 2): one line naming the folder and the reason."""


class OutputLocked(OutputError):
    """Another run holds the lock on this output folder."""


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class RunFolder:
    """One run's output folder: ``open`` (checks, lock, scratch), ``commit`` (swap in), ``close`` (clean up).

    ``replace`` allows an existing non-empty folder, which is replaced whole, and only when it holds
    nothing but report files (a folder with anything else is never deleted).
    """

    def __init__(self, final: str | Path, *, replace: bool = False, shared: bool = False) -> None:
        self.final = Path(os.path.abspath(Path(final).expanduser()))
        self.replace = replace
        self.permissions = SHARED if shared else PRIVATE
        self._created: list[Path] = []  # parent folders this run made, deepest last
        self._lock_fd: int | None = None
        self._lock_path: Path | None = None
        self._scratch: Path | None = None
        self.committed = False

    # ---- paths ----------------------------------------------------------------------------------
    @property
    def parent(self) -> Path:
        return self.final.parent

    @property
    def stage(self) -> Path:
        """Where the report files are written before the swap."""
        if self._scratch is None:
            raise RuntimeError("RunFolder.open() first")
        return self._scratch / "report"

    @property
    def home(self) -> Path:
        """A private folder for libraries' config and cache files during the run."""
        if self._scratch is None:
            raise RuntimeError("RunFolder.open() first")
        return self._scratch / "home"

    @property
    def lock_path(self) -> Path:
        return self.parent / lock_name(self.final.name)

    # ---- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> RunFolder:
        if self._scratch is None:
            self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> RunFolder:
        """Check the target, take the lock and create the scratch folder; ``OutputError`` when it cannot."""
        if self.final == self.parent:
            raise OutputError(f"cannot use {self.final} as the output folder")
        try:
            self._make_parents()
            self._check_target()
            self._lock()
            self._check_target()  # again under the lock: another run may have finished in between
            self._make_scratch()
        except BaseException as exc:
            self.close()
            if isinstance(exc, OSError):
                raise OutputError(f"output folder {self.final} is not writable: {_reason(exc)}") from None
            raise
        return self

    def commit(self) -> Path:
        """Set the permissions and move the staged report into place; an older report is replaced whole."""
        stage = self.stage
        try:
            with _signals_blocked():  # an old report is never left half-replaced by Ctrl-C or SIGTERM
                for p in stage.rglob("*"):
                    os.chmod(p, self.permissions.folder if p.is_dir() else self.permissions.file)
                os.chmod(stage, self.permissions.folder)
                self._swap(stage)
                self.committed = True
        except OSError as exc:
            raise OutputError(f"cannot write the report to {self.final}: {_reason(exc)}") from None
        return self.final

    def close(self) -> None:
        """Remove the scratch folder (and an older report moved aside), release and remove the lock."""
        with _signals_blocked():  # a signal arriving now is delivered once the cleanup is done
            self._close()

    def _close(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        if self._lock_fd is not None:
            try:
                if self._lock_path is not None:
                    self._lock_path.unlink(missing_ok=True)  # unlinked while held: see _lock for the race
            except OSError:
                pass
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        if not self.committed:
            for folder in reversed(self._created):
                try:
                    folder.rmdir()
                except OSError:
                    break
            self._created = []

    # ---- steps ----------------------------------------------------------------------------------
    def _make_parents(self) -> None:
        missing = []
        p = self.parent
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        if p.exists() and not p.is_dir():
            raise OutputError(f"output folder {self.final} cannot be created: {p} is not a folder")
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:  # made by a run started at the same time: not ours to remove
                continue
            self._created.append(folder)

    def _check_target(self) -> None:
        final = self.final
        if final.is_symlink() and not final.exists():
            raise OutputError(f"output folder {final} is a dangling link")
        if not final.exists():
            return
        if not final.is_dir():
            raise OutputError(f"output folder {final} exists and is not a folder")
        entries = sorted(p.name for p in final.iterdir())
        if not entries:
            return
        if not self.replace:
            raise OutputError(f"output folder {final} is not empty; an audit report is never overwritten "
                              "silently (use --force to replace it)")
        foreign = [name for name in entries if name not in REPORT_FILES]
        if foreign:
            shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
            raise OutputError(f"output folder {final} holds files that are not an audit report ({shown}); "
                              "--force replaces only a previous report folder and never deletes anything else")

    def _lock(self) -> None:
        path = self.lock_path
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputLocked(f"output folder {self.final} is in use by another audit run "
                                   f"(lock {path} is held)") from None
            except BaseException:
                os.close(fd)
                raise
            # the holder unlinks the lock file before releasing it: a lock taken on an unlinked file
            # is stale, so take it again on the file now at that path
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._lock_fd, self._lock_path = fd, path
                return
            os.close(fd)

    def _make_scratch(self) -> None:
        name = self.final.name[:100]
        scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{name}-", dir=self.parent))  # mode 0700
        self._scratch = scratch
        (scratch / "report").mkdir(mode=0o700)
        (scratch / "home").mkdir(mode=0o700)
        probe = scratch / "report" / ".probe"
        with open(probe, "wb") as fh:  # the location takes a file, not only a folder
            fh.write(b"auditor")
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()

    def _swap(self, stage: Path) -> None:
        final = self.final
        try:
            os.rename(stage, final)  # final missing, or an empty folder: replaced in one step
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if not self.replace:
            raise OutputError(f"output folder {final} is no longer empty; the new report was not moved in")
        self._check_target()  # still a previous report only
        if _exchange(stage, final):  # one atomic step where the OS has it (Linux renameat2)
            return  # the old report is now at `stage`, inside the scratch folder
        assert self._scratch is not None
        aside = self._scratch / "old"
        os.rename(final, aside)
        try:
            os.rename(stage, final)
        except BaseException:
            os.rename(aside, final)
            raise


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block ends (they are delivered then, not lost)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def lock_name(name: str) -> str:
    """The lock file's name for an output folder called ``name`` (hashed when too long for a file name)."""
    if len(name) > 180:
        name = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()
    return LOCK_PREFIX + name


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False when the OS cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


# ---- libraries' own files ---------------------------------------------------------------------------

_CACHE_VARS = ("MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "TMPDIR")


class _HomeLoader(importlib.abc.Loader):
    """Runs a module with ``HOME`` pointed at ``home`` (ART's config module writes to ``~/.art`` on import)."""

    def __init__(self, inner: importlib.abc.Loader, home: Path) -> None:
        self.inner = inner
        self.home = home

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        old = os.environ.get("HOME")
        os.environ["HOME"] = str(self.home)
        try:
            self.inner.exec_module(module)
        finally:
            if old is None:
                os.environ.pop("HOME", None)
            else:
                os.environ["HOME"] = old


class _ArtConfigFinder(importlib.abc.MetaPathFinder):
    """Finds ``art.config`` as usual and wraps its loader so its ``~`` is the run's private home."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name != "art.config":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _HomeLoader(spec.loader, self.home)
        return spec


@contextmanager
def private_library_files(home: str | Path) -> Iterator[None]:
    """For the run, point matplotlib's config/cache, the XDG folders, ART's ``~/.art`` and the temporary
    folder (``TMPDIR``) at ``home``, and write no bytecode cache beside imported model modules.

    Must be entered before those libraries are first imported (they read the location once). It also
    keeps a user's ``matplotlibrc`` from changing the report's figures. Environment variables are
    inherited by worker processes started inside the block.
    """
    home = Path(home)
    (home / "tmp").mkdir(mode=0o700, exist_ok=True)
    saved = {k: os.environ.get(k) for k in _CACHE_VARS}
    saved_tempdir, saved_bytecode = tempfile.tempdir, sys.dont_write_bytecode
    os.environ.update({"MPLCONFIGDIR": str(home / "matplotlib"), "XDG_CACHE_HOME": str(home / "cache"),
                       "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
                       "TMPDIR": str(home / "tmp")})
    tempfile.tempdir = str(home / "tmp")
    sys.dont_write_bytecode = True  # a Python-object model's module gets no __pycache__ beside it
    finder = _ArtConfigFinder(home)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        tempfile.tempdir, sys.dont_write_bytecode = saved_tempdir, saved_bytecode
        with suppress(ValueError):
            sys.meta_path.remove(finder)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


__all__ = ["OutputError", "OutputLocked", "PRIVATE", "Permissions", "RunFolder", "SHARED", "lock_name",
           "private_library_files"]
