"""The findings of ``residual.analysis``, one function per kind: each reads the measurement and
the check's thresholds and returns its finding (or None), so the judge stays a pure function."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ...analysis.residuals import Leaf
from ...findings import Finding, Rule, Severity
from ...wording import level, p_value

if TYPE_CHECKING:
    from .analysis import ResidualAnalysisCheck, ResidualMeasurement


def _worst_leaf_text(c: ResidualAnalysisCheck, m: ResidualMeasurement, biased: list[Leaf]) -> str:
    """The most biased held-out region of the surrogate tree, in a sentence ('' when none is)."""
    if not biased:
        return ""
    b = biased[0]
    if m.task == "multiclass":
        cname = m.classes[b.klass] if 0 <= b.klass < len(m.classes) else "?"
        return (f" The most biased region on held-out rows is `{b.rule}` ({b.n} rows): class "
                f"{cname!s} occurs {'more' if b.mean > 0 else 'less'} often than predicted (observed "
                f"minus predicted rate {b.mean:+.3g}, {level(c.confidence)} CI {b.low:+.3g} to {b.high:+.3g}).")
    return f" The most biased region on held-out rows is `{b.rule}` ({b.n} rows, mean residual {b.mean:+.3g})."


def structure(c: ResidualAnalysisCheck, m: ResidualMeasurement) -> Finding | None:
    """The surrogate tree explains a significant, large enough share of the residual variance."""
    t = m.tree
    gain = m.structure_gain
    if not (t is not None and t.p_value < c.alpha and t.explained >= c.structure_medium and t.features
            and gain >= c.structure_min_gain):
        return None
    # high only when the interval's lower end clears the high cut
    sev = Severity.HIGH if t.explained_low >= c.structure_high else Severity.MEDIUM
    biased = sorted((lf for lf in t.leaves if lf.p_adjusted < c.alpha and lf.n > 0),
                    key=lambda lf: -abs(lf.mean) * lf.n)
    multi = m.task == "multiclass"
    names = ", ".join(t.features)
    what = "per-class residuals (actual minus predicted rate of each class)" if multi else "residuals"
    scale = "of the class indicators' summed variance" if multi else "of the target's variance"
    rule_txt = (f"Rule: medium when the held-out share explained is at least {c.structure_medium:.0%} "
                f"with a one-sided t-test p-value of the per-row gain below {c.alpha} ({p_value(t.p_value)}) "
                f"and the structured part is at least {c.structure_min_gain:.0%} {scale}; high when the "
                f"lower end of the share's {level(c.confidence)} interval "
                f"[{t.explained_low:.1%}, {t.explained_high:.1%}] is at least {c.structure_high:.0%}.")
    return Finding(
        id=f"{c.id}/structure", check=c.id, severity=sev,
        title=f"Residuals are structured: a depth-{t.max_depth} tree on {names} explains "
              f"{t.explained:.0%} of {'per-class residual' if multi else 'residual'} variance",
        summary=(f"A shallow tree fitted to the {what} on half of the test rows explains {t.explained:.1%} "
                 f"of their variance on the other half ({p_value(t.p_value)}), i.e. {gain:.1%} {scale}. The "
                 f"model misses a pattern involving {names}.{_worst_leaf_text(c, m, biased)} {rule_txt}"),
        rule=Rule("explained_share", t.explained, ">=",
                  c.structure_high if sev == Severity.HIGH else c.structure_medium,
                  interval=(t.explained_low, t.explained_high), p_value=t.p_value, text=rule_txt),
        features=t.features,
        metrics={"explained_share": t.explained, "target_variance_share": gain, "p_value": t.p_value,
                 "biased_leaves": len(biased)},
        remediation=("Inspect the surrogate-tree rules and the residual plots for these features: the "
                     "model's functional form misses this relationship (e.g. an interaction, a "
                     "non-linearity or a segment with different behaviour).",
                     "Add the missing feature or interaction, or use a more flexible model, then "
                     "re-audit; check the segments listed by residual.segments."),
        evidence=("surrogate_rules", "residuals_by_feature"))


def heteroscedasticity(c: ResidualAnalysisCheck, m: ResidualMeasurement) -> Finding | None:
    """Regression: the size of the error moves with the prediction."""
    h = m.hetero
    if not (h is not None and math.isfinite(h.rho) and h.p_value < c.alpha and abs(h.rho) >= c.hetero_min_rho):
        return None
    direction = "grows" if h.rho > 0 else "shrinks"
    return Finding(
        id=f"{c.id}/heteroscedasticity", check=c.id, severity=Severity.MEDIUM,
        title=f"Residual spread {direction} with the prediction (Spearman rho {h.rho:+.2f})",
        summary=(f"The size of the error {direction} with the predicted value: Spearman rank correlation of "
                 f"|residual| with the prediction is {h.rho:+.2f} ({p_value(h.p_value)}); the residual SD in the "
                 f"top fifth of predictions is {h.spread_ratio:.2f}x that in the bottom fifth. A single "
                 f"error figure (RMSE) misstates the uncertainty of individual predictions."),
        metrics={"spearman_rho": h.rho, "p_value": h.p_value, "spread_ratio": h.spread_ratio},
        remediation=("Report prediction intervals that depend on the predicted value (e.g. quantile "
                     "regression or conformal intervals by prediction level) rather than one RMSE.",
                     "Consider modelling a transformed target (e.g. log) if errors are proportional."),
        evidence=("residuals_vs_prediction",))


def bias_by_prediction(c: ResidualAnalysisCheck, m: ResidualMeasurement) -> Finding | None:
    """Regression: prediction bins whose mean residual is BH-significantly and materially non-zero."""
    sd = m.residual_sd
    if not (m.task == "regression" and sd > 0):
        return None
    pp = m.prediction_pattern
    bad = [i for i in range(len(pp.labels))
           if pp.p_adjusted[i] < c.alpha and pp.count[i] >= c.min_bin_rows
           and abs(pp.mean[i]) >= c.bias_min_effect * sd]
    if not bad:
        return None
    worst = max(bad, key=lambda i: abs(pp.mean[i]))
    ranges = "; ".join(f"prediction {pp.labels[i]}: mean residual {pp.mean[i]:+.3g}" for i in bad[:4])
    return Finding(
        id=f"{c.id}/bias_by_prediction", check=c.id, severity=Severity.MEDIUM,
        title=f"Systematic bias in {len(bad)} of {len(pp.labels)} prediction bins",
        summary=(f"The mean residual is significantly non-zero (BH-adjusted, alpha {c.alpha}) and at "
                 f"least {c.bias_min_effect} residual SDs in part of the prediction range: {ranges}. "
                 f"Positive means the model under-predicts there."),
        metrics={"biased_bins": len(bad), "max_abs_bias": float(abs(pp.mean[worst])),
                 "max_abs_bias_sd": float(abs(pp.mean[worst]) / sd), "p_adjusted": float(pp.p_adjusted[worst])},
        remediation=("Recalibrate the predictions (e.g. isotonic regression of actual on predicted) or "
                     "fix the model's shrinkage toward the mean in the affected range.",),
        evidence=("prediction_bins", "residuals_vs_prediction"))


def outliers(c: ResidualAnalysisCheck, m: ResidualMeasurement) -> Finding | None:
    """Regression: a few rows with outlying residuals carry a large share of the squared error."""
    o = m.outliers
    if not (o.kind == "robust_z" and o.count > 0 and o.error_share >= c.outlier_min_share):
        return None
    return Finding(
        id=f"{c.id}/outliers", check=c.id,
        severity=Severity.MEDIUM if o.error_share >= c.outlier_error_share else Severity.LOW,
        title=f"{o.count} outlying residuals carry {o.error_share:.0%} of the squared error",
        summary=(f"{o.count} rows ({o.share:.2%}) have a residual more than {o.threshold:g} robust SDs "
                 f"(median/MAD) from the median; together they account for {o.error_share:.1%} of the "
                 f"squared error, so RMSE is driven by a few rows. See the worst-rows table for their "
                 f"values and flags."),
        metrics={"rows": o.count, "share": o.share, "error_share": o.error_share},
        remediation=("Check these rows for data errors (see the flags in the worst-rows table) before "
                     "trusting RMSE; report a robust error metric (MAE, median absolute error) as well.",),
        evidence=("worst_rows",))


def confident_errors(c: ResidualAnalysisCheck, m: ResidualMeasurement) -> Finding | None:
    """Classification: more confidently wrong rows than a calibrated model would produce."""
    o = m.outliers
    if not (o.kind == "confident_errors" and o.count >= c.min_confident_errors and o.p_value < c.alpha):
        return None
    return Finding(
        id=f"{c.id}/confident_errors", check=c.id, severity=Severity.MEDIUM,
        title=f"{o.count} confident errors (true class given < {o.threshold:g}); calibration implies "
              f"{o.expected:.1f}",
        summary=(f"{o.count} rows ({o.share:.2%}) got a probability below {o.threshold:g} for their actual "
                 f"class; a calibrated model with these predictions would produce about {o.expected:.1f} "
                 f"({p_value(o.p_value)}, Poisson). They carry {o.error_share:.0%} of the total log loss. "
                 f"Medium when at least {c.min_confident_errors} such rows and the one-sided Poisson "
                 f"p-value is below {c.alpha}."),
        rule=Rule("confident_errors", o.count, ">", o.expected, p_value=o.p_value,
                  text=f"count above the calibrated expectation, one-sided Poisson p < {c.alpha}"),
        metrics={"rows": o.count, "expected": o.expected, "p_value": o.p_value, "loss_share": o.error_share},
        remediation=("Inspect these rows (worst-rows table) for label or data errors; if they are genuine, "
                     "the model is over-confident: calibrate it or regularise it more.",),
        evidence=("worst_rows",))


def data_quality(c: ResidualAnalysisCheck, m: ResidualMeasurement) -> list[Finding]:
    """Suspicious values (negative, out of range, missing, unseen) concentrated among the worst rows."""
    out = []
    for s in m.suspects.suspects:
        if not (s.p_adjusted < c.alpha and s.n_worst >= c.min_suspect_rows):
            continue
        out.append(Finding(
            id=f"{c.id}/data_quality/{s.column}/{s.kind}", check=c.id, severity=Severity.MEDIUM,
            title=f"Data-quality suspect among the worst rows: {s.column} ({s.description.split(';')[0]})",
            summary=(f"`{s.column}` has {s.description} in {s.n_worst} of the {s.worst_rows} rows with the "
                     f"largest errors, against {s.n_rest} of the other {s.rest_rows} rows (Fisher "
                     f"{p_value(s.p_value)}). The model's biggest mistakes coincide with suspicious input "
                     f"values."),
            features=(s.column,),
            metrics={"rows_among_worst": s.n_worst, "rows_elsewhere": s.n_rest, "p_value": s.p_value,
                     "p_adjusted": s.p_adjusted},
            remediation=(f"Validate `{s.column}` at input: reject or repair impossible values before "
                         f"scoring, and trace them back to the data pipeline.",
                         "Decide explicitly how the model should treat such rows (refuse to score, "
                         "impute, or route to manual review)."),
            evidence=("worst_rows", "data_quality")))
    return out
