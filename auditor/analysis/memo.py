"""Each distinct row scored once, for analyses that ask the model about the same row again and again.

An adversarial search revisits candidates (a bisection lands on a grid point the sweep scored, a
pair holds one feature at a value a single-feature step already tried), and SHAP's permutation
explainer sends, for every explained row, masked rows that equal each other wherever the row and
a background row agree on the features switched (and the same background rows for each explained
row). On UCI Adult 16% of the search's and 41% of SHAP's model rows were repeats.

``RowMemo`` keys a row by the exact bytes of its numeric encoding (the search's start row and axis
values, SHAP's integer codes): no hash, so no collision can hand a row another row's output, and
values that differ in any bit (a NaN with another payload, -0.0 and 0.0) count as different rows,
which can only cost a model call. The model sees each new distinct row once; what the analysis
asked for, and the budgets that count it, are unchanged, so its results are those of scoring every
row (for a model whose output on a row does not depend on the other rows of the call, as for every
estimator the audit reads).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DEFAULT_MAX_ROWS = 500_000  # distinct rows kept (about 100 bytes each, plus the outputs); then no more are added


class RowMemo:
    """Model outputs of distinct rows, looked up by the rows' encoding.

    ``memo(keys, score)``: ``keys`` is an n x m numeric array, one row per row asked for;
    ``score(positions)`` must return the model's output for those positions of the call (n' rows,
    any trailing shape). Returns the n outputs, scoring only the distinct rows not seen before.
    When ``score`` returns another number of rows than asked (a broken model), the memo steps
    aside: ``score`` is called on every position and its output returned as it is, for the caller
    to judge as it did without a memo.
    """

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        self.max_rows = int(max_rows)
        self._index: dict[bytes, int] = {}
        self._out: np.ndarray | None = None
        self.asked = 0  # rows asked for
        self.scored = 0  # rows the model scored

    def __len__(self) -> int:
        return len(self._index)

    def __call__(self, keys: np.ndarray, score: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        K = np.ascontiguousarray(keys, dtype=np.float64)
        n = K.shape[0]
        self.asked += n
        if n == 0:
            return np.empty((0,) + self._tail())
        K = K.reshape(n, -1)
        row_bytes = np.dtype((np.void, K.shape[1] * K.itemsize))
        view = K.view(row_bytes).reshape(n)
        _, first, inverse = np.unique(view, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        distinct = [view[i].tobytes() for i in first]
        at = np.array([self._index.get(b, -1) for b in distinct], dtype=np.int64)
        new = np.flatnonzero(at < 0)
        fresh: np.ndarray | None = None
        if len(new):
            fresh = np.asarray(score(first[new]), dtype=float)
            if fresh.ndim == 0 or fresh.shape[0] != len(new):  # not one output per row: judge the whole call as is
                self.scored += len(new) + n
                return np.asarray(score(np.arange(n)), dtype=float)
            self.scored += len(new)
        tail = fresh.shape[1:] if fresh is not None else self._tail()
        out_distinct = np.empty((len(first),) + tuple(tail))
        old = at >= 0
        if old.any():
            assert self._out is not None
            out_distinct[old] = self._out[at[old]]
        if fresh is not None:
            out_distinct[new] = fresh
            self._keep([distinct[i] for i in new], fresh)
        return out_distinct[inverse]

    def _tail(self) -> tuple[int, ...]:
        return tuple(self._out.shape[1:]) if self._out is not None else ()

    def _keep(self, keys: list[bytes], out: np.ndarray) -> None:
        room = self.max_rows - len(self._index)
        if room <= 0:
            return
        keys, out = keys[:room], out[:room]
        if self._out is not None and self._out.shape[1:] != out.shape[1:]:
            return  # outputs of another shape (cannot happen for one model): keep the first kind only
        start = len(self._index)
        need = start + len(keys)
        if self._out is None or need > len(self._out):
            cap = max(need, 2 * (len(self._out) if self._out is not None else 1024))
            grown = np.empty((min(cap, self.max_rows),) + out.shape[1:])
            if self._out is not None:
                grown[:start] = self._out[:start]
            self._out = grown
        self._out[start:need] = out
        for i, b in enumerate(keys):
            self._index[b] = start + i
