"""Batched scoring of candidates within the query budget, with model failures isolated and
counted, and the tracker that keeps each row's smallest flip and largest swings."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from ... import model as _model
from ..memo import RowMemo
from .space import Space, plain_value, same_values
from .values import Change, FailureExample, FlipRule, ScoreFn, ScoreScale, ScoringFailures


class OutOfBudget(Exception):
    pass


class Scores(NamedTuple):
    """Scores of a batch of candidates: ``s`` the judged score (P(positive), the prediction, or
    for k classes P(start row's class)); ``f`` the value the flip rule reads (the score itself,
    or the k-class margin); ``c`` the predicted class for k classes (-1 otherwise or on failure)."""

    s: np.ndarray
    f: np.ndarray
    c: np.ndarray

    def take(self, k: np.ndarray) -> Scores:
        return Scores(self.s[k], self.f[k], self.c[k])


class Scorer:
    """Scores candidates (start row + encoded axis values) in batches; counts model calls and rows
    scored; refuses to go past the query budget.

    A batch that raises is split in halves (then quarters ...) so the rows that score are kept and
    the failing ones isolated; a single failing candidate with one changed value teaches a
    (feature, value) pair, and later candidates holding it are not sent again. Non-finite or
    out-of-range results are recorded too. Failures come back as NaN scores and never count as
    flips; see :class:`ScoringFailures`."""

    def __init__(self, fn: ScoreFn, max_queries: int, space: Space, *, k_class: bool = False,
                 probability: bool = False, labels: Sequence[str] | None = None,
                 max_split_calls: int = 400, max_examples: int = 10) -> None:
        self.fn, self.max_queries, self.space = fn, int(max_queries), space
        self.k_class, self.probability = k_class, probability
        self.labels = list(labels) if labels is not None else [str(i) for i in range(space.V0.shape[0])]
        self.max_split_calls, self.max_examples = int(max_split_calls), int(max_examples)
        self.calls = 0  # calls the model got (a large one split in pieces of BATCH_ROWS counts each)
        self.rows = 0  # rows asked for: what the query budget counts
        # a candidate asked for again (same start row, same axis values) is not sent to the model again
        self._memo = {False: RowMemo(), True: RowMemo()}
        self.c0: np.ndarray | None = None
        self.bad: dict[tuple[int, float], None] = {}
        self.raised = self.unresolved = self.skipped = self.non_finite = 0
        self.in_domain_raised = self.in_domain_non_finite = self.start_rows = self.split_calls = 0
        self.messages: dict[str, None] = {}
        self.examples: list[tuple[str, bool, int, np.ndarray, str]] = []

    @property
    def scored(self) -> int:
        """Rows the model scored: the distinct candidates among those asked for."""
        return sum(m.scored for m in self._memo.values())

    def _scoring(self, frame: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray]:
        def score(positions: np.ndarray) -> np.ndarray:
            self.calls += -(-len(positions) // _model.BATCH_ROWS)
            part = frame if len(positions) == len(frame) and np.array_equal(positions, np.arange(len(frame))) \
                else frame.iloc[positions]
            return np.asarray(self.fn(part), dtype=float)

        return score

    @property
    def remaining(self) -> int:
        return max(self.max_queries - self.rows, 0)

    def start(self) -> Scores:
        """The start rows themselves (always scored); fixes each row's class for k classes."""
        n = self.space.V0.shape[0]
        raw = self._raw(np.arange(n), self.space.V0, decode=False, force=True)
        if self.k_class:
            filled = np.where(np.isfinite(raw), raw, -np.inf)
            self.c0 = np.argmax(filled, axis=1) if raw.size else np.zeros(0, dtype=int)
        return self._convert(np.arange(n), raw)

    def __call__(self, rows: np.ndarray, V: np.ndarray, *, decode: bool = False, force: bool = False) -> Scores:
        rows = np.asarray(rows, dtype=int)
        return self._convert(rows, self._raw(rows, V, decode=decode, force=force))

    # ---- internals ----
    def _convert(self, rows: np.ndarray, raw: np.ndarray) -> Scores:
        if not self.k_class:
            return Scores(raw, raw, np.full(len(raw), -1))
        n = len(rows)
        if n == 0:
            return Scores(np.empty(0), np.empty(0), np.empty(0, dtype=int))
        ok = np.isfinite(raw).all(axis=1)
        c0 = self.c0[rows] if self.c0 is not None else np.zeros(n, dtype=int)
        own = raw[np.arange(n), c0]
        other = raw.copy()
        other[np.arange(n), c0] = -np.inf
        runner = np.max(np.where(np.isfinite(other), other, -np.inf), axis=1) if raw.shape[1] > 1 else \
            np.zeros(n)
        pred = np.argmax(np.where(np.isfinite(raw), raw, -np.inf), axis=1)
        m = np.abs(own - runner)
        # a tie the arg max breaks against the row's class is a flip (a margin just below 0)
        margin = np.where(pred == c0, m, -np.maximum(m, np.nextafter(0.0, 1.0)))
        nan = np.full(n, np.nan)
        return Scores(np.where(ok, own, nan), np.where(ok, margin, nan), np.where(ok, pred, -1))

    def _raw(self, rows: np.ndarray, V: np.ndarray, *, decode: bool, force: bool) -> np.ndarray:
        n = len(rows)
        if n == 0:
            return np.empty((0, 0)) if self.k_class else np.empty(0)
        if n > self.remaining and not force:
            raise OutOfBudget()
        known = self._known(rows, V)
        self.skipped += int(known.sum())
        stack = [np.flatnonzero(~known)]
        results: list[tuple[np.ndarray, np.ndarray]] = []
        while stack:
            idx = stack.pop()
            if len(idx) and self.bad:
                k = self._known(rows[idx], V[idx])
                self.skipped += int(k.sum())
                idx = idx[~k]
            if not len(idx):
                continue
            frame = (self.space.decode if decode else self.space.frame)(rows[idx], V[idx])
            self.rows += len(idx)
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # log(0) and the like: counted below
                    raw = self._memo[decode](np.column_stack([rows[idx], V[idx]]), self._scoring(frame))
            except OutOfBudget:
                raise
            except Exception as exc:  # noqa: BLE001 - a failing model is evidence, not an error
                msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
                self.messages.setdefault(msg[:200], None)
                if len(idx) == 1:
                    self._failed(int(rows[idx[0]]), V[idx[0]], "exception", msg)
                elif self.split_calls >= self.max_split_calls:
                    self.unresolved += len(idx)
                else:
                    self.split_calls += 2
                    h = len(idx) // 2
                    stack.append(idx[h:])
                    stack.append(idx[:h])
                continue
            raw = raw.reshape(len(idx), -1) if self.k_class else raw.reshape(-1)
            if raw.shape[0] != len(idx):
                raise ValueError(f"the model returned {raw.shape[0]} scores for {len(idx)} rows")
            bad = ~np.isfinite(raw) if raw.ndim == 1 else ~np.isfinite(raw).all(axis=1)
            if self.probability:
                with np.errstate(invalid="ignore"):
                    outside = (raw < -1e-9) | (raw > 1 + 1e-9)
                bad |= outside if outside.ndim == 1 else outside.any(axis=1)
            for i in np.flatnonzero(bad):
                v = raw[i] if raw.ndim == 1 else ", ".join(f"{x:.4g}" for x in raw[i])
                self._failed(int(rows[idx[i]]), V[idx[i]], "non-finite",
                             f"returned {v if isinstance(v, str) else f'{v:.4g}'}")
            raw = raw.copy()
            raw[bad] = np.nan
            results.append((idx, raw))
        tail = next((r.shape[1:] for _, r in results), None)
        if tail is None:
            tail = (max(int(self.c0.max()) + 1, 2),) if self.k_class and self.c0 is not None and len(self.c0) \
                else ((2,) if self.k_class else ())
        out = np.full((n,) + tuple(tail), np.nan)
        for idx, raw in results:
            out[idx] = raw
        return out

    def _known(self, rows: np.ndarray, V: np.ndarray) -> np.ndarray:
        hit = np.zeros(len(rows), dtype=bool)
        for (j, v) in self.bad:
            hit |= (V[:, j] == v) & (self.space.V0[rows, j] != v)
        return hit

    def _in_domain(self, r: int, v: np.ndarray) -> bool:
        v0 = self.space.V0[r]
        for j in np.flatnonzero(~same_values(v, v0)):
            ax = self.space.axes[j]
            if not np.isfinite(v[j]):
                return False
            if ax.categorical:
                if v[j] < 0:
                    return False
            elif not ax.observed_low - 1e-9 <= v[j] <= ax.observed_high + 1e-9:
                return False
        return True

    def _failed(self, r: int, v: np.ndarray, kind: str, detail: str) -> None:
        changed = np.flatnonzero(~same_values(v, self.space.V0[r]))
        inside = self._in_domain(r, v)
        if not len(changed):
            self.start_rows += 1
        if kind == "exception":
            self.raised += 1
            self.in_domain_raised += int(inside)
            if len(changed) == 1:
                self.bad.setdefault((int(changed[0]), float(v[changed[0]])), None)
        else:
            self.non_finite += 1
            self.in_domain_non_finite += int(inside)
        same = sum(1 for e in self.examples if e[0] == kind and e[1] == inside)
        if same < self.max_examples:
            self.examples.append((kind, inside, r, np.array(v, dtype=float), detail))

    def failures(self) -> ScoringFailures:
        names = [ax.name for ax in self.space.axes]
        ex = sorted(self.examples, key=lambda e: (e[0] != "non-finite", not e[1]))[:self.max_examples]
        examples = []
        if ex:
            rows = np.array([e[2] for e in ex])
            V = np.array([e[3] for e in ex])
            frame = self.space.frame(rows, V)
            for i, (kind, inside, r, v, detail) in enumerate(ex):
                changed = np.flatnonzero(~same_values(v, self.space.V0[r]))
                changes = tuple(Change(names[j], plain_value(self.space.base[names[j]].iloc[r]),
                                       plain_value(frame[names[j]].iloc[i])) for j in changed)
                examples.append(FailureExample(str(self.labels[r]), kind, changes, inside, detail))
        values = []
        for (j, value) in self.bad:
            ax = self.space.axes[j]
            values.append((ax.name, str(ax.levels[int(value)]) if ax.categorical else float(value)))
        return ScoringFailures(
            raised=self.raised, unresolved=self.unresolved, skipped=self.skipped, non_finite=self.non_finite,
            in_domain_raised=self.in_domain_raised, in_domain_non_finite=self.in_domain_non_finite,
            start_rows=self.start_rows, split_calls=self.split_calls, messages=tuple(self.messages)[:5],
            failing_values=tuple(sorted(values, key=lambda t: (t[0], str(t[1])))), examples=tuple(examples))


def first_per_row(rows: np.ndarray, *keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct row, the index of the candidate that sorts first by ``keys``."""
    order = np.lexsort(tuple(reversed(keys)) + (rows,)) if keys else np.argsort(rows, kind="stable")
    uniq, first = np.unique(rows[order], return_index=True)
    return uniq, order[first]


@dataclass
class Best:
    V: np.ndarray
    score: np.ndarray
    dist: np.ndarray
    method: list[str]

    @classmethod
    def empty(cls, n: int, m: int, fill: float) -> Best:
        return cls(np.full((n, m), np.nan), np.full(n, np.nan), np.full(n, fill), [""] * n)

    def put(self, rows: np.ndarray, idx: np.ndarray, V: np.ndarray, s: np.ndarray, d: np.ndarray,
            method: str) -> None:
        self.V[rows] = V[idx]
        self.score[rows] = s[idx]
        self.dist[rows] = d[idx]
        for r in rows:
            self.method[r] = method


class Tracker:
    """Keeps, per starting row, the smallest flip seen and the largest swings within the small
    distance, over every batch scored by any phase."""

    def __init__(self, space: Space, s0: Scores, rule: FlipRule, scale: ScoreScale, small: float) -> None:
        n, m = space.V0.shape
        self.space, self.rule, self.scale, self.small = space, rule, scale, small
        self.s0, self.f0 = s0.s, s0.f
        self.flip = Best.empty(n, m, np.inf)
        self.up = Best.empty(n, m, np.inf)
        self.down = Best.empty(n, m, np.inf)
        self.up.score[:] = s0.s
        self.down.score[:] = s0.s
        self.cls = np.full(n, -1)  # predicted class at the best flip (k classes)

    def update(self, rows: np.ndarray, V: np.ndarray, sc: Scores, method: str,
               d: np.ndarray | None = None) -> np.ndarray:
        if len(rows) == 0:
            return np.empty(0)
        d = self.space.distance(rows, V) if d is None else d
        s, s0 = sc.s, self.s0[rows]
        flipped = self.rule.flipped(self.f0[rows], sc.f) & (d > 0)
        if flipped.any():
            k = np.flatnonzero(flipped)
            uniq, best = first_per_row(rows[k], d[k], -np.abs(s[k] - s0[k]))
            better = d[k][best] < self.flip.dist[uniq] - 1e-12
            self.flip.put(uniq[better], k[best[better]], V, s, d, method)
            self.cls[uniq[better]] = sc.c[k[best[better]]]
        near = np.flatnonzero((d <= self.small + 1e-9) & (d > 0) & np.isfinite(s))
        if len(near):
            for best_of, sign in ((self.up, 1.0), (self.down, -1.0)):
                uniq, best = first_per_row(rows[near], -sign * s[near], d[near])
                better = sign * (s[near][best] - best_of.score[uniq]) > 1e-12
                best_of.put(uniq[better], near[best[better]], V, s, d, method)
        return d


def candidates(V0: np.ndarray, rows: Sequence[int] | np.ndarray, cols: Sequence[int] | np.ndarray,
               values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the encoded rows ``rows`` with column ``cols[i]`` of copy i set to ``values[i]``."""
    rows_a = np.asarray(rows, dtype=int)
    V = V0[rows_a].copy()
    if len(rows_a):
        V[np.arange(len(rows_a)), np.asarray(cols, dtype=int)] = np.asarray(values, dtype=float)
    return rows_a, V
