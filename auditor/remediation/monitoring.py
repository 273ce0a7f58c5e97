"""Monitoring baseline: what to watch in production, taken from the audit (``remediation/monitoring.json``).

Per feature the reference distribution over the drift check's own bins (its quantile edges of the
training data, or the levels), per the model's score the distribution of the held-out test scores
(a fitted model's training scores are optimistic, so production scores are compared with scores
on rows it never saw), the favourable rate and adverse impact ratio of every group of
``fairness.disparate_impact``, the decision threshold and the alert levels the checks judge with.
``auditor monitor monitoring.json new.csv --model model.skops`` reads it.

Measured: the monitor is run from the file's own bytes on the audit's test rows, re-scoring them
with the model. ``before`` is what the audit measured on those rows (the drift check's PSI, the
fairness check's rates) judged with the monitor's rules, ``after`` what the monitor computes from
the file; the baseline is verified when the two agree.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from ..analysis.drift import FeatureDrift, frame_drift, homogeneity_pvalue
from ..analysis.group_metrics import quantile_cuts
from ..analysis.monitoring import (
    CATEGORICAL,
    NUMERIC,
    ColumnReference,
    ColumnShift,
    GroupingSpec,
    column_shift,
    cuts_reproduce,
    reference_bins,
)
from ..findings import Evidence, Table
from ..monitor import (
    ALL_ROWS,
    AlertLevels,
    Baseline,
    FairnessBaseline,
    GroupBaseline,
    GroupCheck,
    GroupingBaseline,
    ModelInfo,
    MonitorResult,
    baseline_from_json,
    judge_columns,
    judge_groups,
    monitor,
)
from ..wording import fixed, plural
from .base import Remediation, Remedy, RemedyInputs, RemedyOutput, artifact_path, threshold

if TYPE_CHECKING:
    from ..checks.data import DriftCheck
    from ..checks.fairness.disparate_impact import DisparateImpactCheck, DisparateImpactMeasurement
    from ..context import AuditContext

PATH = artifact_path("monitoring.json")
TOLERANCE = 1e-9  # the monitor reproduces the audit's numbers up to float noise
WATCHED = ("data.drift", "fairness.disparate_impact")  # the checks whose findings the baseline watches


def _check(ctx: AuditContext, check_id: str, cls: Any) -> Any:
    """A check with the audit's options for it, for its levels and binning settings."""
    return cls(**dict(ctx.config.checks.options.get(check_id, {})))


