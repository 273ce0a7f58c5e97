"""The evidence of ``residual.analysis``: headline metrics, tables, figure specs and notes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ...analysis.residuals import WorstRow, value_text
from ...findings import Figure, Table
from ...wording import level, p_value

if TYPE_CHECKING:
    from .analysis import ResidualMeasurement


def metrics(m: ResidualMeasurement) -> dict[str, Any]:
    res = m.residuals
    cls = m.task != "regression"
    out: dict[str, Any] = {"rows": m.n}
    if cls:
        out["mean_log_loss"] = float(res.loss.mean())
        out["mean_residual"] = float(res.residual.mean())
    if m.task == "multiclass" and res.pred_class is not None:
        out["accuracy"] = float(np.mean(res.pred_class == res.y.astype(int)))
        out["classes"] = len(m.classes)
    else:
        out["mean_residual"] = float(res.residual.mean())
        out["residual_sd"] = m.residual_sd
    if m.tree is not None:
        out["tree_explained_share"] = m.tree.explained
        out["tree_p_value"] = m.tree.p_value
    if m.hetero is not None:
        out["hetero_spearman_rho"] = m.hetero.rho
        out["hetero_p_value"] = m.hetero.p_value
    out["outliers" if not cls else "confident_errors"] = m.outliers.count
    return out


def tables(m: ResidualMeasurement, confidence: float) -> tuple[Table, ...]:
    out = [t for t in (_surrogate_table(m),) if t is not None]
    out += _worst_tables(m)
    out.append(_feature_table(m))
    if m.task == "regression":
        out.append(_prediction_table(m, confidence))
    sus = _data_quality_table(m)
    if sus is not None:
        out.append(sus)
    return tuple(out)


_TREE_RESIDUAL = {"multiclass": "per class: 1 if the actual class - its predicted probability; multi-output, each "
                                "leaf shows its most significant class",
                  "classification": "actual - P(positive)", "regression": "actual - predicted"}


def _surrogate_table(m: ResidualMeasurement) -> Table | None:
    t = m.tree
    if t is None:
        return None
    multi = m.task == "multiclass"
    recs = [{"rule": lf.rule, "rows_fit": lf.n_fit, "rows_heldout": lf.n,
             **({"class": str(m.classes[lf.klass]) if 0 <= lf.klass < len(m.classes) else ""} if multi else {}),
             "mean_residual": lf.mean, "ci_low": lf.low, "ci_high": lf.high, "p_adjusted": lf.p_adjusted}
            for lf in sorted(t.leaves, key=lambda lf: (-abs(lf.mean) if math.isfinite(lf.mean) else 0, lf.rule))]
    return Table.from_records(
        "surrogate_rules", "Surrogate tree of the residuals: one rule per leaf", recs,
        caption=(f"Depth-{t.max_depth} tree (min. {t.min_leaf} rows per leaf) fitted to the residuals "
                 f"({_TREE_RESIDUAL[m.task]}) on {t.n_fit} rows; row counts, mean residual, CI and BH-adjusted "
                 f"p-value (mean = 0) on the {t.n_eval} held-out rows. Held-out share of residual variance "
                 f"explained (cross-fitted): {t.explained:.1%}, {p_value(t.p_value)}."))


def _worst_record(m: ResidualMeasurement, w: WorstRow) -> dict[str, Any]:
    rec: dict[str, Any] = {"row": w.label, "actual": value_text(w.actual)}
    if m.task == "multiclass":
        rec.update({"predicted": value_text(w.predicted_class), "p_predicted": w.predicted,
                    "p_actual_class": w.residual, "log_loss": w.loss})
    elif m.task == "classification":
        rec.update({"p_positive": w.predicted, "p_actual_class": w.residual, "log_loss": w.loss})
    else:
        sd = m.residual_sd
        rec.update({"predicted": w.predicted, "residual": w.residual,
                    "std_residual": w.residual / sd if sd > 0 else None})
    rec["flags"] = "; ".join(w.flags)
    if m.contributions is not None:
        rec["pushes_prediction"] = "; ".join(f"{f} = {v} ({c:+.3g})" for f, v, c in w.pushes)
        rec["raises_error"] = "; ".join(f"{f} = {v} ({c:+.3g})" for f, v, c in w.raises) or "none of the features"
    return rec


_EXPLAINED = {"multiclass": "P(actual class)", "classification": "P(positive)", "regression": "prediction"}


def _worst_tables(m: ResidualMeasurement) -> list[Table]:
    if not m.worst:
        return []
    cls = m.task != "regression"
    if m.contributions is not None:
        shap_text = (f"SHAP against {m.contributions.n_background} background rows: pushes_prediction lists the 3 "
                     f"largest contributions to the {_EXPLAINED[m.task]}; raises_error the features that raise the "
                     f"row's {'log loss' if cls else 'squared error'} most ('none of the features' points to a "
                     f"cause outside the model's inputs).")
    else:
        shap_text = "Drivers not computed" + (f" ({m.shap_error})" if m.shap_error else "") + "."
    vf = [f for f, _ in m.worst[0].values]
    return [Table.from_records(
                "worst_rows", f"The {len(m.worst)} rows with the largest errors",
                [_worst_record(m, w) for w in m.worst],
                caption=f"Flags mark values that are negative, outside the train range, missing or unseen. "
                        f"{shap_text}"),
            Table.from_records(
                "worst_rows_values", "Feature values of the worst rows",
                [{"row": w.label, **dict(w.values)} for w in m.worst], columns=["row", *vf],
                caption=f"The {len(vf)} features that drive these rows' errors most (of {len(m.features)}).")]


def _feature_table(m: ResidualMeasurement) -> Table:
    multi = m.task == "multiclass"
    return Table.from_records(
        "feature_patterns", "Strength of the residual pattern by feature",
        [{"feature": p.feature, "kind": "categorical" if p.categorical else "numeric",
          **({"class": p.target_class} if multi else {}), "epsilon_squared": p.strength, "p_value": p.p_value,
          "max_abs_bin_mean": float(np.nanmax(np.abs(p.mean))) if np.isfinite(p.mean).any() else None}
         for p in m.patterns],
        caption="Epsilon-squared of a one-way ANOVA of the residual on the feature's deciles or levels."
                + (" k classes: the residual 1{actual = class} - P(class) of the class with the strongest "
                   "pattern." if multi else ""),
        max_rows=15)


def _prediction_table(m: ResidualMeasurement, confidence: float) -> Table:
    pp = m.prediction_pattern
    return Table.from_records(
        "prediction_bins", "Residuals by prediction decile",
        [{"prediction": pp.labels[i], "rows": int(pp.count[i]), "mean_residual": pp.mean[i],
          "ci_low": pp.low[i], "ci_high": pp.high[i], "residual_sd": pp.sd[i],
          "p_adjusted": float(pp.p_adjusted[i])} for i in range(len(pp.labels))],
        caption=f"Mean residual (actual - predicted) per decile of the prediction with {level(confidence)} CI; "
                "p-values test mean = 0, BH-adjusted over the deciles.")


def _data_quality_table(m: ResidualMeasurement) -> Table | None:
    sus = [s for s in m.suspects.suspects if s.n_worst > 0]
    if not sus:
        return None
    return Table.from_records(
        "data_quality", "Suspicious values among the worst rows",
        [{"column": s.column, "issue": s.description, "rows_among_worst": s.n_worst,
          "rows_elsewhere": s.n_rest, "p_adjusted": s.p_adjusted} for s in sus],
        caption=(f"Worst rows: the {m.suspects.worst_rows} largest errors ({m.suspects.worst_share:.0%}); "
                 f"reference for ranges: {m.suspects.reference}. One-sided Fisher test, BH-adjusted."),
        max_rows=15)


# ---- figures ---------------------------------------------------------------------------------------

def _vs_prediction_caption(task: str, confidence: float) -> str:
    if task == "multiclass":
        return ("Per-row k-class log loss by whether the predicted class is right; right: the distribution of the "
                "excess log loss. High loss at high confidence marks confident errors.")
    if task == "classification":
        return "Deviance residuals by actual class; points far from the bands are confident errors."
    return (f"Binned mean residual with {level(confidence)} CI and +/- 1 SD; a trend in the mean is bias, a "
            "widening SD band is heteroscedasticity. Axes clipped to the 0.5-99.5% range.")


def _by_feature_caption(task: str, confidence: float) -> str:
    cis = f"{level(confidence)} CIs"
    if task == "multiclass":
        cap = ("Per feature, the class (in brackets) with the strongest pattern: mean of 1{actual = class} minus "
               f"the predicted probability of that class per bin (quantile bins) or level, with {cis}; above 0 "
               "means the model under-predicts the class there.")
    elif task == "classification":
        cap = (f"Mean of actual minus predicted probability per bin (quantile bins) or level, with {cis}; "
               "away from 0 means the model is biased there.")
    else:
        cap = (f"Numeric: sampled residuals with the binned mean and {level(confidence)} CI. Categorical: box "
               "25-75%, whiskers 5-95%, line at the median. Axes clipped to the 0.5-99.5% range.")
    return cap + " Panel titles give epsilon-squared: the share of residual variance the bins explain."


def figures(m: ResidualMeasurement, confidence: float) -> tuple[Figure, ...]:
    out = [Figure("residuals_vs_prediction", "Residuals against the prediction",
                  plot="residuals.residuals_vs_prediction",
                  data={"residuals": m.residuals, "rows": m.plot_rows, "binned": m.prediction_pattern,
                        "confidence": confidence},
                  caption=_vs_prediction_caption(m.task, confidence))]
    if m.plot_patterns:
        out.append(Figure("residuals_by_feature", "Residuals by feature (most structured first)",
                          plot="residuals.residuals_by_feature", data={"patterns": m.plot_patterns, "task": m.task},
                          caption=_by_feature_caption(m.task, confidence)))
    return tuple(out)


# ---- notes -----------------------------------------------------------------------------------------

_RESIDUAL_NOTE = {
    "classification": "actual (1 = positive class) - predicted probability; loss: -log p(actual class); deviance "
                      "residual: sign(residual) * sqrt(2 * loss).",
    "regression": "actual - predicted; standardized: divided by the residual SD.",
}


def _multiclass_note(k: int) -> str:
    return (f"{k}-class model: loss = -log p(actual class) (k-class log loss); residual = loss minus its "
            "expectation under the predicted distribution (excess log loss; zero on average where the model is "
            "calibrated, positive where it does worse than it claims), used by prediction (the predicted class's "
            "probability) and to rank the worst rows. By feature and in the surrogate tree: the per-class residual "
            "1{actual = j} - P(j) (the k-class form of actual - P; the log loss alone is blind where the model's "
            "distribution is flat); the structure share is scaled by the summed variance of the class indicators.")


def notes(m: ResidualMeasurement) -> tuple[str, ...]:
    multi = m.task == "multiclass"
    out = [f"{m.n:,} test rows analysed" + (f" (a seeded sample of {m.n_total:,})" if m.n < m.n_total else "")
           + f"; scatter plots show {len(m.plot_rows):,} sampled rows.",
           "Residual: " + (_multiclass_note(len(m.classes)) if multi else _RESIDUAL_NOTE[m.task])]
    if m.tree is not None:
        out.append(f"Surrogate tree: depth {m.tree.max_depth}, min. {m.tree.min_leaf} rows per leaf, fitted on "
                   f"a random half and evaluated on the other (cross-fitted share explained).")
    if m.contributions is not None:
        c = m.contributions
        out.append(("SHAP of P(actual class) and of its log loss" if multi else "SHAP")
                   + f" (permutation, model-agnostic) on the {len(m.worst)} worst rows only: {c.n_background} "
                     f"background rows, max_evals {c.max_evals}, {c.n_model_rows:,} model rows scored.")
    elif m.shap_error:
        out.append(f"SHAP drivers failed: {m.shap_error}")
    return tuple(out)
