"""Data integrity checks: schema, quality, leakage and drift.

Each check measures with functions of ``auditor.analysis`` and judges the measurement against
its thresholds (its dataclass fields); ``judge`` is a pure function of the measurement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..analysis.drift import FeatureDrift, categorical_drift, column_drift, frame_drift, numeric_drift
from ..analysis.group_metrics import wilson_interval
from ..analysis.leakage import FeaturePower, IdLikeStats, id_like_stats, single_feature_power
from ..analysis.quality import (
    NUMERIC,
    TEXT,
    ColumnProfile,
    ColumnSchema,
    DuplicateIds,
    Duplicates,
    LabelBalance,
    Overlap,
    SchemaComparison,
    compare_schema,
    duplicated_ids,
    duplicated_rows,
    label_balance,
    profile_frame,
    row_overlap,
    trim,
)
from ..findings import Evidence, Figure, Finding, Rule, Severity, Table
from ._classes import unknown_class_reason
from .base import DATA, Check

if TYPE_CHECKING:
    from ..context import AuditContext


# ---- formatting helpers ------------------------------------------------------------------------

def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _num(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _fixed(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "p n/a"
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}"


def _q(name: Any) -> str:
    """A column name or value quoted for a sentence (never used as a format string)."""
    return "'" + trim(name, 60) + "'"


def _list(names: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(_q(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _roles(ctx: AuditContext) -> dict[str, str]:
    roles = dict.fromkeys(ctx.features, "feature")
    roles[ctx.target] = "target"
    for c in ctx.protected:
        roles.setdefault(c, "protected")
    if ctx.config.data.id:
        roles.setdefault(ctx.config.data.id, "id")
    return roles


def _severity_at_least(value: float, levels: Sequence[tuple[float, Severity]], *, strict: bool = False
                       ) -> Severity | None:
    """The first severity whose threshold ``value`` reaches (levels from the most severe)."""
    if value is None or not math.isfinite(value):
        return None
    for threshold, sev in levels:
        if (value > threshold) if strict else (value >= threshold):
            return sev
    return None


# =================================================================================================
# data.schema
# =================================================================================================

@dataclass(frozen=True)
class SchemaMeasurement:
    comparison: SchemaComparison
    has_train: bool
    features: tuple[str, ...]
    target: str
    roles: dict[str, str]
    model_features: tuple[str, ...] | None


@dataclass
class SchemaCheck(Check):
    """Columns and types of the test data against the training data and the model's inputs.

    Measures which columns exist in only one split, each column's type family (numeric, text,
    boolean, datetime) per split, text columns whose values mostly parse as numbers, and
    categorical levels of the test data never seen in training.

    Severity: a model input (or the target) numeric in one split and text in the other is
    ``high`` (the model sees different data than it was trained on); another type-family
    mismatch or a numeric column stored as text is ``medium``; unseen levels are ``low``, or
    ``medium`` when they touch at least ``unseen_medium_share`` of test rows; columns only in
    train are ``low``, only in test ``info``. Without training data only the test schema is shown.
    """

    id: ClassVar[str] = "data.schema"
    family = DATA
    order = 1
    title: ClassVar[str] = "Schema and types"

    numeric_text_share: float = 0.9  # a text column is "numbers stored as text" at this parse share
    unseen_medium_share: float = 0.05  # share of test rows with an unseen level that makes it medium
    levels_named: int = 5  # unseen levels named in a finding
    max_rows: int = 25

    def measure(self, ctx: AuditContext) -> SchemaMeasurement:
        comparison = compare_schema(ctx.test, ctx.train, categorical=ctx.categorical)
        return SchemaMeasurement(comparison=comparison, has_train=ctx.has_train, features=ctx.features,
                                 target=ctx.target, roles=_roles(ctx),
                                 model_features=ctx.model.adapter.feature_names())

    def _numeric_text(self, m: SchemaMeasurement) -> list[ColumnSchema]:
        return [c for c in m.comparison.columns
                if c.column in m.features and not c.kind_mismatch and TEXT in (c.test_kind, c.train_kind)
                and c.numeric_text_share >= self.numeric_text_share]

    def judge(self, m: SchemaMeasurement) -> list[Finding]:
        cid = self.id
        out: list[Finding] = []
        cmp = m.comparison
        if cmp.only_in_train:
            out.append(Finding(
                id=f"{cid}/only_in_train", check=cid, severity=Severity.LOW,
                title=f"{len(cmp.only_in_train)} column(s) only in the training data",
                summary=(f"The training data has {len(cmp.only_in_train)} column(s) the test data lacks: "
                         f"{_list(cmp.only_in_train)}. They are not model inputs, but the two files were not "
                         "prepared the same way."),
                features=tuple(str(c) for c in cmp.only_in_train), metrics={"columns": len(cmp.only_in_train)},
                remediation=("Confirm both files come from the same extraction and that no column was dropped "
                             "from the test data to hide it from the audit.",),
                evidence=("columns",)))
        if cmp.only_in_test:
            out.append(Finding(
                id=f"{cid}/only_in_test", check=cid, severity=Severity.INFO,
                title=f"{len(cmp.only_in_test)} column(s) only in the test data",
                summary=(f"The test data has {len(cmp.only_in_test)} column(s) the training data lacks: "
                         f"{_list(cmp.only_in_test)}. They are not model inputs."),
                features=tuple(str(c) for c in cmp.only_in_test), metrics={"columns": len(cmp.only_in_test)},
                remediation=("Check that the extra columns are expected (ids, timestamps, outcomes collected later).",),
                evidence=("columns",)))
        checked = set(m.features) | {m.target}
        for c in cmp.columns:
            if c.column not in checked or not c.kind_mismatch:
                continue
            num_text = {c.test_kind, c.train_kind} == {NUMERIC, TEXT}
            sev = Severity.HIGH if num_text else Severity.MEDIUM
            role = "target" if c.column == m.target else "model input"
            out.append(Finding(
                id=f"{cid}/type/{c.column}", check=cid, severity=sev,
                title=f"{_q(c.column)} is {c.train_kind} in train but {c.test_kind} in test",
                summary=(f"The {role} {_q(c.column)} has type {c.train_dtype} ({c.train_kind}) in the training "
                         f"data and {c.test_dtype} ({c.test_kind}) in the test data, so the model is evaluated on "
                         "values of a different kind than it learned from."
                         + (f" {_pct(c.numeric_text_share)} of its text values parse as numbers."
                            if num_text and c.numeric_text_share > 0 else "")),
                features=(c.column,),
                metrics={"train_kind": c.train_kind, "test_kind": c.test_kind,
                         "numeric_text_share": c.numeric_text_share},
                remediation=("Fix the data pipeline so both splits are parsed with one explicit schema "
                             "(declared dtypes), then re-run the audit.",
                             "Look for placeholder strings ('n/a', '?', thousands separators) that turned the "
                             "column into text."),
                evidence=("columns",)))
        for c in self._numeric_text(m):
            out.append(Finding(
                id=f"{cid}/numeric_text/{c.column}", check=cid, severity=Severity.MEDIUM,
                title=f"{_q(c.column)}: {_pct(c.numeric_text_share)} of its text values are numbers",
                summary=(f"The model input {_q(c.column)} is stored as text, yet {_pct(c.numeric_text_share)} of its "
                         "values parse as numbers, so the model likely treats a quantity as unordered categories "
                         "(and every unseen number as an unknown level)."),
                features=(c.column,), metrics={"numeric_text_share": c.numeric_text_share},
                remediation=("Parse the column as a number and encode the few non-numeric values explicitly "
                             "(missing indicator); if it is a code, document why it is text.",),
                evidence=("columns",)))
        for u in cmp.unseen:
            if u.column not in m.features:
                continue
            sev = Severity.MEDIUM if u.share >= self.unseen_medium_share else Severity.LOW
            out.append(Finding(
                id=f"{cid}/unseen_levels/{u.column}", check=cid, severity=sev,
                title=f"{_q(u.column)}: {len(u.levels)} level(s) unseen in training ({_pct(u.share)} of test rows)",
                summary=(f"{_pct(u.share)} of the test rows ({u.affected}) have a value of {_q(u.column)} that never "
                         f"occurs in the training data: {_list(u.levels, self.levels_named)}. The model has learned "
                         "nothing about these rows' level."),
                features=(u.column,),
                metrics={"unseen_levels": len(u.levels), "affected_rows": u.affected, "affected_share": u.share},
                remediation=("Check how the model's encoder handles unknown levels (error, ignore, or an 'other' "
                             "bucket) and whether these levels are new categories or spelling variants.",
                             "Retrain with data that covers the new levels, or map them to known ones."),
                evidence=("unseen_levels",)))
        return out

    def evidence(self, m: SchemaMeasurement) -> Evidence:
        cmp = m.comparison
        numeric_text = {c.column for c in self._numeric_text(m)}
        flagged = {c.column for c in cmp.columns if c.kind_mismatch} | numeric_text \
            | {u.column for u in cmp.unseen} | set(cmp.only_in_test) | set(cmp.only_in_train)
        unseen = {u.column: u for u in cmp.unseen}
        records = []
        for i, c in enumerate(cmp.columns):
            notes = []
            if c.kind_mismatch:
                notes.append("type differs")
            if c.column in numeric_text:
                notes.append("numbers as text")
            if c.column in unseen:
                notes.append(f"{len(unseen[c.column].levels)} unseen level(s)")
            if c.column in cmp.only_in_test:
                notes.append("only in test")
            if c.column in cmp.only_in_train:
                notes.append("only in train")
            rec = {"column": c.column, "role": m.roles.get(c.column, "unused"), "test_type": c.test_dtype,
                   "unique_in_test": c.test_unique, "note": "; ".join(notes), "_order": (c.column not in flagged, i)}
            if m.has_train:
                rec["train_type"] = c.train_dtype
            records.append(rec)
        records.sort(key=lambda r: r["_order"])
        cols = ["column", "role", "test_type"] + (["train_type"] if m.has_train else []) + ["unique_in_test", "note"]
        tables = [Table.from_records("columns", "Columns and types", records, columns=cols, max_rows=self.max_rows,
                                     caption="Flagged columns first, then in file order.")]
        if cmp.unseen:
            lv = [{"column": u.column, "level": trim(level, 40), "test_rows": n}
                  for u in sorted(cmp.unseen, key=lambda u: (-u.share, u.column))
                  for level, n in list(zip(u.levels, u.counts))[: self.levels_named]]
            tables.append(Table.from_records("unseen_levels", "Test levels never seen in training", lv,
                                             columns=["column", "level", "test_rows"], max_rows=self.max_rows))
        notes = []
        if not m.has_train:
            notes.append("No training data: the train/test comparisons (columns, types, unseen levels) were skipped; "
                         "the test schema is shown.")
        if m.model_features is not None:
            present = sum(1 for f in m.model_features if f in m.roles)
            notes.append(f"The model declares {len(m.model_features)} input column(s); {present} of them are "
                         f"audited features present in the data.")
        metrics = {
            "test_columns": sum(c.test_kind is not None for c in cmp.columns),
            "features": len(m.features),
            "type_mismatches": sum(c.kind_mismatch for c in cmp.columns if c.column in set(m.features) | {m.target}),
            "numeric_as_text": len(self._numeric_text(m)),
            "columns_with_unseen_levels": sum(u.column in m.features for u in cmp.unseen),
        }
        if m.has_train:
            metrics["train_columns"] = sum(c.train_kind is not None for c in cmp.columns)
        return Evidence(metrics=metrics, tables=tuple(tables), notes=tuple(notes))


# =================================================================================================
# data.quality
# =================================================================================================

@dataclass(frozen=True)
class QualityMeasurement:
    features: tuple[str, ...]
    target: str
    roles: dict[str, str]
    task: str
    test_profile: tuple[ColumnProfile, ...]
    train_profile: tuple[ColumnProfile, ...] | None
    test_duplicates: Duplicates
    train_duplicates: Duplicates | None
    test_labels: LabelBalance | None
    train_labels: LabelBalance | None
    overlap: Overlap | None
    id_column: str | None = None
    test_ids: DuplicateIds | None = None
    train_ids: DuplicateIds | None = None
    unscored: tuple[Any, ...] = ()  # context.UnscoredRows per split (test first)


@dataclass
class QualityCheck(Check):
    """Missing values, constant features, duplicated rows, label balance.

    Measures per column the missing share (in each split) and distinct values; duplicated rows
    (features and target) within test and within train; the share of the rarest class
    (classification); and, as a number only, the test rows also present in train (judged by
    ``data.leakage``).

    Severity: a feature missing in at least ``missing_medium`` of rows is ``medium``, at least
    ``missing_low`` ``low``, any missing ``info``; a constant feature is ``low``; duplicated rows
    are ``low`` from ``duplicate_low`` and ``medium`` from ``duplicate_medium``; the rarest class
    is ``low`` below ``minority_low`` and ``medium`` below ``minority_medium``; infinite values in a
    feature are ``medium``; an id value on more than one row is ``medium`` in test, ``low`` in train.
    These are counts on the audited data, not estimates, and are never ``high``: data quality issues
    are handled before sign-off, not by it. The exception is the model itself: rows on which it
    returned no finite score (left out of every check) are ``medium``, and ``high`` when the lower
    end of the 95% Wilson interval of their share is at least ``unscored_high``.
    """

    id: ClassVar[str] = "data.quality"
    family = DATA
    order = 2
    title: ClassVar[str] = "Data quality"

    missing_low: float = 0.05
    missing_medium: float = 0.20
    duplicate_low: float = 0.01
    duplicate_medium: float = 0.10
    minority_low: float = 0.10
    minority_medium: float = 0.02
    unscored_high: float = 0.05  # share of rows without a finite score (interval's lower end) for high
    ids_named: int = 5
    max_rows: int = 25

    def measure(self, ctx: AuditContext) -> QualityMeasurement:
        cols = list(ctx.features) + [ctx.target]
        test, train = ctx.test, ctx.train
        id_col = ctx.config.data.id
        return QualityMeasurement(
            features=ctx.features, target=ctx.target, roles=_roles(ctx), task=ctx.task,
            test_profile=profile_frame(test),
            train_profile=profile_frame(train) if train is not None else None,
            test_duplicates=duplicated_rows(test, cols),
            train_duplicates=duplicated_rows(train, cols) if train is not None else None,
            test_labels=label_balance(test[ctx.target]) if ctx.is_classification else None,
            train_labels=label_balance(train[ctx.target]) if ctx.is_classification and train is not None else None,
            overlap=row_overlap(train, test, cols) if train is not None else None,
            id_column=id_col,
            test_ids=duplicated_ids(test[id_col], column=id_col, n_examples=self.ids_named)
            if id_col and id_col in test else None,
            train_ids=duplicated_ids(train[id_col], column=id_col, n_examples=self.ids_named)
            if id_col and train is not None and id_col in train else None,
            unscored=tuple(ctx.unscored[k] for k in ("test", "train") if k in ctx.unscored),
        )

    @staticmethod
    def _by_column(profile: tuple[ColumnProfile, ...] | None) -> dict[str, ColumnProfile]:
        return {p.column: p for p in profile} if profile else {}

    def judge(self, m: QualityMeasurement) -> list[Finding]:
        cid = self.id
        out: list[Finding] = []
        te, tr = self._by_column(m.test_profile), self._by_column(m.train_profile)
        for col in m.features:
            shares = {"test": te[col].missing_share} | ({"train": tr[col].missing_share} if col in tr else {})
            split, share = max(shares.items(), key=lambda kv: (kv[1], kv[0] == "test"))
            if share <= 0:
                continue
            sev = _severity_at_least(share, ((self.missing_medium, Severity.MEDIUM),
                                             (self.missing_low, Severity.LOW))) or Severity.INFO
            detail = " and ".join(f"{_pct(v)} in {k}" for k, v in shares.items())
            empty = [k for k, v in shares.items() if v >= 1.0]
            thr = {Severity.MEDIUM: self.missing_medium, Severity.LOW: self.missing_low}.get(sev, 0.0)
            rule_txt = (f"Rule: {sev.value} because the missing share counted in the {split} data, {_pct(share)}, "
                        + (f"is at least {_pct(thr)}" if sev != Severity.INFO else "is above 0")
                        + f" (low from {_pct(self.missing_low)}, medium from {_pct(self.missing_medium)}).")
            out.append(Finding(
                id=f"{cid}/missing/{col}", check=cid, severity=sev,
                title=(f"{_q(col)} is entirely missing ({' and '.join(empty)})" if empty
                       else f"{_q(col)} is {_pct(share)} missing ({split})"),
                summary=(f"The model input {_q(col)} has missing values: {detail}. "
                         + (f"It has no value at all in the {' and '.join(empty)} data, so the model cannot "
                            "use it there and checks that measure its effect find none. " if empty else "")
                         + "The model's handling of missing values (imputation, a default branch) decides these "
                         f"rows' scores. {rule_txt}"),
                features=(col,), metrics={f"missing_share_{k}": v for k, v in shares.items()},
                rule=Rule("missing_share", share, ">=" if sev != Severity.INFO else ">", thr, text=rule_txt),
                remediation=("Find out why values are missing (not collected, not applicable, a join that failed) "
                             "and whether missingness depends on the outcome.",
                             "Impute explicitly or add a missing indicator, and document the choice."),
                evidence=("columns",)))
        base = tr if tr else te
        base_split = "training" if tr else "test"
        for col in m.features:
            p = base.get(col)
            if p is not None and p.constant and p.unique > 0:  # no value at all: reported as missing
                value = p.examples[0] if p.examples else "missing"
                out.append(Finding(
                    id=f"{cid}/constant/{col}", check=cid, severity=Severity.LOW,
                    title=f"{_q(col)} is constant in the {base_split} data",
                    summary=(f"The model input {_q(col)} takes a single value ({_q(value)}) in the {base_split} data, "
                             "so the model cannot have learned anything from it."),
                    features=(col,), metrics={"unique_values": p.unique},
                    rule=Rule("unique_values", p.unique, "<=", 1,
                              text=f"Rule: low when a model input has at most one value in the {base_split} data."),
                    remediation=("Drop the column from the model inputs, or find out why it does not vary.",),
                    evidence=("columns",)))
        for split, d in (("test", m.test_duplicates), ("train", m.train_duplicates)):
            if d is None:
                continue
            sev = _severity_at_least(d.share, ((self.duplicate_medium, Severity.MEDIUM),
                                               (self.duplicate_low, Severity.LOW)))
            if sev is None:
                continue
            out.append(Finding(
                id=f"{cid}/duplicates/{split}", check=cid, severity=sev,
                title=f"{_pct(d.share)} of {split} rows are duplicates",
                summary=(f"{d.duplicated} of the {d.rows} {split} rows repeat an earlier row exactly (all model inputs "
                         "and the target). Duplicates over-weight some cases"
                         + (" and inflate test metrics." if split == "test" else " in training.")),
                features=(), metrics={"duplicated_rows": d.duplicated, "rows": d.rows, "duplicate_share": d.share},
                rule=Rule("duplicate_share", d.share, ">=",
                          self.duplicate_medium if sev == Severity.MEDIUM else self.duplicate_low,
                          text=(f"Rule: low from {_pct(self.duplicate_low)} duplicated rows, medium from "
                                f"{_pct(self.duplicate_medium)} (counted on the {split} data).")),
                remediation=("Check the extraction for repeated joins or appends; deduplicate if the rows are not "
                             "genuinely distinct cases.",),
                evidence=()))
        out.extend(self._infinite(m, te, tr))
        out.extend(self._duplicate_ids(m))
        out.extend(self._unscored(m))
        if m.task == "classification":
            cands = [(s, b) for s, b in (("test", m.test_labels), ("train", m.train_labels)) if b is not None and b.rows]
            if cands:
                split, b = min(cands, key=lambda sb: (sb[1].minority_share, sb[0]))
                sev = _severity_at_least(-b.minority_share, ((-self.minority_medium, Severity.MEDIUM),
                                                             (-self.minority_low, Severity.LOW)), strict=True)
                if sev is not None:
                    out.append(Finding(
                        id=f"{cid}/label_balance", check=cid, severity=sev,
                        title=f"Rarest class {_q(b.minority_class)} is {_pct(b.minority_share)} of {split} rows",
                        summary=(f"The target {_q(m.target)} is imbalanced: class {_q(b.minority_class)} is "
                                 f"{b.counts[-1]} of {b.rows} {split} rows ({_pct(b.minority_share)}). Accuracy is "
                                 "misleading at this balance and metrics for the rare class are uncertain."),
                        features=(), metrics={"minority_share": b.minority_share, "minority_count": b.counts[-1]},
                        rule=Rule("minority_share", b.minority_share, "<",
                                  self.minority_medium if sev == Severity.MEDIUM else self.minority_low,
                                  text=(f"Rule: low below {_pct(self.minority_low)} of rows in the rarest class, "
                                        f"medium below {_pct(self.minority_medium)}.")),
                        remediation=("Judge the model on AUC, precision/recall of the rare class and calibration, "
                                     "with confidence intervals.",
                                     "Check the decision threshold against the base rate."),
                        evidence=("labels",)))
        return out

    def _infinite(self, m: QualityMeasurement, te: dict[str, ColumnProfile],
                  tr: dict[str, ColumnProfile]) -> list[Finding]:
        """A model input holding +inf or -inf: an overflow or a division by zero upstream."""
        cid = self.id
        out = []
        for col in m.features:
            counts = {k: p[col].infinite for k, p in (("test", te), ("train", tr)) if col in p and p[col].infinite}
            if not counts:
                continue
            detail = " and ".join(f"{n} in {k}" for k, n in counts.items())
            rule_txt = "Rule: medium when a model input holds any infinite value (counted on the audited data)."
            out.append(Finding(
                id=f"{cid}/infinite/{col}", check=cid, severity=Severity.MEDIUM,
                title=f"{_q(col)} holds infinite values ({detail})",
                summary=(f"The model input {_q(col)} holds +inf or -inf values: {detail} rows. An infinite value is "
                         "not a measurement (an overflow or a division by zero upstream); the model scores these rows "
                         "on an impossible value, and statistics of the column use only its finite values. "
                         + rule_txt),
                features=(col,), metrics={f"infinite_{k}": n for k, n in counts.items()},
                rule=Rule("infinite_values", sum(counts.values()), ">", 0, text=rule_txt),
                remediation=("Find the computation that produced the infinities (ratios with a zero denominator, "
                             "log of zero, overflow) and replace them with a documented value or a missing value.",),
                evidence=("columns",)))
        return out

    def _duplicate_ids(self, m: QualityMeasurement) -> list[Finding]:
        """An id value on more than one row: one entity counted twice, or a broken key."""
        cid = self.id
        out = []
        for split, d in (("test", m.test_ids), ("train", m.train_ids)):
            if d is None or d.duplicated == 0:
                continue
            sev = Severity.MEDIUM if split == "test" else Severity.LOW
            examples = ", ".join(f"{_q(v)} ({n} rows)" for v, n in zip(d.values, d.counts))
            rule_txt = (f"Rule: {sev.value} when any id value occurs on more than one {split} row "
                        "(medium in test, low in train).")
            out.append(Finding(
                id=f"{cid}/duplicate_ids/{split}", check=cid, severity=sev,
                title=f"Id column {_q(d.column)}: {d.duplicated} {split} rows share an id",
                summary=(f"{d.duplicated} of the {d.rows} {split} rows ({_pct(d.share)}) have an id in {_q(d.column)} "
                         f"that another row also has; most repeated: {examples}. Rows named by id in this report "
                         "are ambiguous, and the same case may be counted more than once. " + rule_txt),
                features=(d.column,),
                metrics={"rows_with_shared_id": d.duplicated, "rows": d.rows, "share": d.share},
                rule=Rule("rows_with_shared_id", d.duplicated, ">", 0, text=rule_txt),
                remediation=("Check that the id column is the record key; deduplicate repeated records or use a key "
                             "that is unique per row.",),
                evidence=()))
        return out

    def _unscored(self, m: QualityMeasurement) -> list[Finding]:
        """Rows on which the model returned NaN or infinite scores; left out of every check."""
        cid = self.id
        out = []
        for u in m.unscored:
            lo, hi = wilson_interval(u.count, u.rows)
            sev = Severity.HIGH if lo >= self.unscored_high else Severity.MEDIUM
            rule_txt = (f"Rule: high when the lower end of the 95% Wilson interval of the share of rows without a "
                        f"score, [{_pct(lo)}, {_pct(hi)}], is at least {_pct(self.unscored_high)}; medium for any "
                        "such row.")
            cause = (f" The rows are set apart by {_list(u.set_apart_by)}: their values there never occur on the "
                     "scored rows." if u.set_apart_by else "")
            ids = (f" Ids: {', '.join(_q(i) for i in u.ids[: self.ids_named])}"
                   + (" and more." if len(u.ids) > self.ids_named else ".")) if u.ids else ""
            out.append(Finding(
                id=f"{cid}/unscored/{u.split}", check=cid, severity=sev,
                title=f"The model returned no score for {u.count} {u.split} rows ({_pct(u.share)})",
                summary=(f"The model's output is NaN or infinite on {u.count} of the {u.rows} {u.split} rows "
                         f"({_pct(u.share)}). These rows were left out of every check, so the audit's metrics "
                         "describe only the rows the model scores; in use, these cases would get no decision "
                         f"or a default one.{cause}{ids} {rule_txt}"),
                features=tuple(u.set_apart_by),
                metrics={"unscored_rows": u.count, "rows": u.rows, "unscored_share": u.share,
                         "unscored_share_ci_low": lo, "unscored_share_ci_high": hi},
                rule=Rule("unscored_share", u.share, ">=", self.unscored_high, interval=(lo, hi), text=rule_txt),
                remediation=("Find which inputs make the model return NaN (missing or out-of-range values, unseen "
                             "levels) and handle them in the model's pipeline.",
                             "Re-run the audit once every row gets a score."),
                evidence=("unscored",) if u.positions else ()))
        return out

    def evidence(self, m: QualityMeasurement) -> Evidence:
        te, tr = self._by_column(m.test_profile), self._by_column(m.train_profile)
        records = []
        for i, p in enumerate(m.test_profile):
            q = tr.get(p.column)
            worst = max(p.missing_share, q.missing_share if q else 0.0)
            rec = {"column": p.column, "role": m.roles.get(p.column, "unused"), "type": p.dtype,
                   "missing_test_pct": round(100 * p.missing_share, 2), "infinite_test": p.infinite,
                   "unique": p.unique,
                   "examples": ", ".join(p.examples), "_order": (-worst, i)}
            if tr:
                rec["missing_train_pct"] = round(100 * q.missing_share, 2) if q else None
                rec["infinite_train"] = q.infinite if q else None
            records.append(rec)
        records.sort(key=lambda r: r["_order"])
        any_inf = any(p.infinite for p in te.values()) or any(p.infinite for p in tr.values())
        cols = ["column", "role", "type", "missing_test_pct"] + (["missing_train_pct"] if tr else []) + \
            ((["infinite_test"] + (["infinite_train"] if tr else [])) if any_inf else []) + ["unique", "examples"]
        tables = [Table.from_records("columns", "Columns", records, columns=cols, max_rows=self.max_rows,
                                     caption="Most missing first; unique counts and examples from the test data.")]
        if m.test_labels is not None:
            trc = dict(zip(m.train_labels.classes, m.train_labels.counts)) if m.train_labels else {}
            lab = []
            for cls, n in zip(m.test_labels.classes, m.test_labels.counts):
                rec = {"class": trim(cls, 40), "test_rows": n, "test_share": n / m.test_labels.rows}
                if m.train_labels is not None:
                    rec["train_rows"] = trc.get(cls, 0)
                    rec["train_share"] = trc.get(cls, 0) / m.train_labels.rows if m.train_labels.rows else None
                lab.append(rec)
            tables.append(Table.from_records("labels", "Target classes", lab, max_rows=self.max_rows))
        unscored = [{"split": u.split, "row": pos, "id": u.ids[i] if u.ids else None}
                    for u in m.unscored for i, pos in enumerate(u.positions)]
        if unscored:
            tables.append(Table.from_records("unscored", "Rows without a finite model score (left out)", unscored,
                                             columns=["split", "row", "id"], max_rows=self.max_rows,
                                             caption="Row: 0-based position in the input data."))
        features = list(m.features)
        metrics: dict[str, Any] = {
            "test_rows": m.test_duplicates.rows,
            "features_with_missing": sum(te[c].missing > 0 or (c in tr and tr[c].missing > 0) for c in features),
            "constant_features": sum((tr or te)[c].constant for c in features),
            "test_duplicate_share": m.test_duplicates.share,
        }
        if m.train_duplicates is not None:
            metrics["train_rows"] = m.train_duplicates.rows
            metrics["train_duplicate_share"] = m.train_duplicates.share
        if m.overlap is not None:
            metrics["test_rows_in_train"] = m.overlap.shared
            metrics["test_rows_in_train_share"] = m.overlap.share
        if m.test_labels is not None:
            metrics["minority_share_test"] = m.test_labels.minority_share
        if m.train_labels is not None:
            metrics["minority_share_train"] = m.train_labels.minority_share
        metrics["features_with_infinite"] = sum(te[c].infinite > 0 or (c in tr and tr[c].infinite > 0)
                                                for c in features)
        for split, d in (("test", m.test_ids), ("train", m.train_ids)):
            if d is not None:
                metrics[f"{split}_rows_with_shared_id"] = d.duplicated
        for u in m.unscored:
            metrics[f"{u.split}_unscored_rows"] = u.count
        notes = ["Duplicates compare the model inputs and the target; test rows also found in training are "
                 "judged by data.leakage."]
        for u in m.unscored:
            notes.append(f"{u.count} {u.split} rows on which the model returned no finite score were left out of "
                         f"the audit; every check, this one included, sees the other {u.rows - u.count}.")
        return Evidence(metrics=metrics, tables=tuple(tables), notes=tuple(notes))


# =================================================================================================
# data.leakage
# =================================================================================================

@dataclass(frozen=True)
class LeakageMeasurement:
    task: str
    target: str
    metric: str  # "auc" | "auc_ovr_macro" (k classes) | "r2"
    model_value: float  # the model's own test AUC (k classes: macro one-vs-rest) or R²
    powers: tuple[FeaturePower, ...]
    id_stats: tuple[IdLikeStats, ...]
    overlap: Overlap | None
    method: str
    fit_rows: int


@dataclass
class LeakageCheck(Check):
    """Features that give the target away.

    Measures (a) each feature's out-of-sample power alone: a depth-``max_depth`` tree fitted on
    train and scored on test (AUC of the positive class; for k > 2 classes the tree predicts the k
    class probabilities and the power is the macro one-vs-rest AUC, the mean over classes of each
    class-vs-rest AUC; or R²), or ``cv_folds``-fold CV on test without train; (b) identifier-like columns (integers or text unique in nearly every row;
    integers must also be a near-running number unless named like an id); (c) test rows whose
    inputs and target also appear in train, beyond the duplication found within train itself.

    Severity: a feature whose AUC's 95% lower bound (Hanley-McNeil) is >= ``auc_high`` (R², point
    estimate, >= ``r2_high``) is ``high``, >= ``auc_medium`` (``r2_medium``) ``medium``; an id-like input is ``medium``; overlap beyond chance is ``low`` when
    any, ``medium`` from ``overlap_medium``, ``high`` from ``overlap_high``.
    """

    id: ClassVar[str] = "data.leakage"
    family = DATA
    order = 3
    title: ClassVar[str] = "Target leakage"

    auc_high: float = 0.98
    auc_medium: float = 0.93
    r2_high: float = 0.95
    r2_medium: float = 0.85
    id_unique_share: float = 0.95  # distinct values in this share of rows: an identifier
    id_named_unique_share: float = 0.5  # ... or this share when the name says id/key/uuid/index
    id_min_density: float = 0.5  # integers: distinct values / (max - min + 1), a running number
    overlap_medium: float = 0.05
    overlap_high: float = 0.20
    max_depth: int = 3
    cv_folds: int = 5
    sample_rows: int = 50_000  # rows used to fit and score the single-feature models, per split
    figure_top: int = 15
    max_rows: int = 25

    def skip_reason(self, ctx: AuditContext) -> str | None:
        return unknown_class_reason(ctx)

    def measure(self, ctx: AuditContext) -> LeakageMeasurement:
        from sklearn.metrics import r2_score, roc_auc_score

        clf = ctx.is_classification
        multi = ctx.is_multiclass
        rng = ctx.rng(self.id)
        if multi:  # k classes: class indices, the model's k-class probabilities
            y_test = ctx.y_index("test")
            P = np.asarray(ctx.predictions("test").proba, dtype=float)
            present = [j for j in range(P.shape[1]) if 0 < np.sum(y_test == j) < len(y_test)]
            model_value = (float(np.mean([roc_auc_score(y_test == j, P[:, j]) for j in present]))
                           if present else float("nan"))
        else:
            y_test = ctx.y_binary("test") if clf else ctx.y("test").astype(float)
            score = ctx.predictions("test").score
            if clf:
                model_value = float(roc_auc_score(y_test, score)) if np.unique(y_test).size > 1 else float("nan")
            else:
                model_value = float(r2_score(y_test, score))
        te_idx = _sample_index(len(y_test), self.sample_rows, rng)
        X_test = ctx.X("test").iloc[te_idx]
        if ctx.has_train:
            y_train = ctx.y_index("train") if multi else ctx.y_binary("train") if clf else ctx.y("train").astype(float)
            tr_idx = _sample_index(len(y_train), self.sample_rows, rng)
            X_train, yt = ctx.X("train").iloc[tr_idx], y_train[tr_idx]
        else:
            X_train = yt = None
        seed = int(rng.integers(0, 2**31 - 1))
        powers = single_feature_power(X_test, y_test[te_idx], task=ctx.task, X_train=X_train, y_train=yt,
                                      categorical=ctx.categorical, max_depth=self.max_depth,
                                      cv_folds=self.cv_folds, seed=seed, n_classes=ctx.n_classes if multi else 2)
        frames = [ctx.test] + ([ctx.train] if ctx.has_train else [])
        cols = list(ctx.features) + [ctx.target]
        return LeakageMeasurement(
            task=ctx.task, target=ctx.target, metric=("auc_ovr_macro" if multi else "auc") if clf else "r2",
            model_value=model_value,
            powers=powers, id_stats=id_like_stats(frames, ctx.features),
            overlap=row_overlap(ctx.train, ctx.test, cols) if ctx.has_train else None,
            method=powers[0].method if powers else "", fit_rows=len(X_train) if X_train is not None else len(X_test))

    def _power_levels(self, metric: str) -> tuple[tuple[float, Severity], ...]:
        if metric in ("auc", "auc_ovr_macro"):
            return ((self.auc_high, Severity.HIGH), (self.auc_medium, Severity.MEDIUM))
        return ((self.r2_high, Severity.HIGH), (self.r2_medium, Severity.MEDIUM))

    def is_id_like(self, s: IdLikeStats) -> bool:
        named = s.name_hint and s.unique_share >= self.id_named_unique_share
        if s.value_kind == "text":
            return named or s.unique_share >= self.id_unique_share
        if s.value_kind == "integer":
            dense = math.isfinite(s.density) and s.density >= self.id_min_density
            return named or (s.unique_share >= self.id_unique_share and dense)
        return False

    def judge(self, m: LeakageMeasurement) -> list[Finding]:
        cid = self.id
        out: list[Finding] = []
        label = _POWER_LABELS[m.metric]
        levels = self._power_levels(m.metric)
        for p in m.powers:
            sev = _severity_at_least(_power_bound(p), levels)
            if sev is None:
                continue
            thr = next(t for t, sv in levels if sv == sev)
            bound = ("the lower end of the 95% interval" if m.metric != "r2" else "the point estimate (95% interval")
            rule_txt = (f"Rule: {sev.value} when {bound} [{_fixed(p.low)}, {_fixed(p.high)}]"
                        + (")" if m.metric == "r2" else "")
                        + f" of the feature's held-out {label} is at least {thr:g} "
                        f"(high from {levels[0][0]:g}, medium from {levels[1][0]:g}).")
            out.append(Finding(
                id=f"{cid}/power/{p.feature}", check=cid, severity=sev,
                title=f"{_q(p.feature)} alone predicts the target: {label} {p.value:.3f}",
                summary=(f"A small decision tree on {_q(p.feature)} alone reaches {label} {p.value:.3f} (95% interval "
                         f"{_fixed(p.low)} to {_fixed(p.high)}) on held-out data ({p.method}); the model itself "
                         f"reaches {label} {_fixed(m.model_value)} on the test data. "
                         "A single input this predictive is usually recorded after the outcome, derived from the "
                         f"target, or a proxy for it. {rule_txt}"),
                features=(p.feature,),
                rule=Rule(f"single_feature_{m.metric}", p.value, ">=", thr, interval=(p.low, p.high), text=rule_txt),
                metrics={f"single_feature_{m.metric}": p.value, f"single_feature_{m.metric}_ci_low": p.low,
                         f"single_feature_{m.metric}_ci_high": p.high, f"model_{m.metric}": m.model_value},
                remediation=("Establish when and how this column is recorded: it must be known at decision time, "
                             "before the outcome.",
                             "If it is derived from the outcome, remove it and retrain; compare performance "
                             "without it."),
                evidence=("single_feature_power", "single_feature_power_chart")))
        for s in m.id_stats:
            if not self.is_id_like(s):
                continue
            dens = f", spanning a near-continuous range (density {_pct(s.density)})" if math.isfinite(s.density) else ""
            out.append(Finding(
                id=f"{cid}/id_like/{s.feature}", check=cid, severity=Severity.MEDIUM,
                title=f"{_q(s.feature)} looks like an identifier ({_pct(s.unique_share)} unique)",
                summary=(f"The model input {_q(s.feature)} ({s.value_kind}) has a distinct value in "
                         f"{_pct(s.unique_share)} of rows{dens}"
                         + (" and is named like an identifier" if s.name_hint else "")
                         + ". An identifier lets a model memorise rows and picks up the order in which records "
                         "were created, which does not generalise."),
                features=(s.feature,),
                metrics={"unique_share": s.unique_share, "density": s.density, "name_hint": s.name_hint},
                remediation=("Remove identifiers from the model inputs (keep them as the audit's id column).",),
                evidence=("id_like",)))
        ov = m.overlap
        if ov is not None and ov.shared > 0:
            if ov.excess_share > 0:
                sev = _severity_at_least(ov.excess_share, ((self.overlap_high, Severity.HIGH),
                                                           (self.overlap_medium, Severity.MEDIUM))) or Severity.LOW
            else:
                sev = Severity.INFO
            out.append(Finding(
                id=f"{cid}/train_test_overlap", check=cid, severity=sev,
                title=f"{_pct(ov.share)} of test rows also appear in the training data",
                summary=(f"{ov.shared} of the {ov.rows} test rows ({_pct(ov.share)}) match a training row exactly on "
                         f"every model input and the target. Within the training data itself, {_pct(ov.natural_share)}"
                         " of rows have an exact twin, the level expected by chance; "
                         + (f"the excess of {_pct(ov.excess_share)} means the test data is partly training data, "
                            "so test metrics are optimistic." if ov.excess_share > 0 else
                            "the overlap is consistent with that level.")),
                features=(),
                metrics={"shared_rows": ov.shared, "shared_share": ov.share, "chance_share": ov.natural_share,
                         "excess_share": ov.excess_share},
                remediation=("Split train and test before any resampling or augmentation, deduplicating by entity "
                             "(customer, account) so one case never lands on both sides.",
                             "Re-evaluate the model on test rows absent from training."),
                evidence=()))
        return out

    def evidence(self, m: LeakageMeasurement) -> Evidence:
        label = _POWER_LABELS[m.metric]
        order = sorted(m.powers, key=lambda p: (-_finite_or(p.value, -math.inf), p.feature))
        levels = self._power_levels(m.metric)
        rec = [{"feature": p.feature, "kind": p.kind, m.metric: p.value, "ci_low": p.low, "ci_high": p.high,
                "level": getattr(_severity_at_least(_power_bound(p), levels), "value", "")} for p in order]
        tables = [Table.from_records("single_feature_power", f"Single-feature {label} (held out)", rec,
                                     columns=["feature", "kind", m.metric, "ci_low", "ci_high", "level"],
                                     max_rows=self.max_rows,
                                     caption=f"Depth-{self.max_depth} tree on one feature, {m.method}; "
                                             f"model {label} {_fixed(m.model_value)}.")]
        ids = [{"feature": s.feature, "value_kind": s.value_kind, "unique_share": s.unique_share,
                "density": s.density, "named_like_id": s.name_hint}
               for s in sorted(m.id_stats, key=lambda s: (not self.is_id_like(s), -s.unique_share, s.feature))
               if s.value_kind in ("integer", "text")]
        tables.append(Table.from_records("id_like", "Uniqueness of integer and text inputs", ids,
                                         columns=["feature", "value_kind", "unique_share", "density", "named_like_id"],
                                         max_rows=self.max_rows))
        best = order[0] if order else None
        metrics: dict[str, Any] = {
            f"model_{m.metric}": m.model_value,
            f"max_single_feature_{m.metric}": best.value if best else float("nan"),
            "max_single_feature": best.feature if best else "",
            "id_like_features": sum(self.is_id_like(s) for s in m.id_stats),
        }
        if m.overlap is not None:
            metrics.update({"test_rows_in_train": m.overlap.shared, "test_rows_in_train_share": m.overlap.share,
                            "train_duplicate_share": m.overlap.natural_share})
        notes = [f"Single-feature power: a depth-{self.max_depth} decision tree per feature, {m.method}"
                 f" ({m.fit_rows} fitting rows); categorical levels ordered by their mean target on the fitting "
                 "rows, unseen levels treated as missing. AUC severity from the lower end of its 95% "
                 "Hanley-McNeil interval; R² severity from the point estimate (interval: bootstrap of the held-out "
                 "rows)."]
        if m.metric == "auc_ovr_macro":
            notes.append("k-class target: each single-feature tree predicts the probability of every class; its "
                         "power is the macro one-vs-rest AUC (mean over classes of class-vs-rest AUC; the interval's "
                         "half-width is the mean of the per-class Hanley-McNeil half-widths, an upper bound). "
                         "Categorical levels are ordered by their most frequent class, then its share.")
        figures = [_power_figure(order[: self.figure_top], m.metric, levels)] if order else []
        return Evidence(metrics=metrics, tables=tuple(tables), figures=tuple(figures), notes=tuple(notes))


_POWER_LABELS = {"auc": "AUC", "auc_ovr_macro": "macro one-vs-rest AUC", "r2": "R²"}


def _power_bound(p: FeaturePower) -> float:
    """What the power thresholds are applied to: for AUC the conservative (lower) end of its
    interval; for R² the point value (a depth-limited tree's step function caps the R² of an exact
    copy of a continuous target near the high cut, so its lower bound would miss the copy)."""
    if p.metric == "r2":
        return p.value
    return p.low if p.low is not None and math.isfinite(p.low) else p.value


def _finite_or(x: float, default: float) -> float:
    return x if x is not None and math.isfinite(x) else default


def _sample_index(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    if n <= cap:
        return np.arange(n)
    return np.sort(rng.choice(n, size=cap, replace=False))


def _power_figure(powers: Sequence[FeaturePower], metric: str, levels: Sequence[tuple[float, Severity]]) -> Figure:
    from ..plots import COLORS, figure, new_figure, plot_style

    label = _POWER_LABELS[metric]
    names = [trim(p.feature, 28) for p in powers][::-1]
    values = [_finite_or(p.value, 0.0) for p in powers][::-1]
    palette = {Severity.HIGH: COLORS[1], Severity.MEDIUM: COLORS[3]}
    colors = [palette.get(_severity_at_least(_power_bound(p), levels), COLORS[0]) for p in powers][::-1]
    with plot_style():
        fig = new_figure(6.0, max(1.6, 0.22 * len(names) + 0.9))
        ax = fig.add_subplot()
        ax.barh(range(len(names)), values, color=colors)
        ax.set_yticks(range(len(names)), names)
        for (thr, sev), style in zip(levels, ("-", "--")):
            ax.axvline(thr, color=COLORS[1], linestyle=style, linewidth=0.8, label=f"{sev.value} ({thr:g})")
        lo = 0.5 if metric != "r2" else min(0.0, min(values, default=0.0))
        ax.set_xlim(lo, 1.0)
        ax.set_xlabel(f"held-out {label} of the feature alone")
        ax.legend(loc="lower right")
    return figure("single_feature_power_chart", f"Single-feature {label}", fig,
                  caption=f"Each feature alone (top {len(names)}); lines mark the medium and high thresholds.")


# =================================================================================================
# data.drift
# =================================================================================================

@dataclass(frozen=True)
class DriftMeasurement:
    target: str
    features: tuple[FeatureDrift, ...]
    target_drift: FeatureDrift
    score_drift: FeatureDrift | None

    @property
    def tested(self) -> tuple[FeatureDrift, ...]:
        """The columns the significance correction counts: every feature and the target."""
        return self.features + (self.target_drift,)


@dataclass
class DriftCheck(Check):
    """Distribution shift from train to test, per feature and for the target.

    Measures PSI on ``n_bins`` train-quantile bins (numeric; missing is a bin) or on levels
    (categorical; unseen levels are bins), Jensen–Shannon distance on the same bins, KS statistic
    (numeric) or chi-square test (categorical), and Wasserstein distance in train standard
    deviations. The model's score (train vs test; for k > 2 classes the distribution of the
    predicted class) is reported as a metric, not judged. The target is compared as categorical
    levels for any number of classes.

    Severity: effect size gated by significance. A column drifts only when its p-value is below
    ``alpha`` divided by the number of columns tested (Bonferroni) *and* PSI >= ``psi_medium``
    (``medium``) or >= ``psi_high`` (``high``); a p-value alone never makes a finding. Skipped
    without training data.
    """

    id: ClassVar[str] = "data.drift"
    family = DATA
    order = 4
    title: ClassVar[str] = "Train/test drift"

    alpha: float = 0.01
    psi_medium: float = 0.10
    psi_high: float = 0.25
    n_bins: int = 10
    epsilon: float = 1e-4
    figure_top: int = 15
    max_rows: int = 25

    def skip_reason(self, ctx: AuditContext) -> str | None:
        return None if ctx.has_train else "no training data: drift compares the training data with the test data"

    def measure(self, ctx: AuditContext) -> DriftMeasurement:
        train, test = ctx.frame("train"), ctx.frame("test")
        feats = frame_drift(train, test, columns=ctx.features, categorical=ctx.categorical, n_bins=self.n_bins,
                            epsilon=self.epsilon)
        target = column_drift(train[ctx.target], test[ctx.target], feature=ctx.target,
                              categorical=ctx.is_classification, n_bins=self.n_bins, epsilon=self.epsilon)
        if ctx.is_multiclass:  # k classes: the predicted class's distribution, not P(one class)
            names = np.array([str(c) for c in ctx.classes], dtype=object)
            score = categorical_drift(names[ctx.predictions("train").pred_class],
                                      names[ctx.predictions("test").pred_class],
                                      feature="model predicted class", epsilon=self.epsilon)
        else:
            score = numeric_drift(ctx.predictions("train").score, ctx.predictions("test").score,
                                  feature="model score", n_bins=self.n_bins, epsilon=self.epsilon)
        return DriftMeasurement(target=ctx.target, features=feats.columns, target_drift=target, score_drift=score)

    def corrected_alpha(self, m: DriftMeasurement) -> float:
        return self.alpha / max(1, len(m.tested))

    def severity(self, d: FeatureDrift, corrected_alpha: float) -> Severity | None:
        if not (math.isfinite(d.p_value) and d.p_value < corrected_alpha):
            return None
        return _severity_at_least(d.psi, ((self.psi_high, Severity.HIGH), (self.psi_medium, Severity.MEDIUM)))

    def judge(self, m: DriftMeasurement) -> list[Finding]:
        cid = self.id
        a = self.corrected_alpha(m)
        out: list[Finding] = []
        for d in m.tested:
            sev = self.severity(d, a)
            if sev is None:
                continue
            is_target = d.feature == m.target
            what = "The target" if is_target else "The model input"
            if d.kind == "numeric":
                detail = (f"KS statistic {_num(d.ks_statistic)} ({_p(d.p_value)}); the mean moved from "
                          f"{_num(d.mean_reference, 4)} to {_num(d.mean_current, 4)}, a Wasserstein distance of "
                          f"{_num(d.wasserstein_norm)} training standard deviations")
                if d.missing_current != d.missing_reference:
                    detail += f"; missing {_pct(d.missing_reference)} → {_pct(d.missing_current)}"
            else:
                detail = f"chi-square {_p(d.p_value)}; {_shift_text(d)}"
            metrics = {"psi": d.psi, "js_distance": d.js_distance, "p_value": d.p_value,
                       "alpha_corrected": a}
            if d.kind == "numeric":
                metrics.update({"ks_statistic": d.ks_statistic, "wasserstein_norm": d.wasserstein_norm,
                                "mean_train": d.mean_reference, "mean_test": d.mean_current})
            out.append(Finding(
                id=f"{cid}/{d.feature}", check=cid, severity=sev,
                title=f"{'Target ' if is_target else ''}{_q(d.feature)} drifted: PSI {d.psi:.2f}",
                summary=(f"{what} {_q(d.feature)} is distributed differently in the test data than in training: "
                         f"PSI {d.psi:.2f} (medium from {self.psi_medium:g}, high from {self.psi_high:g}), "
                         f"Jensen–Shannon distance {_num(d.js_distance)}, {detail}."
                         + (" The outcome rate or level itself changed, so test metrics and calibration do not carry "
                            "over." if is_target else
                            " The model is applied to a population it was not trained on.")),
                features=(d.feature,), metrics=metrics,
                remediation=("Find out why the populations differ (time period, source, selection, a changed "
                             "definition or unit) before trusting test results as a forecast of production.",
                             "Retrain on data representative of where the model will be used, and monitor PSI "
                             "of this column in production."),
                evidence=("drift", "drift_bins", "psi_chart")))
        return out

    def evidence(self, m: DriftMeasurement) -> Evidence:
        a = self.corrected_alpha(m)

        def row(d: FeatureDrift, role: str) -> dict[str, Any]:
            sev = self.severity(d, a) if role != "score" else None
            return {"column": d.feature, "role": role, "kind": d.kind, "psi": d.psi, "js_distance": d.js_distance,
                    "ks_statistic": d.ks_statistic, "p_value": d.p_value, "wasserstein_norm": d.wasserstein_norm,
                    "mean_train": d.mean_reference, "mean_test": d.mean_current,
                    "level": sev.value if sev else ""}

        feats = sorted(m.features, key=lambda d: (-_finite_or(d.psi, -math.inf), d.feature))
        records = [row(m.target_drift, "target")] + ([row(m.score_drift, "score")] if m.score_drift else []) + \
            [row(d, "feature") for d in feats]
        cols = ["column", "role", "kind", "psi", "js_distance", "ks_statistic", "p_value", "wasserstein_norm",
                "mean_train", "mean_test", "level"]
        tables = [Table.from_records("drift", "Drift per column (train → test)", records, columns=cols,
                                     max_rows=self.max_rows,
                                     caption="Target and model score first, then features by PSI. Wasserstein "
                                             "distance is in training standard deviations.")]
        flagged = sorted((d for d in m.tested if self.severity(d, a)), key=lambda d: (-d.psi, d.feature))
        bins = []
        for d in flagged:
            b = d.bins
            if b is None:
                continue
            rs, cs = b.reference_share, b.current_share
            for lab, r, c in zip(b.labels, rs, cs):
                if r > 0 or c > 0:
                    bins.append({"column": d.feature, "bin": trim(lab, 40), "train_share": r, "test_share": c})
        if bins:
            tables.append(Table.from_records("drift_bins", "Bins of the drifted columns", bins,
                                             columns=["column", "bin", "train_share", "test_share"],
                                             max_rows=self.max_rows))
        top = feats[0] if feats else None
        metrics: dict[str, Any] = {
            "columns_tested": len(m.tested),
            "alpha_corrected": a,
            "drifted_columns": len(flagged),
            "max_feature_psi": top.psi if top else float("nan"),
            "max_feature_psi_column": top.feature if top else "",
            "target_psi": m.target_drift.psi,
            "target_p_value": m.target_drift.p_value,
        }
        if m.score_drift is not None:
            metrics.update({"score_psi": m.score_drift.psi, "score_ks_statistic": m.score_drift.ks_statistic,
                            "score_p_value": m.score_drift.p_value})
        notes = [f"PSI on {self.n_bins} quantile bins of the training data (numeric; missing values are their own "
                 f"bin) or on levels (categorical; unseen levels are their own bins), shares floored at "
                 f"{self.epsilon:g}. Significance: KS (numeric) or chi-square (categorical) at alpha {self.alpha:g} "
                 f"Bonferroni-corrected over {len(m.tested)} columns ({a:.2g})."]
        return Evidence(metrics=metrics, tables=tuple(tables), figures=(self._figure(m, a),), notes=tuple(notes))

    def _figure(self, m: DriftMeasurement, a: float) -> Figure:
        from ..plots import COLORS, figure, new_figure, plot_style

        cols = sorted(m.tested, key=lambda d: (-_finite_or(d.psi, -math.inf), d.feature))[: self.figure_top]
        names = [trim(d.feature, 28) + (" (target)" if d.feature == m.target else "") for d in cols][::-1]
        values = [_finite_or(d.psi, 0.0) for d in cols][::-1]
        colors = [{Severity.HIGH: COLORS[1], Severity.MEDIUM: COLORS[3]}.get(self.severity(d, a), COLORS[0])
                  for d in cols][::-1]
        with plot_style():
            fig = new_figure(6.0, max(1.6, 0.22 * len(names) + 0.9))
            ax = fig.add_subplot()
            ax.barh(range(len(names)), values, color=colors)
            ax.set_yticks(range(len(names)), names)
            ax.axvline(self.psi_medium, color=COLORS[3], linestyle="--", linewidth=0.8,
                       label=f"medium ({self.psi_medium:g})")
            ax.axvline(self.psi_high, color=COLORS[1], linestyle="-", linewidth=0.8, label=f"high ({self.psi_high:g})")
            ax.set_xlim(0, max(self.psi_high * 1.2, max(values, default=0.0) * 1.05))
            ax.set_xlabel("PSI (train → test)")
            ax.legend(loc="lower right")
        return figure("psi_chart", "Population stability index by column", fig,
                      caption=f"Top {len(names)} columns by PSI. Coloured bars are significant at the corrected "
                              "alpha and above a threshold.")


def _shift_text(d: FeatureDrift) -> str:
    """The level whose share moved most, in words."""
    b = d.bins
    if b is None or not len(b.labels):
        return ""
    diff = b.current_share - b.reference_share
    i = int(np.argmax(np.abs(diff)))
    return (f"level {_q(b.labels[i])} went from {_pct(b.reference_share[i])} of training rows to "
            f"{_pct(b.current_share[i])} of test rows")
