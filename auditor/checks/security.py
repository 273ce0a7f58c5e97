"""Security probes: membership inference, model extraction and attribute inference.

Each probe plays an attacker who sees only the model's outputs, measures how far that attacker
gets, and judges the result. All model calls are batched; every random choice comes from the
check's own seeded generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from ..analysis.attribute_inference import AttributeInference, attribute_classes, attribute_inference
from ..analysis.domain import feature_domains
from ..analysis.extraction import CopyFidelity, ExtractionResult, QuerySet, extraction_attack, synthetic_rows
from ..analysis.membership import MembershipAttack, MembershipResult, membership_inference
from ..analysis.metrics import Estimate
from ..analysis.sampling import sample_positions
from ..findings import Evidence, Figure, Finding, Rule, Severity, Table
from ..wording import ci, finite, fixed, interval, level, num, pct
from .base import SECURITY, Check, budget, setting, threshold

if TYPE_CHECKING:
    from ..context import AuditContext, Predictions


def _est(e: Estimate, confidence: float, digits: int = 2) -> str:
    """An estimate with its interval: ``0.54 (95% CI 0.48–0.58)``; the estimate alone without one."""
    if not (finite(e.low) and finite(e.high)):
        return fixed(e.value, digits)
    return f"{fixed(e.value, digits)} ({ci(e.low, e.high, confidence, digits=digits, what='CI')})"


def _fid(x: float, classification: bool) -> str:
    """A copy's fidelity: agreement as a percentage, or R²."""
    return pct(x) if classification else fixed(x, 3)


def _bar(x: float, classification: bool) -> str:
    """The fidelity bar: ``95%`` of decisions, or ``R² 0.9``."""
    return f"{num(100 * x, 6)}%" if classification else f"R² {num(x, 6)}"


def _fpr_key(alpha: float) -> str:
    return f"tpr_at_{alpha * 100:g}pct_fpr".replace(".", "_")


# ==== membership inference ==========================================================================

@dataclass(frozen=True)
class MembershipMeasurement:
    task: str
    result: MembershipResult
    member_positions: np.ndarray  # positions in the train frame
    nonmember_positions: np.ndarray  # positions in the test frame
    n_train: int
    n_test: int
    rows_budget: int
    dropped: int  # sampled rows left out because their target is not one of the model's classes
    n_classes: int = 0


