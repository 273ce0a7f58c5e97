"""The less-discriminatory-alternative remedy: the model refitted with its proxies neutralised (and
a few stronger regularisation settings, and the benchmark family), placed on the AIR-versus-AUC
frontier; the best candidate that matches the model's AUC within a tolerance is proposed and saved."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from ..analysis.alternatives import (
    CandidateScore,
    Judged,
    Setting,
    benchmark_estimators,
    neutral_values,
    neutralised,
    pick_alternative,
    regularisation_settings,
    score_candidate,
)
from ..context import same_class
from ..findings import Evidence, Figure, Table, safe_id
from ..wording import fixed, pct, plural, sig, signed
from ._fairness import DI, PROXY, Proxies, impact_targets, named_proxies, not_measured
from .base import Artifact, Remediation, Remedy, RemedyInputs, RemedyOutput, artifact_path, budget, setting, threshold
from .refit import (
    TrainingRows,
    clone_model,
    final_prefix,
    final_step,
    fit,
    model_object,
    predict,
    refit_unavailable,
    training_rows,
)

if TYPE_CHECKING:
    from ..context import AuditContext, Predictions


@dataclass(frozen=True)
class _Spec:
    """A candidate to fit: what it is, and how to build the unfitted estimator."""

    base: CandidateScore
    build: Callable[[], Any]


@dataclass
class AlternativeRemedy(Remedy):
    """Refitted candidates on (a seeded sample of) the training rows, measured on the test rows at
    the model's threshold: the model with the features fairness.proxy named (medium or high) set to a
    constant before fitting and scoring, the same with up to two stronger regularisation settings of
    its final estimator, and the benchmark family without those features; with no proxy named (but an
    adverse-impact finding), the regularisation and benchmark candidates alone. The refit with nothing
    changed is shown as a point of comparison (the refit's own noise). The candidate proposed raises
    the worst adverse impact ratio while losing at most ``auc_tolerance`` of AUC: among those reaching
    ``min_ratio`` the best AUC, else the highest ratio. Its fitted model is saved in skops format.
    """

    id: ClassVar[str] = "alternative"
    title: ClassVar[str] = "Less discriminatory alternative"
    order: ClassVar[int] = 20
    kinds: ClassVar[tuple[str, ...]] = ("retrain",)
    reads: ClassVar[tuple[str, ...] | None] = (DI, PROXY)

    auc_tolerance: float = threshold(0.02, "AUC a candidate may lose against the audited model and still be "
                                           "proposed (accuracy for k classes)")
    min_ratio: float = threshold(0.8, "adverse impact ratio line: candidates reaching it are preferred (the best "
                                      "AUC among them)")
    min_gain: float = threshold(0.02, "worst adverse impact ratio a candidate must add to the model's and to the "
                                      "unchanged refit's to be proposed")
    max_train_rows: int = budget(10_000, "training rows of each refit (a seeded sample when there are more)")
    max_candidates: int = budget(6, "models refitted, the unchanged refit included")
    regularisation: bool = setting(True, "try stronger regularisation settings of the final estimator")
    benchmarks: bool = setting(True, "try the benchmark family (logistic regression, shallow tree) without the proxies")

    def skip_reason(self, inputs: RemedyInputs) -> str | None:
        ctx = inputs.ctx
        if not ctx.is_classification:
            return "the adverse impact ratio belongs to a classifier; this model is a regressor"
        if not impact_targets(inputs) and not named_proxies(inputs).features:
            return "nothing to fix: no medium or high adverse-impact or proxy finding"
        if inputs.measurement(DI) is None:
            return f"nothing to measure: {not_measured(inputs, DI)}"
        why = refit_unavailable(ctx)
        if why:
            return f"cannot refit: {why}"
        return None

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        ctx = inputs.ctx
        proxies = named_proxies(inputs)
        judged = self._judged(inputs, proxies)
        if not judged:
            return RemedyOutput(notes=("No group of the affected protected columns has enough rows to compare.",))
        tr = training_rows(ctx, self.max_train_rows, self.id)
        model = self._audited(ctx, judged)
        specs = self._specs(ctx, tr, proxies)
        scored, fitted, seconds = self._fit_all(ctx, tr, specs, judged)
        chosen = pick_alternative(model, scored, tolerance=self.auc_tolerance, min_ratio=self.min_ratio,
                                  min_gain=self.min_gain)
        notes = self._notes(tr, proxies, scored, specs, seconds, chosen, model)
        evidence = Evidence(tables=(self._table(model, scored, chosen),),
                            figures=(self._figure(model, scored, chosen),))
        if chosen is None:
            return RemedyOutput(notes=tuple(notes), evidence=evidence)
        data = _dumps(fitted[chosen.name])
        path = artifact_path(f"alternative_{safe_id(chosen.name).replace('/', '_')}.skops")
        rem = self._remediation(inputs, model, chosen, proxies, tr, path, data, scored)
        return RemedyOutput(remediations=(rem,), notes=tuple(notes), evidence=evidence,
                            artifacts=(Artifact(path, data, title=f"Refitted candidate: {chosen.label}"),))

    # -- what to compare --
    def _judged(self, inputs: RemedyInputs, proxies: Proxies) -> list[Judged]:
        """The groupings of the adverse-impact findings and of the columns the proxies stand in for,
        with their groups the check judges (enough rows, not the reference)."""
        m = inputs.measurement(DI)
        names = {t.name for t in impact_targets(inputs)}
        out: list[Judged] = []
        for res in getattr(m, "rates", ()):
            g = res.grouping
            if g.name in names or (not g.is_intersection and g.columns[0] in proxies.protected):
                groups = tuple(r.group for r in res.rows if r.eligible and not r.is_reference)
                if groups:
                    out.append((g, groups))
        return out

    def _measure(self, ctx: AuditContext, base: CandidateScore, preds: Predictions,
                 judged: list[Judged]) -> CandidateScore:
        fav = ctx.favorable_decision(preds)
        if ctx.is_multiclass:
            assert preds.proba is not None and preds.pred_class is not None
            return score_candidate(base, y=ctx.y_index("test"), score=preds.proba, predicted=preds.pred_class,
                                   decision=fav, p_favorable=preds.proba[:, ctx.favorable_index], judged=judged)
        pos_fav = same_class(ctx.favorable, ctx.positive_class)
        return score_candidate(base, y=ctx.y_task("test"), score=preds.score, predicted=preds.label, decision=fav,
                               p_favorable=preds.score if pos_fav else 1.0 - preds.score, judged=judged)

    def _audited(self, ctx: AuditContext, judged: list[Judged]) -> CandidateScore:
        base = CandidateScore(name="audited", short="audited model", label="the audited model", family="audited")
        return self._measure(ctx, base, ctx.predictions("test"), judged)

    def _specs(self, ctx: AuditContext, tr: TrainingRows, proxies: Proxies) -> list[_Spec]:
        """The candidates in order of preference for the budget: the unchanged refit, the proxies
        neutralised, stronger regularisation, the benchmark family."""
        feats = list(ctx.features)
        consts = neutral_values(tr.X, proxies.features, ctx.categorical) if proxies.features else {}
        neutral = tuple(consts)
        tag = " without " + ", ".join(f"'{f}'" for f in neutral) if neutral else ""
        reg_tag = tag + "," if neutral else " with"

        def wrap(est: Any) -> Any:
            return neutralised(est, feats, consts) if consts else est

        specs = [_Spec(CandidateScore("model/refit", "refit as is", "the model as it is (refitted)", "model",
                                      reference=True), lambda: clone_model(ctx))]
        if consts:
            specs.append(_Spec(CandidateScore("model/neutralised", "neutralised",
                                              f"the model{tag} (set to a constant)", "model", neutral,
                                              dict(consts)), lambda: wrap(clone_model(ctx))))
        prefix = final_prefix(model_object(ctx))
        if self.regularisation and prefix is not None:
            final = final_step(clone_model(ctx))
            for i, s in enumerate(regularisation_settings(final.get_params(deep=False))):
                specs.append(self._reg_spec(ctx, s, i, prefix, neutral, consts, reg_tag, wrap))
        if self.benchmarks:
            numeric = [c for c in ctx.numeric if c not in neutral]
            categorical = [c for c in ctx.categorical if c not in neutral]
            for b in benchmark_estimators(numeric, categorical, seed=ctx.seed):
                specs.append(_Spec(CandidateScore(f"benchmark/{b.name}", b.name, f"a {b.label}{tag}", "benchmark",
                                                  neutral), partial(_clone, b.estimator)))
        return specs[: max(1, self.max_candidates)]

    @staticmethod
    def _reg_spec(ctx: AuditContext, s: Setting, i: int, prefix: str, neutral: tuple[str, ...],
                  consts: dict[str, Any], tag: str, wrap: Callable[[Any], Any]) -> _Spec:
        params = {prefix + k: v for k, v in s.params.items()}
        base = CandidateScore(f"model/regularised{i + 1}", s.label.split(" (")[0],
                              f"the model{tag} {s.label}", "model", neutral,
                              {**dict(consts), **params})
        return _Spec(base, lambda: wrap(clone_model(ctx, **params)))

    def _fit_all(self, ctx: AuditContext, tr: TrainingRows, specs: list[_Spec], judged: list[Judged]
                 ) -> tuple[list[CandidateScore], dict[str, Any], float]:
        scored: list[CandidateScore] = []
        fitted: dict[str, Any] = {}
        t0 = time.perf_counter()
        for spec in specs:
            try:
                est = spec.build()
                adapter = fit(est, tr.X, tr.y)
                _same_classes(ctx, adapter.classes)
                scored.append(self._measure(ctx, spec.base, predict(ctx, adapter, ctx.X("test")), judged))
                fitted[spec.base.name] = est
            except Exception as exc:  # noqa: BLE001 - one candidate failing leaves the others
                scored.append(replace(spec.base, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                                      if str(exc).strip() else type(exc).__name__))
        return scored, fitted, time.perf_counter() - t0

    # -- the report --
    def _remediation(self, inputs: RemedyInputs, model: CandidateScore, chosen: CandidateScore, proxies: Proxies,
                     tr: TrainingRows, path: str, data: bytes, scored: list[CandidateScore]) -> Remediation:
        addresses = [f.id for t in impact_targets(inputs) for f in t.findings]
        addresses += [f.id for f in proxies.findings if f.features[0] in chosen.neutralised]
        before = {"adverse_impact_ratio": model.worst_air, "auc": model.auc, "accuracy": model.accuracy}
        after = {"adverse_impact_ratio": chosen.worst_air, "auc": chosen.auc, "accuracy": chosen.accuracy}
        params: dict[str, Any] = {"candidate": chosen.label, "training_rows": tr.used,
                                  "test_rows": len(inputs.ctx.frame("test")),
                                  "threshold": float(inputs.ctx.threshold), "worst_group": chosen.worst_group}
        params |= {f"neutralised {f}": chosen.settings.get(f) for f in chosen.neutralised}
        params |= {k: v for k, v in chosen.settings.items() if k not in chosen.neutralised}
        return Remediation(
            id=f"alternative/{chosen.name}", kind="retrain", addresses=tuple(dict.fromkeys(addresses)),
            title=(f"Refitted: {chosen.label}; worst adverse impact ratio {fixed(model.worst_air)} → "
                   f"{fixed(chosen.worst_air)}"),
            summary=self._summary(inputs.ctx, model, chosen, scored), before=before, after=after, verified=True,
            parameters=params, caveats=self._caveats(chosen, tr, data, len(scored)), artifacts=(path,))

    def _summary(self, ctx: AuditContext, model: CandidateScore, chosen: CandidateScore,
                 scored: list[CandidateScore]) -> str:
        dq = chosen.auc - model.auc
        cost = ("at no loss of AUC" if dq >= 0 else
                f"at a cost of {fixed(-dq, 3)} in AUC (tolerance {self.auc_tolerance:g})")
        n = len(ctx.frame("test"))
        text = (f"{chosen.label[0].upper()}{chosen.label[1:]}, refitted on the training rows, raises the worst "
                f"adverse impact ratio on the {n:,} test rows (threshold {ctx.threshold:g}) from "
                f"{fixed(model.worst_air)} ({model.worst_group}) to {fixed(chosen.worst_air)} "
                f"({chosen.worst_group}) {cost}: AUC {fixed(model.auc, 3)} → {fixed(chosen.auc, 3)}, accuracy "
                f"{pct(model.accuracy)} → {pct(chosen.accuracy)}, favourable rate {pct(model.favorable_rate)} → "
                f"{pct(chosen.favorable_rate)}. ")
        ref = next((c for c in scored if c.reference and c.ok), None)
        if ref is not None:
            text += (f"Refitting with nothing changed gives {fixed(ref.worst_air)} (AUC {fixed(ref.auc, 3)}), so the "
                     f"change itself accounts for {signed(chosen.worst_air - ref.worst_air)} of the ratio. ")
        if chosen.worst_air < self.min_ratio:
            text += f"It does not reach {self.min_ratio:.2f}: it narrows the disparity, it does not remove it."
        return text.strip()

    def _caveats(self, chosen: CandidateScore, tr: TrainingRows, data: bytes, n: int) -> tuple[str, ...]:
        out = [f"Chosen among {n} candidates on the same test rows it is measured on, so the after-values are "
               "somewhat optimistic; confirm on fresh data.",
               tr.note[0].upper() + tr.note[1:] + "; the test rows are never used for fitting."]
        if chosen.neutralised:
            out.append("The neutralised features are set to one constant inside the saved pipeline (its first "
                       "step), so the model cannot use them; whether those features may be used at all is a "
                       "policy question, and other features may still carry the same information.")
        untrusted = _untrusted(data)
        if untrusted:
            out.append("Load the saved model with skops.io.load(path, trusted=[...]) after reviewing the types it "
                       "names that skops does not trust by default: " + ", ".join(untrusted)
                       + " (to re-audit it with auditor: [model] trusted = true).")
        out.append("Re-audit the candidate (all checks) before adopting it: the remedy measures its AUC, accuracy and "
                   "adverse impact ratios only.")
        return tuple(out)

    def _notes(self, tr: TrainingRows, proxies: Proxies, scored: list[CandidateScore], specs: list[_Spec],
               seconds: float, chosen: CandidateScore | None, model: CandidateScore) -> list[str]:
        notes = [tr.note[0].upper() + tr.note[1:] + f"; {plural(len(specs), 'model')} refitted "
                 f"(max_candidates = {self.max_candidates}) in {seconds:.1f} s; each measured on the test rows at the "
                 "model's threshold."]
        if proxies.features:
            notes.append("Proxies neutralised (named by fairness.proxy, medium or high): "
                         + ", ".join(f"'{f}'" for f in proxies.features) + ".")
        else:
            notes.append("fairness.proxy named no proxy at medium or high: only regularisation and benchmark "
                         "candidates were tried.")
        for c in scored:
            if c.error:
                notes.append(f"Candidate '{c.label}' could not be measured: {c.error}.")
        if chosen is None:
            ref = next((c for c in scored if c.reference and c.ok), None)
            notes.append(f"No candidate raises the worst adverse impact ratio by more than {self.min_gain:g} over the "
                         f"model's {fixed(model.worst_air, 3)}"
                         + (f" and over the unchanged refit's {fixed(ref.worst_air, 3)}" if ref is not None else "")
                         + f" while staying within {self.auc_tolerance:g} of its AUC ({fixed(model.auc, 3)}); no "
                         "alternative is proposed.")
        return notes

    def _table(self, model: CandidateScore, scored: list[CandidateScore], chosen: CandidateScore | None) -> Table:
        records = []
        for c in [model, *scored]:
            mark = "proposed" if chosen is not None and c.name == chosen.name else (
                "reference" if c.reference else ("" if c.ok else "failed"))
            records.append({"candidate": c.label, "mark": mark, "auc": sig(c.auc), "accuracy": sig(c.accuracy),
                            "favorable_rate": sig(c.favorable_rate), "worst_air": sig(c.worst_air),
                            "worst_group": c.worst_group})
        return Table.from_records(
            "alternatives", "Refitted candidates on the test rows", records,
            columns=("candidate", "mark", "auc", "accuracy", "favorable_rate", "worst_air", "worst_group"),
            caption=("auc and accuracy on the test rows; worst_air: the lowest adverse impact ratio of the judged "
                     "groups (as fairness.disparate_impact computes it) at the model's threshold; reference: the "
                     "refit with nothing changed, for the refit's own noise."))

    def _figure(self, model: CandidateScore, scored: list[CandidateScore], chosen: CandidateScore | None) -> Figure:
        return Figure(
            "frontier", "Adverse impact ratio against AUC: the audited model and the refitted candidates",
            plot="remedy_fairness.frontier_figure",
            data={"model": model, "candidates": tuple(c for c in scored if c.ok),
                  "chosen": chosen.name if chosen is not None else None, "min_ratio": self.min_ratio,
                  "tolerance": self.auc_tolerance, "metric": "AUC" if math.isfinite(model.auc) else "accuracy"},
            caption=(f"Star: the audited model; dots: refitted candidates (green: benchmark family; hollow: the "
                     f"unchanged refit); ring: the proposed one. Dashed: {self.min_ratio:g}; shaded: within "
                     f"{self.auc_tolerance:g} of the model's AUC or better."))


def _clone(est: Any) -> Any:
    from sklearn.base import clone

    return clone(est)


def _same_classes(ctx: AuditContext, classes: tuple[Any, ...] | None) -> None:
    if classes is None:
        return
    if len(classes) != len(ctx.classes) or not all(same_class(a, b) for a, b in zip(classes, ctx.classes)):
        raise ValueError(f"the refitted model's classes {list(classes)} differ from the audited model's "
                         f"{list(ctx.classes)} (a class missing from the sampled training rows?)")


def _dumps(est: Any) -> bytes:
    from .files import skops_bytes

    return skops_bytes(est)


def _untrusted(data: bytes) -> list[str]:
    import skops.io as sio

    try:
        return sorted(sio.get_untrusted_types(data=data))
    except Exception:  # noqa: BLE001 - the list is advice; the file is written either way
        return []
