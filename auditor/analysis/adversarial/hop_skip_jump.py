"""ART's HopSkipJump as a second opinion on minimal flips over the continuous numeric features."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np

from .scoring import OutOfBudget, Scorer, Tracker, first_per_row
from .space import Space
from .values import HopSkipJumpResult, HopSkipJumpRow, SearchOptions


def run_hop_skip_jump(scorer: Scorer, space: Space, tracker: Tracker, kinds: Sequence[str],
                   labels: Sequence[str], options: SearchOptions, rng: np.random.Generator
                   ) -> HopSkipJumpResult:
    """ART's HopSkipJump on the continuous numeric features (the rest held by ``mask=``)."""
    attack_cols = [j for j, ax in enumerate(space.axes)
                   if not ax.categorical and (not ax.integer or ax.span >= 20)]
    if not attack_cols:
        return HopSkipJumpResult(False, note="no continuous numeric feature to attack")
    n = space.V0.shape[0]
    # confident random rows first, then the other random rows, then prototypes
    margin = np.abs(tracker.f0 - tracker.rule.value)
    order = sorted(range(n), key=lambda r: (kinds[r] != "random", -np.nan_to_num(margin[r], nan=-1.0), r))
    cand = [r for r in order if np.isfinite(space.V0[r, attack_cols]).all() and np.isfinite(tracker.f0[r])]
    if not cand:
        return HopSkipJumpResult(False, note="no complete rows to attack")
    rows0, calls0 = scorer.rows, scorer.calls
    try:
        starts = _hsj_starts(scorer, space, tracker, cand, attack_cols, rng)
    except OutOfBudget:
        return HopSkipJumpResult(False, note="query budget exhausted before the attack")
    attack_rows = [r for r in cand if r in starts][:options.hsj_rows]
    if not attack_rows:
        return HopSkipJumpResult(False, features=tuple(space.axes[j].name for j in attack_cols),
                                 note="no row flips through the continuous features alone within bounds")
    own = {r: float(tracker.flip.dist[r]) for r in attack_rows}
    try:
        adv = _run_art(scorer, space, tracker, attack_rows, attack_cols, starts, options, rng)
    except OutOfBudget:
        return HopSkipJumpResult(False, note="stopped at the query budget")
    except Exception as exc:  # noqa: BLE001 - ART failing for a model is a note, never an error
        msg = str(exc).splitlines()[0] if str(exc) else ""
        return HopSkipJumpResult(False, features=tuple(space.axes[j].name for j in attack_cols),
                                 queries=scorer.rows - rows0, calls=scorer.calls - calls0,
                                 note=f"failed on this model ({type(exc).__name__}: {msg})")
    # clip to bounds, round integers, re-score: only verified flips count
    r_arr = np.array(attack_rows)
    V = space.V0[r_arr].copy()
    for jj, j in enumerate(attack_cols):
        V[:, j] = space.axes[j].clip(adv[:, jj])
    try:
        sc = scorer(r_arr, V)
    except OutOfBudget:
        return HopSkipJumpResult(False, note="stopped at the query budget")
    d = tracker.update(r_arr, V, sc, "HopSkipJump")
    s = sc.s
    fl = tracker.rule.flipped(tracker.f0[r_arr], sc.f) & (d > 0)
    out = tuple(HopSkipJumpRow(str(labels[r]), bool(fl[i]), float(d[i]) if fl[i] else float("nan"),
                               own[r], float(s[i])) for i, r in enumerate(attack_rows))
    note = (f"only {len(attack_rows)} of {len(cand)} candidate rows had a flipping starting point"
            if len(attack_rows) < options.hsj_rows else "")
    return HopSkipJumpResult(True, features=tuple(space.axes[j].name for j in attack_cols), rows=out,
                             queries=scorer.rows - rows0, calls=scorer.calls - calls0, note=note)


def _hsj_starts(scorer: Scorer, space: Space, tracker: Tracker, cand: list[int], cols: list[int],
                rng: np.random.Generator, per_row: int = 30) -> dict[int, np.ndarray]:
    """A flipping point for each row that changes only ``cols``: the best flip so far restricted
    to those features, or the nearest of a seeded uniform sample of the plausible box."""
    rows_l, V_l = [], []
    for r in cand:
        v = space.V0[r].copy()
        if np.isfinite(tracker.flip.dist[r]):
            v[cols] = tracker.flip.V[r, cols]
            rows_l.append(r)
            V_l.append(v.copy())
        for _ in range(per_row):
            v = space.V0[r].copy()
            for j in cols:
                ax = space.axes[j]
                v[j] = ax.clip(np.array([rng.uniform(ax.low, ax.high)]))[0]
            rows_l.append(r)
            V_l.append(v)
    rows, V = np.array(rows_l), np.array(V_l)
    sc = scorer(rows, V)
    d = tracker.update(rows, V, sc, "random search")
    fl = tracker.rule.flipped(tracker.f0[rows], sc.f) & (d > 0)
    out: dict[int, np.ndarray] = {}
    k = np.flatnonzero(fl)
    if len(k):
        uniq, best = first_per_row(rows[k], d[k])
        for r, i in zip(uniq, k[best]):
            out[int(r)] = V[i, cols]
    return out


