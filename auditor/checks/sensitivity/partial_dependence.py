"""``sensitivity.partial_dependence``: PDP, ICE and ALE per feature, judged against the owner's
declared monotonicity and for interactions, erratic behaviour beyond the observed range or on
missing values, and features the model ignores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from ...analysis.partial_dependence import (
    ABOVE,
    BELOW,
    IN_RANGE,
    KIND_LABELS,
    MISSING,
    UNSEEN,
    DependenceMetrics,
    FeatureDependence,
    PartnerIndex,
    bootstrap_weights,
    dependence_metrics,
    feature_dependence,
    make_grid,
)
from ...findings import Evidence, Figure, Finding, Rule, Severity, Table
from ...wording import amount, level, pct, sig, signed_amount
from ..base import SENSITIVITY, Check, budget, setting, threshold

if TYPE_CHECKING:
    from ...context import AuditContext, Split


@dataclass(frozen=True, eq=False)
class PartialDependenceMeasurement:
    """Per-feature dependence results (most important first) and what they were computed on.

    ``scale`` converts the check's thresholds (stated in probability units) to score units:
    1 for classification, the target's standard deviation for regression.
    """

    task: str
    scale: float
    link: str
    rows_sampled: int
    rows_available: int
    sample_split: str
    domain_split: str
    dependences: tuple[FeatureDependence, ...]
    metrics: tuple[DependenceMetrics, ...]
    not_analysed: tuple[tuple[str, str], ...] = ()  # (feature, reason)
    monotone_unchecked: tuple[str, ...] = ()  # declared monotone but unordered categorical
    n_classes: int = 0  # classification: the model's number of classes
    class_label: Any = None  # classification: the class whose probability the curves show
    class_role: str = "positive"  # why that class: "favourable" or "positive"
    n_boot: int = 0
    confidence: float = 0.95
    additive: tuple[str, ...] = ()  # features declared additive in [expect] (their interactions can be medium)


@dataclass
class PartialDependenceCheck(Check[PartialDependenceMeasurement]):
    """Partial dependence (PDP), ICE curves and ALE for every model feature, on a seeded sample.

    Each feature is set to every point of a grid (observed quantiles or levels, points beyond
    the observed range, a missing value, an unseen level) for every sampled row, in one batched
    model call per feature. Thresholds are in probability units; for regression they are
    multiplied by the target's standard deviation.

    Numeric grids resolve zero-inflated and spiky features: a value holding at least
    ``spike_share`` of the rows (the zeros of a capital gain) is a grid point of its own and the
    other points are quantiles of the remaining values; ALE bins are built the same way. For k
    classes the curves show the probability of the favourable class (else the positive class),
    and the logit link is that probability's.

    Every estimate compared with a threshold is taken at the conservative end of its
    ``confidence`` interval: a percentile bootstrap over ``n_bootstrap`` resamples of the sampled
    rows (seeded from the audit seed), or the Wilson interval for the ICE breach share. A
    severity is raised only when the interval's conservative end passes the threshold (the lower
    end; for ``no_effect`` the upper end stays below it), so it does not hinge on the sample.

    Findings:
    * ``monotone``: the in-range PDP or ICE curves break a monotonicity declared in
      ``[expect] monotone``: medium when the PDP falls by more than ``tolerance`` or at least
      ``monotone_ice_medium`` of ICE curves do; high when the PDP falls by ``monotone_pdp_high``
      or more, or at least ``monotone_ice_high`` of ICE curves breach.
    * ``interaction``: ICE curves spread widely around the PDP (interaction share, on the logit
      scale for probabilities) at least ``interaction_low``, and either a typical distance of ICE
      curves from the PDP of at least ``interaction_medium_spread``, or of at least
      ``interaction_min_spread`` with a clear partner feature (association at least
      ``interaction_partner_min``): low; medium when the share reaches ``interaction_medium`` and
      the distance ``interaction_medium_spread`` and the feature is declared additive
      (``[expect] additive``) or monotone (``[expect] monotone``); never high. Heterogeneous ICE
      curves are routine for a flexible model (issue 10): an undeclared feature stays low however
      wide its curves spread, because only a declaration says the effect should be the same for
      every row.
    * ``erratic``: beyond the observed range the PDP jumps from the nearest in-range point (by
      more than ``jump_factor`` times the largest in-range step and at least ``jump_min``) or
      reverses the in-range trend by at least ``jump_min``; or, for a missing value or an unseen
      level, it lies at least ``jump_min`` outside every in-range PDP value: medium; high when
      the change reaches ``jump_high``.
    * ``no_effect``: the mean ICE range is at most ``no_effect_max``: low.
    """

    id: ClassVar[str] = "sensitivity.partial_dependence"
    family = SENSITIVITY
    order = 1
    cost = 3
    title: ClassVar[str] = "Partial dependence, ICE and ALE"

    rows: int = budget(500, "test rows sampled (seeded) for PDP, ICE and ALE")
    grid_size: int = budget(20, "in-range grid points per numeric feature (all observed values when fewer)")
    spike_share: float = setting(0.1, "share of the rows a value must hold to be a grid point and an ALE edge "
                                      "of its own (the zeros of a zero-inflated feature)")
    max_spikes: int = setting(3, "most such values per feature")
    n_bootstrap: int = budget(400, "bootstrap resamples of the sampled rows for the intervals")
    confidence: float = setting(0.95, "confidence level of the bootstrap and Wilson intervals")
    outside_fraction: float = setting(0.1, "how far beyond the observed range the grid goes, as a share of the span")
    outside_points: int = budget(2, "grid points on each side beyond the observed range")
    max_levels: int = budget(12, "most frequent levels of a categorical feature on its grid")
    ale_bins: int = budget(20, "ALE bins per numeric feature (0: no ALE)")
    ice_curves: int = budget(10, "ICE curves drawn per panel (rows at the deciles of the predicted score)")
    max_figure_features: int = budget(12, "features shown in the figures (most important first)")
    max_model_rows: int = budget(2_000_000, "model rows scored at most; the sample shrinks to keep within it")
    tolerance: float = threshold(0.01, "PDP fall against a declared monotonicity above which it is medium, and "
                                       "the fall that makes an ICE curve breach (probability units; regression: "
                                       "target standard deviations)")
    monotone_pdp_high: float = threshold(0.05, "PDP fall against a declared monotonicity at which it is high")
    monotone_ice_medium: float = threshold(0.10, "share of ICE curves breaching a declared monotonicity at which "
                                                 "it is medium")
    monotone_ice_high: float = threshold(0.25, "share of ICE curves breaching a declared monotonicity at which "
                                               "it is high")
    interaction_low: float = threshold(0.25, "interaction share (ICE variation the PDP does not explain) at which "
                                             "an interaction is low")
    interaction_medium: float = threshold(0.5, "interaction share at which an interaction is medium")
    interaction_min_spread: float = threshold(0.02, "typical ICE distance from the PDP an interaction needs with a "
                                                    "clear partner feature")
    interaction_medium_spread: float = threshold(0.05, "typical ICE distance from the PDP an interaction needs "
                                                       "without a partner, and for medium")
    interaction_partner_min: float = threshold(0.5, "association with a partner feature that makes it a clear "
                                                    "partner")
    jump_factor: float = threshold(3.0, "a change beyond the observed range is a jump above this many times the "
                                        "largest in-range step")
    jump_min: float = threshold(0.05, "change beyond the observed range, for a missing value or an unseen level, "
                                      "at which erratic behaviour is medium")
    jump_high: float = threshold(0.3, "such a change at which erratic behaviour is high")
    no_effect_max: float = threshold(0.002, "mean ICE range up to which the model ignores a feature (low)")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not ctx.features:
            return "the model has no input features"
        return None

    # ---- measure --------------------------------------------------------------------------
    def sample_size(self, n_features: int) -> int:
        """Rows to sample: ``rows``, fewer if the model would otherwise score more than
        ``max_model_rows`` rows in all (every grid point, and two ALE points, per row and feature)."""
        per_row = n_features * (self.grid_size + 2 * self.outside_points + 2 + (2 if self.ale_bins else 0))
        return max(20, min(int(self.rows), int(self.max_model_rows) // max(per_row, 1)))

    def measure(self, ctx: AuditContext) -> PartialDependenceMeasurement:
        domain_split: Split = "train" if ctx.has_train else "test"
        domain = ctx.frame(domain_split)
        sample = ctx.sample_rows("test", self.sample_size(len(ctx.features)), self.id)[list(ctx.features)]
        sample = sample.reset_index(drop=True)
        class_idx, class_label, class_role = None, None, "positive"
        if ctx.is_classification:
            # k classes: the favourable class's probability (else the positive class's, which
            # defaults to the last class); two classes: P(positive) as everywhere else
            class_idx = ctx.positive_index
            if ctx.is_multiclass and ctx.config.model.favorable is not None:  # configured, not defaulted
                class_idx, class_role = ctx.favorable_index, "favourable"
            class_label = ctx.classes[class_idx] if ctx.classes else ctx.positive_class

        def score(X: pd.DataFrame) -> np.ndarray:
            p = ctx.predict_frame(X)
            return p.proba[:, class_idx] if ctx.is_multiclass and p.proba is not None else p.score

        base = score(sample)
        scale = 1.0
        if not ctx.is_classification:
            sd = float(np.nanstd(ctx.y_task(domain_split)))
            scale = sd if np.isfinite(sd) and sd > 0 else 1.0
        link = "logit" if ctx.is_classification else "identity"
        monotone = dict(ctx.config.expect.monotone)
        boot = bootstrap_weights(ctx.rng(self.id), len(sample), int(self.n_bootstrap))

        partners = PartnerIndex.from_frame(sample, ctx.categorical)
        deps: list[FeatureDependence] = []
        mets: list[DependenceMetrics] = []
        skipped: list[tuple[str, str]] = []
        for feature in ctx.features:
            categorical = feature in ctx.categorical
            grid = make_grid(domain[feature], categorical=categorical, grid_size=self.grid_size,
                             outside_fraction=self.outside_fraction, outside_points=self.outside_points,
                             max_levels=self.max_levels, spike_share=self.spike_share,
                             max_spikes=self.max_spikes)
            if grid is None:
                skipped.append((feature, f"no observed values in the {domain_split} data"))
                continue
            dep = feature_dependence(score, sample, feature, grid=grid, reference=domain[feature],
                                     base_score=base, ale_bins=self.ale_bins, n_curves=self.ice_curves)
            deps.append(dep)
            mets.append(dependence_metrics(dep, monotone=int(monotone.get(feature, 0)),
                                           tolerance=self.tolerance * scale, link=link, partners=partners,
                                           boot=boot, confidence=self.confidence))
        order = sorted(range(len(mets)), key=lambda i: (-_importance(mets[i]), mets[i].feature))
        unchecked = tuple(sorted(f for f in monotone if any(m.feature == f and not m.monotone_checked
                                                           for m in mets)))
        return PartialDependenceMeasurement(
            task=ctx.task, scale=scale, link=link, rows_sampled=len(sample), rows_available=len(ctx.test),
            sample_split="test", domain_split=domain_split, dependences=tuple(deps[i] for i in order),
            metrics=tuple(mets[i] for i in order), not_analysed=tuple(skipped), monotone_unchecked=unchecked,
            n_classes=ctx.n_classes if ctx.is_classification else 0, class_label=class_label, class_role=class_role,
            n_boot=int(boot.shape[0]), confidence=float(self.confidence),
            additive=tuple(f for f in ctx.config.expect.additive if f in ctx.features))

    # ---- judge ----------------------------------------------------------------------------
    def judge(self, m: PartialDependenceMeasurement) -> list[Finding]:
        out: list[Finding] = []
        for fm in m.metrics:
            for rule in (self._monotone, self._interaction, self._erratic, self._no_effect):
                f = rule(fm, m)
                if f is not None:
                    out.append(f)
        return out

    def _finding(self, kind: str, fm: DependenceMetrics, severity: Severity, title: str, summary: str,
                 metrics: dict[str, Any], remediation: tuple[str, ...], evidence: tuple[str, ...],
                 rule: Rule | None = None) -> Finding:
        return Finding(id=f"{self.id}/{kind}/{fm.feature}", check=self.id, severity=severity, title=title,
                       summary=summary, features=(fm.feature,), metrics=metrics, remediation=remediation,
                       evidence=evidence, rule=rule)

    def _monotone(self, fm: DependenceMetrics, m: PartialDependenceMeasurement) -> Finding | None:
        if not fm.monotone_checked:
            return None
        tol = self.tolerance * m.scale
        high_fall = self.monotone_pdp_high * m.scale
        drop_lo = _low_end(fm.pdp_drop, fm.pdp_drop_ci)
        breach_lo = _low_end(fm.ice_breach_share, fm.ice_breach_ci)
        pdp_ci = _ci_words(fm.pdp_drop_ci, fm, "bootstrap")
        ice_ci = _ci_words(fm.ice_breach_ci, fm, "wilson")
        pdp_short = _ci_words(fm.pdp_drop_ci, fm, "bootstrap", short=True)
        ice_short = _ci_words(fm.ice_breach_ci, fm, "wilson", short=True, as_pct=True)
        # (severity, metric, value, threshold, interval, words): the first rule that holds sets it
        if drop_lo >= high_fall:
            why = (Severity.HIGH, "pdp_fall", fm.pdp_drop, high_fall, fm.pdp_drop_ci, "PDP fall", pdp_ci)
        elif breach_lo >= self.monotone_ice_high:
            why = (Severity.HIGH, "ice_breach_share", fm.ice_breach_share, self.monotone_ice_high,
                   fm.ice_breach_ci, "share of breaching ICE curves", ice_ci)
        elif drop_lo > tol:
            why = (Severity.MEDIUM, "pdp_fall", fm.pdp_drop, tol, fm.pdp_drop_ci, "PDP fall", pdp_ci)
        elif breach_lo >= self.monotone_ice_medium:
            why = (Severity.MEDIUM, "ice_breach_share", fm.ice_breach_share, self.monotone_ice_medium,
                   fm.ice_breach_ci, "share of breaching ICE curves", ice_ci)
        else:
            return None
        severity, metric, value, threshold, ci, label, ci_text = why
        op = ">" if metric == "pdp_fall" and severity is Severity.MEDIUM else ">="
        compared = "above" if op == ">" else "at least"
        rule_text = (f"{severity.value}: the {label} {amount(value)}{ci_text} is {compared} "
                     f"{amount(threshold)} even at the lower end of its interval")
        pdp_breach = fm.pdp_drop > tol
        declared = "increasing" if fm.monotone > 0 else "decreasing"
        what = _score_word(m)
        if pdp_breach:
            moved = "falls" if fm.monotone > 0 else "rises"
            title = (f"{_cap(what)} {moved} by {amount(fm.pdp_drop)} as {fm.feature} goes from "
                     f"{amount(fm.drop_from)} to {amount(fm.drop_to)}, though declared {declared}")
            where = (f"On average (PDP) the {what} {moved} by {amount(fm.pdp_drop)}{pdp_short} between {fm.feature} = "
                     f"{amount(fm.drop_from)} and {amount(fm.drop_to)}. ")
        else:
            title = (f"{pct(fm.ice_breach_share, 0)} of individual curves break the declared {declared} "
                     f"effect of {fm.feature}")
            where = ("The average curve (PDP) keeps the declared direction within tolerance, but individual "
                     "rows do not. ")
        summary = (f"The model owner declared the {what} {declared} in {fm.feature}. {where}"
                   f"{pct(fm.ice_breach_share, 0)}{ice_short} of the sampled rows' ICE curves move against the "
                   f"declared direction by more than {amount(tol)} within the observed range. Severity {rule_text}.")
        metrics = {"pdp_fall": fm.pdp_drop, "from_value": _number_or_none(fm.drop_from),
                   "to_value": _number_or_none(fm.drop_to), "ice_breach_share": fm.ice_breach_share,
                   "tolerance": tol, "declared": fm.monotone}
        metrics.update(_ci_metrics("pdp_fall", fm.pdp_drop_ci))
        metrics.update(_ci_metrics("ice_breach_share", fm.ice_breach_ci))
        remediation = (
            "Train with a monotonic constraint on this feature (monotonic_cst in scikit-learn's gradient "
            "boosting, monotone_constraints in LightGBM and XGBoost).",
            "If the non-monotone effect is genuine, revisit the declaration with the model owner and document why.",
        )
        rule = Rule(metric, float(value), op, float(threshold), interval=_interval(ci), text=rule_text)
        return self._finding("monotone", fm, severity, title, summary, metrics, remediation,
                             ("features", *self._figure_of(m, fm.feature)), rule)

    def _interaction(self, fm: DependenceMetrics, m: PartialDependenceMeasurement) -> Finding | None:
        share_lo = _low_end(fm.interaction_share, fm.interaction_share_ci)
        if share_lo < self.interaction_low:
            return None
        spread_lo = _low_end(fm.ice_spread, fm.ice_spread_ci)
        strength_lo = _low_end(fm.partner_strength, fm.partner_strength_ci)
        wide = spread_lo >= self.interaction_medium_spread * m.scale
        # a moderate spread counts only with a clear partner: without one it is usually a model
        # fitting noise (curves wiggle idiosyncratically), not an interaction to review
        paired = (spread_lo >= self.interaction_min_spread * m.scale
                  and strength_lo >= self.interaction_partner_min)
        if not (wide or paired):
            return None
        strong = wide and share_lo >= self.interaction_medium
        declared = ("additive" if fm.feature in m.additive else
                    ("monotone" if fm.monotone else ""))
        severity = Severity.MEDIUM if strong and declared else Severity.LOW
        threshold = self.interaction_medium if strong else self.interaction_low
        partner = (f", most strongly with {fm.partner}"
                   if fm.partner and strength_lo >= self.interaction_partner_min else "")
        scale_word = "on the log-odds scale " if m.link == "logit" else ""
        share_ci = _ci_words(fm.interaction_share_ci, fm, "bootstrap")
        spread_ci = _ci_words(fm.ice_spread_ci, fm, "bootstrap", short=True)
        if wide:
            cond = f"the typical distance from the PDP is at least {amount(self.interaction_medium_spread * m.scale)}"
        else:
            cond = (f"the typical distance from the PDP is at least {amount(self.interaction_min_spread * m.scale)} "
                    f"with a partner association of at least {self.interaction_partner_min:.2f}")
        short_of = (f" (medium needs a share of at least {self.interaction_medium:.2f} and a distance of at least "
                    f"{amount(self.interaction_medium_spread * m.scale)})" if not strong else "")
        declaration = (f"; {fm.feature} is declared {declared} in [expect], so its effect should not vary by row"
                       if declared else
                       f"; medium only for a feature declared additive or monotone in [expect], which {fm.feature} "
                       "is not: heterogeneous ICE curves are routine for a flexible model")
        rule_text = (f"{severity.value}: the interaction share {fm.interaction_share:.2f}{share_ci} is at least "
                     f"{threshold:.2f} and {cond}, each at the lower end of its interval{short_of}{declaration}")
        title = (f"The effect of {fm.feature} differs strongly between rows "
                 f"(interaction share {fm.interaction_share:.2f})")
        share_short = _ci_words(fm.interaction_share_ci, fm, "bootstrap", short=True, as_pct=True)
        summary = (f"Individual (ICE) curves for {fm.feature} spread widely around the average curve: "
                   f"{pct(fm.interaction_share, 0)}{share_short} of their variation {scale_word}is not explained by "
                   f"the partial dependence (typical distance from it {amount(fm.ice_spread)}{spread_ci}). "
                   f"The feature's effect depends on other features{partner}, so the PDP alone misdescribes it. "
                   f"This is worth a reviewer's attention, not a defect by itself. Severity {rule_text}.")
        metrics = {"interaction_share": fm.interaction_share, "ice_spread": fm.ice_spread,
                   "partner_strength": fm.partner_strength}
        metrics.update(_ci_metrics("interaction_share", fm.interaction_share_ci))
        metrics.update(_ci_metrics("ice_spread", fm.ice_spread_ci))
        remediation = (
            f"Check that the interaction{' with ' + str(fm.partner) if partner else ''} is plausible for the business; "
            "inspect a two-way partial dependence plot.",
            "Describe the feature's effect by segment rather than by the PDP alone in the model documentation.",
        )
        rule = Rule("interaction_share", float(fm.interaction_share), ">=", float(threshold),
                    interval=_interval(fm.interaction_share_ci), text=rule_text)
        return self._finding("interaction", fm, severity, title, summary, metrics, remediation,
                             ("features", *self._figure_of(m, fm.feature)), rule)

    def _erratic(self, fm: DependenceMetrics, m: PartialDependenceMeasurement) -> Finding | None:
        jump_min = self.jump_min * m.scale
        tol = self.tolerance * m.scale
        items: list[tuple[str, float, str, float, tuple[float, float]]] = []  # (kind, change, reason, conservative, ci)
        # whether a change is a jump (against the largest in-range step) or a reversal (against the
        # in-range trend) is read from the point estimates, which move together across resamples;
        # its size, which sets the severity, at the end of its interval nearest zero
        for kind, change, trend, ci in ((BELOW, fm.below_change, fm.below_trend, fm.below_change_ci),
                                        (ABOVE, fm.above_change, fm.above_trend, fm.above_change_ci)):
            if not np.isfinite(change):
                continue
            sure = _toward_zero(change, ci)
            if abs(sure) < jump_min:
                continue
            if abs(sure) > self.jump_factor * fm.max_step:
                items.append((kind, change, "jump", sure, ci))
            elif np.isfinite(trend) and abs(trend) > tol and change * trend < 0:
                items.append((kind, change, "reversal", sure, ci))
        for kind, change, ci in ((MISSING, fm.missing_change, fm.missing_change_ci),
                                 (UNSEEN, fm.unseen_change, fm.unseen_change_ci)):
            # already measured as the distance outside every in-range PDP value
            if not np.isfinite(change):
                continue
            sure = _toward_zero(change, ci)
            if abs(sure) >= jump_min:
                items.append((kind, change, "outside", sure, ci))
        if not items:
            return None
        worst = max(items, key=lambda it: abs(it[3]))
        high = self.jump_high * m.scale
        severity = Severity.HIGH if abs(worst[3]) >= high else Severity.MEDIUM
        threshold = high if severity is Severity.HIGH else jump_min
        what = _score_word(m)
        title = f"{_cap(_where(worst[0], fm.feature))}, the {what} {_verb(worst[:3])}"
        parts = [f"{_where(kind, fm.feature)} the {what} changes by {signed_amount(change)}"
                 f"{_ci_words(ci, fm, 'bootstrap', short=True)} ({_REASONS[reason]})"
                 for kind, change, reason, _, ci in items]
        rule_text = (f"{severity.value}: the size of the change {_where(worst[0], fm.feature)}, "
                     f"{amount(abs(worst[1]))}{_ci_words(worst[4], fm, 'bootstrap')}, is at least {amount(threshold)} "
                     f"at the end of its interval nearest zero")
        summary = (f"{_cap('; '.join(parts))}. The largest step between neighbouring points within the "
                   f"observed range is {amount(fm.max_step)}. Inputs like these reach a deployed model through "
                   f"data errors, new populations or missing fields, and the model answers them unpredictably. "
                   f"Severity {rule_text}.")
        metrics: dict[str, Any] = {f"{kind}_change": change for kind, change, *_ in items}
        for kind, _, _, _, ci in items:
            metrics.update(_ci_metrics(f"{kind}_change", ci))
        metrics["max_in_range_step"] = fm.max_step
        remediation = (
            "Validate inputs before scoring: clip or reject values outside the training range, and map "
            "unseen levels to an explicit 'other' level.",
            "Impute missing values explicitly in the pipeline, the same way in training and scoring.",
        )
        rule = Rule(f"{worst[0]}_change", float(worst[1]), "|x| >=", float(threshold),
                    interval=_interval(worst[4]), text=rule_text)
        return self._finding("erratic", fm, severity, title, summary, metrics, remediation,
                             ("beyond_range", *self._figure_of(m, fm.feature)), rule)

    def _no_effect(self, fm: DependenceMetrics, m: PartialDependenceMeasurement) -> Finding | None:
        limit = self.no_effect_max * m.scale
        if fm.in_range_points < 2 or _high_end(fm.effect, fm.effect_ci) > limit:
            return None
        ci = _ci_words(fm.effect_ci, fm, "bootstrap")
        rule_text = (f"low: the mean ICE range {amount(fm.effect)}{ci} is at most {amount(limit)} even at the upper "
                     f"end of its interval")
        title = f"The model ignores {fm.feature}"
        summary = (f"Changing {fm.feature} across its observed values moves the sampled rows' {_score_word(m)} "
                   f"by {amount(fm.effect)} on average: the feature has no effect on the model's output. "
                   f"Severity {rule_text}.")
        remediation = (
            f"Drop {fm.feature} from the model inputs, or check the pipeline: the column may be dropped, "
            "mis-encoded or replaced by another before it reaches the model.",
        )
        rule = Rule("effect", float(fm.effect), "<=", float(limit), interval=_interval(fm.effect_ci), text=rule_text)
        return self._finding("no_effect", fm, Severity.LOW, title, summary, {"effect": fm.effect},
                             remediation, ("features", *self._figure_of(m, fm.feature)), rule)

    # ---- evidence -------------------------------------------------------------------------
    def evidence(self, m: PartialDependenceMeasurement) -> Evidence:
        findings = self.judge(m)
        kinds = [f.id.split("/")[1] for f in findings]
        rejected = [fm.feature for fm in m.metrics if fm.status.get(MISSING) == "rejected"]
        metrics = {
            "features_analysed": len(m.metrics), "rows_sampled": m.rows_sampled,
            "grid_points_max": max((fm.in_range_points for fm in m.metrics), default=0),
            "outside_points": self.outside_points, "monotone_declared": sum(1 for fm in m.metrics if fm.monotone),
            "monotone_breaches": kinds.count("monotone"), "interactions": kinds.count("interaction"),
            "erratic": kinds.count("erratic"), "no_effect": kinds.count("no_effect"),
            "missing_rejected": len(rejected),
        }
        shown = m.dependences[:self.max_figure_features]
        declared = {fm.feature: fm.monotone for fm in m.metrics if fm.monotone}
        breaches = {f.features[0]: (f.metrics["from_value"], f.metrics["to_value"]) for f in findings
                    if f.id.split("/")[1] == "monotone" and f.metrics.get("from_value") is not None}
        capped = (f" The {len(shown)} most important of {len(m.dependences)} features are shown."
                  if len(shown) < len(m.dependences) else "")
        caption = ("Thick line: partial dependence (PDP), the average prediction when every sampled row has the "
                   "feature set to the value on the x axis. Thin lines: ICE curves of rows at the deciles of the "
                   "predicted score. Dashed: ALE, shifted to the mean prediction. Shaded: beyond the observed "
                   "range, a missing value and an unseen level (open markers). Grey area: the feature's observed "
                   "distribution. Red band: where the PDP breaks a declared monotonicity. Most important feature "
                   "first." + capped)
        figures = []
        chunks = [shown[i:i + FIGURE_PANELS] for i in range(0, len(shown), FIGURE_PANELS)]
        for k, chunk in enumerate(chunks):
            part = f" ({k + 1} of {len(chunks)})" if len(chunks) > 1 else ""
            figures.append(Figure(
                _figure_name(k), f"Partial dependence and ICE per feature{part}",
                plot="partial_dependence.pdp_ice_figure",
                data={"deps": tuple(chunk), "score_label": _score_label(m), "declared": declared,
                      "breaches": breaches},
                caption=caption if k == 0 else "As above." + capped))
        return Evidence(metrics=metrics, tables=(self._summary_table(m), self._beyond_table(m)),
                        figures=tuple(figures), notes=self._notes(m, rejected))

    def _figure_of(self, m: PartialDependenceMeasurement, feature: str) -> tuple[str, ...]:
        """The name of the figure showing ``feature`` (none when it is beyond the figure cap)."""
        order = [d.feature for d in m.dependences[:self.max_figure_features]]
        return (_figure_name(order.index(feature) // FIGURE_PANELS),) if feature in order else ()

    def _summary_table(self, m: PartialDependenceMeasurement) -> Table:
        records = []
        for fm in m.metrics:
            out_change = _largest(fm.below_change, fm.above_change)
            records.append({
                "feature": fm.feature, "effect": sig(fm.effect, 4), "pdp_range": sig(fm.pdp_range, 4),
                "ice_spread": sig(fm.ice_spread, 4), "interaction_share": sig(fm.interaction_share, 4),
                "monotone": {1: "increasing", -1: "decreasing"}.get(fm.monotone, ""),
                "monotone_fall": sig(fm.pdp_drop, 4) if fm.monotone_checked else None,
                "ice_breach_share": sig(fm.ice_breach_share, 4) if fm.monotone_checked else None,
                "out_of_range_change": sig(out_change, 4) if not fm.categorical else None,
                "missing_change": sig(_status_or(fm, MISSING, fm.missing_change), 4),
                "unseen_change": sig(_status_or(fm, UNSEEN, fm.unseen_change), 4) if fm.categorical else None,
                "has_effect": bool(fm.effect > self.no_effect_max * m.scale),
            })
        return Table.from_records(
            "features", "Per-feature dependence summary (most important first)", records,
            caption=("effect: mean over sampled rows of the ICE curve's range within the observed values "
                     "(the sort key); ice_spread: typical distance of centred ICE curves from the PDP; "
                     "interaction_share: share of ICE variation the PDP does not explain; monotone_fall: largest "
                     "PDP fall against the declared direction; ice_breach_share: share of ICE curves breaching it "
                     "beyond the tolerance; *_change: PDP change beyond the observed range, for a missing value or "
                     "an unseen level ('rejected' when the model refuses the value)."))

    def _beyond_table(self, m: PartialDependenceMeasurement) -> Table:
        records = []
        for dep in m.dependences:
            pdp = dep.pdp
            inside = dep.grid.in_range
            pdp_in = pdp[inside]
            vals_in = dep.grid.values_of(IN_RANGE)
            for j, (value, kind) in enumerate(zip(dep.grid.values, dep.grid.kinds)):
                if kind == IN_RANGE:
                    continue
                status = dep.status.get(kind, "ok")
                change = None
                if status == "ok" and len(pdp_in):
                    if kind in (BELOW, ABOVE):
                        nums = np.asarray(vals_in, dtype=float)
                        change = float(pdp[j] - pdp_in[int(np.argmin(nums) if kind == BELOW else np.argmax(nums))])
                    else:
                        lo, hi = float(np.min(pdp_in)), float(np.max(pdp_in))
                        change = float(pdp[j] - hi if pdp[j] > hi else (pdp[j] - lo if pdp[j] < lo else 0.0))
                records.append({"feature": dep.feature, "point": KIND_LABELS[kind], "value": _display(value),
                                "pdp": sig(float(pdp[j]), 4) if status == "ok" else None, "change": sig(change, 4),
                                "status": status})
        return Table.from_records(
            "beyond_range", "Predictions beyond the observed range, for missing values and unseen levels",
            records, max_rows=5 * self.max_figure_features,
            caption=("change: PDP at the point minus the PDP at the nearest end of the observed range; for a "
                     "missing value or unseen level, how far the PDP lies outside the range of in-range PDP "
                     "values (0 when inside)."))

    def _budget_note(self, m: PartialDependenceMeasurement) -> str:
        capped = m.rows_sampled < min(self.rows, m.rows_available)
        return f", reduced to keep within max_model_rows = {self.max_model_rows:,}" if capped else ""

    def _notes(self, m: PartialDependenceMeasurement, rejected: list[str]) -> tuple[str, ...]:
        notes = [
            f"PDP and ICE on a seeded random sample of {m.rows_sampled} of {m.rows_available} {m.sample_split} rows "
            f"(option rows = {self.rows}{self._budget_note(m)}); every feature is set to each grid value for "
            f"every sampled row, one batched model call per feature.",
            f"Grid: all observed values when there are at most {self.grid_size}, else each value holding at least "
            f"{pct(self.spike_share, 0)} of the {m.domain_split} rows (up to {self.max_spikes}, e.g. the zeros of "
            f"a zero-inflated feature) plus quantiles of the other values, {self.grid_size} points in all; "
            f"{self.outside_points} points each side beyond the observed range (up to "
            f"{pct(self.outside_fraction, 0)} of its span) and a missing value (NaN); categorical features: the "
            f"{self.max_levels} most frequent levels, an unseen level and a missing value (None).",
            f"ALE: first-order accumulated local effects of numeric features over up to {self.ale_bins} "
            "bins of the sample, with edges built like the grid (the grid's spikes as edges of their own, "
            "quantiles of the other values), centred on the mean prediction.",
        ]
        if m.n_classes > 2:
            why = ("the favourable class" if m.class_role == "favourable"
                   else "the positive class (no favourable class configured)")
            notes.append(f"The model has {m.n_classes} classes: for {m.n_classes} classes the curves show "
                         f"P(class = {m.class_label}), the probability of {why}; every threshold, the log-odds "
                         "link included, applies to that one class's probability.")
        if m.link == "logit":
            notes.append("Interaction share is measured on the log-odds scale (probabilities clipped to "
                         "[0.01, 0.99]), so the logistic link alone does not count as an interaction; other "
                         "thresholds are in probability units.")
        else:
            notes.append(f"Thresholds are scaled by the target's standard deviation ({m.scale:.4g}).")
        notes.append(f"Severities use the conservative end of {level(m.confidence)} intervals: a percentile "
                     f"bootstrap over {m.n_boot} resamples of the {m.rows_sampled} sampled rows (seeded from the "
                     "audit seed) for the PDP fall, interaction share, ICE spread, partner association, the size of "
                     "the changes beyond the observed range and the mean effect, and the Wilson interval for the share "
                     "of ICE curves that breach a declared monotonicity. A finding is raised only when the interval's "
                     "end nearest 'no problem' passes the threshold.")
        spiked = [f"{d.feature} ({', '.join(amount(v) for v in d.grid.spikes)})"
                  for d in m.dependences if d.grid.spikes]
        if spiked:
            notes.append(f"Values holding at least {pct(self.spike_share, 0)} of the rows, each a grid point and "
                         "an ALE edge of its own, the other points quantiles of the remaining values: "
                         f"{', '.join(spiked)}.")
        if rejected:
            errs = {fm.errors.get(MISSING, "") for fm in m.metrics if fm.feature in rejected}
            notes.append(f"The model rejects missing values for: {', '.join(rejected)} "
                         f"({'; '.join(sorted(e for e in errs if e))}).")
        unseen_rejected = [fm.feature for fm in m.metrics if fm.status.get(UNSEEN) == "rejected"]
        if unseen_rejected:
            notes.append(f"The model rejects an unseen level for: {', '.join(unseen_rejected)}.")
        out_rejected = [fm.feature for fm in m.metrics if "rejected" in (fm.status.get(BELOW), fm.status.get(ABOVE))]
        if out_rejected:
            notes.append(f"The model rejects values beyond the observed range for: {', '.join(out_rejected)}.")
        nonfinite = [fm.feature for fm in m.metrics if "non-finite" in fm.status.values()]
        if nonfinite:
            notes.append(f"The model returns non-finite scores beyond the observed range or for missing values "
                         f"of: {', '.join(nonfinite)}.")
        capped = [f"{fm.feature} ({fm.levels_dropped} more)" for fm in m.metrics if fm.levels_dropped]
        if capped:
            notes.append(f"Rare levels left off the grid: {', '.join(capped)}.")
        if m.monotone_unchecked:
            notes.append(f"Declared monotone but categorical without an order, so not checked: "
                         f"{', '.join(m.monotone_unchecked)}.")
        for feature, reason in m.not_analysed:
            notes.append(f"{feature} not analysed: {reason}.")
        if len(m.dependences) > self.max_figure_features:
            notes.append(f"The figure shows the {self.max_figure_features} most important of "
                         f"{len(m.dependences)} features (option max_figure_features); the tables list all.")
        return tuple(notes)


FIGURE_PANELS = 6  # panels per figure: two rows of three fit an A4 page unscaled


def _figure_name(k: int) -> str:
    return "pdp_ice" if k == 0 else f"pdp_ice_{k + 1}"


# ---- helpers ------------------------------------------------------------------------------------


def _importance(fm: DependenceMetrics) -> float:
    return fm.effect


def _finite_ci(ci: tuple[float, float]) -> bool:
    return ci is not None and len(ci) == 2 and all(np.isfinite(c) for c in ci)


def _low_end(value: float, ci: tuple[float, float]) -> float:
    """The conservative end for a rule 'value at least a threshold' (the point without an interval)."""
    return min(float(value), float(ci[0])) if _finite_ci(ci) else float(value)


def _high_end(value: float, ci: tuple[float, float]) -> float:
    """The conservative end for a rule 'value at most a threshold'."""
    return max(float(value), float(ci[1])) if _finite_ci(ci) else float(value)


def _toward_zero(value: float, ci: tuple[float, float]) -> float:
    """The end of a signed change's interval nearest zero (0 when the interval spans zero)."""
    if not _finite_ci(ci):
        return float(value)
    lo, hi = min(float(ci[0]), float(value)), max(float(ci[1]), float(value))
    if lo <= 0.0 <= hi:
        return 0.0
    return lo if lo > 0 else hi


