"""The search phases: feature importance, single-feature sweeps with bisection (flips and knife
edges), pairs, shrinking line search, the seeded genetic search and coordinate-ascent extremes."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .scoring import Scorer, Tracker, candidates
from .space import Axis, Space, same_values
from .values import KnifeEdge, SearchOptions

_BIG = 1e6
# local steps around a row's own value, in standard deviations, for the single-feature sweep
_LOCAL_STEPS = (0.25, 0.5, 1.0)
# steps for the pairwise search, in standard deviations
_PAIR_STEPS = (0.1, 0.25, 0.5, 1.0)
_PAIR_LEVELS = 6
_IMPORTANCE_GRID = 7
_BISECT_STEPS = 14
_KNIFE_STEPS = 10
_SHRINK = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def feature_importance(scorer: Scorer, space: Space, tracker: Tracker, cap: int) -> np.ndarray:
    n, m = space.V0.shape
    grids = [ax.grid(_IMPORTANCE_GRID) if not ax.categorical else
             np.arange(min(len(ax.levels), _IMPORTANCE_GRID), dtype=float) for ax in space.axes]
    per_row = sum(len(g) for g in grids)
    use = np.arange(min(n, max(cap // max(per_row, 1), 2)))
    rows, cols, vals = [], [], []
    for j, g in enumerate(grids):
        rows.append(np.repeat(use, len(g)))
        cols.append(np.full(len(use) * len(g), j))
        vals.append(np.tile(g, len(use)))
    r, V = candidates(space.V0, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals))
    sc = scorer(r, V)
    tracker.update(r, V, sc, "single feature")
    s = sc.s
    out = np.zeros(m)
    start = 0
    for j, g in enumerate(grids):
        block = s[start:start + len(use) * len(g)].reshape(len(use), len(g))
        block = np.column_stack([block, tracker.s0[use]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rows the model failed on everywhere
            spread = np.nanmax(block, axis=1) - np.nanmin(block, axis=1)
        spread = spread[np.isfinite(spread)]
        out[j] = float(np.mean(spread)) if len(spread) else 0.0
        start += len(use) * len(g)
    return out


def _local_values(ax: Axis, v0: float, grid: np.ndarray, steps: Sequence[float]) -> np.ndarray:
    if ax.categorical:
        return np.array([c for c in grid if c != v0], dtype=float)
    vals = grid
    if np.isfinite(v0):
        local = v0 + ax.std * np.array([s * k for s in steps for k in (-1, 1)])
        if ax.integer:
            local = np.concatenate([local, [v0 - 1, v0 + 1]])
        vals = np.concatenate([grid, ax.clip(local)])
    vals = np.unique(vals)
    return vals[vals != v0] if np.isfinite(v0) else vals


def single_feature_search(scorer: Scorer, space: Space, tracker: Tracker, searched: Sequence[int],
            options: SearchOptions, knives: list[KnifeEdge]) -> None:
    n = space.V0.shape[0]
    rows, cols, vals, pair = [], [], [], []
    small = options.small_distance
    steps = sorted({small / 4, small / 2, small, *_LOCAL_STEPS})
    grids = {j: space.axes[j].grid(options.grid) for j in searched}
    for j in searched:
        ax = space.axes[j]
        for r in range(n):
            v = _local_values(ax, space.V0[r, j], grids[j], steps)
            rows.append(np.full(len(v), r))
            cols.append(np.full(len(v), j))
            vals.append(v)
            pair.append((r, j, len(v)))
    r_all, V = candidates(space.V0, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals))
    sc = scorer(r_all, V)
    tracker.update(r_all, V, sc, "single feature")
    s, f = sc.s, sc.f

    # per (row, feature): sort the sweep (with the row's own value) for bisection
    flip_iv: list[tuple[int, int, float, float]] = []  # row, col, a (no flip), b (flip)
    knife_iv: list[tuple[int, int, float, float, float, float]] = []
    start = 0
    for (r, j, k) in pair:
        ax = space.axes[j]
        xs, ss, fs = V[start:start + k, j], s[start:start + k], f[start:start + k]
        start += k
        if ax.categorical:
            continue
        v0 = space.V0[r, j]
        if not (np.isfinite(v0) and np.isfinite(tracker.f0[r])):
            continue
        ok = np.isfinite(ss) & np.isfinite(fs)  # points the model failed on are left out of the sweep
        xs = np.append(xs[ok], v0)
        ss = np.append(ss[ok], tracker.s0[r])
        fs = np.append(fs[ok], tracker.f0[r])
        o = np.argsort(xs, kind="stable")
        xs, ss, fs = xs[o], ss[o], fs[o]
        i0 = int(np.flatnonzero(xs == v0)[0])
        fl = tracker.rule.flipped(np.full(len(fs), tracker.f0[r]), fs)
        right = np.flatnonzero(fl[i0 + 1:])
        if len(right):
            b = i0 + 1 + int(right[0])
            flip_iv.append((r, j, xs[b - 1], xs[b]))
        left = np.flatnonzero(fl[:i0])
        if len(left):
            b = int(left[-1])
            flip_iv.append((r, j, xs[b + 1], xs[b]))
        width = options.knife_width * ax.span
        if ax.integer and width < 1:
            continue
        u = tracker.scale(ss)
        jumps = np.abs(np.diff(u))
        if len(jumps) and jumps.max() >= options.knife_jump:
            i = int(np.argmax(jumps))
            knife_iv.append((r, j, xs[i], xs[i + 1], ss[i], ss[i + 1]))
    _bisect_flips(scorer, space, tracker, flip_iv)
    _bisect_knives(scorer, space, tracker, knife_iv, options, knives)


def _mid(a: np.ndarray, b: np.ndarray, integer: np.ndarray) -> np.ndarray:
    mid = (a + b) / 2.0
    return np.where(integer, a + np.trunc((b - a) / 2.0), mid)


def _bisect_flips(scorer: Scorer, space: Space, tracker: Tracker,
                  intervals: list[tuple[int, int, float, float]]) -> None:
    if not intervals:
        return
    r = np.array([iv[0] for iv in intervals])
    c = np.array([iv[1] for iv in intervals])
    a = np.array([iv[2] for iv in intervals], dtype=float)
    b = np.array([iv[3] for iv in intervals], dtype=float)
    integer = np.array([space.axes[j].integer for j in c])
    tol = np.where(integer, 1.0, 1e-4 * space.std[c])
    for _ in range(_BISECT_STEPS):
        active = np.flatnonzero(np.abs(b - a) > tol + 1e-12)
        if not len(active):
            break
        mid = _mid(a[active], b[active], integer[active])
        rows, V = candidates(space.V0, r[active], c[active], mid)
        sc = scorer(rows, V)
        tracker.update(rows, V, sc, "single feature")
        fl = tracker.rule.flipped(tracker.f0[rows], sc.f)  # a failed point counts as no flip
        b[active] = np.where(fl, mid, b[active])
        a[active] = np.where(fl, a[active], mid)


def _bisect_knives(scorer: Scorer, space: Space, tracker: Tracker, intervals: list, options: SearchOptions,
                   knives: list[KnifeEdge]) -> None:
    """Narrow each steepest sweep interval to the half with the larger score change. The jump is
    read when the interval first fits in ``knife_width`` of the span; narrowing then goes on
    (to 1/16 of that) only to locate the step."""
    if not intervals:
        return
    r = np.array([iv[0] for iv in intervals])
    c = np.array([iv[1] for iv in intervals])
    a, b, sa, sb = (np.array([iv[k] for iv in intervals], dtype=float) for k in (2, 3, 4, 5))
    integer = np.array([space.axes[j].integer for j in c])
    span = np.array([space.axes[j].span for j in c])
    width = options.knife_width * span
    jump = np.full(len(r), np.nan)
    at = np.full(len(r), np.nan)
    dead = np.zeros(len(r), dtype=bool)  # the model failed inside the interval: stop narrowing it

    def record() -> None:
        fits = np.isnan(jump) & (np.abs(b - a) <= width + 1e-12)
        jump[fits] = np.abs(tracker.scale(sb[fits]) - tracker.scale(sa[fits]))
        at[fits] = np.abs(b[fits] - a[fits]) / span[fits]

    record()
    for _ in range(_KNIFE_STEPS):
        active = np.flatnonzero((np.abs(b - a) > width / 16) & (~integer | (np.abs(b - a) > 1))
                                & (np.isnan(jump) | (jump >= options.knife_jump)) & ~dead)
        if not len(active):
            break
        mid = _mid(a[active], b[active], integer[active])
        rows, V = candidates(space.V0, r[active], c[active], mid)
        sc = scorer(rows, V)
        tracker.update(rows, V, sc, "single feature")
        s = sc.s
        failed = ~np.isfinite(s)
        dead[active[failed]] = True
        active, mid, s = active[~failed], mid[~failed], s[~failed]
        u, ua, ub = tracker.scale(s), tracker.scale(sa[active]), tracker.scale(sb[active])
        left = np.abs(u - ua) >= np.abs(ub - u)
        b[active] = np.where(left, mid, b[active])
        sb[active] = np.where(left, s, sb[active])
        a[active] = np.where(left, a[active], mid)
        sa[active] = np.where(left, sa[active], s)
        record()
    for i in np.flatnonzero(jump >= options.knife_jump):
        lo, hi = sorted((a[i], b[i]))
        s_lo, s_hi = (sa[i], sb[i]) if a[i] <= b[i] else (sb[i], sa[i])
        knives.append(KnifeEdge(space.axes[c[i]].name, str(int(r[i])), float(lo), float(hi), float(s_lo),
                                float(s_hi), float(jump[i]), float(at[i])))


def _pair_values(ax: Axis, v0: float) -> np.ndarray:
    if ax.categorical:
        return np.array([c for c in range(min(len(ax.levels), _PAIR_LEVELS)) if c != v0], dtype=float)
    if not np.isfinite(v0):
        return ax.grid(5)
    v = np.unique(ax.clip(v0 + ax.std * np.array([s * k for s in _PAIR_STEPS for k in (-1, 1)])))
    return v[v != v0]


def pair_search(scorer: Scorer, space: Space, tracker: Tracker, cols: Sequence[int], cap: int) -> None:
    n = space.V0.shape[0]
    if len(cols) < 2:
        return
    blocks_r, blocks_V = [], []
    for x in range(len(cols)):
        for y in range(x + 1, len(cols)):
            j1, j2 = cols[x], cols[y]
            for r in range(n):
                v1 = _pair_values(space.axes[j1], space.V0[r, j1])
                v2 = _pair_values(space.axes[j2], space.V0[r, j2])
                if not len(v1) or not len(v2):
                    continue
                g1, g2 = np.meshgrid(v1, v2, indexing="ij")
                V = np.repeat(space.V0[r:r + 1], g1.size, axis=0)
                V[:, j1], V[:, j2] = g1.ravel(), g2.ravel()
                blocks_r.append(np.full(g1.size, r))
                blocks_V.append(V)
    if not blocks_r:
        return
    rows, V = np.concatenate(blocks_r), np.concatenate(blocks_V)
    if len(rows) > cap:  # keep whole rows, in order, up to the cap
        keep_rows = np.unique(rows)[: max(int(cap * n / len(rows)), 1)]
        keep = np.isin(rows, keep_rows)
        rows, V = rows[keep], V[keep]
    tracker.update(rows, V, scorer(rows, V), "pair")


def shrink_flips(scorer: Scorer, space: Space, tracker: Tracker) -> None:
    """Line search towards the row on each best flip, and the flip with one change undone."""
    best = tracker.flip
    rows_l, V_l, meth = [], [], []
    for r in np.flatnonzero(np.isfinite(best.dist)):
        v0, v1 = space.V0[r], best.V[r]
        changed = np.flatnonzero(~same_values(v1, v0))
        num = [j for j in changed if not space.cat[j] and np.isfinite(v0[j])]
        cands = []
        if num:
            for t in _SHRINK:
                v = v1.copy()
                for j in num:
                    v[j] = space.axes[j].clip(np.array([v0[j] + t * (v1[j] - v0[j])]))[0]
                cands.append(v)
        if len(changed) > 1:
            for j in changed:
                v = v1.copy()
                v[j] = v0[j]
                cands.append(v)
        for v in cands:
            rows_l.append(r)
            V_l.append(v)
            meth.append(best.method[r])
    if not rows_l:
        return
    rows, V = np.array(rows_l), np.array(V_l)
    sc = scorer(rows, V)
    # keep each candidate's own method label
    for method in sorted(set(meth)):
        k = np.array([mm == method for mm in meth])
        tracker.update(rows[k], V[k], sc.take(k), method)


def genetic_search(scorer: Scorer, space: Space, tracker: Tracker, searched: Sequence[int],
             options: SearchOptions, rng: np.random.Generator, cap: int) -> None:
    n, m = space.V0.shape
    P = int(options.population)
    if P <= 0 or options.generations < 0:
        return
    per_row = P * (options.generations + 1)
    use = np.arange(min(n, max(cap // max(per_row, 1), 1)))
    cols = np.asarray(searched, dtype=int)
    scales = np.array([0.1, 0.25, 0.5, 1.0])
    E = min(6, P)

    def random_children(rows: np.ndarray) -> np.ndarray:
        """Random changes of 2-4 searched features per child, of random size."""
        k = len(rows)
        V = space.V0[rows].copy()
        hi = min(4, len(cols))
        n_change = rng.integers(min(2, hi), hi + 1, size=k)
        rank = np.argsort(rng.random((k, len(cols))), axis=1).argsort(axis=1)
        chosen = rank < n_change[:, None]
        values = _random_values(space, cols, V[:, cols], rng.choice(scales, size=(k, 1)), rng)
        V[:, cols] = np.where(chosen, values, V[:, cols])
        return V

    rows = np.repeat(use, P)
    V = random_children(rows)
    elite_V = np.repeat(space.V0[use][:, None, :], E, axis=1)
    elite_pen = np.full((len(use), E), np.inf)
    pos = {int(r): i for i, r in enumerate(use)}
    for gen in range(options.generations + 1):
        sc = scorer(rows, V)
        d = tracker.update(rows, V, sc, "random search")
        gap = tracker.rule.gap(tracker.f0[rows], sc.f)
        pen = np.where(gap == 0.0, d, _BIG + gap * 1e3 + d * 1e-3)
        # merge into the elites
        ri = np.array([pos[int(r)] for r in rows])
        allV = np.concatenate([elite_V.reshape(-1, m), V])
        allP = np.concatenate([elite_pen.ravel(), pen])
        allR = np.concatenate([np.repeat(np.arange(len(use)), E), ri])
        order = np.lexsort((allP, allR))
        counts = np.zeros(len(use), int)
        new_V = elite_V.copy()
        new_P = elite_pen.copy()
        for k in order:
            i = allR[k]
            if counts[i] < E:
                new_V[i, counts[i]], new_P[i, counts[i]] = allV[k], allP[k]
                counts[i] += 1
        elite_V, elite_pen = new_V, new_P
        if gen == options.generations:
            break
        # children: crossover of two elites, shrink/jitter, revert, add
        ia, ib = rng.integers(0, E, size=len(rows)), rng.integers(0, E, size=len(rows))
        pa, pb = elite_V[ri, ia], elite_V[ri, ib]
        cross = (rng.random((len(rows), m)) < 0.5) & (rng.random(len(rows)) < 0.3)[:, None]
        child = np.where(cross, pb, pa)
        V0r = space.V0[rows]
        numeric = ~space.cat
        factor = rng.uniform(0.6, 1.05, size=child.shape)
        jitter = rng.normal(0.0, 0.05, size=child.shape) * space.std
        moved = ~same_values(child, V0r) & numeric
        shrunk = np.where(np.isnan(V0r), child, V0r + factor * (child - V0r) + jitter)
        child = np.where(moved, shrunk, child)
        revert = (rng.random(child.shape) < 0.15) & ~same_values(child, V0r)
        child = np.where(revert, V0r, child)
        add = (rng.random(len(rows)) < 0.3)[:, None] & (rng.integers(0, len(cols), size=len(rows))[:, None]
                                                         == np.arange(len(cols))[None, :])
        fresh = _random_values(space, cols, V0r[:, cols], np.full((len(rows), 1), 0.25), rng)
        child[:, cols] = np.where(add, fresh, child[:, cols])
        for j in range(m):
            if not space.cat[j]:
                child[:, j] = np.where(np.isnan(child[:, j]), child[:, j], space.axes[j].clip(child[:, j]))
        mask = np.zeros(m, dtype=bool)
        mask[cols] = True
        V = np.where(mask, child, V0r)


def _random_values(space: Space, cols: np.ndarray, V0: np.ndarray, scale: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Random values for ``cols`` near ``V0`` (normal steps of ``scale`` std, at least one unit
    for integers) or random levels; clipped to the plausible bounds."""
    out = np.empty_like(V0)
    noise = rng.normal(0.0, 1.0, size=V0.shape) * scale
    for i, j in enumerate(cols):
        ax = space.axes[j]
        if ax.categorical:
            out[:, i] = rng.integers(0, len(ax.levels), size=len(V0))
            continue
        base = np.where(np.isfinite(V0[:, i]), V0[:, i], (ax.low + ax.high) / 2.0)
        step = noise[:, i] * ax.std
        if ax.integer:
            step = np.where(np.abs(step) < 1, np.sign(step + 1e-12), step)
        out[:, i] = ax.clip(base + step)
    return out


