"""Performance checks: headline metrics with confidence intervals, the train/test gap, and the
calibration of predicted probabilities. All three read only the context's cached predictions.

A classifier with more than two classes is audited as a k-class model (contract 1.1): k-class
metrics, a k x k confusion matrix, gaps of k-class quantities and top-label calibration; never
one class against the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..analysis.calibration import CalibrationResult, calibration_analysis, top_label_calibration
from ..analysis.metrics import (
    ClassificationMetrics,
    Estimate,
    GapResult,
    MulticlassMetrics,
    RegressionMetrics,
    classification_metrics,
    multiclass_metrics,
    regression_metrics,
    train_test_gap,
)
from ..analysis.sampling import sample_positions
from ..findings import Evidence, Figure, Finding, Rule, Severity, Table
from ..wording import ci, fixed, level, pct
from .base import PERFORMANCE, Check, budget, setting, threshold

if TYPE_CHECKING:
    from ..context import AuditContext, Split


def _with_ci(e: Estimate, confidence: float, digits: int = 2) -> str:
    """An estimate and its interval: ``0.74 (95% CI 0.70–0.78)``."""
    return f"{fixed(e.value, digits)} ({ci(e.low, e.high, confidence, digits=digits, what='CI')})"


def _estimate_metrics(name: str, e: Estimate) -> dict[str, float]:
    return {name: e.value, f"{name}_ci_low": e.low, f"{name}_ci_high": e.high}


def _known_rows(ctx: AuditContext, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """k classes: the true class index of each row and a mask of the rows whose target is one of
    the model's classes (a label the model does not know has no probability column)."""
    y = ctx.y_index(split)
    return y, y >= 0


def _unknown_note(n_unknown: int, split: str) -> list[str]:
    if not n_unknown:
        return []
    return [f"{n_unknown} {split} rows whose target is not one of the model's classes are left out of the "
            "k-class metrics (the model gives them no probability)."]


# ---- performance.metrics ------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricsMeasurement:
    task: str
    positive_label: str
    classification: ClassificationMetrics | None = None
    regression: RegressionMetrics | None = None
    plot_actual: np.ndarray | None = None  # regression: a seeded sample of points for the figure
    plot_predicted: np.ndarray | None = None
    multiclass: MulticlassMetrics | None = None
    class_names: tuple[str, ...] = ()  # k classes: names in the model's class order
    n_unknown: int = 0  # k classes: test rows whose target is not a model class (left out)


