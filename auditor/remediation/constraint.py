"""The ``constraint`` remedy: a model that breaks a declared monotonicity, refitted with a
monotone constraint on that feature, the breach re-measured by the partial-dependence check's own
test, and what the constraint costs on the test rows.

Only estimators that take monotone constraints qualify: scikit-learn's HistGradientBoosting
(``monotonic_cst``), LightGBM and XGBoost (``monotone_constraints``), alone or as the last step of
a pipeline. Inside a pipeline the constraint goes on the preprocessing's output column that
carries the feature (``auditor.analysis.constraint.map_feature``); a one-hot encoded feature
cannot be constrained, and the notes say so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from ..analysis.constraint import (
    HGB,
    PARAMETER,
    ColumnMap,
    constraint_value,
    estimator_family,
    existing_constraints,
    map_feature,
    performance,
)
from ..analysis.partial_dependence import IN_RANGE, DependenceMetrics, FeatureDependence
from ..checks.sensitivity.partial_dependence import PartialDependenceCheck, PartialDependenceMeasurement
from ..findings import Evidence, Figure, Finding, Severity, Table
from ..wording import amount, pct, plural, sig, signed
from .base import Artifact, Remediation, Remedy, RemedyInputs, RemedyOutput, artifact_path, budget
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
    from ..context import AuditContext

PD_ID = PartialDependenceCheck.id
MONOTONE = f"{PD_ID}/monotone/"
UNSUPPORTED = "only HistGradientBoosting, LightGBM and XGBoost take monotone constraints"
PERF_LABEL = {"auc": "AUC", "accuracy": "accuracy", "rmse": "RMSE", "mae": "MAE", "log_loss": "log loss"}


def breaches(inputs: RemedyInputs) -> list[Finding]:
    """The medium-or-high monotonicity findings of the partial-dependence check, most severe first."""
    found = [f for f in inputs.findings_of(PD_ID, "medium") if f.id.startswith(MONOTONE) and f.features]
    return sorted(found, key=lambda f: (-f.severity.rank, f.id))


def _preprocessing(fitted: Any) -> list[Any]:
    """The fitted steps before the final estimator, outermost first (empty for a bare estimator)."""
    out: list[Any] = []
    obj = fitted
    for _ in range(5):
        if not hasattr(obj, "steps"):
            break
        if len(obj.steps) > 1:
            out.append(obj[:-1])
        obj = obj.steps[-1][1]
    return out


def _transform(steps: list[Any]) -> Any:
    def run(X: pd.DataFrame) -> Any:
        out: Any = X
        for step in steps:
            out = step.transform(out)
        return out
    return run


def _output_names(steps: list[Any]) -> list[str] | None:
    if not steps:
        return None
    try:
        return [str(n) for n in steps[-1].get_feature_names_out()]
    except Exception:  # noqa: BLE001 - a step without names: columns are named by position
        return None


@dataclass(frozen=True, eq=False)
class _Setup:
    """What every breached feature's refit shares: the measurement and check, the estimator, the
    training rows, the fitted preprocessing and the audited model's (and an unconstrained refit's) cost."""

    ctx: AuditContext
    m: PartialDependenceMeasurement
    check: PartialDependenceCheck
    final: Any
    family: str
    param: str
    seeded: dict[str, Any]
    rows: TrainingRows
    steps: list[Any]
    names: list[str] | None
    map_X: pd.DataFrame
    n_columns: int
    perf_before: dict[str, float]
    perf_refit: dict[str, float]
    known: set[str]  # the partial-dependence findings of the audited model


@dataclass
class ConstraintRemedy(Remedy):
    """Refit with a monotone constraint on each feature whose declared monotonicity
    (``[expect] monotone``) the partial-dependence check found breached (medium or high)."""

    id: ClassVar[str] = "constraint"
    title: ClassVar[str] = "Monotone constraint"
    order: ClassVar[int] = 40
    kinds: ClassVar[tuple[str, ...]] = ("constraint",)
    reads: ClassVar[tuple[str, ...] | None] = (PD_ID,)

    max_rows: int = budget(20_000, "training rows each refit uses (a seeded sample above this)")
    max_features: int = budget(3, "breached features refitted at most (one refit each, most severe first)")
    map_rows: int = budget(50, "training rows used to find the model column a feature becomes in the pipeline")

    def skip_reason(self, inputs: RemedyInputs) -> str | None:
        ctx = inputs.ctx
        if not ctx.config.expect.monotone:
            return "no monotonicity is declared ([expect] monotone)"
        if not breaches(inputs):
            return "no medium-or-high breach of a declared monotonicity"
        if not isinstance(inputs.measurement(PD_ID), PartialDependenceMeasurement):
            return "the partial-dependence check's measurement is not available"
        why = refit_unavailable(ctx)
        if why:
            return f"the model cannot be refitted: {why}"
        obj = model_object(ctx)
        if final_prefix(obj) is None:
            return "the model is a hyper-parameter search that refits itself; constrain the estimator it searches"
        final = final_step(obj)
        family = estimator_family(final)
        if family is None:
            return f"{UNSUPPORTED}; the model ends in {type(final).__name__}"
        if family == HGB and ctx.is_multiclass:
            return "scikit-learn's HistGradientBoosting takes no monotonic constraints for more than two classes"
        return None

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        ctx = inputs.ctx
        m = inputs.measurement(PD_ID)
        assert isinstance(m, PartialDependenceMeasurement)  # skip_reason
        obj = model_object(ctx)
        prefix = final_prefix(obj) or ""
        final = final_step(obj)
        family = estimator_family(final)
        assert family is not None  # skip_reason
        seeded = {}
        if "random_state" in final.get_params() and final.get_params()["random_state"] is None:
            seeded = {prefix + "random_state": ctx.seed}
        rows = training_rows(ctx, int(self.max_rows), self.id)
        notes = [f"{rows.note[:1].upper()}{rows.note[1:]} (never the test rows); the breach is re-measured by "
                 f"{PD_ID} with its own options on its {m.rows_sampled:,} sampled test rows and grid; the cost is "
                 f"measured on all {len(ctx.test):,} test rows."]
        if seeded:
            notes.append(f"The model's random_state is None; the refits set it to the audit seed ({ctx.seed}).")
        base = clone_model(ctx, **seeded)  # unconstrained, on the same rows: the constraint's own cost
        base_adapter = fit(base, rows.X, rows.y)
        steps = _preprocessing(base)
        map_X = rows.X.iloc[:max(2, int(self.map_rows))]
        setup = _Setup(ctx=ctx, m=m, check=PartialDependenceCheck(**dict(ctx.config.checks.options.get(PD_ID, {}))),
                       final=final, family=family, param=prefix + PARAMETER[family], seeded=seeded, rows=rows,
                       steps=steps, names=_output_names(steps), map_X=map_X,
                       n_columns=_n_columns(steps, map_X, len(ctx.features)), perf_before=_performance(ctx, None),
                       perf_refit=_performance(ctx, base_adapter),
                       known={f.id for f in inputs.findings_of(PD_ID, "low")})
        remediations: list[Remediation] = []
        artifacts: list[Artifact] = []
        todo = breaches(inputs)
        if len(todo) > self.max_features:
            notes.append(f"{len(todo)} breached features; the {int(self.max_features)} most severe were refitted "
                         f"(max_features): {', '.join(f.features[0] for f in todo[:self.max_features])}.")
        for finding in todo[:int(self.max_features)]:
            rem, artifact, note = self._refit_one(setup, finding)
            if rem is not None:
                remediations.append(rem)
            if artifact is not None:
                artifacts.append(artifact)
            if note:
                notes.append(note)
        return RemedyOutput(remediations=tuple(remediations), artifacts=tuple(artifacts), notes=tuple(notes))

    def _refit_one(self, st: _Setup, finding: Finding) -> tuple[Remediation | None, Artifact | None, str]:
        """One breached feature: constrain, refit, re-measure with the check; a remediation only
        when the check finds the breach gone, else a note saying why not."""
        ctx, feature = st.ctx, finding.features[0]
        fm, dep = _metrics_of(st.m, feature)
        if fm is None or dep is None:
            return None, None, f"{feature}: not in the partial-dependence measurement, so not refitted."
        cmap = self._map(st.steps, st.map_X, feature, dep, st.names, ctx)
        if not cmap.constrainable:
            return None, None, f"{feature}: not constrained: {cmap.reason}."
        declared = int(fm.monotone)
        try:
            vector = existing_constraints(st.family, st.final.get_params().get(PARAMETER[st.family]), st.n_columns,
                                          st.names)
        except ValueError as exc:
            return None, None, f"{feature}: not constrained: {exc}."
        vector[cmap.column] = declared * cmap.direction
        value = constraint_value(st.family, vector)
        try:
            model = clone_model(ctx, **{st.param: value, **st.seeded})
            adapter = fit(model, st.rows.X, st.rows.y)
        except Exception as exc:  # noqa: BLE001 - the estimator refuses this constraint: say why
            return None, None, f"{feature}: the constrained refit failed ({type(exc).__name__}: {exc})."
        m2 = st.check.measure(_with_adapter(ctx, adapter))
        after_findings = {f.id: f for f in st.check.judge(m2) if f.id.startswith(MONOTONE)}
        fm2, dep2 = _metrics_of(m2, feature)
        assert fm2 is not None and dep2 is not None
        perf_after = _performance(ctx, adapter)
        left = after_findings.get(finding.id)
        if left is not None and left.severity.rank >= Severity.MEDIUM.rank:
            return None, None, (f"{feature}: the constrained refit still breaks the declared direction by the "
                                f"check's test ({left.severity.value}: PDP fall {amount(fm2.pdp_drop)}, "
                                f"{pct(fm2.ice_breach_share, 0)} of ICE curves), so it is not reported as a remedy.")
        before = {"pdp_fall": fm.pdp_drop, "ice_breach_share": fm.ice_breach_share,
                  "breach_severity": finding.severity.value, **st.perf_before}
        after = {"pdp_fall": fm2.pdp_drop, "ice_breach_share": fm2.ice_breach_share,
                 "breach_severity": left.severity.value if left is not None else "none", **perf_after}
        new = sorted(fid for fid in after_findings if fid != finding.id and fid not in st.known)
        path = artifact_path(f"constraint_{_file_part(feature)}.skops")
        data = _skops_bytes(model)
        caveats = [
            f"Refitted by the audit on {st.rows.used:,} training rows with the model's own hyper-parameters; "
            "retrain with the owner's full pipeline and data before deployment.",
            "A monotone constraint forces the declared direction everywhere: if the effect is genuinely "
            "non-monotone, the accuracy cost is the price of the declaration, to be agreed with the owner.",
        ]
        if new:
            caveats.append(f"The constrained refit breaks other declared directions: {', '.join(new)}.")
        if data is None:
            caveats.append("The constrained model could not be saved with skops.")
        artifact = None if data is None else Artifact(
            path, data, title=f"The model refitted with a monotone constraint on {feature} (skops)")
        rem = Remediation(
            id=f"constraint/{feature}", kind="constraint", addresses=(finding.id,),
            title=f"Refit with a monotone {_direction(declared)} constraint on {feature}",
            summary=_summary(feature, declared, cmap, st.param, fm, fm2, st.perf_before, perf_after, st.perf_refit,
                             st.m, len(ctx.test)),
            before=before, after=after, verified=True,
            parameters={"feature": feature, "declared": declared, "estimator": type(st.final).__name__,
                        "parameter": st.param, "value": str(value), "model_column": cmap.names[0],
                        "column_direction": cmap.direction, "training_rows": st.rows.used,
                        **({"random_state": ctx.seed} if st.seeded else {})},
            caveats=tuple(caveats), artifacts=(path,) if data is not None else (),
            evidence=_evidence(feature, declared, dep, dep2, st.perf_before, perf_after, st.perf_refit, st.m))
        return rem, artifact, ""

    def _map(self, steps: list[Any], X: pd.DataFrame, feature: str, dep: FeatureDependence,
             names: list[str] | None, ctx: AuditContext) -> ColumnMap:
        if not steps:  # a bare estimator sees the feature columns as they are
            return ColumnMap(feature, (list(ctx.features).index(feature),), (feature,), 1)
        values = sorted(dep.grid.values_of(IN_RANGE))
        try:
            return map_feature(_transform(steps), X, feature, values, names=names,
                               categorical=feature in ctx.categorical)
        except Exception as exc:  # noqa: BLE001 - a preprocessing whose output is not numeric
            return ColumnMap(feature, (), (), 0, f"the preprocessing's output could not be read as numbers "
                                                 f"({type(exc).__name__}: {exc})")


def _n_columns(steps: list[Any], X: pd.DataFrame, n_features: int) -> int:
    if not steps:
        return n_features
    return int(np.shape(_transform(steps)(X))[1])


def _with_adapter(ctx: AuditContext, adapter: Any) -> AuditContext:
    """The audit context with another model (a refit), and no cached predictions."""
    return dataclasses.replace(ctx, model=dataclasses.replace(ctx.model, adapter=adapter), _cache={})


def _metrics_of(m: PartialDependenceMeasurement, feature: str) -> tuple[DependenceMetrics | None,
                                                                         FeatureDependence | None]:
    fm = next((x for x in m.metrics if x.feature == feature), None)
    dep = next((d for d in m.dependences if d.feature == feature), None)
    return fm, dep


def _performance(ctx: AuditContext, adapter: Any | None) -> dict[str, float]:
    p = ctx.predictions("test") if adapter is None else predict(ctx, adapter, ctx.X("test"))
    return performance(ctx.task, ctx.y_task("test"), p.score, p.label, proba=p.proba,
                       y_index=ctx.y_classes("test") if ctx.is_multiclass else None)


def _skops_bytes(model: Any) -> bytes | None:
    try:
        from .files import skops_bytes

        return skops_bytes(model)
    except Exception:  # noqa: BLE001 - an estimator skops cannot serialise: reported as a caveat
        return None


def _file_part(name: str) -> str:
    out = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in name)
    return out.strip("_") or "feature"


def _direction(declared: int) -> str:
    return "increasing" if declared > 0 else "decreasing"


def _cost_text(perf_before: dict[str, float], perf_after: dict[str, float],
               perf_refit: dict[str, float]) -> str:
    parts = []
    for k, b in perf_before.items():
        a = perf_after[k]
        label = PERF_LABEL.get(k, k)
        if k == "accuracy":
            parts.append(f"{label} {pct(b)} → {pct(a)}")
        else:
            parts.append(f"{label} {amount(b)} → {amount(a)} ({signed(a - b, 3)}; an unconstrained refit on the same "
                         f"rows: {amount(perf_refit[k])})")
    return ", ".join(parts)


def _summary(feature: str, declared: int, cmap: ColumnMap, param: str, fm: DependenceMetrics,
             fm2: DependenceMetrics, perf_before: dict[str, float], perf_after: dict[str, float],
             perf_refit: dict[str, float], m: PartialDependenceMeasurement, n_test: int) -> str:
    direction = _direction(declared)
    moved = "fall" if declared > 0 else "rise"
    where = (f"on the model column {cmap.names[0]}" if cmap.names[0] != feature else f"on {feature}")
    sign = declared * cmap.direction
    return (f"Refitting the model with {param} = {sign:+d} {where} (declared {direction}) removes the breach. "
            f"Re-measured by the partial-dependence check's own test on the same {plural(m.rows_sampled, 'test row')} "
            f"and grid, the largest PDP {moved} against the declared direction is {amount(fm2.pdp_drop)} (was "
            f"{amount(fm.pdp_drop)}) and {pct(fm2.ice_breach_share, 0)} of ICE curves breach it (was "
            f"{pct(fm.ice_breach_share, 0)}): the check finds no breach. The cost on the {plural(n_test, 'test row')}: "
            f"{_cost_text(perf_before, perf_after, perf_refit)}.")


def _evidence(feature: str, declared: int, dep: FeatureDependence, dep2: FeatureDependence,
              perf_before: dict[str, float], perf_after: dict[str, float], perf_refit: dict[str, float],
              m: PartialDependenceMeasurement) -> Evidence:
    values, pdp_before, _ = dep.part(IN_RANGE)
    values2, pdp_after, _ = dep2.part(IN_RANGE)
    order = sorted(range(len(values)), key=lambda i: values[i])
    after_of = dict(zip(values2, pdp_after))
    perf_records = [{"metric": PERF_LABEL.get(k, k), "audited": sig(perf_before[k], 4),
                     "unconstrained_refit": sig(perf_refit[k], 4),
                     "constrained_refit": sig(perf_after[k], 4)} for k in perf_before]
    perf_table = Table.from_records(f"cost_{feature}", "Test metrics of the audited model and the refits",
                                    perf_records, caption="All test rows. The unconstrained refit uses the same "
                                                          "training rows and hyper-parameters as the constrained one.")
    figure = Figure(f"constraint_{feature}", f"PDP of {feature} before and after the constraint",
                    plot="remedy_edit.monotone_figure",
                    data={"feature": feature, "values": [values[i] for i in order],
                          "before": [float(pdp_before[i]) for i in order],
                          "after": [float(after_of.get(values[i], np.nan)) for i in order], "declared": declared},
                    caption=f"Mean prediction over the check's {m.rows_sampled:,} sampled test rows with {feature} "
                            "set to each value of its grid: the audited model and the constrained refit.")
    return Evidence(tables=(perf_table,), figures=(figure,))
