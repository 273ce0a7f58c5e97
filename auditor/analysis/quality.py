"""Column profiles, schema comparison, duplicated and shared rows, label balance.

Pure numerics on DataFrames; nothing here knows about severities. Column names are treated
as opaque text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# ---- type kinds --------------------------------------------------------------------------------

NUMERIC, TEXT, BOOLEAN, DATETIME, OTHER = "numeric", "text", "boolean", "datetime", "other"


def type_kind(values: pd.Series) -> str:
    """A coarse type family: numeric, text, boolean, datetime or other (pandas 3 safe)."""
    if pd.api.types.is_bool_dtype(values):
        return BOOLEAN
    if pd.api.types.is_numeric_dtype(values):
        return NUMERIC
    if pd.api.types.is_datetime64_any_dtype(values):
        return DATETIME
    if pd.api.types.is_string_dtype(values) or isinstance(values.dtype, pd.CategoricalDtype):
        return TEXT
    return OTHER


def numeric_parse_share(values: pd.Series) -> float:
    """Share of the non-missing values that parse as numbers (0 when there are none).

    Text with a leading zero before a digit ("007", "02134") is a code, not a number.
    """
    v = values.dropna()
    if v.empty:
        return 0.0
    if pd.api.types.is_numeric_dtype(v):
        return 1.0
    text = v.astype(str).str.strip()
    parsed = pd.to_numeric(text, errors="coerce").notna().to_numpy()
    code = text.str.match(r"^[+-]?0\d").to_numpy(dtype=bool)
    return float((parsed & ~code).mean())


_PLAIN_NUMBER = r"[+-]?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?"  # no leading zero: "007" is a code


def level_text(values: Any) -> pd.Series:
    """Values as level text with numbers compared by value: 1, 1.0 and "1.0" written by two
    different files all read ``"1"`` (so a test target stored as 1.0/0.0 matches a training
    target stored as 1/0). Other text, including codes with a leading zero ("007"), is kept as
    written; missing stays missing."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_bool_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_integer_dtype(s):
        return s.astype("string")
    if pd.api.types.is_numeric_dtype(s):
        arr = s.to_numpy(dtype=float, na_value=np.nan)
        out = s.astype("string")
        ok = np.isfinite(arr)
        if ok.any():
            out[ok] = [_float_text(v) for v in arr[ok]]
        return out
    if s.dtype == object:
        return s.map(_number_text, na_action="ignore").astype("string")
    out = s.astype("string")
    number = out.str.fullmatch(_PLAIN_NUMBER).fillna(False).to_numpy(dtype=bool)
    if number.any():
        out[number] = [_float_text(float(v)) for v in out[number]]
    return out


