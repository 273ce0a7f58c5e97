"""The search space: one :class:`Axis` per searchable feature, the encoding of the starting rows
over the axes (numeric values, level codes) and the choice of starting rows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..domain import FeatureDomain
from ..sampling import sample_positions


@dataclass(frozen=True)
class Axis:
    """One searchable feature: plausible ``low``/``high`` bounds (numeric) or known ``levels``."""

    name: str
    categorical: bool
    low: float = float("nan")
    high: float = float("nan")
    observed_low: float = float("nan")
    observed_high: float = float("nan")
    std: float = 1.0
    integer: bool = False
    levels: tuple = ()
    mass_point: float = float("nan")  # a value most rows hold (the zeros of an amount); nan: none

    @property
    def span(self) -> float:
        return float(self.observed_high - self.observed_low)

    def grid(self, n: int) -> np.ndarray:
        """``n`` evenly spaced values over the plausible range (unique integers for integer
        features), or every level code."""
        if self.categorical:
            return np.arange(len(self.levels), dtype=float)
        return np.unique(self.clip(np.linspace(self.low, self.high, max(int(n), 2))))

    def clip(self, values: np.ndarray) -> np.ndarray:
        if self.categorical:
            return values
        v = np.clip(np.asarray(values, dtype=float), self.low, self.high)
        return np.round(v) if self.integer else v


def plausible_axes(domains: Mapping[str, FeatureDomain], features: Sequence[str], *, margin: float,
                   max_levels: int = 30, mass_share: float = 0.5) -> tuple[Axis, ...]:
    """Axes for ``features`` from their observed domains; constant features are left out. A numeric
    value held by at least ``mass_share`` of the observed rows is the axis's mass point."""
    axes: list[Axis] = []
    for name in features:
        d = domains[name]
        if d.categorical:
            if len(d.levels) >= 2:
                axes.append(Axis(name, True, levels=tuple(d.levels[:max_levels])))
            continue
        if not (np.isfinite(d.low) and np.isfinite(d.high)) or d.high <= d.low:
            continue
        low, high = d.margin_bounds(margin)
        if d.low >= 0:  # the margin never flips a feature's sign (no negative amounts or ages)
            low = max(low, 0.0)
        if d.integer:
            low, high = math.ceil(low - 1e-9), math.floor(high + 1e-9)
        std = d.std if np.isfinite(d.std) and d.std > 0 else d.span
        mass = d.mode if np.isfinite(d.mode) and d.mode_share >= mass_share else float("nan")
        axes.append(Axis(name, False, low=float(low), high=float(high), observed_low=d.low,
                         observed_high=d.high, std=float(std), integer=d.integer, mass_point=float(mass)))
    return tuple(axes)

