"""benchmark.comparison: the model against simple, interpretable benchmarks trained on the same data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..analysis.benchmark import (
    BenchmarkFit,
    Disagreement,
    MetricComparison,
    PairedComparison,
    Segment,
    Task,
    compare_paired,
    disagreement,
    figure_rows,
    fit_benchmarks,
)
from ..findings import Evidence, Figure, Finding, Rule, Severity, Table
from ..model import final_estimator, is_linear_model
from ..wording import MINUS, fixed, level, num, p_value, pct, sig, signed
from ._classes import unknown_class_reason
from .base import BENCHMARK, Check, budget, setting, threshold

if TYPE_CHECKING:
    from ..context import AuditContext

_LABELS = {"auc": "AUC", "auc_ovr_macro": "AUC (macro one-vs-rest)", "accuracy": "Accuracy", "log_loss": "Log loss",
           "rmse": "RMSE", "mae": "MAE", "r2": "R²"}
_MAX_SEGMENT_ROWS = 15
_SHORT_TESTS = {"McNemar (exact)": "McNemar", "paired bootstrap": "bootstrap",
                "paired t-test on per-row log loss": "paired t",
                "paired t-test on squared errors": "paired t (squared errors)",
                "paired t-test on absolute errors": "paired t (absolute errors)"}
_OVERALL_EVIDENCE = ("comparison", "benchmarks", "benchmark_comparison")
_ROUTINE_RULE = ("Not significantly better is low instead of medium when the model is itself a linear model and "
                 "the benchmark the linear one, or when the benchmark's distance to a perfect score (1 − AUC; "
                 "RMSE) is at most the half-width of the interval (both at the ceiling).")


@dataclass(frozen=True)
class BenchmarkMeasurement:
    task: Task
    threshold: float
    confidence: float
    n_train_total: int
    n_train_used: int
    n_test: int
    model_kind: str  # the final estimator's class name, when it can be seen
    model_is_linear: bool  # the model under audit is itself a linear model
    fits: tuple[BenchmarkFit, ...]  # fits[0] is the linear benchmark
    comparisons: tuple[PairedComparison, ...]  # one per fit, same order
    disagreement: Disagreement  # model against fits[0]
    y: np.ndarray  # test target (0/1 for classification)
    model_score: np.ndarray
    margin: float  # regression disagreement margin in target units
    examples: tuple[dict[str, Any], ...]  # feature values etc. of disagreement examples, plain values
    example_columns: tuple[str, ...]
    classes: tuple[Any, ...] = ()  # k > 2 classes: the model's classes (scores are n x k matrices)

    @property
    def multiclass(self) -> bool:
        return len(self.classes) > 2


def _value(x: float, task: str) -> str:
    """A metric value in a sentence: three decimals for classification metrics, four significant
    digits for regression errors (in target units)."""
    return fixed(x, 3) if task == "classification" else num(x, 4)


def _no_difference(c: MetricComparison) -> bool:
    """Model and benchmark score the same on every resample (AUC 1.000 and 1.000): the difference
    and its interval would all print as zero."""
    d = c.difference
    return max(abs(d.value), abs(d.low), abs(d.high)) < 5e-6


def _delta(c: MetricComparison, task: str, confidence: float) -> str:
    d = c.difference
    if _no_difference(c):
        return "no difference on any resample of the test rows"
    if task == "classification":
        digits = 3 if max(abs(d.value), abs(d.low), abs(d.high)) >= 0.01 else 5
        return (f"Δ {signed(d.value, digits)}, {level(confidence)} CI {signed(d.low, digits)} to "
                f"{signed(d.high, digits)}")

    def g(x: float) -> str:  # regression differences are in target units: three significant digits
        return f"{x:+.3g}".replace("-", MINUS)

    return f"Δ {g(d.value)}, {level(confidence)} CI {g(d.low)} to {g(d.high)}"


def _segment_text(s: Segment) -> str:
    lv = s.level
    if lv.startswith("≤ ") or lv.startswith("> "):
        return f"{s.feature} {lv}"
    if lv.startswith("("):
        return f"{s.feature} in {lv}"
    return f"{s.feature} = {lv}"


@dataclass
class BenchmarkCheck(Check[BenchmarkMeasurement]):
    """The model against simple, interpretable benchmarks trained on the same training rows and
    features: a penalized logistic (ridge for regression) regression with regularisation chosen by a
    small internal CV, and a shallow decision tree. Compared on the test data with paired uncertainty
    (AUC: DeLong; accuracy: exact McNemar; other metrics: paired bootstrap); the rows and
    single-feature segments where the linear benchmark is right and the model wrong are analysed.

    ``high`` when the model is significantly worse than a benchmark on the primary metric (AUC or
    RMSE; CI of the difference entirely on the worse side) by at least ``high_min_auc_gap`` (RMSE:
    ratio ``high_min_rmse_ratio``). ``medium`` when it is not significantly better than every
    benchmark (complexity without benefit; also when significantly worse by less than that margin),
    and for each feature with a segment where the benchmark's wins concentrate (Fisher exact against
    the other rows, Benjamini–Hochberg q <= ``segment_alpha``), the benchmark is right more often than
    the model there (exact sign test p <= ``segment_alpha``), the segment has at least
    ``min_segment_rows`` rows, and the accuracy gap is >= ``segment_min_accuracy_gap`` (RMSE ratio
    >= ``segment_min_rmse_ratio``). ``info`` when the model is significantly better than every benchmark.
    Skipped without training data.

    Routine, so ``low`` instead of ``medium`` (issue 10): "not significantly better" when the model is
    itself a linear model (``sklearn.linear_model``) and the benchmark is the linear one (a GLM on a
    par with a GLM of its kind is expected), or when both are at the ceiling: the benchmark's distance
    to a perfect score (1 − AUC; RMSE) is at most the half-width of the difference's interval, so not
    even a perfect model could be shown significantly better on these test rows (AUC 1.000 against
    1.000). A model significantly worse than the benchmark is never routine.
    """

    id: ClassVar[str] = "benchmark.comparison"
    family = BENCHMARK
    order = 1
    cost = 3
    title: ClassVar[str] = "Benchmark model comparison"

    max_train_rows: int = budget(20000, "training rows the benchmarks are trained on (a seeded sample beyond)")
    cv_folds: int = setting(3, "folds of the internal CV that chooses the linear benchmark's regularisation")
    tree_depth: int = setting(4, "depth of the decision-tree benchmark (0 leaves the tree out)")
    tree_min_leaf: int = setting(20, "minimum training rows per leaf of the tree benchmark")
    min_category_count: int = setting(10, "categorical levels seen fewer times than this are pooled when encoding")
    n_resamples: int = budget(200, "paired bootstrap resamples of the test rows")
    confidence: float = setting(0.95, "confidence level of the intervals of the differences")
    high_min_auc_gap: float = threshold(0.01, "AUC shortfall (interval's end nearest 0) at which worse is high")
    high_min_rmse_ratio: float = threshold(1.02, "RMSE ratio model / benchmark (interval's end) at which worse is high")
    regression_margin: float = setting(0.1, "regression: a model is closer on a row by more than this many "
                                            "standard deviations of the test target")
    n_bins: int = setting(5, "quantile bins of a numeric feature for the disagreement segments")
    min_segment_rows: int = threshold(30, "test rows a segment needs to be tested and reported")
    segment_alpha: float = threshold(0.05, "Benjamini-Hochberg q and sign-test p at most this make a segment medium")
    segment_min_accuracy_gap: float = threshold(0.05, "accuracy gap benchmark - model a segment needs to be medium")
    segment_min_rmse_ratio: float = threshold(1.1, "RMSE ratio model / benchmark a segment needs to be medium")
    max_segment_findings: int = budget(3, "segment findings reported at most (strongest first)")
    max_examples: int = budget(10, "example rows where the benchmark is right and the model wrong")
    max_example_features: int = budget(6, "feature columns shown in the example rows")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not ctx.has_train:
            return ("no training data given ([data] train): the benchmark must be trained on the model's own "
                    "training data")
        if ctx.is_multiclass:
            unknown = unknown_class_reason(ctx)
            if unknown:
                return unknown
            counts = np.bincount(ctx.y_index("train")[ctx.y_index("train") >= 0], minlength=ctx.n_classes)
            if counts.min() < 2 * self.cv_folds:
                return (f"the training data has fewer than {2 * self.cv_folds} rows of a class "
                        f"({ctx.classes[int(np.argmin(counts))]!r}) to train and tune a k-class benchmark")
            return None
        if ctx.is_classification and np.bincount(ctx.y_binary("train"), minlength=2).min() < 2 * self.cv_folds:
            return "the training data has too few rows of one class to train and tune a benchmark"
        return None

    # -- measurement --
    def measure(self, ctx: AuditContext) -> BenchmarkMeasurement:
        rng = ctx.rng(self.id)
        task: Task = "classification" if ctx.is_classification else "regression"
        n_total = len(ctx.frame("train"))
        pos = ctx.sample_index(n_total, self.max_train_rows, self.id + ":train")
        multi = ctx.is_multiclass
        X_train = ctx.X("train").iloc[pos]
        X_test = ctx.X("test")
        if multi:  # k classes: class indices and n x k probabilities, never positive-vs-rest
            y_train = ctx.y_index("train")[pos]
            y = ctx.y_index("test")
            score = np.asarray(ctx.predictions("test").proba, dtype=float)
        else:
            y_train = ctx.y_task("train")[pos]
            y = ctx.y_task("test")
            score = np.asarray(ctx.predictions("test").score, dtype=float)

        fits = fit_benchmarks(X_train, y_train, X_test, task=task, numeric=ctx.numeric, categorical=ctx.categorical,
                              cv_folds=self.cv_folds, min_category_count=self.min_category_count,
                              tree_depth=self.tree_depth, tree_min_leaf=self.tree_min_leaf,
                              seed=int(rng.integers(2 ** 31 - 1)), n_classes=ctx.n_classes if multi else 2)
        comparisons = tuple(
            compare_paired(y, score, f.score, task=task, benchmark=f.name, threshold=ctx.threshold,
                           n_resamples=self.n_resamples, confidence=self.confidence, rng=rng) for f in fits)
        margin = self.regression_margin * float(np.std(y)) if task == "regression" else 0.0
        dis = disagreement(X_test, y, score, fits[0].score, task=task, threshold=ctx.threshold, margin=margin,
                           n_bins=self.n_bins, min_support=self.min_segment_rows, max_examples=self.max_examples,
                           categorical=ctx.categorical)
        final = final_estimator(ctx.model.adapter)
        kind = type(final).__name__ if final is not None else str(getattr(ctx.model.adapter, "kind", ""))
        examples, columns = self._examples(ctx, dis, y, score, fits[0].score)
        return BenchmarkMeasurement(
            task=task, threshold=float(ctx.threshold), confidence=self.confidence, n_train_total=n_total,
            n_train_used=len(pos), n_test=len(y), model_kind=kind, model_is_linear=is_linear_model(final),
            fits=fits, comparisons=comparisons, disagreement=dis, y=y, model_score=score, margin=margin,
            examples=examples, example_columns=columns, classes=tuple(ctx.classes) if multi else ())

    def _examples(self, ctx: AuditContext, dis: Disagreement, y: np.ndarray, score: np.ndarray,
                  bench_score: np.ndarray) -> tuple[tuple[dict[str, Any], ...], tuple[str, ...]]:
        """The disagreement example rows as plain values (segment features first), and their columns."""
        multi = ctx.is_multiclass
        seg_features = [s.feature for s in dis.segments if s.q_value <= self.segment_alpha]
        ordered = list(dict.fromkeys(seg_features + list(ctx.features)))[: self.max_example_features]
        id_col = ctx.config.data.id
        raw_y = ctx.y("test")
        Xf = ctx.frame("test")
        X_test = ctx.X("test")
        examples = []
        for i in dis.examples:
            rec: dict[str, Any] = {"row": int(i)}
            if id_col:
                rec[id_col] = Xf[id_col].iloc[i]
            rec.update({c: X_test[c].iloc[i] for c in ordered})
            rec["target"] = raw_y[i]
            if multi:
                rec["model_class"] = ctx.classes[int(np.argmax(score[i]))]
                rec["model_p_target"] = float(score[i, y[i]])
                rec["benchmark_class"] = ctx.classes[int(np.argmax(bench_score[i]))]
                rec["benchmark_p_target"] = float(bench_score[i, y[i]])
            else:
                rec["model_score"] = float(score[i])
                rec["benchmark_score"] = float(bench_score[i])
            examples.append(rec)
        tail = (("model_class", "model_p_target", "benchmark_class", "benchmark_p_target") if multi
                else ("model_score", "benchmark_score"))
        columns = ("row", *((id_col,) if id_col else ()), *ordered, "target", *tail)
        return tuple(examples), columns

    # -- judgement --
    def judge(self, m: BenchmarkMeasurement) -> list[Finding]:
        out = self._overall(m)
        out += self._segments(m)
        return out

    def _material(self, c: MetricComparison) -> bool:
        """Is a significant shortfall large enough to block sign-off? Judged on the interval's end
        nearest to no difference, so the shortfall is at least the margin with the stated confidence."""
        if c.metric in ("auc", "auc_ovr_macro"):
            return -c.difference.high >= self.high_min_auc_gap
        return c.benchmark > 0 and c.difference.low >= (self.high_min_rmse_ratio - 1) * c.benchmark

    def _rule(self, c: MetricComparison, sev: Severity, confidence: float) -> Rule:
        d = c.difference
        name = _LABELS[c.metric]
        if c.metric in ("auc", "auc_ovr_macro"):
            thr: Any = -self.high_min_auc_gap
            measured = (f"{name} the same for model and benchmark on every resample" if _no_difference(c) else
                        f"{name} difference model − benchmark {d.value:+.4f}, {level(confidence)} interval "
                        f"[{d.low:+.4f}, {d.high:+.4f}]")
            text = (f"{measured}: {sev.value}. High when the whole interval is at or below "
                    f"{-self.high_min_auc_gap:+g}; medium when the model is not significantly better (interval "
                    f"not entirely above 0); info when it is. {_ROUTINE_RULE}")
            return Rule(f"{c.metric}_difference", d.value, "<=", thr, interval=(d.low, d.high), p_value=c.p_value,
                        text=text)
        thr = (self.high_min_rmse_ratio - 1) * c.benchmark
        measured = (f"{name} the same for model and benchmark on every resample" if _no_difference(c) else
                    f"{name} difference model − benchmark {d.value:+.4g}, {level(confidence)} interval "
                    f"[{d.low:+.4g}, {d.high:+.4g}]")
        text = (f"{measured}: {sev.value}. High when the whole interval is at or above {thr:.4g} "
                f"(RMSE ratio {self.high_min_rmse_ratio:g}); medium when the model is not significantly better; "
                f"info when it is. {_ROUTINE_RULE}")
        return Rule(f"{c.metric}_difference", d.value, ">=", thr, interval=(d.low, d.high), p_value=c.p_value,
                    text=text)

    def _overall(self, m: BenchmarkMeasurement) -> list[Finding]:
        pairs = [(f, c.primary) for f, c in zip(m.fits, m.comparisons) if np.isfinite(c.primary.difference.value)]
        if not pairs:
            return []
        task = m.task
        name = _LABELS[pairs[0][1].metric]
        sign = 1 if pairs[0][1].higher_is_better else -1  # +1: larger is better

        def advantage(c: MetricComparison) -> float:  # how much better the model is (oriented)
            return sign * c.difference.value

        worse = [(f, c) for f, c in pairs if c.model_worse]
        if worse:
            f, c = min(worse, key=lambda fc: advantage(fc[1]))
            metrics = self._finding_metrics(f, c)
            if self._material(c):
                return [Finding(
                    id=f"{self.id}/worse", check=self.id, severity=Severity.HIGH,
                    title=(f"Model {name} {_value(c.model, task)} significantly worse than a {f.noun} benchmark "
                           f"({_value(c.benchmark, task)}; {_delta(c, task, m.confidence)})"),
                    summary=(f"A {f.noun} trained on {m.n_train_used:,} rows of the same training data with the same "
                             f"features scores {name} {_value(c.benchmark, task)} on the {m.n_test:,} test rows; the "
                             f"model scores {_value(c.model, task)} ({_delta(c, task, m.confidence)}; {c.test} "
                             f"{p_value(c.p_value)}). A simpler, interpretable model does significantly better, so the "
                             "model's complexity costs accuracy instead of adding it. Typical causes are overfitting, "
                             "poor tuning, or a mismatch between how the model was trained and how it is scored."),
                    metrics=metrics,
                    remediation=(f"Do not prefer this model over the {f.noun} without a documented reason.",
                                 "Review the model's tuning (regularisation, depth, learning rate, early stopping) and "
                                 "the train/test gap (performance.overfit).",
                                 "Consider the benchmark as the production model or as a challenger."),
                    rule=self._rule(c, Severity.HIGH, m.confidence), evidence=_OVERALL_EVIDENCE)]
            return [self._not_better(m, f, c, significantly_worse=True)]
        not_better = [(f, c) for f, c in pairs if not c.model_better]
        if not_better:
            f, c = min(not_better, key=lambda fc: advantage(fc[1]))
            return [self._not_better(m, f, c, significantly_worse=False)]
        f, c = min(pairs, key=lambda fc: advantage(fc[1]))
        every = "every benchmark" if len(pairs) > 1 else f"a {f.noun} benchmark"
        closest = f"closest: {f.noun} {_value(c.benchmark, task)}" if len(pairs) > 1 else _value(c.benchmark, task)
        return [Finding(
            id=f"{self.id}/better", check=self.id, severity=Severity.INFO,
            title=(f"Model {name} {_value(c.model, task)} significantly better than {every} "
                   f"({closest}; {_delta(c, task, m.confidence)})"),
            summary=(f"On the {m.n_test:,} test rows the model beats the simple benchmarks trained on the same data; "
                     f"the smallest margin is against the {f.noun} ({name} {_value(c.benchmark, task)}; "
                     f"{_delta(c, task, m.confidence)}; {c.test} {p_value(c.p_value)}). The model's complexity buys a "
                     "measurable gain."),
            metrics=self._finding_metrics(f, c), rule=self._rule(c, Severity.INFO, m.confidence),
            evidence=_OVERALL_EVIDENCE)]

    @staticmethod
    def _headroom(c: MetricComparison) -> float:
        """How far the benchmark is from a perfect score on the primary metric (AUC: 1 − AUC;
        RMSE: the RMSE itself): the largest gain any model could show over it."""
        if c.metric in ("auc", "auc_ovr_macro"):
            return 1.0 - c.benchmark
        return c.benchmark if c.metric == "rmse" else float("inf")

    def routine(self, m: BenchmarkMeasurement, f: BenchmarkFit, c: MetricComparison, *,
                significantly_worse: bool) -> str:
        """Why "not significantly better" is routine here, not a finding above low ("" when it is not):
        ``same_kind`` when the model is itself a linear model and the benchmark is the linear one (a
        GLM matching a GLM is expected), ``ceiling`` when the benchmark leaves less room to a perfect
        score than the half-width of the difference's interval (no model, even a perfect one, could be
        shown significantly better on these test rows; e.g. AUC 1.000 against 1.000). Neither applies
        when the model is significantly worse."""
        if significantly_worse:
            return ""
        if m.model_is_linear and f.name in ("logistic", "ridge"):
            return "same_kind"
        half_width = (c.difference.high - c.difference.low) / 2.0
        if np.isfinite(half_width) and self._headroom(c) <= half_width + 1e-12:
            return "ceiling"
        return ""

    def _not_better(self, m: BenchmarkMeasurement, f: BenchmarkFit, c: MetricComparison, *,
                    significantly_worse: bool) -> Finding:
        task = m.task
        name = _LABELS[c.metric]
        why = self.routine(m, f, c, significantly_worse=significantly_worse)
        verdict = "not better than" if significantly_worse else "not significantly better than"
        if significantly_worse:
            detail = (f"The model is slightly but significantly worse ({_delta(c, task, m.confidence)}; {c.test} "
                      f"{p_value(c.p_value)}), by less than the margin that would block sign-off.")
        elif _no_difference(c):
            detail = f"The two score the same on every resample of the test rows ({c.test} {p_value(c.p_value)})."
        else:
            detail = (f"The difference is within the noise ({_delta(c, task, m.confidence)}; {c.test} "
                      f"{p_value(c.p_value)}).")
        if why == "same_kind":
            title = (f"Model {name} {_value(c.model, task)} on a par with a {f.noun} benchmark of its own kind "
                     f"({_value(c.benchmark, task)}; {_delta(c, task, m.confidence)})")
            tail = (f" The model under audit is itself a linear model ({m.model_kind}), so matching a linear benchmark "
                    "is expected; this records that the model is about as good as the simple benchmark rather than a "
                    "defect. Severity low: a linear model is not expected to beat a linear benchmark.")
        elif why == "ceiling":
            headroom = self._headroom(c)
            title = (f"Model {name} {_value(c.model, task)} and a {f.noun} benchmark ({_value(c.benchmark, task)}) "
                     f"both at the ceiling: no gain can be shown ({_delta(c, task, m.confidence)})")
            tail = (f" The benchmark is within {_value(headroom, task)} of a perfect {name}, less than the half-width "
                    "of the difference's interval, so not even a perfect model could be shown significantly better "
                    "on these test rows. Severity low: at the ceiling, \"not significantly better\" says nothing "
                    "about the model's complexity.")
        else:
            title = (f"Model {name} {_value(c.model, task)} {verdict} a {f.noun} benchmark "
                     f"({_value(c.benchmark, task)}; {_delta(c, task, m.confidence)})")
            tail = (f" The model under audit is itself a linear model ({m.model_kind}), so matching the "
                    f"{f.noun} benchmark is expected; it is significantly worse than a benchmark of its own kind."
                    if m.model_is_linear and f.name in ("logistic", "ridge") else
                    " The model is about as good as the simple benchmark: its extra complexity brings no demonstrable "
                    "gain on this test data, while it costs interpretability and is harder to validate and monitor.")
        return Finding(
            id=f"{self.id}/not_better", check=self.id, severity=Severity.LOW if why else Severity.MEDIUM,
            title=title,
            summary=(f"A {f.noun} trained on {m.n_train_used:,} rows of the same training data with the same features "
                     f"scores {name} {_value(c.benchmark, task)} on the {m.n_test:,} test rows against the model's "
                     f"{_value(c.model, task)}. {detail}{tail}"),
            metrics=self._finding_metrics(f, c),
            remediation=(("Nothing to change: keep the benchmark as the model's challenger in monitoring.",) if why else
                         ("Justify the model's complexity with a benefit the benchmark lacks, or prefer the simpler, "
                          "interpretable model.",
                          "If the test set is small, a larger holdout may resolve a difference this one cannot.")),
            evidence=_OVERALL_EVIDENCE, rule=self._rule(c, Severity.LOW if why else Severity.MEDIUM, m.confidence))

    def _finding_metrics(self, f: BenchmarkFit, c: MetricComparison) -> dict[str, Any]:
        return {f"model_{c.metric}": c.model, f"benchmark_{c.metric}": c.benchmark,
                "difference": c.difference.value, "difference_ci_low": c.difference.low,
                "difference_ci_high": c.difference.high, "p_value": c.p_value, "benchmark": f.name}

    def _segment_significant(self, s: Segment, task: str, overall: float) -> bool:
        if (s.q_value > self.segment_alpha or s.sign_p_value > self.segment_alpha or s.n < self.min_segment_rows
                or s.share <= overall):
            return False
        if task == "classification":
            return s.benchmark_metric - s.model_metric >= self.segment_min_accuracy_gap
        return s.benchmark_metric > 0 and s.model_metric / s.benchmark_metric >= self.segment_min_rmse_ratio

    def _segments(self, m: BenchmarkMeasurement) -> list[Finding]:
        d = m.disagreement
        overall = d.benchmark_wins / d.n if d.n else 0.0
        best: dict[str, Segment] = {}
        for s in d.segments:  # sorted by p-value: the first per feature is its strongest
            if s.feature not in best and self._segment_significant(s, m.task, overall):
                best[s.feature] = s
        chosen = sorted(best.values(), key=lambda s: (s.q_value, s.p_value, s.feature))[: self.max_segment_findings]
        ref = m.fits[0]
        out = []
        for s in chosen:
            where = _segment_text(s)
            if m.task == "classification":
                perf = f"accuracy {s.benchmark_metric:.2f} vs {s.model_metric:.2f}"
                wins = (f"the benchmark's decision is right and the model's wrong on {s.benchmark_wins} rows, the "
                        f"reverse on {s.model_wins}")
                metric_names = ("model_accuracy", "benchmark_accuracy")
                there = f"accuracy there is {s.benchmark_metric:.2f} against the model's {s.model_metric:.2f}"
            else:
                perf = f"RMSE {s.benchmark_metric:.4g} vs {s.model_metric:.4g}"
                wins = (f"the benchmark is closer by more than {m.margin:.3g} on {s.benchmark_wins} rows, the model "
                        f"on {s.model_wins}")
                metric_names = ("model_rmse", "benchmark_rmse")
                there = f"RMSE there is {s.benchmark_metric:.4g} against the model's {s.model_metric:.4g}"
            out.append(Finding(
                id=f"{self.id}/segment/{s.feature}", check=self.id, severity=Severity.MEDIUM,
                title=f"The {ref.noun} benchmark beats the model where {where} ({s.n} rows; {perf})",
                summary=(f"In the {s.n} test rows where {where}, {wins} ({pct(s.share, 0)} of the segment against "
                         f"{pct(overall, 0)} overall; Fisher exact {p_value(s.p_value)}, Benjamini–Hochberg "
                         f"{p_value(s.q_value).replace('p', 'q', 1)} over {len(d.segments)} segments). "
                         f"The benchmark's {there} (exact sign test {p_value(s.sign_p_value)}): the model handles "
                         "this region worse than a simple model does."),
                features=(s.feature,),
                metrics={"rows": s.n, "benchmark_right_model_wrong": s.benchmark_wins,
                         "model_right_benchmark_wrong": s.model_wins, "share": s.share, "overall_share": overall,
                         metric_names[0]: s.model_metric, metric_names[1]: s.benchmark_metric,
                         "p_value": s.p_value, "q_value": s.q_value, "sign_test_p_value": s.sign_p_value},
                remediation=(f"Inspect how the model treats {s.feature} in this range (partial dependence, residuals) "
                             "and how well the training data covers it.",
                             "Look for a data problem, a spurious interaction or overfitting in this segment."),
                evidence=("disagreement_segments", "disagreement_examples"),
                rule=Rule("q_value", s.q_value, "<=", self.segment_alpha, p_value=s.q_value,
                          text=(f"Medium when the Benjamini–Hochberg q of the concentration and the sign-test p are "
                                f"both at most {self.segment_alpha}, with at least {self.min_segment_rows} rows and "
                                + (f"an accuracy gap of at least {self.segment_min_accuracy_gap:g}."
                                   if m.task == "classification" else
                                   f"an RMSE ratio of at least {self.segment_min_rmse_ratio:g}.")))))
        return out

    # -- evidence --
    def evidence(self, m: BenchmarkMeasurement) -> Evidence:
        tables = (self._benchmarks_table(m), self._comparison_table(m), self._segments_table(m),
                  self._examples_table(m))
        return Evidence(metrics=self._headline(m), tables=tables, figures=(self._figure(m),),
                        notes=self._notes(m))

    @staticmethod
    def _headline(m: BenchmarkMeasurement) -> dict[str, Any]:
        """Headline numbers only; every metric of every benchmark is in the tables."""
        d = m.disagreement
        refc = m.comparisons[0]
        prim = refc.primary.metric
        metrics: dict[str, Any] = {f"model_{prim}": refc.primary.model}
        for f, c in zip(m.fits, m.comparisons):
            p = c.primary
            metrics[f"{f.name}_{prim}"] = p.benchmark
            metrics[f"{prim}_difference_vs_{f.name}"] = p.difference.value
            metrics[f"{prim}_difference_vs_{f.name}_ci_low"] = p.difference.low
            metrics[f"{prim}_difference_vs_{f.name}_ci_high"] = p.difference.high
            metrics[f"{prim}_p_value_vs_{f.name}"] = p.p_value
        if m.task == "classification":
            metrics.update({"mcnemar_p_value": refc.get("accuracy").p_value,
                            "benchmark_right_model_wrong": d.benchmark_wins,
                            "model_right_benchmark_wrong": d.model_wins})
        else:
            metrics.update({"benchmark_closer": d.benchmark_wins, "model_closer": d.model_wins,
                            "margin": m.margin})
        metrics["n_train_used"] = m.n_train_used
        return metrics

    @staticmethod
    def _benchmarks_table(m: BenchmarkMeasurement) -> Table:
        refc = m.comparisons[0]
        names = [mc.metric for mc in refc.metrics]
        rows = [{"benchmark": "Model under audit", "settings": m.model_kind or "as supplied",
                 "train_rows": None, **{n: refc.get(n).model for n in names}}]
        for f, c in zip(m.fits, m.comparisons):
            rows.append({"benchmark": f.label, "settings": f.settings, "train_rows": f.n_train,
                         **{n: c.get(n).benchmark for n in names}})
        return Table.from_records(
            "benchmarks", "Benchmarks, their settings and test metrics", rows,
            columns=("benchmark", "settings", "train_rows", *names),
            caption="Trained on the model's training data with the model's features; metrics on the test data.")

    @staticmethod
    def _comparison_table(m: BenchmarkMeasurement) -> Table:
        rows = []
        for f, c in zip(m.fits, m.comparisons):
            for mc in c.metrics:
                rows.append({"benchmark": f.noun, "metric": _LABELS[mc.metric], "model": mc.model,
                             "benchmark_value": mc.benchmark, "difference": mc.difference.value,
                             "ci_low": mc.difference.low, "ci_high": mc.difference.high,
                             "p_value": mc.p_value, "test": _SHORT_TESTS.get(mc.test, mc.test)})
        return Table.from_records(
            "comparison", f"Model − benchmark on the test data, with {level(m.confidence)} intervals", rows,
            columns=("benchmark", "metric", "model", "benchmark_value", "difference", "ci_low", "ci_high",
                     "p_value", "test"),
            caption=("Differences are model − benchmark: positive is better for "
                     + (f"macro one-vs-rest AUC and accuracy ({len(m.classes)} classes, most probable class), "
                        "negative for k-class log loss. Intervals: paired bootstrap. Tests: paired bootstrap (AUC), "
                        "exact McNemar, paired t-test on per-row log loss." if m.multiclass else
                        "AUC and accuracy, negative for log loss. AUC interval: DeLong; other intervals: paired "
                        "bootstrap. Tests: DeLong, exact McNemar, paired t-test on per-row log loss."
                        if m.task == "classification" else
                        "R², negative for RMSE and MAE. Intervals: paired bootstrap. Tests: paired t-tests on "
                        "per-row squared (RMSE, R²) and absolute (MAE) errors.")))

    def _segments_table(self, m: BenchmarkMeasurement) -> Table:
        d = m.disagreement
        if m.task == "classification":
            cols = ("benchmark_wins", "model_wins", "model_accuracy", "benchmark_accuracy")
            wins = "rows where the benchmark's decision is right and the model's wrong (model wins: the reverse)"
        else:
            cols = ("benchmark_wins", "model_wins", "model_rmse", "benchmark_rmse")
            wins = (f"rows where the benchmark's absolute error is smaller by more than {m.margin:.3g} "
                    "(model wins: the reverse)")
        rows = [{"feature": s.feature, "segment": s.level, "rows": s.n, cols[0]: s.benchmark_wins,
                 cols[1]: s.model_wins, "share": sig(s.share), "lift": sig(s.lift),
                 cols[2]: sig(s.model_metric, 4), cols[3]: sig(s.benchmark_metric, 4),
                 "p_value": sig(s.p_value), "q_value": sig(s.q_value), "sign_p_value": sig(s.sign_p_value)}
                for s in d.segments]
        overall = d.benchmark_wins / d.n if d.n else 0.0
        return Table.from_records(
            "disagreement_segments", f"Segments where the {m.fits[0].noun} benchmark's wins concentrate", rows,
            columns=("feature", "segment", "rows", *cols[:2], "share", "lift", *cols[2:], "p_value", "q_value",
                     "sign_p_value"),
            max_rows=_MAX_SEGMENT_ROWS,
            caption=(f"Single-feature segments with at least {self.min_segment_rows} rows, by p-value. Benchmark "
                     f"wins: {wins}. Share: benchmark wins / rows ({pct(overall)} overall); lift: share / overall. "
                     "p: one-sided Fisher exact test of the share against the other rows; q: Benjamini–Hochberg "
                     f"over {len(d.segments)} segments; sign p: one-sided exact sign test of benchmark wins "
                     "against model wins within the segment."))

    @staticmethod
    def _examples_table(m: BenchmarkMeasurement) -> Table:
        return Table.from_records(
            "disagreement_examples",
            ("Examples: benchmark right, model wrong" if m.task == "classification"
             else "Examples: benchmark closer than the model"),
            list(m.examples), columns=m.example_columns,
            caption=("Test rows (0-based position) where the model misses most clearly and the benchmark does not; "
                     + ("model/benchmark class: the most probable class; p_target: the probability given to the "
                        "actual class." if m.multiclass else
                        "scores are P(positive)." if m.task == "classification" else "scores are predictions.")))

    @staticmethod
    def _figure(m: BenchmarkMeasurement) -> Figure:
        d = m.disagreement
        rows = figure_rows(d.benchmark_wins_mask, d.model_wins_mask)
        n = len(m.model_score)
        shown = f"{len(rows)} of {n} test rows shown" if len(rows) < n else f"all {n} test rows"
        if m.multiclass:
            caption = (f"Left: one-vs-rest AUC per class. Right: each point is a test row ({shown}); orange where "
                       "only the benchmark's predicted class is right, blue where only the model's is.")
        elif m.task == "classification":
            caption = (f"Left: ROC curves on the test data. Right: each point is a test row ({shown}); orange where "
                       "only the benchmark's decision is right, blue where only the model's is.")
        else:
            caption = (f"Left: predictions of both against the actual value ({shown}). Right: orange where the "
                       "benchmark's error is smaller by more than the margin, blue where the model's is.")
        data = {"task": m.task, "y": m.y, "model_score": m.model_score, "reference_score": m.fits[0].score,
                "comparisons": tuple((f.noun, c) for f, c in zip(m.fits, m.comparisons)), "disagreement": d,
                "rows": rows, "threshold": m.threshold, "class_names": m.classes or None}
        return Figure("benchmark_comparison", "Model against benchmark", plot="benchmark.comparison_figure",
                      data=data, caption=caption)

    def _notes(self, m: BenchmarkMeasurement) -> tuple[str, ...]:
        refc = m.comparisons[0]
        return (
            (f"Benchmarks trained on {m.n_train_used:,} of {m.n_train_total:,} training rows (seeded random sample; "
             f"max_train_rows = {self.max_train_rows:,})." if m.n_train_used < m.n_train_total else
             f"Benchmarks trained on all {m.n_train_total:,} training rows."),
            ("Differences are model − benchmark on the same test rows. " +
             (f"{len(m.classes)}-class model against a multinomial logistic regression and a tree with k-class "
              "leaves: macro one-vs-rest AUC (mean of the per-class AUCs; paired bootstrap interval and p-value), "
              "accuracy of the most probable class (paired bootstrap interval, exact McNemar test), k-class log "
              "loss (paired bootstrap interval, paired t-test); a bootstrap p-value is at least 1 / resamples."
              if m.multiclass else
              "AUC: DeLong's test with its normal-approximation interval; accuracy: paired bootstrap interval and "
              "exact McNemar test on the discordant rows; log loss: paired bootstrap interval and paired t-test."
              if m.task == "classification" else
              "RMSE, MAE, R²: paired bootstrap intervals; paired t-tests on per-row squared (RMSE, R²) and absolute "
              "(MAE) errors.")
             + f" Bootstrap: {refc.n_resamples} resamples, the same rows for model and benchmark."),
            ("Right/wrong for both models: the most probable class is the actual class; the two disagree when "
             "their predicted classes differ." if m.multiclass else
             f"Right/wrong for both models is the decision at threshold {m.threshold:g}."
             if m.task == "classification"
             else f"A model is counted closer on a row when its absolute error is smaller by more than "
                  f"{m.margin:.4g} ({self.regression_margin:g} × the standard deviation of the test target)."),
            f"Disagreement analysed against the {m.fits[0].noun} benchmark.",
        )