@dataclass
class MetricsCheck(Check[MetricsMeasurement]):
    """Headline performance on the test data, each metric with a percentile-bootstrap CI (at
    ``confidence``, 95%).

    Classification: AUC, accuracy, precision, recall and F1 at the configured threshold, log loss
    and Brier score, against the base rate and the accuracy of always predicting the majority
    class. ``high`` when the model ranks no better than chance: the AUC interval lies within
    ``chance_margin`` of 0.5 (or below it), or it includes 0.5 and ends below ``weak_auc``.
    ``medium`` when the interval ends below ``weak_auc`` or includes 0.5 (``low`` when only the
    estimate is under ``weak_auc``), for a threshold that puts all but
    ``degenerate_share`` of the rows in one class, or for decisions not significantly more
    accurate than always predicting the majority class when the AUC is also under ``good_auc``
    (with a better AUC that is ``low``: the ranking is fine, the threshold adds little; on
    imbalanced data such as German credit this is common and not a defect of the model).

    k classes (decision = most probable class): accuracy, balanced accuracy, macro and weighted
    F1, log loss, Brier score (mean over rows of the sum over classes of squared errors) and macro
    one-vs-rest AUC, a ``by_class`` table and a k x k confusion matrix. The macro AUC follows the
    binary AUC rules; accuracy not significantly above the majority-class share is ``medium``
    (``low`` with a macro AUC >= ``good_auc``); a pair of classes is confused when the share of
    one class's rows predicted as the other has a bootstrap interval whose lower end is at least
    ``confused_share_medium`` (``medium``) or ``confused_share_high`` (``high``: most of that
    class is taken for the other), ``low`` when only the point estimate reaches it (classes with
    at least ``min_class_rows`` test rows; at most ``max_confused_pairs`` pairs, worst first).

    Regression: RMSE, MAE and R²; ``high`` when R² <= ``min_r2`` (no better than
    predicting the mean), ``medium`` when R² < ``weak_r2``.
    """

    id: ClassVar[str] = "performance.metrics"
    family = PERFORMANCE
    order = 1
    title: ClassVar[str] = "Headline metrics"

    n_bootstrap: int = budget(200, "bootstrap resamples of the test rows")
    confidence: float = setting(0.95, "confidence level of the bootstrap intervals")
    chance_margin: float = threshold(0.05, "an AUC interval ending within this of 0.5 ranks no better than chance "
                                           "(high)")
    weak_auc: float = threshold(0.6, "AUC below which the model ranks only weakly")
    good_auc: float = threshold(0.7, "AUC from which decisions no better than the majority class are only low")
    degenerate_share: float = threshold(0.02, "share of rows in the rarer decision below which the threshold is "
                                              "degenerate (medium)")
    min_r2: float = threshold(0.0, "R² at or below which the fit is no better than the mean (high)")
    weak_r2: float = threshold(0.1, "R² below which the fit is weak (medium)")
    max_plot_points: int = budget(2000, "rows shown in the predicted-vs-actual figure (a seeded sample beyond)")
    confused_share_medium: float = threshold(0.2, "share of a class predicted as another (interval's lower end) "
                                                  "that is medium")
    confused_share_high: float = threshold(0.5, "share of a class predicted as another (interval's lower end) "
                                                "that is high")
    min_class_rows: int = threshold(5, "test rows a class needs for its confusions to be judged")
    max_confused_pairs: int = budget(5, "confused pairs of classes reported at most (worst first)")

    def measure(self, ctx: AuditContext) -> MetricsMeasurement:
        rng = ctx.rng(self.id)
        preds = ctx.predictions("test")
        if ctx.is_multiclass:
            assert preds.proba is not None
            y, known = _known_rows(ctx, "test")
            mc = multiclass_metrics(y[known], preds.proba[known], n_resamples=self.n_bootstrap,
                                    confidence=self.confidence, rng=rng)
            return MetricsMeasurement("classification", str(ctx.positive_class), multiclass=mc,
                                      class_names=tuple(str(c) for c in ctx.classes),
                                      n_unknown=int((~known).sum()))
        y = ctx.y_task("test")
        if ctx.is_classification:
            cm = classification_metrics(y, preds.score, threshold=ctx.threshold, n_resamples=self.n_bootstrap,
                                        confidence=self.confidence, rng=rng)
            return MetricsMeasurement("classification", str(ctx.positive_class), classification=cm)
        rm = regression_metrics(y, preds.score, n_resamples=self.n_bootstrap, confidence=self.confidence, rng=rng)
        idx = sample_positions(len(y), self.max_plot_points, rng)  # after the bootstrap, from the same generator
        return MetricsMeasurement("regression", "", regression=rm, plot_actual=y[idx],
                                  plot_predicted=np.asarray(preds.score, dtype=float)[idx])

    # -- judgement --
    def judge(self, m: MetricsMeasurement) -> list[Finding]:
        if m.multiclass is not None:
            return self._judge_multiclass(m.multiclass, m.class_names)
        if m.classification is not None:
            return self._judge_classification(m.classification, m.positive_label)
        assert m.regression is not None
        return self._judge_regression(m.regression)

    def _auc_chance(self, auc: Estimate) -> bool:
        """Not shown to rank better than chance: the interval ends within the margin of 0.5, or it
        includes 0.5 and its upper end is below ``weak_auc``."""
        return auc.high <= 0.5 + self.chance_margin or (auc.low <= 0.5 and auc.high < self.weak_auc)

    def _auc_severity(self, auc: Estimate) -> Severity | None:
        if self._auc_chance(auc):
            return Severity.HIGH
        if auc.high < self.weak_auc or auc.low <= 0.5:
            return Severity.MEDIUM
        return Severity.LOW if auc.value < self.weak_auc else None

    def _auc_rule(self, metric: str, auc: Estimate, severity: Severity) -> Rule:
        return Rule(metric=metric, value=auc.value, operator="<", threshold=(0.5 + self.chance_margin, self.weak_auc),
                    interval=(auc.low, auc.high),
                    text=(f"high when the interval's upper end is at most {0.5 + self.chance_margin:.2f}, or the "
                          f"interval includes 0.5 and ends below {self.weak_auc:.2f}; medium when the upper end is "
                          f"below {self.weak_auc:.2f} or the interval includes 0.5; low when only the estimate is "
                          f"below {self.weak_auc:.2f}"))

    def _lift_rule(self, lift: Estimate, p_value: float, auc_metric: str) -> Rule:
        return Rule(metric="accuracy_lift", value=lift.value, operator="<=", threshold=0.0,
                    interval=(lift.low, lift.high), p_value=p_value,
                    text=(f"reported when the interval's lower end of the accuracy gain over the majority class is "
                          f"at most 0; medium, or low when {auc_metric} >= {self.good_auc:.2f}"))

    def _judge_multiclass(self, c: MulticlassMetrics, names: tuple[str, ...]) -> list[Finding]:
        """k-class findings: macro AUC at chance, accuracy not above the majority class, confused pairs."""
        out: list[Finding] = []
        auc = c.auc_ovr_macro
        conf = c.confidence
        auc_high = False
        if np.isfinite(auc.value):
            metrics = {"auc_ovr_macro": auc.value, "auc_ovr_macro_ci_low": auc.low,
                       "auc_ovr_macro_ci_high": auc.high, "n": c.n, "n_classes": c.n_classes}
            sev = self._auc_severity(auc)
            chance = sev is Severity.HIGH
            if sev is not None:
                severity = sev
                auc_high = chance
                out.append(Finding(
                    id=f"{self.id}/auc_ovr_macro", check=self.id, severity=severity,
                    title=(f"Macro one-vs-rest AUC {auc.value:.2f}: the model ranks "
                           + ("no better than chance" if chance
                              else f"the classes weakly (below {self.weak_auc:.2f})")),
                    summary=(f"On {c.n} test rows of {c.n_classes} classes the mean over classes of the one-vs-rest "
                             f"AUC is {_with_ci(auc, conf)}. "
                             + ("0.5 is what random probabilities achieve; the interval does not show the model "
                                "telling the classes apart. " if chance else
                                "Better than chance, but each class is separated from the others only weakly. ")
                             + f"Rule: {self._auc_rule('auc_ovr_macro', auc, severity).text}."),
                    metrics=metrics,
                    remediation=("Check that the test data, target column and class labels match the model's training "
                                 "setup.",
                                 "Compare against a simple benchmark (multinomial logistic regression) before relying "
                                 "on this model."),
                    evidence=("metrics", "by_class"),
                    rule=self._auc_rule("auc_ovr_macro", auc, severity),
                ))
        lift = c.accuracy_lift
        majority = names[c.majority_class] if c.majority_class < len(names) else str(c.majority_class)
        if not auc_high and np.isfinite(lift.low) and lift.low <= 0:
            ranks_well = np.isfinite(auc.value) and auc.value >= self.good_auc
            out.append(Finding(
                id=f"{self.id}/accuracy_vs_majority", check=self.id,
                severity=Severity.LOW if ranks_well else Severity.MEDIUM,
                title=(f"Accuracy {c.accuracy.value:.2f} is not significantly above always predicting the majority "
                       f"class '{majority}' ({c.majority_accuracy.value:.2f})"),
                summary=(f"Predicting the most probable of the {c.n_classes} classes, the model is right on "
                         f"{pct(c.accuracy.value, 0)} of {c.n} test rows ({level(conf)} CI {pct(c.accuracy.low, 0)}–"
                         f"{pct(c.accuracy.high, 0)}); always predicting '{majority}' would be right on "
                         f"{pct(c.majority_accuracy.value, 0)}. The gain is {lift.value:+.3f} ({level(conf)} CI "
                         f"{lift.low:+.3f} to {lift.high:+.3f}; one-sided p = {c.accuracy_lift_p_value:.3f}), so the "
                         "decisions are not shown to beat the trivial rule"
                         + (f", although the probabilities rank the classes well (macro AUC {auc.value:.2f})."
                            if ranks_well else ".")
                         + f" Rule: {self._lift_rule(lift, c.accuracy_lift_p_value, 'the macro AUC').text}."),
                metrics={"accuracy": c.accuracy.value, "accuracy_ci_low": c.accuracy.low,
                         "accuracy_ci_high": c.accuracy.high, "majority_accuracy": c.majority_accuracy.value,
                         "accuracy_lift": lift.value, "accuracy_lift_ci_low": lift.low,
                         "accuracy_lift_ci_high": lift.high, "p_value": c.accuracy_lift_p_value},
                remediation=("Judge the model on the metric that matters for the decision (balanced accuracy, the "
                             "recall of the classes that matter), not on accuracy alone.",
                             "With imbalanced classes, consider class weights or decision costs per class."),
                evidence=("metrics", "confusion_matrix"),
                rule=self._lift_rule(lift, c.accuracy_lift_p_value, "the macro AUC"),
            ))
        out.extend(self._confused_pairs(c, names))
        return out

    def _confused_severity(self, low: float, rate: float) -> Severity | None:
        if np.isfinite(low) and low >= self.confused_share_high:
            return Severity.HIGH
        if np.isfinite(low) and low >= self.confused_share_medium:
            return Severity.MEDIUM
        if np.isfinite(rate) and rate >= self.confused_share_medium:
            return Severity.LOW
        return None

    def _confused_pairs(self, c: MulticlassMetrics, names: tuple[str, ...]) -> list[Finding]:
        """One finding per pair of classes where one is often predicted as the other (worse direction)."""
        k = c.n_classes
        label = [names[i] if i < len(names) else str(i) for i in range(k)]
        candidates: list[tuple[int, float, int, int, Severity]] = []
        for i in range(k):
            for j in range(i + 1, k):
                best: tuple[int, float, int, int, Severity] | None = None
                for a, b in ((i, j), (j, i)):
                    if c.support[a] < self.min_class_rows:
                        continue
                    sev = self._confused_severity(c.confusion_rate_low[a, b], c.confusion_rate[a, b])
                    if sev is None:
                        continue
                    cand = (sev.rank, float(c.confusion_rate[a, b]), a, b, sev)
                    if best is None or cand[:2] > best[:2]:
                        best = cand
                if best is not None:
                    candidates.append(best)
        candidates.sort(key=lambda t: (-t[0], -t[1], t[2], t[3]))
        out = []
        conf = c.confidence
        for _, rate, a, b, sev in candidates[: self.max_confused_pairs]:
            lo, hi = float(c.confusion_rate_low[a, b]), float(c.confusion_rate_high[a, b])
            back, back_lo, back_hi = (float(c.confusion_rate[b, a]), float(c.confusion_rate_low[b, a]),
                                      float(c.confusion_rate_high[b, a]))
            i, j = min(a, b), max(a, b)
            rule = Rule(metric="confused_share", value=rate, operator=">=",
                        threshold=(self.confused_share_medium, self.confused_share_high), interval=(lo, hi),
                        text=(f"share of actual '{label[a]}' rows predicted '{label[b]}': medium when the interval's "
                              f"lower end is at least {pct(self.confused_share_medium, 0)}, high when at least "
                              f"{pct(self.confused_share_high, 0)}, low when only the estimate reaches "
                              f"{pct(self.confused_share_medium, 0)}"))
            reverse = (f" In the other direction, {pct(back, 0)} ({level(conf)} CI {pct(back_lo, 0)}–"
                       f"{pct(back_hi, 0)}) of the {int(c.support[b])} actual '{label[b]}' rows are predicted "
                       f"'{label[a]}'."
                       if np.isfinite(back) else "")
            out.append(Finding(
                id=f"{self.id}/confused/{label[i]}/{label[j]}", check=self.id, severity=sev,
                title=(f"Classes '{label[a]}' and '{label[b]}' are confused: {pct(rate, 0)} of '{label[a]}' rows are "
                       f"predicted '{label[b]}'"),
                summary=(f"Of the {int(c.support[a])} test rows whose class is '{label[a]}', "
                         f"{int(c.confusion[a, b])} ({pct(rate, 0)}, {level(conf)} CI {pct(lo, 0)}–{pct(hi, 0)}) "
                         f"are predicted '{label[b]}'.{reverse} The model does not tell these two classes apart "
                         "reliably"
                         + ("" if sev is not Severity.LOW else ", although the interval cannot confirm the share is "
                            f"{pct(self.confused_share_medium, 0)} or more")
                         + f". Rule: {rule.text}."),
                metrics={"confused_share": rate, "confused_share_ci_low": lo, "confused_share_ci_high": hi,
                         "reverse_share": back, "count": int(c.confusion[a, b]), "support": int(c.support[a]),
                         "actual_class": label[a], "predicted_class": label[b]},
                remediation=(f"Look for features that separate '{label[a]}' from '{label[b]}', or check whether their "
                             "labels are consistent in the training data.",
                             "If the two classes need not be told apart for the decision, say so and merge them "
                             "explicitly; otherwise do not rely on the model for these classes."),
                evidence=("confusion_matrix", "by_class", "confusion_matrix_figure"),
                rule=rule,
            ))
        return out

    def _judge_classification(self, c: ClassificationMetrics, positive: str) -> list[Finding]:
        """Binary findings: AUC at chance or weak, a degenerate threshold, accuracy not above the majority."""
        out: list[Finding] = []
        auc_finding = self._auc_finding(c, positive)
        if auc_finding is not None:
            out.append(auc_finding)
        auc_high = auc_finding is not None and auc_finding.severity is Severity.HIGH
        share = c.predicted_positive_share
        degenerate = min(share, 1 - share) < self.degenerate_share
        if degenerate:
            out.append(self._degenerate_finding(c, positive))
        lift = c.accuracy_lift
        if not degenerate and not auc_high and np.isfinite(lift.low) and lift.low <= 0:
            out.append(self._lift_finding(c))
        return out

    def _auc_finding(self, c: ClassificationMetrics, positive: str) -> Finding | None:
        auc = c.auc
        if not np.isfinite(auc.value):
            return None
        metrics = {"auc": auc.value, "auc_ci_low": auc.low, "auc_ci_high": auc.high, "n": c.n}
        sev = self._auc_severity(auc)
        if sev is Severity.HIGH:
            inverted = auc.high < 0.5
            return Finding(
                id=f"{self.id}/auc", check=self.id, severity=Severity.HIGH,
                title=f"AUC {auc.value:.2f}: the model ranks {'worse than' if inverted else 'no better than'} chance",
                summary=(f"On {c.n} test rows the model's AUC is {_with_ci(auc, c.confidence)}. "
                         + ("Its scores are ordered the wrong way round: rows with higher scores are less "
                            f"often '{positive}'. Check the positive class and the label encoding."
                            if inverted else
                            "An AUC of 0.5 is what random scores achieve; the interval does not show the "
                            "model separating the two outcomes better than a coin flip would.")),
                metrics=metrics,
                remediation=("Do not deploy: the model does not separate the outcomes on this data.",
                             "Check that the test data, target column and positive class match the model's "
                             "training setup.",
                             "Retrain with informative features, or compare against a simple benchmark."),
                evidence=("metrics", "roc_pr"),
                rule=self._auc_rule("auc", auc, Severity.HIGH),
            )
        if sev is None:
            return None
        return Finding(
            id=f"{self.id}/auc", check=self.id, severity=sev,
            title=(f"Weak discrimination: AUC {auc.value:.2f} (below {self.weak_auc:.2f})"
                   if auc.value < self.weak_auc else
                   f"Discrimination not established: AUC {auc.value:.2f}, its interval includes 0.5"),
            summary=(f"On {c.n} test rows the AUC is {_with_ci(auc, c.confidence)}: better than chance, but the "
                     "model separates the outcomes only weakly, so many decisions will rest on small score "
                     "differences."),
            metrics=metrics,
            remediation=("Compare against a simple benchmark model before relying on this one.",
                         "Look for missing informative features or data-quality problems."),
            evidence=("metrics", "roc_pr"),
            rule=self._auc_rule("auc", auc, sev),
        )

    def _degenerate_finding(self, c: ClassificationMetrics, positive: str) -> Finding:
        share = c.predicted_positive_share
        side = f"'{positive}'" if share >= 0.5 else f"not '{positive}'"
        return Finding(
            id=f"{self.id}/degenerate_threshold", check=self.id, severity=Severity.MEDIUM,
            title=f"The threshold {c.threshold:g} puts {pct(max(share, 1 - share), 0)} of rows in one class",
            summary=(f"At the decision threshold {c.threshold:g}, {pct(share, 0)} of the {c.n} test rows are "
                     f"predicted '{positive}' while the observed rate is {pct(c.base_rate, 0)}. Almost every "
                     f"decision is {side}, so the threshold does not use what the model knows; accuracy, "
                     "precision and recall at this threshold say little."),
            metrics={"predicted_positive_share": share, "base_rate": c.base_rate, "threshold": c.threshold},
            remediation=("Choose the threshold from the business cost of errors (for example from the ROC or "
                         "precision–recall curve) and set it in [model] threshold.",
                         "Check that the model's probabilities are on the expected scale (see calibration)."),
            evidence=("confusion_matrix", "roc_pr"),
            rule=Rule(metric="predicted_positive_share", value=share, operator="outside",
                      threshold=(self.degenerate_share, 1 - self.degenerate_share),
                      text=f"medium when fewer than {pct(self.degenerate_share, 0)} of rows fall in one of the two "
                           "decisions"),
        )

    def _lift_finding(self, c: ClassificationMetrics) -> Finding:
        auc, lift = c.auc, c.accuracy_lift
        ranks_well = np.isfinite(auc.value) and auc.value >= self.good_auc
        return Finding(
            id=f"{self.id}/accuracy_vs_majority", check=self.id,
            severity=Severity.LOW if ranks_well else Severity.MEDIUM,
            title=(f"Accuracy {c.accuracy.value:.2f} is not significantly above always predicting the "
                   f"majority class ({c.majority_accuracy.value:.2f})"),
            summary=(f"At threshold {c.threshold:g} the model is right on {pct(c.accuracy.value, 0)} of test rows; "
                     f"always predicting the majority class would be right on {pct(c.majority_accuracy.value, 0)}. "
                     f"The gain is {lift.value:+.3f} ({level(c.confidence)} CI {lift.low:+.3f} to "
                     f"{lift.high:+.3f}), so the decisions are not shown to beat the trivial rule"
                     + (f", although the scores rank well (AUC {auc.value:.2f}): the threshold, not the "
                        "ranking, limits the decisions." if ranks_well else ".")),
            metrics={"accuracy": c.accuracy.value, "majority_accuracy": c.majority_accuracy.value,
                     "accuracy_lift": lift.value, "accuracy_lift_ci_low": lift.low,
                     "accuracy_lift_ci_high": lift.high, "p_value": c.accuracy_lift_p_value},
            remediation=("Revisit the decision threshold: with imbalanced outcomes 0.5 is rarely the right cut.",
                         "Judge the model on the metric that matters for the decision (costs, recall at a "
                         "fixed precision), not on accuracy alone."),
            evidence=("metrics", "confusion_matrix"),
            rule=self._lift_rule(lift, c.accuracy_lift_p_value, "the AUC"),
        )

    def _judge_regression(self, r: RegressionMetrics) -> list[Finding]:
        r2 = r.r2
        metrics = {"r2": r2.value, "r2_ci_low": r2.low, "r2_ci_high": r2.high, "rmse": r.rmse.value,
                   "std_target": r.std_target, "n": r.n}
        if r2.value <= self.min_r2:
            return [Finding(
                id=f"{self.id}/r2", check=self.id, severity=Severity.HIGH,
                title=f"R² {r2.value:.2f}: no better than predicting the average",
                summary=(f"On {r.n} test rows R² is {_with_ci(r2, r.confidence)}. A model that always predicts "
                         f"the mean of the target scores 0; this one's errors (RMSE {r.rmse.value:.4g}) are as "
                         f"large as or larger than the spread of the target itself (standard deviation "
                         f"{r.std_target:.4g})."),
                metrics=metrics,
                remediation=("Do not deploy: the predictions carry no usable information on this data.",
                             "Check that test data, target and units match the model's training setup."),
                evidence=("metrics", "predicted_vs_actual"),
                rule=Rule(metric="r2", value=r2.value, operator="<=", threshold=self.min_r2,
                          interval=(r2.low, r2.high), text=f"high when R² is at most {self.min_r2:g}"),
            )]
        if r2.value < self.weak_r2:
            return [Finding(
                id=f"{self.id}/r2", check=self.id, severity=Severity.MEDIUM,
                title=f"Weak fit: R² {r2.value:.2f} (below {self.weak_r2:.2f})",
                summary=(f"On {r.n} test rows R² is {_with_ci(r2, r.confidence)}: the model explains only a small "
                         "part of the variation in the target."),
                metrics=metrics,
                remediation=("Compare against a simple benchmark before relying on the predictions.",
                             "Look for missing informative features."),
                evidence=("metrics", "predicted_vs_actual"),
                rule=Rule(metric="r2", value=r2.value, operator="<", threshold=self.weak_r2,
                          interval=(r2.low, r2.high), text=f"medium when R² is below {self.weak_r2:g}"),
            )]
        return []

    # -- evidence --
    def evidence(self, m: MetricsMeasurement) -> Evidence:
        if m.multiclass is not None:
            return self._multiclass_evidence(m)
        if m.classification is not None:
            return self._classification_evidence(m.classification, m.positive_label)
        assert m.regression is not None
        return self._regression_evidence(m)

    def _classification_evidence(self, c: ClassificationMetrics, positive: str) -> Evidence:
        headline: dict[str, Any] = {}
        names = ("auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier")
        for name in names:
            headline.update(_estimate_metrics(name, getattr(c, name)))
        headline.update({"base_rate": c.base_rate, "majority_accuracy": c.majority_accuracy.value,
                         "average_precision": c.average_precision, "threshold": c.threshold,
                         "predicted_positive_share": c.predicted_positive_share, "n": c.n,
                         "n_positive": c.n_positive})
        labels = {"auc": "AUC", "accuracy": "Accuracy", "precision": "Precision", "recall": "Recall",
                  "f1": "F1", "log_loss": "Log loss", "brier": "Brier score",
                  "majority_accuracy": "Accuracy of always predicting the majority class"}
        records = [{"metric": labels[n], "value": getattr(c, n).value, "ci_low": getattr(c, n).low,
                    "ci_high": getattr(c, n).high} for n in (*names, "majority_accuracy")]
        records.append({"metric": "Base rate (share positive)", "value": c.base_rate, "ci_low": None, "ci_high": None})
        table = Table.from_records("metrics", f"Test metrics with {level(c.confidence)} bootstrap intervals", records,
                                   columns=("metric", "value", "ci_low", "ci_high"),
                                   caption=f"Accuracy, precision, recall and F1 at threshold {c.threshold:g}.")
        (tn, fp), (fn, tp) = c.confusion
        conf = Table.from_records(
            "confusion_matrix", f"Confusion matrix at threshold {c.threshold:g}",
            [{"actual": f"not {positive}", f"predicted not {positive}": tn, f"predicted {positive}": fp},
             {"actual": positive, f"predicted not {positive}": fn, f"predicted {positive}": tp}],
            columns=("actual", f"predicted not {positive}", f"predicted {positive}"),
            caption=f"Counts of the {c.n} test rows.")
        notes = (f"Bootstrap: {c.n_resamples} resamples of the {c.n} test rows; {level(c.confidence)} percentile "
                 "intervals.", f"Positive class: '{positive}'; decisions at threshold {c.threshold:g}.")
        figure = Figure("roc_pr", "ROC and precision–recall curves", plot="performance.roc_pr_figure",
                        data={"metrics": c}, caption=f"Test data, {c.n} rows, {c.n_positive} positive.")
        return Evidence(metrics=headline, tables=(table, conf), figures=(figure,), notes=notes)

    def _multiclass_evidence(self, m: MetricsMeasurement) -> Evidence:
        c = m.multiclass
        assert c is not None
        names = m.class_names
        k = c.n_classes
        headline: dict[str, Any] = {}
        shown = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "log_loss", "brier", "auc_ovr_macro")
        for name in shown:
            headline.update(_estimate_metrics(name, getattr(c, name)))
        headline.update(_estimate_metrics("accuracy_lift", c.accuracy_lift))
        headline.update({"majority_class": names[c.majority_class], "majority_accuracy": c.majority_accuracy.value,
                         "n": c.n, "n_classes": k})
        labels = {"accuracy": "Accuracy (k classes)", "balanced_accuracy": "Balanced accuracy",
                  "macro_f1": "Macro F1", "weighted_f1": "Weighted F1", "log_loss": "Log loss (multiclass)",
                  "brier": "Brier score (multiclass, 0 to 2)", "auc_ovr_macro": "Macro one-vs-rest AUC",
                  "majority_accuracy": f"Accuracy of always predicting '{names[c.majority_class]}'"}
        records = [{"metric": labels[n], "value": getattr(c, n).value, "ci_low": getattr(c, n).low,
                    "ci_high": getattr(c, n).high} for n in (*shown, "majority_accuracy")]
        table = Table.from_records("metrics", f"Test metrics with {level(c.confidence)} bootstrap intervals", records,
                                   columns=("metric", "value", "ci_low", "ci_high"),
                                   caption="Decisions: the most probable of the classes.")
        by_class = Table.from_records(
            "by_class", "Metrics by class (one class against the rest)",
            [{"class": names[i], "support": int(c.support[i]), "predicted": int(c.predicted_count[i]),
              "precision": float(c.precision[i]), "recall": float(c.recall[i]), "f1": float(c.f1[i]),
              "auc_ovr": float(c.auc_ovr[i])} for i in range(k)],
            columns=("class", "support", "predicted", "precision", "recall", "f1", "auc_ovr"),
            caption="Support: test rows of the class; predicted: rows predicted as the class.")
        first = "actual" if "actual" not in names else "actual class"
        conf = Table.from_records(
            "confusion_matrix", "Confusion matrix (rows: actual class, columns: predicted class)",
            [{first: names[i], **{names[j]: int(c.confusion[i, j]) for j in range(k)}} for i in range(k)],
            columns=(first, *names), caption=f"Counts of the {c.n} test rows.")
        fig = Figure("confusion_matrix_figure", "Confusion-matrix heat map", plot="performance.confusion_matrix_figure",
                     data={"confusion": c.confusion, "class_names": names},
                     caption=f"Counts and share of each actual class, {c.n} test rows.")
        notes = [f"k-class audit of {k} classes ({', '.join(names)}): the decision is the most probable class; "
                 "the positive class and the threshold do not enter these metrics.",
                 f"Bootstrap: {c.n_resamples} resamples of the {c.n} test rows; {level(c.confidence)} percentile "
                 "intervals (also for each confusion share).",
                 "Brier score: mean over rows of the sum over classes of (probability - 1 if the row's class else 0)², "
                 "from 0 (perfect) to 2; sklearn's brier_score_loss for k classes.",
                 "Macro one-vs-rest AUC: mean over classes of the AUC of that class's probability against all other "
                 "rows (sklearn roc_auc_score, multi_class='ovr', average='macro')."]
        absent = [names[i] for i in range(k) if c.support[i] == 0]
        if absent:
            notes.append(f"No test rows of class {', '.join(repr(a) for a in absent)}: its one-vs-rest AUC, and so the "
                         "macro AUC, is not defined; its recall does not enter the balanced accuracy.")
        notes += _unknown_note(m.n_unknown, "test")
        return Evidence(metrics=headline, tables=(table, by_class, conf), figures=(fig,), notes=tuple(notes))

    def _regression_evidence(self, m: MetricsMeasurement) -> Evidence:
        r = m.regression
        assert r is not None
        headline: dict[str, Any] = {}
        for name in ("rmse", "mae", "r2"):
            headline.update(_estimate_metrics(name, getattr(r, name)))
        headline.update({"mean_target": r.mean_target, "std_target": r.std_target, "n": r.n})
        labels = {"rmse": "RMSE", "mae": "MAE", "r2": "R²"}
        records = [{"metric": labels[n], "value": getattr(r, n).value, "ci_low": getattr(r, n).low,
                    "ci_high": getattr(r, n).high} for n in ("rmse", "mae", "r2")]
        table = Table.from_records("metrics", f"Test metrics with {level(r.confidence)} bootstrap intervals", records,
                                   columns=("metric", "value", "ci_low", "ci_high"))
        notes = [f"Bootstrap: {r.n_resamples} resamples of the {r.n} test rows; {level(r.confidence)} percentile "
                 "intervals."]
        if m.plot_actual is not None and len(m.plot_actual) < r.n:
            notes.append(f"The predicted-vs-actual figure shows a seeded sample of {len(m.plot_actual)} rows.")
        assert m.plot_actual is not None and m.plot_predicted is not None
        figure = Figure("predicted_vs_actual", "Predicted vs actual", plot="performance.predicted_actual_figure",
                        data={"actual": m.plot_actual, "predicted": m.plot_predicted, "r2": r.r2.value},
                        caption=f"{len(m.plot_actual)} of {r.n} test rows.")
        return Evidence(metrics=headline, tables=(table,), figures=(figure,), notes=tuple(notes))