@dataclass
class MembershipInferenceCheck(Check[MembershipMeasurement]):
    """How well an attacker who sees the model's outputs can tell training rows (members) from
    unseen rows (non-members).

    A balanced, seeded sample of up to ``rows`` training rows and as many test rows is attacked
    twice: a loss-threshold attack (the model's probability of the true class; regression: minus
    the squared error), evaluated on all sampled rows, and ART's black-box membership attack with
    a seeded random forest over the outputs and the label, trained on half the sample and evaluated
    on the other half. Each reports AUC, the best-threshold advantage (TPR − FPR) and the TPR at low
    false-positive rates, with bootstrap intervals; the attack with the highest AUC is judged.
    Assumes train and test rows come from one population (drift between them also separates them).

    Severities use the conservative end of the bootstrap intervals (level ``confidence``): ``high`` when the lower end
    of the best attack's AUC interval is at least ``high_auc``, or the lower end of an attack's
    advantage interval is at least ``high_advantage``: the model has memorised its training rows
    (typical of fully grown trees or nearest neighbours). ``medium`` when the AUC's lower end is at
    least ``medium_auc``; ``low`` when the AUC interval lies above 0.5 and the AUC is at least
    ``low_auc``; otherwise ``info``. For k classes the threshold attack uses the probability of the
    true class among the k and the learned attack the k-vector of probabilities with the one-hot
    label. Skipped without training data.
    """

    id: ClassVar[str] = "security.membership_inference"
    family = SECURITY
    order = 1
    title: ClassVar[str] = "Membership inference"

    rows: int = budget(2000, "training rows attacked as members, and at most as many test rows as non-members")
    low_fpr: Sequence[float] = setting((0.01, 0.05), "false-positive rates at which the attacks' true-positive "
                                                     "rate is reported (the first one in the finding)")
    n_resamples: int = budget(200, "bootstrap resamples of the evaluated rows for the intervals")
    confidence: float = setting(0.95, "level of the bootstrap intervals")
    attack_trees: int = budget(100, "trees of the learned attack's random forest")
    attack_min_leaf: int = setting(5, "minimum leaf size of the learned attack's random forest")
    high_auc: float = threshold(0.75, "high when the lower end of the best attack's AUC interval reaches this")
    high_advantage: float = threshold(0.4, "high when the lower end of an attack's advantage (TPR − FPR) interval "
                                           "reaches this")
    medium_auc: float = threshold(0.60, "medium when the lower end of the best attack's AUC interval reaches this")
    low_auc: float = threshold(0.55, "low when the AUC interval lies above 0.5 and the AUC reaches this")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not ctx.has_train:
            return ("no training data given ([data] train): membership inference needs the model's training rows "
                    "to attack")
        return None

    def measure(self, ctx: AuditContext) -> MembershipMeasurement:
        rng = ctx.rng(self.id)
        n_train, n_test = len(ctx.frame("train")), len(ctx.frame("test"))
        n = min(int(self.rows), n_train, n_test)
        # the member and non-member samples have generators of their own, so the attacks' draws do
        # not depend on whether a sample took every row of its split
        mpos = ctx.sample_index(n_train, n, self.id + ":members")
        npos = ctx.sample_index(n_test, n, self.id + ":nonmembers")
        ptr, pte = ctx.predictions("train"), ctx.predictions("test")
        if ctx.is_classification:
            assert ptr.proba is not None and pte.proba is not None
            ym = ctx.y_index("train")[mpos]
            yn = ctx.y_index("test")[npos]
            okm, okn = ym >= 0, yn >= 0
            mo, no = ptr.proba[mpos][okm], pte.proba[npos][okn]
            ym, yn = ym[okm], yn[okn]
            dropped = int((~okm).sum() + (~okn).sum())
            mpos, npos = mpos[okm], npos[okn]
            k = mo.shape[1]
        else:
            mo, no = ptr.score[mpos], pte.score[npos]
            ym, yn = ctx.y_task("train")[mpos], ctx.y_task("test")[npos]
            dropped, k = 0, 1
        result = membership_inference(task=ctx.task, member_output=mo, member_target=ym, nonmember_output=no,
                                      nonmember_target=yn, n_classes=max(k, 2), rng=rng,
                                      low_fpr=tuple(float(a) for a in self.low_fpr), n_resamples=self.n_resamples,
                                      confidence=self.confidence, attack_trees=self.attack_trees,
                                      attack_min_leaf=self.attack_min_leaf)
        return MembershipMeasurement(task=ctx.task, result=result, member_positions=mpos, nonmember_positions=npos,
                                     n_train=n_train, n_test=n_test, rows_budget=int(self.rows), dropped=dropped,
                                     n_classes=ctx.n_classes if ctx.is_classification else 0)

    def _adv_attack(self, m: MembershipMeasurement) -> MembershipAttack:
        """The attack whose advantage interval has the highest lower end."""
        return max(m.result.attacks, key=lambda a: (a.score.advantage.low if np.isfinite(a.score.advantage.low)
                                                    else -1.0, a.name))

    def rule(self, m: MembershipMeasurement) -> tuple[Severity, Rule]:
        """The severity and the rule that set it (see the class docstring)."""
        auc = m.result.best.score.auc
        lo = auc.low if np.isfinite(auc.low) else auc.value
        hi = auc.high if np.isfinite(auc.high) else auc.value
        adv_a = self._adv_attack(m)
        adv = adv_a.score.advantage
        adv_lo = adv.low if np.isfinite(adv.low) else adv.value

        def auc_rule(threshold: float, text: str) -> Rule:
            return Rule(metric="attack_auc", value=float(auc.value), operator=">=", threshold=float(threshold),
                        interval=(float(lo), float(hi)), text=text)

        lv = level(self.confidence)
        if lo >= self.high_auc:
            return Severity.HIGH, auc_rule(self.high_auc, f"high when the lower end of the best attack's {lv} AUC "
                                                          f"interval is >= {self.high_auc:g}")
        if adv_lo >= self.high_advantage:
            return Severity.HIGH, Rule(metric="advantage", value=float(adv.value), operator=">=",
                                       threshold=float(self.high_advantage),
                                       interval=(float(adv_lo), float(adv.high)),
                                       text=f"high when the lower end of an attack's {lv} advantage interval "
                                            f"(TPR - FPR) is >= {self.high_advantage:g}")
        if lo >= self.medium_auc:
            return Severity.MEDIUM, auc_rule(self.medium_auc, f"medium when the lower end of the best attack's {lv} "
                                                              f"AUC interval is >= {self.medium_auc:g}")
        if lo > 0.5 and auc.value >= self.low_auc:
            return Severity.LOW, auc_rule(self.low_auc, f"low when the {lv} AUC interval lies above 0.5 and the "
                                                        f"AUC is >= {self.low_auc:g}")
        return Severity.INFO, auc_rule(self.low_auc, f"info: the {lv} AUC interval includes 0.5 or stays below "
                                                     f"{self.low_auc:g}")

    def severity(self, m: MembershipMeasurement) -> Severity:
        return self.rule(m)[0]

    def judge(self, m: MembershipMeasurement) -> list[Finding]:
        r = m.result
        best = r.best
        sev, rule = self.rule(m)
        alpha = float(self.low_fpr[0]) if len(self.low_fpr) else 0.01
        tpr = best.score.tpr_at(alpha) if len(self.low_fpr) else None
        what = "probability of the true class" if m.task == "classification" else "prediction error"
        auc = _est(best.score.auc, self.confidence)
        if sev is Severity.INFO:
            title = f"The model's outputs do not give away training rows: best membership attack AUC {auc}"
        else:
            title = f"Training rows recognisable from the model's outputs: membership attack AUC {auc}"
        summary = (f"An attacker who sees the model's outputs and the true outcome tried to tell {r.n_member:,} "
                   f"training rows from {r.n_nonmember:,} unseen test rows. The best attack, the {best.label}, "
                   f"reaches AUC {auc}, where 0.5 is guessing; its best threshold separates "
                   f"{pct(best.score.advantage.value, 0)} more members than non-members (advantage, TPR − FPR)")
        if tpr is not None:
            summary += (f", and at {pct(alpha, 0)} false positives it finds {pct(tpr.value, 0)} of the members "
                        f"(chance: {pct(alpha, 0)})")
        if best.name == "threshold":
            summary += f"; it only compares the model's {what} on the two kinds of rows."
        else:
            summary += (f". The loss-threshold attack, which only compares the model's {what}, has AUC "
                        f"{_est(r.attack('threshold').score.auc, self.confidence)}.")
        if sev is Severity.HIGH:
            summary += (" The model behaves very differently on the rows it was trained on: it has memorised them, "
                        "so anyone with query access can test whether a person's record was in the training data.")
        elif sev in (Severity.MEDIUM, Severity.LOW):
            summary += " The model is measurably more confident on its training rows than on unseen rows."
        lo, hi = rule.interval or (rule.value, rule.value)
        summary += (f" Rule ({level(self.confidence)} bootstrap intervals, conservative end): high when the AUC's "
                    f"lower end is at least {self.high_auc:g} or an advantage's lower end at least "
                    f"{self.high_advantage:g}; medium when the AUC's lower end is at least {self.medium_auc:g}; low "
                    f"when the AUC interval is above 0.5 and the AUC at least {self.low_auc:g}. Here: "
                    f"{rule.metric.replace('_', ' ')} {fixed(rule.value, 3)}, interval {interval(lo, hi, digits=3)}.")
        summary += " Train/test drift would inflate these numbers; see data.drift."
        remediation: tuple[str, ...] = ()
        if sev in (Severity.HIGH, Severity.MEDIUM):
            remediation = ("Regularise the model (shallower trees, larger leaves, fewer boosting rounds, stronger "
                           "penalties, early stopping) and compare train and test performance (performance.overfit).",
                           "Expose decisions or coarse scores rather than exact probabilities.",
                           "If the training data is personal, consider differentially private training and "
                           "document the residual membership risk.")
        elif sev is Severity.LOW:
            remediation = ("Monitor: the leak is small; prefer returning decisions or rounded scores.",)
        metrics = {"attack_auc": best.score.auc.value, "attack_auc_low": best.score.auc.low,
                   "attack_auc_high": best.score.auc.high, "best_attack": best.name,
                   "advantage": max(a.score.advantage.value for a in r.attacks),
                   "members": r.n_member, "non_members": r.n_nonmember}
        if tpr is not None:
            metrics[_fpr_key(alpha)] = tpr.value
        adv = self._adv_attack(m).score.advantage
        metrics.update({"advantage_low": adv.low, "advantage_high": adv.high})
        return [Finding(id=f"{self.id}/attack", check=self.id, severity=sev, title=title, summary=summary,
                        metrics=metrics, remediation=remediation, evidence=("attacks", "attack_roc"), rule=rule)]

    def evidence(self, m: MembershipMeasurement) -> Evidence:
        r = m.result
        best = r.best
        records = []
        for a in r.attacks:
            rec: dict[str, Any] = {"attack": a.label[:1].upper() + a.label[1:],
                                   "rows_evaluated": a.score.n_positive + a.score.n_negative,
                                   "auc": a.score.auc.value, "auc_low": a.score.auc.low, "auc_high": a.score.auc.high,
                                   "advantage": a.score.advantage.value, "advantage_low": a.score.advantage.low,
                                   "advantage_high": a.score.advantage.high, "accuracy": a.accuracy}
            for alpha, e in a.score.tpr_at_fpr:
                rec[_fpr_key(alpha)] = e.value
            records.append(rec)
        cols = ("attack", "rows_evaluated", "auc", "auc_low", "auc_high", "advantage", "advantage_low",
                "advantage_high", "accuracy",
                *(_fpr_key(float(a)) for a in self.low_fpr))
        table = Table.from_records("attacks", "Membership attacks", records, columns=cols,
                                   caption=f"AUC with {level(self.confidence)} bootstrap interval; advantage = best "
                                           "TPR − FPR; accuracy at the attack's own rule on a balanced sample; TPR at "
                                           "a fixed low false positive rate (chance equals that rate).")
        metrics: dict[str, Any] = {"attack_auc": best.score.auc.value, "attack_auc_low": best.score.auc.low,
                                   "attack_auc_high": best.score.auc.high, "best_attack": best.name,
                                   "advantage": max(a.score.advantage.value for a in r.attacks),
                                   "members": r.n_member, "non_members": r.n_nonmember}
        for a in r.attacks:
            metrics[f"{a.name}_auc"] = a.score.auc.value
        for alpha, e in best.score.tpr_at_fpr:
            metrics[_fpr_key(alpha)] = e.value
        learned = [a for a in r.attacks if a.name == "learned"]
        notes = [
            f"Sample: {r.n_member:,} of {m.n_train:,} training rows (members) and {r.n_nonmember:,} of {m.n_test:,} "
            f"test rows (non-members), seeded; budget {m.rows_budget:,} rows each. Outputs come from the audit's "
            "cached predictions (no extra model calls).",
            ("Threshold attack: the score is the model's probability of the true class"
             + (f" (k = {m.n_classes} classes: the true class's column of the probability vector)"
                if m.n_classes > 2 else "")) if m.task == "classification"
            else "Threshold attack: the score is minus the squared error",
            ("Learned attack: ART MembershipInferenceBlackBox with a seeded random forest "
             f"({self.attack_trees} trees, min leaf {self.attack_min_leaf}) over "
             + ("the probability vector and the one-hot label" if m.task == "classification" else
                "the loss and the target")
             + f", trained on {learned[0].n_train:,} rows and evaluated on the other half.") if learned else
            "Learned attack not run: too few rows for a train/evaluation split.",
            f"Intervals: {self.n_resamples} bootstrap resamples of the evaluated rows. The advantage and TPR at low "
            "FPR use the best threshold on the evaluated rows (the attacker's best case).",
            "Assumes training and test rows are drawn from the same population; drift between them also "
            "separates them and inflates the attacks.",
        ]
        if m.dropped:
            notes.append(f"{m.dropped} sampled rows were left out: their target is not one of the model's classes.")
        low_fpr = float(self.low_fpr[0]) if len(self.low_fpr) else 0.01
        figure = Figure("attack_roc", "Membership inference attacks", plot="security.membership_figure",
                        data={"result": r, "low_fpr": low_fpr},
                        caption="Left: ROC of each attack (threshold attack on every sampled row, learned attack on "
                                f"its held-out half); the thin vertical line marks {pct(low_fpr, 0)} false positives. "
                                "Right: the threshold attack's signal; the more the two distributions differ, the "
                                "more the model's outputs give away training rows.")
        return Evidence(metrics=metrics, tables=(table,), figures=(figure,), notes=tuple(notes))


