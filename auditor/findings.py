"""Core result types: severities, findings, evidence and per-check results.

Everything here holds plain data only (strings, numbers, tuples), never a live model
or DataFrame, so a result can be serialised, compared and rendered without the inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any


class Severity(str, Enum):
    """How much a finding matters to a validator. ``high`` blocks sign-off."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"high": 3, "medium": 2, "low": 1, "info": 0}[self.value]

    @classmethod
    def ordered(cls) -> tuple[Severity, ...]:
        return (cls.HIGH, cls.MEDIUM, cls.LOW, cls.INFO)


class Status(str, Enum):
    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"


def clean_number(value: Any) -> Any:
    """Plain JSON-friendly scalar: numpy scalars to Python, NaN/inf to None."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    return str(value)


def clean_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): clean_number(v) for k, v in values.items()}


@dataclass(frozen=True)
class Table:
    """A small table of evidence. ``omitted`` counts rows left out to keep reports short."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    caption: str = ""
    omitted: int = 0

    @classmethod
    def from_records(
        cls,
        name: str,
        title: str,
        records: Sequence[Mapping[str, Any]],
        *,
        columns: Sequence[str] | None = None,
        caption: str = "",
        max_rows: int | None = None,
    ) -> Table:
        cols = tuple(columns) if columns is not None else (tuple(records[0].keys()) if records else ())
        kept = records if max_rows is None else records[:max_rows]
        rows = tuple(tuple(clean_number(r.get(c)) for c in cols) for r in kept)
        return cls(name=name, title=title, columns=cols, rows=rows, caption=caption,
                   omitted=len(records) - len(kept))

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


@dataclass(frozen=True)
class Figure:
    """A figure to draw, not a drawing: ``plot`` names a function of ``auditor.plots`` as
    ``"<module>.<function>"`` (``"fairness.air_figure"``), ``data`` holds its keyword arguments
    (plain values and frozen analysis results). The report draws it when a format needs figures
    (html, pdf), so a JSON-only audit never imports matplotlib."""

    name: str
    title: str
    plot: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    caption: str = ""


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._/=&:+-]+")


def safe_id(text: str) -> str:
    """A URL-safe finding id (contract 1.1): every run of other characters becomes ``_``."""
    return _ID_UNSAFE.sub("_", str(text)).strip("_") or "finding"


@dataclass(frozen=True)
class Rule:
    """What set a finding's severity: the measured quantity, the comparison, the threshold(s) and
    the uncertainty (interval or p-value) the rule used. ``text`` says it in one sentence."""

    metric: str
    value: Any
    operator: str
    threshold: Any
    interval: tuple[Any, Any] | None = None
    p_value: float | None = None
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        threshold = (list(map(clean_number, self.threshold)) if isinstance(self.threshold, (tuple, list))
                     else clean_number(self.threshold))
        out: dict[str, Any] = {"metric": self.metric, "value": clean_number(self.value), "operator": self.operator,
                               "threshold": threshold}
        if self.interval is not None:
            out["interval"] = [clean_number(self.interval[0]), clean_number(self.interval[1])]
        if self.p_value is not None:
            out["p_value"] = clean_number(self.p_value)
        if self.text:
            out["text"] = self.text
        return out


@dataclass(frozen=True)
class Waiver:
    """A recorded risk acceptance (``[[waiver]]`` in the config): the findings it matches (an id or a
    glob such as ``security.model_extraction/*``), why, who approved it and until when it is in force
    (the expiry day included)."""

    match: str
    reason: str
    approved_by: str
    expires: date

    def in_force(self, on: date) -> bool:
        return on <= self.expires

    def to_json(self) -> dict[str, str]:
        return {"match": self.match, "reason": self.reason, "approved_by": self.approved_by,
                "expires": self.expires.isoformat()}


@dataclass(frozen=True)
class Finding:
    """One judged result: what is wrong (or notable), how bad, and what to do."""

    id: str
    check: str
    severity: Severity
    title: str
    summary: str
    features: tuple[str, ...] = ()
    groups: tuple[tuple[str, str], ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    remediation: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # names of tables/figures of the same check
    rule: Rule | None = None  # what set the severity (contract 1.1 ``rule``)
    status: str = "open"  # open | accepted (waived)
    waiver: Waiver | None = None  # the waiver in force that accepted it (status "accepted")

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", safe_id(self.id))
        # accept any sequence from checks, store immutable tuples of plain strings
        object.__setattr__(self, "features", tuple(str(f) for f in self.features))
        object.__setattr__(self, "remediation", tuple(self.remediation))
        object.__setattr__(self, "evidence", tuple(self.evidence))
        object.__setattr__(self, "groups", tuple((str(c), str(v)) for c, v in self.groups))
        object.__setattr__(self, "severity", Severity(self.severity))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "check": self.check,
            "severity": self.severity.value,
            "title": self.title,
            "summary": self.summary,
            "features": list(self.features),
        }
        if self.groups:
            out["groups"] = [{"column": c, "value": v} for c, v in self.groups]
        out["metrics"] = clean_mapping(self.metrics)
        out["remediation"] = list(self.remediation)
        out["status"] = self.status
        if self.waiver is not None:
            out["waiver"] = self.waiver.to_json()
        if self.rule is not None:
            out["rule"] = self.rule.to_json()
        if self.evidence:
            out["evidence"] = list(self.evidence)
        return out


@dataclass(frozen=True)
class Evidence:
    """What a check shows besides its findings: headline metrics, tables, figures, notes."""

    metrics: Mapping[str, Any] = field(default_factory=dict)
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. the sample used, method details


@dataclass(frozen=True)
class CheckResult:
    """The outcome of running one check id."""

    id: str
    title: str
    family: str
    status: Status
    duration_s: float = 0.0
    reason: str = ""  # why skipped
    error: str = ""  # why it failed
    evidence: Evidence = field(default_factory=Evidence)
    findings: tuple[Finding, ...] = ()
    family_title: str = ""  # the report chapter this check belongs to

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status.value,
                               "duration_s": round(float(self.duration_s), 3)}
        if self.status is Status.SKIPPED:
            out["reason"] = self.reason
        if self.status is Status.ERROR:
            out["error"] = self.error
        if self.status is Status.OK:
            out["metrics"] = clean_mapping(self.evidence.metrics)
            out["tables"] = {t.name: t.records() for t in self.evidence.tables}
            if self.evidence.notes:
                out["notes"] = list(self.evidence.notes)
        return out


def severity_counts(findings: Sequence[Finding]) -> dict[str, int]:
    counts = {s.value: 0 for s in Severity.ordered()}
    for f in findings:
        counts[f.severity.value] += 1
    return counts


def sort_findings(findings: Sequence[Finding]) -> list[Finding]:
    """Most severe first, then by check and id: a stable, reportable order."""
    return sorted(findings, key=lambda f: (-f.severity.rank, f.check, f.id))
