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
import pandas as pd

from ..analysis.drift import FeatureDrift, categorical_drift, column_drift, frame_drift, numeric_drift
from ..analysis.group_metrics import wilson_interval
from ..analysis.leakage import FeaturePower, IdLikeStats, id_like_stats, model_power, single_feature_power
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
from ..analysis.sampling import sample_positions
from ..findings import Evidence, Figure, Finding, Rule, Severity, Table
from ..wording import fixed, level, num, p_value, pct, quoted
from ._classes import unknown_class_reason
from .base import DATA, Check, budget, setting, threshold

if TYPE_CHECKING:
    from ..context import AuditContext


_NAME = 60  # characters of a column name or value quoted in a sentence (never used as a format string)


def _list(names: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(quoted(trim(n, _NAME)) for n in names[:limit])
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
    for cut, sev in levels:
        if (value > cut) if strict else (value >= cut):
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
class SchemaCheck(Check[SchemaMeasurement]):
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

    numeric_text_share: float = threshold(0.9, "share of a text column's values parsing as numbers at which it is "
                                                "numbers stored as text (medium)")
    unseen_medium_share: float = threshold(0.05, "share of test rows with a level unseen in training that makes it "
                                                 "medium")
    levels_named: int = budget(5, "unseen levels named in a finding and shown per column")
    max_rows: int = budget(25, "rows shown per table")

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
            name = quoted(trim(c.column, _NAME))
            out.append(Finding(
                id=f"{cid}/type/{c.column}", check=cid, severity=sev,
                title=f"{name} is {c.train_kind} in train but {c.test_kind} in test",
                summary=(f"The {role} {name} has type {c.train_dtype} ({c.train_kind}) in the training "
                         f"data and {c.test_dtype} ({c.test_kind}) in the test data, so the model is evaluated on "
                         "values of a different kind than it learned from."
                         + (f" {pct(c.numeric_text_share)} of its text values parse as numbers."
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
            name = quoted(trim(c.column, _NAME))
            out.append(Finding(
                id=f"{cid}/numeric_text/{c.column}", check=cid, severity=Severity.MEDIUM,
                title=f"{name}: {pct(c.numeric_text_share)} of its text values are numbers",
                summary=(f"The model input {name} is stored as text, yet {pct(c.numeric_text_share)} of its "
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
            name = quoted(trim(u.column, _NAME))
            out.append(Finding(
                id=f"{cid}/unseen_levels/{u.column}", check=cid, severity=sev,
                title=f"{name}: {len(u.levels)} level(s) unseen in training ({pct(u.share)} of test rows)",
                summary=(f"{pct(u.share)} of the test rows ({u.affected}) have a value of {name} that never "
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
            rec: dict[str, Any] = {"column": c.column, "role": m.roles.get(c.column, "unused"),
                                   "test_type": c.test_dtype, "unique_in_test": c.test_unique,
                                   "note": "; ".join(notes), "_order": (c.column not in flagged, i)}
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
class QualityCheck(Check[QualityMeasurement]):
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
    end of the Wilson interval (at ``confidence``, 95%) of their share is at least ``unscored_high``.
    """

    id: ClassVar[str] = "data.quality"
    family = DATA
    order = 2
    title: ClassVar[str] = "Data quality"

    missing_low: float = threshold(0.05, "missing share of a feature (worse split) that is low")
    missing_medium: float = threshold(0.20, "missing share of a feature (worse split) that is medium")
    duplicate_low: float = threshold(0.01, "share of duplicated rows in a split that is low")
    duplicate_medium: float = threshold(0.10, "share of duplicated rows in a split that is medium")
    minority_low: float = threshold(0.10, "share of the rarest class below which the balance is low")
    minority_medium: float = threshold(0.02, "share of the rarest class below which the balance is medium")
    unscored_high: float = threshold(0.05, "share of rows without a finite score (interval's lower end) that is "
                                           "high")
    confidence: float = setting(0.95, "confidence level of the Wilson interval of the unscored share")
    ids_named: int = budget(5, "repeated id values named in a finding")
    max_rows: int = budget(25, "rows shown per table")

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
        te, tr = self._by_column(m.test_profile), self._by_column(m.train_profile)
        return (self._missing(m, te, tr) + self._constant(m, te, tr) + self._duplicates(m)
                + self._infinite(m, te, tr) + self._duplicate_ids(m) + self._unscored(m) + self._label_balance(m))

    def _missing(self, m: QualityMeasurement, te: dict[str, ColumnProfile],
                 tr: dict[str, ColumnProfile]) -> list[Finding]:
        """A model input with missing values, judged on the split where more are missing."""
        cid = self.id
        out: list[Finding] = []
        for col in m.features:
            shares = {"test": te[col].missing_share} | ({"train": tr[col].missing_share} if col in tr else {})
            split, share = max(shares.items(), key=lambda kv: (kv[1], kv[0] == "test"))
            if share <= 0:
                continue
            sev = _severity_at_least(share, ((self.missing_medium, Severity.MEDIUM),
                                             (self.missing_low, Severity.LOW))) or Severity.INFO
            detail = " and ".join(f"{pct(v)} in {k}" for k, v in shares.items())
            empty = [k for k, v in shares.items() if v >= 1.0]
            thr = {Severity.MEDIUM: self.missing_medium, Severity.LOW: self.missing_low}.get(sev, 0.0)
            rule_txt = (f"Rule: {sev.value} because the missing share counted in the {split} data, {pct(share)}, "
                        + (f"is at least {pct(thr)}" if sev != Severity.INFO else "is above 0")
                        + f" (low from {pct(self.missing_low)}, medium from {pct(self.missing_medium)}).")
            name = quoted(trim(col, _NAME))
            out.append(Finding(
                id=f"{cid}/missing/{col}", check=cid, severity=sev,
                title=(f"{name} is entirely missing ({' and '.join(empty)})" if empty
                       else f"{name} is {pct(share)} missing ({split})"),
                summary=(f"The model input {name} has missing values: {detail}. "
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
        return out

    def _constant(self, m: QualityMeasurement, te: dict[str, ColumnProfile],
                  tr: dict[str, ColumnProfile]) -> list[Finding]:
        """A model input with a single value in the training data (the test data without it)."""
        cid = self.id
        out: list[Finding] = []
        base = tr if tr else te
        base_split = "training" if tr else "test"
        for col in m.features:
            p = base.get(col)
            if p is not None and p.constant and p.unique > 0:  # no value at all: reported as missing
                value = p.examples[0] if p.examples else "missing"
                out.append(Finding(
                    id=f"{cid}/constant/{col}", check=cid, severity=Severity.LOW,
                    title=f"{quoted(trim(col, _NAME))} is constant in the {base_split} data",
                    summary=(f"The model input {quoted(trim(col, _NAME))} takes a single value "
                             f"({quoted(trim(value, _NAME))}) in the {base_split} data, "
                             "so the model cannot have learned anything from it."),
                    features=(col,), metrics={"unique_values": p.unique},
                    rule=Rule("unique_values", p.unique, "<=", 1,
                              text=f"Rule: low when a model input has at most one value in the {base_split} data."),
                    remediation=("Drop the column from the model inputs, or find out why it does not vary.",),
                    evidence=("columns",)))
        return out

    def _duplicates(self, m: QualityMeasurement) -> list[Finding]:
        """Rows repeating an earlier row exactly (model inputs and target), per split."""
        cid = self.id
        out: list[Finding] = []
        for split, d in (("test", m.test_duplicates), ("train", m.train_duplicates)):
            if d is None:
                continue
            sev = _severity_at_least(d.share, ((self.duplicate_medium, Severity.MEDIUM),
                                               (self.duplicate_low, Severity.LOW)))
            if sev is None:
                continue
            out.append(Finding(
                id=f"{cid}/duplicates/{split}", check=cid, severity=sev,
                title=f"{pct(d.share)} of {split} rows are duplicates",
                summary=(f"{d.duplicated} of the {d.rows} {split} rows repeat an earlier row exactly (all model inputs "
                         "and the target). Duplicates over-weight some cases"
                         + (" and inflate test metrics." if split == "test" else " in training.")),
                features=(), metrics={"duplicated_rows": d.duplicated, "rows": d.rows, "duplicate_share": d.share},
                rule=Rule("duplicate_share", d.share, ">=",
                          self.duplicate_medium if sev == Severity.MEDIUM else self.duplicate_low,
                          text=(f"Rule: low from {pct(self.duplicate_low)} duplicated rows, medium from "
                                f"{pct(self.duplicate_medium)} (counted on the {split} data).")),
                remediation=("Check the extraction for repeated joins or appends; deduplicate if the rows are not "
                             "genuinely distinct cases.",),
                evidence=()))
        return out

    def _label_balance(self, m: QualityMeasurement) -> list[Finding]:
        """The rarest class of the target, on the split where it is rarest."""
        if m.task != "classification":
            return []
        cands = [(s, b) for s, b in (("test", m.test_labels), ("train", m.train_labels)) if b is not None and b.rows]
        if not cands:
            return []
        split, b = min(cands, key=lambda sb: (sb[1].minority_share, sb[0]))
        sev = _severity_at_least(-b.minority_share, ((-self.minority_medium, Severity.MEDIUM),
                                                     (-self.minority_low, Severity.LOW)), strict=True)
        if sev is None:
            return []
        minority = quoted(trim(b.minority_class, _NAME))
        return [Finding(
            id=f"{self.id}/label_balance", check=self.id, severity=sev,
            title=f"Rarest class {minority} is {pct(b.minority_share)} of {split} rows",
            summary=(f"The target {quoted(trim(m.target, _NAME))} is imbalanced: class {minority} is "
                     f"{b.counts[-1]} of {b.rows} {split} rows ({pct(b.minority_share)}). Accuracy is "
                     "misleading at this balance and metrics for the rare class are uncertain."),
            features=(), metrics={"minority_share": b.minority_share, "minority_count": b.counts[-1]},
            rule=Rule("minority_share", b.minority_share, "<",
                      self.minority_medium if sev == Severity.MEDIUM else self.minority_low,
                      text=(f"Rule: low below {pct(self.minority_low)} of rows in the rarest class, "
                            f"medium below {pct(self.minority_medium)}.")),
            remediation=("Judge the model on AUC, precision/recall of the rare class and calibration, "
                         "with confidence intervals.",
                         "Check the decision threshold against the base rate."),
            evidence=("labels",))]

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
                title=f"{quoted(trim(col, _NAME))} holds infinite values ({detail})",
                summary=(f"The model input {quoted(trim(col, _NAME))} holds +inf or -inf values: {detail} rows. An "
                         "infinite value is not a measurement (an overflow or a division by zero upstream); the model "
                         "scores these rows on an impossible value, and statistics of the column use only its finite "
                         "values. "
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
            examples = ", ".join(f"{quoted(trim(v, _NAME))} ({n} rows)" for v, n in zip(d.values, d.counts))
            rule_txt = (f"Rule: {sev.value} when any id value occurs on more than one {split} row "
                        "(medium in test, low in train).")
            out.append(Finding(
                id=f"{cid}/duplicate_ids/{split}", check=cid, severity=sev,
                title=f"Id column {quoted(trim(d.column, _NAME))}: {d.duplicated} {split} rows share an id",
                summary=(f"{d.duplicated} of the {d.rows} {split} rows ({pct(d.share)}) have an id in "
                         f"{quoted(trim(d.column, _NAME))} that another row also has; most repeated: {examples}. "
                         "Rows named by id in this report are ambiguous, and the same case may be counted more than "
                         "once. " + rule_txt),
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
            lo, hi = wilson_interval(u.count, u.rows, confidence=self.confidence)
            sev = Severity.HIGH if lo >= self.unscored_high else Severity.MEDIUM
            rule_txt = (f"Rule: high when the lower end of the {level(self.confidence)} Wilson interval of the share "
                        f"of rows without a score, [{pct(lo)}, {pct(hi)}], is at least {pct(self.unscored_high)}; "
                        "medium for any such row.")
            cause = (f" The rows are set apart by {_list(u.set_apart_by)}: their values there never occur on the "
                     "scored rows." if u.set_apart_by else "")
            ids = (f" Ids: {', '.join(quoted(trim(i, _NAME)) for i in u.ids[: self.ids_named])}"
                   + (" and more." if len(u.ids) > self.ids_named else ".")) if u.ids else ""
            out.append(Finding(
                id=f"{cid}/unscored/{u.split}", check=cid, severity=sev,
                title=f"The model returned no score for {u.count} {u.split} rows ({pct(u.share)})",
                summary=(f"The model's output is NaN or infinite on {u.count} of the {u.rows} {u.split} rows "
                         f"({pct(u.share)}). These rows were left out of every check, so the audit's metrics "
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
            rec: dict[str, Any] = {"column": p.column, "role": m.roles.get(p.column, "unused"), "type": p.dtype,
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
class LeakageCheck(Check[LeakageMeasurement]):
    """Features that give the target away.

    Measures (a) each feature's out-of-sample power alone: a depth-``max_depth`` tree fitted on
    train and scored on test (AUC of the positive class; for k > 2 classes the tree predicts the k
    class probabilities and the power is the macro one-vs-rest AUC, the mean over classes of each
    class-vs-rest AUC; or R²), or ``cv_folds``-fold CV on test without train; (b) identifier-like
    columns (integers or text unique in nearly every row; integers must also be a near-running
    number unless named like an id); (c) test rows whose inputs and target also appear in train,
    beyond the duplication found within train itself.

    Severity: a feature whose AUC's lower bound (Hanley-McNeil, at ``confidence``, 95%) is >=
    ``auc_high`` (R², point estimate, >= ``r2_high``) is ``high``, >= ``auc_medium`` (``r2_medium``)
    ``medium``; an id-like input is ``medium``; overlap beyond chance is ``low`` when any,
    ``medium`` from ``overlap_medium``, ``high`` from ``overlap_high``.
    """

    id: ClassVar[str] = "data.leakage"
    family = DATA
    order = 3
    title: ClassVar[str] = "Target leakage"

    auc_high: float = threshold(0.98, "single-feature AUC (interval's lower end) that is high")
    auc_medium: float = threshold(0.93, "single-feature AUC (interval's lower end) that is medium")
    r2_high: float = threshold(0.95, "single-feature R² (point estimate) that is high")
    r2_medium: float = threshold(0.85, "single-feature R² (point estimate) that is medium")
    id_unique_share: float = threshold(0.95, "share of distinct values at which a column is an identifier")
    id_named_unique_share: float = threshold(0.5, "share of distinct values at which a column named like an id "
                                                  "(id, key, uuid, index) is an identifier")
    id_min_density: float = threshold(0.5, "integers: distinct values / (max - min + 1) from which they are a "
                                           "running number")
    overlap_medium: float = threshold(0.05, "share of test rows also in training, beyond chance, that is medium")
    overlap_high: float = threshold(0.20, "share of test rows also in training, beyond chance, that is high")
    confidence: float = setting(0.95, "confidence level of the single-feature power intervals")
    max_depth: int = setting(3, "depth of the single-feature decision trees")
    cv_folds: int = setting(5, "folds of the cross-validation on test when there is no training data")
    sample_rows: int = budget(50_000, "rows used to fit and score the single-feature models, per split")
    figure_top: int = budget(15, "features shown in the single-feature power chart")
    max_rows: int = budget(25, "rows shown per table")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        return unknown_class_reason(ctx)

    def measure(self, ctx: AuditContext) -> LeakageMeasurement:
        clf = ctx.is_classification
        multi = ctx.is_multiclass
        rng = ctx.rng(self.id)
        if multi:  # k classes: class indices, the model's k-class probabilities
            y_test = ctx.y_index("test")
            model_value = model_power(y_test, np.asarray(ctx.predictions("test").proba, dtype=float), task=ctx.task)
        else:
            y_test = ctx.y_task("test")
            model_value = model_power(y_test, ctx.predictions("test").score, task=ctx.task)
        te_idx = sample_positions(len(y_test), self.sample_rows, rng)
        X_test = ctx.X("test").iloc[te_idx]
        X_train: pd.DataFrame | None = None
        yt: np.ndarray | None = None
        if ctx.has_train:
            y_train = ctx.y_classes("train")
            tr_idx = sample_positions(len(y_train), self.sample_rows, rng)
            X_train, yt = ctx.X("train").iloc[tr_idx], y_train[tr_idx]
        seed = int(rng.integers(0, 2**31 - 1))
        powers = single_feature_power(X_test, y_test[te_idx], task=ctx.task, X_train=X_train, y_train=yt,
                                      categorical=ctx.categorical, max_depth=self.max_depth,
                                      cv_folds=self.cv_folds, seed=seed, n_classes=ctx.n_classes if multi else 2,
                                      confidence=self.confidence)
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
            conf = level(self.confidence)
            bound = (f"the lower end of the {conf} interval" if m.metric != "r2"
                     else f"the point estimate ({conf} interval")
            rule_txt = (f"Rule: {sev.value} when {bound} [{fixed(p.low, 3)}, {fixed(p.high, 3)}]"
                        + (")" if m.metric == "r2" else "")
                        + f" of the feature's held-out {label} is at least {thr:g} "
                        f"(high from {levels[0][0]:g}, medium from {levels[1][0]:g}).")
            name = quoted(trim(p.feature, _NAME))
            out.append(Finding(
                id=f"{cid}/power/{p.feature}", check=cid, severity=sev,
                title=f"{name} alone predicts the target: {label} {p.value:.3f}",
                summary=(f"A small decision tree on {name} alone reaches {label} {p.value:.3f} ({conf} interval "
                         f"{fixed(p.low, 3)} to {fixed(p.high, 3)}) on held-out data ({p.method}); the model itself "
                         f"reaches {label} {fixed(m.model_value, 3)} on the test data. "
                         "Verify when and how it is recorded: a single input this predictive may be recorded "
                         "after the outcome, derived from the target or a proxy for it, or it may be a strong, "
                         f"legitimate predictor known at decision time; the audit cannot tell which. {rule_txt}"),
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
            dens = f", spanning a near-continuous range (density {pct(s.density)})" if math.isfinite(s.density) else ""
            out.append(Finding(
                id=f"{cid}/id_like/{s.feature}", check=cid, severity=Severity.MEDIUM,
                title=f"{quoted(trim(s.feature, _NAME))} looks like an identifier ({pct(s.unique_share)} unique)",
                summary=(f"The model input {quoted(trim(s.feature, _NAME))} ({s.value_kind}) has a distinct value in "
                         f"{pct(s.unique_share)} of rows{dens}"
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
                title=f"{pct(ov.share)} of test rows also appear in the training data",
                summary=(f"{ov.shared} of the {ov.rows} test rows ({pct(ov.share)}) match a training row exactly on "
                         f"every model input and the target. Within the training data itself, {pct(ov.natural_share)}"
                         " of rows have an exact twin, the level expected by chance; "
                         + (f"the excess of {pct(ov.excess_share)} means the test data is partly training data, "
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

    def _level(self, p: FeaturePower, metric: str) -> str:
        """The severity a feature's power gets, as text ('' when none)."""
        sev = _severity_at_least(_power_bound(p), self._power_levels(metric))
        return sev.value if sev else ""

    def _figure(self, m: LeakageMeasurement, shown: Sequence[FeaturePower]) -> Figure:
        label = _POWER_LABELS[m.metric]
        data = {"powers": tuple(shown), "levels": [self._level(p, m.metric) for p in shown],
                "thresholds": [(t, sev.value) for t, sev in self._power_levels(m.metric)], "label": label}
        return Figure("single_feature_power_chart", f"Single-feature {label}", plot="data.power_figure", data=data,
                      caption=f"Each feature alone (top {len(shown)}); lines mark the medium and high thresholds.")

    def evidence(self, m: LeakageMeasurement) -> Evidence:
        label = _POWER_LABELS[m.metric]
        order = sorted(m.powers, key=lambda p: (-_finite_or(p.value, -math.inf), p.feature))
        rec = [{"feature": p.feature, "kind": p.kind, m.metric: p.value, "ci_low": p.low, "ci_high": p.high,
                "level": self._level(p, m.metric)} for p in order]
        tables = [Table.from_records("single_feature_power", f"Single-feature {label} (held out)", rec,
                                     columns=["feature", "kind", m.metric, "ci_low", "ci_high", "level"],
                                     max_rows=self.max_rows,
                                     caption=f"Depth-{self.max_depth} tree on one feature, {m.method}; "
                                             f"model {label} {fixed(m.model_value, 3)}.")]
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
                 "rows, unseen levels treated as missing. AUC severity from the lower end of its "
                 f"{level(self.confidence)} Hanley-McNeil interval; R² severity from the point estimate (interval: "
                 "bootstrap of the held-out rows)."]
        if m.metric == "auc_ovr_macro":
            notes.append("k-class target: each single-feature tree predicts the probability of every class; its "
                         "power is the macro one-vs-rest AUC (mean over classes of class-vs-rest AUC; the interval's "
                         "half-width is the mean of the per-class Hanley-McNeil half-widths, an upper bound). "
                         "Categorical levels are ordered by their most frequent class, then its share.")
        figures = [self._figure(m, order[: self.figure_top])] if order else []
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
class DriftCheck(Check[DriftMeasurement]):
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

    alpha: float = threshold(0.01, "significance level, Bonferroni-corrected over the columns tested")
    psi_medium: float = threshold(0.10, "PSI of a significant shift that is medium")
    psi_high: float = threshold(0.25, "PSI of a significant shift that is high")
    n_bins: int = setting(10, "quantile bins of the training data for a numeric column")
    epsilon: float = setting(1e-4, "floor of a bin's share in the PSI and distances (an empty bin)")
    figure_top: int = budget(15, "columns shown in the PSI chart")
    max_rows: int = budget(25, "rows shown per table")

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
                detail = (f"KS statistic {num(d.ks_statistic, 3)} ({p_value(d.p_value)}); the mean moved from "
                          f"{num(d.mean_reference, 4)} to {num(d.mean_current, 4)}, a Wasserstein distance of "
                          f"{num(d.wasserstein_norm, 3)} training standard deviations")
                if d.missing_current != d.missing_reference:
                    detail += f"; missing {pct(d.missing_reference)} → {pct(d.missing_current)}"
            else:
                detail = f"chi-square {p_value(d.p_value)}; {_shift_text(d)}"
            metrics = {"psi": d.psi, "js_distance": d.js_distance, "p_value": d.p_value,
                       "alpha_corrected": a}
            if d.kind == "numeric":
                metrics.update({"ks_statistic": d.ks_statistic, "wasserstein_norm": d.wasserstein_norm,
                                "mean_train": d.mean_reference, "mean_test": d.mean_current})
            name = quoted(trim(d.feature, _NAME))
            out.append(Finding(
                id=f"{cid}/{d.feature}", check=cid, severity=sev,
                title=("Target " if is_target else "") + f"{name} drifted: PSI {d.psi:.2f}",
                summary=(f"{what} {name} is distributed differently in the test data than in training: "
                         f"PSI {d.psi:.2f} (medium from {self.psi_medium:g}, high from {self.psi_high:g}), "
                         f"Jensen–Shannon distance {num(d.js_distance, 3)}, {detail}."
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
        cols = sorted(m.tested, key=lambda d: (-_finite_or(d.psi, -math.inf), d.feature))[: self.figure_top]
        levels = [getattr(self.severity(d, a), "value", "") for d in cols]
        return Figure("psi_chart", "Population stability index by column", plot="data.psi_figure",
                      data={"columns": tuple(cols), "levels": levels, "target": m.target,
                            "psi_medium": self.psi_medium, "psi_high": self.psi_high},
                      caption=f"Top {len(cols)} columns by PSI. Coloured bars are significant at the corrected "
                              "alpha and above a threshold.")


def _shift_text(d: FeatureDrift) -> str:
    """The level whose share moved most, in words."""
    b = d.bins
    if b is None or not len(b.labels):
        return ""
    diff = b.current_share - b.reference_share
    i = int(np.argmax(np.abs(diff)))
    return (f"level {quoted(trim(b.labels[i], _NAME))} went from {pct(b.reference_share[i])} of training rows to "
            f"{pct(b.current_share[i])} of test rows")