def select_start_rows(scores: np.ndarray, *, n: int, prototype_share: float, center: float,
                      rng: np.random.Generator, prototypes: Sequence[str] = ("high", "low", "near")
                      ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Positions and kinds of the starting rows: the highest-score, lowest-score and
    nearest-to-``center`` rows (``prototype_share`` of ``n``, split evenly among ``prototypes``),
    then a seeded random sample of the rest. With ``n`` rows or fewer, every row is used as the
    sample."""
    s = np.asarray(scores, dtype=float)
    if len(s) <= n:
        return np.arange(len(s)), ("random",) * len(s)
    k = int(round(n * prototype_share / max(len(prototypes), 1)))
    taken: list[int] = []
    kinds: list[str] = []
    used = np.zeros(len(s), dtype=bool)
    for kind, order in (("high", np.argsort(-s, kind="stable")), ("low", np.argsort(s, kind="stable")),
                        ("near", np.argsort(np.abs(s - center), kind="stable"))):
        if kind not in prototypes:
            continue
        picked = [int(i) for i in order if not used[i]][:k]
        used[picked] = True
        taken += picked
        kinds += [kind] * len(picked)
    rest = np.flatnonzero(~used)
    sample = rest[sample_positions(len(rest), n - len(taken), rng)]  # fewer than the rest: always drawn
    return np.array(taken + sample.tolist(), dtype=int), tuple(kinds + ["random"] * len(sample))


def typical_row(frame: pd.DataFrame, axes: Sequence[Axis]) -> int:
    """Position of the real row closest to the medians (numeric) and modes (categorical)."""
    cost = np.zeros(len(frame))
    for ax in axes:
        col = frame[ax.name]
        if ax.categorical:
            cost += (col.astype(object).to_numpy() != ax.levels[0]).astype(float)
        else:
            v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
            dev = np.abs(v - np.nanmedian(v)) / ax.std if np.isfinite(v).any() else np.ones(len(v))
            cost += np.where(np.isnan(dev), 1.0, dev)
    return int(np.argmin(cost))

def same_values(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b))


class Space:
    """Encodes the starting rows over the axes (numeric values, level codes) and builds
    candidate frames with the original dtypes from encoded candidates."""

    def __init__(self, base: pd.DataFrame, axes: Sequence[Axis]) -> None:
        self.base = base.reset_index(drop=True)
        self.axes = tuple(axes)
        self.cat = np.array([a.categorical for a in axes], dtype=bool)
        self.std = np.array([1.0 if a.categorical else a.std for a in axes], dtype=float)
        self.mass = np.array([float("nan") if a.categorical else a.mass_point for a in axes], dtype=float)
        self.V0 = np.column_stack([self._encode(self.base[a.name], a) for a in axes]) if axes else \
            np.empty((len(base), 0))
        self._dtypes = {c: self.base[c].dtype for c in self.base.columns}
        self._cols = {c: self.base[c].to_numpy() for c in self.base.columns}
        self._typed = {c: self.base[c].array for c in self.base.columns}
        self._numeric = {a.name: pd.to_numeric(self.base[a.name], errors="coerce").to_numpy(dtype=float)
                         for a in axes if not a.categorical}

    @staticmethod
    def _encode(col: pd.Series, ax: Axis) -> np.ndarray:
        if ax.categorical:
            lookup = {lv: i for i, lv in enumerate(ax.levels)}
            return np.array([lookup.get(v, -1) if not is_missing(v) else -1 for v in col.astype(object)],
                            dtype=float)
        return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)

    def distance(self, rows: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Feature standard deviations moved, summed over features; a categorical change counts 1,
        and so does leaving or reaching a numeric mass point at the least: going from no capital gain
        (the value most rows hold) to a capital gain of 58 is a change of kind, not 0.008 standard
        deviations of a spread the rare large gains set."""
        V0 = self.V0[rows]
        changed = ~same_values(V, V0)
        step = np.abs(V - V0) / self.std
        step = np.where(self.cat | np.isnan(step), 1.0, step)
        has_mass = np.isfinite(self.mass)
        crosses = has_mass & (np.equal(V, self.mass) != np.equal(V0, self.mass))
        step = np.where(crosses, np.maximum(step, 1.0), step)
        return np.where(changed, step, 0.0).sum(axis=1)

    def frame(self, rows: np.ndarray, V: np.ndarray) -> pd.DataFrame:
        """Candidate rows: row ``rows[i]`` with the axis values of ``V[i]`` where they differ
        from the row's own (so unchanged cells keep their exact original value)."""
        V0 = self.V0[rows]
        over: dict[str, np.ndarray] = {}
        for j, ax in enumerate(self.axes):
            col = V[:, j]
            changed = ~same_values(col, V0[:, j])
            if not changed.any():
                continue
            vals = self._cols[ax.name][rows]
            if ax.categorical:
                vals = vals.astype(object)
                vals[changed] = np.asarray(ax.levels, dtype=object)[col[changed].astype(int)]
            else:
                vals = self._numeric[ax.name][rows]
                vals[changed] = col[changed]
            over[ax.name] = vals
        return self.assemble(rows, over)

    def decode(self, rows: np.ndarray, V: np.ndarray) -> pd.DataFrame:
        """Rows where every axis column comes from ``V`` (level code -1: missing)."""
        over: dict[str, np.ndarray] = {}
        for j, ax in enumerate(self.axes):
            col = V[:, j]
            if ax.categorical:
                codes = np.where((col < 0) | ~np.isfinite(col), len(ax.levels), col).astype(int)
                over[ax.name] = np.asarray(ax.levels + (None,), dtype=object)[codes]
            else:
                over[ax.name] = col.astype(float)
        return self.assemble(rows, over)

    def assemble(self, rows: np.ndarray, over: Mapping[str, np.ndarray]) -> pd.DataFrame:
        """One frame, column by column, in the original column order and dtypes."""
        data = {}
        for c in self.base.columns:
            data[c] = as_dtype(over[c], self._dtypes[c]) if c in over else self._typed[c][rows]
        return pd.DataFrame(data, copy=False)


def is_missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def as_dtype(values: np.ndarray, dtype: Any) -> Any:
    """``values`` in the column's original dtype where it can hold them (a NaN cannot live in a
    NumPy integer column: float then)."""
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iu":
            f = values.astype(float)
            return f if np.isnan(f).any() else np.rint(f).astype(dtype)
        try:
            return values.astype(dtype)
        except (TypeError, ValueError):
            return values
    try:
        return pd.array(values, dtype=dtype)
    except (TypeError, ValueError):
        return values

def plain_value(v: Any) -> Any:
    if is_missing(v):
        return None
    return v.item() if hasattr(v, "item") else v
