"""An input guard: the input constraints a model was validated for, checked on new rows before scoring.

The audit writes one to ``remediation/guard.json`` in the report folder (see
``auditor.remediation.guard``); a deployment loads it and checks every batch before it reaches the
model::

    guard = auditor.Guard.load("report/remediation/guard.json")
    result = guard.check(batch)          # one vectorised pass per constraint, never a loop over rows
    scored = model.predict_proba(batch[result.passed])
    result.reasons                       # per row, the constraints it breaks
    # e.g. ("age > 80 (max 75 + margin)", "purpose='yacht' not an allowed level", "duration missing")

Per feature the guard holds its kind (numeric or categorical), the allowed range (numeric: values
must read as finite numbers within [min, max]) or the allowed levels (categorical, compared as text
unless every level is a number), whether a missing value is allowed, and the values that broke the
model inside that domain (``excluded``). Columns the guard does not name are ignored; a guarded
column that is absent is an error (``GuardError``), never a silent pass.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CATEGORICAL", "FORMAT", "NUMERIC", "FeatureRule", "Guard", "GuardError", "GuardResult"]

FORMAT = "auditor.guard"
VERSION = 1
NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)
#: constraint names, in the order a row's reasons are listed
CONSTRAINTS = ("missing", "not_a_number", "not_finite", "min", "max", "level", "excluded")


class GuardError(ValueError):
    """A guard file that cannot be read, or data the guard cannot check (a guarded column missing)."""


def _number(x: Any) -> str:
    return f"{float(x):.6g}"


def _show(v: Any) -> str:
    """A value as a reason shows it: text quoted, numbers short."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return _number(v)
    return repr(str(v)) if isinstance(v, str) else repr(v)