# ==== model extraction ===============================================================================

@dataclass(frozen=True)
class ExtractionMeasurement:
    task: str
    result: ExtractionResult
    n_test: int
    query_pool: int  # test rows available to the real-data attacker
    queries_budget: int
    synthetic_calls: int  # model calls made for the synthetic queries
    synthetic_rows: int  # rows scored in those calls
    synthetic_failure: str = ""  # why the model could not answer the synthetic queries, if it could not


@dataclass
class ModelExtractionCheck(Check[ExtractionMeasurement]):
    """How closely a copy trained on the model's answers to queries reproduces the model.

    Two attackers with a budget of ``queries`` queries each: a weak one sending synthetic rows
    drawn independently per feature from the observed ranges and levels, and a strong one sending
    real in-distribution rows (half the test rows; the other half, at most ``eval_rows``, is kept
    to measure fidelity). For a classifier both an API returning scores and one returning only
    decisions are simulated. Copies (gradient boosting and a linear model) are trained at each
    budget of ``curve_budgets`` and at the full budget; fidelity is decision agreement with the
    model (classification, with Cohen's kappa) or R² between copy and model (regression).

    For k > 2 classes the scores API returns the probability vector and the labels API the
    predicted class; copies are k-class and fidelity is agreement on the predicted class.

    ``medium`` when the model is declared ``exposed`` (it answers queries from outside the
    organisation) and some copy's fidelity interval (classification: Wilson interval of the
    agreement; regression: bootstrap interval of R²; both at level ``confidence``) has its lower
    end at ``fidelity`` or above (classification: with kappa >= ``min_kappa``, so a constant copy
    of a near-constant model does not count) from at most ``few_queries`` queries: the model can
    be stolen cheaply if served behind an open API. The same established copy is ``low`` when the
    model is not declared exposed (the default): every accurate, smooth model can be copied from its
    answers, and without outside callers there is no one to do it. ``low`` also when only the
    interval's upper end reaches the bar (a copy at the bar cannot be ruled out; on UCI Adult the estimate sits at the
    bar and moves across it with the seed, the upper end does not). ``info`` otherwise.
    Never ``high``: extraction risk depends on how the model is deployed (who can query it, how
    often, what it returns), which the audit cannot see.
    """

    id: ClassVar[str] = "security.model_extraction"
    family = SECURITY
    order = 2
    cost = 2
    title: ClassVar[str] = "Model extraction"

    queries: int = budget(2000, "queries each attacker sends (the full budget)")
    curve_budgets: Sequence[int] = budget((100, 300, 1000), "smaller query budgets of the learning curve")
    eval_rows: int = budget(5000, "held-out test rows, at most, on which each copy's fidelity is measured")
    fidelity: float = threshold(0.95, "the bar: decision agreement (classification) or R² (regression) of copy "
                                      "and model")
    min_kappa: float = threshold(0.8, "classification: Cohen's kappa a copy at the bar needs to count as stolen")
    few_queries: int = threshold(1000, "medium when a copy reaches the bar from at most this many queries")
    min_test_rows: int = setting(40, "test rows needed to query the model and to evaluate a copy (else skipped)")
    confidence: float = setting(0.95, "level of the fidelity intervals (Wilson for agreement, bootstrap for R²)")
    exposed: bool = setting(False, "the model answers queries from outside the organisation (a public or partner "
                                   "API): an established cheap copy is then medium, otherwise low")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        n = len(ctx.frame("test"))
        if n < self.min_test_rows:
            return f"only {n} test rows; at least {self.min_test_rows} are needed to query and to evaluate a copy"
        return None

    def measure(self, ctx: AuditContext) -> ExtractionMeasurement:
        rng = ctx.rng(self.id)
        X = ctx.X("test")
        n = len(X)
        perm = rng.permutation(n)
        pool, held = perm[: n // 2], perm[n // 2:]
        ev = np.sort(held[: int(self.eval_rows)])
        budget = int(self.queries)
        real = pool[:budget]  # in query order
        preds = ctx.predictions("test")
        multi = ctx.is_multiclass

        def answers(p: Predictions) -> tuple[np.ndarray, np.ndarray]:
            """What the API returns (k classes: the probabilities and the predicted class)."""
            if multi:
                assert p.proba is not None and p.pred_class is not None
                return p.proba, p.pred_class
            return p.score, p.label

        score, label = answers(preds)
        query_sets = {"real": QuerySet(rows=X.iloc[real].reset_index(drop=True), score=score[real],
                                       label=label[real])}
        frame = pd.concat([ctx.X("train"), X], ignore_index=True) if ctx.has_train else X
        domains = feature_domains(frame, categorical=ctx.categorical, features=ctx.features)
        synth = synthetic_rows(domains, ctx.features, budget, rng, template=X)
        failure = ""
        try:
            answered = ctx.predict_frame(synth)  # the synthetic attacker's queries: one batched call
            a_score, a_label = answers(answered)
            query_sets["synthetic"] = QuerySet(rows=synth, score=a_score, label=a_label)
        except Exception as exc:  # noqa: BLE001 - a model that rejects in-range rows still has a real attacker
            failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        y = ctx.y_index("test")[ev] if multi else ctx.y_task("test")[ev]
        result = extraction_attack(task=ctx.task, query_sets=query_sets, eval_rows=X.iloc[ev].reset_index(drop=True),
                                   eval_score=score[ev], eval_label=label[ev], eval_target=y,
                                   categorical=ctx.categorical, threshold=float(ctx.threshold),
                                   budgets=tuple(int(b) for b in self.curve_budgets), confidence=self.confidence,
                                   rng=rng)
        return ExtractionMeasurement(task=ctx.task, result=result, n_test=n, query_pool=len(pool),
                                     queries_budget=budget, synthetic_calls=1, synthetic_rows=len(synth),
                                     synthetic_failure=failure)

    def _end(self, p: CopyFidelity, conservative: bool) -> float:
        """What the rule compares with the bar: the interval's lower end for ``medium``, its upper
        end for ``low`` (the estimate when no interval is available)."""
        end = p.fidelity_low if conservative else p.fidelity_high
        return end if np.isfinite(end) else p.fidelity

    def _stolen(self, p: CopyFidelity, conservative: bool = True) -> bool:
        if not np.isfinite(p.fidelity) or self._end(p, conservative) < self.fidelity:
            return False
        if np.isfinite(p.agreement):
            return bool(np.isfinite(p.kappa) and p.kappa >= self.min_kappa)
        return True

    def cheapest_copy(self, m: ExtractionMeasurement, conservative: bool = True) -> CopyFidelity | None:
        """The copy reaching the fidelity bar with the fewest queries (at most ``few_queries``):
        with ``conservative``, its interval's lower end reaches the bar, else its upper end does."""
        hits = [p for p in m.result.points if p.budget <= self.few_queries and self._stolen(p, conservative)]
        if not hits:
            return None
        return min(hits, key=lambda p: (p.budget, -self._end(p, conservative), -p.fidelity, p.source, p.api,
                                        p.family))

    def _rule(self, p: CopyFidelity, cls: bool) -> Rule:
        lv = level(self.confidence)
        what = f"decision agreement ({lv} Wilson interval)" if cls else f"R² of copy vs model ({lv} bootstrap interval)"
        return Rule(metric="agreement" if cls else "score_r2", value=float(p.fidelity), operator=">=",
                    threshold=float(self.fidelity), interval=(float(p.fidelity_low), float(p.fidelity_high)),
                    text=(f"medium when the model is declared exposed to outside callers and a copy from at most "
                          f"{self.few_queries} queries has the lower end of its {what} >= {self.fidelity:g}"
                          + (f" and kappa >= {self.min_kappa:g}" if cls else "")
                          + "; low when only the upper end reaches it, or when the model is not declared exposed"
                          + ("" if self.exposed else " (this one is not)")))

    def _ci_text(self, p: CopyFidelity, cls: bool) -> str:
        lo, hi = p.fidelity_low, p.fidelity_high
        if cls:
            return f"{pct(p.fidelity)} ({ci(lo, hi, self.confidence, digits=1, as_pct=True, what='Wilson interval')})"
        return f"{fixed(p.fidelity, 3)} ({ci(lo, hi, self.confidence, digits=3, what='bootstrap interval')})"

    def _best_full(self, m: ExtractionMeasurement) -> CopyFidelity | None:
        full = [m.result.best(s, api, bs[-1]) for s, bs in m.result.budgets if bs for api in m.result.apis]
        return max(full, key=lambda p: (p.fidelity if np.isfinite(p.fidelity) else -np.inf, p.source, p.api),
                   default=None)

    def judge(self, m: ExtractionMeasurement) -> list[Finding]:
        r = m.result
        cls = m.task == "classification"
        multi = cls and r.n_classes > 2
        hit = self.cheapest_copy(m)
        sev = Severity.MEDIUM
        if hit is None:
            hit = self.cheapest_copy(m, conservative=False)
            sev = Severity.LOW
        best = self._best_full(m)
        if best is None:
            return []
        decisions = "predicted classes" if multi else "decisions"
        established = sev is Severity.MEDIUM
        rule_words = (f" Rule: medium when the model is declared exposed to outside callers and the lower end of the "
                      f"copy's {'Wilson' if cls else 'bootstrap'} interval reaches the {_bar(self.fidelity, cls)} bar "
                      f"within {self.few_queries:,} queries"
                      + (f" (with kappa at least {self.min_kappa:g})" if cls else "")
                      + "; low when only the upper end does, or when the model is not declared exposed"
                      + ("" if self.exposed else
                         " (it is not: set exposed = true under [checks.\"security.model_extraction\"] for a model "
                         "served to outside callers)") + ".")
        if hit is not None:
            label_hits = [p for p in r.points if p.api == "labels" and p.budget <= self.few_queries
                          and self._stolen(p, sev is Severity.MEDIUM)]
            if sev is Severity.MEDIUM:
                title = ((f"A copy matching {self._ci_text(hit, cls)} of the model's {decisions}" if cls else
                          f"A copy reproducing the model's predictions with R² {self._ci_text(hit, cls)}")
                         + f" can be trained from {hit.budget:,} {hit.source} queries")
            else:
                title = ((f"A copy trained on {hit.budget:,} {hit.source} queries matches {self._ci_text(hit, cls)} "
                          f"of the model's {decisions}" if cls else
                          f"A copy trained on {hit.budget:,} {hit.source} queries reproduces the model's predictions "
                          f"with R² {self._ci_text(hit, cls)}")
                         + f", an interval that reaches the {_bar(self.fidelity, cls)} bar")
            kind = "real, in-distribution" if hit.source == "real" else "synthetic"
            answers = {"scores": "probability vectors" if multi else "scores",
                       "labels": "predicted classes" if multi else "decisions"}.get(hit.api, "predictions")
            copy_is = (f"agrees with {self._ci_text(hit, cls)} of the model's {decisions}" if cls else
                       f"reproduces the model's predictions with R² {self._ci_text(hit, cls)}")
            summary = (f"An attacker who sends {hit.budget:,} {kind} rows to the model and trains a {hit.family} "
                       f"model on the {answers} it returns obtains a copy that {copy_is} on {r.n_eval:,} held-out "
                       "rows it never queried")
            if cls:
                summary += (f" (kappa {hit.kappa:.2f}; copy {'macro one-vs-rest ' if multi else ''}AUC "
                            f"{hit.copy_metric:.3f} vs the model's {r.model_metric:.3f})")
            if sev is Severity.MEDIUM:
                summary += (". A copy this close can be stolen with few queries if the model is served behind an "
                            "API, and then used or probed offline (e.g. to craft adversarial inputs). Whether that "
                            "matters depends on who can query the deployed model.")
            else:
                summary += (". The bar is within the interval but not established on these held-out rows; a copy "
                            "close to the model is likely cheap to obtain.")
            summary += rule_words
            rem = ["Rate-limit and monitor the API: alert on high query volumes and on synthetic-looking inputs.",
                   "Authenticate callers and keep query logs."]
            if cls:
                if label_hits:
                    rem.append(f"Returning {decisions} instead of scores does not prevent it here (a copy from "
                               f"{decisions} alone also reaches the bar); rely on access control and rate limits.")
                else:
                    rem.append(f"Return {decisions}, not scores: from {decisions} alone no copy reached the bar "
                               f"within {self.few_queries:,} queries.")
            if established and not self.exposed:
                sev = Severity.LOW
            return [Finding(id=f"{self.id}/copy", check=self.id, severity=sev, title=title,
                            summary=summary, metrics=self._metrics(m, hit, best), remediation=tuple(rem),
                            evidence=("learning_curve",), rule=self._rule(hit, cls))]
        top = max(r.points, key=lambda p: (p.fidelity if np.isfinite(p.fidelity) else -np.inf, -p.budget))
        reach = (f"agree with at most {_fid(top.fidelity, cls)} of the model's {decisions}" if cls else
                 f"reproduce the model's predictions with R² of at most {_fid(top.fidelity, cls)}")
        title = (f"Copies {reach} (best: {top.budget:,} {top.source} queries); the {_bar(self.fidelity, cls)} bar "
                 f"is not reached within {self.few_queries:,} queries")
        summary = (f"Copies trained on up to {m.queries_budget:,} answered queries {reach} on {r.n_eval:,} held-out "
                   f"rows (best: {top.source} queries, {top.family} copy" + (f", {top.api} API" if cls else "")
                   + f"; with {m.queries_budget:,} queries the best copy reaches {_fid(best.fidelity, cls)}). The "
                   "model is not cheaply copied within the budgets tried; a larger budget or a better-informed "
                   "attacker may still succeed." + rule_words)
        return [Finding(id=f"{self.id}/copy", check=self.id, severity=Severity.INFO, title=title, summary=summary,
                        metrics=self._metrics(m, None, best), evidence=("learning_curve",), rule=self._rule(top, cls))]

    def _metrics(self, m: ExtractionMeasurement, hit: CopyFidelity | None, best: CopyFidelity) -> dict[str, Any]:
        out: dict[str, Any] = {"best_fidelity": best.fidelity, "best_budget": best.budget, "best_source": best.source,
                               "fidelity_bar": self.fidelity, "few_queries": self.few_queries}
        if hit is not None:
            out.update({"queries_to_bar": hit.budget, "fidelity_at_bar": hit.fidelity,
                        "fidelity_at_bar_low": hit.fidelity_low, "fidelity_at_bar_high": hit.fidelity_high,
                        "source": hit.source, "api": hit.api})
        return out

    def evidence(self, m: ExtractionMeasurement) -> Evidence:
        r = m.result
        lv = level(self.confidence)
        cls = m.task == "classification"
        records = []
        for source, budgets in r.budgets:
            for api in r.apis:
                for b in budgets:
                    p = r.best(source, api, b)
                    rec: dict[str, Any] = {"source": source, "queries": b}
                    if cls:
                        rec.update({"api": api, "copy": p.family, "agreement": p.agreement,
                                    "agreement_low": p.agreement_low, "agreement_high": p.agreement_high,
                                    "kappa": p.kappa, "score_r2": p.score_r2, "copy_auc": p.copy_metric,
                                    "model_auc": r.model_metric})
                    else:
                        rec.update({"copy": p.family, "r2_vs_model": p.score_r2, "r2_low": p.score_r2_low,
                                    "r2_high": p.score_r2_high, "corr_vs_model": p.score_corr,
                                    "copy_r2_vs_target": p.copy_metric, "model_r2_vs_target": r.model_metric})
                    records.append(rec)
        cols = (("source", "api", "queries", "copy", "agreement", "agreement_low", "agreement_high", "kappa",
                 "score_r2", "copy_auc", "model_auc") if cls else
                ("source", "queries", "copy", "r2_vs_model", "r2_low", "r2_high", "corr_vs_model",
                 "copy_r2_vs_target", "model_r2_vs_target"))
        table = Table.from_records(
            "learning_curve", "Copy fidelity by query budget", records, columns=cols,
            caption=("The better of the two copy models at each budget. Agreement: share of held-out rows where copy "
                     f"and model decide alike ({lv} Wilson interval); score R² (scores API): how well the copy's "
                     "score predicts the model's; AUCs on the true target." if cls else
                     "The better of the two copy models at each budget, measured on held-out rows."))
        metrics: dict[str, Any] = {"model_" + ("auc" if cls else "r2"): r.model_metric, "eval_rows": r.n_eval}
        for source, budgets in r.budgets:
            for api in r.apis:
                if budgets:
                    key = f"{source}_{api}_fidelity" if cls else f"{source}_fidelity"
                    metrics[key] = r.best(source, api, budgets[-1]).fidelity
        hit = self.cheapest_copy(m)
        metrics["queries_to_bar"] = hit.budget if hit is not None else None
        if r.n_classes > 2:
            metrics["classes"] = r.n_classes
        real_n = dict(r.queries).get("real", 0)
        notes = [
            f"Query budget {m.queries_budget:,} per attacker. Synthetic attacker: {m.synthetic_rows:,} rows drawn "
            "independently per feature (numeric uniform over the observed range, integers whole; categorical uniform "
            f"over observed levels), answered in {m.synthetic_calls} batched model call. Real attacker: {real_n:,} of "
            f"the {m.query_pool:,} test rows in its half, answered from the audit's cached test predictions.",
            f"Fidelity measured on {r.n_eval:,} held-out test rows neither attacker queried.",
            "Learning curve budgets: " + "; ".join(f"{s}: {', '.join(f'{b:,}' for b in bs)}" for s, bs in r.budgets)
            + " (each copy trained on the first queries in order).",
            "Copies: histogram gradient boosting (60 iterations, 15 leaves, native categorical splits) and a linear "
            "model "
            "(logistic regression / ridge on one-hot + standardised features), seeded"
            + (("; k-class model: the scores API returns the probability vector (the copy regresses the centred "
                "log-probabilities, one output per class, and predicts the most probable class), the labels API "
                "the predicted class (a k-class copy); agreement is on the predicted class and AUCs are macro "
                "one-vs-rest." if r.n_classes > 2 else
                "; scores API: regression on the logit of the returned probability, thresholded like the model; "
                "labels API: a classifier on the returned decisions.") if cls else "."),
            (f"Intervals: {lv} Wilson interval of the agreement share on the held-out rows; medium needs its lower "
             "end at the bar, low its upper end." if cls else
             "Intervals: 200 bootstrap resamples of the held-out rows for R²; medium needs the lower end at the "
             "bar, low the upper end."),
        ]
        if m.synthetic_failure:
            notes.append(f"The model failed on the synthetic queries ({m.synthetic_failure}); only the real-data "
                         "attacker was simulated.")
        figure = Figure("learning_curve", "Model extraction learning curve", plot="security.extraction_figure",
                        data={"result": r, "fidelity_target": self.fidelity, "few_queries": self.few_queries},
                        caption=f"Left: the better of two copy models per budget, measured on {r.n_eval} held-out "
                                f"real rows; dotted line: the {pct(self.fidelity, 0)} fidelity mark; vertical line: "
                                f"{self.few_queries:,} queries. Right: the best full-budget copy against the model on "
                                "those rows.")
        return Evidence(metrics=metrics, tables=(table,), figures=(figure,), notes=tuple(notes))


# ==== attribute inference =============================================================================

@dataclass(frozen=True)
class AttributeMeasurement:
    task: str
    results: tuple[AttributeInference, ...]
    n_rows: int
    n_test: int
    output_columns: int


@dataclass
class AttributeInferenceCheck(Check[AttributeMeasurement]):
    """How well a protected attribute can be inferred from the model's outputs.

    For each protected column (categorical; numeric ones with many values in ``numeric_bins``
    quantile bins), seeded gradient-boosting attackers are cross-validated (``folds`` folds) on up
    to ``rows`` test rows: a baseline that knows the other model features, one that also knows the
    model's output (score, probabilities or prediction), and one that sees the output alone. The
    AUC gain from adding the output is the leakage attributable to the model. When the protected
    column is itself a model input, the output obviously encodes it; the output-alone attack says
    how much.

    Severities use the bootstrap intervals (level ``confidence``). ``high`` when the output alone reveals an
    attribute that is not a model input (lower end of the output-alone AUC >= ``high_output_auc``).
    ``medium`` when the lower end of the gain from adding the output is at least ``medium_gain``, or
    when the output alone reveals an attribute the model takes as input (lower end >=
    ``high_output_auc``). ``low`` when a significant gain (interval above 0) is at least ``low_gain``,
    or a significant output-alone AUC (interval above 0.5) is at least ``low_output_auc``; ``info``
    otherwise. For a k-class model the output is
    the k-vector of probabilities. Skipped when no protected columns are given.
    """

    id: ClassVar[str] = "security.attribute_inference"
    family = SECURITY
    order = 3
    cost = 3
    title: ClassVar[str] = "Attribute inference"

    rows: int = budget(5000, "test rows attacked (a seeded sample when there are more)")
    folds: int = setting(3, "cross-validation folds of the attackers (the same folds for all three)")
    numeric_bins: int = setting(4, "quantile bins of a numeric attribute with more than max_levels values")
    max_levels: int = setting(10, "numeric attributes with more distinct values than this are binned")
    min_level_rows: int = setting(20, "levels with fewer rows are pooled as '(other)'")
    attack_iterations: int = budget(40, "boosting iterations of each gradient-boosting attacker")
    n_resamples: int = budget(200, "paired bootstrap resamples of the out-of-fold predictions")
    confidence: float = setting(0.95, "level of the bootstrap intervals")
    high_output_auc: float = threshold(0.80, "high (medium for a model input) when the lower end of the "
                                             "output-alone AUC interval reaches this")
    medium_gain: float = threshold(0.10, "medium when the lower end of the AUC gain from the output reaches this")
    low_gain: float = threshold(0.05, "low when a significant AUC gain from the output (interval above 0) reaches "
                                      "this")
    low_output_auc: float = threshold(0.65, "low when a significant output-alone AUC (interval above 0.5) reaches "
                                            "this")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not ctx.protected:
            return "no protected columns given ([data] protected)"
        return None

    def measure(self, ctx: AuditContext) -> AttributeMeasurement:
        rng = ctx.rng(self.id)
        frame = ctx.frame("test")
        n = len(frame)
        pos = sample_positions(n, int(self.rows), rng)
        preds = ctx.predictions("test")
        if ctx.is_multiclass:
            assert preds.proba is not None
            output = preds.proba[pos]  # the k-vector of probabilities (one column per class)
        else:
            output = np.asarray(preds.score, dtype=float)[pos].reshape(-1, 1)
        X = ctx.X("test").iloc[pos].reset_index(drop=True)
        results = []
        for col in ctx.protected:
            classes = attribute_classes(frame[col].iloc[pos], numeric_bins=self.numeric_bins,
                                        max_levels=self.max_levels, min_level_rows=self.min_level_rows)
            others = [f for f in ctx.features if f != col]
            results.append(attribute_inference(
                attribute=col, classes=classes, other=X[others], categorical=ctx.categorical, output=output,
                is_feature=col in ctx.features, rng=rng, folds=self.folds, n_resamples=self.n_resamples,
                confidence=self.confidence, max_iter=self.attack_iterations))
        return AttributeMeasurement(task=ctx.task, results=tuple(results), n_rows=len(pos), n_test=n,
                                    output_columns=output.shape[1])

    def rule(self, a: AttributeInference) -> tuple[Severity, str]:
        """The severity and which rule set it: ``output`` (the output alone), ``gain`` or ``none``."""
        out_sig = np.isfinite(a.output_only.low) and a.output_only.low > 0.5
        gain_sig = np.isfinite(a.gain.low) and a.gain.low > 0
        if out_sig and a.output_only.low >= self.high_output_auc:
            return (Severity.MEDIUM if a.is_feature else Severity.HIGH), "output"
        if gain_sig and a.gain.low >= self.medium_gain:
            return Severity.MEDIUM, "gain"
        if gain_sig and a.gain.value >= self.low_gain:
            return Severity.LOW, "gain"
        if out_sig and a.output_only.value >= self.low_output_auc:
            return Severity.LOW, "output"
        return Severity.INFO, "none"

    def rule_record(self, a: AttributeInference) -> Rule:
        """The contract's ``rule`` for an attribute's finding."""
        sev, why = self.rule(a)
        lv = level(self.confidence)
        if why == "gain":
            thr = self.medium_gain if sev is Severity.MEDIUM else self.low_gain
            what = f"the lower end of the {lv} interval of" if sev is Severity.MEDIUM else ""
            return Rule(metric="auc_gain", value=float(a.gain.value), operator=">=", threshold=float(thr),
                        interval=(float(a.gain.low), float(a.gain.high)),
                        text=f"{sev.value} when {what or 'the estimate of'} the AUC gain from the output is "
                             f">= {thr:g}" + (f" and its {lv} interval is above 0" if sev is Severity.LOW else ""))
        if why == "output":
            thr = self.high_output_auc if sev in (Severity.HIGH, Severity.MEDIUM) else self.low_output_auc
            what = "the estimate of" if sev is Severity.LOW else f"the lower end of the {lv} interval of"
            return Rule(metric="output_only_auc", value=float(a.output_only.value), operator=">=",
                        threshold=float(thr), interval=(float(a.output_only.low), float(a.output_only.high)),
                        text=f"{sev.value} when {what} the output-alone AUC is >= "
                             f"{thr:g}" + (f" and its {lv} interval is above 0.5" if sev is Severity.LOW else "")
                             + (" (the attribute is a model input: at most medium)" if a.is_feature else ""))
        return Rule(metric="output_only_auc", value=float(a.output_only.value), operator=">=",
                    threshold=float(self.low_output_auc), interval=(float(a.output_only.low),
                                                                    float(a.output_only.high)),
                    text=f"info: neither the output-alone AUC (>= {self.low_output_auc:g}, interval above 0.5) "
                         f"nor the gain from the output (>= {self.low_gain:g}, interval above 0) is established")

    def severity(self, a: AttributeInference) -> Severity:
        return self.rule(a)[0]

    def judge(self, m: AttributeMeasurement) -> list[Finding]:
        out = []
        lv = level(self.confidence)
        for a in m.results:
            if not a.analysed:
                continue
            sev, why = self.rule(a)
            output_name = "score" if m.task == "classification" and m.output_columns == 1 else \
                "probabilities" if m.task == "classification" else "prediction"
            if why == "none":
                title = (f"The model's {output_name} reveals little about '{a.attribute}' (alone: AUC "
                         f"{a.output_only.value:.2f}; gain over the other features {a.gain.value:+.2f})")
            elif why == "output":
                how = "reveals" if sev in (Severity.HIGH, Severity.MEDIUM) else "partly reveals"
                title = (f"The model's {output_name} alone {how} '{a.attribute}': attacker AUC "
                         f"{_est(a.output_only, self.confidence)}")
            else:
                title = (f"The model's {output_name} helps infer '{a.attribute}': AUC {a.baseline.value:.2f} → "
                         f"{a.with_output.value:.2f} (gain {a.gain.value:+.2f})")
            levels = ", ".join(a.levels[:6]) + ("…" if len(a.levels) > 6 else "")
            summary = (f"Attackers tried to infer '{a.attribute}' ({len(a.levels)} "
                       f"{'bins' if a.binned else 'levels'}: {levels}) on {a.n_rows:,} test rows. Knowing the "
                       f"{a.n_features} other model features gives AUC {_est(a.baseline, self.confidence)}; adding "
                       f"the model's {output_name} gives {_est(a.with_output, self.confidence)} (gain "
                       f"{a.gain.value:+.3f}, {lv} CI {a.gain.low:+.3f} to {a.gain.high:+.3f}); the {output_name} "
                       f"alone gives {_est(a.output_only, self.confidence)}. 0.5 is guessing.")
            if a.is_feature:
                summary += (f" '{a.attribute}' is itself a model input, so the output necessarily encodes it; the "
                            "output-alone attack measures how much of it an observer of the output can recover.")
            elif why == "output":
                summary += (f" '{a.attribute}' is not a model input, yet the output alone reveals it"
                            + (" in part" if sev is not Severity.HIGH else "")
                            + ": the model has learned it through other features, so anyone who sees the output "
                            "can infer it.")
            summary += (f" Rule ({lv} bootstrap intervals): high when the output-alone AUC's lower end is at least "
                        f"{self.high_output_auc:g} (medium for a model input); medium when the gain's lower end is at "
                        f"least {self.medium_gain:g}; low when a significant gain (interval above 0) is at least "
                        f"{self.low_gain:g} or a significant output-alone AUC (interval above 0.5) at least "
                        f"{self.low_output_auc:g}.")
            if why == "output" and a.gain.value < self.low_gain and a.baseline.value >= a.output_only.value:
                summary += (" An attacker who already knows the other features learns nothing more from the "
                            "output; the exposure is to those who see only the output.")
            rem: tuple[str, ...] = ()
            if sev in (Severity.HIGH, Severity.MEDIUM):
                rem = (f"Find the features through which the model encodes '{a.attribute}' (fairness.proxy) and "
                       "decide whether that is acceptable.",
                       "Limit what the output exposes: return decisions or coarse scores, not exact probabilities.",
                       "Treat the model's outputs as personal data about the attribute in the privacy assessment.")
            elif sev is Severity.LOW:
                rem = ("Note the small leakage in the privacy assessment; prefer coarse outputs.",)
            out.append(Finding(
                id=f"{self.id}/{a.attribute}", check=self.id, severity=sev, title=title, summary=summary,
                features=(a.attribute,) if a.is_feature else (),
                metrics={"attribute": a.attribute, "model_input": a.is_feature, "baseline_auc": a.baseline.value,
                         "with_output_auc": a.with_output.value, "auc_gain": a.gain.value, "auc_gain_low": a.gain.low,
                         "output_only_auc": a.output_only.value, "output_only_auc_low": a.output_only.low,
                         "rows": a.n_rows},
                remediation=rem, evidence=("attributes", "attribute_auc"), rule=self.rule_record(a)))
        return out

    def evidence(self, m: AttributeMeasurement) -> Evidence:
        records = []
        for a in m.results:
            records.append({"attribute": a.attribute, "model_input": "yes" if a.is_feature else "no",
                            "classes": len(a.levels), "rows": a.n_rows, "baseline_auc": a.baseline.value,
                            "with_output_auc": a.with_output.value, "gain": a.gain.value, "gain_low": a.gain.low,
                            "gain_high": a.gain.high, "output_only_auc": a.output_only.value,
                            "output_only_low": a.output_only.low, "output_only_high": a.output_only.high,
                            "note": a.skipped or ("quantile bins" if a.binned else "")})
        table = Table.from_records(
            "attributes", "Attribute inference per protected column", records,
            columns=("attribute", "model_input", "classes", "rows", "baseline_auc", "with_output_auc", "gain",
                     "gain_low", "gain_high", "output_only_auc", "output_only_low", "output_only_high", "note"),
            caption="Out-of-fold AUC (macro one-vs-rest for more than two classes) of attackers knowing the other "
                    "features, the features and the model output, or the output alone; "
                    f"{level(self.confidence)} bootstrap intervals.")
        analysed = [a for a in m.results if a.analysed]
        metrics: dict[str, Any] = {"attributes_analysed": len(analysed), "rows": m.n_rows}
        if analysed:
            metrics["max_auc_gain"] = max(a.gain.value for a in analysed)
            metrics["max_output_only_auc"] = max(a.output_only.value for a in analysed)
        for a in analysed:
            metrics[f"{a.attribute}_auc_gain"] = a.gain.value
            metrics[f"{a.attribute}_output_only_auc"] = a.output_only.value
        notes = [f"Rows: {m.n_rows:,} of {m.n_test:,} test rows (seeded sample when more than {self.rows:,}); "
                 "outputs from the audit's cached test predictions (no extra model calls).",
                 f"Attackers: histogram gradient boosting ({self.attack_iterations} iterations, 8 leaves, "
                 "min leaf 20), "
                 f"{self.folds}-fold stratified cross-validation with the same folds for all three; "
                 f"{self.n_resamples} paired bootstrap resamples of the out-of-fold predictions.",
                 ("Output: the model's k-vector of class probabilities (" + str(m.output_columns) + " columns)."
                  if m.output_columns > 1 else
                  "Output: the model's score (probability of the positive class)." if m.task == "classification"
                  else "Output: the model's prediction."),
                 f"Classes: levels with at least {self.min_level_rows} rows (rarer pooled as '(other)'); numeric "
                 f"attributes with more than {self.max_levels} values in {self.numeric_bins} quantile bins; rows "
                 "with a missing attribute left out."]
        skipped = [a for a in m.results if not a.analysed]
        if skipped:
            notes.append("Not analysed: " + "; ".join(f"{a.attribute} ({a.skipped})" for a in skipped) + ".")
        figures = (Figure("attribute_auc", "Attribute inference by attacker", plot="security.attribute_figure",
                          data={"results": m.results},
                          caption="Out-of-fold AUC of gradient-boosting attackers on the test rows with "
                                  f"{level(self.confidence)} bootstrap intervals. The gap between the first two bars "
                                  "is the leakage attributable to the model."),) if analysed else ()
        return Evidence(metrics=metrics, tables=(table,), figures=figures, notes=tuple(notes))
