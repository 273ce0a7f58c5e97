"""fairness.proxy: model features that stand in for a protected attribute, rated by how much of a
disparity flows through them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from ...analysis.group_metrics import Grouping, GroupingPlan, disparate_impact
from ...analysis.proxy import FeatureProxy, ProxyResult, RedrawEffect, permutation_shift, proxy_analysis, redraw_effect
from ...findings import Evidence, Figure, Finding, Rule, Severity, Table, safe_id
from ...wording import fixed, level, pct, sig, signed
from ..base import FAIRNESS, budget, setting, threshold
from .common import FIGURE_TOP, MAX_TABLE_ROWS, GroupedCheck, bracketed, finding_id, rule_number
from .disparate_impact import DisparateImpactCheck

if TYPE_CHECKING:
    import pandas as pd

    from ...context import AuditContext


@dataclass(frozen=True)
class ProxyMeasurement:
    results: tuple[ProxyResult, ...]
    features: tuple[str, ...]
    shift: tuple[float, ...]  # permutation shift per feature (empty when not computed)
    importance_rows: int
    direct: tuple[str, ...]  # protected columns that are model inputs themselves
    notes: tuple[str, ...]
    n_rows: int
    # counterfactual on the proxy, per (protected column, feature): one effect per disadvantaged group;
    # a key with no effects means no eligible group of the column is disadvantaged (AIR < 1)
    effects: Mapping[tuple[str, str], tuple[RedrawEffect, ...]] = field(default_factory=dict)
    counterfactual: bool = False  # effects were measured (classification, option on)
    linked: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (column, group) -> disparate-impact id

    def share(self, feature: str) -> float:
        if not self.shift:
            return float("nan")
        total = float(sum(self.shift))
        return self.shift[self.features.index(feature)] / total if total > 0 else 0.0

    def best_effect(self, protected: str, feature: str) -> RedrawEffect | None:
        """The effect with the largest lift over the column's disadvantaged groups (None if none)."""
        effects = self.effects.get((protected, feature), ())
        return max(effects, key=lambda e: (e.lift if math.isfinite(e.lift) else -math.inf, e.group), default=None)

    def measured(self, protected: str, feature: str) -> bool:
        return self.counterfactual and (protected, feature) in self.effects


class _Rating(NamedTuple):
    """A proxy's severity and what the finding says about it."""

    severity: Severity
    text: str = ""  # the counterfactual sentence ("" when rated without one)
    metrics: Mapping[str, Any] = {}
    rule: Rule | None = None
    groups: tuple[tuple[str, str], ...] = ()