# ---- performance.overfit ------------------------------------------------------------------------

@dataclass(frozen=True)
class OverfitMeasurement:
    result: GapResult
    n_train_total: int
    sampled: bool
    n_unknown: int = 0  # k classes: train/test rows whose target is not a model class (left out)


@dataclass
class OverfitCheck(Check[OverfitMeasurement]):
    """The gap between performance on the training data and on the test data, with a bootstrap
    CI of the gap (both splits resampled independently).

    Classification: AUC and log loss (also accuracy and Brier); k classes: the macro one-vs-rest
    AUC with the same thresholds, and the multiclass log loss, accuracy and Brier score;
    regression: R² and RMSE (also MAE).
    ``medium`` when the AUC gap is >= ``auc_gap_medium`` (R²: ``r2_gap_medium``) and its interval
    (``confidence``, 99%) excludes 0; ``high`` when the interval's lower end is >= ``auc_gap_high``
    (R²: ``r2_gap_high``), so the large gap is established, not only estimated (issue 10: a boosted
    regressor on scikit-learn's diabetes data, tuned by a grid search, has an R² gap of 0.30 whose
    interval reaches well below 0.25; that is medium); ``low`` when a gap of medium size is within
    the noise. The 99% level keeps an
    unlucky test split of a sound model from reading as overfitting (German credit, logistic
    regression, 30 random 70/30 splits: 20% medium at 95%, 10% at 99%). Skipped without training
    data.
    """

    id: ClassVar[str] = "performance.overfit"
    family = PERFORMANCE
    order = 2
    title: ClassVar[str] = "Train/test gap"

    n_bootstrap: int = budget(400, "bootstrap resamples of each split")
    confidence: float = setting(0.99, "confidence level of the interval of the gap")
    max_train_rows: int = budget(20000, "training rows used (a seeded sample beyond)")
    auc_gap_medium: float = threshold(0.05, "AUC gap train - test that is medium when its interval excludes 0")
    auc_gap_high: float = threshold(0.15, "AUC gap train - test that is high when its interval excludes 0")
    r2_gap_medium: float = threshold(0.10, "R² gap train - test that is medium when its interval excludes 0")
    r2_gap_high: float = threshold(0.25, "R² gap train - test that is high when its interval excludes 0")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not ctx.has_train:
            return "no training data given ([data] train), so the train/test gap cannot be measured"
        return None

    def measure(self, ctx: AuditContext) -> OverfitMeasurement:
        rng = ctx.rng(self.id)
        tr, te = ctx.predictions("train"), ctx.predictions("test")
        if ctx.is_multiclass:
            assert tr.proba is not None and te.proba is not None
            y_tr, known_tr = _known_rows(ctx, "train")
            y_te, known_te = _known_rows(ctx, "test")
            rows = np.flatnonzero(known_tr)
            rows = rows[sample_positions(len(rows), self.max_train_rows, rng)]
            result = train_test_gap(y_tr[rows], tr.proba[rows], y_te[known_te], te.proba[known_te], task="multiclass",
                                    n_resamples=self.n_bootstrap, confidence=self.confidence, rng=rng)
            return OverfitMeasurement(result, int(known_tr.sum()), len(rows) < int(known_tr.sum()),
                                      n_unknown=int((~known_tr).sum() + (~known_te).sum()))
        y_tr, y_te = ctx.y_task("train"), ctx.y_task("test")
        n_total = len(y_tr)
        idx = sample_positions(n_total, self.max_train_rows, rng)
        result = train_test_gap(y_tr[idx], tr.score[idx], y_te, te.score, task=ctx.task, threshold=ctx.threshold,
                                n_resamples=self.n_bootstrap, confidence=self.confidence, rng=rng)
        return OverfitMeasurement(result, n_total, len(idx) < n_total)

    def judge(self, m: OverfitMeasurement) -> list[Finding]:
        r = m.result
        if r.task == "classification":
            key, label, medium, high = "auc", "AUC", self.auc_gap_medium, self.auc_gap_high
            other = r.get("log_loss")
        elif r.task == "multiclass":
            key, label, medium, high = "auc_ovr_macro", "Macro one-vs-rest AUC", self.auc_gap_medium, self.auc_gap_high
            other = r.get("log_loss")
        else:
            key, label, medium, high = "r2", "R²", self.r2_gap_medium, self.r2_gap_high
            other = r.get("rmse")
        g = r.get(key)
        gap = g.gap
        if not np.isfinite(gap.value) or gap.value < medium:
            return []
        significant = np.isfinite(gap.low) and gap.low > 0
        if not significant:
            severity = Severity.LOW
        else:
            # high blocks sign-off, so the large gap itself must be established: the interval's lower
            # end, not the point estimate, reaches the high threshold
            severity = Severity.HIGH if gap.low >= high else Severity.MEDIUM
        summary = (f"{label} is {g.train.value:.3f} on the training data ({r.n_train} rows) but {g.test.value:.3f} on "
                   f"the test data ({r.n_test} rows): a gap of {gap.value:.3f} ({level(r.confidence)} CI "
                   f"{gap.low:.3f} to {gap.high:.3f}). {_METRIC_LABELS[other.metric]} is "
                   f"{other.train.value:.4g} on train and {other.test.value:.4g} on test. ")
        if r.task == "multiclass":
            acc = r.get("accuracy")
            summary += (f"The k-class accuracy is {acc.train.value:.3f} on train and "
                        f"{acc.test.value:.3f} on test (gap {acc.gap.value:.3f}, {level(r.confidence)} CI "
                        f"{acc.gap.low:.3f} to {acc.gap.high:.3f}). ")
        if significant:
            summary += ("The model performs clearly better on the rows it was trained on, so it has partly "
                        "memorised them; its test performance is the one to expect in use.")
        else:
            summary += "The interval includes 0, so the sample cannot confirm the gap."
        rule = Rule(metric=f"{key}_gap", value=gap.value, operator=">=", threshold=(medium, high),
                    interval=(gap.low, gap.high),
                    text=(f"medium when the gap is at least {medium:g} and its {level(r.confidence)} interval "
                          f"excludes 0, high when the interval's lower end is at least {high:g}, low when the "
                          "interval includes 0"))
        summary += f" Rule: {rule.text}."
        return [Finding(
            id=f"{self.id}/{key}_gap", check=self.id, severity=severity,
            title=f"{label} drops by {gap.value:.2f} from train ({g.train.value:.2f}) to test ({g.test.value:.2f})",
            summary=summary,
            metrics={f"{key}_train": g.train.value, f"{key}_test": g.test.value, f"{key}_gap": gap.value,
                     f"{key}_gap_ci_low": gap.low, f"{key}_gap_ci_high": gap.high,
                     f"{other.metric}_train": other.train.value, f"{other.metric}_test": other.test.value},
            remediation=("Regularise the model (limit depth or leaves, raise minimum leaf size, add penalties) and "
                         "choose its complexity by cross-validation.",
                         "Report and rely on held-out performance only."),
            evidence=("gap", "train_vs_test"),
            rule=rule,
        )]

    def evidence(self, m: OverfitMeasurement) -> Evidence:
        r = m.result
        headline: dict[str, Any] = {"n_train": r.n_train, "n_test": r.n_test}
        records = []
        for g in r.gaps:
            headline.update({f"{g.metric}_train": g.train.value, f"{g.metric}_test": g.test.value,
                             f"{g.metric}_gap": g.gap.value, f"{g.metric}_gap_ci_low": g.gap.low,
                             f"{g.metric}_gap_ci_high": g.gap.high})
            records.append({"metric": _METRIC_LABELS[g.metric], "train": g.train.value, "test": g.test.value,
                            "gap": g.gap.value, "gap_ci_low": g.gap.low, "gap_ci_high": g.gap.high})
        table = Table.from_records("gap", f"Train vs test with the {level(r.confidence)} interval of the gap", records,
                                   columns=("metric", "train", "test", "gap", "gap_ci_low", "gap_ci_high"),
                                   caption="Gap oriented so that positive means better on train.")
        notes = [f"Bootstrap: {r.n_resamples} resamples of each split, drawn independently; {level(r.confidence)} "
                 "percentile intervals of the gap."]
        if m.sampled:
            notes.append(f"Train rows are sampled to at most {self.max_train_rows} for speed: {r.n_train} of "
                         f"{m.n_train_total} used.")
        else:
            notes.append(f"All {r.n_train} train rows used (train is sampled to at most {self.max_train_rows} "
                         "rows for speed).")
        if r.task == "multiclass":
            notes.append("k-class gaps: macro one-vs-rest AUC, multiclass log loss, k-class accuracy (most probable "
                         "class) and multiclass Brier score (sum over classes of squared errors).")
            if m.n_unknown:
                notes.append(f"{m.n_unknown} rows whose target is not one of the model's classes are left out.")
        figure = Figure("train_vs_test", "Train vs test", plot="performance.gap_figure",
                        data={"result": r, "labels": _METRIC_LABELS},
                        caption=f"Point estimates with {level(r.confidence)} bootstrap intervals.")
        return Evidence(metrics=headline, tables=(table,), figures=(figure,), notes=tuple(notes))


