"""Loading model and data files, their hashes, and the trust rules for code-executing formats."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import AuditInputError
from .model import ModelAdapter, OnnxModel, PythonModel

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class LoadedTable:
    path: str
    sha256: str
    frame: pd.DataFrame


def load_table(path: str, *, role: str) -> LoadedTable:
    """Read a CSV or Parquet file. Raises AuditInputError naming the file on any problem."""
    p = Path(path)
    if not p.is_file():
        raise AuditInputError(f"{role} data file not found: {p}")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        elif suffix in (".csv", ".txt", ".gz"):
            _refuse_duplicate_header(p, role)
            frame = pd.read_csv(p)
        else:
            raise AuditInputError(f"{role} data file {p.name}: unsupported format '{suffix}' (use .csv or .parquet)")
    except AuditInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad input
        raise AuditInputError(f"{role} data file {p} could not be read: {str(exc).splitlines()[0]}") from None
    if frame.shape[1] == 0:
        raise AuditInputError(f"{role} data file {p} has no columns")
    frame.columns = [str(c) for c in frame.columns]
    dupes = frame.columns[frame.columns.duplicated()].tolist()
    if dupes:
        raise AuditInputError(f"{role} data file {p} has duplicated column names: {', '.join(dupes)}")
    return LoadedTable(path=str(p), sha256=sha256_file(p), frame=frame)


def _refuse_duplicate_header(path: Path, role: str) -> None:
    """pandas renames a repeated CSV column ``x`` to ``x.1`` and the audit would silently use the
    first copy: read the header row as it is written and refuse repeated names."""
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    names = [str(v) for v in header.iloc[0].tolist()] if len(header) else []
    seen: set[str] = set()
    dupes: list[str] = []
    for name in names:
        if name == "":  # blank header cells become "Unnamed: i" and are never model inputs
            continue
        if name in seen and name not in dupes:
            dupes.append(name)
        seen.add(name)
    if dupes:
        shown = ", ".join(f"'{d}'" for d in dupes[:5]) + (f" and {len(dupes) - 5} more" if len(dupes) > 5 else "")
        raise AuditInputError(f"{role} data file {path} has repeated column names in its header: {shown}; "
                              "each column needs a unique name")


@dataclass(frozen=True)
class LoadedModel:
    path: str  # as given (file path or module:NAME)
    sha256: str  # of the model file, or of the Python source file
    adapter: ModelAdapter


def _object_spec(spec: str) -> tuple[str, str] | None:
    """Split ``file.py:NAME`` or ``package.module:NAME``; None for a plain file path."""
    if ":" not in spec:
        return None
    left, _, name = spec.rpartition(":")
    if not name.isidentifier():
        return None
    if left.endswith(".py") or ("/" not in left and "\\" not in left):
        return left, name
    return None


def load_model(spec: str, *, trusted: bool) -> LoadedModel:
    """Load a model per the contract's model sources and trust rules."""
    obj_spec = _object_spec(spec)
    if obj_spec is not None:
        return _load_python_object(*obj_spec, spec=spec, trusted=trusted)
    p = Path(spec)
    if not p.is_file():
        raise AuditInputError(f"model file not found: {p}")
    suffix = p.suffix.lower()
    digest = sha256_file(p)
    if suffix == ".skops":
        return LoadedModel(spec, digest, PythonModel(_load_skops(p, trusted=trusted)))
    if suffix in PICKLE_SUFFIXES:
        if not trusted:
            raise AuditInputError(
                f"model file {p.name} is pickle-based and can run code when loaded; "
                "set [model] trusted = true only if you trust its source, or save it with skops")
        try:
            import joblib

            obj = joblib.load(p)
        except Exception as exc:  # noqa: BLE001
            raise AuditInputError(f"model file {p} could not be loaded: {str(exc).splitlines()[0]}") from None
        return LoadedModel(spec, digest, PythonModel(obj))
    if suffix == ".onnx":
        try:
            adapter = OnnxModel(str(p))
        except Exception as exc:  # noqa: BLE001
            raise AuditInputError(f"model file {p} is not a loadable ONNX model: {str(exc).splitlines()[0]}") from None
        return LoadedModel(spec, digest, adapter)
    raise AuditInputError(
        f"model file {p.name}: unsupported format '{suffix}' "
        "(use .skops, .onnx, .joblib/.pkl with trusted = true, or file.py:NAME)")


# Beyond skops' own defaults, auditor trusts scikit-learn's own classes (skops rebuilds them from
# data without running their code paths for pickling) and OrderedDict. Anything else, such as
# LightGBM or XGBoost boosters or a user's own class, needs [model] trusted = true.
_TRUSTED_PREFIXES = ("sklearn.",)
_TRUSTED_TYPES = frozenset({"collections.OrderedDict"})


def _auditor_trusts(type_name: str) -> bool:
    return type_name in _TRUSTED_TYPES or type_name.startswith(_TRUSTED_PREFIXES)


def _load_skops(path: Path, *, trusted: bool) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001
        raise AuditInputError(f"model file {path} is not a valid skops file: {str(exc).splitlines()[0]}") from None
    unknown = [t for t in untrusted if not _auditor_trusts(t)]
    if unknown and not trusted:
        shown = ", ".join(unknown[:4]) + (f" and {len(unknown) - 4} more" if len(unknown) > 4 else "")
        raise AuditInputError(
            f"model file {path.name} contains types skops does not trust by default ({shown}); "
            "review them and set [model] trusted = true to load it")
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:  # noqa: BLE001
        raise AuditInputError(f"model file {path} could not be loaded: {str(exc).splitlines()[0]}") from None


def _load_python_object(left: str, name: str, *, spec: str, trusted: bool) -> LoadedModel:
    if not trusted:
        raise AuditInputError(
            f"model '{spec}' is Python code and runs when imported; set [model] trusted = true to load it")
    try:
        if left.endswith(".py"):
            src = Path(left)
            if not src.is_file():
                raise AuditInputError(f"model source file not found: {src}")
            digest = sha256_file(src)
            mod_name = f"_auditor_model_{hashlib.sha1(str(src).encode()).hexdigest()[:8]}"
            mod_spec = importlib.util.spec_from_file_location(mod_name, src)
            if mod_spec is None or mod_spec.loader is None:
                raise AuditInputError(f"model source file {src} cannot be imported")
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[mod_name] = module
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(left)
            src_file = getattr(module, "__file__", None)
            digest = sha256_file(src_file) if src_file else hashlib.sha256(left.encode()).hexdigest()
    except AuditInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - importing user code may raise anything
        raise AuditInputError(f"model '{spec}' could not be imported: {type(exc).__name__}: {exc}") from None
    if not hasattr(module, name):
        raise AuditInputError(f"model '{spec}': '{name}' is not defined in {left}")
    obj = getattr(module, name)
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "predict")):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001
            raise AuditInputError(f"model '{spec}': calling {name}() failed: {type(exc).__name__}: {exc}") from None
    if not callable(getattr(obj, "predict", None)):
        raise AuditInputError(f"model '{spec}' has no predict method")
    return LoadedModel(spec, digest, PythonModel(obj, kind=f"python:{type(obj).__qualname__}"))