@dataclass
class ProxyCheck(GroupedCheck[ProxyMeasurement]):
    """Model features that stand in for a protected attribute, whether or not the attribute is a model input.

    For each protected column and each other model feature: the association (bias-corrected Cramér's
    V, correlation ratio η, or |Spearman ρ| against a numeric attribute) and the cross-validated AUC
    with which the feature alone predicts the attribute's groups (macro one-vs-rest for more than two);
    and the AUC of all features together (gradient boosting) — can the model's inputs reconstruct the
    attribute? Whether the model relies on a feature is its share of the total permutation shift
    (mean |change in output| when the feature is shuffled, on ``importance_rows`` test rows).

    A proxy is a feature with AUC >= ``medium_auc`` or Cramér's V >= ``medium_cramers_v``, or one
    that determines the attribute (each of its values in one group, e.g. age for an age band); a
    protected column that is itself a model input is direct use. Classification: each proxy (and
    direct input) is rated by its measured effect on the disparity, a counterfactual on the proxy:
    for every disadvantaged group (AIR < 1, enough rows) its values of the feature are redrawn from
    the reference group's values (the exact frequency-weighted expectation over the reference
    group's distinct values, or ``counterfactual_values`` values drawn with the check's seeded
    generator when there are more) and the rows are rescored in one batched call; the lift is the
    change in the group's adverse impact ratio, with a normal interval over the group's rows. ``high``
    when the interval's lower end is at least ``high_lift``; ``medium`` when the lift is at least
    ``material_lift`` and its interval excludes zero; else ``low`` (also when no group is
    disadvantaged: a channel with no disparity to carry). The finding names the
    fairness.disparate_impact finding of the group. Regression (or ``counterfactual = false``):
    AUC >= ``high_auc`` and the model relies on it (share >= ``min_importance_share``) is ``high``;
    a proxy relied on is ``medium``; one the model barely uses is ``low``; direct use: ``medium``
    when relied on, else ``low`` (whether it is lawful is a policy question for the owner). All features
    together: ``medium`` at AUC >= ``combined_medium_auc``, ``low`` at >= ``combined_low_auc``,
    else ``info`` — and ``info`` when one feature already reported reaches that AUC within
    ``single_feature_margin`` (the reconstruction is that feature's). Works for regression models too.
    """

    id: ClassVar[str] = "fairness.proxy"
    family = FAIRNESS
    order = 3
    cost = 3
    title: ClassVar[str] = "Proxies for protected attributes"

    max_rows: int = budget(5000, "seeded sample of test rows the proxy models are fitted on")
    cv_folds: int = setting(3, "cross-validation folds of the proxy models")
    tree_depth: int = setting(3, "depth of the tree that predicts the attribute from one numeric feature")
    medium_auc: float = threshold(0.8, "single-feature AUC at which a feature is a proxy")
    high_auc: float = threshold(0.9, "single-feature AUC of a high proxy the model relies on (no counterfactual)")
    medium_cramers_v: float = threshold(0.5, "Cramér's V at which a feature is a proxy")
    combined_low_auc: float = threshold(0.7, "AUC of all features together that is low")
    combined_medium_auc: float = threshold(0.9, "AUC of all features together that is medium")
    importance_rows: int = budget(1000, "test rows of the permutation importance (0: skip it, and every proxy "
                                        "counts as relied on)")
    min_importance_share: float = threshold(0.05, "share of the total permutation shift from which the model "
                                                  "relies on a feature")
    single_feature_margin: float = threshold(0.02, "all features no better than one reported feature plus this "
                                                   "is info")
    counterfactual: bool = setting(True, "rate proxies by redrawing them for disadvantaged groups (classification)")
    material_lift: float = threshold(0.05, "AIR change that makes a proxy medium (its interval above zero)")
    high_lift: float = threshold(0.10, "lower end of the AIR change's interval that makes a proxy high")
    counterfactual_values: int = budget(100, "reference values per row: all distinct ones when fewer, else a "
                                             "seeded draw")
    counterfactual_cells: int = budget(200_000, "most rows scored per feature and group (the group is "
                                                "sub-sampled)")

    def measure(self, ctx: AuditContext) -> ProxyMeasurement:
        plan = self.plan(ctx)
        frame = ctx.frame("test")
        pos = ctx.sample_index(len(frame), self.max_rows, self.id + ":rows")
        rows = frame.iloc[pos]
        seed = int(ctx.rng(self.id).integers(2 ** 31 - 1))
        results = [self._proxies(ctx, g, rows, pos, seed) for g in plan.groupings if not g.is_intersection]
        shift, n_imp = self._importance(ctx)
        direct = tuple(c for c in ctx.protected if c in ctx.features)
        effects: dict[tuple[str, str], tuple[RedrawEffect, ...]] = {}
        linked: dict[tuple[str, str], str] = {}
        measured = self.counterfactual and ctx.is_classification
        if measured:
            effects, linked = self._counterfactuals(ctx, plan, results, direct)
        return ProxyMeasurement(results=tuple(results), features=tuple(ctx.features), shift=shift,
                                importance_rows=n_imp, direct=direct, notes=plan.notes, n_rows=len(rows),
                                effects=effects, counterfactual=measured, linked=linked)

    def _proxies(self, ctx: AuditContext, g: Grouping, rows: pd.DataFrame, pos: np.ndarray,
                 seed: int) -> ProxyResult:
        """How well the other model features predict the groups of one protected column."""
        col = g.columns[0]
        feats = [f for f in ctx.features if f != col]
        raw = rows[col] if g.method in ("quantile bands", "fixed bands") else None
        return proxy_analysis(rows[feats].reset_index(drop=True), g.labels[pos], protected=col,
                              categorical=ctx.categorical,
                              raw_protected=None if raw is None else raw.reset_index(drop=True),
                              min_group_size=self.min_group_size, cv_folds=self.cv_folds,
                              tree_depth=self.tree_depth, seed=seed)

    def _importance(self, ctx: AuditContext) -> tuple[tuple[float, ...], int]:
        """The permutation shift of every feature, and the rows it was measured on."""
        if self.importance_rows <= 0 or not ctx.features:
            return (), 0
        sample = ctx.sample_rows("test", self.importance_rows, self.id + ":importance")
        X = sample[list(ctx.features)].reset_index(drop=True)

        def output(d: pd.DataFrame) -> np.ndarray:
            preds = ctx.predict_frame(d)
            # classification: the change of the whole probability vector (k classes as k classes)
            return preds.proba if ctx.is_classification and preds.proba is not None else preds.score

        shift = permutation_shift(output, X, ctx.features, rng=ctx.rng(self.id + ":permutation"))
        return tuple(float(v) for v in shift), len(sample)

    def _candidate(self, auc: float, cramers_v: float, determines: bool) -> bool:
        return determines or (math.isfinite(auc) and auc >= self.medium_auc) or \
            (math.isfinite(cramers_v) and cramers_v >= self.medium_cramers_v)

    def _counterfactuals(self, ctx: AuditContext, plan: GroupingPlan, results: list[ProxyResult],
                         direct: tuple[str, ...]
                         ) -> tuple[dict[tuple[str, str], tuple[RedrawEffect, ...]], dict[tuple[str, str], str]]:
        """Redraw each proxy (and each protected model input) for every disadvantaged group of its
        column from the reference group's values, and measure the change in that group's AIR."""
        outcome = ctx.favorable_outcome()
        X = ctx.X("test").reset_index(drop=True)
        rng = ctx.rng(self.id + ":counterfactual")

        def decide(d: pd.DataFrame) -> np.ndarray:
            return ctx.favorable_decision(ctx.predict_frame(d))

        by_column = {g.columns[0]: g for g in plan.groupings if not g.is_intersection}
        wanted: dict[str, list[str]] = {}
        for res in results:
            wanted[res.protected] = [fp.feature for fp in res.features
                                     if self._candidate(fp.auc, fp.cramers_v, fp.determines)]
        for col in direct:
            if col in by_column:
                wanted.setdefault(col, []).append(col)
        effects: dict[tuple[str, str], tuple[RedrawEffect, ...]] = {}
        linked: dict[tuple[str, str], str] = {}
        for col, feats in wanted.items():
            g = by_column.get(col)
            if g is None or not feats:
                continue
            di = disparate_impact(g, outcome.decision, outcome.p_favorable, min_group_size=self.min_group_size,
                                  confidence=self.confidence)
            ref_mask = g.labels == g.reference
            groups = [r for r in di.rows if r.eligible and not r.is_reference and math.isfinite(r.air) and r.air < 1]
            for r in groups:
                linked[(col, r.group)] = safe_id(finding_id(DisparateImpactCheck.id, g, r.group))
            for feat in feats:
                out = []
                for r in groups:
                    mask = g.labels == r.group
                    out.append(redraw_effect(decide, X.loc[mask], feat, X.loc[ref_mask, feat],
                                             base_decision=outcome.decision[mask], group_rate=r.favorable_rate,
                                             reference_rate=di.reference_rate, group=r.group, reference=g.reference,
                                             max_values=self.counterfactual_values,
                                             max_cells=self.counterfactual_cells, rng=rng, confidence=self.confidence))
                effects[(col, feat)] = tuple(out)
        return effects, linked

    # -- judgement --
    def relied_on(self, m: ProxyMeasurement, feature: str) -> bool:
        share = m.share(feature)
        return (not m.shift) or share >= self.min_importance_share

    def severity_feature(self, auc: float, cramers_v: float, determines: bool, relied_on: bool) -> Severity | None:
        strong = (math.isfinite(auc) and auc >= self.medium_auc) or \
            (math.isfinite(cramers_v) and cramers_v >= self.medium_cramers_v)
        if determines:
            return Severity.MEDIUM if relied_on else Severity.LOW
        if not strong:
            return None
        if not relied_on:
            return Severity.LOW
        return Severity.HIGH if auc >= self.high_auc else Severity.MEDIUM

    def severity_combined(self, auc: float) -> Severity | None:
        if not math.isfinite(auc):
            return None
        if auc >= self.combined_medium_auc:
            return Severity.MEDIUM
        return Severity.LOW if auc >= self.combined_low_auc else Severity.INFO

    def severity_effect(self, effect: RedrawEffect | None) -> Severity:
        """The counterfactual rule: ``high`` when the lower end of the AIR lift's interval is at least
        ``high_lift``; ``medium`` when the lift is at least ``material_lift`` and its interval excludes
        zero; else ``low`` (None: no disadvantaged group, nothing for the proxy to carry)."""
        if effect is None or not math.isfinite(effect.lift):
            return Severity.LOW
        if math.isfinite(effect.lift_low) and effect.lift_low >= self.high_lift:
            return Severity.HIGH
        if effect.lift >= self.material_lift and math.isfinite(effect.lift_low) and effect.lift_low > 0:
            return Severity.MEDIUM
        return Severity.LOW

    def effect_rule_text(self) -> str:
        return (f"rated by the counterfactual: high when the lower end of the {level(self.confidence)} interval of "
                f"the AIR lift is at least {self.high_lift:g}; medium when the lift is at least {self.material_lift:g} "
                "and its interval excludes zero; otherwise low")

    def _effect_verdict(self, sev: Severity, e: RedrawEffect) -> str:
        """Why a proxy rated by its counterfactual has its severity."""
        if sev is Severity.HIGH:
            return f"Rated high: even the interval's lower end is a lift of at least {self.high_lift:g}."
        if sev is Severity.MEDIUM:
            return (f"Rated medium: a material lift (at least {self.material_lift:g}) whose interval excludes zero"
                    + (f", but not established above {self.high_lift:g}." if e.lift >= self.high_lift else "."))
        return (("Rated low: redrawing it does not raise the ratio, so the disparity does not flow through this "
                 "feature on its own." if e.lift <= 0 else
                 f"Rated low: the lift is below {self.material_lift:g} or not distinguishable from zero, so little "
                 "of the disparity flows through it.") +
                " (The redraw changes this feature only; a disparity carried by several correlated features together "
                "shows in the all-features reconstruction.)")

    def _effect_parts(self, m: ProxyMeasurement, protected: str, feature: str) -> _Rating:
        """Severity, sentence, metrics, rule and groups of a proxy rated by its counterfactual."""
        e = m.best_effect(protected, feature)
        sev = self.severity_effect(e)
        if e is None:
            text = (f" No group of '{protected}' with enough rows is disadvantaged (adverse impact ratio below 1), so "
                    f"redrawing '{feature}' has no disparity to move: rated low.")
            rule = Rule(metric="air_lift", value=None, operator=">=", threshold=(self.material_lift, self.high_lift),
                        text="no disadvantaged group to redraw; " + self.effect_rule_text())
            return _Rating(sev, text, {}, rule, ())
        conf, ci = level(self.confidence), bracketed(e.lift_low, e.lift_high)
        link = m.linked.get((protected, e.group), "")
        how = (f"every distinct value of the reference group ({e.n_values}), weighted by its frequency"
               if e.exact else f"{e.n_values} values drawn from the reference group (seeded)")
        rows = (f"{e.n_rows:,} rows" if e.n_rows == e.group_count else
                f"a seeded sample of {e.n_rows:,} of its {e.group_count:,} rows")
        share = e.gap_share
        text = (f" Counterfactual: giving the rows with {protected} = {e.group} values of '{feature}' redrawn from the "
                f"reference group ({protected} = {e.reference}; {how}, scored on {rows}) moves their adverse impact "
                f"ratio from {fixed(e.air)} to {fixed(e.counterfactual_air)} (lift {signed(e.lift)}, {conf} interval "
                f"over the group's rows {ci}"
                + (f"; {pct(share)} of the gap to parity" if math.isfinite(share) else "") + "). "
                + self._effect_verdict(sev, e)
                + (f" The disparity itself is the disparate-impact finding '{link}'." if link else ""))
        metrics = {"air": e.air, "counterfactual_air": e.counterfactual_air, "air_lift": e.lift,
                   "air_lift_ci_low": e.lift_low, "air_lift_ci_high": e.lift_high, "gap_share": share,
                   "counterfactual_group": e.group, "counterfactual_rows": e.n_rows, "counterfactual_exact": e.exact,
                   "disparate_impact_finding": link}
        rule = Rule(metric="air_lift", value=rule_number(e.lift), operator=">=",
                    threshold=(self.material_lift, self.high_lift),
                    interval=(rule_number(e.lift_low), rule_number(e.lift_high)),
                    text=(f"AIR lift {signed(e.lift)} ({conf} interval {ci}) when '{feature}' is redrawn for "
                          f"{protected} = {e.group}: " + self.effect_rule_text()))
        return _Rating(sev, text, metrics, rule, ((protected, e.group),))

    def judge(self, m: ProxyMeasurement) -> list[Finding]:
        out = [self._direct_finding(m, col) for col in m.direct]
        for res in m.results:
            for fp in res.features:
                if self._candidate(fp.auc, fp.cramers_v, fp.determines):
                    finding = self._feature_finding(m, res, fp)
                    if finding is not None:
                        out.append(finding)
            combined = self._combined_finding(m, res)
            if combined is not None:
                out.append(combined)
        return out

    def _direct_finding(self, m: ProxyMeasurement, col: str) -> Finding:
        """A protected column that is itself a model input."""
        relied = self.relied_on(m, col)
        share = m.share(col)
        # the counterfactual of the column itself, else of the band column it determines
        via = col if m.measured(col, col) else next((r.protected for r in m.results if m.measured(r.protected, col)),
                                                    None)
        if via is not None:
            rating = self._effect_parts(m, via, col)
        else:
            rating = _Rating(Severity.MEDIUM if relied else Severity.LOW, rule=Rule(
                metric="importance_share", value=rule_number(share), operator=">=",
                threshold=self.min_importance_share,
                text=(f"direct use: medium when the model relies on it (share >= {self.min_importance_share:g}), "
                      "else low")))
        metrics = rating.metrics
        return Finding(
            id=f"{self.id}/{col}/{col}", check=self.id, severity=rating.severity,
            title=f"Protected attribute '{col}' is a model input" + (
                f" (redrawing it lifts the AIR by {signed(metrics['air_lift'])})" if "air_lift" in metrics else
                ("" if relied else " (little used)")),
            summary=(f"'{col}' is declared protected and is one of the model's inputs, so the model can treat "
                     "people differently by it directly. " + self._usage(m, col, share) + rating.text +
                     " Whether using it is lawful and justified is a policy question for the model owner; "
                     "fairness.disparate_impact shows its effect on outcomes."),
            features=(col,), groups=rating.groups, metrics={"importance_share": share, **metrics}, rule=rating.rule,
            remediation=(f"Document the legal basis and business need for using '{col}', or retrain without it "
                         "(and check the remaining features for proxies).",),
            evidence=("proxies", "importance", "counterfactual") if metrics else ("proxies", "importance"))

    def _feature_finding(self, m: ProxyMeasurement, res: ProxyResult, fp: FeatureProxy) -> Finding | None:
        """A feature that is a proxy for the protected column of ``res``."""
        p = res.protected
        relied = self.relied_on(m, fp.feature)
        share = m.share(fp.feature)
        if m.measured(p, fp.feature):
            rating = self._effect_parts(m, p, fp.feature)
        else:
            sev = self.severity_feature(fp.auc, fp.cramers_v, fp.determines, relied)
            if sev is None:
                return None
            rating = _Rating(sev, rule=Rule(
                metric="auc", value=rule_number(fp.auc), operator=">=", threshold=(self.medium_auc, self.high_auc),
                text=(f"proxy strength and reliance: high at AUC >= {self.high_auc:g} when relied on "
                      f"(importance share >= {self.min_importance_share:g}), medium when relied on, "
                      "low when barely used")))
        metrics = rating.metrics
        lift_note = f"; redrawing it lifts the AIR by {signed(metrics['air_lift'])}" if "air_lift" in metrics else ""
        if fp.determines:
            title = f"'{fp.feature}' determines protected '{p}' (the attribute at finer resolution{lift_note})"
            what = (f"Every value of '{fp.feature}' belongs to one group of '{p}', so the model sees '{p}' "
                    f"itself, in finer detail (cross-validated AUC {fixed(fp.auc)}). ")
            tail = (" Whether using it is lawful and justified is a policy question for the model owner; "
                    "fairness.disparate_impact shows its effect on outcomes.")
        else:
            title = (f"'{fp.feature}' is a proxy for protected '{p}' (AUC {fixed(fp.auc)}"
                     + (lift_note if lift_note else ("" if relied else "; little used by the model")) + ")")
            what = (f"On its own, '{fp.feature}' predicts '{p}' ({', '.join(res.groups)}) with a "
                    f"cross-validated AUC of {fixed(fp.auc)} ({fp.method}; {fp.association_measure} "
                    f"{fixed(fp.association)}). ")
            tail = (f" Through it the model can treat people differently by '{p}' even though '{p}' is not "
                    "an input." if relied or rating.severity.rank >= Severity.MEDIUM.rank else
                    " It could become a channel for treating people differently by "
                    f"'{p}' if the model came to rely on it.")
        return Finding(
            id=f"{self.id}/{p}/{fp.feature}", check=self.id, severity=rating.severity, title=title,
            summary=what + self._usage(m, fp.feature, share) + rating.text + tail,
            features=(fp.feature, p), groups=rating.groups, rule=rating.rule,
            metrics={"auc": fp.auc, "association": fp.association, "cramers_v": fp.cramers_v,
                     "importance_share": share, "determines": fp.determines, **metrics},
            remediation=(f"Establish the business justification for '{fp.feature}'; if there is none, drop "
                         "or coarsen it and re-run the disparate impact analysis.",
                         f"Compare a model without '{fp.feature}' (accuracy against adverse impact ratio): a "
                         "less discriminatory alternative."),
            evidence=("proxies", "importance", "proxy_auc") + (("counterfactual",) if metrics else ()))

    def _combined_finding(self, m: ProxyMeasurement, res: ProxyResult) -> Finding | None:
        """Whether all the model's features together reconstruct the protected column of ``res``."""
        p = res.protected
        sev = self.severity_combined(res.combined_auc)
        if sev is None:
            return None
        # a reconstruction that one feature already achieves is reported with that feature
        carrier = max((fp for fp in res.features if fp.determines or fp.auc >= self.medium_auc),
                      key=lambda fp: fp.auc, default=None)
        if sev is not Severity.INFO and carrier is not None \
                and carrier.auc >= res.combined_auc - self.single_feature_margin:
            return Finding(
                id=f"{self.id}/{p}/all_features", check=self.id, severity=Severity.INFO,
                title=(f"The model's features reconstruct protected '{p}' (AUC {fixed(res.combined_auc)}), through "
                       f"'{carrier.feature}'"),
                summary=(f"A model trained on all {len(res.features)} model features ({res.combined_method}) "
                         f"predicts '{p}' on {res.n_rows:,} test rows with AUC {fixed(res.combined_auc)}, no better "
                         f"than '{carrier.feature}' alone (AUC {fixed(carrier.auc)}), which is reported separately."),
                features=(p,), metrics={"combined_auc": res.combined_auc, "rows": res.n_rows},
                rule=Rule(metric="combined_auc", value=rule_number(res.combined_auc), operator=">=",
                          threshold=carrier.auc - self.single_feature_margin,
                          text=(f"info: all features reach no more than the AUC of '{carrier.feature}' alone "
                                f"(within {self.single_feature_margin:g}), which is reported separately")),
                evidence=("combined",))
        other = " other" if p in m.direct else ""
        if sev is Severity.INFO:
            title = f"The model's{other} features do not reconstruct protected '{p}' (AUC {fixed(res.combined_auc)})"
            verdict = "so the features carry little information about it."
        else:
            title = f"The model's{other} features together reconstruct protected '{p}' (AUC {fixed(res.combined_auc)})"
            verdict = ("so the model could learn to treat people differently by it even without a single "
                       "strong proxy; check the outcome rates in fairness.disparate_impact.")
        return Finding(
            id=f"{self.id}/{p}/all_features", check=self.id, severity=sev, title=title,
            summary=(f"A model trained on all {len(res.features)}{other} model features ({res.combined_method}) "
                     f"predicts '{p}' ({', '.join(res.groups)}) on {res.n_rows:,} test rows with AUC "
                     f"{fixed(res.combined_auc)}, {verdict}"),
            features=(p,), metrics={"combined_auc": res.combined_auc, "rows": res.n_rows},
            rule=Rule(metric="combined_auc", value=rule_number(res.combined_auc), operator=">=",
                      threshold=(self.combined_low_auc, self.combined_medium_auc),
                      text=(f"medium at a cross-validated AUC >= {self.combined_medium_auc:g}, low at >= "
                            f"{self.combined_low_auc:g}, else info")),
            remediation=(() if sev is Severity.INFO else
                         ("Use the disparate impact results to decide whether the reconstruction matters; "
                          "if outcomes differ, look for a less discriminatory alternative model.",)),
            evidence=("combined",))

    @staticmethod
    def _usage(m: ProxyMeasurement, feature: str, share: float) -> str:
        if not m.shift:
            return "The model's reliance on it was not measured (importance_rows = 0), so it is assumed."
        i = m.features.index(feature)
        return (f"Shuffling it moves the model's output by {m.shift[i]:.3g} on average, {pct(share)} of the total "
                f"over all {len(m.features)} features.")

    # -- evidence --
    def evidence(self, m: ProxyMeasurement) -> Evidence:
        metrics: dict[str, Any] = {}
        for r in m.results:
            metrics[f"combined_auc/{r.protected}"] = r.combined_auc
            aucs = [f.auc for f in r.features if math.isfinite(f.auc)]
            metrics[f"max_single_feature_auc/{r.protected}"] = max(aucs) if aucs else float("nan")
        tables = self._proxy_tables(m) + self._counterfactual_table(m)
        return Evidence(metrics=metrics, tables=tables, figures=self._figures(m), notes=self._notes(m))

    def _proxy_tables(self, m: ProxyMeasurement) -> tuple[Table, ...]:
        """Single features, all features together, and the model's reliance on each feature."""
        prox = []
        for res in m.results:
            for fp in sorted(res.features, key=lambda f: (-f.auc if math.isfinite(f.auc) else 0, f.feature)):
                prox.append({"protected": res.protected, "feature": fp.feature, "kind": fp.kind,
                             "auc": sig(fp.auc), "association": sig(fp.association),
                             "measure": fp.association_measure, "importance_share": sig(m.share(fp.feature)),
                             "determines": fp.determines})
        combined = [{"protected": r.protected, "groups": ", ".join(r.groups), "left_out": ", ".join(r.left_out),
                     "rows": r.n_rows, "combined_auc": sig(r.combined_auc)} for r in m.results]
        imp = [{"feature": f, "mean_shift": sig(s), "share": sig(m.share(f))}
               for f, s in sorted(zip(m.features, m.shift), key=lambda t: (-t[1], t[0]))]
        tables = [
            Table.from_records("proxies", "Single features as predictors of each protected attribute", prox,
                               columns=("protected", "feature", "kind", "auc", "association", "measure",
                                        "importance_share", "determines"), max_rows=MAX_TABLE_ROWS,
                               caption=(f"auc: {self.cv_folds}-fold cross-validated AUC of the feature alone for the "
                                        "attribute's groups (macro one-vs-rest for more than two; depth-"
                                        f"{self.tree_depth} tree for numeric features, smoothed level frequencies "
                                        "for categorical ones); association: bias-corrected Cramér's V, correlation "
                                        "ratio η or |Spearman ρ|; importance share: the feature's share of the total "
                                        "permutation shift of the model's output.")),
            Table.from_records("combined", "All features together", combined,
                               columns=("protected", "groups", "left_out", "rows", "combined_auc"),
                               caption=(f"Cross-validated AUC of gradient boosting on every model feature predicting "
                                        f"the attribute; groups under {self.min_group_size} rows are left out.")),
        ]
        if imp:
            tables.append(Table.from_records(
                "importance", "How much the model relies on each feature", imp,
                columns=("feature", "mean_shift", "share"), max_rows=MAX_TABLE_ROWS,
                caption=(f"Mean change in the model's output when the feature is shuffled across "
                         f"{m.importance_rows:,} test rows (one batched model call per feature; for a classifier the "
                         "total-variation distance between the two class-probability vectors, |ΔP(positive)| for two "
                         "classes), and its share of the total.")))
        return tuple(tables)

    def _counterfactual_table(self, m: ProxyMeasurement) -> tuple[Table, ...]:
        cf = []
        for (col, feat), effects in sorted(m.effects.items()):
            for e in sorted(effects, key=lambda e: e.group):
                cf.append({"protected": col, "feature": feat, "group": e.group, "reference": e.reference,
                           "rows": e.n_rows, "values": e.n_values, "exact": e.exact, "air": sig(e.air),
                           "counterfactual_air": sig(e.counterfactual_air), "lift": sig(e.lift),
                           "ci_low": sig(e.lift_low), "ci_high": sig(e.lift_high), "gap_share": sig(e.gap_share),
                           "rows_changed": sig(e.rows_changed),
                           "disparate_impact_finding": m.linked.get((col, e.group), "")})
        if not cf:
            return ()
        return (Table.from_records(
            "counterfactual", "Counterfactual on each proxy: the group's values redrawn from the reference group's",
            cf, columns=("protected", "feature", "group", "reference", "rows", "values", "exact", "air",
                         "counterfactual_air", "lift", "ci_low", "ci_high", "gap_share", "rows_changed",
                         "disparate_impact_finding"), max_rows=MAX_TABLE_ROWS,
            caption=("For each proxy (and protected model input) and each disadvantaged group: every row of the "
                     "group is scored with the feature set to each of the reference group's values (exact: all "
                     f"distinct values, weighted by frequency; else {self.counterfactual_values} seeded draws), in "
                     "one batched call; counterfactual_air: the adverse impact ratio with the expected decisions; "
                     f"lift: its change, with a {level(self.confidence)} normal interval over the group's rows; "
                     "gap_share: share of the gap to parity (1 − AIR) closed; rows_changed: share of the group's "
                     "rows whose expected decision moves.")),)

    def _figures(self, m: ProxyMeasurement) -> tuple[Figure, ...]:
        if not any(r.features for r in m.results):
            return ()
        return (Figure(
            "proxy_auc", "Features as predictors of protected attributes", plot="fairness.proxy_figure",
            data={"results": m.results, "share": {f: m.share(f) for f in m.features}, "medium_auc": self.medium_auc,
                  "high_auc": self.high_auc, "min_importance_share": self.min_importance_share, "top": FIGURE_TOP},
            caption=(f"Single-feature AUC for each protected attribute (top {FIGURE_TOP}); dark: the model relies on "
                     f"the feature (at least {pct(self.min_importance_share, 0)} of the permutation shift), grey: "
                     f"little used. Lines at AUC {self.medium_auc:g} and {self.high_auc:g}; 'all' is every feature "
                     "together.")),)

    def _notes(self, m: ProxyMeasurement) -> tuple[str, ...]:
        notes = list(m.notes) + [f"Proxy models fitted on {m.n_rows:,} test rows (seeded sample, max_rows = "
                                 f"{self.max_rows:,})." if m.n_rows >= self.max_rows else
                                 f"Proxy models fitted on all {m.n_rows:,} test rows."]
        if not m.shift:
            notes.append("Permutation importance skipped (importance_rows = 0): every strong proxy is judged as if "
                         "the model relied on it.")
        if m.counterfactual:
            notes.append("Severity of a proxy or protected input: " + self.effect_rule_text() + ". The AIR lift is "
                         "measured on the test rows of the group (the AIR of fairness.disparate_impact). The redraw "
                         "changes one feature at a time and keeps each row's other features, so a disparity carried "
                         "by several correlated features together is seen in the all-features reconstruction, not in "
                         "a single redraw.")
        else:
            why = "counterfactual = false" if not self.counterfactual else "the model is a regressor"
            notes.append(f"Proxies are rated by their strength and the model's reliance on them (no counterfactual: "
                         f"{why}).")
        return tuple(notes)
