"""sensitivity.random_attack: random and hostile inputs, looking for software and math bugs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ...analysis.domain import feature_domains
from ...analysis.random_attack import COMBINED, FAMILIES, Outcome, RandomAttackResult, random_attack
from ...findings import Evidence, Figure, Finding, Severity, Table
from ..base import Check

if TYPE_CHECKING:
    from ...context import AuditContext

_KIND_TEXT = {
    "crash": "crashes",
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
}


@dataclass(frozen=True)
class RandomAttackMeasurement:
    result: RandomAttackResult
    features: tuple[str, ...]
    classification: bool
    score_scale: float  # jitter changes are compared with jitter_tolerance × this


@dataclass
class RandomAttackCheck(Check):
    """Feeds the model large batches of random and hostile rows: random values within the observed
    ranges, extreme numbers, infinity, missing values, unseen categories, empty strings and wrong
    types, per column and all columns at once, and checks what comes back.

    Schema-valid inputs are numbers (any finite size), missing values (``missing_valid``), unseen
    categories and empty strings in categorical columns. Schema-invalid inputs are wrong types
    (a string in a numeric column, a number in a text column) and ±infinity, which no real
    record should carry.

    Severity: ``high`` when schema-valid input makes the model crash or return NaN/infinite
    scores, probabilities outside [0, 1] or rows not summing to one (one finding per column and
    kind); ``medium`` when a relative jitter of ``jitter`` moves the score both ways by more than
    ``jitter_tolerance`` (probability points, or standard deviations of the test predictions for
    regression); ``low`` when the model silently returns a score for a wrong type, or a bad output
    for infinity; ``info`` when it cleanly rejects schema-invalid input with an exception.
    """

    id = "sensitivity.random_attack"
    title = "Random and hostile inputs"

    n_random: int = 200  # random in-range rows (all columns drawn at once); also the jitter rows
    rows_per_column: int = 20  # rows per column per perturbation family
    jitter: float = 1e-6  # relative size of the numeric jitter
    jitter_tolerance: float = 0.05  # largest acceptable score change under the jitter
    prob_tolerance: float = 1e-6  # slack for probabilities outside [0, 1] or not summing to one
    missing_valid: bool = True  # a missing value is schema-valid input (a crash on it is high)
    max_table_rows: int = 40

    def skip_reason(self, ctx: "AuditContext") -> str | None:
        if not ctx.features:
            return "the model has no input columns"
        return None

    def measure(self, ctx: "AuditContext") -> RandomAttackMeasurement:
        X = ctx.X("test")
        observed = X if not ctx.has_train else pd.concat([ctx.X("train"), X], ignore_index=True)
        domains = feature_domains(observed, categorical=ctx.categorical, features=ctx.features)
        adapter = ctx.model.adapter
        if ctx.is_classification:
            predict = adapter.predict_proba
            score_column = ctx.classes.index(ctx.positive_class) if ctx.positive_class in ctx.classes else -1
            scale = 1.0
        else:
            predict = adapter.predict
            score_column = 0
            score = ctx.predictions("test").score
            finite = score[np.isfinite(score)]
            scale = float(finite.std()) if len(finite) > 1 and finite.std() > 0 else 1.0
        result = random_attack(
            X, domains, predict, proba=ctx.is_classification,
            score_column=score_column if score_column >= 0 else len(ctx.classes) - 1,
            rng=ctx.rng(self.id), n_random=self.n_random, rows_per_column=self.rows_per_column,
            jitter=self.jitter, tolerance=self.prob_tolerance, missing_valid=self.missing_valid)
        return RandomAttackMeasurement(result, tuple(ctx.features), ctx.is_classification, scale)

    # ---- judgement -------------------------------------------------------------------------------
    def judge(self, m: RandomAttackMeasurement) -> list[Finding]:
        r = m.result
        order = {c: i for i, c in enumerate(m.features)}
        findings: list[Finding] = []

        # schema-valid input: one high finding per (kind, column)
        valid = [o for o in r.outcomes if o.schema_valid and o.kinds]
        by_key: dict[tuple[str, str], list[Outcome]] = {}
        for o in valid:
            for kind in o.kinds:
                by_key.setdefault((kind, o.column), []).append(o)
        per_column_kinds = {(o.family, k) for o in valid if o.column != COMBINED for k in o.kinds}
        for (kind, column), outs in sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][1] == COMBINED,
                                                                          order.get(kv[0][1], 0))):
            if column == COMBINED:
                outs = [o for o in outs if (o.family, kind) not in per_column_kinds]
                if not outs:
                    continue  # explained by a single column
            findings.append(self._valid_finding(kind, column, outs, m))

        # schema-invalid input rejected with an exception: one info finding
        invalid = [o for o in r.outcomes if not o.schema_valid]
        rejected = [o for o in invalid if o.crash]
        if rejected:
            cols = _columns(rejected, order)
            fams = sorted({o.family for o in rejected}, key=FAMILIES.index)
            findings.append(Finding(
                id=f"{self.id}/rejects_invalid", check=self.id, severity=Severity.INFO,
                title=("The model rejects schema-invalid input with an error "
                       f"({', '.join(cols) or 'all columns at once'})"),
                summary=(f"Given {_join(_FAMILY_TEXT[f] for f in fams)}, the model raised an exception instead of "
                         f"returning a score, e.g. {rejected[0].crash.rstrip('.')}. Rejecting garbage loudly is the "
                         "desired behaviour; make sure the serving layer turns it into a clear error."),
                features=tuple(cols),
                metrics={"columns": len(cols), "rows_rejected": sum(o.rows for o in rejected)},
                evidence=("failures",)))

        # schema-invalid input silently scored: one low finding
        accepted = [o for o in invalid if not o.crash and o.column != COMBINED
                    and (o.family == "wrong_type" or o.kinds)]
        if accepted:
            cols = _columns(accepted, order)
            fams = sorted({o.family for o in accepted}, key=FAMILIES.index)
            bad = sum(o.bad_rows for o in accepted)
            findings.append(Finding(
                id=f"{self.id}/accepts_invalid", check=self.id, severity=Severity.LOW,
                title=f"The model silently scores schema-invalid input ({', '.join(cols)})",
                summary=(f"Given {_join(_FAMILY_TEXT[f] for f in fams)} in {_join(cols)}, the model returned a "
                         "score without complaint" + (f" ({bad} of them NaN or out of range)" if bad else "")
                         + ", so malformed records can pass unnoticed into decisions."),
                features=tuple(cols),
                metrics={"columns": len(cols), "rows_accepted": sum(o.rows for o in accepted),
                         "rows_bad_output": bad},
                remediation=("Validate types at the model's boundary (a schema check before scoring) "
                             "and reject records that do not conform.",),
                evidence=("failures",)))

        # tiny jitter moving the score: medium per column
        tol = self.jitter_tolerance * m.score_scale
        unstable = [j for j in r.jitter if j.n_above(tol)]
        single = [j for j in unstable if j.column != COMBINED]
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
                         f"changed the score by up to {j.max_change:.4g}{unit} in both directions, on "
                         f"{j.n_above(tol)} of {len(j.changes)} random in-range rows (tolerance {tol:.4g}). "
                         "Such a model is numerically ill-conditioned."),
                features=(j.column,) if j.column else (),
                metrics={"max_change": j.max_change, "rows_unstable": j.n_above(tol),
                         "rows_tried": len(j.changes), "tolerance": tol},
                remediation=("Look for huge coefficients, unscaled features or divisions by small numbers; "
                             "regularise or rescale.",),
                evidence=("jitter",)))
        return findings

    def _valid_finding(self, kind: str, column: str, outs: list[Outcome], m: RandomAttackMeasurement) -> Finding:
        fams = sorted({o.family for o in outs}, key=FAMILIES.index)
        values = list(dict.fromkeys(o.value for o in outs))
        rows = sum(o.rows if kind == "crash" else getattr(o, kind) for o in outs)
        tried = sum(o.rows for o in m.result.outcomes if o.column == column and o.family in fams)
        where = f"in {column}" if column else "in every column at once (no single column reproduces it)"
        if kind == "crash":
            messages = list(dict.fromkeys(o.crash.rstrip(".") for o in outs))
            detail = f"The call raised {'; '.join(messages[:2])}" + ("; …" if len(messages) > 2 else "") + "."
        else:
            detail = f"Example output: {next((o.example_output for o in outs if o.example_output), 'n/a')}."
        shown = ", ".join(values[:6]) + (", …" if len(values) > 6 else "")
        return Finding(
            id=f"{self.id}/{kind}/{column or 'combined'}", check=self.id, severity=Severity.HIGH,
            title=f"Model {_KIND_TEXT[kind]} on schema-valid input {where}",
            summary=(f"With {_join(_FAMILY_TEXT[f] for f in fams)} {where} (values {shown}), the model "
                     f"{_KIND_TEXT[kind]} on {rows} of {tried} rows tried. {detail} A production record like "
                     "this would " + ("stop scoring." if kind == "crash" else "get a meaningless score silently.")),
            features=(column,) if column else (),
            metrics={"rows_affected": rows, "rows_tried": tried, "values": len(values)},
            remediation=_REMEDIATION[kind], evidence=("failures",))

    # ---- evidence --------------------------------------------------------------------------------
    def evidence(self, m: RandomAttackMeasurement) -> Evidence:
        r = m.result
        crash_rows = sum(o.rows for o in r.outcomes if o.crash)
        tol = self.jitter_tolerance * m.score_scale
        metrics: dict[str, Any] = {
            "rows_tried": r.total_rows, "calls": r.calls,
            "crashes": sum(1 for o in r.outcomes if o.crash),
            "rows_crashed": crash_rows,
            "rows_crashed_valid": sum(o.rows for o in r.outcomes if o.crash and o.schema_valid),
            "rows_non_finite": sum(o.non_finite for o in r.outcomes),
            "rows_out_of_range": sum(o.out_of_range for o in r.outcomes),
            "rows_bad_sum": sum(o.bad_sum for o in r.outcomes),
            "rows_unstable": sum(j.n_above(tol) for j in r.jitter if j.column != COMBINED),
            "max_jitter_change": max((j.max_change for j in r.jitter if np.isfinite(j.max_change)), default=None),
        }
        for family, n in r.rows_tried:
            metrics[f"rows_{family}"] = n

        failures = sorted((o for o in r.outcomes if o.kinds or (not o.schema_valid and o.family == "wrong_type")),
                          key=lambda o: (not o.schema_valid, FAMILIES.index(o.family),
                                         o.column == COMBINED, m.features.index(o.column)
                                         if o.column in m.features else 0))
        records = [{"family": o.family, "column": o.column or "(all columns)", "value": o.value,
                    "schema": "valid" if o.schema_valid else "invalid", "outcome": _outcome_text(o),
                    "rows_affected": o.bad_rows if o.kinds else o.rows}
                   for o in failures]
        tables = [Table.from_records(
            "failures", "Inputs that broke the model (or were rejected)", records,
            columns=("family", "column", "value", "schema", "outcome", "rows_affected"),
            caption="One row per family, column and value; invalid inputs that were scored are listed as "
                    "'scored'.", max_rows=self.max_table_rows)]
        fam_rows = []
        for family, n in r.rows_tried:
            outs = [o for o in r.outcomes if o.family == family]
            fam_rows.append({
                "family": family, "schema": "valid" if outs and outs[0].schema_valid else "invalid",
                "rows": n, "crashed": sum(o.rows for o in outs if o.crash),
                "non_finite": sum(o.non_finite for o in outs), "out_of_range": sum(o.out_of_range for o in outs),
                "bad_sum": sum(o.bad_sum for o in outs),
                "ok": sum(o.rows - o.bad_rows for o in outs)})
        tables.append(Table.from_records(
            "families", "Outcomes per input family", fam_rows,
            columns=("family", "schema", "rows", "crashed", "non_finite", "out_of_range", "bad_sum", "ok")))
        if r.jitter:
            tables.append(Table.from_records(
                "jitter", f"Score change under a {r.jitter_relative:g} relative jitter",
                [{"column": j.column or "(all numeric)", "rows": len(j.changes), "max_change": j.max_change,
                  "rows_unstable": j.n_above(tol)} for j in r.jitter],
                columns=("column", "rows", "max_change", "rows_unstable"),
                caption=f"Change = the smaller of the moves up and down; unstable above {tol:.4g}."))
        notes = (
            f"Budget: {r.n_random} random in-range rows (every feature drawn independently and uniformly "
            f"within its observed range or levels, train and test), {r.rows_per_column} rows per column per "
            f"perturbation family plus one batch of {r.rows_per_column} rows with every column perturbed; "
            f"{r.total_rows} rows in {r.calls} batched model calls (a call that raised was split by column "
            "and value to attribute the crash, never row by row).",
            "Schema-valid: any finite number in a numeric column (huge ±1e9/±1e12, tiny ±1e-12, zero, -1, "
            "the observed range pushed out by 10 spans), " + ("missing values, " if r.missing_valid else "")
            + "unseen categories and empty strings in categorical columns. Schema-invalid: a string in a "
            "numeric column, a number in a text column, ±infinity"
            + ("" if r.missing_valid else ", missing values") + ".",
            f"Outputs checked: exceptions, NaN or infinite values"
            + (f", probabilities outside [0, 1] or rows not summing to one (tolerance {r.tolerance:g})"
               if m.classification else "")
            + f"; jitter: {r.jitter_relative:g} relative (span-relative at zero), both directions.",
        )
        return Evidence(metrics=metrics, tables=tuple(tables), figures=(_figure(fam_rows),), notes=notes)


def _outcome_text(o: Outcome) -> str:
    if o.crash:
        return f"crash: {o.crash}"
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


def _figure(fam_rows: list[dict[str, Any]]) -> Figure:
    from ...plots import COLORS, figure, new_figure, plot_style

    with plot_style():
        fig = new_figure(6.0, 0.35 * len(fam_rows) + 1.0)
        ax = fig.add_subplot()
        names = [r["family"] for r in fam_rows]
        y = np.arange(len(names))
        left = np.zeros(len(names))
        for key, label, color in (("ok", "ok", COLORS[2]), ("crashed", "crashed", COLORS[1]),
                                  ("bad", "bad output", COLORS[4])):
            vals = np.array([r["non_finite"] + r["out_of_range"] + r["bad_sum"] if key == "bad" else r[key]
                             for r in fam_rows], dtype=float)
            share = vals / np.maximum([r["rows"] for r in fam_rows], 1)
            ax.barh(y, share, left=left, color=color, label=label)
            left += share
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of rows tried")
        ax.legend(loc="lower right", ncols=3)
    return figure("outcomes", "Outcomes per input family", fig)


CHECKS = (RandomAttackCheck,)
