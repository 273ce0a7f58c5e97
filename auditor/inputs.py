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
    parts: tuple[str, ...] = ()  # a Parquet dataset directory: its part files, in the order of the rows


PARQUET_SUFFIXES = (".parquet", ".pq")


def dataset_parts(folder: Path, role: str) -> tuple[str, ...]:
    """The part files of a Parquet dataset directory, sorted by name: the ``*.parquet`` (``*.pq``)
    files directly inside it. Hive-style subfolders (``year=2024/part-0.parquet``) are refused: their
    partition values live in folder names, not in the files the workers score."""
    parts = sorted(str(f) for f in folder.iterdir() if f.is_file() and f.suffix.lower() in PARQUET_SUFFIXES)
    nested = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))
    if nested:
        raise AuditInputError(f"{role} data directory {folder} has subfolders ({', '.join(nested[:3])}); "
                              "a Parquet dataset directory must hold its part files directly")
    if not parts:
        raise AuditInputError(f"{role} data directory {folder} holds no .parquet files")
    return tuple(parts)


def sha256_dataset(parts: tuple[str, ...]) -> str:
    """A dataset directory's digest: SHA-256 over each part's file name and SHA-256, in order."""
    h = hashlib.sha256()
    for part in parts:
        h.update(f"{Path(part).name}\0{sha256_file(part)}\n".encode())
    return h.hexdigest()


def read_parts(parts: tuple[str, ...], columns: list[str] | None = None) -> pd.DataFrame:
    """The rows of a dataset's part files, in order, with a fresh 0..n-1 index."""
    frames = [pd.read_parquet(part, columns=columns) for part in parts]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)


def load_table(path: str, *, role: str) -> LoadedTable:
    """Read a CSV or Parquet file, or a directory of Parquet part files (a dataset). Raises
    AuditInputError naming the file on any problem."""
    p = Path(path)
    parts: tuple[str, ...] = ()
    if p.is_dir():
        parts = dataset_parts(p, role)
    elif not p.is_file():
        raise AuditInputError(f"{role} data file not found: {p}")
    suffix = p.suffix.lower()
    try:
        if parts:
            frame = read_parts(parts)
        elif suffix in PARQUET_SUFFIXES:
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
    digest = sha256_dataset(parts) if parts else sha256_file(p)
    return LoadedTable(path=str(p), sha256=digest, frame=frame, parts=parts)


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


def load_model(spec: str, *, trusted: bool, timeout_s: float | None = None) -> LoadedModel:
    """Load a model per the contract's model sources and trust rules.

    With ``timeout_s``, a model whose own code runs (a Python object, a trusted pickle) is loaded
    and called in a model-host process (``auditor.modelhost``) with that limit per call, so its
    ``sys.exit``, ``os._exit``, crash or hang cannot end the audit; without it, in this process.
    """
    obj_spec = _object_spec(spec)
    if obj_spec is not None:
        if timeout_s is not None and trusted:
            return _hosted(spec, timeout_s)
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
        if timeout_s is not None:
            return _hosted(spec, timeout_s)
        try:
            import joblib

            obj = joblib.load(p)
        except Exception as exc:  # noqa: BLE001
            first = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AuditInputError(f"model file {p} could not be loaded: {first}") from None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - unpickling runs code: SystemExit and the like
            raise AuditInputError(_load_failure(exc, spec)) from None
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