def _interval(ci: tuple[float, float]) -> tuple[float, float] | None:
    return (float(ci[0]), float(ci[1])) if _finite_ci(ci) else None


def _ci_metrics(name: str, ci: tuple[float, float]) -> dict[str, float]:
    return {f"{name}_ci_low": float(ci[0]), f"{name}_ci_high": float(ci[1])} if _finite_ci(ci) else {}


def _ci_words(ci: tuple[float, float], fm: DependenceMetrics, kind: str, *, short: bool = False,
              as_pct: bool = False) -> str:
    """' (95% bootstrap interval 0.1 to 0.2 over 400 resamples of the 500 sampled rows)', or ''
    (``short``: ' (95% interval 0.1 to 0.2)', in percent with ``as_pct``)."""
    if not _finite_ci(ci):
        return ""
    conf = level(fm.confidence) if np.isfinite(fm.confidence) else ""
    if short:
        lo, hi = (pct(ci[0], 0), pct(ci[1], 0)) if as_pct else (amount(ci[0]), amount(ci[1]))
        return f" ({conf} interval {lo} to {hi})"
    how = (f"bootstrap interval {amount(ci[0])} to {amount(ci[1])} over {fm.n_boot} resamples of the "
           f"{fm.n_rows} sampled rows" if kind == "bootstrap"
           else f"Wilson interval {amount(ci[0])} to {amount(ci[1])} over the {fm.n_rows} sampled rows")
    return f" ({conf} {how})"