def extremes_search(scorer: Scorer, space: Space, tracker: Tracker, searched: Sequence[int], sub: np.ndarray,
              grid: int) -> dict[int, tuple[np.ndarray, float, np.ndarray, float]]:
    """Coordinate ascent (and descent) from each row of ``sub``; two sweeps, batched per feature."""
    k = len(sub)
    rows = np.concatenate([sub, sub])
    V = space.V0[rows].copy()
    s = tracker.s0[rows].copy()
    sign = np.concatenate([np.ones(k), -np.ones(k)])
    for _sweep in range(2):
        changed = False
        for j in searched:
            g = space.axes[j].grid(grid)
            cand_r = np.repeat(np.arange(len(rows)), len(g))
            C = np.repeat(V, len(g), axis=0)
            C[:, j] = np.tile(g, len(rows))
            scs = scorer(rows[cand_r], C)
            tracker.update(rows[cand_r], C, scs, "ascent")
            sc = scs.s
            block = np.where(np.isfinite(sc), sc * sign[cand_r], -np.inf).reshape(len(rows), len(g))
            best = np.argmax(block, axis=1)
            with np.errstate(invalid="ignore"):
                gain = block[np.arange(len(rows)), best] - s * sign
            upd = np.isfinite(gain) & (gain > 1e-12)
            if upd.any():
                changed = True
                V[upd, j] = g[best[upd]]
                s[upd] = sc.reshape(len(rows), len(g))[np.arange(len(rows)), best][upd]
        if not changed:
            break
    return {int(r): (V[i], float(s[i]), V[k + i], float(s[k + i])) for i, r in enumerate(sub)}
