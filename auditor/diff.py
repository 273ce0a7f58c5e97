"""Comparing two audits: new, resolved and changed findings, check status changes, headline-metric deltas.

Works on findings.json documents only (plain data), so an audit written by an earlier auditor
version, or on another machine, compares with this one. ``load_snapshot`` reads a report folder or a
findings.json file; ``compare(old, new)`` returns an ``AuditDiff``; ``AuditDiff.gate(level)`` lists
the new or worsened open findings at or above a gate level (``auditor diff`` exits 1 on any).

Findings are matched by id (ids are stable across model versions for the same defect). A finding of
a check that did not run in the newer audit (skipped, in error or absent) is *not rechecked* rather
than resolved: its absence says nothing about the defect.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AuditInputError

SEVERITY_RANK = {"high": 3, "medium": 2, "low": 1, "info": 0}
FINDING_STATUSES = ("open", "accepted")
GATE_LEVELS = ("high", "medium", "low", "none")
INTERVAL_SUFFIXES = (("_ci_low", "_ci_high"), ("_low", "_high"))  # metric X and its interval X<lo>, X<hi>
RELATIVE_TOLERANCE = 1e-12  # a metric moved when it changed by more than float noise


class DiffInputError(AuditInputError):
    """A findings.json that cannot be read or is not an audit result (exit 2, one line)."""


@dataclass(frozen=True)
class FindingState:
    """What the comparison needs of a finding: identity, severity, status and title."""

    id: str
    check: str
    severity: str
    status: str
    title: str

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.severity]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "check": self.check, "severity": self.severity, "status": self.status,
                "title": self.title}


@dataclass(frozen=True)
class AuditSnapshot:
    """One audit as read from its findings.json: who it is, how each check ended, metrics, findings."""

    source: str  # the file it was read from, or a label
    name: str
    started_at: str
    model_sha256: str
    checks: Mapping[str, str]  # check id -> ok | error | skipped
    metrics: Mapping[str, Mapping[str, Any]]  # check id -> its metrics (checks that ran)
    findings: Mapping[str, FindingState]  # finding id -> finding, in the document's order


@dataclass(frozen=True)
class FindingChange:
    """A finding in both audits whose severity or status differs."""

    before: FindingState
    after: FindingState

    @property
    def worse(self) -> bool:
        """More severe now, or no longer accepted (it counts towards the gate again)."""
        return self.after.rank > self.before.rank or (self.before.status == "accepted"
                                                      and self.after.status == "open")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.after.id, "check": self.after.check, "title": self.after.title,
                "before": {"severity": self.before.severity, "status": self.before.status},
                "after": {"severity": self.after.severity, "status": self.after.status},
                "worse": self.worse}


@dataclass(frozen=True)
class CheckChange:
    id: str
    before: str  # ok | error | skipped | absent
    after: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class MetricDelta:
    """A headline metric (one a check reports with an interval) in both audits."""

    check: str
    metric: str
    before: float
    after: float
    before_interval: tuple[float, float] | None
    after_interval: tuple[float, float] | None

    @property
    def delta(self) -> float:
        return self.after - self.before

    @property
    def moved(self) -> bool:
        return abs(self.delta) > RELATIVE_TOLERANCE * max(1.0, abs(self.before), abs(self.after))

    @property
    def intervals_overlap(self) -> bool | None:
        """Whether the two intervals overlap (the change may be noise); None unless both have one."""
        if self.before_interval is None or self.after_interval is None:
            return None
        return self.before_interval[0] <= self.after_interval[1] and self.after_interval[0] <= self.before_interval[1]

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "metric": self.metric, "before": self.before, "after": self.after,
                "delta": self.delta,
                "before_interval": list(self.before_interval) if self.before_interval else None,
                "after_interval": list(self.after_interval) if self.after_interval else None,
                "intervals_overlap": self.intervals_overlap}


@dataclass(frozen=True)
class AuditDiff:
    """The comparison of an older audit with a newer one. Findings lists are in report order."""

    old: AuditSnapshot
    new: AuditSnapshot
    added: tuple[FindingState, ...]  # in the newer audit only
    resolved: tuple[FindingState, ...]  # gone, and their check ran in the newer audit
    not_rechecked: tuple[FindingState, ...]  # gone because their check did not run in the newer audit
    changed: tuple[FindingChange, ...]  # severity or status differs
    unchanged: int  # findings in both with the same severity and status
    checks: tuple[CheckChange, ...]  # checks whose status differs
    metrics: tuple[MetricDelta, ...]  # every headline metric in both audits, moved or not

    @property
    def moved_metrics(self) -> tuple[MetricDelta, ...]:
        return tuple(m for m in self.metrics if m.moved)

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.resolved or self.not_rechecked or self.changed or self.checks
                    or self.moved_metrics)

    def gate(self, level: str) -> list[FindingState]:
        """New or worsened open findings at or above ``level`` (high | medium | low | none)."""
        if level not in GATE_LEVELS:
            raise ValueError(f"gate level must be one of {', '.join(GATE_LEVELS)}; got {level!r}")
        if level == "none":
            return []
        floor = SEVERITY_RANK[level]
        candidates = [*self.added, *(c.after for c in self.changed if c.worse)]
        return sort_states(f for f in candidates if f.status == "open" and f.rank >= floor)

    def to_json(self) -> dict[str, Any]:
        """The ``diff`` object of findings.json (contract 1.1: ``new``, ``resolved``, ``changed``)."""
        return {
            "baseline": {"path": self.old.source, "name": self.old.name, "started_at": self.old.started_at,
                         "model_sha256": self.old.model_sha256},
            "new": [f.id for f in self.added],
            "resolved": [f.id for f in self.resolved],
            "changed": [c.to_json() for c in self.changed],
            "not_rechecked": [f.id for f in self.not_rechecked],
            "unchanged": self.unchanged,
            "checks": [c.to_json() for c in self.checks],
            "metrics": [m.to_json() for m in self.metrics],
        }


def sort_states(findings: Any) -> list[FindingState]:
    """Most severe first, then by check and id (the order of findings.json)."""
    return sorted(findings, key=lambda f: (-f.rank, f.check, f.id))


# ---- reading ----------------------------------------------------------------------------------

def load_snapshot(path: str | Path) -> AuditSnapshot:
    """Read a report folder (its findings.json) or a findings.json file. Raises DiffInputError."""
    p = Path(path)
    if p.is_dir():
        p = p / "findings.json"
    if not p.is_file():
        raise DiffInputError(f"no findings.json at {path}" if Path(path).is_dir() else f"file not found: {path}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DiffInputError(f"{p} is not a findings.json (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise DiffInputError(f"{p} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except OSError as exc:
        raise DiffInputError(f"cannot read {p}: {exc.strerror or type(exc).__name__}") from None
    return snapshot(doc, source=str(p))


def snapshot(doc: Any, *, source: str = "") -> AuditSnapshot:
    """An audit's findings.json document as a snapshot; raises DiffInputError naming what is wrong."""
    where = source or "the document"
    if not isinstance(doc, Mapping) or not isinstance(doc.get("findings"), list) \
            or not isinstance(doc.get("checks"), list):
        raise DiffInputError(f"{where} is not a findings.json: it needs 'checks' and 'findings' lists")
    checks: dict[str, str] = {}
    metrics: dict[str, Mapping[str, Any]] = {}
    for n, c in enumerate(doc["checks"]):
        if not isinstance(c, Mapping) or not isinstance(c.get("id"), str) \
                or c.get("status") not in ("ok", "error", "skipped"):
            raise DiffInputError(f"{where}: checks[{n}] needs an 'id' and a status of ok, error or skipped")
        checks[c["id"]] = c["status"]
        if c["status"] == "ok" and isinstance(c.get("metrics"), Mapping):
            metrics[c["id"]] = c["metrics"]
    findings: dict[str, FindingState] = {}
    for n, f in enumerate(doc["findings"]):
        state = _finding_state(f, f"{where}: findings[{n}]")
        key, k = state.id, 1
        while key in findings:  # ids are unique in any audit this version writes; keep older ones apart
            k += 1
            key = f"{state.id}#{k}"
        findings[key] = state if key == state.id else FindingState(key, state.check, state.severity, state.status,
                                                                      state.title)
    audit, inputs = _table(doc, "audit"), _table(doc, "inputs")
    model = _table(inputs, "model")
    return AuditSnapshot(source=source, name=str(audit.get("name", "")), started_at=str(audit.get("started_at", "")),
                         model_sha256=str(model.get("sha256", "")), checks=checks, metrics=metrics,
                         findings=findings)