def _run_art(scorer: Scorer, space: Space, tracker: Tracker, rows: list[int], cols: list[int],
             starts: dict[int, np.ndarray], options: SearchOptions, rng: np.random.Generator) -> np.ndarray:
    """HopSkipJump over the row's axis values, standardised, with only ``cols`` unmasked; returns
    the adversarial values of ``cols`` in original units (one row per attacked row).

    ART attacks rows one at a time anyway, so each row gets its own black box whose decoding
    fills the features off the axes (fixed, constant) from that row."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*PyTorch not found.*")
        warnings.simplefilter("ignore")
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier

    m = len(space.axes)
    center = np.array([0.0 if ax.categorical else ax.low for ax in space.axes])
    scale = np.array([1.0 if ax.categorical else ax.std for ax in space.axes])
    lo = np.array([0.0 if ax.categorical else (ax.low - c) / s for ax, c, s in zip(space.axes, center, scale)])
    hi = np.array([len(ax.levels) - 1.0 if ax.categorical else (ax.high - c) / s
                   for ax, c, s in zip(space.axes, center, scale)])
    Z = (space.V0[np.array(rows)] - center) / scale
    Z = np.where(np.isnan(Z), -1.0, Z)  # unseen categorical codes (-1) stay masked
    clip_min = np.minimum(lo, Z.min(axis=0))
    clip_max = np.maximum(np.maximum(hi, Z.max(axis=0)), clip_min + 1.0)
    mask = np.zeros((1, m), dtype=np.float32)
    mask[0, cols] = 1.0
    rule, f0 = tracker.rule, tracker.f0
    cat = space.cat
    n_levels = np.array([len(ax.levels) if ax.categorical else 0 for ax in space.axes])
    integer = np.array([ax.integer and not ax.categorical for ax in space.axes])

    def black_box(r: int):
        def predict(z: np.ndarray) -> np.ndarray:
            V = np.asarray(z, dtype=float).reshape(-1, m) * scale + center
            # masked columns: undo float32 round-off (level codes, integers)
            V[:, cat] = np.rint(V[:, cat])
            V[:, cat] = np.where((V[:, cat] < 0) | (V[:, cat] >= n_levels[cat]), -1, V[:, cat])
            V[:, integer] = np.rint(V[:, integer])
            rows_r = np.full(len(V), r)
            sc = scorer(rows_r, V, decode=True)
            # the row's own label, switched where verified flipped; a point the model failed on
            # keeps the row's label (never counts as adversarial)
            own = float(f0[r] >= rule.value)
            flipped = rule.flipped(f0[rows_r], sc.f)
            label = np.where(flipped, 1.0 - own, own)
            return np.column_stack([1.0 - label, label])

        return BlackBoxClassifier(predict, input_shape=(m,), nb_classes=2,
                                  clip_values=(clip_min.astype(np.float32), clip_max.astype(np.float32)))

    out = np.empty((len(rows), len(cols)))
    state = np.random.get_state()
    art_logger = logging.getLogger("art")
    level = art_logger.level
    art_logger.setLevel(logging.ERROR)
    try:
        np.random.seed(int(rng.integers(0, 2**31 - 1)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, r in enumerate(rows):
                attack = HopSkipJump(black_box(r), targeted=False, norm=2, max_iter=int(options.hsj_max_iter),
                                     max_eval=int(options.hsj_max_eval), init_eval=int(options.hsj_init_eval),
                                     init_size=1, batch_size=max(int(options.hsj_max_eval), 64), verbose=False)
                init = Z[i:i + 1].copy()
                init[0, cols] = (starts[r] - center[cols]) / scale[cols]
                adv = attack.generate(x=Z[i:i + 1].astype(np.float32), x_adv_init=init.astype(np.float32),
                                      mask=mask.copy())
                out[i] = np.asarray(adv, dtype=float)[0, cols] * scale[cols] + center[cols]
    finally:
        np.random.set_state(state)
        art_logger.setLevel(level)
    return out
