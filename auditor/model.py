"""A uniform, batched view of the model under audit, whatever its source.

Every adapter takes a pandas DataFrame of the feature columns (in order) and returns
numpy arrays. Callers batch: one call per dataset, never one per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

# Rows per model call: a larger call is split. Tree ensembles walk every row once per tree, so a
# call whose rows no longer fit in the processor's cache costs more per row: a HistGradientBoosting
# pipeline on UCI Adult (101 encoded columns) took 15-19 us a row in calls of 4,096 rows and 33-37
# us in calls of 16,384 or more. Below a few thousand rows the per-call overhead of a pipeline
# (pandas, column transformers) starts to count instead.
BATCH_ROWS = 4_096


class ModelCallError(Exception):
    """Model code failed in a way no ordinary exception describes: it raised ``SystemExit`` or
    another ``BaseException``, its host process died, or a call timed out.

    An ``Exception``, so checks that record a model's failures as findings (random and hostile
    inputs, adversarial search) record it like any other model error, and the runner records it
    as the check's error otherwise. ``original`` names what the model raised or how it failed.
    """

    def __init__(self, message: str, original: str = "") -> None:
        super().__init__(message)
        self.original = original


def describe_base_exception(exc: BaseException) -> str:
    """``SystemExit(0)``, ``Boom('message')``: the type and its arguments, one line, trimmed."""
    text = " ".join(repr(exc).split())
    return text if len(text) <= 200 else text[:199] + "…"


def _guarded(fn: Callable[[pd.DataFrame], Any], op: str) -> Callable[[pd.DataFrame], Any]:
    """``fn`` with a model's ``SystemExit`` (or any other non-``Exception``, except
    ``KeyboardInterrupt``) turned into a ModelCallError: model code cannot end the audit."""

    def call(X: pd.DataFrame) -> Any:
        try:
            return np.asarray(fn(X))  # converting the output may run model code too
        except (Exception, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit, GeneratorExit, a user's BaseException
            raise ModelCallError(f"model code raised {describe_base_exception(exc)} during {op} on {len(X)} rows",
                                 original=type(exc).__name__) from None

    return call


class ModelAdapter(Protocol):
    kind: str
    classes: tuple[Any, ...] | None

    def has_proba(self) -> bool: ...
    def predict(self, X: pd.DataFrame) -> np.ndarray: ...
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...
    def feature_names(self) -> tuple[str, ...] | None: ...


def _batched(fn, X: pd.DataFrame) -> np.ndarray:
    if len(X) <= BATCH_ROWS:
        return np.asarray(fn(X))
    parts = [np.asarray(fn(X.iloc[i:i + BATCH_ROWS])) for i in range(0, len(X), BATCH_ROWS)]
    return np.concatenate(parts, axis=0)


def _kind_of(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _sklearn_module_name(obj: Any) -> str:
    mod = type(obj).__module__
    for pkg in ("sklearn", "lightgbm", "xgboost", "catboost"):
        if mod == pkg or mod.startswith(pkg + "."):
            return f"{pkg}.{type(obj).__qualname__}" if pkg != "sklearn" else _kind_of(obj)
    return _kind_of(obj)


def final_estimator(adapter: Any) -> Any | None:
    """The fitted estimator a Python model ends in (through a search's ``best_estimator_``, a
    pipeline's last step, a target transformer's ``regressor_``; at most five levels), or None when
    the model is not a Python object in this process (ONNX, a hosted model)."""
    obj: Any = getattr(adapter, "obj", None)
    for _ in range(5):
        if hasattr(obj, "best_estimator_"):
            obj = obj.best_estimator_
        elif hasattr(obj, "steps"):
            obj = obj.steps[-1][1]
        elif hasattr(obj, "regressor_"):
            obj = obj.regressor_
        else:
            break
    return obj


def is_linear_model(estimator: Any) -> bool:
    """An estimator of ``sklearn.linear_model`` (a linear benchmark is then its like)."""
    return estimator is not None and type(estimator).__module__.startswith("sklearn.linear_model")


_TREE_MODULES = ("sklearn.tree", "sklearn.ensemble._forest", "sklearn.ensemble._gb",
                 "sklearn.ensemble._hist_gradient_boosting", "sklearn.ensemble._iforest", "lightgbm", "xgboost",
                 "catboost")


def is_tree_model(estimator: Any) -> bool:
    """A decision tree or a tree ensemble (random forest, extra trees, gradient boosting in sklearn,
    LightGBM, XGBoost, CatBoost): a step function of its inputs, so sharp steps are its nature."""
    module = type(estimator).__module__ if estimator is not None else ""
    return any(module == m or module.startswith(m + ".") for m in _TREE_MODULES)


_OPENMP_PACKAGES = ("lightgbm", "xgboost")
MAX_MODEL_DEPTH = 8  # nesting levels searched for estimators (search > pipeline > stack > calibration ...)


def _inner_objects(obj: Any) -> list[Any]:
    """The objects an estimator holds: its parameters and fitted attributes, and the items of the
    lists, tuples and dicts among them (pipeline steps, a stack's estimators, a search's best one)."""
    try:
        values = list(vars(obj).values())
    except TypeError:  # no __dict__ (slots, builtins)
        return []
    out: list[Any] = []
    for v in values:
        if isinstance(v, dict):
            out.extend(v.values())
        elif isinstance(v, (list, tuple)):
            for item in v:
                out.extend(item if isinstance(item, tuple) else (item,))  # ("name", step[, columns])
        else:
            out.append(v)
    return out


def _from_package(obj: Any, packages: tuple[str, ...]) -> bool:
    module = type(obj).__module__
    return any(module == p or module.startswith(p + ".") for p in packages)


def limit_library_threads(obj: Any, threads: int) -> int:
    """Set the thread count of every LightGBM and XGBoost model inside ``obj`` (itself, pipeline steps,
    stacked or calibrated estimators, a search's best estimator) to ``threads``; return how many.

    In a forked process this is what keeps a model call from hanging: their scikit-learn wrappers
    pass their own thread count (LightGBM's ``n_jobs=None`` means every physical core) to the
    library at each call, past the process's OpenMP limit, and GNU OpenMP asked for more than one
    thread in a process forked after the parent used its thread pool never returns. Only the thread
    count changes: the predictions are the same."""
    seen: set[int] = set()
    changed = 0
    todo: list[tuple[Any, int]] = [(obj, 0)]
    while todo:
        item, depth = todo.pop()
        if id(item) in seen or depth > MAX_MODEL_DEPTH or item is None or isinstance(item, (str, bytes, int, float)):
            continue
        seen.add(id(item))
        if _from_package(item, _OPENMP_PACKAGES):
            changed += _set_threads(item, threads)
            continue
        if callable(getattr(item, "get_params", None)) or callable(getattr(item, "predict", None)):
            todo.extend((inner, depth + 1) for inner in _inner_objects(item))
    return changed


def _set_threads(model: Any, threads: int) -> int:
    """One LightGBM or XGBoost object: its scikit-learn wrapper's ``n_jobs``, XGBoost's booster."""
    done = 0
    try:
        if "n_jobs" in model.get_params(deep=False):
            model.set_params(n_jobs=threads)
            done = 1
    except Exception:  # noqa: BLE001, S110 - not a scikit-learn wrapper (a raw booster)
        pass
    booster = model
    if callable(getattr(model, "get_booster", None)):
        try:
            booster = model.get_booster()
        except Exception:  # noqa: BLE001 - not fitted
            booster = None
    set_param = getattr(booster, "set_param", None)  # xgboost.Booster
    if callable(set_param):
        try:
            set_param({"nthread": threads})
            done = 1
        except Exception:  # noqa: BLE001, S110 - a booster that refuses: its own default applies
            pass
    return done


@dataclass
class PythonModel:
    """Any object with ``predict`` (and ``predict_proba``) taking a DataFrame: sklearn, LightGBM,
    XGBoost, or a user's own class."""

    obj: Any
    kind: str = ""
    classes: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        self.kind = self.kind or _sklearn_module_name(self.obj)
        cls = getattr(self.obj, "classes_", None)
        if cls is not None:
            self.classes = tuple(np.asarray(cls).tolist())

    def has_proba(self) -> bool:
        return callable(getattr(self.obj, "predict_proba", None))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(_batched(_guarded(self.obj.predict, "predict"), X)).reshape(len(X), -1) \
            .squeeze(axis=1) if len(X) else np.empty(0)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        out = _batched(_guarded(self.obj.predict_proba, "predict_proba"), X)
        out = np.asarray(out, dtype=float)
        if out.ndim == 1:  # some objects return P(positive) only
            out = np.column_stack([1.0 - out, out])
        return out

    def limit_threads(self, threads: int) -> None:
        """In a forked process: LightGBM and XGBoost models inside use ``threads`` threads (see
        ``limit_library_threads``)."""
        limit_library_threads(self.obj, threads)

    def feature_names(self) -> tuple[str, ...] | None:
        names = getattr(self.obj, "feature_names_in_", None)
        if names is None:
            names = getattr(self.obj, "feature_name_", None)  # LightGBM
        if names is None and hasattr(self.obj, "get_booster"):
            try:
                names = self.obj.get_booster().feature_names
            except Exception:  # noqa: BLE001 - not fitted or no names
                names = None
        return tuple(str(n) for n in names) if names is not None else None


class OnnxModel:
    """An ONNX graph run with onnxruntime.

    Two input layouts are supported: one tensor holding all features (numeric), or one input
    per column named like the column (as skl2onnx writes pipelines with string columns).
    """

    def __init__(self, path: str) -> None:
        from pathlib import Path

        self._bytes = Path(path).read_bytes()  # the graph, for a session in another process
        self._open()
        self.inputs = self.session.get_inputs()
        self.outputs = self.session.get_outputs()
        self.kind = "onnx"
        self._label_out = self.outputs[0].name
        self._proba_out = self.outputs[1].name if len(self.outputs) > 1 else None
        self.classes: tuple[Any, ...] | None = None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "classes" in meta:
            self.classes = tuple(meta["classes"].split(","))

    def _open(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self._bytes, sess_options=opts, providers=["CPUExecutionProvider"])

    def after_fork(self) -> None:
        """In a forked worker process: a session of its own (onnxruntime's state does not survive a fork)."""
        self._open()
        self.inputs = self.session.get_inputs()
        self.outputs = self.session.get_outputs()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (sent to a cluster worker) without the session, which is opened again from the bytes."""
        return {k: v for k, v in self.__dict__.items() if k not in ("session", "inputs", "outputs")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open()
        self.inputs = self.session.get_inputs()
        self.outputs = self.session.get_outputs()

    def has_proba(self) -> bool:
        return self._proba_out is not None

    def feature_names(self) -> tuple[str, ...] | None:
        if len(self.inputs) > 1:
            return tuple(i.name for i in self.inputs)
        return None

    def _feed(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        if len(self.inputs) == 1:
            return {self.inputs[0].name: X.to_numpy(dtype=np.float32)}
        feed = {}
        for inp in self.inputs:
            col = X[inp.name]
            if "string" in inp.type:
                feed[inp.name] = col.astype(str).to_numpy(dtype=object).reshape(-1, 1)
            elif "int64" in inp.type:
                feed[inp.name] = col.to_numpy(dtype=np.int64).reshape(-1, 1)
            elif "double" in inp.type:
                feed[inp.name] = col.to_numpy(dtype=np.float64).reshape(-1, 1)
            else:
                feed[inp.name] = col.to_numpy(dtype=np.float32).reshape(-1, 1)
        return feed

    def _run(self, X: pd.DataFrame) -> tuple[np.ndarray, Any]:
        names = [self._label_out] + ([self._proba_out] if self._proba_out else [])
        res = self.session.run(names, self._feed(X))
        return np.asarray(res[0]).reshape(len(X), -1).squeeze(axis=1), (res[1] if len(res) > 1 else None)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return _batched(_guarded(lambda part: self._run(part)[0], "predict"), X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        def one(part: pd.DataFrame) -> np.ndarray:
            _, proba = self._run(part)
            if isinstance(proba, list):  # ZipMap: a list of {class: probability}
                keys = sorted(proba[0].keys()) if proba else []
                if self.classes is None:
                    self.classes = tuple(keys)
                return np.array([[row[k] for k in keys] for row in proba], dtype=float)
            return np.asarray(proba, dtype=float)

        return _batched(_guarded(one, "predict_proba"), X)