@dataclass
class MonitoringRemedy(Remedy):
    """Writes the production-monitoring baseline and checks that the monitor, run from the file on
    the audit's own test rows, reproduces the audit's numbers. Runs for every audit."""

    id: ClassVar[str] = "monitoring"
    title: ClassVar[str] = "Monitoring baseline"
    order: ClassVar[int] = 90
    kinds: ClassVar[tuple[str, ...]] = ("monitoring",)
    reads: ClassVar[tuple[str, ...] | None] = WATCHED

    rate_warn: float = threshold(0.05, "change of a group's favourable rate that warns in production (when "
                                       "significant)")
    rate_alert: float = threshold(0.10, "change of a group's favourable rate that alerts in production (when "
                                        "significant)")
    rate_alpha: float = threshold(0.01, "significance level of a favourable-rate change (Fisher exact), "
                                        "Bonferroni-corrected over the groups")

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        from ..checks.data import DriftCheck
        from ..checks.fairness.disparate_impact import DisparateImpactCheck

        ctx = inputs.ctx
        drift: DriftCheck = _check(ctx, "data.drift", DriftCheck)
        di: DisparateImpactCheck = _check(ctx, "fairness.disparate_impact", DisparateImpactCheck)
        levels = AlertLevels(psi_warn=drift.psi_medium, psi_alert=drift.psi_high, drift_alpha=drift.alpha,
                             epsilon=drift.epsilon, min_ratio=di.min_ratio, fairness_alpha=di.alpha,
                             rate_warn=self.rate_warn, rate_alert=self.rate_alert, rate_alpha=self.rate_alpha,
                             min_group_rows=di.min_group_size)
        audited = _audited_drift(inputs, drift)
        source = "train" if ctx.has_train else "test"
        ref_frame = ctx.frame("train") if ctx.has_train else ctx.frame("test")
        features = tuple(reference_bins(ref_frame[d.feature], name=d.feature, kind=d.kind, source=source,
                                        n_bins=drift.n_bins) for d in audited)
        score_ref = reference_bins(_audit_scores(ctx), name="model score", kind=_score_kind(ctx), source="test",
                                   n_bins=drift.n_bins)
        notes: list[str] = []
        fairness = _fairness_baseline(inputs, di, notes)
        baseline = Baseline(audit=ctx.config.audit.name, model=_model_info(ctx), features=features, score=score_ref,
                            levels=levels, fairness=fairness, notes=tuple(_baseline_notes(ctx, drift) + notes))
        data = baseline.to_bytes()
        # measured: the monitor from the file's bytes on the audit's own test rows, re-scored by the model
        after = monitor(baseline_from_json(json.loads(data), source=PATH), ctx.frame("test"), ctx.model)
        before = _audit_result(baseline, ctx, audited, score_ref, inputs.measurement("fairness.disparate_impact"))
        notes.append(f"The baseline reads all {ref_frame.shape[0]:,} {source} rows and the model's outputs on all "
                     f"{len(ctx.frame('test')):,} test rows; the check of the file re-scores those test rows with the "
                     "model once.")
        return RemedyOutput(remediations=(self._remediation(inputs, baseline, before, after),),
                            artifacts=(_artifact(data),), notes=tuple(notes))

    def _remediation(self, inputs: RemedyInputs, baseline: Baseline, before: MonitorResult,
                     after: MonitorResult) -> Remediation:
        b, a = _metrics(before), _metrics(after)
        keys = [k for k in b if b[k] is not None and a[k] is not None]
        differ = [k for k in b if (b[k] is None) != (a[k] is None) or (k in keys and not _same(b[k], a[k]))]
        caveats = _caveats(baseline, after)
        if differ:
            caveats.insert(0, "The monitor run from the file does not reproduce the audit's own numbers on its test "
                              f"rows ({', '.join(differ)}): do not rely on this baseline before finding out why.")
        watched = set(baseline.model.features)
        addresses = tuple(f.id for cid in WATCHED for f in inputs.findings_of(cid, "medium")
                          if cid != "data.drift" or (f.features and set(f.features) <= watched))  # not the target
        return Remediation(
            id="monitoring", kind="monitoring", addresses=addresses, title="Production monitoring baseline",
            summary=_summary(baseline, after, differ), before={k: b[k] for k in keys}, after={k: a[k] for k in keys},
            verified=not differ, parameters=_parameters(baseline), caveats=tuple(caveats), artifacts=(PATH,),
            evidence=Evidence(tables=_tables(baseline, before, after)))


def _artifact(data: bytes) -> Any:
    from .base import Artifact

    return Artifact(PATH, data, title="Production-monitoring baseline (read by auditor monitor)")


# ---- the baseline from the audit ------------------------------------------------------------------

def _audited_drift(inputs: RemedyInputs, drift: DriftCheck) -> tuple[FeatureDrift, ...]:
    """The drift check's per-feature measurement (train → test), or the same analysis run here when
    the check did not run (no training data: the test rows against themselves)."""
    ctx = inputs.ctx
    m = inputs.measurement("data.drift")
    if m is not None:
        return tuple(m.features)
    ref = ctx.frame("train") if ctx.has_train else ctx.frame("test")
    return frame_drift(ref, ctx.frame("test"), columns=ctx.features, categorical=ctx.categorical,
                       n_bins=drift.n_bins, epsilon=drift.epsilon).columns


def _score_kind(ctx: AuditContext) -> str:
    return CATEGORICAL if ctx.is_multiclass else NUMERIC


def _audit_scores(ctx: AuditContext) -> np.ndarray:
    """The monitored score on the test rows, as the drift check reads it: P(positive) or the
    prediction, or for k classes the predicted class."""
    p = ctx.predictions("test")
    if ctx.is_multiclass:
        names = np.array([str(c) for c in ctx.classes], dtype=object)
        return names[np.asarray(p.pred_class)]
    return np.asarray(p.score, dtype=float)


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _model_info(ctx: AuditContext) -> ModelInfo:
    return ModelInfo(path=ctx.model.path, sha256=ctx.model.sha256, kind=str(getattr(ctx.model.adapter, "kind", "")),
                     task=ctx.task, target=ctx.target, features=tuple(ctx.features),
                     classes=tuple(_plain(c) for c in ctx.classes), positive_class=_plain(ctx.positive_class),
                     favorable=_plain(ctx.favorable), threshold=float(ctx.threshold))


