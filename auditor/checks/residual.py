"""Residual checks: ``residual.analysis`` (residual patterns, surrogate tree, worst rows) and
``residual.segments`` (slices of the data where the error is significantly worse)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from ..analysis.residuals import (
    Heteroscedasticity,
    Outliers,
    ResidualPattern,
    Residuals,
    RowDrivers,
    SurrogateTree,
    SuspectScan,
    compute_residuals,
    heteroscedasticity,
    outliers,
    residual_pattern,
    row_drivers,
    scan_suspects,
    surrogate_tree,
)
from ..analysis.segments import SegmentSearch, WeakSegment, find_weak_segments, fmt_number
from ..findings import Evidence, Finding, Rule, Severity, Table
from ._classes import unknown_class_reason
from .base import RESIDUAL, Check

if TYPE_CHECKING:
    from ..context import AuditContext


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _value_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "missing"
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return fmt_number(v)
    return str(v)


# ==== residual.analysis ============================================================================

@dataclass(frozen=True)
class WorstRow:
    position: int  # row position in the analysed test data
    label: str  # the id column's value, or the test data's index label
    actual: Any
    predicted: float
    residual: float  # regression: actual - predicted; classification: probability of the actual class
    loss: float
    flags: tuple[str, ...]
    pushes: tuple[tuple[str, str, float], ...]  # (feature, value text, SHAP contribution to the prediction)
    raises: tuple[tuple[str, str, float], ...]  # (feature, value text, positive SHAP contribution to the loss)
    values: tuple[tuple[str, str], ...]  # (feature, value text)
    predicted_class: Any = None  # multiclass: the most probable class (``predicted`` is its probability)


@dataclass(frozen=True)
class ResidualMeasurement:
    task: str
    n: int
    n_total: int
    features: tuple[str, ...]
    residuals: Residuals
    prediction_pattern: ResidualPattern
    patterns: tuple[ResidualPattern, ...]  # every feature, most structured first
    plot_patterns: tuple[ResidualPattern, ...]
    tree: SurrogateTree | None
    hetero: Heteroscedasticity | None
    outliers: Outliers
    suspects: SuspectScan
    worst: tuple[WorstRow, ...]
    contributions: RowDrivers | None
    shap_error: str
    plot_rows: np.ndarray
    residual_sd: float
    target_var: float  # variance of the target (0/1 for classification); k classes: summed over class indicators
    bias_p_adjusted: np.ndarray  # per prediction bin (regression), BH-adjusted
    classes: tuple[Any, ...] = ()  # multiclass: the model's classes


@dataclass
class ResidualAnalysisCheck(Check):
    """Residuals by prediction and by feature, a surrogate tree of the residuals, outliers and the
    worst rows with their data-quality flags and SHAP drivers of their loss.

    Regression residual: actual - predicted; classification: actual (0/1) - P(positive), with the
    log loss and deviance residual per row; k classes: the row's k-class log loss -log p(true class)
    and its excess over its expectation under the predicted distribution (by the predicted class's
    probability; ranks the worst rows, whose SHAP drivers of P(true class) and of its log loss are
    shown), and the per-class residuals 1{y = j} - p_j (by feature, and a multi-output surrogate
    tree whose structure share is measured against the class indicators' summed variance).
    Findings (``alpha`` is the significance level):
    structure - the depth-3 residual tree explains a significant share of residual variance on
    held-out rows (medium at ``structure_medium``, **high** when the lower end of its interval is
    at ``structure_high``; either also needs
    the structured part to be ``structure_min_gain`` of the target's variance);
    heteroscedasticity (regression) - Spearman rho of |residual| vs prediction significant and at
    least ``hetero_min_rho`` (medium); bias by prediction decile (regression) - a decile's mean
    residual BH-significantly non-zero and at least ``bias_min_effect`` residual SDs (medium);
    outliers - regression rows with robust |z| > ``outlier_z`` carrying ``outlier_min_share`` of
    the squared error (low; medium from ``outlier_error_share``), classification confident errors beyond what
    calibration implies (medium); data-quality suspects - negative, out-of-range, missing or
    unseen values significantly concentrated among the worst rows (medium).
    """

    id: ClassVar[str] = "residual.analysis"
    family = RESIDUAL
    order = 1
    title: ClassVar[str] = "Residual analysis"

    alpha: float = 0.05
    confidence: float = 0.95
    max_rows: int = 50_000
    tree_depth: int = 3
    min_leaf_rows: int = 30
    min_leaf_share: float = 0.02
    structure_medium: float = 0.05
    structure_high: float = 0.25
    structure_min_gain: float = 0.01
    hetero_min_rho: float = 0.1
    bias_min_effect: float = 0.2
    outlier_z: float = 5.0
    outlier_error_share: float = 0.2
    outlier_min_share: float = 0.05
    confident_p: float = 0.02
    min_confident_errors: int = 5
    n_worst: int = 10
    worst_share: float = 0.05
    range_margin: float = 0.1
    min_suspect_rows: int = 2
    explain_worst: bool = True
    shap_background: int = 50
    max_plot_features: int = 6
    plot_points: int = 2000
    pattern_bins: int = 10
    min_bin_rows: int = 20

    def skip_reason(self, ctx: AuditContext) -> str | None:
        return unknown_class_reason(ctx, train=False)

    # ---- measure -------------------------------------------------------------------------------
    def measure(self, ctx: AuditContext) -> ResidualMeasurement:
        from scipy import stats

        X_all = ctx.X("test")
        n_total = len(X_all)
        multi = ctx.is_multiclass
        task = "multiclass" if multi else ctx.task
        if multi:  # k classes: the class index and the n x k distribution, never positive-vs-rest
            y_all = ctx.y_index("test")
            score_all = np.asarray(ctx.predictions("test").proba, dtype=float)
        else:
            y_all = ctx.y_binary("test") if ctx.is_classification else ctx.y("test").astype(float)
            score_all = ctx.predictions("test").score
        rng = ctx.rng(self.id)
        if n_total > self.max_rows:
            idx = np.sort(rng.choice(n_total, size=self.max_rows, replace=False))
        else:
            idx = np.arange(n_total)
        X = X_all.iloc[idx]
        res = compute_residuals(y_all[idx], score_all[idx], task=task)
        n = len(idx)
        plot_rows = np.sort(rng.choice(n, size=min(n, self.plot_points), replace=False))

        # residual against the prediction: deciles (regression: also the bias test per decile)
        # at least ``min_bin_rows`` rows per bin on small data
        bins = max(2, min(self.pattern_bins, n // self.min_bin_rows))
        pred_series = pd.Series(res.prediction, index=X.index)
        prediction_pattern = residual_pattern(pred_series, res.residual, feature="prediction", categorical=False,
                                              bins=bins, confidence=self.confidence)
        pv = np.nan_to_num(prediction_pattern.p_values, nan=1.0)
        bias_adj = np.asarray(stats.false_discovery_control(pv, method="bh")) if pv.size else pv

        group = res.y.astype(int) if task != "regression" else None
        if multi:
            # by feature: each class's residual 1{y = j} - p_j; the class with the strongest pattern is kept
            patterns = []
            for f in ctx.features:
                per_class = [replace(residual_pattern(X[f], res.class_residual[:, j], feature=f,
                                                      categorical=f in ctx.categorical, bins=bins,
                                                      confidence=self.confidence, sample=plot_rows, group=group),
                                     target_class=str(ctx.classes[j]))
                             for j in range(ctx.n_classes)]
                patterns.append(min(per_class, key=lambda p: (-p.strength, p.p_value, p.target_class)))
        else:
            patterns = [residual_pattern(X[f], res.residual, feature=f, categorical=f in ctx.categorical,
                                         bins=bins, confidence=self.confidence, sample=plot_rows,
                                         group=group)
                        for f in ctx.features]
        patterns.sort(key=lambda p: (-p.strength, p.p_value, p.feature))

        min_leaf = max(self.min_leaf_rows, int(math.ceil(self.min_leaf_share * n / 2)))
        tree = surrogate_tree(X, res.class_residual if multi else res.residual, categorical=ctx.categorical,
                              rng=ctx.rng(self.id + ":tree"), max_depth=self.tree_depth, min_leaf=min_leaf,
                              confidence=self.confidence)
        # plots: the tree's features first (most important first), then the strongest patterns
        by_name = {p.feature: p for p in patterns}
        chosen = [by_name[f] for f in (tree.features if tree and tree.p_value < self.alpha else ()) if f in by_name]
        chosen += [p for p in patterns if p not in chosen]
        plot_patterns = tuple(chosen[: self.max_plot_features])

        hetero = heteroscedasticity(res.residual, res.prediction) if task == "regression" else None
        outl = outliers(res, z=self.outlier_z, confident_p=self.confident_p)
        reference = ctx.X("train") if ctx.has_train else None
        suspects = scan_suspects(X, res.error_size, numeric=ctx.numeric, categorical=ctx.categorical,
                                 reference=reference, worst_share=self.worst_share, range_margin=self.range_margin)

        order = np.argsort(-res.error_size, kind="stable")[: self.n_worst]
        contributions, shap_error = None, ""
        if self.explain_worst and len(order):
            src = ctx.X("train") if ctx.has_train else X_all
            bg_idx = np.sort(ctx.rng(self.id + ":background").choice(
                len(src), size=min(len(src), self.shap_background), replace=False))
            feats = list(ctx.features)
            fn = ((lambda Z: np.asarray(ctx.predict_frame(Z[feats]).proba, dtype=float)) if multi
                  else ctx.score_fn())
            try:
                contributions = row_drivers(fn, X.iloc[order], res.y[order], src.iloc[bg_idx],
                                            task=task, categorical=ctx.categorical, seed=ctx.seed)
            except Exception as exc:  # noqa: BLE001 - explanations are a bonus; keep the rest
                shap_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        id_col = ctx.config.data.id
        labels = (ctx.frame("test")[id_col].iloc[idx] if id_col and id_col in ctx.frame("test").columns
                  else pd.Series(X.index, index=X.index))
        value_features = self._value_features(contributions, plot_patterns, patterns)
        worst = []
        raw_y = ctx.y("test")
        records = X.iloc[order].to_dict("records")
        for rank, pos in enumerate(order):
            pos = int(pos)
            row = records[rank]
            pushes: tuple[tuple[str, str, float], ...] = ()
            raises: tuple[tuple[str, str, float], ...] = ()
            if contributions is not None:
                pushes = tuple((f, _value_text(row[f]), c) for f, c in contributions.top_prediction(rank))
                raises = tuple((f, _value_text(row[f]), c) for f, c in contributions.top_loss(rank))
            actual: Any = raw_y[idx[pos]]
            predicted_class: Any = None
            if multi:
                p_true = float(res.p_true[pos])
                predicted_class = ctx.classes[int(res.pred_class[pos])]
            else:
                p_true = float(res.prediction[pos] if res.y[pos] == 1 else 1 - res.prediction[pos])
            worst.append(WorstRow(
                position=pos, label=str(labels.iloc[pos]), actual=actual, predicted=float(res.prediction[pos]),
                residual=float(res.residual[pos]) if task == "regression" else p_true, loss=float(res.loss[pos]),
                flags=suspects.flags[pos], pushes=pushes, raises=raises,
                values=tuple((f, _value_text(row[f])) for f in value_features), predicted_class=predicted_class))
        sd = float(res.residual.std(ddof=1)) if n > 1 else float("nan")
        if multi:  # the summed variance of the class indicators (Gini impurity): Brier skill, as in binary
            onehot = res.class_residual + res.proba
            target_var = float(np.var(onehot, axis=0, ddof=1).sum()) if n > 1 else float("nan")
        else:
            target_var = float(np.var(res.y, ddof=1)) if n > 1 else float("nan")
        return ResidualMeasurement(
            task=task, n=n, n_total=n_total, features=tuple(ctx.features), residuals=res,
            prediction_pattern=prediction_pattern, patterns=tuple(patterns), plot_patterns=plot_patterns,
            tree=tree, hetero=hetero, outliers=outl, suspects=suspects, worst=tuple(worst),
            contributions=contributions, shap_error=shap_error, plot_rows=plot_rows, residual_sd=sd,
            target_var=target_var, bias_p_adjusted=bias_adj,
            classes=tuple(ctx.classes) if multi else ())

    @staticmethod
    def _value_features(contrib: RowDrivers | None, plot_patterns: tuple[ResidualPattern, ...],
                        patterns: list[ResidualPattern], k: int = 8) -> tuple[str, ...]:
        """Columns of the worst-rows value table: features that drive the worst rows' loss first."""
        chosen: list[str] = []
        if contrib is not None:
            total = np.abs(contrib.prediction).sum(axis=0) + np.clip(contrib.loss, 0, None).sum(axis=0)
            for j in sorted(range(len(contrib.features)), key=lambda j: (-total[j], contrib.features[j])):
                if total[j] > 0:
                    chosen.append(contrib.features[j])
        for p in list(plot_patterns) + list(patterns):
            if p.feature not in chosen:
                chosen.append(p.feature)
        return tuple(chosen[:k])

    # ---- judge -----------------------------------------------------------------------------------
    @staticmethod
    def structure_gain(m: ResidualMeasurement) -> float:
        """The structured part of the residuals as a share of the target's variance: how much R²
        (or Brier skill) fixing it would add. Tiny for a near-perfect model, however structured."""
        if m.tree is None or not (m.target_var > 0):
            return 0.0
        r = m.residuals
        if m.task == "multiclass" and r.class_residual is not None:
            return float(m.tree.explained * np.var(r.class_residual, axis=0, ddof=1).sum() / m.target_var)
        return float(m.tree.explained * np.var(r.residual, ddof=1) / m.target_var)

    def judge(self, m: ResidualMeasurement) -> list[Finding]:
        out: list[Finding] = []
        t = m.tree
        gain = self.structure_gain(m)
        if t is not None and t.p_value < self.alpha and t.explained >= self.structure_medium and t.features \
                and gain >= self.structure_min_gain:
            # high only when the interval's lower end clears the high cut
            sev = Severity.HIGH if t.explained_low >= self.structure_high else Severity.MEDIUM
            biased = sorted((lf for lf in t.leaves if lf.p_adjusted < self.alpha and lf.n > 0),
                            key=lambda lf: -abs(lf.mean) * lf.n)
            multi = m.task == "multiclass"
            if biased and multi:
                b = biased[0]
                cname = m.classes[b.klass] if 0 <= b.klass < len(m.classes) else "?"
                worst_leaf = (f" The most biased region on held-out rows is `{b.rule}` ({b.n} rows): class "
                              f"{cname!s} occurs {'more' if b.mean > 0 else 'less'} often than predicted (observed "
                              f"minus predicted rate {b.mean:+.3g}, 95% CI {b.low:+.3g} to {b.high:+.3g}).")
            else:
                worst_leaf = (f" The most biased region on held-out rows is `{biased[0].rule}` ({biased[0].n} rows, "
                              f"mean residual {biased[0].mean:+.3g})." if biased else "")
            names = ", ".join(t.features)
            what = "per-class residuals (actual minus predicted rate of each class)" if multi else "residuals"
            scale = ("of the class indicators' summed variance" if multi else "of the target's variance")
            rule_txt = (f"Rule: medium when the held-out share explained is at least {self.structure_medium:.0%} "
                        f"with a one-sided t-test p-value of the per-row gain below {self.alpha} ({_p(t.p_value)}) "
                        f"and the structured part is at least {self.structure_min_gain:.0%} {scale}; high when the "
                        f"lower end of the share's {self.confidence:.0%} interval "
                        f"[{t.explained_low:.1%}, {t.explained_high:.1%}] is at least {self.structure_high:.0%}.")
            out.append(Finding(
                id=f"{self.id}/structure", check=self.id, severity=sev,
                title=f"Residuals are structured: a depth-{t.max_depth} tree on {names} explains "
                      f"{t.explained:.0%} of {'per-class residual' if multi else 'residual'} variance",
                summary=(f"A shallow tree fitted to the {what} on half of the test rows explains {t.explained:.1%} "
                         f"of their variance on the other half ({_p(t.p_value)}), i.e. {gain:.1%} {scale}. The "
                         f"model misses a pattern involving {names}.{worst_leaf} {rule_txt}"),
                rule=Rule("explained_share", t.explained, ">=",
                          self.structure_high if sev == Severity.HIGH else self.structure_medium,
                          interval=(t.explained_low, t.explained_high), p_value=t.p_value, text=rule_txt),
                features=t.features,
                metrics={"explained_share": t.explained, "target_variance_share": gain, "p_value": t.p_value,
                         "biased_leaves": len(biased)},
                remediation=("Inspect the surrogate-tree rules and the residual plots for these features: the "
                             "model's functional form misses this relationship (e.g. an interaction, a "
                             "non-linearity or a segment with different behaviour).",
                             "Add the missing feature or interaction, or use a more flexible model, then "
                             "re-audit; check the segments listed by residual.segments."),
                evidence=("surrogate_rules", "residuals_by_feature")))
        h = m.hetero
        if h is not None and math.isfinite(h.rho) and h.p_value < self.alpha and abs(h.rho) >= self.hetero_min_rho:
            direction = "grows" if h.rho > 0 else "shrinks"
            out.append(Finding(
                id=f"{self.id}/heteroscedasticity", check=self.id, severity=Severity.MEDIUM,
                title=f"Residual spread {direction} with the prediction (Spearman rho {h.rho:+.2f})",
                summary=(f"The size of the error {direction} with the predicted value: Spearman rank correlation of "
                         f"|residual| with the prediction is {h.rho:+.2f} ({_p(h.p_value)}); the residual SD in the "
                         f"top fifth of predictions is {h.spread_ratio:.2f}x that in the bottom fifth. A single "
                         f"error figure (RMSE) misstates the uncertainty of individual predictions."),
                metrics={"spearman_rho": h.rho, "p_value": h.p_value, "spread_ratio": h.spread_ratio},
                remediation=("Report prediction intervals that depend on the predicted value (e.g. quantile "
                             "regression or conformal intervals by prediction level) rather than one RMSE.",
                             "Consider modelling a transformed target (e.g. log) if errors are proportional."),
                evidence=("residuals_vs_prediction",)))
        if m.task == "regression" and m.residual_sd > 0:
            pp = m.prediction_pattern
            bad = [i for i in range(len(pp.labels))
                   if m.bias_p_adjusted[i] < self.alpha and pp.count[i] >= self.min_bin_rows
                   and abs(pp.mean[i]) >= self.bias_min_effect * m.residual_sd]
            if bad:
                worst = max(bad, key=lambda i: abs(pp.mean[i]))
                ranges = "; ".join(f"prediction {pp.labels[i]}: mean residual {pp.mean[i]:+.3g}" for i in bad[:4])
                out.append(Finding(
                    id=f"{self.id}/bias_by_prediction", check=self.id, severity=Severity.MEDIUM,
                    title=f"Systematic bias in {len(bad)} of {len(pp.labels)} prediction bins",
                    summary=(f"The mean residual is significantly non-zero (BH-adjusted, alpha {self.alpha}) and at "
                             f"least {self.bias_min_effect} residual SDs in part of the prediction range: {ranges}. "
                             f"Positive means the model under-predicts there."),
                    metrics={"biased_bins": len(bad), "max_abs_bias": float(abs(pp.mean[worst])),
                             "max_abs_bias_sd": float(abs(pp.mean[worst]) / m.residual_sd),
                             "p_adjusted": float(m.bias_p_adjusted[worst])},
                    remediation=("Recalibrate the predictions (e.g. isotonic regression of actual on predicted) or "
                                 "fix the model's shrinkage toward the mean in the affected range.",),
                    evidence=("prediction_bins", "residuals_vs_prediction")))
        o = m.outliers
        if o.kind == "robust_z" and o.count > 0 and o.error_share >= self.outlier_min_share:
            sev = Severity.MEDIUM if o.error_share >= self.outlier_error_share else Severity.LOW
            out.append(Finding(
                id=f"{self.id}/outliers", check=self.id, severity=sev,
                title=f"{o.count} outlying residuals carry {o.error_share:.0%} of the squared error",
                summary=(f"{o.count} rows ({o.share:.2%}) have a residual more than {o.threshold:g} robust SDs "
                         f"(median/MAD) from the median; together they account for {o.error_share:.1%} of the "
                         f"squared error, so RMSE is driven by a few rows. See the worst-rows table for their "
                         f"values and flags."),
                metrics={"rows": o.count, "share": o.share, "error_share": o.error_share},
                remediation=("Check these rows for data errors (see the flags in the worst-rows table) before "
                             "trusting RMSE; report a robust error metric (MAE, median absolute error) as well.",),
                evidence=("worst_rows",)))
        if (o.kind == "confident_errors" and o.count >= self.min_confident_errors and o.p_value < self.alpha):
            out.append(Finding(
                id=f"{self.id}/confident_errors", check=self.id, severity=Severity.MEDIUM,
                title=f"{o.count} confident errors (true class given < {o.threshold:g}); calibration implies "
                      f"{o.expected:.1f}",
                summary=(f"{o.count} rows ({o.share:.2%}) got a probability below {o.threshold:g} for their actual "
                         f"class; a calibrated model with these predictions would produce about {o.expected:.1f} "
                         f"({_p(o.p_value)}, Poisson). They carry {o.error_share:.0%} of the total log loss. "
                         f"Medium when at least {self.min_confident_errors} such rows and the one-sided Poisson "
                         f"p-value is below {self.alpha}."),
                rule=Rule("confident_errors", o.count, ">", o.expected, p_value=o.p_value,
                          text=f"count above the calibrated expectation, one-sided Poisson p < {self.alpha}"),
                metrics={"rows": o.count, "expected": o.expected, "p_value": o.p_value,
                         "loss_share": o.error_share},
                remediation=("Inspect these rows (worst-rows table) for label or data errors; if they are genuine, "
                             "the model is over-confident: calibrate it or regularise it more.",),
                evidence=("worst_rows",)))
        for s in m.suspects.suspects:
            if s.p_adjusted < self.alpha and s.n_worst >= self.min_suspect_rows:
                out.append(Finding(
                    id=f"{self.id}/data_quality/{s.column}/{s.kind}", check=self.id, severity=Severity.MEDIUM,
                    title=f"Data-quality suspect among the worst rows: {s.column} ({s.description.split(';')[0]})",
                    summary=(f"`{s.column}` has {s.description} in {s.n_worst} of the {s.worst_rows} rows with the "
                             f"largest errors, against {s.n_rest} of the other {s.rest_rows} rows (Fisher "
                             f"{_p(s.p_value)}). The model's biggest mistakes coincide with suspicious input "
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

    # ---- evidence --------------------------------------------------------------------------------
    def evidence(self, m: ResidualMeasurement) -> Evidence:
        from ..plots.residuals import residuals_by_feature, residuals_vs_prediction

        res = m.residuals
        multi = m.task == "multiclass"
        cls = m.task != "regression"
        metrics: dict[str, Any] = {"rows": m.n}
        if cls:
            metrics["mean_log_loss"] = float(res.loss.mean())
            metrics["mean_residual"] = float(res.residual.mean())
        if multi and res.pred_class is not None:
            metrics["accuracy"] = float(np.mean(res.pred_class == res.y.astype(int)))
            metrics["classes"] = len(m.classes)
        else:
            metrics["mean_residual"] = float(res.residual.mean())
            metrics["residual_sd"] = m.residual_sd
        if m.tree is not None:
            metrics["tree_explained_share"] = m.tree.explained
            metrics["tree_p_value"] = m.tree.p_value
        if m.hetero is not None:
            metrics["hetero_spearman_rho"] = m.hetero.rho
            metrics["hetero_p_value"] = m.hetero.p_value
        metrics["outliers" if not cls else "confident_errors"] = m.outliers.count

        tables: list[Table] = []
        if m.tree is not None:
            recs = [{"rule": lf.rule, "rows_fit": lf.n_fit, "rows_heldout": lf.n,
                     **({"class": str(m.classes[lf.klass]) if 0 <= lf.klass < len(m.classes) else ""}
                        if multi else {}),
                     "mean_residual": lf.mean, "ci_low": lf.low, "ci_high": lf.high, "p_adjusted": lf.p_adjusted}
                    for lf in sorted(m.tree.leaves, key=lambda lf: (-abs(lf.mean) if math.isfinite(lf.mean) else 0,
                                                                    lf.rule))]
            tables.append(Table.from_records(
                "surrogate_rules", "Surrogate tree of the residuals: one rule per leaf", recs,
                caption=(f"Depth-{m.tree.max_depth} tree (min. {m.tree.min_leaf} rows per leaf) fitted to the "
                         f"residuals ({'per class: 1 if the actual class - its predicted probability; multi-output, each leaf shows its most significant class' if multi else 'actual - P(positive)' if cls else 'actual - predicted'}) on {m.tree.n_fit} "
                         f"rows; row counts, mean residual, CI and BH-adjusted p-value (mean = 0) on the "
                         f"{m.tree.n_eval} held-out rows. Held-out share of residual variance explained "
                         f"(cross-fitted): {m.tree.explained:.1%}, {_p(m.tree.p_value)}.")))
        worst_recs = []
        for w in m.worst:
            rec: dict[str, Any] = {"row": w.label, "actual": _value_text(w.actual)}
            if multi:
                rec["predicted"] = _value_text(w.predicted_class)
                rec["p_predicted"] = w.predicted
                rec["p_actual_class"] = w.residual
                rec["log_loss"] = w.loss
            elif cls:
                rec["p_positive"] = w.predicted
                rec["p_actual_class"] = w.residual
                rec["log_loss"] = w.loss
            else:
                rec["predicted"] = w.predicted
                rec["residual"] = w.residual
                rec["std_residual"] = w.residual / m.residual_sd if m.residual_sd > 0 else None
            rec["flags"] = "; ".join(w.flags)
            if m.contributions is not None:
                rec["pushes_prediction"] = "; ".join(f"{f} = {v} ({c:+.3g})" for f, v, c in w.pushes)
                rec["raises_error"] = ("; ".join(f"{f} = {v} ({c:+.3g})" for f, v, c in w.raises)
                                       or "none of the features")
            worst_recs.append(rec)
        if worst_recs:
            shap_text = ("SHAP against "
                         f"{m.contributions.n_background} background rows: pushes_prediction lists the 3 largest "
                         f"contributions to the {'P(actual class)' if multi else 'P(positive)' if cls else 'prediction'}; raises_error the features "
                         f"that raise the row's {'log loss' if cls else 'squared error'} most ('none of the features' "
                         f"points to a cause outside the model's inputs)." if m.contributions is not None else
                         ("Drivers not computed" + (f" ({m.shap_error})" if m.shap_error else "") + "."))
            tables.append(Table.from_records(
                "worst_rows", f"The {len(worst_recs)} rows with the largest errors", worst_recs,
                caption=f"Flags mark values that are negative, outside the train range, missing or unseen. {shap_text}"))
            vf = [f for f, _ in m.worst[0].values]
            tables.append(Table.from_records(
                "worst_rows_values", "Feature values of the worst rows",
                [{"row": w.label, **dict(w.values)} for w in m.worst], columns=["row", *vf],
                caption=f"The {len(vf)} features that drive these rows' errors most (of {len(m.features)})."))
        tables.append(Table.from_records(
            "feature_patterns", "Strength of the residual pattern by feature",
            [{"feature": p.feature, "kind": "categorical" if p.categorical else "numeric",
              **({"class": p.target_class} if multi else {}), "epsilon_squared": p.strength,
              "p_value": p.p_value,
              "max_abs_bin_mean": float(np.nanmax(np.abs(p.mean))) if np.isfinite(p.mean).any() else None}
             for p in m.patterns],
            caption="Epsilon-squared of a one-way ANOVA of the residual on the feature's deciles or levels."
                    + (" k classes: the residual 1{actual = class} - P(class) of the class with the strongest "
                       "pattern." if multi else ""),
            max_rows=15))
        if not cls:
            pp = m.prediction_pattern
            tables.append(Table.from_records(
                "prediction_bins", "Residuals by prediction decile",
                [{"prediction": pp.labels[i], "rows": int(pp.count[i]), "mean_residual": pp.mean[i],
                  "ci_low": pp.low[i], "ci_high": pp.high[i], "residual_sd": pp.sd[i],
                  "p_adjusted": float(m.bias_p_adjusted[i])} for i in range(len(pp.labels))],
                caption="Mean residual (actual - predicted) per decile of the prediction with 95% CI; "
                        "p-values test mean = 0, BH-adjusted over the deciles."))
        sus = [s for s in m.suspects.suspects if s.n_worst > 0]
        if sus:
            tables.append(Table.from_records(
                "data_quality", "Suspicious values among the worst rows",
                [{"column": s.column, "issue": s.description, "rows_among_worst": s.n_worst,
                  "rows_elsewhere": s.n_rest, "p_adjusted": s.p_adjusted} for s in sus],
                caption=(f"Worst rows: the {m.suspects.worst_rows} largest errors ({m.suspects.worst_share:.0%}); "
                         f"reference for ranges: {m.suspects.reference}. One-sided Fisher test, BH-adjusted."),
                max_rows=15))

        pr = m.plot_rows
        if multi:  # log loss against the predicted class's probability, by right / wrong prediction
            right = (res.pred_class == res.y.astype(int)).astype(int)
            fig1 = residuals_vs_prediction(
                task=m.task, prediction=res.prediction[pr], residual=res.loss[pr], group=right[pr],
                binned=m.prediction_pattern, hist_values=res.residual, hist_group=right, n_total=m.n)
        else:
            fig1 = residuals_vs_prediction(
                task=m.task, prediction=res.prediction[pr], residual=(res.deviance if cls else res.residual)[pr],
                group=res.y[pr].astype(int) if cls else np.zeros(len(pr)), binned=m.prediction_pattern,
                hist_values=res.deviance if cls else res.standardized,
                hist_group=res.y.astype(int) if cls else np.zeros(len(res.y)), n_total=m.n)
        figures = [fig1]
        if m.plot_patterns:
            figures.append(residuals_by_feature(m.plot_patterns, task=m.task))

        notes = [f"{m.n:,} test rows analysed" + (f" (a seeded sample of {m.n_total:,})" if m.n < m.n_total else "")
                 + f"; scatter plots show {len(pr):,} sampled rows.",
                 "Residual: " + (f"{len(m.classes)}-class model: loss = -log p(actual class) (k-class log loss); "
                                 "residual = loss minus its expectation under the predicted distribution (excess "
                                 "log loss; zero on average where the model is calibrated, positive where it does "
                                 "worse than it claims), used by prediction (the predicted class's probability) and "
                                 "to rank the worst rows. By feature and in the surrogate tree: the per-class residual "
                                 "1{actual = j} - P(j) (the k-class form of actual - P; the log loss alone is blind "
                                 "where the model's distribution is flat); the structure share is scaled by the "
                                 "summed variance of the class indicators." if multi else
                                 "actual (1 = positive class) - predicted probability; loss: -log p(actual class); "
                                 "deviance residual: sign(residual) * sqrt(2 * loss)." if cls else
                                 "actual - predicted; standardized: divided by the residual SD.")]
        if m.tree is not None:
            notes.append(f"Surrogate tree: depth {m.tree.max_depth}, min. {m.tree.min_leaf} rows per leaf, fitted on "
                         f"a random half and evaluated on the other (cross-fitted share explained).")
        if m.contributions is not None:
            c = m.contributions
            notes.append(("SHAP of P(actual class) and of its log loss" if multi else "SHAP") +
                         f" (permutation, model-agnostic) on the {len(m.worst)} worst rows only: "
                         f"{c.n_background} background rows, max_evals {c.max_evals}, {c.n_model_rows:,} model rows "
                         f"scored.")
        elif m.shap_error:
            notes.append(f"SHAP drivers failed: {m.shap_error}")
        return Evidence(metrics=metrics, tables=tuple(tables), figures=tuple(figures), notes=tuple(notes))


# ==== residual.segments ==========================================================================

@dataclass(frozen=True)
class SegmentMeasurement:
    search: SegmentSearch
    n_total: int
    n_classes: int = 0  # classification: the number of classes (k > 2: k-class log loss and accuracy)


@dataclass
class WeakSegmentsCheck(Check):
    """Segments (one feature's level or quantile bin, or a pair of them) whose per-row loss (log
    loss or absolute error) is significantly worse than rows with a similar prediction outside the
    segment: one-sided Welch t-test, Benjamini-Hochberg over every segment tested (FDR ``alpha``),
    at least ``min_excess`` of the overall mean loss, at least max(``min_support_rows``,
    ``min_support_share`` of test rows) rows. Each reported segment is medium; **high** when it
    holds at least ``high_min_share`` of the rows and the model fails there: regression MAE at least
    ``high_mae_ratio`` x overall, classification accuracy at or below the segment's majority-class
    rate or AUC at most ``high_max_auc``, while the model does well overall (AUC >= ``good_auc`` or
    accuracy >= majority rate + ``good_accuracy_lift``).
    """

    id: ClassVar[str] = "residual.segments"
    family = RESIDUAL
    order = 2
    title: ClassVar[str] = "Weak segments"

    alpha: float = 0.05
    confidence: float = 0.95
    bins: int = 5
    pair_bins: int = 3
    pairs: bool = True
    max_pair_features: int = 15
    min_support_rows: int = 30
    min_support_share: float = 0.02
    min_excess: float = 0.2
    pair_gain: float = 1.5
    prediction_bins: int = 10
    max_segments: int = 10
    high_min_share: float = 0.05
    high_mae_ratio: float = 2.0
    high_max_auc: float = 0.55
    good_auc: float = 0.7
    good_accuracy_lift: float = 0.05
    underrep_ratio: float = 0.5
    max_rows: int = 200_000

    def skip_reason(self, ctx: AuditContext) -> str | None:
        return unknown_class_reason(ctx)

    def measure(self, ctx: AuditContext) -> SegmentMeasurement:
        X = ctx.X("test")
        n_total = len(X)
        cls = ctx.is_classification
        multi = ctx.is_multiclass

        def target(split: str) -> np.ndarray:
            if multi:
                return ctx.y_index(split)  # type: ignore[arg-type]
            return ctx.y_binary(split) if cls else ctx.y(split).astype(float)  # type: ignore[arg-type]

        def scores(split: str) -> np.ndarray:
            p = ctx.predictions(split)  # type: ignore[arg-type]
            return np.asarray(p.proba, dtype=float) if multi else p.score  # k classes: the n x k matrix

        y = target("test")
        score = scores("test")
        if n_total > self.max_rows:
            idx = np.sort(ctx.rng(self.id).choice(n_total, size=self.max_rows, replace=False))
            X, y, score = X.iloc[idx], y[idx], score[idx]
        kw: dict[str, Any] = {}
        if ctx.has_train:
            kw = {"X_train": ctx.X("train"), "y_train": target("train"), "score_train": scores("train")}
        search = find_weak_segments(
            X, y, score, task=ctx.task, categorical=ctx.categorical, threshold=ctx.threshold, bins=self.bins,
            pair_bins=self.pair_bins, pairs=self.pairs, max_pair_features=self.max_pair_features,
            min_support=max(self.min_support_rows, int(math.ceil(self.min_support_share * len(X)))),
            alpha=self.alpha, min_excess=self.min_excess, pair_gain=self.pair_gain,
            max_segments=self.max_segments, prediction_bins=self.prediction_bins,
            underrep_ratio=self.underrep_ratio, confidence=self.confidence, **kw)
        return SegmentMeasurement(search=search, n_total=n_total, n_classes=ctx.n_classes if cls else 0)

    def severity(self, s: WeakSegment, search: SegmentSearch, n_classes: int = 2) -> Severity:
        if s.share < self.high_min_share:
            return Severity.MEDIUM
        o = search.overall
        if search.task == "regression":
            if o.mae is not None and s.test.mae is not None and o.mae.value > 0 \
                    and s.test.mae.value >= self.high_mae_ratio * o.mae.value:
                return Severity.HIGH
            return Severity.MEDIUM
        t = s.test
        if n_classes > 2:
            # k classes: the model is good overall (accuracy's lower bound beats the majority rate by
            # the lift) and fails in the segment (accuracy's upper bound at most the segment's majority rate)
            good = (o.accuracy is not None and o.majority_rate is not None and math.isfinite(o.accuracy.low)
                    and o.accuracy.low >= o.majority_rate + self.good_accuracy_lift)
            fails = (t.accuracy is not None and t.majority_rate is not None and math.isfinite(t.accuracy.high)
                     and t.accuracy.high <= t.majority_rate)
            return Severity.HIGH if good and fails else Severity.MEDIUM
        good = ((o.auc is not None and o.auc.value >= self.good_auc)
                or (o.accuracy is not None and o.majority_rate is not None
                    and o.accuracy.value >= o.majority_rate + self.good_accuracy_lift))
        fails = ((t.accuracy is not None and t.majority_rate is not None and t.accuracy.value <= t.majority_rate)
                 or (t.auc is not None and t.auc.value <= self.high_max_auc))
        return Severity.HIGH if good and fails else Severity.MEDIUM

    def judge(self, m: SegmentMeasurement) -> list[Finding]:
        search = m.search
        out = []
        for s in search.segments:
            out.append(self._finding(s, search, self.severity(s, search, m.n_classes), m.n_classes))
        return out

    def _finding(self, s: WeakSegment, search: SegmentSearch, sev: Severity, n_classes: int = 2) -> Finding:
        cls = search.task == "classification"
        multi = cls and n_classes > 2
        o, t = search.overall, s.test
        metrics: dict[str, Any] = {"rows": s.n, "share": s.share, "relative_excess_loss": s.relative_excess,
                                   "p_adjusted": s.p_adjusted}
        if cls:
            kc = f"{n_classes}-class " if multi else ""
            perf = (f"{kc}accuracy {t.accuracy.value:.1%} (95% CI {t.accuracy.low:.1%}-{t.accuracy.high:.1%}) vs "
                    f"{o.accuracy.value:.1%} overall; {kc}log loss {t.log_loss.value:.3f} vs {o.log_loss.value:.3f}")
            if t.auc is not None:
                perf += f"; AUC {t.auc.value:.3f} (CI {t.auc.low:.3f}-{t.auc.high:.3f})"
                if o.auc is not None:
                    perf += f" vs {o.auc.value:.3f}"
            perf += f"; majority-class rate in the segment {t.majority_rate:.1%}"
            headline = f"accuracy {t.accuracy.value:.0%} vs {o.accuracy.value:.0%} overall"
            metrics.update({"accuracy": t.accuracy.value, "accuracy_overall": o.accuracy.value,
                            "log_loss": t.log_loss.value, "log_loss_overall": o.log_loss.value,
                            "majority_rate": t.majority_rate,
                            "auc": t.auc.value if t.auc is not None else None,
                            "auc_overall": o.auc.value if o.auc is not None else None})
        else:
            ratio = t.mae.value / o.mae.value if o.mae.value > 0 else float("inf")
            perf = (f"MAE {t.mae.value:.4g} (95% CI {t.mae.low:.4g}-{t.mae.high:.4g}) vs {o.mae.value:.4g} overall "
                    f"({ratio:.1f}x); RMSE {t.rmse.value:.4g} vs {o.rmse.value:.4g}; mean residual "
                    f"{t.bias.value:+.4g}")
            headline = f"MAE {ratio:.1f}x overall"
            metrics.update({"mae": t.mae.value, "mae_overall": o.mae.value, "mae_ratio": ratio,
                            "rmse": t.rmse.value, "rmse_overall": o.rmse.value, "mean_residual": t.bias.value})
        train_txt = ""
        remediation: list[str] = []
        if s.share_train is not None:
            metrics["share_train"] = s.share_train
            train_txt = f" In train the segment is {s.share_train:.1%} of rows ({s.n_train}) vs {s.share:.1%} of test"
            train_txt += " (under-represented)." if s.underrepresented else "."
            if s.underrepresented:
                remediation.append(f"Collect more representative training data for `{s.definition}` (or up-weight "
                                   f"it): it is {s.share_train:.1%} of train but {s.share:.1%} of test.")
        tr, otr = s.train, search.overall_train
        loss_of = (lambda x: x.log_loss.value) if cls else (lambda x: x.mae.value)
        if tr is not None and otr is not None and s.n_train and s.n_train >= 30:
            tr_ratio = loss_of(tr) / loss_of(otr) if loss_of(otr) > 0 else float("inf")
            metrics["train_loss_ratio"] = tr_ratio
            if tr_ratio < 1.25:
                remediation.append("On train the model does about as well on this segment as elsewhere, but not on "
                                   "test: check for drift or label changes in the segment between train and test, "
                                   "and for over-fitting.")
            else:
                remediation.append("The model is also weak on this segment in train: add a feature or interaction "
                                   "that captures what differs here, or fit a separate model for the segment.")
        if not any("separate model" in r for r in remediation):
            remediation.append("If the segment behaves differently by nature, add a segment-specific feature or "
                                "consider a separate model for it; monitor its error after deployment.")
        slug = s.definition.replace(" ", "")
        loss_name = ("k-class log loss" if multi else "log loss") if cls else "absolute error"
        if sev == Severity.HIGH and multi:
            rule_txt = (f" High: the segment holds at least {self.high_min_share:.0%} of rows, its accuracy's upper "
                        f"95% bound {t.accuracy.high:.1%} is at most its majority-class rate {t.majority_rate:.1%}, "
                        f"and overall accuracy's lower bound {o.accuracy.low:.1%} beats the overall majority rate "
                        f"by at least {self.good_accuracy_lift:.0%}.")
            rule = Rule("accuracy_ci_high", t.accuracy.high, "<=", t.majority_rate,
                        interval=(t.accuracy.low, t.accuracy.high), p_value=s.p_adjusted,
                        text=rule_txt.strip())
        else:
            rule_txt = ""
            rule = Rule("p_adjusted", s.p_adjusted, "<", self.alpha, p_value=s.p_adjusted,
                        text=(f"Reported when the BH-adjusted one-sided Welch p-value of the excess {loss_name} is "
                              f"below {self.alpha} and the excess is at least {self.min_excess:.0%} of the mean; "
                              f"severity {sev.value}."))
        return Finding(
            id=f"{self.id}/{slug}", check=self.id, severity=sev,
            title=f"Weak segment `{s.definition}` ({s.share:.1%} of rows): {headline}",
            summary=(f"On the {s.n} test rows where {s.definition}: {perf}. Its per-row "
                     f"{loss_name} exceeds that of rows with similar predictions by "
                     f"{s.relative_excess:.0%} of the overall mean (Welch one-sided, BH-adjusted "
                     f"{_p(s.p_adjusted)}, {search.n_tested} segments tested).{train_txt}{rule_txt}"),
            features=tuple(dict.fromkeys(s.features)), groups=s.groups, metrics=metrics,
            remediation=tuple(remediation), evidence=("weak_segments",), rule=rule)

    def evidence(self, m: SegmentMeasurement) -> Evidence:
        from ..plots.residuals import segment_chart

        search = m.search
        cls = search.task == "classification"
        o = search.overall
        metrics: dict[str, Any] = {"rows": search.n, "segments_tested": search.n_tested,
                                   "segments_significant": search.n_significant,
                                   "segments_reported": len(search.segments), "min_support": search.min_support}
        if cls:
            metrics.update({"accuracy": o.accuracy.value, "log_loss": o.log_loss.value,
                            "auc": o.auc.value if o.auc is not None else None})
        else:
            metrics.update({"mae": o.mae.value, "rmse": o.rmse.value})
        recs = []
        for s in search.segments:
            t = s.test
            rec: dict[str, Any] = {"segment": s.definition, "rows": s.n, "share_test": s.share,
                                   "share_train": s.share_train}
            if cls:
                rec.update({"accuracy": t.accuracy.value, "accuracy_ci": _ci(t.accuracy),
                            "auc": t.auc.value if t.auc is not None else None,
                            "log_loss": t.log_loss.value})
            else:
                rec.update({"mae": t.mae.value, "mae_ci": _ci(t.mae), "rmse": t.rmse.value,
                            "mean_residual": t.bias.value})
            rec.update({"excess": s.relative_excess, "p_adjusted": s.p_adjusted})
            recs.append(rec)
        overall_txt = (f"overall accuracy {o.accuracy.value:.3f}, log loss {o.log_loss.value:.3f}"
                       + (f", AUC {o.auc.value:.3f}" if o.auc is not None else "")) if cls else \
            f"overall MAE {o.mae.value:.4g}, RMSE {o.rmse.value:.4g}"
        tables = () if not recs else (Table.from_records(
            "weak_segments", "Segments with significantly worse error", recs,
            caption=(f"{overall_txt}. Excess: mean per-row {'log loss' if cls else 'absolute error'} above rows with "
                     f"similar predictions, as a share of the overall mean. p: one-sided Welch, BH-adjusted over "
                     f"{search.n_tested} segments.")),)
        figures = (segment_chart(search),) if search.segments else ()
        notes = [
            f"{search.n:,} test rows" + (f" (a seeded sample of {m.n_total:,})" if search.n < m.n_total else "")
            + f"; {search.n_single_tested} single-feature segments ({search.bins} quantile bins or levels) and "
              f"{search.n_pair_tested} pair segments ({search.pair_bins} bins, {len(search.pair_features)} features) "
              f"with at least {search.min_support} rows tested; {search.n_significant} significant at FDR "
              f"{search.alpha}, {len(search.segments)} reported after removing nested and overlapping ones.",
            "Tested quantity: per-row " + (("k-class log loss -log p(true class) minus its expectation under the "
                                            "predicted distribution (its entropy); prediction bins by the predicted "
                                            "class's probability" if m.n_classes > 2 else
                                            "log loss minus its expectation under the predicted probability")
                                           if cls else "absolute error")
            + f", centred within {search.prediction_bins} prediction quantile bins, so segments are compared with "
              f"rows that got similar predictions.",
            "Confidence intervals: Wilson (accuracy), Hanley-McNeil (AUC), t (mean losses)."]
        if m.n_classes > 2:
            notes.append(f"{m.n_classes}-class model: accuracy is that of the most probable class, log loss the "
                         "k-class log loss; no per-segment AUC.")
        return Evidence(metrics=metrics, tables=tables, figures=figures, notes=tuple(notes))


def _ci(iv: Any) -> str:
    return f"{iv.low:.3g} - {iv.high:.3g}" if iv is not None and math.isfinite(iv.low) else ""
