"""Waivers (risk acceptance): ``[[waiver]]`` entries of the config, validated, and applied to the
findings after every check ran.

A waiver in force on the audit's start date turns the findings it matches (an id, or a glob such as
``security.model_extraction/*``) into ``accepted`` ones: they keep their severity and carry the waiver,
and the gate does not count them. A waiver that has expired, or that matches no finding, is itself
reported as a ``low`` finding of the check ``audit.waivers``, so stale waivers surface. Applying
waivers is a pure function of the findings, the waivers and the audit date (``apply_waivers``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from fnmatch import fnmatchcase
from typing import Any

from .errors import ConfigError
from .findings import CheckResult, Evidence, Finding, Rule, Severity, Status, Table, Waiver, safe_id
from .wording import plural, quoted

CHECK_ID = "audit.waivers"
CHECK_TITLE = "Waivers"
FAMILY = "audit"
FAMILY_TITLE = "Risk acceptance"
KEYS = ("finding", "reason", "approved_by", "expires")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PATTERN_UNSAFE = re.compile(r"[^A-Za-z0-9._/=&:+\-*?\[\]!]+")  # finding-id characters and glob wildcards
MAX_LISTED = 5  # finding ids named in the text of an expired waiver's finding


# ---- the config ---------------------------------------------------------------------------------

def parse_waivers(raw: Any) -> tuple[Waiver, ...]:
    """The ``[[waiver]]`` array of a parsed TOML config. Raises ConfigError naming the first bad key."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("config key 'waiver' must be an array of tables: write each waiver as [[waiver]]")
    return tuple(_parse_one(n, entry) for n, entry in enumerate(raw, start=1))


def _parse_one(n: int, entry: Any) -> Waiver:
    if not isinstance(entry, dict):
        raise ConfigError(f"config key 'waiver[{n}]' must be a table ([[waiver]] with {', '.join(KEYS)})")
    about = f" (the [[waiver]] for {entry['finding']!r})" if isinstance(entry.get("finding"), str) else ""
    for key in entry:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (valid: {', '.join(KEYS)})"
            raise ConfigError(f"unknown config key 'waiver[{n}].{key}'{hint}")
    for key in KEYS:
        if key not in entry:
            raise ConfigError(f"missing required config key 'waiver[{n}].{key}'{about}: every waiver needs "
                              f"{', '.join(KEYS[:-1])} and {KEYS[-1]}")
    for key in KEYS[:3]:
        value = entry[key]
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"config key 'waiver[{n}].{key}' must be a non-empty string; got {value!r}")
    pattern = entry["finding"].strip()
    if _PATTERN_UNSAFE.search(pattern):
        fixed = _PATTERN_UNSAFE.sub("_", pattern).strip("_")
        raise ConfigError(f"config key 'waiver[{n}].finding' must be a finding id or a glob of one (letters, digits, "
                          f"._/=&:+- and the wildcards * ? [ ]); got {pattern!r} (did you mean {fixed!r}?)")
    return Waiver(match=pattern, reason=entry["reason"].strip(), approved_by=entry["approved_by"].strip(),
                  expires=_expiry(n, entry["expires"]))


def _expiry(n: int, value: Any) -> date:
    """A TOML date (``expires = 2027-06-30``) or a string ``"YYYY-MM-DD"``; never a date-time."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"config key 'waiver[{n}].expires' must be a date such as 2027-06-30 (YYYY-MM-DD); "
                      f"got {value!r}")


# ---- applying them ----------------------------------------------------------------------------

@dataclass(frozen=True)
class WaiverState:
    """One waiver on the audit date: whether it is in force, the findings it matches, and those it
    accepted (a finding matched by several waivers in force is accepted by the first one listed)."""

    waiver: Waiver
    in_force: bool
    matched: tuple[str, ...]
    accepted: tuple[str, ...]


@dataclass(frozen=True)
class WaiverOutcome:
    findings: tuple[Finding, ...]  # the given findings, in their order; matched ones accepted
    reports: tuple[Finding, ...]  # findings of audit.waivers: expired or unmatched waivers
    states: tuple[WaiverState, ...]  # one per waiver, in config order
    on: date


def matches(waiver: Waiver, finding_id: str) -> bool:
    """A finding id matches a waiver's id exactly, or its glob (``*`` also spans ``/``)."""
    return finding_id == waiver.match or fnmatchcase(finding_id, waiver.match)