def _baseline_notes(ctx: AuditContext, drift: DriftCheck) -> list[str]:
    where = (f"the {len(ctx.frame('train')):,} training rows" if ctx.has_train else
             f"the {len(ctx.frame('test')):,} test rows (the audit had no training data)")
    return [f"Feature references: {where}, on the drift check's bins ({drift.n_bins} quantile bins of the reference "
            "for a numeric feature, its levels for a categorical one, and a bin for missing values).",
            f"Score reference: the model's outputs on the {len(ctx.frame('test')):,} held-out test rows, on "
            f"{drift.n_bins} quantile bins of them" + (" (the predicted class)." if ctx.is_multiclass else ".")]


def _cuts(m: DisparateImpactMeasurement, di: DisparateImpactCheck, ctx: AuditContext,
          col: str) -> tuple[float, ...] | None:
    """How the fairness check grouped one protected column: its levels (None) or band cut points."""
    single = next((r.grouping for r in m.rates if r.grouping.columns == (col,)), None)
    method = single.method if single is not None else "levels"
    if method == "fixed bands":
        return tuple(float(c) for c in di.bands[col])
    if method == "quantile bands":
        x = pd.to_numeric(ctx.frame("test")[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return tuple(quantile_cuts(x, di.numeric_bins))
    return None


def _fairness_baseline(inputs: RemedyInputs, di: DisparateImpactCheck, notes: list[str]) -> FairnessBaseline | None:
    """Group favourable rates and adverse impact ratios from the fairness check's measurement."""
    ctx = inputs.ctx
    m = inputs.measurement("fairness.disparate_impact")
    if not ctx.is_classification:
        notes.append("Regression: the baseline watches drift of the features and of the prediction; group "
                     "favourable rates need a classifier.")
        return None
    if m is None or not m.rates:
        result = inputs.checks.get("fairness.disparate_impact")
        why = (result.reason or result.error) if result is not None else "the check did not run"
        notes.append(f"No group favourable rates: fairness.disparate_impact has no measurement ({why}).")
        return None
    groupings = []
    for res in m.rates:
        g = res.grouping
        spec = GroupingSpec(name=g.name, columns=g.columns, cuts=tuple(_cuts(m, di, ctx, c) for c in g.columns),
                            groups=g.groups, reference=g.reference)
        if not cuts_reproduce(ctx.frame("test"), spec, g.labels):
            notes.append(f"The groups of '{g.name}' could not be reproduced from its values: not in the baseline.")
            continue
        groups = tuple(GroupBaseline(group=r.group, rows=r.count, favorable=r.favorable_count,
                                     favorable_rate=r.favorable_rate, adverse_impact_ratio=r.air,
                                     is_reference=r.is_reference) for r in res.rows)
        groupings.append(GroupingBaseline(spec=spec, groups=groups, reference_rate=res.reference_rate))
    o = m.favorable
    return FairnessBaseline(favorable=o.label, rows=int(o.decision.size), favorable_count=int(o.decision.sum()),
                            overall_rate=float(o.decision.mean()), groupings=tuple(groupings))


# ---- before: the audit's own measurements, judged with the monitor's rules ---------------------------

def _shift_of(d: FeatureDrift, ref: ColumnReference) -> ColumnShift:
    """The drift check's measurement of one feature as the monitor reads a column."""
    assert d.bins is not None, "the drift analysis always returns its bins"
    b = d.bins
    return ColumnShift(name=d.feature, kind=d.kind, n_reference=int(b.reference.sum()), n_current=int(b.current.sum()),
                       psi=d.psi, p_value=homogeneity_pvalue(b.reference, b.current), labels=b.labels,
                       reference_share=tuple(float(v) for v in b.reference_share),
                       current_share=tuple(float(v) for v in b.current_share),
                       mean_reference=d.mean_reference, mean_current=d.mean_current, sd_reference=ref.sd)


def _audit_groups(fair: FairnessBaseline | None, m: DisparateImpactMeasurement | None) -> list[GroupCheck]:
    if fair is None or m is None:
        return []
    o = m.favorable
    rows = [GroupCheck(grouping=ALL_ROWS, group="all", is_reference=False, rows=int(o.decision.size),
                       favorable=int(o.decision.sum()), favorable_rate=float(o.decision.mean()),
                       adverse_impact_ratio=float("nan"), air_p=float("nan"), reference_rows=0,
                       baseline_rows=fair.rows, baseline_favorable=fair.favorable_count,
                       baseline_rate=fair.overall_rate)]
    kept = {g.spec.name: g for g in fair.groupings}
    for res in m.rates:
        gb = kept.get(res.grouping.name)
        if gb is None:
            continue
        n_ref = res.row(res.grouping.reference).count
        for r in res.rows:
            base = gb.get(r.group)
            assert base is not None
            rows.append(GroupCheck(grouping=gb.spec.name, group=r.group, is_reference=r.is_reference, rows=r.count,
                                   favorable=r.favorable_count, favorable_rate=r.favorable_rate,
                                   adverse_impact_ratio=r.air, air_p=r.p_value, reference_rows=n_ref,
                                   baseline_rows=base.rows, baseline_favorable=base.favorable,
                                   baseline_rate=base.favorable_rate, baseline_air=base.adverse_impact_ratio))
    return rows


def _audit_result(baseline: Baseline, ctx: AuditContext, audited: tuple[FeatureDrift, ...], score_ref: ColumnReference,
                  m: DisparateImpactMeasurement | None) -> MonitorResult:
    """The audit's own numbers on its test rows (the drift check's bins, the audit's cached scores,
    the fairness check's rates), judged with the monitor's rules."""
    shifts = [("feature", _shift_of(d, ref)) for d, ref in zip(audited, baseline.features)]
    shifts.append(("score", column_shift(score_ref, _audit_scores(ctx), epsilon=baseline.levels.epsilon)))
    groups = judge_groups(_audit_groups(baseline.fairness, m if baseline.fairness is not None else None),
                          baseline.levels)
    n = len(ctx.frame("test"))
    return MonitorResult(baseline=baseline, rows=n, columns=judge_columns(shifts, baseline.levels), groups=groups,
                         scored_rows=n)


# ---- wording -------------------------------------------------------------------------------------------

def _metrics(r: MonitorResult) -> dict[str, Any]:
    m = r.metrics()
    return {"alerts_on_test_rows": m["alerts"], "warnings_on_test_rows": m["warnings"],
            "max_feature_psi": m["max_feature_psi"], "score_psi": m["score_psi"],
            "min_adverse_impact_ratio": m["min_adverse_impact_ratio"],
            "overall_favorable_rate": m["overall_favorable_rate"]}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        fa, fb = float(a), float(b)
        return (math.isnan(fa) and math.isnan(fb)) or abs(fa - fb) <= TOLERANCE * max(1.0, abs(fa))
    return bool(a == b)


def _groups_count(baseline: Baseline) -> int:
    f = baseline.fairness
    return sum(len(g.groups) for g in f.groupings) if f is not None else 0


def _summary(baseline: Baseline, after: MonitorResult, differ: list[str]) -> str:
    f = baseline.fairness
    watched = (f"{plural(len(baseline.features), 'feature')} (PSI on the drift check's bins of the "
               f"{'training' if baseline.features and baseline.features[0].source == 'train' else 'test'} data), "
               "the model's score (bins of the held-out test scores)")
    if f is not None and f.groupings:
        watched += (f" and the favourable rate and adverse impact ratio of {plural(_groups_count(baseline), 'group')} "
                    f"in {plural(len(f.groupings), 'grouping')}")
    m = after.metrics()
    text = (f"{PATH} watches {watched}. Run from the file on the audit's own {after.rows:,} test rows, the monitor "
            f"raises {plural(m['alerts'], 'alert')} and {plural(m['warnings'], 'warning')}")
    raised = list(dict.fromkeys(a.subject for a in after.alerts))
    if raised:
        text += f" ({', '.join(raised[:4])}{', ...' if len(raised) > 4 else ''})"
    text += (f"; largest feature PSI {fixed(m['max_feature_psi'], 3)}, score PSI {fixed(m['score_psi'], 3)}")
    if m["min_adverse_impact_ratio"] is not None:
        text += f", lowest adverse impact ratio {fixed(m['min_adverse_impact_ratio'])}"
    text += (". These are the audit's own numbers" if not differ else
             ". These differ from the audit's own numbers") + (
        " (before: as the checks measured them; after: from the file alone). In production, \"auditor monitor "
        "monitoring.json NEW_DATA.csv --model MODEL\" exits 1 on an alert.")
    return text


def _parameters(baseline: Baseline) -> dict[str, Any]:
    lv = baseline.levels
    return {"psi_warn": lv.psi_warn, "psi_alert": lv.psi_alert, "drift_alpha": lv.drift_alpha,
            "min_ratio": lv.min_ratio, "fairness_alpha": lv.fairness_alpha, "rate_warn": lv.rate_warn,
            "rate_alert": lv.rate_alert, "rate_alpha": lv.rate_alpha, "min_group_rows": lv.min_group_rows,
            "threshold": baseline.model.threshold, "features": len(baseline.features),
            "reference_rows": baseline.features[0].n if baseline.features else 0,
            "score_reference_rows": baseline.score.n if baseline.score is not None else 0,
            "groups": _groups_count(baseline)}


def _caveats(baseline: Baseline, after: MonitorResult) -> list[str]:
    lv = baseline.levels
    out = [f"Drift alerts need PSI at {fixed(lv.psi_alert)} (warning {fixed(lv.psi_warn)}) and a significant "
           f"chi-square test of the bins (alpha {lv.drift_alpha:g}, Bonferroni over the columns), as the drift check "
           "judges: on a small batch only a large shift alerts; monitor batches of a few hundred rows or more.",
           f"Groups with fewer than {lv.min_group_rows} rows in a batch are shown but not judged. A group already "
           f"below {fixed(lv.min_ratio)} in the audit warns rather than alerts (the audit's finding covers it); its "
           "favourable rate still alerts when it moves."]
    if after.n_alerts:
        out.append(f"The audit's own test rows already raise {plural(after.n_alerts, 'alert')} "
                   f"({'; '.join(a.subject for a in after.alerts if a.level == 'alert')}): they differ from the "
                   "reference (see data.drift), so production data like them will alert too.")
    return out


def _tables(baseline: Baseline, before: MonitorResult, after: MonitorResult) -> tuple[Table, ...]:
    audit_psi = {(c.role, c.name): c.shift.psi for c in before.columns}
    cols = [{"column": c.name, "role": c.role, "kind": c.shift.kind,
             "reference": "test" if c.role == "score" else baseline.features[0].source if baseline.features else "",
             "bins": len(c.shift.labels), "psi_audit": audit_psi.get((c.role, c.name), float("nan")),
             "psi_monitor": c.shift.psi, "level": c.level}
            for c in after.columns]
    tables = [Table.from_records("monitoring_columns", "Monitored columns on the audit's test rows", cols,
                                 columns=["column", "role", "kind", "reference", "bins", "psi_audit", "psi_monitor",
                                          "level"],
                                 caption="psi_audit: as the drift check measured it (train → test; the score: its "
                                         "own reference); psi_monitor: the monitor from monitoring.json.")]
    if after.groups:
        groups = [{"grouping": g.grouping, "group": g.group, "rows": g.rows, "favorable_rate": g.favorable_rate,
                   "air": g.adverse_impact_ratio, "level": g.level,
                   "note": g.air_reason if g.air_level == "warn" else ""} for g in after.groups]
        tables.append(Table.from_records("monitoring_groups", "Monitored groups on the audit's test rows", groups,
                                         columns=["grouping", "group", "rows", "favorable_rate", "air", "level",
                                                  "note"],
                                         caption=_groups_caption(baseline)))
    return tuple(tables)


def _groups_caption(baseline: Baseline) -> str:
    f = baseline.fairness
    favorable = f.favorable if f is not None else ""
    return (f"Favourable decision: {favorable}; air: the group's favourable rate over its reference group's. Level on "
            "the audit's own test rows, from monitoring.json.")
