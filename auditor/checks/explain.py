"""Explanation checks: global SHAP importance and the drivers of individual decisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..analysis.importance import FeatureCoder, ShapBudget, ShapImportance, plan_budget, shap_importance
from ..findings import Evidence, Figure, Finding, Severity, Table
from ..plots import COLORS, figure, new_figure, plot_style
from .base import Check

if TYPE_CHECKING:
    from ..context import AuditContext


@dataclass(frozen=True)
class Case:
    """One decision whose drivers are shown."""

    key: str  # stable name: highest, lowest, threshold / median
    label: str
    row: int  # position among the explained rows
    test_row: int  # position in the test data


@dataclass(frozen=True)
class ImportanceMeasurement:
    shap: ShapImportance
    budget: ShapBudget
    requested_rows: int
    requested_background: int
    background_split: str
    n_test: int
    task: str
    threshold: float
    cases: tuple[Case, ...]
    n_categorical: int


@dataclass
class ImportanceCheck(Check):
    """Global feature importance as mean |SHAP| on a seeded sample of test rows, and the top
    contributions behind three individual decisions (highest score, lowest score, closest to the
    threshold; for regression the median prediction instead of the threshold).

    SHAP values come from shap's permutation explainer on integer-coded features, so any
    DataFrame model works, with contributions on the scale of P(positive) (classification) or the
    prediction (regression). ``medium`` when one feature carries at least ``dominance_share`` of
    the total mean |SHAP| (with at least ``min_features`` features): the model stands or falls
    with that input, which is worth confirming is legitimate (not a leak). Never ``high`` by itself.

    Budget: ``rows`` explained rows, ``background`` background rows, ``max_evals`` model
    evaluations per row and background row (at least 2 x features + 1); rows and background
    shrink so the model scores at most ``max_model_rows`` rows.
    """

    id: ClassVar[str] = "explain.importance"
    title: ClassVar[str] = "Feature importance (SHAP)"

    rows: int = 200
    background: int = 50
    max_evals: int = 0  # 0: the minimum shap accepts, 2 x features + 1
    max_model_rows: int = 1_000_000
    dominance_share: float = 0.5
    min_features: int = 3
    top_features: int = 15
    top_contributions: int = 5

    def measure(self, ctx: "AuditContext") -> ImportanceMeasurement:
        rng = ctx.rng(self.id)
        features = list(ctx.features)
        test = ctx.frame("test")
        frames = [test] + ([ctx.frame("train")] if ctx.has_train else [])
        coder = FeatureCoder.fit(frames, features, ctx.categorical)
        budget = plan_budget(len(features), rows=self.rows, background=self.background,
                             max_evals=self.max_evals or None, max_model_rows=self.max_model_rows)

        score = np.asarray(ctx.predictions("test").score, dtype=float)
        n = len(score)
        picks: list[tuple[str, str, int]] = [
            ("highest", "Highest score" if ctx.is_classification else "Highest prediction", int(np.argmax(score))),
            ("lowest", "Lowest score" if ctx.is_classification else "Lowest prediction", int(np.argmin(score))),
        ]
        if ctx.is_classification:
            picks.append(("threshold", f"Closest to the threshold {ctx.threshold:g}",
                          int(np.argmin(np.abs(score - ctx.threshold)))))
        else:
            picks.append(("median", "Median prediction", int(np.argmin(np.abs(score - np.median(score))))))
        fixed = list(dict.fromkeys(p[2] for p in picks))
        rest = np.setdiff1d(np.arange(n), fixed)
        n_more = max(0, min(budget.rows - len(fixed), len(rest)))
        sample = np.sort(rng.choice(rest, size=n_more, replace=False)) if n_more else np.array([], dtype=int)
        positions = np.concatenate([np.asarray(fixed, dtype=int), sample.astype(int)])
        cases = tuple(Case(key, label, int(np.flatnonzero(positions == pos)[0]), pos) for key, label, pos in picks)

        bg_split = "train" if ctx.has_train else "test"
        bg_frame = ctx.frame(bg_split)
        n_bg = min(budget.background, len(bg_frame))
        bg_idx = np.sort(rng.choice(len(bg_frame), size=n_bg, replace=False))
        seed = int(rng.integers(0, 2**31 - 1))

        result = shap_importance(lambda X: ctx.predict_frame(X).score, test.iloc[positions][features],
                                 bg_frame.iloc[bg_idx][features], coder=coder,
                                 max_evals=budget.max_evals, seed=seed)
        return ImportanceMeasurement(
            shap=result, budget=budget, requested_rows=self.rows, requested_background=self.background,
            background_split=bg_split, n_test=n, task=ctx.task, threshold=ctx.threshold, cases=cases,
            n_categorical=len(coder.categorical))

    def judge(self, m: ImportanceMeasurement) -> list[Finding]:
        s = m.shap
        if len(s.features) < self.min_features or s.mean_abs.sum() <= 0:
            return []
        top = s.ranking()[0]
        share = float(s.share[top])
        if share < self.dominance_share:
            return []
        name = s.features[top]
        second = s.ranking()[1]
        output = "predicted probability" if m.task == "classification" else "prediction"
        return [Finding(
            id=f"{self.id}/dominant/{name}", check=self.id, severity=Severity.MEDIUM,
            title=f"One feature dominates the model: '{name}' carries {share:.0%} of the attributions",
            summary=(f"Across {len(s.values)} explained test rows, '{name}' moves the {output} by "
                     f"{s.mean_abs[top]:.3g} on average (mean |SHAP|), {share:.0%} of the total over all "
                     f"{len(s.features)} features; the next feature, '{s.features[second]}', carries "
                     f"{s.share[second]:.0%}. The model's decisions largely rest on this one input: if it is "
                     "recorded after the outcome, derived from the target or unreliable in production, the "
                     "model will fail."),
            features=(name,),
            metrics={"share": share, "mean_abs_shap": float(s.mean_abs[top]),
                     "second_share": float(s.share[second]), "n_rows": len(s.values)},
            remediation=(f"Confirm that '{name}' is known at decision time and not derived from the outcome "
                         "(see data.leakage).",
                         f"Check the model's behaviour when '{name}' is missing or wrong, and compare with a "
                         "model trained without it."),
            evidence=("importance", "importance_bar"),
        )]

    def evidence(self, m: ImportanceMeasurement) -> Evidence:
        s = m.shap
        order = s.ranking()
        additivity = float(np.max(np.abs(s.base_values + s.values.sum(axis=1) - s.outputs))) if len(s.values) else 0.0
        headline: dict[str, Any] = {
            "top_feature": s.features[order[0]], "top_share": float(s.share[order[0]]),
            "base_value": float(np.mean(s.base_values)) if len(s.base_values) else float("nan"),
            "n_rows": len(s.values), "n_background": s.n_background, "max_evals": s.max_evals,
            "n_model_rows": s.n_model_rows, "additivity_max_error": additivity,
        }
        records = [{"rank": i + 1, "feature": s.features[j], "mean_abs_shap": float(s.mean_abs[j]),
                    "share": float(s.share[j])} for i, j in enumerate(order)]
        tables = [Table.from_records("importance", "Global importance: mean |SHAP| per feature", records,
                                     columns=("rank", "feature", "mean_abs_shap", "share"), max_rows=30,
                                     caption="Share: the feature's part of the total mean |SHAP|.")]
        output = "score" if m.task == "classification" else "prediction"
        for case in m.cases:
            r = case.row
            recs = [{"feature": f, "value": _plain(v), "contribution": c}
                    for f, v, c in s.top_contributions(r, self.top_contributions)]
            tables.append(Table.from_records(
                f"drivers_{case.key}",
                f"{case.label} ({output} {s.outputs[r]:.3g}, test row {case.test_row}): top "
                f"{len(recs)} contributions", recs, columns=("feature", "value", "contribution"),
                caption=(f"Base value {s.base_values[r]:.3g} (average {output} over the background) plus all "
                         f"contributions = {output} {s.outputs[r]:.3g}.")))
        b = m.budget
        notes = [f"SHAP permutation explainer: {len(s.values)} of {m.n_test} test rows explained (a seeded sample "
                 f"plus the {len(m.cases)} decisions shown) against {s.n_background} background rows from "
                 f"{m.background_split}; max_evals {s.max_evals} per row ({len(s.features)} features, minimum "
                 f"2 x {len(s.features)} + 1); {s.n_model_rows:,} rows scored by the model."]
        if m.n_categorical:
            notes.append(f"{m.n_categorical} categorical features were integer-coded for shap (codes from the "
                         "test and train data) and decoded to their original values before every model call.")
        if b.capped:
            notes.append(f"Budget capped at {self.max_model_rows:,} model rows for {len(s.features)} features: "
                         f"{b.rows} rows (asked {m.requested_rows}) and {b.background} background rows (asked "
                         f"{m.requested_background}); importances are noisier.")
        return Evidence(metrics=headline, tables=tuple(tables), figures=(_importance_figure(s, self.top_features, m),),
                        notes=tuple(notes))


def _plain(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if hasattr(v, "item"):
        try:
            return v.item()
        except (ValueError, AttributeError):
            return str(v)
    return v if isinstance(v, (int, float, str, bool)) else str(v)


def _importance_figure(s: ShapImportance, k: int, m: ImportanceMeasurement) -> Figure:
    order = s.ranking()[:k]
    names = [s.features[j] for j in order][::-1]
    values = [float(s.mean_abs[j]) for j in order][::-1]
    with plot_style():
        fig = new_figure(5.6, 0.6 + 0.22 * len(names))
        ax = fig.subplots()
        ax.barh(range(len(names)), values, color=COLORS[0], height=0.7)
        ax.set_yticks(range(len(names)), names)
        output = "P(positive)" if m.task == "classification" else "prediction"
        ax.set(xlabel=f"mean |SHAP| (effect on {output})",
               title=f"Top {len(names)} features by mean |SHAP|" if len(s.features) > len(names)
               else "Features by mean |SHAP|")
        return figure("importance_bar", "Global feature importance (SHAP)", fig,
                      caption=f"{len(s.values)} test rows explained against {s.n_background} background rows.")


CHECKS = (ImportanceCheck,)