def apply_waivers(findings: Sequence[Finding], waivers: Sequence[Waiver], on: date) -> WaiverOutcome:
    """Accept the findings matched by a waiver in force on ``on``; report expired and unmatched waivers."""
    ids = [f.id for f in findings]
    matched = [tuple(i for i in ids if matches(w, i)) for w in waivers]
    accepted_by: dict[str, int] = {}
    for k, w in enumerate(waivers):
        if w.in_force(on):
            for i in matched[k]:
                accepted_by.setdefault(i, k)
    out = tuple(replace(f, status="accepted", waiver=waivers[accepted_by[f.id]]) if f.id in accepted_by else f
                for f in findings)
    states = tuple(WaiverState(w, w.in_force(on), matched[k], tuple(i for i in matched[k] if accepted_by.get(i) == k))
                   for k, w in enumerate(waivers))
    reports = []
    for s in states:
        if not s.in_force:
            reports.append(_expired(s, on))
        elif not s.matched:
            reports.append(_unmatched(s, on, ids))
    return WaiverOutcome(findings=out, reports=tuple(_unique(reports)), states=states, on=on)


def _pattern_id(pattern: str) -> str:
    return safe_id(pattern.replace("*", "_all_").replace("?", "_one_"))


def _approval(w: Waiver) -> str:
    return f"approved by {w.approved_by} (reason: \u201c{w.reason}\u201d)"


def _expired(s: WaiverState, on: date) -> Finding:
    w = s.waiver
    days = (on - w.expires).days
    if s.matched:
        shown = ", ".join(s.matched[:MAX_LISTED]) + (f" and {len(s.matched) - MAX_LISTED} more"
                                                     if len(s.matched) > MAX_LISTED else "")
        effect = (f"It no longer applies: the {plural(len(s.matched), 'finding')} it matches ({shown}) "
                  f"{'is' if len(s.matched) == 1 else 'are'} open again and count towards the gate.")
    else:
        effect = "It no longer applies, and it matches no finding of this audit either."
    rule = Rule(metric="expires", value=w.expires.isoformat(), operator="<", threshold=on.isoformat(),
                text="low when a waiver's expiry date is before the audit's start date")
    return Finding(
        id=f"{CHECK_ID}/expired/{_pattern_id(w.match)}", check=CHECK_ID, severity=Severity.LOW,
        title=f"Waiver for {quoted(w.match)} expired on {w.expires.isoformat()}",
        summary=(f"The waiver for {quoted(w.match)}, {_approval(w)}, expired on {w.expires.isoformat()}, "
                 f"{plural(days, 'day')} before this audit ({on.isoformat()}). {effect}"),
        metrics={"expires": w.expires.isoformat(), "days_expired": days, "matched_findings": len(s.matched)},
        remediation=("Review the findings it covered again; renew the waiver with a new expiry date, "
                     "or remove it from the config.",),
        evidence=("waivers",), rule=rule)