def _table(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def _finding_state(f: Any, where: str) -> FindingState:
    if not isinstance(f, Mapping) or not isinstance(f.get("id"), str) or not isinstance(f.get("check"), str):
        raise DiffInputError(f"{where} needs an 'id' and a 'check'")
    if f.get("severity") not in SEVERITY_RANK:
        raise DiffInputError(f"{where} has severity {f.get('severity')!r}; expected high, medium, low or info")
    status = f.get("status", "open")  # findings.json 1.0 had no status: every finding was open
    if status not in FINDING_STATUSES:
        raise DiffInputError(f"{where} has status {status!r}; expected open or accepted")
    return FindingState(id=f["id"], check=f["check"], severity=f["severity"], status=status,
                        title=str(f.get("title", "")))


# ---- comparing --------------------------------------------------------------------------------

def compare(old: AuditSnapshot, new: AuditSnapshot) -> AuditDiff:
    """What changed from ``old`` to ``new``."""
    added = [f for k, f in new.findings.items() if k not in old.findings]
    gone = [f for k, f in old.findings.items() if k not in new.findings]
    resolved = [f for f in gone if new.checks.get(f.check) == "ok"]
    not_rechecked = [f for f in gone if new.checks.get(f.check) != "ok"]
    changed, unchanged = [], 0
    for k, after in new.findings.items():
        before = old.findings.get(k)
        if before is None:
            continue
        if (before.severity, before.status) != (after.severity, after.status):
            changed.append(FindingChange(before, after))
        else:
            unchanged += 1
    changed.sort(key=lambda c: (-c.after.rank, c.after.check, c.after.id))
    checks = [CheckChange(cid, old.checks.get(cid, "absent"), new.checks.get(cid, "absent"))
              for cid in dict.fromkeys([*new.checks, *old.checks])
              if old.checks.get(cid, "absent") != new.checks.get(cid, "absent")]
    return AuditDiff(old=old, new=new, added=tuple(sort_states(added)), resolved=tuple(sort_states(resolved)),
                     not_rechecked=tuple(sort_states(not_rechecked)), changed=tuple(changed), unchanged=unchanged,
                     checks=tuple(checks), metrics=tuple(_metric_deltas(old, new)))


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def headline_metrics(metrics: Mapping[str, Any]) -> dict[str, tuple[float, tuple[float, float] | None]]:
    """The metrics a check reports with an interval (``X`` with ``X_ci_low``/``X_ci_high`` or
    ``X_low``/``X_high``): name -> (value, interval)."""
    out: dict[str, tuple[float, tuple[float, float] | None]] = {}
    for key, value in metrics.items():
        v = _number(value)
        if v is None:
            continue
        for lo_suffix, hi_suffix in INTERVAL_SUFFIXES:
            if f"{key}{lo_suffix}" in metrics and f"{key}{hi_suffix}" in metrics:
                lo, hi = _number(metrics[f"{key}{lo_suffix}"]), _number(metrics[f"{key}{hi_suffix}"])
                out[key] = (v, (lo, hi) if lo is not None and hi is not None else None)
                break
    return out


def _metric_deltas(old: AuditSnapshot, new: AuditSnapshot) -> list[MetricDelta]:
    """Every headline metric of a check that ran in both audits (headline in either one)."""
    out = []
    for cid, new_metrics in new.metrics.items():
        old_metrics = old.metrics.get(cid)
        if old_metrics is None:
            continue
        before, after = headline_metrics(old_metrics), headline_metrics(new_metrics)
        for name in dict.fromkeys([*after, *before]):
            b_value, b_interval = before.get(name, (_number(old_metrics.get(name)), None))
            a_value, a_interval = after.get(name, (_number(new_metrics.get(name)), None))
            if b_value is None or a_value is None:
                continue
            out.append(MetricDelta(check=cid, metric=name, before=b_value, after=a_value,
                                   before_interval=b_interval, after_interval=a_interval))
    return out