def _plain(v: Any) -> Any:
    """A JSON-friendly scalar (numpy scalars to Python)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _opt_float(d: Mapping[str, Any], key: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if not _is_number(v) or not math.isfinite(float(v)):
        raise GuardError(f"guard feature {d.get('name')!r}: {key} must be a finite number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class FeatureRule:
    """The constraints on one input column.

    Numeric: a value must read as a finite number (a wrong type or ±infinity is rejected) within
    ``[min, max]`` (either may be None: unbounded); ``observed_min``/``observed_max`` are the range
    the bounds were derived from (the reasons say "max 75 + margin"). Categorical: a value must be
    one of ``levels``. Either kind: a missing value only when ``missing_allowed``; never one of
    ``excluded`` (values the audit saw break the model inside the domain). ``widened``: the bounds
    or levels were widened to the test data; ``note`` says in words where the constraints come from.
    """

    name: str
    kind: str
    min: float | None = None
    max: float | None = None
    observed_min: float | None = None
    observed_max: float | None = None
    levels: tuple[Any, ...] = ()
    missing_allowed: bool = False
    excluded: tuple[Any, ...] = ()
    widened: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GuardError(f"guard feature {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise GuardError(f"guard feature {self.name!r}: min {self.min} is above max {self.max}")
        object.__setattr__(self, "levels", tuple(_plain(v) for v in self.levels))
        object.__setattr__(self, "excluded", tuple(_plain(v) for v in self.excluded))

    @property
    def numeric_levels(self) -> bool:
        """Whether the levels are all numbers (then compared as numbers, so 1, 1.0 and "1" match)."""
        return bool(self.levels) and all(_is_number(v) for v in self.levels)

    # ---- checking -------------------------------------------------------------------------------
    def constraints(self) -> tuple[str, ...]:
        """The constraints this rule checks, in reason order."""
        if self.kind == NUMERIC:
            names = ["missing", "not_a_number", "not_finite"]
            names += [n for n, b in (("min", self.min), ("max", self.max)) if b is not None]
        else:
            names = ["missing", "level"]
        return tuple(names + (["excluded"] if self.excluded else []))

    def violations(self, s: pd.Series) -> Iterator[tuple[str, np.ndarray, Callable[[np.ndarray], np.ndarray]]]:
        """(constraint, rows breaking it, messages for given row positions), for each constraint."""
        missing = s.isna().to_numpy(dtype=bool)
        yield "missing", missing & (not self.missing_allowed), self._constant(f"{self.name} missing")
        if self.kind == NUMERIC:
            yield from self._numeric(s, missing)
        else:
            yield from self._categorical(s, missing)

    def _constant(self, text: str) -> Callable[[np.ndarray], np.ndarray]:
        return lambda idx: np.full(len(idx), text, dtype=object)

    def _valued(self, s: pd.Series, suffix: str) -> Callable[[np.ndarray], np.ndarray]:
        prefix = f"{self.name}="
        return lambda idx: (prefix + s.iloc[idx].astype(object).map(_show) + suffix).to_numpy(dtype=object)

    def _numeric(self, s: pd.Series, missing: np.ndarray) -> Iterator[tuple[str, np.ndarray, Callable]]:
        x = _as_float(s)
        finite = np.isfinite(x)
        yield "not_a_number", ~missing & np.isnan(x), self._valued(s, " not a number")
        yield "not_finite", np.isinf(x), self._valued(s, " not finite")
        if self.min is not None:
            yield "min", finite & (x < self.min), self._constant(f"{self.name} < {_number(self.min)} "
                                                                 f"({self._bound_text('min')})")
        if self.max is not None:
            yield "max", finite & (x > self.max), self._constant(f"{self.name} > {_number(self.max)} "
                                                                 f"({self._bound_text('max')})")
        if self.excluded:
            bad = np.array([float(v) for v in self.excluded if _is_number(v)], dtype=float)
            yield "excluded", finite & np.isin(x, bad), self._valued(s, " broke the model in the audit")

    def _bound_text(self, side: str) -> str:
        bound, observed = (self.min, self.observed_min) if side == "min" else (self.max, self.observed_max)
        if bound is None or observed is None or bound == observed:
            return f"{side} of the training data" if observed is not None else f"{side} allowed"
        if self.widened and (bound < observed if side == "min" else bound > observed):
            return f"{side} {_number(observed)}, widened to the test data"
        return f"{side} {_number(observed)} {'-' if side == 'min' else '+'} margin"

    def _categorical(self, s: pd.Series, missing: np.ndarray) -> Iterator[tuple[str, np.ndarray, Callable]]:
        inside = self._is_level(s, self.levels)
        yield "level", ~missing & ~inside, self._valued(s, " not an allowed level")
        if self.excluded:
            yield "excluded", ~missing & self._is_level(s, self.excluded), self._valued(
                s, " broke the model in the audit")

    def _is_level(self, s: pd.Series, levels: Sequence[Any]) -> np.ndarray:
        if self.numeric_levels:
            return np.isin(_as_float(s), np.array([float(v) for v in levels if _is_number(v)], dtype=float))
        text = s.astype(object).astype(str)
        return text.isin([str(v) for v in levels]).to_numpy(dtype=bool)

    # ---- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == NUMERIC:
            out.update({"min": self.min, "max": self.max, "observed_min": self.observed_min,
                        "observed_max": self.observed_max})
        else:
            out["levels"] = list(self.levels)
        out["missing_allowed"] = bool(self.missing_allowed)
        out["excluded"] = list(self.excluded)
        out["widened"] = bool(self.widened)
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureRule:
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str):
            raise GuardError(f"a guard feature needs a name (text), got {d!r}")
        kind = d.get("kind")
        levels = d.get("levels", [])
        if not isinstance(levels, list) or not isinstance(d.get("excluded", []), list):
            raise GuardError(f"guard feature {d['name']!r}: levels and excluded must be lists")
        if kind == CATEGORICAL and "levels" not in d:
            raise GuardError(f"guard feature {d['name']!r}: a categorical feature needs its levels")
        missing = d.get("missing_allowed", False)
        if not isinstance(missing, bool):
            raise GuardError(f"guard feature {d['name']!r}: missing_allowed must be true or false")
        return cls(name=d["name"], kind=str(kind), min=_opt_float(d, "min"), max=_opt_float(d, "max"),
                   observed_min=_opt_float(d, "observed_min"), observed_max=_opt_float(d, "observed_max"),
                   levels=tuple(levels), missing_allowed=missing, excluded=tuple(d.get("excluded", [])),
                   widened=bool(d.get("widened", False)), note=str(d.get("note", "")))


def _as_float(s: pd.Series) -> np.ndarray:
    """The values as floats: text that reads as a number becomes it, anything else NaN."""
    if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or not pd.api.types.is_numeric_dtype(s.dtype):
        s = s.astype(object)
    x = pd.to_numeric(s, errors="coerce")
    return np.asarray(pd.Series(x).to_numpy(dtype=float, na_value=np.nan), dtype=float)


@dataclass(frozen=True, eq=False)
class GuardResult:
    """What a guard made of a batch: per row whether it passes and the constraints it breaks.

    ``passed``: bool per row; ``violations``: one bool column per constraint (``"age:max"``), index
    as the input's; ``reasons``: per row the tuple of reasons in plain words (empty when it passes).
    """

    passed: np.ndarray
    violations: pd.DataFrame
    reasons: pd.Series

    @property
    def n_rows(self) -> int:
        return len(self.passed)

    @property
    def n_passed(self) -> int:
        return int(self.passed.sum())

    @property
    def n_rejected(self) -> int:
        return self.n_rows - self.n_passed

    @property
    def pass_share(self) -> float:
        return self.n_passed / self.n_rows if self.n_rows else 1.0

    def rejected_by(self) -> dict[str, int]:
        """Rows breaking each constraint (constraints no row breaks left out), in check order."""
        counts = self.violations.sum(axis=0)
        return {str(k): int(v) for k, v in counts.items() if v}

    def summary(self) -> dict[str, Any]:
        return {"rows": self.n_rows, "passed": self.n_passed, "rejected": self.n_rejected,
                "pass_share": self.pass_share, "rejected_by": self.rejected_by()}

    def frame(self) -> pd.DataFrame:
        """``passed`` and the reasons joined by "; ", one row per input row."""
        return pd.DataFrame({"passed": self.passed, "reasons": self.reasons.map("; ".join)},
                            index=self.violations.index)


@dataclass(frozen=True)
class Guard:
    """Input constraints per feature (see the module docstring). ``margin``: the share of each numeric
    feature's observed span the bounds may extend beyond it; ``source``: the data the constraints
    come from; ``notes``: how they were decided, in plain words."""

    features: tuple[FeatureRule, ...]
    margin: float = 0.0
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "notes", tuple(self.notes))
        names = [r.name for r in self.features]
        if len(set(names)) != len(names):
            raise GuardError("a guard names a feature twice")

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.features)

    def rule(self, name: str) -> FeatureRule:
        for r in self.features:
            if r.name == name:
                return r
        raise KeyError(name)

    def check(self, df: pd.DataFrame) -> GuardResult:
        """Check every row of ``df`` against every constraint, one vectorised pass per constraint."""
        absent = [c for c in self.columns if c not in df.columns]
        if absent:
            raise GuardError(f"the data lacks {len(absent)} column{'s' if len(absent) != 1 else ''} the guard "
                             f"checks: {', '.join(absent)}")
        n = len(df)
        masks: dict[str, np.ndarray] = {}
        where: list[np.ndarray] = []
        texts: list[np.ndarray] = []
        for rule in self.features:  # one pass per feature and constraint; rows are never looped over
            for name, mask, messages in rule.violations(df[rule.name]):
                masks[f"{rule.name}:{name}"] = mask
                idx = np.flatnonzero(mask)
                if len(idx):
                    where.append(idx)
                    texts.append(messages(idx))
        violations = pd.DataFrame(masks, index=df.index, dtype=bool) if masks else pd.DataFrame(index=df.index)
        passed = ~violations.to_numpy(dtype=bool).any(axis=1) if masks else np.ones(n, dtype=bool)
        return GuardResult(passed=passed, violations=violations, reasons=_reasons(n, where, texts, df.index))

    # ---- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "margin": float(self.margin), "source": self.source,
                "notes": list(self.notes), "features": [r.to_dict() for r in self.features]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Guard:
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise GuardError(f"not an auditor guard (format {FORMAT!r} expected)")
        if d.get("version") != VERSION:
            raise GuardError(f"guard version {d.get('version')!r} is not supported (this auditor reads {VERSION})")
        feats = d.get("features")
        if not isinstance(feats, list):
            raise GuardError("a guard needs a list of features")
        margin = d.get("margin", 0.0)
        if not _is_number(margin):
            raise GuardError(f"guard margin must be a number, got {margin!r}")
        return cls(features=tuple(FeatureRule.from_dict(f) for f in feats), margin=float(margin),
                   source=str(d.get("source", "")), notes=tuple(str(n) for n in d.get("notes", [])))

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    @classmethod
    def loads(cls, text: str) -> Guard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GuardError(f"a guard file must be JSON: {exc}") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Guard:
        """Read a guard.json (as the audit writes it under ``remediation/``)."""
        return cls.loads(Path(path).read_text(encoding="utf-8"))


def _reasons(n: int, where: list[np.ndarray], texts: list[np.ndarray], index: pd.Index) -> pd.Series:
    """Per row the tuple of its reasons, in constraint order; the long list of (row, reason) pairs is
    sorted once and cut into rows (only rows that break something are touched)."""
    out: list[tuple[str, ...]] = [()] * n
    if where:
        pos = np.concatenate(where)
        msg = np.concatenate(texts)
        order = np.argsort(pos, kind="stable")  # stable: a row's reasons keep the constraint order
        pos, msg = pos[order], msg[order]
        rows, starts = np.unique(pos, return_index=True)
        for r, part in zip(rows.tolist(), np.split(msg, starts[1:])):
            out[r] = tuple(str(m) for m in part)
    return pd.Series(out, index=index, dtype=object)
