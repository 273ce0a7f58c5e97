"""``residual.analysis``: residual patterns by prediction and feature, a surrogate tree of the
residuals, heteroscedasticity, outliers and the worst rows with their data-quality flags and SHAP
drivers. The findings are built in ``analysis_findings``, the evidence in ``analysis_evidence``."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from ...analysis.residuals import (
    Heteroscedasticity,
    Outliers,
    ResidualPattern,
    Residuals,
    RowDrivers,
    SurrogateTree,
    SuspectScan,
    WorstRow,
    compute_residuals,
    heteroscedasticity,
    outliers,
    residual_pattern,
    row_drivers,
    scan_suspects,
    structure_share,
    surrogate_tree,
    worst_rows,
    worst_value_features,
)
from ...analysis.sampling import sample_positions
from ...findings import Evidence, Finding
from .._classes import unknown_class_reason
from ..base import RESIDUAL, Check, budget, setting, threshold
from . import analysis_evidence, analysis_findings

if TYPE_CHECKING:
    from ...context import AuditContext


@dataclass(frozen=True)
class ResidualMeasurement:
    task: str  # "regression", "classification" or "multiclass"
    n: int
    n_total: int
    features: tuple[str, ...]
    residuals: Residuals
    prediction_pattern: ResidualPattern  # regression: its per-bin p-values (raw and BH-adjusted) test the bias
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
    classes: tuple[Any, ...] = ()  # multiclass: the model's classes

    @property
    def residual_sd(self) -> float:
        return self.residuals.residual_sd

    @property
    def structure_gain(self) -> float:
        """The tree's structured part as a share of the target's variance (see ``structure_share``)."""
        return structure_share(self.tree, self.residuals)


@dataclass
class ResidualAnalysisCheck(Check[ResidualMeasurement]):
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
    cost = 4
    title: ClassVar[str] = "Residual analysis"

    alpha: float = threshold(0.05, "significance level of every test (tree gain, spread, bias bins, outliers, "
                                   "suspects)")
    confidence: float = setting(0.95, "confidence level of the intervals (bins, leaves, the tree's share)")
    max_rows: int = budget(50_000, "test rows analysed (a seeded sample above this)")
    tree_depth: int = setting(3, "depth of the surrogate tree of the residuals")
    min_leaf_rows: int = setting(30, "minimum rows per leaf of the surrogate tree")
    min_leaf_share: float = setting(0.02, "minimum rows per leaf as a share of the tree's fitting half")
    structure_medium: float = threshold(0.05, "held-out share of residual variance the tree explains for medium")
    structure_high: float = threshold(0.25, "lower end of that share's interval for high")
    structure_min_gain: float = threshold(0.01, "structured part, as a share of the target's variance, a "
                                                "structure finding needs")
    hetero_min_rho: float = threshold(0.1, "Spearman rho of |residual| with the prediction for a spread finding")
    bias_min_effect: float = threshold(0.2, "mean residual of a prediction bin, in residual SDs, for a bias finding")
    outlier_z: float = threshold(5.0, "robust |z| beyond which a regression residual is an outlier")
    outlier_error_share: float = threshold(0.2, "share of the squared error the outliers carry for medium")
    outlier_min_share: float = threshold(0.05, "share of the squared error the outliers carry for low")
    confident_p: float = threshold(0.02, "probability of the actual class below which an error is confident")
    min_confident_errors: int = threshold(5, "confident errors a finding needs")
    n_worst: int = budget(10, "worst rows shown with their values and SHAP drivers")
    worst_share: float = setting(0.05, "share of the largest errors the data-quality scan treats as the worst rows")
    range_margin: float = setting(0.1, "widening of the train range, as a share of its span, before a value is "
                                       "out of range")
    min_suspect_rows: int = threshold(2, "flagged rows among the worst a data-quality finding needs")
    explain_worst: bool = setting(True, "explain the worst rows' prediction and loss with SHAP")
    shap_background: int = budget(50, "background rows of the SHAP explanations")
    max_plot_features: int = budget(6, "features shown in the residuals-by-feature figure")
    plot_points: int = budget(2000, "rows drawn in the scatter plots")
    pattern_bins: int = setting(10, "quantile bins of the prediction and of each numeric feature")
    min_bin_rows: int = setting(20, "rows per bin (fewer bins on small data); a bias bin needs this many")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        return unknown_class_reason(ctx, train=False)

    # ---- measure -------------------------------------------------------------------------------
    def measure(self, ctx: AuditContext) -> ResidualMeasurement:
        X_all = ctx.X("test")
        multi = ctx.is_multiclass
        task = "multiclass" if multi else ctx.task
        rng = ctx.rng(self.id)  # the row sample, then the plotted rows among them
        idx = sample_positions(len(X_all), self.max_rows, rng)
        X = X_all.iloc[idx]
        res = compute_residuals(ctx.y_classes("test")[idx], ctx.scores("test")[idx], task=task)
        plot_rows = sample_positions(res.n, self.plot_points, rng)
        # at least ``min_bin_rows`` rows per bin on small data
        bins = max(2, min(self.pattern_bins, res.n // self.min_bin_rows))
        prediction_pattern = residual_pattern(pd.Series(res.prediction, index=X.index), res.residual,
                                              feature="prediction", categorical=False, bins=bins,
                                              confidence=self.confidence)
        patterns = self._feature_patterns(ctx, X, res, bins, plot_rows)
        min_leaf = max(self.min_leaf_rows, int(math.ceil(self.min_leaf_share * res.n / 2)))
        tree_target = res.class_residual if multi and res.class_residual is not None else res.residual
        tree = surrogate_tree(X, tree_target, categorical=ctx.categorical,
                              rng=ctx.rng(self.id + ":tree"), max_depth=self.tree_depth, min_leaf=min_leaf,
                              confidence=self.confidence)
        plot_patterns = self._plot_patterns(tree, patterns)
        suspects = scan_suspects(X, res.error_size, numeric=ctx.numeric, categorical=ctx.categorical,
                                 reference=ctx.X("train") if ctx.has_train else None,
                                 worst_share=self.worst_share, range_margin=self.range_margin)
        order = res.worst_positions(self.n_worst)
        contributions, shap_error = self._drivers(ctx, X.iloc[order], res.y[order], X_all)
        worst = self._worst_rows(ctx, idx, X, res, order, suspects, contributions,
                                 [p.feature for p in plot_patterns + patterns])
        return ResidualMeasurement(
            task=task, n=res.n, n_total=len(X_all), features=tuple(ctx.features), residuals=res,
            prediction_pattern=prediction_pattern, patterns=patterns, plot_patterns=plot_patterns,
            tree=tree, hetero=heteroscedasticity(res.residual, res.prediction) if task == "regression" else None,
            outliers=outliers(res, z=self.outlier_z, confident_p=self.confident_p), suspects=suspects,
            worst=worst, contributions=contributions, shap_error=shap_error, plot_rows=plot_rows,
            classes=tuple(ctx.classes) if multi else ())

    def _feature_patterns(self, ctx: AuditContext, X: pd.DataFrame, res: Residuals, bins: int,
                          plot_rows: np.ndarray) -> tuple[ResidualPattern, ...]:
        """The residual by each feature, most structured first. k classes: each class's residual
        1{y = j} - p_j; the class with the strongest pattern is kept."""
        group = res.y.astype(int) if res.task != "regression" else None
        patterns = []
        for f in ctx.features:
            kw: dict[str, Any] = {"feature": f, "categorical": f in ctx.categorical, "bins": bins,
                                  "confidence": self.confidence, "sample": plot_rows, "group": group}
            if res.task == "multiclass" and res.class_residual is not None:
                per_class = [replace(residual_pattern(X[f], res.class_residual[:, j], **kw),
                                     target_class=str(ctx.classes[j])) for j in range(ctx.n_classes)]
                patterns.append(min(per_class, key=lambda p: (-p.strength, p.p_value, p.target_class)))
            else:
                patterns.append(residual_pattern(X[f], res.residual, **kw))
        return tuple(sorted(patterns, key=lambda p: (-p.strength, p.p_value, p.feature)))

    def _plot_patterns(self, tree: SurrogateTree | None,
                       patterns: tuple[ResidualPattern, ...]) -> tuple[ResidualPattern, ...]:
        """The figure's panels: the tree's features first (most important first), then the strongest
        patterns."""
        by_name = {p.feature: p for p in patterns}
        chosen = [by_name[f] for f in (tree.features if tree and tree.p_value < self.alpha else ()) if f in by_name]
        chosen += [p for p in patterns if p not in chosen]
        return tuple(chosen[: self.max_plot_features])

    def _drivers(self, ctx: AuditContext, rows: pd.DataFrame, y: np.ndarray,
                 X_all: pd.DataFrame) -> tuple[RowDrivers | None, str]:
        """SHAP drivers of the worst rows' prediction and loss, or why they could not be computed."""
        if not (self.explain_worst and len(rows)):
            return None, ""
        src = ctx.X("train") if ctx.has_train else X_all
        background = src.iloc[ctx.sample_index(len(src), self.shap_background, self.id + ":background")]
        feats = list(ctx.features)
        fn = ((lambda Z: np.asarray(ctx.predict_frame(Z[feats]).proba, dtype=float)) if ctx.is_multiclass
              else ctx.score_fn())
        seed = int(ctx.rng(self.id + ":shap").integers(0, 2**31 - 1))
        try:
            return row_drivers(fn, rows, y, background, task="multiclass" if ctx.is_multiclass else ctx.task,
                               categorical=ctx.categorical, seed=seed), ""
        except Exception as exc:  # noqa: BLE001 - explanations are a bonus; keep the rest
            return None, f"{type(exc).__name__}: {exc}".splitlines()[0]

    def _worst_rows(self, ctx: AuditContext, idx: np.ndarray, X: pd.DataFrame, res: Residuals, order: np.ndarray,
                    suspects: SuspectScan, contributions: RowDrivers | None,
                    preferred: list[str]) -> tuple[WorstRow, ...]:
        test = ctx.frame("test")
        id_col = ctx.config.data.id
        labels = test[id_col].iloc[idx] if id_col and id_col in test.columns else pd.Series(X.index, index=X.index)
        return worst_rows(res, X, order, labels=list(labels), actual=ctx.y("test")[idx], flags=suspects.flags,
                          drivers=contributions, value_features=worst_value_features(contributions, preferred),
                          classes=tuple(ctx.classes) if ctx.is_multiclass else ())

    # ---- judge -----------------------------------------------------------------------------------
    def judge(self, m: ResidualMeasurement) -> list[Finding]:
        found = [analysis_findings.structure(self, m), analysis_findings.heteroscedasticity(self, m),
                 analysis_findings.bias_by_prediction(self, m), analysis_findings.outliers(self, m),
                 analysis_findings.confident_errors(self, m)]
        return [f for f in found if f is not None] + analysis_findings.data_quality(self, m)

    # ---- evidence --------------------------------------------------------------------------------
    def evidence(self, m: ResidualMeasurement) -> Evidence:
        return Evidence(metrics=analysis_evidence.metrics(m), tables=analysis_evidence.tables(m, self.confidence),
                        figures=analysis_evidence.figures(m, self.confidence), notes=analysis_evidence.notes(m))