# skops trust policy. An untrusted .skops file loads only if every type it names is trusted by
# skops' own defaults (primitives, containers, numpy dtypes/ufuncs, scipy ufuncs, scikit-learn's
# public estimator classes, a few loss/binning internals) or is on the reviewed list of helper
# *classes* below. Functions are never trusted by name: a FunctionTransformer's ``func`` or a
# ``score_func`` that skops does not trust (e.g. ``sklearn.datasets.dump_svmlight_file``, which
# writes a file when called) makes the file need ``[model] trusted = true``. Anything else (LightGBM
# or XGBoost boosters, KDTree/BallTree, a user's own class) needs it too.
_TRUSTED_CLASSES: frozenset[str] = frozenset({
    "builtins.slice",  # ColumnTransformer column selections
    "collections.OrderedDict",
    "numpy.dtype",  # dtype attributes of fitted encoders and imputers
    "sklearn.utils._bunch.Bunch",  # named_estimators_ of Voting/Stacking models (a dict)
    "sklearn.compose._column_transformer.make_column_selector",  # selects columns by dtype/regex
    "sklearn.calibration._CalibratedClassifier",  # CalibratedClassifierCV's fitted parts
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",  # MLP fit state, unused in predict
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.model_selection._split.KFold",  # cv splitters kept by *CV estimators, unused in predict
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.model_selection._split.RepeatedKFold",
    "sklearn.model_selection._split.RepeatedStratifiedKFold",
    "sklearn.model_selection._split.ShuffleSplit",
    "sklearn.model_selection._split.StratifiedShuffleSplit",
    "sklearn.model_selection._split.TimeSeriesSplit",
    "sklearn.metrics._scorer._PassthroughScorer",  # GridSearchCV's default scorer (calls .score)
})

# Tree containers whose node arrays scikit-learn's compiled code walks without bounds checks
# (skops refuses them for that reason: a crafted child index reads outside the array and crashes
# the interpreter). Tree, forest, gradient-boosting and HistGradientBoosting models need them, so
# auditor accepts them in an untrusted file only after checking every instance itself (see
# _check_tree_structures): each is a proper binary tree (children after their parent and inside the
# array, every node reached once), feature and bitset indices are in range, and the estimator that
# walks it has matching shapes. A file failing the check is refused.
_TREE = "sklearn.tree._tree.Tree"
_TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
_CHECKED_TREE_TYPES: frozenset[str] = frozenset({_TREE, _TREE_PREDICTOR})


def _auditor_trusts(type_name: str) -> bool:
    """Whether an untrusted skops file may name this type (beyond skops' own defaults)."""
    return type_name in _TRUSTED_CLASSES or type_name in _CHECKED_TREE_TYPES


def _shown(types: list[str]) -> str:
    return ", ".join(types[:6]) + (f" and {len(types) - 6} more" if len(types) > 6 else "")


def _load_skops(path: Path, *, trusted: bool) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001
        raise AuditInputError(f"model file {path} is not a valid skops file: {str(exc).splitlines()[0]}") from None
    unknown = [t for t in untrusted if not _auditor_trusts(t)]
    if unknown and not trusted:
        raise AuditInputError(
            f"model file {path.name} contains types auditor does not trust: {_shown(unknown)}; "
            "set [model] trusted = true only if you trust the file's author")
    try:
        model = sio.load(path, trusted=untrusted)
    except Exception as exc:  # noqa: BLE001
        raise AuditInputError(f"model file {path} could not be loaded: {str(exc).splitlines()[0]}") from None
    if not trusted and any(t in _CHECKED_TREE_TYPES for t in untrusted):
        problem = _check_tree_structures(model)
        if problem is not None:
            raise AuditInputError(
                f"model file {path.name} fails auditor's tree bounds check ({problem}); it was refused "
                "because predicting with it could crash the interpreter; set [model] trusted = true "
                "only if you trust the file's author")
    return model


