"""sensitivity.random_attack: random and hostile inputs, looking for software and math bugs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ...analysis.domain import FeatureDomain, feature_domains
from ...analysis.random_attack import (
    COMBINED,
    FAMILIES,
    VIOLATIONS,
    Outcome,
    RandomAttackResult,
    missing_allowed,
    random_attack,
)
from ...findings import Evidence, Figure, Finding, Rule, Severity, Table
from ..base import SENSITIVITY, Check, budget, setting, threshold

if TYPE_CHECKING:
    from ...context import AuditContext

_KIND_TEXT = {
    "crash": "crashes",
    "bad_shape": "returns an output of the wrong shape",
    "non_finite": "returns NaN or infinite outputs",
    "out_of_range": "returns probabilities outside [0, 1]",
    "bad_sum": "returns probabilities that do not sum to one",
}
_FAMILY_TEXT = {
    "in_range": "random in-range values",
    "extreme": "extreme values",
    "infinite": "infinity",
    "missing": "missing values",
    "unseen_category": "unseen categories",
    "empty_string": "empty strings",
    "wrong_type": "wrong types",
    "jitter": "tiny numeric jitter",
}
_REMEDIATION = {
    "crash": ("Validate inputs before they reach the model and answer bad records with a clear error, "
              "or make the pipeline handle them (impute missing values, "
              "OneHotEncoder(handle_unknown=\"ignore\"), clip numbers to a declared range).",
              "Add the failing values to the model's input tests."),
    "non_finite": ("Find the step that produces NaN or infinity (a log or division of zero or negative "
                   "numbers, an overflow) and guard it; never let a NaN score reach a decision.",),
    "out_of_range": ("Make the output a proper probability (e.g. a logistic or softmax link, or clip and "
                     "renormalise) and test it on extreme inputs.",),
    "bad_sum": ("Normalise the class probabilities so each row sums to one.",),
    "bad_shape": ("Return one output row per input row (and one probability column per class) for every "
                  "input; never drop or merge rows silently.",),
}
#: failure kinds that return garbage without an error: high on any input
SILENT_KINDS = ("bad_shape", "non_finite", "out_of_range", "bad_sum")
#: what a guard must reject, per violated domain constraint (wrong types: see ``rejects_invalid``)
GUARD_VIOLATIONS = ("missing", "unseen_level", "out_of_range")
#: families whose values no record holds (±infinity: a numeric fault, like a wrong type): a loud
#: rejection of them is the desired behaviour (info, ``rejects_invalid``), not a guard requirement
INVALID_FAMILIES = ("infinite",)
_VIOLATION_TEXT = {
    "missing": "missing values",
    "unseen_level": "unseen levels",
    "out_of_range": "values outside the observed range",
    "wrong_type": "wrong types",
}
_GUARD_ID = {"missing": "missing", "unseen_level": "unseen_level", "out_of_range": "out_of_range"}
_SUMMARY_COLUMNS = 8  # columns named in a summary sentence; the rest are in the table
_LEVELS_SHOWN = 12


@dataclass(frozen=True)
class RandomAttackMeasurement:
    result: RandomAttackResult
    features: tuple[str, ...]
    classification: bool
    score_scale: float  # jitter changes are compared with jitter_tolerance × this
    domains: Mapping[str, FeatureDomain] = field(default_factory=dict)  # the observed domain
    domain_source: str = "training data"
    n_classes: int = 0


@dataclass
class RandomAttackCheck(Check[RandomAttackMeasurement]):
    """Feeds the model large batches of random and hostile rows: random values within the observed
    ranges, extreme numbers, infinity, missing values, unseen categories, empty strings and wrong
    types, per column and all columns at once, and checks what comes back (for k classes, every
    row of the k probability columns must lie in [0, 1] and sum to one).

    Each input is classified against the training data's domain (the test data's when no
    training data is given): in-domain when its values lie within the observed [min, max], use
    seen levels, and are missing only in columns where training had missing values (everywhere
    with ``missing_valid``); out-of-domain otherwise (missing values training never had, unseen
    levels, values outside the range, ±infinity, wrong types).

    Severity: ``high`` for silent garbage on any input (NaN or infinite outputs, probabilities
    outside [0, 1] or rows not summing to one, outputs of the wrong shape, all returned without
    an error) and for an exception on in-domain input (one finding per column and kind);
    ``medium`` for a clear exception on out-of-domain input, worded as a deployment-guard
    requirement with the input constraints (min/max, allowed levels, missing allowed) that would
    have stopped it (one finding per violated constraint); an exception on ±infinity is not one
    (issue 10: infinity is no value a record holds, a numeric fault like a wrong type, and sklearn
    estimators refuse it by design), it is ``info`` with the wrong types; nor is an exception on
    missing values in columns where the training data has none: ``low`` (issue 10: the model fails
    safe on a record nothing says production sends; ``missing_valid`` declares that it does, and
    then such an exception is in-domain and high); ``medium`` when a relative jitter of
    ``jitter`` moves an output both ways by more than ``jitter_tolerance`` (probability points, or
    standard deviations of the test predictions for regression); ``low`` when the model silently
    scores a wrong type; ``info`` when it rejects a wrong type with an exception (what a typed
    schema demands of every serving layer). Every rule is "at least one reproducible failing
    input": a count of observed failures, not an estimate, so no interval applies.
    """

    id: ClassVar[str] = "sensitivity.random_attack"
    family = SENSITIVITY
    order = 3
    title: ClassVar[str] = "Random and hostile inputs"

    n_random: int = budget(200, "random in-range rows (every column drawn at once); also the rows the jitter moves")
    rows_per_column: int = budget(20, "rows per column per perturbation family")
    jitter: float = setting(1e-6, "relative size of the numeric jitter")
    jitter_tolerance: float = threshold(0.05, "largest acceptable output change under the jitter (probability "
                                              "points; regression: standard deviations of the test predictions)")
    prob_tolerance: float = threshold(1e-6, "slack for probabilities outside [0, 1] or not summing to one")
    missing_valid: bool = setting(False, "missing values are in-domain in every column (production sends them)")
    max_table_rows: int = budget(40, "rows shown in the failures and guard tables")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not ctx.features:
            return "the model has no input columns"
        return None

    def measure(self, ctx: AuditContext) -> RandomAttackMeasurement:
        X = ctx.X("test")
        observed = ctx.X("train") if ctx.has_train else X
        source = (f"training data ({len(observed)} rows)" if ctx.has_train
                  else f"test data ({len(observed)} rows; no training data was given)")
        domains = feature_domains(observed, categorical=ctx.categorical, features=ctx.features)
        adapter = ctx.model.adapter
        if ctx.is_classification:
            predict = adapter.predict_proba
            scale = 1.0
        else:
            predict = adapter.predict
            score = ctx.predictions("test").score
            finite = score[np.isfinite(score)]
            scale = float(finite.std()) if len(finite) > 1 and finite.std() > 0 else 1.0
        result = random_attack(
            X, domains, predict, proba=ctx.is_classification,
            n_outputs=ctx.n_classes if ctx.is_classification else None,
            rng=ctx.rng(self.id), n_random=self.n_random, rows_per_column=self.rows_per_column,
            jitter=self.jitter, tolerance=self.prob_tolerance, missing_in_domain=self.missing_valid)
        return RandomAttackMeasurement(result, tuple(ctx.features), ctx.is_classification, scale,
                                       domains=domains, domain_source=source,
                                       n_classes=ctx.n_classes if ctx.is_classification else 0)

    # ---- judgement -------------------------------------------------------------------------------
    def judge(self, m: RandomAttackMeasurement) -> list[Finding]:
        order = {c: i for i, c in enumerate(m.features)}
        return (self._high_findings(m, order) + self._guard_findings(m, order) + self._type_findings(m, order)
                + self._jitter_findings(m))

    def _high_findings(self, m: RandomAttackMeasurement, order: dict[str, int]) -> list[Finding]:
        """Silent garbage on any input, and exceptions on in-domain input: high per (kind, column)."""
        high = [o for o in m.result.outcomes
                if any(k in SILENT_KINDS for k in o.kinds) or (o.crash and o.in_domain)]
        by_key: dict[tuple[str, str], list[Outcome]] = {}
        for o in high:
            for kind in o.kinds:
                by_key.setdefault((kind, o.column), []).append(o)
        per_column_kinds = {(o.family, k) for o in high if o.column != COMBINED for k in o.kinds}
        findings = []
        for (kind, column), outs in sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][1] == COMBINED,
                                                                          order.get(kv[0][1], 0))):
            if column == COMBINED:
                outs = [o for o in outs if (o.family, kind) not in per_column_kinds]
                if not outs:
                    continue  # explained by a single column
            findings.append(self._high_finding(kind, column, outs, m))
        return findings

    def _guard_findings(self, m: RandomAttackMeasurement, order: dict[str, int]) -> list[Finding]:
        """Clear exceptions on out-of-domain input: medium, one guard requirement per violated constraint."""
        refused = [o for o in m.result.outcomes if o.crash and not o.in_domain and o.family not in INVALID_FAMILIES]
        explained = {o.family for o in refused if o.column != COMBINED}
        findings = []
        for violation in GUARD_VIOLATIONS:
            outs = [o for o in refused if violation in o.violations
                    and (o.column != COMBINED or o.family not in explained)]
            if outs:
                findings.append(self._guard_finding(violation, outs, m, order))
        return findings

    def _type_findings(self, m: RandomAttackMeasurement, order: dict[str, int]) -> list[Finding]:
        """Wrong types rejected with an exception (info) or silently scored (low)."""
        findings = []
        wrong = [o for o in m.result.outcomes if o.crash and not o.in_domain and o.violations == ("wrong_type",)]
        infinite = [o for o in m.result.outcomes if o.crash and not o.in_domain and o.family in INVALID_FAMILIES]
        rejected = wrong + infinite
        if rejected:
            cols = _columns(rejected, order)
            n_rows = sum(o.rows for o in rejected)
            example = (wrong or infinite)[0].crash.rstrip(".")
            types = "wrong types (a string in a numeric column, a number in a text column)"
            if not infinite:
                what, given = "wrong-typed input", types
                metric, rule_what, sev_what = "rows_rejected_wrong_type", "wrong-typed input", "a wrong type"
            else:
                inf_cols = _columns(infinite, order)
                what = "infinity" + (" and wrong types" if wrong else "")
                given = f"±infinity in {_join(inf_cols) or 'every numeric column at once'}" + (
                    f" and {types}" if wrong else "")
                metric, rule_what = "rows_rejected_invalid", "±infinity" + (" or wrong-typed input" if wrong else "")
                sev_what = "an invalid value"
            findings.append(Finding(
                id=f"{self.id}/rejects_invalid", check=self.id, severity=Severity.INFO,
                title=f"The model rejects {what} with an error ({', '.join(cols) or 'all columns at once'})",
                summary=(f"Given {given}, the model raised an exception instead of returning a score, e.g. "
                         f"{example}. Rejecting garbage loudly is the desired behaviour; the serving layer's typed "
                         "schema should turn it into a clear error. "
                         + ("Infinity is not a value any record holds (a numeric fault, like a wrong type), so "
                            "refusing it is not a guard requirement. " if infinite else "")
                         + f"Severity info: a loud rejection of {sev_what} (a silent NaN would be high, a silent "
                         "score low)."),
                features=tuple(cols),
                metrics={"columns": len(cols), "rows_rejected": n_rows},
                evidence=("failures",),
                rule=Rule(metric, n_rows, ">", 0,
                          text=f"info: the model raised an exception on {rule_what}")))
        accepted = [o for o in m.result.outcomes if o.family == "wrong_type" and o.column != COMBINED and not o.kinds]
        if accepted:
            cols = _columns(accepted, order)
            n_rows = sum(o.rows for o in accepted)
            findings.append(Finding(
                id=f"{self.id}/accepts_invalid", check=self.id, severity=Severity.LOW,
                title=f"The model silently scores wrong-typed input ({', '.join(cols)})",
                summary=(f"Given wrong types in {_join(cols)}, the model returned a well-formed score without "
                         "complaint, so malformed records can pass unnoticed into decisions. Severity low: "
                         "at least one wrong-typed row was scored without an error."),
                features=tuple(cols),
                metrics={"columns": len(cols), "rows_accepted": n_rows},
                remediation=("Validate types at the model's boundary (a schema check before scoring) "
                             "and reject records that do not conform.",),
                evidence=("failures",),
                rule=Rule("rows_wrong_type_scored", n_rows, ">", 0,
                          text="low: at least one wrong-typed row was scored without an error")))
        return findings

    def _jitter_findings(self, m: RandomAttackMeasurement) -> list[Finding]:
        """A tiny jitter moving the score: medium per column."""
        r = m.result
        tol = self.jitter_tolerance * m.score_scale
        unstable = [j for j in r.jitter if j.n_above(tol)]
        single = [j for j in unstable if j.column != COMBINED]
        what = "class probability" if m.n_classes > 2 else "score"
        findings = []
        for j in unstable:
            if j.column == COMBINED and single:
                continue
            name = j.column or "combined"
            unit = "" if m.classification else " (prediction units)"
            findings.append(Finding(
                id=f"{self.id}/unstable/{name}", check=self.id, severity=Severity.MEDIUM,
                title=(f"Score unstable under a {r.jitter_relative:g} relative change of "
                       f"{j.column or 'the numeric columns'}"),
                summary=(f"Moving {j.column or 'every numeric column'} by a relative {r.jitter_relative:g} "
                         f"changed the {what} by up to {j.max_change:.4g}{unit} in both directions, on "
                         f"{j.n_above(tol)} of {len(j.changes)} random in-range rows. Severity medium: the "
                         f"change exceeds the tolerance {tol:.4g} on at least one row (a reproducible "
                         "measurement, not an estimate). Such a model is numerically ill-conditioned."),
                features=(j.column,) if j.column else (),
                metrics={"max_change": j.max_change, "rows_unstable": j.n_above(tol),
                         "rows_tried": len(j.changes), "tolerance": tol},
                remediation=("Look for huge coefficients, unscaled features or divisions by small numbers; "
                             "regularise or rescale.",),
                evidence=("jitter",),
                rule=Rule("max_change", j.max_change, ">", tol,
                          text=f"medium: a {r.jitter_relative:g} relative jitter moves the {what} both ways "
                               f"by more than {tol:.4g} on at least one row")))
        return findings

    def _high_finding(self, kind: str, column: str, outs: list[Outcome], m: RandomAttackMeasurement) -> Finding:
        fams = sorted({o.family for o in outs}, key=FAMILIES.index)
        values = list(dict.fromkeys(o.value for o in outs))

        def n_bad(o: Outcome) -> int:
            return o.rows if kind in ("crash", "bad_shape") else getattr(o, kind)

        rows = sum(n_bad(o) for o in outs)
        tried = sum(o.rows for o in m.result.outcomes if o.column == column and o.family in fams)
        where = f"in {column}" if column else "in every column at once (no single column reproduces it)"
        rows_in = sum(n_bad(o) for o in outs if o.in_domain)
        broken = sorted({v for o in outs for v in o.violations}, key=VIOLATIONS.index)
        in_domain = rows_in > 0
        domain = "in-domain" if in_domain else "out-of-domain"
        if in_domain and not broken:
            domain_text = ("These inputs are in-domain (within the observed range, seen levels, missing only "
                           "where the observed data had missing values): ")
        elif in_domain:
            domain_text = (f"{rows_in} of these rows are in-domain (within the observed range, seen levels, "
                           "missing only where the observed data had missing values), the others out-of-domain "
                           f"({_join(_VIOLATION_TEXT[v] for v in broken)}): ")
        else:
            domain_text = (f"These inputs are out-of-domain ({_join(_VIOLATION_TEXT[v] for v in broken)}): "
                           "an input guard would stop such records, but ")
        if kind == "crash":
            messages = list(dict.fromkeys(o.crash.rstrip(".") for o in outs))
            detail = f"The call raised {'; '.join(messages[:2])}" + ("; …" if len(messages) > 2 else "") + "."
            why = ("an exception on in-domain input is high: a production record like this stops scoring.")
        elif kind == "bad_shape":
            detail = f"The call {next(o.bad_output for o in outs if o.bad_output)}."
            why = "an output of the wrong shape, returned without an error, is high on any input."
        else:
            detail = f"Example output: {next((o.example_output for o in outs if o.example_output), 'n/a')}."
            why = ("a meaningless output returned without an error is high on any input: nothing downstream "
                   "flags it.")
        shown = ", ".join(values[:6]) + (", …" if len(values) > 6 else "")
        metric = "rows_crashed_in_domain" if kind == "crash" else f"rows_{kind}"
        return Finding(
            id=f"{self.id}/{kind}/{column or 'combined'}", check=self.id, severity=Severity.HIGH,
            title=f"Model {_KIND_TEXT[kind]} on {domain} input {where}",
            summary=(f"With {_join(_FAMILY_TEXT[f] for f in fams)} {where} (values {shown}), the model "
                     f"{_KIND_TEXT[kind]} on {rows} of {tried} rows tried. {detail} {domain_text}{why} "
                     "Rule: high when at least one such row is seen (a reproducible failure, not an estimate)."),
            features=(column,) if column else (),
            metrics={"rows_affected": rows, "rows_affected_in_domain": rows_in, "rows_tried": tried,
                     "values": len(values), "in_domain": in_domain},
            remediation=_REMEDIATION[kind], evidence=("failures",),
            rule=Rule(metric, rows, ">", 0,
                      text=("high: an exception on in-domain input" if kind == "crash"
                            else f"high: {_KIND_TEXT[kind].replace('returns ', '')} returned without an error, "
                                 "on any input")))

    def _guard_finding(self, violation: str, outs: list[Outcome], m: RandomAttackMeasurement,
                       order: dict[str, int]) -> Finding:
        cols = _columns(outs, order)
        if not cols:  # only the all-columns batch failed: every column it perturbed needs the constraint
            fams = {o.family for o in outs}
            cols = _columns([o for o in m.result.outcomes if o.family in fams and violation in o.violations],
                            order)
        n_rows = sum(o.rows for o in outs)
        messages = list(dict.fromkeys(o.crash.rstrip(".") for o in outs))
        refused_values: dict[str, list[str]] = {}
        for o in outs:
            if o.column != COMBINED:
                refused_values.setdefault(o.column, []).append(o.value)
        constraints = [(c, _constraint_text(violation, m.domains[c], refused_values.get(c, ())))
                       for c in cols if c in m.domains]
        shown = "; ".join(f"{c}: {t}" for c, t in constraints[:_SUMMARY_COLUMNS])
        more = f"; and {len(constraints) - _SUMMARY_COLUMNS} more columns (table guard)" \
            if len(constraints) > _SUMMARY_COLUMNS else ""
        named = _join(cols[:_SUMMARY_COLUMNS]) + (f" and {len(cols) - _SUMMARY_COLUMNS} more"
                                                  if len(cols) > _SUMMARY_COLUMNS else "")
        what = _VIOLATION_TEXT[violation]
        src = "training" if m.domain_source.startswith("training") else "observed"
        reject = {"missing": "a missing value in", "unseen_level": f"a level not seen in the {src} data in",
                  "out_of_range": f"a value outside the {src} range in"}[violation]
        metrics: dict[str, Any] = {"columns": len(cols), "rows_refused": n_rows}
        for c in cols:
            d = m.domains.get(c)
            if d is None:
                continue
            if violation == "missing":
                metrics[f"missing_allowed/{c}"] = False
            elif violation == "unseen_level":
                metrics[f"levels/{c}"] = _levels_text(d, limit=None)
            else:
                metrics[f"min/{c}"] = d.low
                metrics[f"max/{c}"] = d.high
        # missing values the training data never had: the model fails safe on a record nothing says
        # production sends (issue 10: every sklearn estimator but the tree ones refuses NaN by design)
        sev = Severity.LOW if violation == "missing" else Severity.MEDIUM
        if sev is Severity.LOW:
            rule_words = ("low because the exceptions came on missing values only, in columns where the "
                          f"{src} data has none, so nothing says production sends them; declare missing_valid = "
                          "true if it does, and an exception on them becomes high (finite values outside the "
                          "range and unseen levels refused are medium)")
        else:
            rule_words = ("medium because these exceptions came on out-of-domain input only (on in-domain input "
                          "they would be high; a NaN or out-of-range output would be high on any input)")
        return Finding(
            id=f"{self.id}/guard/{_GUARD_ID[violation]}", check=self.id, severity=sev,
            title=(f"The model refuses {what} with an error: deploy an input guard "
                   f"({len(cols)} column{'s' if len(cols) != 1 else ''})"),
            summary=(f"The model refuses {what} in {named} with an error (out-of-domain: "
                     f"{_domain_reason(violation, m)}), e.g. {messages[0]}; deploy an input guard that rejects "
                     f"records with {reject} these columns (or repairs them upstream) and answers them with a "
                     "clear error. It fails loudly, not silently, so this is a deployment requirement rather "
                     f"than a model defect. Constraints that would have prevented it: {shown}{more}. Rule: "
                     f"{rule_words}."),
            features=tuple(cols), metrics=metrics,
            remediation=(f"Deploy an input guard that rejects {reject} {named}, with a clear error message.",
                         "Or make the pipeline accept such records deliberately (imputation, "
                         "OneHotEncoder(handle_unknown=\"ignore\"), clipping to the declared range) and test it."),
            evidence=("guard", "failures"),
            rule=Rule("rows_refused_out_of_domain", n_rows, ">", 0,
                      text=(f"{sev.value}: the model raised an exception on {what} (out-of-domain input) and on no "
                            f"in-domain input of this kind; guard: {shown}{more}"
                            + ("; missing values the training data never had, refused loudly, are low"
                               if sev is Severity.LOW else ""))))

    # ---- evidence --------------------------------------------------------------------------------
    def evidence(self, m: RandomAttackMeasurement) -> Evidence:
        fam_rows = _family_records(m.result)
        figure = Figure("outcomes", "Outcomes per input family", plot="random_attack.outcomes_figure",
                        data={"families": fam_rows})
        return Evidence(metrics=self._metrics(m), tables=self._tables(m, fam_rows), figures=(figure,),
                        notes=_notes(m))

    def _metrics(self, m: RandomAttackMeasurement) -> dict[str, Any]:
        r = m.result
        tol = self.jitter_tolerance * m.score_scale
        metrics: dict[str, Any] = {
            "rows_tried": r.total_rows, "calls": r.calls,
            "rows_in_domain": sum(o.rows for o in r.outcomes if o.in_domain),
            "rows_out_of_domain": sum(o.rows for o in r.outcomes if not o.in_domain),
            "crashes": sum(1 for o in r.outcomes if o.crash),
            "rows_crashed": sum(o.rows for o in r.outcomes if o.crash),
            "rows_crashed_in_domain": sum(o.rows for o in r.outcomes if o.crash and o.in_domain),
            "rows_refused_out_of_domain": sum(o.rows for o in r.outcomes if o.crash and not o.in_domain),
            "rows_non_finite": sum(o.non_finite for o in r.outcomes),
            "rows_out_of_range": sum(o.out_of_range for o in r.outcomes),
            "rows_bad_sum": sum(o.bad_sum for o in r.outcomes),
            "rows_bad_shape": sum(o.rows for o in r.outcomes if o.bad_output),
            "rows_unstable": sum(j.n_above(tol) for j in r.jitter if j.column != COMBINED),
            "max_jitter_change": max((j.max_change for j in r.jitter if np.isfinite(j.max_change)), default=None),
        }
        for family, n in r.rows_tried:
            metrics[f"rows_{family}"] = n
        return metrics

    def _tables(self, m: RandomAttackMeasurement, fam_rows: list[dict[str, Any]]) -> tuple[Table, ...]:
        r = m.result
        tol = self.jitter_tolerance * m.score_scale
        failures = sorted((o for o in r.outcomes if o.kinds or o.family == "wrong_type"),
                          key=lambda o: (not o.in_domain, FAMILIES.index(o.family),
                                         o.column == COMBINED, m.features.index(o.column)
                                         if o.column in m.features else 0))
        records = [{"family": o.family, "column": o.column or "(all columns)", "value": o.value,
                    "domain": "in" if o.in_domain else "out: " + ", ".join(o.violations),
                    "outcome": _outcome_text(o), "rows_affected": o.bad_rows if o.kinds else o.rows}
                   for o in failures]
        tables = [Table.from_records(
            "failures", "Inputs that broke the model (or were rejected)", records,
            columns=("family", "column", "value", "domain", "outcome", "rows_affected"),
            caption="One row per family, column and value; domain: in, or out with the violated constraint "
                    f"(observed domain: {m.domain_source}); wrong types that were scored are listed as "
                    "'scored'.", max_rows=self.max_table_rows)]
        guard = _guard_records(m)
        if guard:
            tables.append(Table.from_records(
                "guard", "Input constraints a deployment guard needs", guard,
                columns=("column", "type", "min", "max", "levels", "missing_allowed", "refused", "example_error"),
                caption=(f"Columns on which the model raised an exception on out-of-domain input; constraints "
                         f"from the {m.domain_source}. A guard enforcing them would have answered every such "
                         "record with a clear error before it reached the model."),
                max_rows=self.max_table_rows))
        tables.append(Table.from_records(
            "families", "Outcomes per input family", fam_rows,
            columns=("family", "rows", "in_domain", "crashed", "bad_shape", "non_finite", "out_of_range",
                     "bad_sum", "ok")))
        if r.jitter:
            tables.append(Table.from_records(
                "jitter", f"Output change under a {r.jitter_relative:g} relative jitter",
                [{"column": j.column or "(all numeric)", "rows": len(j.changes), "max_change": j.max_change,
                  "rows_unstable": j.n_above(tol)} for j in r.jitter],
                columns=("column", "rows", "max_change", "rows_unstable"),
                caption=("Change = the smaller of the moves up and down"
                         + (", largest over the k class probabilities" if m.n_classes > 2 else "")
                         + f"; unstable above {tol:.4g}.")))
        return tuple(tables)


def _family_records(r: RandomAttackResult) -> list[dict[str, Any]]:
    """One record per input family: rows tried, in-domain, and what became of them."""
    fam_rows = []
    for family, n in r.rows_tried:
        outs = [o for o in r.outcomes if o.family == family]
        fam_rows.append({
            "family": family, "rows": n,
            "in_domain": sum(o.rows for o in outs if o.in_domain),
            "crashed": sum(o.rows for o in outs if o.crash),
            "bad_shape": sum(o.rows for o in outs if o.bad_output),
            "non_finite": sum(o.non_finite for o in outs), "out_of_range": sum(o.out_of_range for o in outs),
            "bad_sum": sum(o.bad_sum for o in outs),
            "ok": sum(o.rows - o.bad_rows for o in outs)})
    return fam_rows


def _notes(m: RandomAttackMeasurement) -> tuple[str, ...]:
    r = m.result
    return (
        f"Budget: {r.n_random} random in-range rows (every feature drawn independently and uniformly "
        f"within its observed range or levels), {r.rows_per_column} rows per column per "
        f"perturbation family plus one batch of {r.rows_per_column} rows with every column perturbed; "
        f"{r.total_rows} rows in {r.calls} batched model calls (a call that failed was split by column "
        "and value to attribute the failure, never row by row).",
        f"Observed domain from the {m.domain_source}. In-domain: numbers within the observed [min, max], "
        "seen levels, missing values "
        + ("in any column (missing_valid)" if r.missing_in_domain
           else "only in columns where the observed data had them")
        + ". Out-of-domain: missing values elsewhere, unseen levels and empty strings never observed, "
          "numbers outside the observed range, ±infinity, wrong types. Perturbed rows are built on real rows "
        + ("that are themselves in-domain." if r.carriers_in_domain
           else "(no real row was fully in-domain, so the carriers may add violations of their own)."),
        "Severity: silent garbage (NaN or infinite outputs"
        + (", probabilities outside [0, 1] or not summing to one"
           + (f" over the {m.n_classes} class columns" if m.n_classes > 2 else "")
           + f" (tolerance {r.tolerance:g}), a wrong number of probability columns"
           if m.classification else "")
        + ", or rows missing from the output) on any input is high; an exception on in-domain input is "
          "high; an exception on out-of-domain input is medium, as a deployment-guard requirement "
          "(table guard), low when only missing values never seen in training are refused; a wrong type or "
          "±infinity rejected with an error is info, a wrong type scored silently low.",
        f"Jitter: {r.jitter_relative:g} relative (span-relative at zero), both directions"
        + ("; the change is the largest over the k class probabilities." if m.n_classes > 2 else "."),
    )


def _levels_text(d: FeatureDomain, limit: int | None = _LEVELS_SHOWN) -> str:
    levels = [str(v) for v in d.levels]
    if limit is not None and len(levels) > limit:
        return ", ".join(levels[:limit]) + f", … ({len(levels)} levels)"
    return ", ".join(levels)


def _constraint_text(violation: str, d: FeatureDomain, refused: Any = ()) -> str:
    """The guard rule for one column, with the values the model refused (when known)."""
    values = list(dict.fromkeys(refused))
    seen = f" (refused {', '.join(values[:4])}{', …' if len(values) > 4 else ''})" if values else ""
    if violation == "missing":
        return "no missing value"
    if violation == "unseen_level":
        return f"one of the {len(d.levels)} seen levels: {_levels_text(d)}{seen}"
    return f"within [{d.low:.6g}, {d.high:.6g}]{seen}"


def _domain_reason(violation: str, m: RandomAttackMeasurement) -> str:
    src = m.domain_source.split(" (")[0]
    return {"missing": f"the {src} has no missing value there",
            "unseen_level": f"levels the {src} never had",
            "out_of_range": f"outside the range seen in the {src}"}[violation]


def _guard_records(m: RandomAttackMeasurement) -> list[dict[str, Any]]:
    """One row per column the model refused out-of-domain input on: its full constraint."""
    refused: dict[str, list[Outcome]] = {}
    for o in m.result.outcomes:
        if (o.crash and not o.in_domain and o.column != COMBINED and o.family not in INVALID_FAMILIES
                and set(o.violations) & set(GUARD_VIOLATIONS)):
            refused.setdefault(o.column, []).append(o)
    records = []
    for c in m.features:
        if c not in refused or c not in m.domains:
            continue
        d = m.domains[c]
        broken = sorted({v for o in refused[c] for v in o.violations if v in GUARD_VIOLATIONS},
                        key=VIOLATIONS.index)
        records.append({
            "column": c, "type": "level" if d.categorical else ("integer" if d.integer else "number"),
            "min": None if d.categorical or not math.isfinite(d.low) else d.low,
            "max": None if d.categorical or not math.isfinite(d.high) else d.high,
            "levels": _levels_text(d) if d.categorical else "",
            "missing_allowed": "yes" if missing_allowed(d, m.result.missing_in_domain) else "no",
            "refused": ", ".join(_VIOLATION_TEXT[v] for v in broken),
            "example_error": refused[c][0].crash})
    return records


def _outcome_text(o: Outcome) -> str:
    if o.crash:
        return f"crash: {o.crash}"
    if o.bad_output:
        return f"bad shape: {o.bad_output}"
    parts = [f"{n} {k.replace('_', '-')}" for k, n in (("non_finite", o.non_finite), ("out_of_range", o.out_of_range),
                                                        ("bad_sum", o.bad_sum)) if n]
    if parts:
        return ", ".join(parts) + (f" (e.g. {o.example_output})" if o.example_output else "")
    return "scored"


def _columns(outs: list[Outcome], order: dict[str, int]) -> list[str]:
    return sorted({o.column for o in outs if o.column != COMBINED}, key=lambda c: order.get(c, 0))


def _join(items: Any) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]