def _unmatched(s: WaiverState, on: date, ids: Sequence[str]) -> Finding:
    w = s.waiver
    close = difflib.get_close_matches(w.match, list(ids), n=1, cutoff=0.6)
    hint = f" The closest finding id of this audit is {quoted(close[0])}." if close else ""
    rule = Rule(metric="matched_findings", value=0, operator="==", threshold=0,
                text="low when a waiver in force matches no finding")
    return Finding(
        id=f"{CHECK_ID}/unmatched/{_pattern_id(w.match)}", check=CHECK_ID, severity=Severity.LOW,
        title=f"Waiver for {quoted(w.match)} matches no finding",
        summary=(f"The waiver for {quoted(w.match)}, {_approval(w)}, is in force until {w.expires.isoformat()} "
                 f"but matches no finding of this audit ({on.isoformat()}): the finding it was written for was "
                 f"resolved, or its id changed.{hint} Remove the waiver, or correct its finding id (every id is "
                 "listed in the findings register)."),
        metrics={"expires": w.expires.isoformat(), "matched_findings": 0},
        remediation=("Remove the waiver if its finding was resolved, or correct its finding id.",),
        evidence=("waivers",), rule=rule)


def _unique(findings: list[Finding]) -> list[Finding]:
    """Two waivers with the same pattern get ids ``…`` and ``…+2``."""
    seen: dict[str, int] = {}
    out = []
    for f in findings:
        n = seen[f.id] = seen.get(f.id, 0) + 1
        out.append(f if n == 1 else replace(f, id=f"{f.id}+{n}"))
    return out


# ---- the audit's checks -----------------------------------------------------------------------

def waive_checks(checks: Sequence[CheckResult], waivers: Sequence[Waiver], on: date) -> tuple[CheckResult, ...]:
    """Every check result with its matched findings accepted and, when the config has waivers, a result
    of ``audit.waivers`` after them (its findings: the expired and unmatched waivers)."""
    if not waivers:
        return tuple(checks)
    everything = [f for c in checks for f in c.findings]
    outcome = apply_waivers(everything, waivers, on)
    waived = iter(outcome.findings)
    out = [replace(c, findings=tuple(next(waived) for _ in c.findings)) if c.findings else c for c in checks]
    out.append(waivers_result(outcome))
    return tuple(out)


def waive_one(check: CheckResult, waivers: Sequence[Waiver], on: date) -> CheckResult:
    """One check's result as ``waive_checks`` makes it: a finding's state depends only on its own id
    and the waivers (the first waiver in force that matches it accepts it)."""
    if not waivers or not check.findings:
        return check
    return replace(check, findings=apply_waivers(list(check.findings), waivers, on).findings)


def waivers_result(outcome: WaiverOutcome) -> CheckResult:
    """The ``audit.waivers`` check result: each waiver's state and the findings it accepted."""
    states = outcome.states
    rows = [{"finding": s.waiver.match, "reason": s.waiver.reason, "approved_by": s.waiver.approved_by,
             "expires": s.waiver.expires.isoformat(), "state": "in force" if s.in_force else "expired",
             "matched": len(s.matched), "accepted": len(s.accepted)} for s in states]
    accepted = sorted((i, s.waiver.match) for s in states for i in s.accepted)
    tables = (Table.from_records("waivers", "Waivers in the config", rows,
                                 columns=("finding", "reason", "approved_by", "expires", "state", "matched",
                                          "accepted"),
                                 caption="matched: findings whose id matches the waiver; accepted: those it "
                                         "accepted (a waiver in force accepts what it matches, unless a waiver "
                                         "listed before it already did)."),
              Table.from_records("accepted", "Accepted findings", [{"finding": i, "waiver": p} for i, p in accepted],
                                 columns=("finding", "waiver")))
    metrics = {"waivers": len(states), "in_force": sum(s.in_force for s in states),
               "expired": sum(not s.in_force for s in states),
               "unmatched": sum(s.in_force and not s.matched for s in states), "accepted_findings": len(accepted),
               "audit_date": outcome.on.isoformat()}
    note = (f"Expiry is judged against the audit's start date, {outcome.on.isoformat()} (UTC); a waiver is in force "
            "through its expiry day. Accepted findings keep their severity and are not counted by the gate.")
    return CheckResult(CHECK_ID, CHECK_TITLE, FAMILY, Status.OK,
                       evidence=Evidence(metrics=metrics, tables=tables, notes=(note,)),
                       findings=outcome.reports, family_title=FAMILY_TITLE)