def _walk_objects(root: Any) -> list[Any]:
    """Every object reachable from a loaded model through attributes and containers (no code run)."""
    import numpy as np

    seen: set[int] = set()
    out: list[Any] = []
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
            continue
        seen.add(id(obj))
        out.append(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
        else:
            state = getattr(obj, "__dict__", None)
            if isinstance(state, dict):
                stack.extend(state.values())
    return out


def _tree_order_problem(left: Any, right: Any, internal: Any) -> str | None:
    """A proper binary tree rooted at 0: children after their parent, in range, each node once."""
    import numpy as np

    n = len(internal)
    idx = np.arange(n)
    lc, rc = left[internal].astype(np.int64), right[internal].astype(np.int64)
    parents = idx[internal]
    if np.any(lc <= parents) or np.any(rc <= parents) or np.any(lc >= n) or np.any(rc >= n):
        return "a child index is out of range or not after its parent"
    children = np.sort(np.concatenate([lc, rc]))
    if not np.array_equal(children, np.arange(1, n)):
        return "nodes are shared or unreachable"
    return None


def _check_sklearn_tree(tree: Any, n_features: int) -> str | None:
    """Check one sklearn.tree._tree.Tree against the number of input columns its owner validates."""
    import numpy as np

    count, capacity = int(tree.node_count), int(tree.capacity)
    if count < 1 or count > capacity:
        return f"Tree node_count {count} outside its {capacity} stored nodes"
    if int(tree.n_features) != n_features:
        return f"Tree has {tree.n_features} features, its estimator {n_features}"
    left, right, feature = (np.asarray(a) for a in (tree.children_left, tree.children_right, tree.feature))
    internal = left != -1
    if np.any(right[~internal] != -1):
        return "Tree leaf with a right child"
    problem = _tree_order_problem(left, right, internal)
    if problem is not None:
        return f"Tree: {problem}"
    f = feature[internal]
    if np.any(f < 0) or np.any(f >= n_features):
        return "Tree feature index out of range"
    return None


def _check_tree_predictor(pred: Any, n_features: int, is_categorical: Any) -> str | None:
    """Check one HistGradientBoosting TreePredictor against its estimator's features and bin mapper."""
    import numpy as np
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    if set(vars(pred)) != {"nodes", "binned_left_cat_bitsets", "raw_left_cat_bitsets"}:
        return "TreePredictor with unexpected attributes"
    nodes = pred.nodes
    if not isinstance(nodes, np.ndarray) or nodes.ndim != 1 or nodes.dtype != PREDICTOR_RECORD_DTYPE or nodes.size < 1:
        return "TreePredictor nodes of the wrong type or shape"
    for bits in (pred.binned_left_cat_bitsets, pred.raw_left_cat_bitsets):
        if not isinstance(bits, np.ndarray) or bits.ndim != 2 or bits.shape[1] != 8 or bits.dtype != np.uint32:
            return "TreePredictor category bitsets of the wrong type or shape"
    internal = nodes["is_leaf"] == 0
    problem = _tree_order_problem(nodes["left"], nodes["right"], internal)
    if problem is not None:
        return f"TreePredictor: {problem}"
    f = nodes["feature_idx"][internal]
    if np.any(f < 0) or np.any(f >= n_features):
        return "TreePredictor feature index out of range"
    cat = internal & (nodes["is_categorical"] != 0)
    if np.any(cat):
        cat_f = nodes["feature_idx"][cat]
        if is_categorical is None or not np.all(np.asarray(is_categorical, dtype=bool)[cat_f]):
            return "TreePredictor categorical split on a non-categorical feature"
        if np.any(nodes["bitset_idx"][cat] >= pred.raw_left_cat_bitsets.shape[0]):
            return "TreePredictor category bitset index out of range"
    return None


def _gb_init_columns(gb: Any) -> int | None:
    """Columns of GradientBoosting's initial raw predictions, when its init is a known shape."""
    import numpy as np
    from sklearn.dummy import DummyClassifier, DummyRegressor

    init = gb.init_
    if isinstance(init, str) and init == "zero":
        return int(gb.n_trees_per_iteration_)
    if type(init) is DummyClassifier and getattr(init, "n_outputs_", None) == 1:
        n = len(np.atleast_1d(init.class_prior_))
        return 1 if n == 2 else n
    if type(init) is DummyRegressor and getattr(init, "n_outputs_", None) == 1:
        return 1
    return None


def _check_tree_structures(model: Any) -> str | None:
    """Bounds-check every Tree and TreePredictor reachable from an untrusted model; None when sound.

    Each must be owned by the estimator that walks it (a decision tree, or a HistGradientBoosting
    model's predictors), so its indices can be checked against the columns that estimator validates.
    """
    import numpy as np
    from sklearn.ensemble import IsolationForest
    from sklearn.ensemble._forest import BaseForest
    from sklearn.ensemble._gb import BaseGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree import BaseDecisionTree
    from sklearn.tree._tree import Tree

    objects = _walk_objects(model)
    checked: set[int] = set()
    for obj in objects:
        if isinstance(obj, BaseDecisionTree) and isinstance(getattr(obj, "tree_", None), Tree):
            problem = _check_sklearn_tree(obj.tree_, int(getattr(obj, "n_features_in_", -1)))
            if problem is not None:
                return problem
            checked.add(id(obj.tree_))
        elif isinstance(obj, BaseHistGradientBoosting) and hasattr(obj, "_predictors"):
            if getattr(obj, "_preprocessor", None) is not None:
                return "HistGradientBoosting with a stored input preprocessor"
            mapper = getattr(obj, "_bin_mapper", None)
            is_cat = getattr(mapper, "is_categorical_", None)
            n_features = int(getattr(obj, "n_features_in_", -1))
            if is_cat is not None and np.asarray(is_cat).size != n_features:
                return "HistGradientBoosting bin mapper does not match its features"
            for per_iteration in obj._predictors:
                for pred in per_iteration:
                    if not isinstance(pred, TreePredictor):
                        return "HistGradientBoosting predictor of the wrong type"
                    problem = _check_tree_predictor(pred, n_features, is_cat)
                    if problem is not None:
                        return problem
                    checked.add(id(pred))
        if isinstance(obj, (BaseForest, BaseGradientBoosting)) and hasattr(obj, "estimators_"):
            # These walk their trees' arrays with input validated only by the ensemble (forests pass
            # check_input=False; gradient boosting validates with estimators_[0, 0] and writes each
            # tree's output into column k of its initial predictions).
            subs = np.asarray(obj.estimators_, dtype=object)
            flat = subs.ravel().tolist()
            if not flat or any(not isinstance(s, BaseDecisionTree) for s in flat):
                return f"{type(obj).__name__} with estimators that are not trees"
            widths = {getattr(s, "n_features_in_", None) for s in flat}
            if widths != {getattr(obj, "n_features_in_", None)}:
                return f"{type(obj).__name__} trees do not match its features"
            if isinstance(obj, BaseGradientBoosting):
                if subs.ndim != 2 or subs.shape[1] != int(obj.n_trees_per_iteration_):
                    return "GradientBoosting estimators of the wrong shape"
                if _gb_init_columns(obj) != subs.shape[1]:
                    return "GradientBoosting init estimator of an unexpected kind or shape"
        if isinstance(obj, IsolationForest) and hasattr(obj, "estimators_"):
            # IsolationForest applies each tree to X[:, features] without checking the width.
            feats = getattr(obj, "estimators_features_", None)
            if feats is None or len(feats) != len(obj.estimators_) or any(
                    len(np.atleast_1d(f)) != getattr(t, "n_features_in_", None)
                    for t, f in zip(obj.estimators_, feats)):
                return "IsolationForest feature subsets do not match its trees"
        # Bagging and AdaBoost call each tree's own predict, which validates its input width.
    for obj in objects:
        if isinstance(obj, (Tree, TreePredictor)) and id(obj) not in checked:
            return f"{type(obj).__name__} outside the estimator that uses it"
    return None


def _hosted(spec: str, timeout_s: float) -> LoadedModel:
    from .modelhost import HostedModel

    adapter = HostedModel(spec, timeout_s=timeout_s)
    return LoadedModel(spec, adapter.sha256, adapter)


def _load_failure(exc: BaseException, spec: str) -> str:
    from .model import describe_base_exception

    return f"model code raised {describe_base_exception(exc)} while loading '{spec}'"


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
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit in the model's module must not end the audit
        raise AuditInputError(_load_failure(exc, spec)) from None
    if not hasattr(module, name):
        raise AuditInputError(f"model '{spec}': '{name}' is not defined in {left}")
    obj = getattr(module, name)
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "predict")):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001
            raise AuditInputError(f"model '{spec}': calling {name}() failed: {type(exc).__name__}: {exc}") from None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001
            raise AuditInputError(_load_failure(exc, spec)) from None
    if not callable(getattr(obj, "predict", None)):
        raise AuditInputError(f"model '{spec}' has no predict method")
    return LoadedModel(spec, digest, PythonModel(obj, kind=f"python:{type(obj).__qualname__}"))
