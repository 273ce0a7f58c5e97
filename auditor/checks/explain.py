"""Explanation checks: global SHAP importance and the drivers of individual decisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..analysis.importance import (
    FeatureCoder,
    ShapBudget,
    ShapImportance,
    StratifiedSample,
    plan_budget,
    rank_draws,
    shap_importance,
    share_draws,
    spiked_features,
    stratified_sample,
)
from ..analysis.metrics import Estimate, percentile_interval
from ..findings import Evidence, Figure, Finding, Rule, Severity, Table
from ..wording import ci, level, pct
from .base import EXPLAIN, Check, budget, setting, threshold

if TYPE_CHECKING:
    import pandas as pd

    from ..context import AuditContext, Predictions, Split


def _explained_output(p: Predictions, idx: int) -> np.ndarray:
    """The output explained: the probability of class ``idx`` (classification), or the prediction
    (regression, ``idx`` < 0)."""
    if idx < 0:
        return p.score
    assert p.proba is not None
    return p.proba[:, idx]


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
    share: tuple[Estimate, ...]  # per feature (order of ``shap.features``): share with bootstrap interval
    rank_range: tuple[tuple[int, int], ...]  # per feature: central 95% range of its bootstrap rank
    sample: StratifiedSample  # the importance sample (positions in the test data)
    background_sample: StratifiedSample
    explained_class: str = ""  # classification: the class whose probability is explained
    multiclass: bool = False
    n_resamples: int = 1000
    confidence: float = 0.95


@dataclass
class ImportanceCheck(Check[ImportanceMeasurement]):
    """Global feature importance as mean |SHAP| on a seeded sample of test rows, and the top
    contributions behind three individual decisions (highest score, lowest score, closest to the
    threshold; for regression the median prediction instead of the threshold).

    SHAP values come from shap's permutation explainer on integer-coded features, so any
    DataFrame model works, with contributions on the scale of the probability of one class
    (binary: the positive class; k classes: ``explain_class``, by default the favourable class)
    or the prediction (regression).

    Severity uses the interval of the top feature's share of the total mean |SHAP| (stratified
    bootstrap over the explained rows, ``n_resamples`` resamples, level ``confidence``):
    ``medium`` when its lower end is at least ``dominance_share`` (with at least ``min_features``
    features): the model stands or falls with that input, which is worth confirming is legitimate
    (not a leak); ``low`` when the lower end is at least ``notable_share`` (the model leans heavily
    on one input, dominance not established). Never ``high`` by itself.

    Samples: the explained rows and the background are stratified by the rare values of spiked
    (zero-inflated) numeric features, each stratum at its proportional share and rare strata with
    at least ``min_rare_rows`` explained rows (weights keep the global importance unbiased).
    Budget: ``rows`` explained rows, ``background`` background rows, ``max_evals`` model
    evaluations per row and background row (at least 2 x features + 1); rows and background
    shrink so the model scores at most ``max_model_rows`` rows.
    """

    id: ClassVar[str] = "explain.importance"
    family = EXPLAIN
    order = 1
    cost = 10
    title: ClassVar[str] = "Feature importance (SHAP)"

    rows: int = budget(200, "test rows explained (a seeded, stratified sample)")
    background: int = budget(100, "background rows the SHAP values are measured against")
    max_evals: int = budget(0, "model evaluations per explained row and background row (0: the minimum shap "
                               "accepts, 2 x features + 1)")
    max_model_rows: int = budget(1_000_000, "rows the model scores at most; rows and background shrink to fit")
    dominance_share: float = threshold(0.5, "medium when the lower end of a feature's share interval reaches this")
    notable_share: float = threshold(0.4, "low when the lower end of a feature's share interval reaches this")
    min_features: int = threshold(3, "features a model needs before one of them can dominate (else no finding)")
    top_features: int = budget(15, "features shown in the importance figure")
    top_contributions: int = budget(5, "contributions shown for each decision")
    explain_class: str = setting("", "classification: the class whose probability is explained (empty: the "
                                     "positive class; k classes: the favourable class)")
    min_rare_rows: int = budget(40, "explained rows at least in each rare stratum of a spiked feature")
    spike_share: float = setting(0.5, "share of rows on one value from which a numeric feature counts as spiked")
    n_resamples: int = budget(1000, "bootstrap resamples of the share and rank intervals")
    confidence: float = setting(0.95, "level of the share and rank intervals")
    background_groups: int = setting(10, "random groups of the background rows the bootstrap resamples")

    def _explained_index(self, ctx: AuditContext) -> int:
        if self.explain_class != "":
            try:
                return ctx.class_index(self.explain_class)
            except KeyError:
                from ..errors import AuditInputError

                raise AuditInputError(
                    f"option 'checks.\"{self.id}\".explain_class' is {self.explain_class!r}, which is not one "
                    f"of the model's classes ({', '.join(map(str, ctx.classes))})") from None
        return ctx.favorable_index if ctx.is_multiclass else ctx.positive_index

    def validate_inputs(self, ctx: AuditContext) -> None:
        if ctx.is_classification:
            self._explained_index(ctx)

    def measure(self, ctx: AuditContext) -> ImportanceMeasurement:
        rng = ctx.rng(self.id)
        features = list(ctx.features)
        test = ctx.frame("test")
        frames = [test] + ([ctx.frame("train")] if ctx.has_train else [])
        coder = FeatureCoder.fit(frames, features, ctx.categorical)
        budget = plan_budget(len(features), rows=self.rows, background=self.background,
                             max_evals=self.max_evals or None, max_model_rows=self.max_model_rows)

        cls = ctx.is_classification
        idx = self._explained_index(ctx) if cls else -1
        score = np.asarray(_explained_output(ctx.predictions("test"), idx), dtype=float)
        n = len(score)
        what = "probability" if cls else "prediction"
        picks: list[tuple[str, str, int]] = [
            ("highest", f"Highest {what}" if cls else "Highest prediction", int(np.argmax(score))),
            ("lowest", f"Lowest {what}" if cls else "Lowest prediction", int(np.argmin(score))),
        ]
        if cls and not ctx.is_multiclass:
            picks.append(("threshold", f"Closest to the threshold {ctx.threshold:g}",
                          int(np.argmin(np.abs(score - ctx.threshold)))))
        else:
            picks.append(("median", f"Median {what}", int(np.argmin(np.abs(score - np.median(score))))))

        spiked = spiked_features(test, features, categorical=ctx.categorical, min_modal_share=self.spike_share)
        n_picks = len({p[2] for p in picks})
        sample = stratified_sample(test, max(budget.rows - n_picks, 1), rng, spiked=spiked,
                                   min_rare_rows=self.min_rare_rows)
        fixed = [p[2] for p in picks if p[2] not in set(sample.positions.tolist())]
        fixed = list(dict.fromkeys(fixed))
        # the decisions shown are explained too, with weight 0 when they are not in the sample
        positions = np.concatenate([sample.positions, np.asarray(fixed, dtype=int)])
        weights = np.concatenate([sample.weights, np.zeros(len(fixed))])
        stratum = np.concatenate([sample.stratum, np.full(len(fixed), -1, dtype=int)])
        cases = tuple(Case(key, label, int(np.flatnonzero(positions == pos)[0]), pos) for key, label, pos in picks)

        bg_split: Split = "train" if ctx.has_train else "test"
        bg_frame = ctx.frame(bg_split)
        bg_spiked = spiked_features(bg_frame, features, categorical=ctx.categorical, min_modal_share=self.spike_share)
        bg = stratified_sample(bg_frame, min(budget.background, len(bg_frame)), rng, spiked=bg_spiked)
        n_groups = min(int(self.background_groups), len(bg.positions) // 5)
        groups = (rng.permutation(len(bg.positions)) % n_groups) if n_groups >= 2 else None
        seed = int(rng.integers(0, 2**31 - 1))

        def predict(X: pd.DataFrame) -> np.ndarray:
            return _explained_output(ctx.predict_frame(X), idx)

        result = shap_importance(predict, test.iloc[positions][features], bg_frame.iloc[bg.positions][features],
                                 coder=coder, max_evals=budget.max_evals, seed=seed, weights=weights,
                                 background_groups=groups)
        gshare = None if groups is None else np.bincount(groups) / len(groups)
        draws = share_draws(np.abs(result.values), weights, stratum, rng, n_resamples=self.n_resamples,
                            group_values=result.group_values, group_share=gshare)
        share = result.share
        est = tuple(percentile_interval(float(share[j]), draws[:, j], self.confidence) for j in range(len(features)))
        if len(draws):
            ranks = rank_draws(draws)
            a = (1 - self.confidence) / 2
            rr = tuple((int(np.floor(np.quantile(ranks[:, j], a))), int(np.ceil(np.quantile(ranks[:, j], 1 - a))))
                       for j in range(len(features)))
        else:
            rr = tuple((0, 0) for _ in features)
        return ImportanceMeasurement(
            shap=result, budget=budget, requested_rows=self.rows, requested_background=self.background,
            background_split=bg_split, n_test=n, task=ctx.task, threshold=ctx.threshold, cases=cases,
            n_categorical=len(coder.categorical), share=est, rank_range=rr, sample=sample, background_sample=bg,
            explained_class=str(ctx.classes[idx]) if cls else "", multiclass=ctx.is_multiclass,
            n_resamples=self.n_resamples, confidence=self.confidence)

    def _output(self, m: ImportanceMeasurement) -> str:
        if m.task != "classification":
            return "prediction"
        return f"predicted probability of class {m.explained_class!r}"

    def judge(self, m: ImportanceMeasurement) -> list[Finding]:
        s = m.shap
        if len(s.features) < self.min_features or s.mean_abs.sum() <= 0:
            return []
        order = s.ranking()
        out = []
        for pos, j in enumerate(order):
            e = m.share[j] if j < len(m.share) else Estimate(float(s.share[j]), float("nan"), float("nan"))
            lo = e.low if np.isfinite(e.low) else e.value
            hi = e.high if np.isfinite(e.high) else e.value
            if lo < min(self.notable_share, self.dominance_share):
                continue
            sev = Severity.MEDIUM if lo >= self.dominance_share else Severity.LOW
            name = s.features[j]
            nxt = order[1] if pos == 0 else order[0]
            lv = level(self.confidence)
            share = f"{pct(e.value, 0)} ({ci(lo, hi, self.confidence, digits=0, as_pct=True)})"
            if sev is Severity.MEDIUM:
                title = f"One feature dominates the model: '{name}' carries {share} of the attributions"
                verdict = (f"The whole interval is at or above the {pct(self.dominance_share, 0)} cut, so the model's "
                           "decisions largely rest on this one input: if it is recorded after the outcome, derived "
                           "from the target or unreliable in production, the model will fail.")
            else:
                title = (f"The model leans heavily on '{name}': it carries {share} of the attributions")
                verdict = (f"The interval's lower end is at least {pct(self.notable_share, 0)} but below the "
                           f"{pct(self.dominance_share, 0)} dominance cut, so heavy reliance is established and "
                           "dominance is not. Confirm this input is known at decision time and reliable in production.")
            summary = (f"Across {m.sample.positions.size} sampled test rows, '{name}' moves the {self._output(m)} by "
                       f"{s.mean_abs[j]:.3g} on average (mean |SHAP|), {share} of the total over all "
                       f"{len(s.features)} features; the {'next' if pos == 0 else 'top'} feature, "
                       f"'{s.features[nxt]}', carries {pct(s.share[nxt], 0)}. Rule: medium when the lower end of the "
                       f"share's {lv} interval (stratified bootstrap over explained rows and background groups) is at "
                       f"least {pct(self.dominance_share, 0)}, low when it is at least {pct(self.notable_share, 0)}. "
                       f"{verdict}")
            rule = Rule(metric="share", value=float(e.value), operator=">=",
                        threshold=float(self.dominance_share if sev is Severity.MEDIUM else self.notable_share),
                        interval=(float(lo), float(hi)),
                        text=(f"medium when the lower end of the {lv} interval of the feature's share of mean |SHAP| "
                              f"is >= {self.dominance_share:g}; low when it is >= {self.notable_share:g}"))
            out.append(Finding(
                id=f"{self.id}/dominant/{name}", check=self.id, severity=sev, title=title, summary=summary,
                features=(name,),
                metrics={"share": float(e.value), "share_low": float(lo), "share_high": float(hi),
                         "mean_abs_shap": float(s.mean_abs[j]), "second_share": float(s.share[nxt]),
                         "n_rows": int(m.sample.positions.size)},
                remediation=(f"Confirm that '{name}' is known at decision time and not derived from the outcome "
                             "(see data.leakage).",
                             f"Check the model's behaviour when '{name}' is missing or wrong, and compare with a "
                             "model trained without it."),
                evidence=("importance", "importance_bar"), rule=rule))
        return out

    def evidence(self, m: ImportanceMeasurement) -> Evidence:
        s = m.shap
        order = s.ranking()
        additivity = float(np.max(np.abs(s.base_values + s.values.sum(axis=1) - s.outputs))) if len(s.values) else 0.0
        top = order[0]
        headline: dict[str, Any] = {
            "top_feature": s.features[top], "top_share": float(s.share[top]),
            "top_share_low": m.share[top].low, "top_share_high": m.share[top].high,
            "base_value": float(np.mean(s.base_values)) if len(s.base_values) else float("nan"),
            "n_rows": len(s.values), "n_sample": int(m.sample.positions.size), "n_background": s.n_background,
            "max_evals": s.max_evals, "n_evaluations": s.n_model_rows, "n_model_rows": s.n_scored_rows,
            "additivity_max_error": additivity,
        }
        if m.task == "classification":
            headline["explained_class"] = m.explained_class
        records = [{"rank": i + 1, "feature": s.features[j], "mean_abs_shap": float(s.mean_abs[j]),
                    "share": float(s.share[j]), "share_low": m.share[j].low, "share_high": m.share[j].high,
                    "rank_range": (f"{m.rank_range[j][0]}–{m.rank_range[j][1]}"
                                   if m.rank_range[j][0] != m.rank_range[j][1] else str(m.rank_range[j][0]))}
                   for i, j in enumerate(order)]
        tables = [Table.from_records("importance", "Global importance: mean |SHAP| per feature", records,
                                     columns=("rank", "feature", "mean_abs_shap", "share", "share_low", "share_high",
                                              "rank_range"), max_rows=30,
                                     caption="Share: the feature's part of the total mean |SHAP| (weighted over the "
                                             f"stratified sample), with its {level(self.confidence)} "
                                             "stratified-bootstrap interval; rank range: the central "
                                             f"{level(self.confidence)} of its rank over the bootstrap resamples.")]
        output = "probability" if m.task == "classification" else "prediction"
        for case in m.cases:
            r = case.row
            recs = [{"feature": f, "value": v, "contribution": c}  # Table.from_records makes values plain
                    for f, v, c in s.top_contributions(r, self.top_contributions)]
            tables.append(Table.from_records(
                f"drivers_{case.key}",
                f"{case.label} ({output} {s.outputs[r]:.3g}, test row {case.test_row}): top "
                f"{len(recs)} contributions", recs, columns=("feature", "value", "contribution"),
                caption=(f"Base value {s.base_values[r]:.3g} (average {output} over the background) plus all "
                         f"contributions = {output} {s.outputs[r]:.3g}.")))
        return Evidence(metrics=headline, tables=tuple(tables), figures=(self._figure(m),), notes=self._notes(m))

    def _notes(self, m: ImportanceMeasurement) -> tuple[str, ...]:
        """How the explanation was computed: explainer, sample, strata, intervals and budget."""
        s, b = m.shap, m.budget
        sm, bg = m.sample, m.background_sample
        extra = len(s.values) - sm.positions.size
        notes = [f"SHAP permutation explainer: {len(s.values)} of {m.n_test} test rows explained ({sm.positions.size} "
                 f"in the seeded importance sample"
                 + (f", plus {extra} of the {len(m.cases)} decisions shown, which carry no weight in the global "
                    "importance" if extra else f", which includes the {len(m.cases)} decisions shown")
                 + f") against {s.n_background} background rows from {m.background_split}; max_evals "
                 f"{s.max_evals} per row ({len(s.features)} features, minimum 2 x {len(s.features)} + 1); "
                 f"{s.n_model_rows:,} masked rows evaluated; the model scored the {s.n_scored_rows:,} distinct ones."]
        if m.task == "classification":
            if m.multiclass:
                notes.append(f"k-class model: the explained output is the predicted probability of class "
                             f"{m.explained_class!r}"
                             + (" (the option explain_class)" if self.explain_class != "" else
                                " (the favourable class; set explain_class to explain another)")
                             + "; importances and the decisions shown refer to that class only.")
            else:
                notes.append(f"The explained output is the predicted probability of class {m.explained_class!r}.")
        if sm.spiked:
            parts = []
            for st in sm.strata:
                if st.feature is None:
                    continue
                parts.append(f"'{st.feature}' ≠ {next(f.modal for f in sm.spiked if f.feature == st.feature):g}: "
                             f"{st.sampled} of {st.population:,} rows (proportional share {st.proportional})")
            notes.append("Sample stratified by the rare values of spiked numeric features (one value holds at least "
                         f"{self.spike_share:.0%} of the rows), each stratum at its exact proportional share and "
                         f"rare strata with at least {self.min_rare_rows} rows: " + "; ".join(parts)
                         + (f"; {sm.enlarged} rows added to the {sm.requested} requested" if sm.enlarged else "")
                         + ". Each row is weighted by the test rows it stands for, so the global importance stays "
                         "unbiased. The background is stratified the same way at proportional shares"
                         + (f" ({', '.join(f'{st.feature}: {st.sampled}' for st in bg.strata if st.feature)})"
                            if bg.spiked else "") + ".")
        else:
            notes.append("Sample: a seeded random sample of the test rows (no spiked numeric feature needed "
                         "stratification); the background likewise.")
        g = s.group_values.shape[2] if s.group_values is not None else 1
        notes.append(f"Intervals: {m.n_resamples} bootstrap resamples of the sampled rows within their strata "
                     "(weights kept)"
                     + (f" and of {g} random groups of the background rows (SHAP values against each group come "
                        "from the same model calls; their mean is the SHAP value against the whole background)"
                        if g > 1 else "")
                     + ", so they cover the choice of explained rows, of the background and the explainer's "
                       "permutations.")
        if m.n_categorical:
            notes.append(f"{m.n_categorical} categorical features were integer-coded for shap (codes from the "
                         "test and train data) and decoded to their original values before every model call.")
        if b.capped:
            notes.append(f"Budget capped at {self.max_model_rows:,} model rows for {len(s.features)} features: "
                         f"{b.rows} rows (asked {m.requested_rows}) and {b.background} background rows (asked "
                         f"{m.requested_background}); importances are noisier.")
        return tuple(notes)

    def _figure(self, m: ImportanceMeasurement) -> Figure:
        s = m.shap
        shown = s.ranking()[: self.top_features]
        return Figure("importance_bar", "Global feature importance (SHAP)", plot="explain.importance_figure",
                      data={"features": [s.features[j] for j in shown],
                            "mean_abs": [float(s.mean_abs[j]) for j in shown], "n_features": len(s.features),
                            "output": f"P({m.explained_class})" if m.task == "classification" else "prediction"},
                      caption=f"{m.sample.positions.size} sampled test rows (weighted) explained against "
                              f"{s.n_background} background rows.")