def _float_text(v: float) -> str:
    """A finite number as text: whole numbers without a decimal part (1.0 -> "1")."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 2.0**53 else str(float(v))


def _number_text(v: Any) -> Any:
    """One value as level text (see ``level_text``)."""
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return _float_text(float(v)) if np.isfinite(v) else str(v)
    text = str(v)
    import re

    return _float_text(float(text)) if re.fullmatch(_PLAIN_NUMBER, text) else text


def trim(text: Any, width: int = 24) -> str:
    s = str(text).replace("\n", " ").replace("\r", " ")
    return s if len(s) <= width else s[: width - 1] + "…"


# ---- column profile ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnProfile:
    """One column of one table."""

    column: str
    dtype: str
    kind: str
    rows: int
    missing: int
    unique: int  # distinct non-missing values
    examples: tuple[str, ...]  # the most frequent values, trimmed
    infinite: int = 0  # values that are +inf or -inf (numeric columns)

    @property
    def missing_share(self) -> float:
        return self.missing / self.rows if self.rows else 0.0

    @property
    def constant(self) -> bool:
        return self.unique <= 1


def profile_column(values: pd.Series, *, column: str, n_examples: int = 3, width: int = 24) -> ColumnProfile:
    counts = values.value_counts(dropna=True, sort=False)
    if len(counts):
        order = pd.DataFrame({"n": counts.to_numpy(), "s": counts.index.astype(str)})
        order = order.sort_values(["n", "s"], ascending=[False, True], kind="mergesort")
        examples = tuple(trim(s, width) for s in order["s"].head(n_examples))
    else:
        examples = ()
    infinite = 0
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        infinite = int(np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).sum())
    return ColumnProfile(column=column, dtype=str(values.dtype), kind=type_kind(values), rows=int(len(values)),
                         missing=int(values.isna().sum()), unique=int(len(counts)), examples=examples,
                         infinite=infinite)


def profile_frame(df: pd.DataFrame, *, columns: Sequence[str] | None = None, n_examples: int = 3,
                  width: int = 24) -> tuple[ColumnProfile, ...]:
    """A profile per column (in the given order)."""
    cols = list(df.columns) if columns is None else list(columns)
    return tuple(profile_column(df[c], column=c, n_examples=n_examples, width=width) for c in cols)


# ---- rows --------------------------------------------------------------------------------------

def row_hashes(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """A 64-bit hash per row of ``columns``, comparable across frames whatever the numeric dtype
    (numbers hashed as float64, everything else as text; missing values hash alike)."""
    if len(df) == 0:
        return np.empty(0, dtype=np.uint64)
    canon = {}
    for i, c in enumerate(columns):
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            canon[i] = s.astype("float64").reset_index(drop=True)
        else:
            canon[i] = level_text(s).reset_index(drop=True)
    frame = pd.DataFrame(canon)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


@dataclass(frozen=True)
class Duplicates:
    rows: int
    duplicated: int  # rows identical to an earlier row

    @property
    def share(self) -> float:
        return self.duplicated / self.rows if self.rows else 0.0


def duplicated_rows(df: pd.DataFrame, columns: Sequence[str]) -> Duplicates:
    """Rows that repeat an earlier row of the same frame (on ``columns``)."""
    h = row_hashes(df, columns)
    return Duplicates(rows=int(h.size), duplicated=int(pd.Series(h).duplicated(keep="first").sum()))


@dataclass(frozen=True)
class DuplicateIds:
    """Rows of one frame whose id value is shared with another row (missing ids not counted)."""

    column: str
    rows: int
    duplicated: int  # rows whose id occurs more than once
    values: tuple[str, ...]  # the most repeated ids, most repeated first
    counts: tuple[int, ...]

    @property
    def share(self) -> float:
        return self.duplicated / self.rows if self.rows else 0.0


def duplicated_ids(values: pd.Series, *, column: str = "", n_examples: int = 5) -> DuplicateIds:
    """Id values that occur on more than one row, compared by value (1 and 1.0 are one id)."""
    text = level_text(values).dropna()
    counts = text.value_counts()
    counts = counts[counts > 1]
    order = pd.DataFrame({"n": counts.to_numpy(), "s": counts.index.astype(str)}).sort_values(
        ["n", "s"], ascending=[False, True], kind="mergesort").head(n_examples)
    return DuplicateIds(column=column, rows=int(len(values)), duplicated=int(counts.sum()),
                        values=tuple(order["s"]), counts=tuple(int(n) for n in order["n"]))


@dataclass(frozen=True)
class Overlap:
    """Rows of the current frame whose values also occur in the reference frame.

    ``natural_share`` is the chance level: the share of reference rows that have an identical
    other row within the reference itself (high for data of a few coarse columns).
    """

    rows: int
    shared: int
    natural_share: float

    @property
    def share(self) -> float:
        return self.shared / self.rows if self.rows else 0.0

    @property
    def excess_share(self) -> float:
        return max(0.0, self.share - self.natural_share)


def row_overlap(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> Overlap:
    """How many current rows also appear (on ``columns``) in the reference."""
    rh = row_hashes(reference, columns)
    ch = row_hashes(current, columns)
    shared = int(np.isin(ch, rh).sum())
    natural = float(pd.Series(rh).duplicated(keep=False).mean()) if rh.size else 0.0
    return Overlap(rows=int(ch.size), shared=shared, natural_share=natural)


# ---- schema ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnSchema:
    """One column compared between train (reference) and test (current)."""

    column: str
    test_dtype: str | None
    train_dtype: str | None
    test_kind: str | None
    train_kind: str | None
    test_unique: int
    numeric_text_share: float  # for text columns: share of values that parse as numbers (max over splits)

    @property
    def kind_mismatch(self) -> bool:
        return self.test_kind is not None and self.train_kind is not None and self.test_kind != self.train_kind


@dataclass(frozen=True)
class UnseenLevels:
    """Levels of a categorical column present in the test data but never in the train data."""

    column: str
    levels: tuple[str, ...]  # most frequent first
    counts: tuple[int, ...]
    rows: int  # test rows

    @property
    def affected(self) -> int:
        return int(sum(self.counts))

    @property
    def share(self) -> float:
        return self.affected / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class SchemaComparison:
    columns: tuple[ColumnSchema, ...]  # every column of either frame: test order, then train-only
    only_in_test: tuple[str, ...]
    only_in_train: tuple[str, ...]
    unseen: tuple[UnseenLevels, ...]  # only columns with at least one unseen level


def compare_schema(test: pd.DataFrame, train: pd.DataFrame | None, *,
                   categorical: Sequence[str] = ()) -> SchemaComparison:
    """Columns and type kinds of test against train; unseen levels of ``categorical`` columns."""
    test_cols = list(test.columns)
    train_cols = list(train.columns) if train is not None else []
    train_set, test_set = set(train_cols), set(test_cols)
    ordered = test_cols + [c for c in train_cols if c not in test_set]
    cols = []
    for c in ordered:
        te = test[c] if c in test_set else None
        tr = train[c] if train is not None and c in train_set else None
        text_shares = [numeric_parse_share(s) for s in (te, tr) if s is not None and type_kind(s) == TEXT]
        cols.append(ColumnSchema(
            column=c,
            test_dtype=str(te.dtype) if te is not None else None,
            train_dtype=str(tr.dtype) if tr is not None else None,
            test_kind=type_kind(te) if te is not None else None,
            train_kind=type_kind(tr) if tr is not None else None,
            test_unique=int(te.nunique(dropna=True)) if te is not None else 0,
            numeric_text_share=max(text_shares) if text_shares else 0.0,
        ))
    unseen = []
    if train is not None:
        for c in categorical:
            if c not in test_set or c not in train_set or type_kind(test[c]) != type_kind(train[c]):
                continue
            lv = unseen_levels(train[c], test[c], column=c)
            if lv.levels:
                unseen.append(lv)
    return SchemaComparison(
        columns=tuple(cols),
        only_in_test=tuple(c for c in test_cols if c not in train_set) if train is not None else (),
        only_in_train=tuple(c for c in train_cols if c not in test_set),
        unseen=tuple(unseen),
    )


def unseen_levels(reference: pd.Series, current: pd.Series, *, column: str = "") -> UnseenLevels:
    """Levels (compared as text, numbers by value) of ``current`` that never occur in ``reference``."""
    ref = set(level_text(reference).dropna().astype(str).unique().tolist())
    cur = level_text(current).dropna().astype(str)
    new = cur[~cur.isin(ref)]
    counts = new.value_counts()
    order = pd.DataFrame({"n": counts.to_numpy(), "s": counts.index.astype(str)}).sort_values(
        ["n", "s"], ascending=[False, True], kind="mergesort")
    return UnseenLevels(column=column, levels=tuple(order["s"]), counts=tuple(int(n) for n in order["n"]),
                        rows=int(len(current)))


# ---- labels ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LabelBalance:
    """Class counts of a target, most frequent first."""

    classes: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def rows(self) -> int:
        return int(sum(self.counts))

    @property
    def minority_class(self) -> str:
        return self.classes[-1] if self.classes else ""

    @property
    def minority_share(self) -> float:
        return self.counts[-1] / self.rows if self.rows else float("nan")


def label_balance(target: pd.Series) -> LabelBalance:
    """Class counts, labels compared by value (1 and 1.0 are one class)."""
    counts = level_text(target).dropna().astype(str).value_counts()
    order = pd.DataFrame({"n": counts.to_numpy(), "s": counts.index.astype(str)}).sort_values(
        ["n", "s"], ascending=[False, True], kind="mergesort")
    return LabelBalance(classes=tuple(order["s"]), counts=tuple(int(n) for n in order["n"]))
