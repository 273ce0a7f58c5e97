"""Words for the report: human labels (with units) of metric keys and table columns, one sentence of
what each check measures, and the glossary.

The checks name their metrics as findings.json does (``tpr_at_1pct_fpr``, ``cramers_v``); the report
shows ``TPR at 1% FPR`` and ``Cramér's V``. A key not listed here is turned into words by
``humanize`` (underscores to spaces, known abbreviations in capitals), so a new check needs no entry
to read acceptably, and one line here to read well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PCT = "pct"  # a fraction shown as a percentage

# key -> (label, unit). Units: "pct" (a share, shown in %) or "" (as is).
METRIC_LABELS: dict[str, tuple[str, str]] = {
    # data
    "test_columns": ("Test columns", ""), "train_columns": ("Train columns", ""), "features": ("Features", ""),
    "type_mismatches": ("Type mismatches", ""), "numeric_as_text": ("Numbers stored as text", ""),
    "columns_with_unseen_levels": ("Columns with unseen levels", ""), "test_rows": ("Test rows", ""),
    "train_rows": ("Train rows", ""), "features_with_missing": ("Features with missing values", ""),
    "constant_features": ("Constant features", ""), "test_duplicate_share": ("Duplicated test rows", PCT),
    "train_duplicate_share": ("Duplicated train rows", PCT), "test_rows_in_train": ("Test rows also in train", ""),
    "test_rows_in_train_share": ("Share of test rows also in train", PCT),
    "minority_share_test": ("Minority class, test", PCT), "minority_share_train": ("Minority class, train", PCT),
    "features_with_infinite": ("Features with infinite values", ""),
    "test_rows_with_shared_id": ("Test rows sharing an id", ""),
    "train_rows_with_shared_id": ("Train rows sharing an id", ""),
    "model_auc": ("Model AUC", ""), "max_single_feature_auc": ("Best single-feature AUC", ""),
    "max_single_feature": ("Best single feature", ""), "id_like_features": ("Id-like features", ""),
    "columns_tested": ("Columns tested", ""), "alpha_corrected": ("Corrected significance level", ""),
    "drifted_columns": ("Drifted columns", ""), "max_feature_psi": ("Largest feature PSI", ""),
    "max_feature_psi_column": ("Column with the largest PSI", ""), "target_psi": ("Target PSI", ""),
    "target_p_value": ("Target drift p-value", ""), "score_psi": ("Score PSI", ""),
    "score_ks_statistic": ("Score KS statistic", ""), "score_p_value": ("Score drift p-value", ""),
    # performance
    "auc": ("AUC", ""), "accuracy": ("Accuracy", ""), "precision": ("Precision", ""), "recall": ("Recall", ""),
    "f1": ("F1", ""), "log_loss": ("Log loss", ""), "brier": ("Brier score", ""), "base_rate": ("Positive rate", PCT),
    "majority_accuracy": ("Accuracy of always the majority class", ""),
    "average_precision": ("Average precision", ""),
    "threshold": ("Decision threshold", ""), "predicted_positive_share": ("Predicted positive", PCT),
    "n": ("Rows", ""), "n_positive": ("Positive rows", ""), "balanced_accuracy": ("Balanced accuracy", ""),
    "macro_f1": ("Macro F1", ""), "weighted_f1": ("Weighted F1", ""),
    "auc_ovr_macro": ("AUC (one-vs-rest, macro)", ""),
    "rmse": ("RMSE", ""), "mae": ("MAE", ""), "r2": ("R²", ""),
    "n_train": ("Train rows", ""), "n_test": ("Test rows", ""), "auc_train": ("AUC, train", ""),
    "auc_test": ("AUC, test", ""), "auc_gap": ("AUC gap (train − test)", ""),
    "log_loss_train": ("Log loss, train", ""), "log_loss_test": ("Log loss, test", ""),
    "log_loss_gap": ("Log-loss gap", ""), "accuracy_train": ("Accuracy, train", ""),
    "accuracy_test": ("Accuracy, test", ""), "accuracy_gap": ("Accuracy gap", ""),
    "brier_train": ("Brier score, train", ""), "brier_test": ("Brier score, test", ""),
    "brier_gap": ("Brier gap", ""),
    "ece": ("Expected calibration error (ECE)", ""), "ece_p_value": ("ECE p-value", ""),
    "ece_null_mean": ("ECE expected if calibrated", ""), "ece_null_q95": ("ECE 95th percentile if calibrated", ""),
    "brier_reliability": ("Brier reliability", ""), "brier_resolution": ("Brier resolution", ""),
    "brier_uncertainty": ("Brier uncertainty", ""), "calibration_slope": ("Calibration slope", ""),
    "calibration_intercept": ("Calibration intercept", ""), "mean_predicted": ("Mean predicted probability", ""),
    "observed_rate": ("Observed rate", PCT),
    "accuracy_lift": ("Accuracy above the majority class", ""),
    # sensitivity
    "features_analysed": ("Features analysed", ""), "rows_sampled": ("Rows sampled", ""),
    "grid_points_max": ("Grid points per feature (max)", ""), "outside_points": ("Points beyond the data", ""),
    "monotone_declared": ("Declared monotone features", ""), "monotone_breaches": ("Monotonicity breaches", ""),
    "interactions": ("Strong interactions", ""), "erratic": ("Erratic features", ""),
    "no_effect": ("Features without effect", ""),
    "missing_rejected": ("Features refusing missing values", ""), "interaction_share": ("Interaction share", ""),
    "ice_spread": ("ICE spread", ""), "partner_strength": ("Strength of the interacting partner", ""),
    "effect": ("Effect (ICE range)", ""), "rows_searched": ("Rows searched", ""),
    "confident_rows": ("Confident rows", ""),
    "confident_small_flip_share": ("Confident rows flipped by a small change", PCT),
    "small_flip_share_all": ("Rows flipped by a small change", PCT), "rows_with_flip": ("Rows with a flip", ""),
    "median_flip_distance": ("Median flip distance", ""), "min_flip_distance": ("Smallest flip distance", ""),
    "swing_rows": ("Rows with a score swing", ""), "knife_edge_features": ("Knife-edge features", ""),
    "queries": ("Model queries (rows)", ""), "model_calls": ("Model calls", ""),
    "model_rows": ("Distinct rows scored", ""),
    "hsj_rows": ("Rows checked with HopSkipJump", ""), "hsj_median_distance": ("HopSkipJump median distance", ""),
    "score_max_reached": ("Highest score reached", ""), "score_min_reached": ("Lowest score reached", ""),
    "confident_small_flips": ("Confident rows flipped", ""),
    "moderate_small_flips": ("Moderately confident rows flipped", ""),
    "near_threshold_small_flips": ("Near-threshold rows flipped", ""),
    "small_distance": ("Small-change distance", ""),
    "rows_tried": ("Rows tried", ""), "calls": ("Model calls", ""),
    "rows_in_domain": ("Rows in the data's domain", ""),
    "rows_out_of_domain": ("Rows outside the domain", ""), "crashes": ("Crashes", ""),
    "rows_crashed": ("Rows that crashed", ""),
    "rows_crashed_in_domain": ("In-domain rows that crashed", ""),
    "rows_refused_out_of_domain": ("Out-of-domain rows refused", ""),
    "rows_non_finite": ("Rows with non-finite output", ""),
    "rows_out_of_range": ("Rows with output out of range", ""),
    "rows_bad_sum": ("Rows whose probabilities do not sum to 1", ""),
    "rows_bad_shape": ("Rows with a wrong output shape", ""), "rows_unstable": ("Rows unstable under jitter", ""),
    "max_jitter_change": ("Largest change under jitter", ""), "rows_in_range": ("In-range rows", ""),
    "rows_extreme": ("Extreme-value rows", ""), "rows_infinite": ("Infinite-value rows", ""),
    "rows_missing": ("Missing-value rows", ""), "rows_unseen_category": ("Unseen-level rows", ""),
    "rows_empty_string": ("Empty-string rows", ""), "rows_wrong_type": ("Wrong-type rows", ""),
    "rows_jitter": ("Jittered rows", ""), "rows_accepted": ("Rows accepted", ""),
    "rows_rejected": ("Rows rejected", ""),
    "columns": ("Columns", ""),
    # residual
    "rows": ("Rows", ""), "mean_log_loss": ("Mean log loss", ""), "mean_residual": ("Mean residual", ""),
    "residual_sd": ("Residual SD", ""),
    "tree_explained_share": ("Held-out residual variance explained by a tree", PCT),
    "tree_p_value": ("Surrogate tree p-value", ""), "confident_errors": ("Confident errors", ""),
    "segments_tested": ("Segments tested", ""), "segments_significant": ("Significant segments", ""),
    "segments_reported": ("Segments reported", ""), "min_support": ("Smallest segment tested (rows)", ""),
    # fairness
    "groupings": ("Groupings", ""), "min_adverse_impact_ratio": ("Lowest adverse impact ratio", ""),
    "overall_favorable_rate": ("Favorable rate, all rows", PCT),
    "adverse_impact_ratio": ("Adverse impact ratio (AIR)", ""),
    "air": ("AIR", ""), "p_value": ("p-value", ""), "p_value_adjusted": ("Adjusted p-value", ""),
    "p_adjusted": ("Adjusted p", ""), "favorable_rate": ("Favorable rate", PCT),
    "reference_favorable_rate": ("Favorable rate, reference group", PCT), "count": ("Rows", ""),
    "reference_count": ("Rows, reference group", ""), "smd": ("Standardized mean difference (SMD)", ""),
    "observed_favorable_rate": ("Observed favorable rate", PCT),
    "reference_observed_favorable_rate": ("Observed favorable rate, reference group", PCT),
    "equalized_odds_difference": ("Equalized-odds difference", ""),
    "equalized_odds_difference_eligible": ("Equalized-odds difference (groups of 30+ rows)", ""),
    "fnr": ("False negative rate (FNR)", PCT), "fpr": ("False positive rate (FPR)", PCT),
    "tpr": ("True positive rate (TPR)", PCT),
    "reference_fnr": ("FNR, reference group", PCT), "reference_fpr": ("FPR, reference group", PCT),
    "fnr_gap": ("FNR gap", ""), "fpr_gap": ("FPR gap", ""), "fnr_p_value": ("FNR gap p-value", ""),
    "fpr_p_value": ("FPR gap p-value", ""), "fnr_p_value_adjusted": ("FNR gap adjusted p", ""),
    "fpr_p_value_adjusted": ("FPR gap adjusted p", ""), "reference_accuracy": ("Accuracy, reference group", ""),
    "combined_auc": ("AUC of all features together", ""), "association": ("Association", ""),
    "cramers_v": ("Cramér's V", ""), "epsilon_squared": ("Epsilon squared (ε²)", ""),
    "importance_share": ("Share of the model's reliance", PCT), "determines": ("Determines the attribute", ""),
    "counterfactual_air": ("AIR with the proxy redrawn", ""), "air_lift": ("AIR lift when redrawn", ""),
    "gap_share": ("Share of the gap explained", PCT), "counterfactual_group": ("Group redrawn", ""),
    "counterfactual_rows": ("Rows redrawn", ""), "counterfactual_exact": ("Exact counterfactual", ""),
    "disparate_impact_finding": ("Disparate-impact finding", ""),
    # benchmark
    "logistic_auc": ("Logistic regression AUC", ""), "tree_auc": ("Decision tree AUC", ""),
    "auc_difference_vs_logistic": ("AUC − logistic regression", ""),
    "auc_p_value_vs_logistic": ("p-value vs logistic", ""),
    "auc_difference_vs_tree": ("AUC − decision tree", ""), "auc_p_value_vs_tree": ("p-value vs tree", ""),
    "mcnemar_p_value": ("McNemar p-value", ""),
    "benchmark_right_model_wrong": ("Rows only the benchmark gets right", ""),
    "model_right_benchmark_wrong": ("Rows only the model gets right", ""), "n_train_used": ("Train rows used", ""),
    "benchmark_auc": ("Benchmark AUC", ""), "difference": ("Difference", ""), "benchmark": ("Benchmark", ""),
    # security
    "attack_auc": ("Attack AUC", ""), "best_attack": ("Best attack", ""), "advantage": ("Attacker advantage", ""),
    "members": ("Training rows (members)", ""), "non_members": ("Unseen rows (non-members)", ""),
    "threshold_auc": ("Threshold attack AUC", ""), "learned_auc": ("Learned attack AUC", ""),
    "tpr_at_1pct_fpr": ("TPR at 1% FPR", PCT), "tpr_at_5pct_fpr": ("TPR at 5% FPR", PCT),
    "eval_rows": ("Held-out rows for fidelity", ""), "real_scores_fidelity": ("Fidelity, real queries, scores", PCT),
    "real_labels_fidelity": ("Fidelity, real queries, labels", PCT),
    "synthetic_scores_fidelity": ("Fidelity, synthetic queries, scores", PCT),
    "synthetic_labels_fidelity": ("Fidelity, synthetic queries, labels", PCT),
    "queries_to_bar": ("Queries to 95% fidelity", ""),
    "best_fidelity": ("Best fidelity", PCT), "best_budget": ("Queries of the best copy", ""),
    "best_source": ("Queries from", ""),
    "fidelity_bar": ("Fidelity mark", PCT), "few_queries": ("Few queries", ""),
    "fidelity_at_bar": ("Fidelity at the mark", PCT),
    "source": ("Queries from", ""), "api": ("Answers seen", ""), "attributes_analysed": ("Attributes analysed", ""),
    "max_auc_gain": ("Largest AUC gain from the output", ""),
    "max_output_only_auc": ("Highest AUC from the output alone", ""),
    "attribute": ("Attribute", ""), "model_input": ("A model input", ""),
    "baseline_auc": ("AUC without the output", ""),
    "with_output_auc": ("AUC with the output", ""), "auc_gain": ("AUC gain from the output", ""),
    "output_only_auc": ("AUC from the output alone", ""),
    # explanations
    "top_feature": ("Most important feature", ""), "top_share": ("Its share of the attributions", PCT),
    "base_value": ("Base value", ""), "n_rows": ("Rows explained", ""), "n_sample": ("Rows sampled", ""),
    "n_background": ("Background rows", ""), "max_evals": ("Model evaluations per row", ""),
    "n_model_rows": ("Rows scored by the model", ""),
    "n_evaluations": ("Model evaluations asked for", ""), "additivity_max_error": ("Largest additivity error", ""),
    "explained_class": ("Explained class", ""), "share": ("Share", PCT), "mean_abs_shap": ("Mean |SHAP|", ""),
    "second_share": ("Share of the second feature", PCT),
    # waivers
    "unmatched": ("Waivers matching no finding", ""), "expired": ("Expired waivers", ""),
}

# abbreviations written in capitals (or their own way) when a key is turned into words
_WORDS = {"auc": "AUC", "psi": "PSI", "ks": "KS", "js": "JS", "tpr": "TPR", "fpr": "FPR", "fnr": "FNR",
          "tnr": "TNR", "ece": "ECE", "smd": "SMD", "air": "AIR", "ci": "CI", "shap": "SHAP", "hsj": "HopSkipJump",
          "id": "id", "pdp": "PDP", "ice": "ICE", "ale": "ALE", "rmse": "RMSE", "mae": "MAE", "r2": "R²", "f1": "F1",
          "ovr": "one-vs-rest", "sd": "SD", "pct": "%", "glm": "GLM", "cramers": "Cramér's", "abs": "absolute",
          "n": "rows", "v": "V", "eod": "EOD", "mcnemar": "McNemar", "api": "API"}
_SPLIT = re.compile(r"[_\s]+")


def humanize(key: str) -> str:
    """``tpr_at_1pct_fpr`` -> ``TPR at 1% FPR``: underscores to spaces, known abbreviations spelled
    out, the first letter capitalised. Text with spaces and no underscore is left as written."""
    text = str(key)
    if "_" not in text and (" " in text or not text.islower()):
        return text
    words = [_WORDS.get(w.lower(), w) for w in _SPLIT.split(text) if w]
    words = [re.sub(r"^(\d+)pct$", r"\1%", w) for w in words]
    out = " ".join(words)
    return out[:1].upper() + out[1:] if out and out[0].islower() else out


def metric_label(key: str) -> tuple[str, str]:
    """The label and unit of a metric key; ``name/qualifier`` (``min_adverse_impact_ratio/sex``)
    reads ``Lowest adverse impact ratio (sex)``."""
    base, sep, qualifier = str(key).partition("/")
    label, unit = METRIC_LABELS.get(base, (humanize(base), PCT if _is_share(base) else ""))
    return (f"{label} ({qualifier})" if sep else label), unit


# table headers are short: a column names its quantity, the table's title and caption say the rest
COLUMN_LABELS: dict[str, str] = {
    "p_value": "p", "p_adjusted": "Adjusted p", "p_value_adjusted": "Adjusted p", "q_value": "q",
    "ks_statistic": "KS", "js_distance": "JS distance", "wasserstein_norm": "Wasserstein", "psi": "PSI",
    "mean_abs_shap": "Mean |SHAP|", "epsilon_squared": "ε²", "n": "Rows", "count": "Rows", "smd": "SMD",
    "air": "AIR", "adverse_impact_ratio": "AIR", "tpr": "TPR", "fpr": "FPR", "fnr": "FNR", "auc": "AUC",
    "rows_affected": "Rows affected", "sign_p_value": "Sign-test p", "fnr_p_value": "FNR p",
    "fpr_p_value": "FPR p", "fnr_p_adjusted": "FNR adjusted p", "fpr_p_adjusted": "FPR adjusted p",
    "equalized_odds_difference": "Equalized-odds difference",
    "equalized_odds_difference_eligible": "Equalized-odds difference (30+ rows)",
}


def column_label(name: str) -> str:
    """A table column header in words (``ks_statistic`` -> ``KS``, ``mean_test`` -> ``Mean test``);
    the unit stays in the numbers the table shows."""
    return COLUMN_LABELS.get(str(name)) or humanize(str(name))


def _is_share(key: str) -> bool:
    return key.endswith(("_share", "_rate")) or key in ("share", "rate")


# ---- what each check measures ---------------------------------------------------------------------

CHECK_PURPOSES: dict[str, str] = {
    "data.schema": "Whether the train and test columns and their types agree with each other and with what the "
                   "model accepts.",
    "data.quality": "Missing values, constant columns, duplicated rows, rows shared between train and test, and the "
                    "balance of the target.",
    "data.leakage": "Whether a feature gives the target away: a single feature that alone predicts it almost "
                    "perfectly, an id-like column, or a value recorded after the outcome.",
    "data.drift": "How far each feature, the target and the model's score moved between the training and the "
                  "test data.",
    "performance.metrics": "The headline metrics on the test data, each with a confidence interval.",
    "performance.overfit": "How much better the model does on its training data than on unseen test data.",
    "performance.calibration": "Whether the predicted probabilities match the observed rates.",
    "sensitivity.partial_dependence": "How the prediction moves with each feature (PDP, ICE, ALE): declared "
                                      "monotonicity, strong interactions, features without effect, values beyond "
                                      "the data.",
    "sensitivity.adversarial": "Whether small, plausible changes to an input flip the decision or swing the score.",
    "sensitivity.random_attack": "How the model handles random and hostile inputs: out-of-range values, missing "
                                 "values, infinity, unseen levels and wrong types.",
    "residual.analysis": "Where the model's errors concentrate: residuals by feature and by prediction, and the "
                         "worst rows.",
    "residual.segments": "Segments of the data where the error is significantly worse than overall.",
    "fairness.disparate_impact": "Favorable-outcome rates by group: the adverse impact ratio against the "
                                 "four-fifths rule, with its significance.",
    "fairness.error_parity": "Error rates by group (true positive, false positive and false negative rates) and "
                             "calibration by group.",
    "fairness.proxy": "Model features that stand in for a protected attribute, and what redrawing them does to "
                      "the outcome gap.",
    "benchmark.comparison": "The model against simple, interpretable benchmarks trained on the same data.",
    "security.membership_inference": "How well an attacker can tell the training rows from unseen rows through the "
                                     "model's outputs.",
    "security.model_extraction": "How closely a copy trained on the model's answers to queries reproduces it.",
    "security.attribute_inference": "How well a protected attribute can be inferred from the model's outputs.",
    "explain.importance": "Which features drive the model's predictions overall (SHAP) and for individual decisions.",
    "audit.waivers": "Waivers of the configuration that expired or match no finding.",
}


# ---- glossary ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Term:
    term: str
    definition: str
    pattern: str  # a regular expression (case-insensitive unless it has uppercase only) found in the report


GLOSSARY: tuple[Term, ...] = (
    Term("Adverse impact ratio (AIR)", "A group's favorable-outcome rate divided by the reference group's. 1 means "
         "parity; below 0.8 fails the four-fifths rule.", r"adverse impact|\bAIR\b"),
    Term("Four-fifths rule", "The US EEOC rule of thumb that a selection rate below four fifths (0.8) of the "
         "reference group's indicates adverse impact.", r"four-fifths|\b0\.8 rule"),
    Term("Reference group", "The group others are compared with: set in the config, else the largest group.",
         r"reference group"),
    Term("Protected attribute", "A characteristic such as sex or age that decisions must not disadvantage "
         "unjustifiably; it need not be a model input.", r"protected"),
    Term("Favorable outcome", "The decision that benefits the person (e.g. a loan approved); fairness checks "
         "compare its rate between groups.", r"favou?rable"),
    Term("Standardized mean difference (SMD)", "The difference between a group's mean score and the reference "
         "group's, in standard deviations of the score.", r"\bSMD\b|standardi[sz]ed mean difference"),
    Term("Equalized odds", "Equal true positive and false positive rates across groups; the equalized-odds "
         "difference is the larger of the two gaps.", r"equali[sz]ed.odds"),
    Term("TPR, FPR, FNR", "True positive rate (positives predicted positive), false positive rate (negatives "
         "predicted positive), false negative rate (positives predicted negative, e.g. wrongful denials).",
         r"\b(TPR|FPR|FNR)\b"),
    Term("Proxy", "A feature that stands in for a protected attribute, so a model can disadvantage a group without "
         "using the attribute itself.", r"\bprox(y|ies)\b"),
    Term("Counterfactual", "The same rows scored again with one feature's values redrawn (here from the reference "
         "group's), to see how much of a gap that feature carries.", r"counterfactual"),
    Term("Cramér's V", "Strength of association between two categorical variables, from 0 (none) to 1 (one "
         "determines the other).", r"cram[eé]r"),
    Term("Epsilon squared (ε²)", "The share of a quantity's variance explained by a grouping (a rank-based effect "
         "size of a one-way analysis of variance).", r"epsilon|ε²"),
    Term("AUC", "Area under the ROC curve: the chance that a random positive row scores above a random negative one; "
         "0.5 is guessing, 1 perfect.", r"\bAUC\b"),
    Term("ROC curve", "True positive rate against false positive rate over every threshold.", r"\bROC\b"),
    Term("Log loss", "The average negative log-probability the model gave to the actual outcome; lower is better.",
         r"log.loss"),
    Term("Brier score", "The mean squared difference between the predicted probability and the 0/1 outcome; lower "
         "is better.", r"brier"),
    Term("Calibration", "Agreement between predicted probabilities and observed rates; the expected calibration "
         "error (ECE) is their average gap over score bins.", r"calibrat|\bECE\b"),
    Term("Decision threshold", "The probability at or above which the model's decision is positive.", r"threshold"),
    Term("Overfitting", "Doing much better on the training data than on unseen data: the model learned noise.",
         r"overfit|train.+test gap|train vs test"),
    Term("Partial dependence (PDP)", "The average prediction when every row has a feature set to one value, drawn "
         "over the feature's values.", r"partial dependence|\bPDP\b"),
    Term("ICE curve", "Individual conditional expectation: one row's prediction as one feature moves, the others "
         "fixed. Spread between ICE curves shows interactions.", r"\bICE\b"),
    Term("ALE", "Accumulated local effects: a feature's effect built from small local changes, robust to correlated "
         "features.", r"\bALE\b|accumulated local"),
    Term("Interaction share", "The part of a feature's effect that differs between rows (ICE spread around the "
         "PDP), from 0 (additive) to 1.", r"interaction share"),
    Term("Monotonicity", "The prediction only rises (or only falls) as a feature grows; an owner may declare it in "
         "[expect].", r"monoton"),
    Term("Population stability index (PSI)", "A distance between two distributions over bins: below 0.1 little "
         "shift, above 0.25 a material shift.", r"\bPSI\b|population stability"),
    Term("KS statistic", "Kolmogorov–Smirnov: the largest gap between two cumulative distributions.",
         r"\bKS\b|kolmogorov"),
    Term("Jensen–Shannon distance", "A symmetric distance between two distributions, from 0 (same) to 1.",
         r"jensen|\bjs\b"),
    Term("Wasserstein distance", "How far values must move to turn one distribution into the other (here in "
         "training standard deviations).", r"wasserstein"),
    Term("Adversarial example", "An input changed slightly and plausibly that flips the model's decision or "
         "swings its score.", r"adversarial"),
    Term("HopSkipJump", "A decision-based attack (from the Adversarial Robustness Toolbox) that finds small "
         "decision-flipping changes with model queries only; a second opinion on the audit's own search.",
         r"hop.?skip.?jump"),
    Term("Knife edge", "A step where a tiny change of one feature moves the score a lot.", r"knife.edge"),
    Term("Residual", "Actual outcome minus prediction; a deviance residual rescales it by the loss.", r"residual"),
    Term("Surrogate tree", "A small decision tree fitted to the residuals, to describe where errors concentrate in "
         "rules.", r"surrogate"),
    Term("Benchmark model", "A simple, interpretable model (logistic regression, a shallow tree) trained on the same "
         "data, which a complex model should beat.", r"benchmark"),
    Term("DeLong test", "A test of the difference between two AUCs on the same rows.", r"delong"),
    Term("McNemar test", "A test of whether two models' errors on the same rows differ.", r"mcnemar"),
    Term("Membership inference", "An attack that tells from the model's outputs whether a row was in the training "
         "data: a privacy leak.", r"membership"),
    Term("Model extraction", "Training a copy of the model from its answers to queries, stealing its behaviour.",
         r"extraction|copy of the model|\bcopy\b"),
    Term("Fidelity", "The share of rows where a copy decides as the model does.", r"fidelity"),
    Term("Attribute inference", "Inferring a sensitive attribute of a person from the model's outputs.",
         r"attribute inference|attribute_inference"),
    Term("Attacker advantage", "The best true positive rate minus false positive rate an attacker reaches; 0 is no "
         "better than guessing.", r"advantage"),
    Term("SHAP", "Shapley additive explanations: each feature's contribution to a prediction, summing to the "
         "prediction minus the base value.", r"\bSHAP\b"),
    Term("Feature importance", "How much the model's predictions depend on a feature overall (here the mean "
         "absolute SHAP value and its share).", r"importance"),
    Term("Confidence interval", "A range that contains the true value with the stated probability (e.g. 95%) "
         "under repeated sampling.", r"\binterval\b|\bCI\b"),
    Term("Bootstrap", "Resampling the rows with replacement to estimate an interval.", r"bootstrap"),
    Term("Wilson interval", "A confidence interval for a proportion that stays reliable near 0 and 1.", r"wilson"),
    Term("Katz interval", "A confidence interval for a ratio of two proportions (log scale).", r"katz"),
    Term("Newcombe interval", "A confidence interval for a difference of two proportions (hybrid score method).",
         r"newcombe"),
    Term("Fisher exact test", "An exact test of whether two groups' rates differ, for small counts.", r"fisher"),
    Term("p-value", "The chance of a result at least this extreme if there were no effect; small means the effect "
         "is unlikely to be noise.", r"p.value|\bp\s*[<=]"),
    Term("Holm adjustment", "A correction of p-values for testing many groups or features at once, so chance "
         "findings do not pile up.", r"holm|adjusted"),
    Term("Benjamini–Hochberg (q-value)", "A correction controlling the share of false discoveries among many tests.",
         r"benjamini|q.value|\bFDR\b"),
    Term("Finding", "One judged result of a check, with a severity: high blocks sign-off, medium needs an owner's "
         "answer, low is worth a look, info is context.", r"finding"),
    Term("Issue (root cause)", "Findings that share one cause, grouped so they are addressed together.", r"\bissue"),
    Term("Gate", "The audit's pass/fail rule: it fails when an open finding is at or above the gate level "
         "(fail_on).", r"\bgate\b"),
    Term("Waiver", "A recorded risk acceptance of a finding: reason, approver, expiry. An accepted finding keeps "
         "its severity but does not count towards the gate.", r"waiver|accepted"),
    Term("Remediation", "A change the audit computed and measured on held-out rows that would fix a finding; a "
         "candidate for the owner to adopt and re-audit.", r"remed"),
)


def glossary_terms(texts: list[str]) -> list[Term]:
    """The glossary entries whose pattern occurs in any of ``texts`` (the report's own words), in
    glossary order."""
    blob = "\n".join(texts)
    return [t for t in GLOSSARY if re.search(t.pattern, blob, flags=0 if _case_sensitive(t.pattern) else re.I)]


def _case_sensitive(pattern: str) -> bool:
    """Abbreviation patterns (``\\bAIR\\b``) match in capitals only, so 'air' in a word does not."""
    letters = re.sub(r"\\[bBdsSwW]", "", pattern)
    return any(c.isupper() for c in letters) and not any(c.islower() for c in letters if c.isalpha())
