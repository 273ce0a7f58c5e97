"""``sensitivity.adversarial``: small, plausible input changes that flip the decision or swing the score."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from ...analysis.adversarial import (
    AdversarialResult,
    Axis,
    FlipRule,
    KnifeEdge,
    Perturbation,
    RowOutcome,
    ScoreFn,
    ScoreScale,
    ScoreSurface,
    SearchOptions,
    adversarial_search,
    merge_results,
    plausible_axes,
    score_surface,
    select_start_rows,
    typical_row,
)
from ...analysis.domain import FeatureDomain, feature_domains
from ...analysis.intervals import wilson
from ...analysis.sampling import sample_positions
from ...findings import Evidence, Figure, Finding, Rule, Severity, Table
from ...model import final_estimator, is_tree_model
from ...wording import level, pct, value_text
from ..base import SENSITIVITY, Check, budget, setting, threshold

if TYPE_CHECKING:
    from ...context import AuditContext

_KIND_NAMES = {"high": "high score", "low": "low score", "near": "near threshold", "random": "random sample"}


def _kind_name(kind: str, task: str) -> str:
    if task == "multiclass" and kind in ("high", "near"):  # k classes: prototypes by their class margin
        return "largest class margin" if kind == "high" else "smallest class margin"
    return "near median prediction" if kind == "near" and task != "classification" else _KIND_NAMES[kind]


@dataclass(frozen=True)
class AdversarialMeasurement:
    """The search result plus what judging needs: the task, the flip rule, the 0-1 judging scale."""

    task: str
    threshold: float  # classification decision threshold (nan for regression)
    result: AdversarialResult
    surface: ScoreSurface | None
    surface_queries: int
    prediction_range: tuple[float, float]  # observed min/max of the test scores
    n_test: int
    immutable: tuple[str, ...]
    protected: tuple[str, ...]
    multiclass: bool = False
    classes: tuple[str, ...] = ()  # class labels in the model's order (k classes)
    test_non_finite: int = 0  # test rows the model scored to non-finite values (left out of the search)
    stages: tuple[int, ...] = ()  # randomly sampled rows searched after each stage
    per_row_budget: int = 0
    # why the sample stopped growing: "settled" (no interval straddles a threshold), "max_rows" or
    # "queries" (a budget ran out while one did), "test rows" (every test row was searched); "" unknown
    sample_end: str = ""
    tree_model: bool = False  # the model is a tree or tree ensemble (steps are its nature)


class _Share(NamedTuple):
    """A share k / n with its Wilson interval."""

    value: float
    low: float
    high: float

    def straddles(self, threshold: float) -> bool:
        """Whether the interval holds ``threshold`` without its lower end reaching it: the rule
        reading the lower end could still go either way."""
        return self.low < threshold <= self.high


class _Watch(NamedTuple):
    """A share a severity rule reads from the interval (k of n) and the thresholds it is read against."""

    name: str
    k: int
    n: int
    thresholds: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class _Task:
    """How the search reads the model on this task: the test scores, which rows it can start from,
    what the starting rows are chosen by, the flip rule, the judging scale and the score function."""

    scores: np.ndarray  # the test scores (P(positive) or the prediction)
    finite: np.ndarray  # test rows the model scores to finite values
    select: np.ndarray  # what the prototypes are chosen by (score, or the k-class margin)
    center: float  # the near-threshold prototypes are nearest to this
    prototypes: tuple[str, ...]
    rule: FlipRule
    scale: ScoreScale
    score_fn: ScoreFn


@dataclass
class AdversarialCheck(Check[AdversarialMeasurement]):
    """Searches for small, plausible changes to real test rows that flip the decision or swing the score.

    Starting rows are high-score, low-score and near-threshold prototypes plus a seeded random
    sample. Features move within their observed range plus ``margin`` of the span (integers stay
    integers, categorical features take known levels); declared immutable features and protected
    attributes never move. The smallest flip (classification: crossing the threshold; regression:
    a move of more than ``flip_std`` standard deviations of the test predictions) is found by
    batched single-feature sweeps with bisection, pairs, a seeded genetic search and ART's
    HopSkipJump on the continuous features; extremes by batched coordinate ascent. Distances are
    in feature standard deviations (+1 per categorical change); a change is *small* at
    ``small_distance`` or less. A numeric value held by at least ``mass_point_share`` of the rows
    (the zeros of a zero-inflated amount such as a capital gain) is a mass point: leaving or
    reaching it counts at least 1, like a categorical change (issue 10: on UCI Adult a move from
    no capital gain to a gain of 58, in the empty gap below the smallest observed gain, was 0.008
    standard deviations and flipped confident decisions).

    k classes: a flip is a change of the predicted class (arg max); the search minimises the margin
    P(predicted class) - P(runner-up); swings, knife edges and the score surface read the
    probability of the row's predicted class; a decision is confident when its margin is at least
    2 x ``confident_margin`` (near at under 2 x ``hair_margin``), which for two classes at a 0.5
    threshold is the same as |score - threshold| >= ``confident_margin``.

    Severity (shares are over the random sample, judged by the conservative (lower) end of their
    Wilson interval at ``confidence``; regression reads scores as percentile ranks):
    ``high`` when the interval of the share of confident decisions
    (|score - threshold| >= ``confident_margin``) that flip under a small change lies at or above
    ``high_share`` (and at least ``min_rows`` flip), or the same for rows that swing from below
    ``extreme_low`` to above ``extreme_high`` (or back) under a small change; ``medium`` when the
    flip share's lower end is at or above ``medium_share`` (at least ``min_rows`` flips), the
    swing share's lower end at or above ``medium_share`` (at least ``min_rows`` sampled swings), or a
    knife-edge step: a change of at most ``knife_width`` of a feature's span moving the
    score by ``knife_jump`` or more, for at least ``min_rows`` rows, the lower end of the sampled
    share at or above ``knife_share``; ``low`` for fewer confident flips, rarer swings or a rarer
    knife edge. Issue 10: a tree or tree ensemble is a step function by construction, so its
    knife edges are medium only when they also flip confident decisions (at least ``min_rows``
    confident sampled rows whose smallest small flip changes that feature alone, the lower end of
    their share at or above ``medium_share``), else low; swings, like flips, need the interval's
    lower end at ``medium_share`` to be medium (a single swing was medium before).
    Flips of less confident rows are ``info`` (within ``hair_margin`` of the threshold they are
    expected). While the interval of any share a rule reads (confident small flips, swings, each
    knife edge's sampled rows and, for trees, the confident flips it causes) straddles one of its
    thresholds, the random sample is doubled, up to ``max_rows`` searched rows and ``row_queries``
    per row within ``max_queries`` (a share no sampled row shows is not enlarged for). An
    interval that still straddles when the budget runs out is judged by its lower end (a flip
    share whose interval holds ``high_share`` is medium, not high), and the rule text says so.

    Candidates the model raises on or scores to NaN, infinity or a probability outside [0, 1] are
    counted, not fatal: ``high`` for non-finite output returned without an error, or an exception
    on in-domain input (changed values within the observed range, seen levels); ``medium`` for an
    exception only on out-of-domain input (the margin beyond the observed range), worded as an
    input constraint the deployment must enforce.
    """

    id: ClassVar[str] = "sensitivity.adversarial"
    family = SENSITIVITY
    order = 2
    cost = 15
    title: ClassVar[str] = "Adversarial example search"

    rows: int = budget(80, "starting rows searched first: prototypes plus a seeded random sample")
    prototype_share: float = setting(0.3, "share of the starting rows that are high-score, low-score and "
                                          "near-threshold prototypes")
    max_features: int = budget(8, "most important features searched")
    pair_features: int = budget(4, "most important features searched in pairs")
    grid: int = budget(25, "grid points per feature for the single-feature sweep and the extremes")
    margin: float = setting(0.10, "share of a feature's observed span the search may go beyond its observed range")
    small_distance: float = threshold(0.25, "largest change that counts as small (feature standard deviations, "
                                            "+1 per categorical change)")
    mass_point_share: float = setting(0.5, "share of the rows a numeric value must hold to be a mass point (the "
                                           "zeros of an amount): leaving or reaching it counts at least 1, like a "
                                           "categorical change")
    hair_margin: float = threshold(0.05, "|score - threshold| under which a decision is near the threshold (its "
                                         "flips are expected: info)")
    confident_margin: float = threshold(0.25, "|score - threshold| from which a decision is confident")
    high_share: float = threshold(0.05, "lower end of the interval of the confident small-flip share (or the swing "
                                        "share) at which it is high")
    min_rows: int = threshold(2, "fewest rows that flip, swing or show a knife edge for medium or high")
    extreme_low: float = threshold(0.1, "score (0-1 scale) below which a row is at the low extreme, for swings")
    extreme_high: float = threshold(0.9, "score (0-1 scale) above which a row is at the high extreme, for swings")
    knife_width: float = threshold(0.02, "largest share of a feature's observed span a knife-edge step may take")
    knife_jump: float = threshold(0.3, "score change (0-1 scale) across such a step that makes it a knife edge")
    knife_share: float = threshold(0.1, "lower end of the interval of the sampled share of rows with a knife edge "
                                        "at which it is medium")
    flip_std: float = setting(1.0, "regression: a flip is a prediction move of more than this many standard "
                                   "deviations of the test predictions")
    range_excess: float = threshold(0.5, "regression: share of the test prediction range the reached predictions "
                                         "may exceed it by before it is low")
    max_queries: int = budget(1_000_000, "model rows scored at most by the whole check")
    row_queries: int = budget(2_500, "model rows scored per searched row")
    max_rows: int = budget(800, "most rows searched when the sample is enlarged")
    medium_share: float = threshold(0.01, "lower end of the interval of the confident small-flip share at which "
                                          "it is medium")
    confidence: float = setting(0.95, "confidence level of the Wilson intervals of the shares")
    hop_skip_jump: bool = setting(True, "run ART's HopSkipJump as a second opinion (classification)")
    population: int = budget(32, "genetic search: candidates per row and generation")
    generations: int = budget(5, "genetic search: generations")
    extremes_rows: int = budget(20, "starting rows for the coordinate ascent to the score extremes")
    hsj_rows: int = budget(3, "rows HopSkipJump attacks")
    hsj_max_iter: int = budget(5, "HopSkipJump iterations per row")
    hsj_max_eval: int = budget(50, "HopSkipJump evaluations per gradient estimate")
    hsj_init_eval: int = budget(10, "HopSkipJump initial evaluations per gradient estimate")
    surface_grid: int = budget(30, "grid points per axis of the score surface")
    max_examples: int = budget(10, "rows shown in the examples and scoring-failures tables")

    # ---- measure --------------------------------------------------------------------------------
    def _axes(self, ctx: AuditContext) -> tuple[tuple[Axis, ...], dict[str, FeatureDomain], tuple[str, ...]]:
        X = ctx.X("test")
        frame = pd.concat([ctx.X("train"), X], ignore_index=True) if ctx.has_train else X
        domains = feature_domains(frame, categorical=ctx.categorical, features=ctx.features)
        fixed = tuple(f for f in ctx.features
                      if f in set(ctx.config.expect.immutable) or f in set(ctx.protected))
        movable = [f for f in ctx.features if f not in fixed]
        return plausible_axes(domains, movable, margin=self.margin, mass_share=self.mass_point_share), domains, fixed

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not np.isfinite(ctx.scores("test")).any():
            return "the model returns no finite score for any test row: nothing to search from"
        axes, _, fixed = self._axes(ctx)
        if not axes:
            why = " (held fixed: " + ", ".join(fixed) + ")" if fixed else ""
            return f"no feature can be changed: every feature is constant or held fixed{why}"
        return None

    def measure(self, ctx: AuditContext) -> AdversarialMeasurement:
        X = ctx.X("test")
        _, domains, fixed = self._axes(ctx)
        task = self._task(ctx)
        rng = ctx.rng(self.id)
        pool = np.flatnonzero(task.finite)  # rows the model already fails on are evidence, not starting rows
        pos, kinds = select_start_rows(task.select[pool], n=self.rows, prototype_share=self.prototype_share,
                                       center=task.center, rng=rng, prototypes=task.prototypes)
        positions = pool[pos]
        # the budget scales with the rows searched: row_queries each, the whole check capped at max_queries
        search_budget = max(self.max_queries - self.surface_grid ** 2 - 1, 0)
        options = self._search_options(min(int(self.row_queries) * len(positions), search_budget))
        result = adversarial_search(task.score_fn, X.iloc[positions], labels=_labels(ctx, positions), kinds=kinds,
                                    positions=positions.tolist(), domains=domains, fixed=fixed, rule=task.rule,
                                    scale=task.scale, options=options, rng=rng, hop_skip_jump=self.hop_skip_jump)
        # a larger sample while the interval of a share a severity rule reads straddles its threshold
        used_rows = {int(p) for p in positions}
        stages: tuple[int, ...] = (sum(k == "random" for k in kinds),)
        end = "settled"
        while result.searched:
            if not self._needs_more(self._measurement(ctx, task, result, stages)):
                break
            rest = np.array([p for p in pool if int(p) not in used_rows], dtype=int)
            by_queries = (search_budget - result.queries) // max(int(self.row_queries), 1)
            add = min(stages[-1], self.max_rows - len(result.rows), len(rest), by_queries)
            if add <= 0:
                end = ("test rows" if not len(rest) else "max_rows" if len(result.rows) >= self.max_rows
                       else "queries")
                break
            new = rest[sample_positions(len(rest), add, rng)]
            used_rows.update(int(p) for p in new)
            more = adversarial_search(
                task.score_fn, X.iloc[new], labels=_labels(ctx, new), kinds=("random",) * add,
                positions=new.tolist(), domains=domains, fixed=fixed, rule=task.rule, scale=task.scale,
                options=replace(options, max_queries=int(self.row_queries) * add, extremes_rows=0, hsj_rows=0),
                rng=rng, hop_skip_jump=False, searched=result.searched)
            result = merge_results(result, more)
            stages += (stages[-1] + add,)
        return replace(self._measurement(ctx, task, result, stages, self._surface(ctx, task, pool, result)),
                       sample_end=end)

    def _task(self, ctx: AuditContext) -> _Task:
        features = list(ctx.features)
        preds = ctx.predictions("test")
        scores = np.asarray(preds.score, dtype=float)
        if ctx.is_multiclass:
            # k classes: a flip is a change of the predicted class; the search reads the margin
            # P(predicted class) - P(runner-up), swings and knife edges P(start row's class)
            P = np.asarray(preds.proba, dtype=float)
            finite = np.isfinite(P).all(axis=1)
            srt = np.sort(np.where(finite[:, None], P, 0.0), axis=1)
            return _Task(scores, finite, srt[:, -1] - srt[:, -2], 0.0, ("high", "near"), FlipRule("class", 0.0),
                         ScoreScale(), lambda frame: _proba(ctx, frame[features]))
        finite = np.isfinite(scores)
        if ctx.is_classification:
            return _Task(scores, finite, scores, float(ctx.threshold), ("high", "low", "near"),
                         FlipRule("threshold", float(ctx.threshold)), ScoreScale(), ctx.score_fn())
        ok = scores[finite]
        return _Task(scores, finite, scores, float(np.median(ok)) if len(ok) else 0.0, ("high", "low", "near"),
                     FlipRule("amount", float(self.flip_std * np.std(ok))), ScoreScale.rank_of(ok), ctx.score_fn())

    def _search_options(self, max_queries: int) -> SearchOptions:
        return SearchOptions(
            margin=self.margin, grid=self.grid, max_features=self.max_features, pair_features=self.pair_features,
            mass_share=self.mass_point_share,
            small_distance=self.small_distance, knife_width=self.knife_width, knife_jump=self.knife_jump,
            population=self.population, generations=self.generations, extremes_rows=self.extremes_rows,
            max_queries=max_queries, hsj_rows=self.hsj_rows if self.hop_skip_jump else 0,
            hsj_max_iter=self.hsj_max_iter, hsj_max_eval=self.hsj_max_eval, hsj_init_eval=self.hsj_init_eval)

    def _surface(self, ctx: AuditContext, task: _Task, pool: np.ndarray,
                 result: AdversarialResult) -> ScoreSurface | None:
        """The score over the two most important searched features at a typical test row."""
        by_name = {a.name: a for a in result.axes}
        top = [by_name[f] for f in result.searched[:2]]
        if not top:
            return None
        X = ctx.X("test")
        base = int(pool[typical_row(X.iloc[pool], result.axes)])
        surface_fn = task.score_fn
        if ctx.is_multiclass:
            features = list(ctx.features)
            c_base = int(np.argmax(np.asarray(ctx.predictions("test").proba)[base]))
            surface_fn = lambda frame: _proba(ctx, frame[features])[:, c_base]  # noqa: E731
        return score_surface(surface_fn, X.iloc[[base]], top[0], top[1] if len(top) > 1 else None,
                             n=self.surface_grid, label=_labels(ctx, np.array([base]))[0],
                             probability=ctx.is_classification)

    def _measurement(self, ctx: AuditContext, task: _Task, result: AdversarialResult, stages: tuple[int, ...],
                     surface: ScoreSurface | None = None) -> AdversarialMeasurement:
        mc, finite, scores = ctx.is_multiclass, task.finite, task.scores
        return AdversarialMeasurement(
            task=ctx.task, threshold=float(ctx.threshold) if ctx.is_classification and not mc else float("nan"),
            result=result, surface=surface, surface_queries=surface.queries if surface is not None else 0,
            prediction_range=(float(np.min(scores[finite])), float(np.max(scores[finite]))) if finite.any()
            else (float("nan"), float("nan")), n_test=len(scores),
            immutable=tuple(f for f in ctx.config.expect.immutable if f in ctx.features),
            protected=tuple(f for f in ctx.protected if f in ctx.features), multiclass=mc,
            classes=tuple(str(c) for c in ctx.classes) if mc else (), test_non_finite=int((~finite).sum()),
            stages=stages, per_row_budget=int(self.row_queries),
            tree_model=is_tree_model(final_estimator(ctx.model.adapter)))

    def _needs_more(self, m: AdversarialMeasurement) -> bool:
        """Whether the interval of a share some severity rule reads (flips, swings, each knife
        edge's sampled share and, for trees, its confident flips) straddles one of its thresholds:
        then more sampled rows could settle the severity. A share no sampled row shows (0 of n)
        is not enlarged for: its rule reads 0, and a clean model should not pay the whole budget
        to narrow an empty interval."""
        for w in self._watched(m, self._stats(m)):
            ci = self._interval(w.k, w.n)
            if w.n and w.k and any(ci.straddles(t) for t in w.thresholds):
                return True
        return False

    def _watched(self, m: AdversarialMeasurement, st: dict[str, Any]) -> list[_Watch]:
        """Every share a severity rule compares with a threshold through its interval."""
        out = [_Watch("confident small-flip share", len(st["flips"]), len(st["confident"]),
                      (self.high_share, self.medium_share)),
               _Watch("sampled swing share", len(st["swings_sample"]), len(st["sample"]),
                      (self.high_share, self.medium_share))]
        for feature, edges in self._knife_edges(m).items():
            k_s, n_s = self._knife_sampled(st, edges)
            out.append(_Watch(f"sampled share with the step in {feature}", k_s, n_s, (self.knife_share,)))
            if m.tree_model:
                k_f, n_f, _ = self._knife_flips(m, st, feature)
                out.append(_Watch(f"confident flips via {feature}", k_f, n_f, (self.medium_share,)))
        return out

    def _end_text(self, m: AdversarialMeasurement) -> str:
        """Why the sample stopped growing, as a clause ('' when unknown)."""
        return {"settled": "every such interval cleared its thresholds",
                "max_rows": f"the max_rows budget of {self.max_rows} searched rows ran out",
                "queries": f"the query budget of {self.max_queries:,} model rows ran out",
                "test rows": "every test row was searched"}.get(m.sample_end, "")

    def _unsettled(self, m: AdversarialMeasurement, ci: _Share, k: int, thresholds: Sequence[float]) -> str:
        """The rule text's clause for an interval that still straddles a threshold when the sample
        stopped growing ('' when it straddles none, or no sampled row shows the share)."""
        held = [t for t in thresholds if ci.straddles(t)]
        if not held or not k:
            return ""
        n_sampled = sum(r.kind == "random" for r in m.result.rows)
        why = self._end_text(m) if m.sample_end != "settled" else ""
        where = (f" after the sample was enlarged to {n_sampled} rows ({why})" if why and len(m.stages) > 1 else
                 f" at {n_sampled} sampled rows ({why})" if why else "")
        return (f"; the interval still straddles {' and '.join(pct(t, 0) for t in held)}{where}, so the "
                "severity is the one its lower end reaches (an undecided interval is never rounded up)")

    def _interval(self, k: int, n: int) -> _Share:
        """The share k / n with its Wilson interval at ``confidence`` (0 in [0, 1] without rows)."""
        if not n:
            return _Share(0.0, 0.0, 1.0)
        low, high = wilson(k, n, confidence=self.confidence)
        return _Share(k / n, low, high)

    # ---- judge ------------------------------------------------------------------------------------
    def _band(self, m: AdversarialMeasurement, row: RowOutcome) -> str:
        """How confident the original decision was: near (within a hair), moderate, confident."""
        if m.task != "classification":
            return "confident"
        if m.multiclass:  # the margin to the runner-up class, on the binary |score - 0.5| scale
            gap = row.margin / 2.0 if np.isfinite(row.margin) else 0.0
        else:
            gap = abs(row.score - m.threshold)
        if gap < self.hair_margin:
            return "near"
        return "confident" if gap >= self.confident_margin else "moderate"

    def _small(self, p: Perturbation | None) -> bool:
        return p is not None and p.distance <= self.small_distance + 1e-9

    def _swing(self, m: AdversarialMeasurement, row: RowOutcome) -> Perturbation | None:
        """The small change that takes the score from one extreme to the other, if any."""
        unit = m.result.scale
        u0 = float(unit([row.score])[0])
        if u0 < self.extreme_low and row.swing_up is not None and \
                float(unit([row.swing_up.score_after])[0]) > self.extreme_high:
            return row.swing_up
        if u0 > self.extreme_high and row.swing_down is not None and \
                float(unit([row.swing_down.score_after])[0]) < self.extreme_low:
            return row.swing_down
        return None

    def _stats(self, m: AdversarialMeasurement) -> dict[str, Any]:
        rows = m.result.rows
        sample = [r for r in rows if r.kind == "random"]
        confident = [r for r in sample if self._band(m, r) == "confident"]
        flips = [r for r in confident if self._small(r.flip)]
        moderate = [r for r in sample if self._band(m, r) == "moderate" and self._small(r.flip)]
        near = [r for r in rows if self._band(m, r) == "near" and self._small(r.flip)]
        swings = [r for r in rows if self._swing(m, r) is not None]
        swings_sample = [r for r in swings if r.kind == "random"]
        dists = [r.flip.distance for r in rows if r.flip is not None]
        return {"sample": sample, "confident": confident, "flips": flips, "moderate": moderate, "near": near,
                "swings": swings, "swings_sample": swings_sample, "distances": dists,
                "share": len(flips) / len(confident) if confident else 0.0,
                "share_all": (sum(self._small(r.flip) for r in sample) / len(sample)) if sample else 0.0}

    def judge(self, m: AdversarialMeasurement) -> list[Finding]:
        st = self._stats(m)
        findings = [self._flip_finding(m, st)]
        failure = self._failure_finding(m)
        if failure is not None:
            findings.append(failure)
        if st["swings"]:
            findings.append(self._swing_finding(m, st))
        findings += self._knife_findings(m, st)
        if m.task != "classification":
            extra = self._extremes_finding(m)
            if extra is not None:
                findings.append(extra)
        return findings

    def _flip_finding(self, m: AdversarialMeasurement, st: dict[str, Any]) -> Finding:
        k, n, share = len(st["flips"]), len(st["confident"]), st["share"]
        ci = self._interval(k, n)
        if k >= self.min_rows and ci.low >= self.high_share:
            sev = Severity.HIGH
        elif k >= self.min_rows and ci.low >= self.medium_share:
            sev = Severity.MEDIUM
        elif k >= 1:
            sev = Severity.LOW
        else:
            sev = Severity.INFO
        rows = st["flips"] or st["moderate"] or st["near"]
        feats = _features_by_count([r.flip for r in rows])
        dists = st["distances"]
        cls = m.task == "classification"
        what = "confident decisions" if cls else "predictions"
        change = ("change class" if m.multiclass else "flip") if cls else f"move by more than {m.result.rule.value:.4g}"
        title = (f"{k} of {n} {what} ({pct(share, 0)}) {change} under a small, plausible change"
                 + (f", mostly via {', '.join(feats[:3])}" if k and feats else ""))
        summary = (f"Starting from {len(st['sample'])} randomly sampled test rows, the search changed features within "
                   f"their observed ranges (plus a {pct(self.margin, 0)} margin) to find the smallest change that "
                   + ("changes the predicted class (the most probable of the "
                      f"{len(m.classes)} classes). " if m.multiclass else
                      "flips the decision at the threshold " + f"{m.threshold:g}. " if cls else
                      f"moves the prediction by more than {m.result.rule.value:.4g} (one standard deviation of the "
                      "test predictions). ")
                   + f"A change is small at {self.small_distance:g} standard deviations of one feature or less. "
                   + (f"{k} of the {n} {what}"
                      + ((f" (P(predicted class) - P(runner-up) >= {2 * self.confident_margin:g})" if m.multiclass else
                          f" (|score - threshold| >= {self.confident_margin:g})") if cls else "")
                      + f" {change if cls else 'move that far'} under such a change"
                      + f" ({pct(share)}; {level(self.confidence)} Wilson interval {pct(ci.low)} to {pct(ci.high)})."))
        rule_text = (f"high when the lower end of the {level(self.confidence)} Wilson interval of the confident "
                     f"small-flip share is at least {pct(self.high_share, 0)}, medium at least "
                     f"{pct(self.medium_share, 0)} (both with at least {self.min_rows} flips), low for any "
                     f"confident flip; here the share is {pct(share)} [{pct(ci.low)}, {pct(ci.high)}] over {n} "
                     "confident sampled rows" + self._unsettled(m, ci, k, (self.high_share, self.medium_share)))
        massed = [a for a in m.result.axes if not a.categorical and np.isfinite(a.mass_point)]
        if massed:
            rule_text += ("; a change that leaves or reaches a value most rows hold ("
                          + ", ".join(f"{a.name} = {value_text(a.mass_point)}" for a in massed[:4])
                          + (", …" if len(massed) > 4 else "") + ") counts at least 1, like a categorical change")
        summary += f" Severity rule: {rule_text}."
        if cls and st["moderate"]:
            j = len(st["moderate"])
            summary += f" {j} less confident sampled row{'s' if j != 1 else ''} also flip{'' if j != 1 else 's'} " \
                       "under a small change."
        if cls and st["near"]:
            j = len(st["near"])
            summary += (f" {j} row{'s' if j != 1 else ''} within {self.hair_margin:g} of the threshold "
                        f"flip{'' if j != 1 else 's'} under a small change; that is expected.")
        if dists:
            summary += (f" Over all {len(m.result.rows)} searched rows, the smallest flipping change has a median of "
                        f"{np.median(dists):.2f} and a minimum of {np.min(dists):.3g}.")
        remediation = () if sev in (Severity.INFO,) else (
            "Inspect the listed examples: are these decisions meant to hinge on such small changes?",
            "Smooth or constrain the model in the features named (monotone constraints, coarser splits, "
            "regularisation), or add a review band around the threshold.")
        return Finding(
            id=f"{self.id}/flip", check=self.id, severity=sev, title=title, summary=summary, features=tuple(feats),
            metrics={"confident_rows": n, "confident_small_flips": k, "confident_small_flip_share": share,
                     "small_flip_share_all": st["share_all"], "moderate_small_flips": len(st["moderate"]),
                     "near_threshold_small_flips": len(st["near"]),
                     "median_flip_distance": float(np.median(dists)) if dists else None,
                     "min_flip_distance": float(np.min(dists)) if dists else None,
                     "small_distance": self.small_distance, "confident_small_flip_share_ci_low": ci.low,
                     "confident_small_flip_share_ci_high": ci.high},
            remediation=remediation, evidence=("examples", "flip_distances"),
            rule=Rule("confident_small_flip_share", share, ">=", (self.medium_share, self.high_share),
                      interval=(ci.low, ci.high), text=rule_text[0].upper() + rule_text[1:] + "."))

    def _swing_finding(self, m: AdversarialMeasurement, st: dict[str, Any]) -> Finding:
        swings, in_sample = st["swings"], st["swings_sample"]
        share = len(in_sample) / len(st["sample"]) if st["sample"] else 0.0
        ci = self._interval(len(in_sample), len(st["sample"]))
        enough = len(in_sample) >= self.min_rows
        sev = (Severity.HIGH if enough and ci.low >= self.high_share else
               Severity.MEDIUM if enough and ci.low >= self.medium_share else Severity.LOW)
        rule_text = (f"high when the lower end of the {level(self.confidence)} Wilson interval of the sampled swing "
                     f"share is at least {pct(self.high_share, 0)}, medium at least {pct(self.medium_share, 0)} "
                     f"(both with at least {self.min_rows} sampled rows), otherwise low; here {len(in_sample)} of "
                     f"{len(st['sample'])} sampled rows, {pct(share)} [{pct(ci.low)}, {pct(ci.high)}]"
                     + self._unsettled(m, ci, len(in_sample), (self.high_share, self.medium_share)))
        feats = _features_by_count([self._swing(m, r) for r in swings])
        scale = ("probability of the row's predicted class" if m.multiclass else
                 "score" if m.task == "classification" else "prediction percentile")
        worst = min(swings, key=lambda r: self._swing(m, r).distance)  # type: ignore[union-attr]
        p = self._swing(m, worst)
        assert p is not None
        title = (f"Scores swing from one extreme to the other under a small change for {len(swings)} rows "
                 f"(via {', '.join(feats[:3])})")
        summary = (f"For {len(swings)} searched rows ({len(in_sample)} of {len(st['sample'])} sampled), a change of "
                   f"at most {self.small_distance:g} standard deviations takes the {scale} from below "
                   f"{self.extreme_low:g} to above {self.extreme_high:g} or back, inside the plausible range. "
                   f"Example: row {worst.label}, {_changes_text(p)}: {p.score_before:.3g} -> {p.score_after:.3g}. "
                   f"Severity rule: {rule_text}.")
        return Finding(
            id=f"{self.id}/swing", check=self.id, severity=sev, title=title, summary=summary, features=tuple(feats),
            metrics={"rows": len(swings), "sampled_rows": len(in_sample), "sampled_share": share,
                     "sampled_share_ci_low": ci.low, "sampled_share_ci_high": ci.high, "min_distance": p.distance},
            remediation=("Check the named features for steps or interactions the model should not have.",),
            evidence=("examples",),
            rule=Rule("sampled_swing_share", share, ">=", self.high_share, interval=(ci.low, ci.high),
                      text=rule_text[0].upper() + rule_text[1:] + "."))

    def _knife_edges(self, m: AdversarialMeasurement) -> dict[str, list[KnifeEdge]]:
        """The steps sharp enough to be knife edges, by feature (sorted)."""
        edges = [k for k in m.result.knife_edges
                 if k.jump >= self.knife_jump and k.width_share <= self.knife_width + 1e-9]
        return {f: [k for k in edges if k.feature == f] for f in sorted({k.feature for k in edges})}

    @staticmethod
    def _knife_sampled(st: dict[str, Any], edges: Sequence[KnifeEdge]) -> tuple[int, int]:
        """Randomly sampled rows with one of ``edges``, of the sampled rows."""
        return len({k.label for k in edges} & {r.label for r in st["sample"]}), len(st["sample"])

    def _knife_flips(self, m: AdversarialMeasurement, st: dict[str, Any], feature: str) -> tuple[int, int, _Share]:
        """Confident sampled decisions whose smallest small flip changes ``feature`` alone: the
        decisions a step in it flips (count, confident rows, Wilson interval of the share)."""
        k = sum(1 for r in st["flips"] if r.flip is not None and {c.feature for c in r.flip.changes} == {feature})
        n = len(st["confident"])
        return k, n, self._interval(k, n)

    def _knife_findings(self, m: AdversarialMeasurement, st: dict[str, Any]) -> list[Finding]:
        out = []
        for feature, ks in self._knife_edges(m).items():
            n_rows = len({k.label for k in ks})
            where = float(np.median([(k.value_low + k.value_high) / 2 for k in ks]))
            jump = float(np.median([k.jump for k in ks]))
            width = float(np.max([k.width_share for k in ks]))
            share = n_rows / len(m.result.rows) if m.result.rows else 0.0
            k_s, n_s = self._knife_sampled(st, ks)
            ci = self._interval(k_s, n_s)
            common = n_rows >= self.min_rows and ci.low >= self.knife_share
            k_f, n_f, ci_f = self._knife_flips(m, st, feature)
            flips_confident = k_f >= self.min_rows and ci_f.low >= self.medium_share
            sev = Severity.MEDIUM if common and (flips_confident or not m.tree_model) else Severity.LOW
            rule_text = (f"medium when the lower end of the {level(self.confidence)} Wilson interval of the share of "
                         f"sampled rows with the step is at least {pct(self.knife_share, 0)} (at least {self.min_rows} "
                         f"rows), otherwise low; here {k_s} of {n_s} sampled rows "
                         f"[{pct(ci.low)}, {pct(ci.high)}]" + self._unsettled(m, ci, k_s, (self.knife_share,)))
            if m.tree_model:
                rule_text += (f". The model is a tree ensemble, a step function by construction, so a step is medium "
                              f"only if it also flips confident decisions: at least {self.min_rows} confident sampled "
                              f"rows whose smallest small flip changes {feature} alone, the lower end of their "
                              f"share at least {pct(self.medium_share, 0)}; here {k_f} of {n_f} "
                              f"[{pct(ci_f.low)}, {pct(ci_f.high)}]"
                              + self._unsettled(m, ci_f, k_f, (self.medium_share,)))
            scale = ("probability of the predicted class" if m.multiclass else
                     "score" if m.task == "classification" else "prediction percentile")
            out.append(Finding(
                id=f"{self.id}/knife_edge/{feature}", check=self.id, severity=sev,
                title=f"Knife-edge step in {feature} near {value_text(where)}: the {scale} jumps by {jump:.2f}",
                summary=(f"For {n_rows} searched rows, moving {feature} by at most {pct(width)} of its observed span "
                         f"around {value_text(where)} changes the {scale} by {jump:.2f} (median; up to "
                         f"{max(k.jump for k in ks):.2f}), with all other features unchanged. A step this sharp makes "
                         f"decisions hinge on the exact value of {feature}. Severity rule: {rule_text}."),
                features=(feature,),
                metrics={"rows": n_rows, "row_share": share, "location": where, "median_jump": jump,
                         "max_jump": float(max(k.jump for k in ks)), "width_share": width,
                         "sampled_rows": k_s, "sampled_share_ci_low": ci.low, "sampled_share_ci_high": ci.high,
                         **({"confident_flips": k_f, "confident_flips_ci_low": ci_f.low} if m.tree_model else {})},
                rule=Rule("knife_edge_sampled_share", k_s / n_s if n_s else 0.0, ">=", self.knife_share,
                          interval=(ci.low, ci.high), text=rule_text[0].upper() + rule_text[1:] + "."),
                remediation=(f"Check whether the step in {feature} is intended (a policy cut-off) or an artefact "
                             "of the training data; smooth it or document it.",),
                evidence=("knife_edges", "score_surface")))
        return out

    def _failure_finding(self, m: AdversarialMeasurement) -> Finding | None:
        """Inputs the model raised on or scored to non-finite values: silent garbage, or an
        exception on in-domain input, is high; an exception only out of domain is medium."""
        fl = m.result.failures
        surface_failed = m.surface.failed if m.surface is not None else 0
        raised = fl.raised + fl.unresolved
        silent = fl.non_finite + m.test_non_finite
        total = raised + silent
        if not (total or surface_failed):
            return None
        high = silent > 0 or fl.in_domain_raised > 0 or fl.start_rows > 0
        sev = Severity.HIGH if high else Severity.MEDIUM
        ex = fl.examples
        feats = [f for f, _ in sorted(Counter(c.feature for e in ex for c in e.changes).items(),
                                      key=lambda kv: (-kv[1], kv[0]))]
        if silent:
            title = (f"Model returns non-finite scores without an error for {silent:,} inputs within the searched "
                     "domain")
        elif fl.in_domain_raised or fl.start_rows:
            title = (f"Model raises an error on {fl.in_domain_raised + fl.start_rows:,} inputs within the observed "
                     "ranges")
        elif raised:
            title = (f"Model raises an error on {raised:,} input{'s' if raised != 1 else ''} just outside the "
                     "observed ranges: a deployment guard must reject them")
        else:
            title = f"Model fails on {surface_failed:,} points of the score surface"
        remediation = (
            ("Fix the model so it never returns NaN or infinite scores (guard transforms such as log or division; "
             "validate the output).",) if silent else ()) + (
            "Put an input guard in front of the model that rejects inputs outside the listed constraints.",
            "Or make the pipeline total on the plausible domain (e.g. log1p or clipping before a log transform).")
        return Finding(
            id=f"{self.id}/non_finite", check=self.id, severity=sev, title=title,
            summary=self._failure_summary(m, feats), features=tuple(feats[:5]),
            metrics={"raised": raised, "raised_in_domain": fl.in_domain_raised, "non_finite": fl.non_finite,
                     "non_finite_in_domain": fl.in_domain_non_finite, "test_rows_non_finite": m.test_non_finite,
                     "skipped_known_failing": fl.skipped, "surface_points_failed": surface_failed,
                     "split_calls": fl.split_calls},
            remediation=remediation, evidence=("scoring_failures",) if ex else ("score_surface",),
            rule=Rule("failing_inputs", total or surface_failed, ">=", 1,
                      text="High for any non-finite score returned without an error or any exception on in-domain "
                           "input; medium when the model raises only on out-of-domain input."))

    def _failure_summary(self, m: AdversarialMeasurement, feats: Sequence[str]) -> str:
        fl = m.result.failures
        surface_failed = m.surface.failed if m.surface is not None else 0
        raised = fl.raised + fl.unresolved
        what = []
        if raised:
            what.append(f"raised an error on {raised:,} candidate input{'s' if raised != 1 else ''} "
                        f"({fl.in_domain_raised:,} of them within the observed ranges)")
        if fl.non_finite:
            what.append(f"returned NaN, infinite or out-of-range scores without an error for {fl.non_finite:,} "
                        f"({fl.in_domain_non_finite:,} within the observed ranges)")
        if m.test_non_finite:
            what.append(f"returned non-finite scores for {m.test_non_finite:,} real test rows (left out of the "
                        "search)")
        if surface_failed and not what:
            what.append(f"could not score {surface_failed:,} points of the score surface")
        summary = (f"While searching {len(m.result.rows)} test rows within the plausible domain (observed ranges "
                   f"plus a {pct(self.margin, 0)} margin, seen levels), the model " + "; ".join(what) + ".")
        if fl.messages:
            summary += " Errors: " + "; ".join(m_.rstrip(".") for m_ in fl.messages[:3]) + "."
        known = "; ".join(f"{f} = {value_text(v)}" for f, v in fl.failing_values[:5])
        if fl.skipped:
            summary += (f" {fl.skipped:,} further candidates held a value already seen to make the model raise "
                        f"({known}) and were not sent again.")
        elif known:
            summary += f" Values that make it raise: {known}."
        if fl.examples:
            e = fl.examples[0]
            changes = "; ".join(f"{c.feature} {value_text(c.before)} -> {value_text(c.after)}" for c in e.changes)
            summary += f" Example: row {e.label}, {changes}: {e.detail.rstrip('.')}."
        constraints = _input_constraints(feats, m.result.axes)
        if constraints:
            summary += " Input constraints that would have prevented it: " + "; ".join(constraints) + "."
        return summary + (" The search carried on with the inputs that scored; failed candidates never count as "
                          "flips. Severity rule: high for any non-finite score returned without an error, or any "
                          "exception on in-domain input; medium when the model raises only on out-of-domain input "
                          "(a clear error a deployment guard can prevent).")

    def _extremes_finding(self, m: AdversarialMeasurement) -> Finding | None:
        lo, hi = m.prediction_range
        reached = [p for r in m.result.rows for p in (r.reach_max, r.reach_min) if p is not None]
        if not reached or hi <= lo:
            return None
        top = max(p.score_after for p in reached)
        bottom = min(p.score_after for p in reached)
        excess = max(top - hi, lo - bottom, 0.0) / (hi - lo)
        if excess <= self.range_excess:
            return None
        return Finding(
            id=f"{self.id}/extremes", check=self.id, severity=Severity.LOW,
            title=f"Within plausible inputs the prediction reaches {bottom:.4g} to {top:.4g}, "
                  f"beyond the test range {lo:.4g} to {hi:.4g}",
            summary=(f"Coordinate ascent over the searched features, within their observed ranges plus a "
                     f"{pct(self.margin, 0)} margin, drives the prediction {pct(excess, 0)} of the test prediction "
                     "range beyond it. Combinations of plausible values can produce implausible predictions."),
            features=tuple(_features_by_count(reached)[:5]), metrics={"max_reached": top, "min_reached": bottom,
                                                              "range_excess": excess},
            rule=Rule("range_excess", excess, ">", self.range_excess,
                      text=f"Low when the reached predictions exceed the test range by more than "
                           f"{pct(self.range_excess, 0)} of its width (the largest excess found by the search; "
                           "no sampling interval)."),
            remediation=("Consider capping predictions or constraining extrapolation in the named features.",),
            evidence=("extremes",))

    # ---- evidence ---------------------------------------------------------------------------------
    def evidence(self, m: AdversarialMeasurement) -> Evidence:
        res = m.result
        st = self._stats(m)
        tables = [self._examples_table(m, st), self._extremes_table(m), self._knife_table(m),
                  self._importance_table(m)]
        if res.hop_skip_jump.ran:
            tables.append(Table.from_records(
                "hop_skip_jump", "HopSkipJump (ART) second opinion on the continuous features",
                [{"row": h.label, "flipped": h.flipped, "hsj_distance": h.distance,
                  "search_distance": None if not np.isfinite(h.own_distance) else h.own_distance,
                  "score_after": h.score_after} for h in res.hop_skip_jump.rows],
                caption=("Distances after clipping to the plausible bounds and rounding integers; only re-scored, "
                         "verified flips count. search_distance: the domain-aware search's smallest flip before "
                         "HopSkipJump ran.")))
        if res.failures.examples:
            tables.append(self._failures_table(m))
        metrics = self._metrics(m, st)
        return Evidence(metrics=metrics, tables=tuple(tables), figures=self._figures(m),
                        notes=self._notes(m, st, metrics))

    def _failures_table(self, m: AdversarialMeasurement) -> Table:
        return Table.from_records(
            "scoring_failures", "Inputs the model failed on",
            [{"row": e.label, "failure": e.kind, "in_domain": e.in_domain,
              "changed": ", ".join(c.feature for c in e.changes),
              "before": "; ".join(f"{c.feature}={value_text(c.before)}" for c in e.changes),
              "after": "; ".join(f"{c.feature}={value_text(c.after)}" for c in e.changes), "detail": e.detail}
             for e in m.result.failures.examples],
            columns=("row", "failure", "in_domain", "changed", "before", "after", "detail"),
            max_rows=self.max_examples,
            caption="Candidates the model raised on (exception) or scored to NaN, infinity or a probability "
                    "outside [0, 1] (non-finite). in_domain: every changed value within the observed range.")

    def _figures(self, m: AdversarialMeasurement) -> tuple[Figure, ...]:
        """The score surface (when a feature was searched) and the flip distances, as specs."""
        cls = m.task == "classification"
        figures = []
        s = m.surface
        if s is not None:
            label = "P(predicted class of the base row)" if m.multiclass else "P(positive)" if cls else "prediction"
            figures.append(Figure(
                "score_surface", f"Score surface at row {s.base_label}" if s.base_label else "Score surface",
                plot="adversarial.plot_score_surface",
                data={"surface": s, "threshold": m.threshold if cls and not m.multiclass else None,
                      "score_label": label},
                caption=_surface_caption(s)))
        names = {"confident": "confident", "moderate": "moderately confident", "near": "near threshold"} if cls \
            else {"confident": "rows"}
        groups = {label: [r.flip.distance for r in m.result.rows if r.flip is not None and self._band(m, r) == band]
                  for band, label in names.items()}
        n_without = sum(r.flip is None for r in m.result.rows)
        top = _histogram_top(groups, self.small_distance)
        figures.append(Figure(
            "flip_distances", "Smallest decision-flipping change per row", plot="adversarial.plot_flip_distances",
            data={"groups": groups, "small_distance": self.small_distance, "top": top},
            caption=(f"Distances above {top:.2g} are drawn in the last bin."
                     + (f" {n_without} searched rows had no flip within the plausible bounds." if n_without else ""))))
        return tuple(figures)

    def _metrics(self, m: AdversarialMeasurement, st: dict[str, Any]) -> dict[str, Any]:
        res = m.result
        hsj = [h.distance for h in res.hop_skip_jump.rows if h.flipped]
        metrics: dict[str, Any] = {
            "rows_searched": len(res.rows), "rows_sampled": len(st["sample"]), "confident_rows": len(st["confident"]),
            "confident_small_flip_share": st["share"], "small_flip_share_all": st["share_all"],
            "rows_with_flip": len(st["distances"]),
            "median_flip_distance": float(np.median(st["distances"])) if st["distances"] else None,
            "min_flip_distance": float(np.min(st["distances"])) if st["distances"] else None,
            "swing_rows": len(st["swings"]),
            "knife_edge_features": len({k.feature for k in res.knife_edges if k.jump >= self.knife_jump}),
            "queries": res.queries + m.surface_queries,
            "model_calls": res.calls + (m.surface.calls if m.surface else 0),
            "model_rows": res.scored + (m.surface.scored if m.surface else 0),
            "hsj_rows": len(res.hop_skip_jump.rows),
            "hsj_median_distance": float(np.median(hsj)) if hsj else None,
        }
        reach = [p for r in res.rows for p in (r.reach_max, r.reach_min) if p is not None]
        if reach:
            metrics["score_max_reached"] = max(p.score_after for p in reach)
            metrics["score_min_reached"] = min(p.score_after for p in reach)
        return metrics

    def _notes(self, m: AdversarialMeasurement, st: dict[str, Any], metrics: Mapping[str, Any]) -> tuple[str, ...]:
        res = m.result
        cls = m.task == "classification"
        rule = ("a flip is a change of the predicted class (arg max of the class probabilities); the search "
                "minimises the margin P(start class) - P(runner-up); swings, knife edges and the surface read "
                "P(start class)" if m.multiclass else
                f"a flip is a decision crossing the threshold {m.threshold:g}" if cls else
                f"a flip is a prediction change of more than {res.rule.value:.4g} ({self.flip_std:g} std of the "
                "test predictions); scores are judged as percentile ranks of the test predictions")
        task = "multiclass" if m.multiclass else m.task
        kinds = Counter(r.kind for r in res.rows)
        notes = [
            f"Starting rows: {len(res.rows)} of {m.n_test} test rows: "
            + ", ".join(f"{kinds[k]} {_kind_name(k, task)}" for k in ("high", "low", "near", "random") if kinds[k])
            + f" (seeded). Shares are over the {len(st['sample'])} randomly sampled rows.",
            f"Model queries: {metrics['queries']:,} rows (budget {m.per_row_budget:,} rows per searched row, "
            f"{self.max_queries:,} rows at most); the model scored the {metrics['model_rows']:,} distinct ones in "
            f"{metrics['model_calls']:,} batched calls.",
            f"Searched features (most important first): {', '.join(res.searched) or 'none'}; bounds: observed range "
            f"plus {pct(self.margin, 0)} of the span, integers kept whole, categorical features limited to known "
            "levels.",
            "Held fixed: " + (", ".join(res.fixed) if res.fixed else "nothing") +
            (f" (immutable: {', '.join(m.immutable)})" if m.immutable else "") +
            (f" (protected: {', '.join(m.protected)})" if m.protected else "") + ".",
            f"Distance: change / std summed over numeric features, +1 per changed categorical feature; small means "
            f"at most {self.small_distance:g}; {rule}.",
        ]
        hsj_r = res.hop_skip_jump
        if hsj_r.ran:
            notes.append(f"HopSkipJump (ART BlackBoxClassifier, L2, max_iter {self.hsj_max_iter}, max_eval "
                         f"{self.hsj_max_eval}, init_eval {self.hsj_init_eval}) on {len(hsj_r.rows)} rows over "
                         f"{', '.join(hsj_r.features)}; categorical and fixed features held by mask; "
                         f"{hsj_r.queries:,} of the queries in {hsj_r.calls:,} calls.")
        else:
            notes.append(f"HopSkipJump not run: {hsj_r.note}.")
        if len(m.stages) > 1:
            why = self._end_text(m)
            open_ = [w for w in self._watched(m, st) if w.k and w.n
                     and any(self._interval(w.k, w.n).straddles(t) for t in w.thresholds)]
            notes.append("Sample enlarged: " + " -> ".join(str(s) for s in m.stages) + " randomly sampled rows, "
                         f"because the {level(self.confidence)} Wilson interval of a share a severity rule reads "
                         "(confident small flips, swings, each knife edge's sampled rows and, for trees, the "
                         "confident flips it causes) straddled its threshold"
                         + (f"; it stopped when {why}" if why else "")
                         + ("; still undecided: " + ", ".join(f"{w.name} ({w.k} of {w.n})" for w in open_)
                            + ", judged by the lower end" if open_ else "")
                         + ". The later rows search the features chosen first.")
        fl = res.failures
        if fl.any or fl.skipped or m.test_non_finite:
            notes.append(f"Scoring failures: {fl.raised + fl.unresolved:,} candidates raised "
                         f"({fl.unresolved:,} in batches left unsplit), {fl.non_finite:,} non-finite, "
                         f"{fl.skipped:,} not sent (a known failing value), {m.test_non_finite:,} test rows "
                         f"non-finite; failing batches were split in halves ({fl.split_calls:,} extra calls), "
                         "never scored row by row.")
        notes += [n for n in res.notes if not n.startswith("HopSkipJump") and not n.startswith("the model failed")]
        return tuple(notes)

    def _examples_table(self, m: AdversarialMeasurement, st: dict[str, Any]) -> Table:
        order = {"confident": 0, "moderate": 1, "near": 2}
        picks: list[tuple[tuple, RowOutcome, Perturbation, str]] = []
        for r in m.result.rows:
            swing = self._swing(m, r)
            if swing is not None:
                picks.append(((0, swing.distance, r.label), r, swing, "swing"))
            elif r.flip is not None:
                band = self._band(m, r)
                picks.append(((1 + order[band], r.flip.distance, r.label), r, r.flip, "flip"))
        picks.sort(key=lambda t: (t[0][0], t[0][1], str(t[0][2])))
        records = []
        for _, r, p, what in picks:
            rec = {"row": r.label, "start": _kind_name(r.kind, "multiclass" if m.multiclass else m.task), "found": what,
                   "changed": ", ".join(p.features), "before": _values_text(p, "before"),
                   "after": _values_text(p, "after"), "distance": p.distance,
                   "score_before": p.score_before, "score_after": p.score_after, "method": p.method}
            if m.multiclass:
                rec["class_before"] = m.classes[r.start_class] if 0 <= r.start_class < len(m.classes) else None
                rec["class_after"] = m.classes[p.class_after] if 0 <= p.class_after < len(m.classes) else None
            records.append(rec)
        columns = ("row", "start", "found", "changed", "before", "after", "distance", "score_before",
                   "score_after") + (("class_before", "class_after") if m.multiclass else ()) + ("method",)
        return Table.from_records(
            "examples", "Most striking adversarial examples", records,
            columns=columns, max_rows=self.max_examples,
            caption="Swings (extreme to extreme under a small change) first, then the smallest flips of confident, "
                    "moderately confident and near-threshold rows. Distance in feature standard deviations "
                    "(+1 per categorical change)."
                    + (" Scores: probability of the row's predicted class (class_before); a flip changes the "
                       "predicted class (class_after)." if m.multiclass else ""))

    def _extremes_table(self, m: AdversarialMeasurement) -> Table:
        records = []
        for direction, attr in (("max", "reach_max"), ("min", "reach_min")):
            found = [(r, getattr(r, attr)) for r in m.result.rows if getattr(r, attr) is not None]
            sign = -1 if direction == "max" else 1
            found.sort(key=lambda t: (sign * t[1].score_after, t[1].distance, t[0].label))
            for r, p in found[:3]:
                records.append({"direction": direction, "row": r.label, "changed": ", ".join(p.features),
                                "before": _values_text(p, "before"), "after": _values_text(p, "after"),
                                "distance": p.distance, "score_before": p.score_before, "score_after": p.score_after})
        return Table.from_records(
            "extremes", "Score extremes reached within plausible bounds", records,
            columns=("direction", "row", "changed", "before", "after", "distance", "score_before", "score_after"),
            caption="Coordinate ascent (max) and descent (min) over the searched features from a subset of the "
                    "starting rows; the three most extreme results each way.")

    def _knife_table(self, m: AdversarialMeasurement) -> Table:
        records = []
        for feature in sorted({k.feature for k in m.result.knife_edges}):
            ks = [k for k in m.result.knife_edges if k.feature == feature]
            records.append({"feature": feature, "rows": len({k.label for k in ks}),
                            "location": float(np.median([(k.value_low + k.value_high) / 2 for k in ks])),
                            "median_jump": float(np.median([k.jump for k in ks])),
                            "max_jump": float(max(k.jump for k in ks)),
                            "width_share": float(max(k.width_share for k in ks))})
        return Table.from_records(
            "knife_edges", "Knife-edge steps", records,
            columns=("feature", "rows", "location", "median_jump", "max_jump", "width_share"),
            caption=f"A step: the score changes by at least {self.knife_jump:g} across at most "
                    f"{pct(self.knife_width, 0)} of the feature's observed span, all other features unchanged.")

    def _importance_table(self, m: AdversarialMeasurement) -> Table:
        searched = set(m.result.searched)
        records: list[dict[str, Any]] = [
            {"feature": f, "sensitivity": v, "role": "searched" if f in searched else "not searched"}
            for f, v in m.result.importance]
        for f in m.result.fixed:
            why = "immutable" if f in m.immutable else "protected"
            records.append({"feature": f, "sensitivity": None, "role": f"held fixed ({why})"})
        return Table.from_records(
            "importance", "Features by sensitivity", records, columns=("feature", "sensitivity", "role"),
            caption="Sensitivity: mean over the starting rows of the score range when the feature alone sweeps its "
                    "plausible range.")



# ---- helpers ----------------------------------------------------------------------------------------
def _proba(ctx: AuditContext, X: pd.DataFrame) -> np.ndarray:
    """The model's class probabilities for the rows ``X`` (classification)."""
    proba = ctx.predict_frame(X).proba
    if proba is None:
        raise ValueError("the model returned no class probabilities")
    return proba


def _labels(ctx: AuditContext, positions: np.ndarray) -> list[str]:
    frame = ctx.frame("test")
    id_col = ctx.config.data.id
    if id_col and id_col in frame.columns:
        return [str(v) for v in frame[id_col].to_numpy()[positions]]
    return [str(v) for v in frame.index.to_numpy()[positions]]


def _surface_caption(s: ScoreSurface) -> str:
    caption = ("Model score over the plausible range of the two most important searched features, the other "
               "features held at a typical test row (dot). Hatched bands: the margin beyond the observed "
               "range. Black line: the decision threshold (numeric axes)." if s.y is not None else
               "Model score over the plausible range of the most important searched feature, the other "
               "features held at a typical test row (dot).")
    if s.failed:
        caption += (f" Blank: {s.failed} grid points the model could not score (it raised or returned a "
                    "non-finite value).")
    return caption


def _histogram_top(groups: Mapping[str, Sequence[float]], small_distance: float) -> float:
    """The right end of the flip-distance histogram: four small changes, or the 95th percentile
    of the distances when that is larger."""
    values = [np.asarray(v, dtype=float) for v in groups.values() if len(v)]
    allv = np.concatenate(values) if values else np.empty(0)
    return max(4 * small_distance, float(np.quantile(allv, 0.95)) if len(allv) else 1.0)


def _input_constraints(features: Sequence[str], axes: Sequence[Axis]) -> list[str]:
    """The plausible domain of each named feature, as a guard would enforce it."""
    bounds = {a.name: a for a in axes}
    constraints = []
    for f in features:
        ax = bounds.get(f)
        if ax is None:
            continue
        if ax.categorical:
            constraints.append(f"{f} one of the {len(ax.levels)} seen levels")
        else:
            low, high = value_text(ax.observed_low), value_text(ax.observed_high)
            constraints.append(f"{f} within its observed range {low} to {high}")
    return constraints



def _values_text(p: Perturbation, which: str) -> str:
    return "; ".join(f"{c.feature}={value_text(getattr(c, which))}" for c in p.changes)


def _changes_text(p: Perturbation) -> str:
    return "; ".join(f"{c.feature} {value_text(c.before)} -> {value_text(c.after)}" for c in p.changes)


def _features_by_count(perturbations: Sequence[Perturbation | None]) -> list[str]:
    counts = Counter(f for p in perturbations if p is not None for f in p.features)
    return [f for f, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