_METRIC_LABELS = {"auc": "AUC", "log_loss": "Log loss", "accuracy": "Accuracy", "brier": "Brier score",
                  "r2": "R²", "rmse": "RMSE", "mae": "MAE", "auc_ovr_macro": "Macro one-vs-rest AUC"}


# ---- performance.calibration --------------------------------------------------------------------

@dataclass(frozen=True)
class CalibrationMeasurement:
    result: CalibrationResult
    positive_label: str
    top_label: bool = False  # k classes: confidence of the predicted class vs whether it is right
    n_unknown: int = 0


@dataclass
class CalibrationCheck(Check[CalibrationMeasurement]):
    """How well predicted probabilities match observed rates: reliability curve (10 quantile bins),
    expected calibration error (ECE, equal-count bins), the Brier score and its reliability part,
    and a logistic recalibration (slope < 1: over-confident; > 1: under-confident).

    The ECE is tested by consistency resampling: outcomes drawn from the model's own probabilities
    give the ECE a calibrated model would show on this sample. A finding needs both significance
    (p < ``alpha``) and size: ``medium`` when ECE >= ``ece_medium``, ``high`` when >= ``ece_high``.
    k classes: top-label calibration (the probability of the predicted class against the share of
    rows where it is right), with the same test and thresholds. Skipped for regression.
    """

    id: ClassVar[str] = "performance.calibration"
    family = PERFORMANCE
    order = 3
    title: ClassVar[str] = "Calibration"

    ece_medium: float = threshold(0.05, "expected calibration error at which a significant miscalibration is medium")
    ece_high: float = threshold(0.10, "expected calibration error at which a significant miscalibration is high")
    alpha: float = threshold(0.01, "significance level of the consistency-resampling test of the ECE")
    n_bins: int = setting(10, "equal-count bins of the reliability curve and the ECE")
    n_resamples: int = budget(200, "consistency resamples (outcomes drawn from the model's own probabilities)")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not ctx.is_classification:
            return "calibration applies to predicted probabilities; this is a regression model"
        return None

    def measure(self, ctx: AuditContext) -> CalibrationMeasurement:
        if ctx.is_multiclass:
            proba = ctx.predictions("test").proba
            assert proba is not None
            y, known = _known_rows(ctx, "test")
            result = top_label_calibration(y[known], proba[known], n_bins=self.n_bins, n_resamples=self.n_resamples,
                                           rng=ctx.rng(self.id))
            return CalibrationMeasurement(result, "", top_label=True, n_unknown=int((~known).sum()))
        result = calibration_analysis(ctx.y_task("test"), ctx.predictions("test").score, n_bins=self.n_bins,
                                      n_resamples=self.n_resamples, rng=ctx.rng(self.id))
        return CalibrationMeasurement(result, str(ctx.positive_class))

    def judge(self, m: CalibrationMeasurement) -> list[Finding]:
        r = m.result
        if not (r.p_value < self.alpha and r.ece >= self.ece_medium):
            return []
        severity = Severity.HIGH if r.ece >= self.ece_high else Severity.MEDIUM
        direction = r.direction
        what = {
            "over-confident": "over-confident: its probabilities are too extreme (too close to 0 and 1)",
            "under-confident": "under-confident: its probabilities are squashed towards the middle",
            "too high": "biased upwards: its probabilities are too high on average",
            "too low": "biased downwards: its probabilities are too low on average",
            "none": "miscalibrated in a way that varies across the score range",
        }[direction]
        if m.top_label:
            what = {
                "over-confident": "over-confident: the probability of its predicted class rises faster than its "
                                  "accuracy",
                "under-confident": "under-confident: its accuracy rises faster than the probability of its "
                                   "predicted class",
                "too high": "over-confident on average: the probability of its predicted class exceeds how often "
                            "that prediction is right",
                "too low": "under-confident on average: its predictions are right more often than the probability "
                           "of the predicted class says",
                "none": "miscalibrated in a way that varies across the confidence range",
            }[direction]
        lo, hi = 0, len(r.bin_count) - 1
        rule = Rule(metric="top_label_ece" if m.top_label else "ece", value=r.ece, operator=">=",
                    threshold=(self.ece_medium, self.ece_high), p_value=r.p_value,
                    text=(f"medium when the ECE is at least {self.ece_medium:g} and the consistency-resampling test "
                          f"gives p < {self.alpha:g}; high when the ECE is at least {self.ece_high:g} and p < "
                          f"{self.alpha:g}"))
        drop = f"{r.ece * 100:.1f} percentage points"
        if m.top_label:
            summary = (f"Top-label calibration (the probability of the predicted class against how often that "
                       f"prediction is right): the model is {what}. The top-label expected calibration error is "
                       f"{fixed(r.ece, 3)}: on average the confidence of the predicted class is off by {drop} from its "
                       f"accuracy. Among the least confident tenth of rows the model "
                       f"gives its predicted class {r.bin_predicted[lo]:.2f} on average and is right on "
                       f"{r.bin_observed[lo]:.2f}; among the most confident tenth it gives {r.bin_predicted[hi]:.2f} "
                       f"and is right on {r.bin_observed[hi]:.2f}. ")
        else:
            summary = (f"The model is {what}. The expected calibration error is {r.ece:.3f}: on average a predicted "
                       f"probability of '{m.positive_label}' is off by {r.ece * 100:.1f} percentage points from the "
                       f"observed rate. In the lowest tenth of scores the model predicts {r.bin_predicted[lo]:.2f} on "
                       f"average and {r.bin_observed[lo]:.2f} of rows are positive; in the highest tenth it predicts "
                       f"{r.bin_predicted[hi]:.2f} and {r.bin_observed[hi]:.2f} are. ")
        summary += (f"A calibrated model would show an "
                    f"ECE of at most {fixed(r.ece_null_q95, 3)} on this sample (95th percentile of consistency "
                    f"resampling; p = {r.p_value:.3f}). Recalibration slope {r.slope:.2f} (1 = calibrated). "
                    f"Rule: {rule.text}.")
        remediation = ["Recalibrate on held-out data (sklearn CalibratedClassifierCV with method='sigmoid' or "
                       "'isotonic') before the scores are used as probabilities.",
                       "If only the ranking or the decision is used, state that the scores are not probabilities."]
        if direction == "over-confident":
            remediation.insert(1, "Over-confidence often comes with overfitting: check performance.overfit and "
                                  "regularise the model.")
        shown = direction if direction != "none" else "miscalibrated"
        if m.top_label and direction in ("too high", "too low"):
            shown = "over-confident on average" if direction == "too high" else "under-confident on average"
        return [Finding(
            id=f"{self.id}/{'top_label_ece' if m.top_label else 'ece'}", check=self.id, severity=severity,
            title=(f"{'Top-label probabilities' if m.top_label else 'Probabilities'} are {shown}: "
                   f"calibration error {r.ece:.2f} (p = {r.p_value:.3f})"),
            summary=summary,
            metrics={"ece": r.ece, "p_value": r.p_value, "ece_null_q95": r.ece_null_q95,
                     "calibration_slope": r.slope, "calibration_intercept": r.intercept,
                     "mean_predicted": r.mean_predicted, "observed_rate": r.observed_rate,
                     "brier": r.brier, "brier_reliability": r.reliability},
            remediation=tuple(remediation),
            evidence=("reliability_bins", "reliability"),
            rule=rule,
        )]

    def evidence(self, m: CalibrationMeasurement) -> Evidence:
        r = m.result
        headline: dict[str, Any] = {"ece": r.ece, "ece_p_value": r.p_value, "ece_null_mean": r.ece_null_mean,
                    "ece_null_q95": r.ece_null_q95, "brier": r.brier, "brier_reliability": r.reliability,
                    "brier_resolution": r.resolution, "brier_uncertainty": r.uncertainty,
                    "calibration_slope": r.slope, "calibration_intercept": r.intercept,
                    "mean_predicted": r.mean_predicted, "observed_rate": r.observed_rate, "n": r.n}
        records = [{"bin": k + 1, "rows": int(r.bin_count[k]), "mean_predicted": float(r.bin_predicted[k]),
                    "observed_rate": float(r.bin_observed[k]), "calibrated_range_low": float(r.band_low[k]),
                    "calibrated_range_high": float(r.band_high[k])} for k in range(len(r.bin_count))]
        title = ("Confidence of the predicted class vs accuracy by confidence bin (equal-count bins)" if m.top_label
                 else "Predicted vs observed by score bin (equal-count bins)")
        table = Table.from_records(
            "reliability_bins", title, records,
            columns=("bin", "rows", "mean_predicted", "observed_rate", "calibrated_range_low", "calibrated_range_high"),
            caption=("Calibrated range: where 95% of observed rates would fall if the probabilities were right."
                     + (" Top label: mean_predicted is the mean probability of the predicted class, observed_rate "
                        "the share of those predictions that are right." if m.top_label else "")))
        notes = [f"{r.n_bins} equal-count bins of the {r.n} test rows; the reliability curve uses "
                 "sklearn's calibration_curve with quantile bins.",
                 f"Consistency resampling: {r.n_resamples} draws of outcomes from the model's own probabilities; "
                 "p-value = (1 + draws with ECE >= observed) / (1 + draws).",
                 "Brier score = reliability - resolution + uncertainty (binned decomposition)."]
        if m.top_label:
            headline["calibration"] = "top-label"
            notes.insert(0, "k classes: top-label calibration. Each row contributes the probability of its predicted "
                            "(most probable) class and whether that prediction is right; ECE, Brier score, slope and "
                            "the consistency test are computed on these pairs. Per-class probabilities are not "
                            "tested one by one.")
            notes += _unknown_note(m.n_unknown, "test")
        figure = Figure("reliability", "Top-label reliability diagram" if m.top_label else "Reliability diagram",
                        plot="performance.reliability_figure", data={"result": r, "top_label": m.top_label},
                        caption=("Top: share of right predictions against the mean probability of the predicted class "
                                 "per quantile bin. Bottom: distribution of that probability." if m.top_label else
                                 "Top: observed rate against mean predicted probability per quantile bin. "
                                 "Bottom: distribution of the predicted probabilities."))
        return Evidence(metrics=headline, tables=(table,), figures=(figure,), notes=tuple(notes))
