"""The search itself: every phase on a batch of starting rows, and the frozen result."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..domain import FeatureDomain
from .hop_skip_jump import run_hop_skip_jump
from .phases import (
    extremes_search,
    feature_importance,
    genetic_search,
    pair_search,
    shrink_flips,
    single_feature_search,
)
from .scoring import OutOfBudget, Scorer, Scores, Tracker
from .space import Space, plain_value, plausible_axes, same_values
from .values import (
    AdversarialResult,
    Change,
    FlipRule,
    HopSkipJumpResult,
    KnifeEdge,
    Perturbation,
    RowOutcome,
    ScoreFn,
    ScoreScale,
    ScoringFailures,
    SearchOptions,
)

_IDENTITY = ScoreScale()
_DEFAULTS = SearchOptions()


def adversarial_search(score_fn: ScoreFn, rows: pd.DataFrame, *, labels: Sequence[str],
                       kinds: Sequence[str], positions: Sequence[int] | None = None,
                       domains: Mapping[str, FeatureDomain], fixed: Sequence[str] = (),
                       rule: FlipRule, scale: ScoreScale = _IDENTITY,
                       options: SearchOptions = _DEFAULTS, rng: np.random.Generator,
                       hop_skip_jump: bool = True, searched: Sequence[str] | None = None) -> AdversarialResult:
    """Search the neighbourhood of each starting row (see the package docstring).

    ``rows`` holds the model's feature columns, in the model's order; ``score_fn`` maps such a
    frame to scores (P(positive) or the regression prediction; for ``rule.kind == "class"`` the
    n x k class probabilities) in one batched call. ``searched`` fixes the searched features (no
    importance phase), e.g. to search more rows with the features an earlier search chose.
    Candidates the model raises on or scores to non-finite values are counted in ``failures``.
    """
    features = tuple(rows.columns)
    fixed_t = tuple(f for f in features if f in set(fixed))
    movable = [f for f in features if f not in set(fixed_t)]
    axes = plausible_axes(domains, movable, margin=options.margin, max_levels=options.max_levels,
                          mass_share=options.mass_share)
    space = Space(rows, axes)
    scorer = Scorer(score_fn, options.max_queries, space, k_class=rule.kind == "class",
                    probability=rule.kind in ("threshold", "class") and scale.kind == "identity", labels=labels)
    n = space.V0.shape[0]
    positions_t = tuple(int(p) for p in positions) if positions is not None else tuple(range(n))
    s0 = scorer.start()  # the starting rows themselves are always scored
    tracker = Tracker(space, s0, rule, scale, options.small_distance)
    phase = _Phase(options.max_queries)
    importance, searched_j = _choose_features(phase, scorer, space, tracker, searched, options)
    knives: list[KnifeEdge] = []
    reach: dict[int, tuple[np.ndarray, float, np.ndarray, float]] = {}
    hsj = HopSkipJumpResult(False, note="nothing to search")
    if not searched_j:
        phase.notes.append("the score does not respond to any movable feature within its plausible range")
    else:
        reach = _search(phase, scorer, space, tracker, searched_j, options, rng, knives)
        hsj = _second_opinion(phase, scorer, space, tracker, kinds, labels, options, rng, rule=rule,
                              enabled=hop_skip_jump)
    outcomes = _outcomes(space, tracker, s0, labels, kinds, positions_t, reach, scorer)
    failures = scorer.failures()
    if failures.any or failures.skipped:
        phase.notes.append(_failure_note(failures))
    return AdversarialResult(
        rule=rule, scale=scale, axes=axes, importance=importance,
        searched=tuple(axes[j].name for j in searched_j), fixed=fixed_t, rows=outcomes,
        knife_edges=tuple(sorted(_relabel(knives, labels), key=lambda k: (k.feature, -k.jump, k.label))),
        hop_skip_jump=hsj, queries=scorer.rows, calls=scorer.calls, scored=scorer.scored,
        max_queries=options.max_queries,
        small_distance=options.small_distance, notes=tuple(phase.notes), failures=failures)


class _Phase:
    """Runs one search phase; a phase that reaches the query budget stops with a note."""

    def __init__(self, max_queries: int) -> None:
        self.max_queries = max_queries
        self.cap = max(max_queries // 8, 1)  # rows one broad phase may score
        self.notes: list[str] = []

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except OutOfBudget:
            note = f"{name}: stopped at the query budget ({self.max_queries:,} rows)"
            if note not in self.notes:
                self.notes.append(note)
            return None


def _choose_features(phase: _Phase, scorer: Scorer, space: Space, tracker: Tracker,
                     searched: Sequence[str] | None, options: SearchOptions
                     ) -> tuple[tuple[tuple[str, float], ...], list[int]]:
    """Every movable feature's importance, most important first, and the axes to search: the
    ``max_features`` most important that move the score (or the given ``searched``)."""
    axes = space.axes
    m = len(axes)
    if not m:
        return (), []
    if searched is not None:
        names = [ax.name for ax in axes]
        return (), [names.index(f) for f in searched if f in names]
    imp = phase("importance", lambda: feature_importance(scorer, space, tracker, phase.cap))
    if imp is None:
        return (), []
    order = sorted(range(m), key=lambda j: (-imp[j], axes[j].name))
    importance = tuple((axes[j].name, float(imp[j])) for j in order)
    return importance, [j for j in order if imp[j] > 1e-12][:options.max_features]


def _search(phase: _Phase, scorer: Scorer, space: Space, tracker: Tracker, searched: list[int],
            options: SearchOptions, rng: np.random.Generator, knives: list[KnifeEdge]
            ) -> dict[int, tuple[np.ndarray, float, np.ndarray, float]]:
    """The phases in order (they share the tracker); returns the extremes reached per row."""
    cap = phase.cap
    phase("single-feature search", lambda: single_feature_search(scorer, space, tracker, searched, options, knives))
    phase("pair search", lambda: pair_search(scorer, space, tracker, searched[:options.pair_features], cap * 2))
    phase("shrinking", lambda: shrink_flips(scorer, space, tracker))
    phase("genetic search", lambda: genetic_search(scorer, space, tracker, searched, options, rng, cap))
    phase("shrinking", lambda: shrink_flips(scorer, space, tracker))
    n = space.V0.shape[0]
    sub = np.unique(np.round(np.linspace(0, n - 1, min(options.extremes_rows, n))).astype(int))
    if not len(sub):
        return {}
    out = phase("extremes", lambda: extremes_search(scorer, space, tracker, searched, sub, options.grid))
    return out if out is not None else {}


def _second_opinion(phase: _Phase, scorer: Scorer, space: Space, tracker: Tracker, kinds: Sequence[str],
                    labels: Sequence[str], options: SearchOptions, rng: np.random.Generator, *, rule: FlipRule,
                    enabled: bool) -> HopSkipJumpResult:
    """HopSkipJump when enabled and the task has decisions (classification); its note, if any,
    joins the search notes."""
    if not enabled or options.hsj_rows <= 0:
        return HopSkipJumpResult(False, note="disabled")
    if rule.kind == "amount":
        return HopSkipJumpResult(False, note="classification only")
    hsj = run_hop_skip_jump(scorer, space, tracker, kinds, labels, options, rng)
    if hsj.note:
        phase.notes.append(f"HopSkipJump: {hsj.note}")
    return hsj


def _failure_note(failures: ScoringFailures) -> str:
    return (f"the model failed on {failures.raised + failures.unresolved + failures.non_finite:,} candidates "
            f"(raised: {failures.raised + failures.unresolved:,}, non-finite: {failures.non_finite:,}); "
            f"{failures.skipped:,} more held a value already seen to fail and were not sent; "
            f"{failures.split_calls:,} extra calls split failing batches")


def merge_results(first: AdversarialResult, more: AdversarialResult) -> AdversarialResult:
    """One result from a search and a later search of more rows (same rule, axes and searched
    features): rows, knife edges, queries and failures add up; importance and HopSkipJump come
    from the first."""
    notes = tuple(dict.fromkeys(n for n in first.notes + more.notes if not n.startswith("the model failed")))
    return replace(first, rows=first.rows + more.rows,
                   knife_edges=tuple(sorted(first.knife_edges + more.knife_edges,
                                            key=lambda k: (k.feature, -k.jump, k.label))),
                   queries=first.queries + more.queries, calls=first.calls + more.calls,
                   scored=first.scored + more.scored,
                   max_queries=first.max_queries + more.max_queries, notes=notes,
                   failures=first.failures.merged(more.failures))


def _relabel(knives: list[KnifeEdge], labels: Sequence[str]) -> list[KnifeEdge]:
    """Row numbers (used while searching) to row labels."""
    return [replace(k, label=str(labels[int(k.label)])) for k in knives]


def _outcomes(space: Space, tracker: Tracker, scores0: Scores, labels: Sequence[str], kinds: Sequence[str],
              positions: Sequence[int], reach: dict[int, tuple[np.ndarray, float, np.ndarray, float]],
              scorer: Scorer) -> tuple[RowOutcome, ...]:
    s0 = scores0.s
    n = len(s0)
    # collect every perturbation, materialise once
    items: list[tuple[int, str, np.ndarray, float, str]] = []
    for r in range(n):
        for name, best in (("flip", tracker.flip), ("swing_up", tracker.up), ("swing_down", tracker.down)):
            if np.isfinite(best.dist[r]):
                items.append((r, name, best.V[r], float(best.score[r]), best.method[r]))
        if r in reach:
            vmax, smax, vmin, smin = reach[r]
            items.append((r, "reach_max", vmax, smax, "ascent"))
            items.append((r, "reach_min", vmin, smin, "ascent"))
    per_row: dict[int, dict[str, Perturbation]] = {r: {} for r in range(n)}
    if items:
        rows = np.array([it[0] for it in items])
        V = np.array([it[2] for it in items])
        frame = space.frame(rows, V)
        d = space.distance(rows, V)
        names = [ax.name for ax in space.axes]
        for i, (r, name, v, s, method) in enumerate(items):
            changed = np.flatnonzero(~same_values(v, space.V0[r]))
            changes = tuple(Change(names[j], plain_value(space.base[names[j]].iloc[r]),
                                   plain_value(frame[names[j]].iloc[i])) for j in changed)
            cls = int(tracker.cls[r]) if name == "flip" else -1
            per_row[r][name] = Perturbation(changes, float(d[i]), float(s0[r]), float(s), method, class_after=cls)
    c0 = scorer.c0 if scorer.k_class else None  # k classes: each row's predicted class
    return tuple(RowOutcome(position=int(positions[r]), label=str(labels[r]), kind=str(kinds[r]),
                            score=float(s0[r]), **per_row[r],
                            start_class=int(c0[r]) if c0 is not None else -1,
                            margin=float(scores0.f[r]) if c0 is not None else float("nan")) for r in range(n))