def _score_word(m: PartialDependenceMeasurement) -> str:
    if m.task != "classification":
        return "prediction"
    if m.n_classes > 2:
        return f"predicted probability of class {m.class_label}"
    return "predicted probability"


def _score_label(m: PartialDependenceMeasurement) -> str:
    if m.task != "classification":
        return "prediction"
    return f"P(class = {m.class_label})" if m.n_classes > 2 else "P(positive)"



def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]



def _where(kind: str, feature: str) -> str:
    return {BELOW: f"below the observed range of {feature}", ABOVE: f"above the observed range of {feature}",
            MISSING: f"for a missing {feature}", UNSEEN: f"for an unseen level of {feature}"}[kind]


_REASONS = {"jump": "from the nearest observed value, a jump",
            "reversal": "from the nearest observed value, against the in-range trend",
            "outside": "beyond every value the observed range produces"}


def _verb(item: tuple[str, float, str]) -> str:
    _, change, reason = item
    if reason == "reversal":
        return f"turns against the in-range trend ({signed_amount(change)})"
    if reason == "outside":
        return f"lies {amount(abs(change))} {'above' if change > 0 else 'below'} anything the observed values give"
    return f"jumps by {signed_amount(change)}"


def _largest(a: float, b: float) -> float | None:
    vals = [v for v in (a, b) if np.isfinite(v)]
    return max(vals, key=abs) if vals else None


def _status_or(fm: DependenceMetrics, kind: str, value: float) -> Any:
    status = fm.status.get(kind)
    if status is None:
        return None
    return value if status == "ok" else status


def _number_or_none(v: Any) -> Any:
    return float(v) if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) else v


def _display(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "missing"
    return value

