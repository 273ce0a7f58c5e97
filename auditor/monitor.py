"""Production monitoring: new data checked against the baseline an audit wrote.

The ``monitoring`` remedy writes ``remediation/monitoring.json``: the audited model (path, SHA-256,
task, classes, positive and favourable class, decision threshold), each feature's reference
distribution over the drift check's bins (training data), the score's over the held-out test
scores, the favourable rate and adverse impact ratio of every group of the fairness check, and the
alert levels. ``load_baseline(path)`` reads it, ``monitor(baseline, df, model=None)`` checks new
rows against it and returns a ``MonitorResult``; ``auditor monitor`` prints it and exits 1 on an
alert.

Levels, each ``ok``, ``warn`` or ``alert``:

* drift of a feature or of the score, judged as ``data.drift`` judges it: the chi-square test of
  the bin counts significant at ``drift_alpha`` Bonferroni-corrected over the columns, and PSI at
  or above ``psi_alert`` (alert) or ``psi_warn`` (warn); a PSI alone never alerts, so a small batch
  does not raise noise;
* a group's favourable rate moved from the audit's: Fisher exact test significant at
  ``rate_alpha`` Bonferroni-corrected over the groups, and a change of at least ``rate_alert``
  (alert) or ``rate_warn`` (warn); groups with fewer than ``min_group_rows`` rows are not judged;
* adverse impact ratio below ``min_ratio``: an alert when the group was at or above it in the
  audit and the breach is significant (Fisher, group vs reference, at ``fairness_alpha``
  Bonferroni-corrected); a warning when the audit already found it below (a known finding) or it is
  not significant;
* rows without a finite score: an alert.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .analysis.drift import DEFAULT_EPSILON
from .analysis.group_metrics import DisparateImpactResult, disparate_impact, fisher_p
from .analysis.monitoring import (
    CATEGORICAL,
    NUMERIC,
    ColumnReference,
    ColumnShift,
    GroupingSpec,
    column_shift,
    grouping_of,
)
from .errors import AuditInputError
from .wording import fixed, num, p_value, pct, plural, signed

BASELINE_KIND = "auditor monitoring baseline"
RESULT_KIND = "auditor monitoring result"
SCHEMA_VERSION = "1.0"
OK, WARN, ALERT = "ok", "warn", "alert"
NOT_JUDGED = "not judged"
ALL_ROWS = "all rows"


class MonitorInputError(AuditInputError):
    """A baseline or data the monitor cannot use (exit 2, one line)."""


# ---- the baseline -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelInfo:
    """The audited model and its decision rule."""

    path: str
    sha256: str
    kind: str
    task: str  # "classification" | "regression"
    target: str
    features: tuple[str, ...]
    classes: tuple[Any, ...] = ()
    positive_class: Any = None
    favorable: Any = None
    threshold: float = 0.5

    @property
    def is_classification(self) -> bool:
        return self.task == "classification"

    @property
    def multiclass(self) -> bool:
        return len(self.classes) > 2

    def index(self, value: Any) -> int:
        from .context import same_class

        for i, c in enumerate(self.classes):
            if same_class(c, value):
                return i
        raise MonitorInputError(f"class {value!r} is not one of the baseline's classes {list(self.classes)}")

    @property
    def favorable_is_positive(self) -> bool:
        return self.index(self.favorable) == self.index(self.positive_class)


@dataclass(frozen=True)
class AlertLevels:
    """When a measurement warns or alerts (see the module docstring)."""

    psi_warn: float = 0.10
    psi_alert: float = 0.25
    drift_alpha: float = 0.01
    epsilon: float = DEFAULT_EPSILON
    min_ratio: float = 0.8
    fairness_alpha: float = 0.05
    rate_warn: float = 0.05
    rate_alert: float = 0.10
    rate_alpha: float = 0.01
    min_group_rows: int = 30


@dataclass(frozen=True)
class GroupBaseline:
    """One group's favourable rate in the audit (test rows)."""

    group: str
    rows: int
    favorable: int
    favorable_rate: float
    adverse_impact_ratio: float
    is_reference: bool = False


@dataclass(frozen=True)
class GroupingBaseline:
    spec: GroupingSpec
    groups: tuple[GroupBaseline, ...]
    reference_rate: float

    def get(self, group: str) -> GroupBaseline | None:
        return next((g for g in self.groups if g.group == group), None)


@dataclass(frozen=True)
class FairnessBaseline:
    favorable: str  # "risk = 1"
    rows: int
    favorable_count: int
    overall_rate: float
    groupings: tuple[GroupingBaseline, ...]


@dataclass(frozen=True)
class Baseline:
    """What to watch in production, as the audit measured it (``remediation/monitoring.json``)."""

    audit: str
    model: ModelInfo
    features: tuple[ColumnReference, ...]
    score: ColumnReference | None
    levels: AlertLevels = field(default_factory=AlertLevels)
    fairness: FairnessBaseline | None = None
    notes: tuple[str, ...] = ()
    source: str = ""  # the file it was read from

    def to_json(self) -> dict[str, Any]:
        from . import __version__

        m = self.model
        return {
            "kind": BASELINE_KIND, "schema_version": SCHEMA_VERSION, "auditor_version": __version__,
            "audit": self.audit,
            "model": {"path": m.path, "sha256": m.sha256, "kind": m.kind, "task": m.task, "target": m.target,
                      "features": list(m.features), "classes": [_plain(c) for c in m.classes],
                      "positive_class": _plain(m.positive_class), "favorable": _plain(m.favorable),
                      "threshold": m.threshold},
            "threshold": m.threshold,
            "alert_levels": {k: getattr(self.levels, k) for k in AlertLevels.__dataclass_fields__},
            "features": [_column_json(c) for c in self.features],
            "score": _column_json(self.score) if self.score is not None else None,
            "fairness": _fairness_json(self.fairness) if self.fairness is not None else None,
            "notes": list(self.notes),
        }

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=1, allow_nan=False, ensure_ascii=False) + "\n").encode("utf-8")


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _num(x: Any) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _column_json(c: ColumnReference) -> dict[str, Any]:
    out: dict[str, Any] = {"column": c.name, "kind": c.kind, "reference": c.source, "rows": c.n}
    if c.kind == NUMERIC:
        out.update({"edges": list(c.edges), "mean": _num(c.mean), "sd": _num(c.sd)})
    out["bins"] = [{"bin": lab, "reference_count": int(round(n)), "reference_share": float(s)}
                   for lab, n, s in zip(c.labels, c.counts, c.shares)]
    return out


def _fairness_json(f: FairnessBaseline) -> dict[str, Any]:
    return {"favorable": f.favorable, "rows": f.rows, "favorable_count": f.favorable_count,
            "overall_favorable_rate": _num(f.overall_rate),
            "groupings": [{"grouping": g.spec.name, "columns": list(g.spec.columns),
                           "cuts": [list(c) if c is not None else None for c in g.spec.cuts],
                           "reference": g.spec.reference, "reference_rate": _num(g.reference_rate),
                           "groups": [{"group": r.group, "rows": r.rows, "favorable": r.favorable,
                                       "favorable_rate": _num(r.favorable_rate),
                                       "adverse_impact_ratio": _num(r.adverse_impact_ratio),
                                       "reference": r.is_reference} for r in g.groups]}
                          for g in f.groupings]}


def baseline_from_json(doc: Any, *, source: str = "") -> Baseline:
    """A baseline from its JSON document; MonitorInputError when it is not one."""
    where = source or "the document"
    if not isinstance(doc, Mapping) or doc.get("kind") != BASELINE_KIND:
        raise MonitorInputError(f"{where} is not a monitoring baseline (expected \"kind\": \"{BASELINE_KIND}\", "
                                "as in remediation/monitoring.json of an audit report)")
    version = str(doc.get("schema_version", ""))
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise MonitorInputError(f"{where}: monitoring baseline schema version {version or '(none)'} is not "
                                f"supported (this auditor reads {SCHEMA_VERSION})")
    try:
        m = doc["model"]
        model = ModelInfo(path=str(m["path"]), sha256=str(m["sha256"]), kind=str(m.get("kind", "")),
                          task=str(m["task"]), target=str(m.get("target", "")),
                          features=tuple(str(f) for f in m["features"]), classes=tuple(m.get("classes") or ()),
                          positive_class=m.get("positive_class"), favorable=m.get("favorable"),
                          threshold=float(m.get("threshold", 0.5)))
        known = AlertLevels.__dataclass_fields__
        levels = AlertLevels(**{k: v for k, v in dict(doc.get("alert_levels") or {}).items() if k in known})
        features = tuple(_column_from_json(c) for c in doc["features"])
        score = _column_from_json(doc["score"]) if doc.get("score") else None
        fairness = _fairness_from_json(doc["fairness"]) if doc.get("fairness") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise MonitorInputError(f"{where}: malformed monitoring baseline ({type(exc).__name__}: {exc})") from None
    return Baseline(audit=str(doc.get("audit", "")), model=model, features=features, score=score, levels=levels,
                    fairness=fairness, notes=tuple(str(n) for n in doc.get("notes") or ()), source=source)


def _column_from_json(c: Mapping[str, Any]) -> ColumnReference:
    kind = str(c["kind"])
    if kind not in (NUMERIC, CATEGORICAL):
        raise ValueError(f"column {c.get('column')!r} has kind {kind!r}")
    bins = list(c["bins"])
    edges = tuple(float(e) for e in c.get("edges") or ())
    if kind == NUMERIC and len(bins) != len(edges) + 2:
        raise ValueError(f"column {c.get('column')!r}: {len(bins)} bins for {len(edges)} edges")
    return ColumnReference(name=str(c["column"]), kind=kind, source=str(c.get("reference", "")),
                           labels=tuple(str(b["bin"]) for b in bins),
                           counts=tuple(float(b["reference_count"]) for b in bins), edges=edges,
                           mean=_nan(c.get("mean")), sd=_nan(c.get("sd")))


def _fairness_from_json(f: Mapping[str, Any]) -> FairnessBaseline:
    groupings = []
    for g in f["groupings"]:
        groups = tuple(GroupBaseline(group=str(r["group"]), rows=int(r["rows"]), favorable=int(r["favorable"]),
                                     favorable_rate=_nan(r.get("favorable_rate")),
                                     adverse_impact_ratio=_nan(r.get("adverse_impact_ratio")),
                                     is_reference=bool(r.get("reference", False))) for r in g["groups"])
        spec = GroupingSpec(name=str(g["grouping"]), columns=tuple(str(c) for c in g["columns"]),
                            cuts=tuple(tuple(float(x) for x in c) if c is not None else None for c in g["cuts"]),
                            groups=tuple(r.group for r in groups), reference=str(g["reference"]))
        if len(spec.cuts) != len(spec.columns):
            raise ValueError(f"grouping {spec.name!r}: one cut list per column is needed")
        groupings.append(GroupingBaseline(spec=spec, groups=groups, reference_rate=_nan(g.get("reference_rate"))))
    return FairnessBaseline(favorable=str(f.get("favorable", "")), rows=int(f["rows"]),
                            favorable_count=int(f["favorable_count"]),
                            overall_rate=_nan(f.get("overall_favorable_rate")), groupings=tuple(groupings))


def load_baseline(path: str | Path) -> Baseline:
    """Read ``monitoring.json`` (or a report folder holding ``remediation/monitoring.json``)."""
    p = Path(path)
    if p.is_dir():
        p = p / "remediation" / "monitoring.json"
    if not p.is_file():
        raise MonitorInputError(f"monitoring baseline not found: {p}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MonitorInputError(f"{p} is not a monitoring baseline (not readable JSON: {exc})") from None
    return baseline_from_json(doc, source=str(p))


# ---- scoring new rows ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Scored:
    """The model's outputs on new rows, read with the baseline's rule."""

    values: np.ndarray  # the monitored score: P(positive), the prediction, or the predicted class (k classes)
    finite: np.ndarray  # rows with a finite score
    decision: np.ndarray | None = None  # the favourable decision (classification)
    p_favorable: np.ndarray | None = None


def _adapter(model: Any) -> Any:
    return getattr(model, "adapter", model)


def score_rows(info: ModelInfo, model: Any, X: pd.DataFrame) -> Scored:
    """Score rows as the audit did: P(positive class) thresholded at the baseline's threshold for two
    classes, the most probable class for k classes, the prediction for regression."""
    adapter = _adapter(model)
    try:
        raw = adapter.predict_proba(X) if info.is_classification else adapter.predict(X)
        out = np.asarray(raw, dtype=float)
    except Exception as exc:  # noqa: BLE001 - any failure of the model is a bad input here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise MonitorInputError(f"the model failed to predict on the data: {type(exc).__name__}: {first}") from None
    n = len(X)
    if not info.is_classification:
        pred = out.reshape(-1)
        if pred.shape != (n,):
            raise MonitorInputError(f"the model returned {pred.size} predictions for {n} rows")
        return Scored(values=pred, finite=np.isfinite(pred))
    k = len(info.classes)
    if out.ndim != 2 or out.shape != (n, k):
        raise MonitorInputError(f"the model's predict_proba returned shape {out.shape} for {n} rows and the "
                                f"baseline's {k} classes")
    finite = np.isfinite(out).all(axis=1)
    pos, fav = info.index(info.positive_class), info.index(info.favorable)
    if info.multiclass:
        pred_class = np.argmax(np.where(np.isfinite(out), out, -np.inf), axis=1)
        names = np.array([str(c) for c in info.classes], dtype=object)
        return Scored(values=names[pred_class], finite=finite, decision=pred_class == fav, p_favorable=out[:, fav])
    score = out[:, pos]
    label = (score >= info.threshold).astype(int)
    return Scored(values=score, finite=finite, decision=label == (1 if fav == pos else 0),
                  p_favorable=score if fav == pos else 1.0 - score)


def _check_model(info: ModelInfo, model: Any) -> bool | None:
    """Whether the model given is the audited one (by SHA-256, when known); refuses other classes."""
    from .context import same_class

    classes = tuple(getattr(_adapter(model), "classes", ()) or ())
    if info.is_classification and classes and (len(classes) != len(info.classes)
                                               or not all(same_class(a, b) for a, b in zip(classes, info.classes))):
        raise MonitorInputError(f"the model's classes {[_plain(c) for c in classes]} are not the baseline's "
                                f"{list(info.classes)}: it is not the model the baseline was made for")
    digest = getattr(model, "sha256", "")
    return (digest == info.sha256) if digest and info.sha256 else None


# ---- judgement ----------------------------------------------------------------------------------

LEVEL_RANK = {NOT_JUDGED: -1, OK: 0, WARN: 1, ALERT: 2}


@dataclass(frozen=True)
class ColumnCheck:
    """A feature or the score against its reference, judged."""

    role: str  # "feature" | "score"
    shift: ColumnShift
    level: str
    reason: str

    @property
    def name(self) -> str:
        return self.shift.name


def drift_level(s: ColumnShift, alpha: float, levels: AlertLevels) -> tuple[str, str]:
    """The drift rule (pure): PSI at a level *and* a significant chi-square test of the bins."""
    if not math.isfinite(s.psi):
        return NOT_JUDGED, "no rows to compare"
    significant = math.isfinite(s.p_value) and s.p_value < alpha
    if significant and s.psi >= levels.psi_alert:
        level, rule = ALERT, f"at or above the alert level {fixed(levels.psi_alert)}"
    elif significant and s.psi >= levels.psi_warn:
        level, rule = WARN, f"at or above the warning level {fixed(levels.psi_warn)}"
    elif s.psi >= levels.psi_warn:
        return OK, (f"PSI {s.psi:.2f} but not significant on {plural(s.n_current, 'row')} (chi-square "
                    f"{p_value(s.p_value)}, needs < {alpha:.2g})")
    else:
        return OK, f"PSI {s.psi:.2f}, below the warning level {fixed(levels.psi_warn)}"
    return level, f"PSI {s.psi:.2f} {rule} (chi-square {p_value(s.p_value)}); {_shift_detail(s)}"


def _shift_detail(s: ColumnShift) -> str:
    parts = []
    change = s.largest_change
    if change is not None:
        parts.append(f"largest change: '{change[0]}' {pct(change[1])} → {pct(change[2])}")
    if s.unseen:
        parts.append("levels the reference never had: " + ", ".join(f"'{lv}'" for lv in s.unseen[:5]))
    if s.kind == NUMERIC and math.isfinite(s.mean_shift_sd):
        parts.append(f"mean {num(s.mean_reference)} → {num(s.mean_current)} ({signed(s.mean_shift_sd)} reference SD)")
    return "; ".join(parts)


def judge_columns(shifts: Sequence[tuple[str, ColumnShift]], levels: AlertLevels) -> tuple[ColumnCheck, ...]:
    """Each column's level, significance Bonferroni-corrected over the columns judged."""
    alpha = levels.drift_alpha / max(1, sum(math.isfinite(s.psi) for _, s in shifts))
    return tuple(ColumnCheck(role, s, *drift_level(s, alpha, levels)) for role, s in shifts)


@dataclass(frozen=True)
class GroupCheck:
    """A group's favourable rate and adverse impact ratio on new rows against the audit's."""

    grouping: str
    group: str
    is_reference: bool
    rows: int
    favorable: int
    favorable_rate: float
    adverse_impact_ratio: float
    air_p: float  # Fisher exact, group vs reference on the new rows
    reference_rows: int
    baseline_rows: int = 0
    baseline_favorable: int = 0
    baseline_rate: float = float("nan")
    baseline_air: float = float("nan")
    rate_level: str = NOT_JUDGED
    rate_reason: str = ""
    air_level: str = NOT_JUDGED
    air_reason: str = ""

    @property
    def change(self) -> float:
        return self.favorable_rate - self.baseline_rate

    @cached_property
    def rate_p(self) -> float:
        """Fisher exact test of the rate now against the audit's (computed once)."""
        if self.baseline_rows <= 0 or self.rows <= 0:
            return float("nan")
        return fisher_p(self.favorable, self.rows, self.baseline_favorable, self.baseline_rows)

    @property
    def level(self) -> str:
        return max((self.rate_level, self.air_level), key=LEVEL_RANK.__getitem__)

    @property
    def label(self) -> str:
        return ALL_ROWS if self.grouping == ALL_ROWS else f"{self.grouping} = {self.group}"

    @property
    def air_judged(self) -> bool:
        return self.air_level != NOT_JUDGED


def _rate_judgeable(g: GroupCheck, levels: AlertLevels) -> bool:
    return g.rows >= levels.min_group_rows and g.baseline_rows >= levels.min_group_rows


def _air_judgeable(g: GroupCheck, levels: AlertLevels) -> bool:
    return (g.grouping != ALL_ROWS and not g.is_reference and g.rows >= levels.min_group_rows
            and g.reference_rows >= levels.min_group_rows and math.isfinite(g.adverse_impact_ratio))


def rate_level(g: GroupCheck, alpha: float, levels: AlertLevels) -> tuple[str, str]:
    """The favourable-rate rule (pure): a significant change of at least ``rate_warn``/``rate_alert``."""
    if not _rate_judgeable(g, levels):
        return NOT_JUDGED, (f"fewer than {levels.min_group_rows} rows here or in the audit "
                            f"({g.rows:,} now, {g.baseline_rows:,} in the audit)")
    p = g.rate_p
    change = abs(g.change)
    significant = math.isfinite(p) and p < alpha
    text = f"favourable rate {pct(g.baseline_rate)} in the audit → {pct(g.favorable_rate)} ({signed(g.change)})"
    if significant and change >= levels.rate_alert:
        return ALERT, f"{text}: a change of at least {fixed(levels.rate_alert)} (Fisher {p_value(p)})"
    if significant and change >= levels.rate_warn:
        return WARN, f"{text}: a change of at least {fixed(levels.rate_warn)} (Fisher {p_value(p)})"
    return OK, text + ("" if significant or change < levels.rate_warn else f", not significant (Fisher {p_value(p)})")


def air_level(g: GroupCheck, alpha: float, levels: AlertLevels) -> tuple[str, str]:
    """The adverse-impact rule (pure): a new, significant breach of ``min_ratio`` alerts; one the
    audit already found, or an insignificant one, warns."""
    if not _air_judgeable(g, levels):
        return NOT_JUDGED, ""
    air = g.adverse_impact_ratio
    if air >= levels.min_ratio:
        return OK, f"adverse impact ratio {fixed(air)}"
    known = math.isfinite(g.baseline_air) and g.baseline_air < levels.min_ratio
    significant = math.isfinite(g.air_p) and g.air_p < alpha
    text = f"adverse impact ratio {fixed(air)}, below {fixed(levels.min_ratio)}"
    if known:
        return WARN, (f"{text} as in the audit ({fixed(g.baseline_air)}): a known finding; its favourable rate "
                      "alerts when it moves")
    if significant:
        was = f"{fixed(g.baseline_air)} in the audit" if math.isfinite(g.baseline_air) else "not seen by the audit"
        return ALERT, f"{text} (was {was}; Fisher {p_value(g.air_p)} against the reference group)"
    return WARN, f"{text} but not significant on {plural(g.rows, 'row')} (Fisher {p_value(g.air_p)})"


def judge_groups(groups: Sequence[GroupCheck], levels: AlertLevels) -> tuple[GroupCheck, ...]:
    """Each group's levels, the tests Bonferroni-corrected over the groups judged."""
    from dataclasses import replace

    n_rate = max(1, sum(_rate_judgeable(g, levels) for g in groups))
    n_air = max(1, sum(_air_judgeable(g, levels) for g in groups))
    out = []
    for g in groups:
        rl, rr = rate_level(g, levels.rate_alpha / n_rate, levels)
        al, ar = air_level(g, levels.fairness_alpha / n_air, levels)
        out.append(replace(g, rate_level=rl, rate_reason=rr, air_level=al, air_reason=ar))
    return tuple(out)


# ---- the monitor --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    """One warning or alert, with its reason."""

    level: str  # "warn" | "alert"
    subject: str  # "feature 'age'", "model score", "age_band = under 25"
    metric: str  # "psi", "favorable_rate", "adverse_impact_ratio", "unscored_rows"
    value: float
    baseline: float | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "subject": self.subject, "metric": self.metric, "value": _num(self.value),
                "baseline": _num(self.baseline), "reason": self.reason}


@dataclass(frozen=True)
class MonitorResult:
    """New data against a monitoring baseline: every column and group judged, and the alerts."""

    baseline: Baseline
    rows: int
    columns: tuple[ColumnCheck, ...]  # the features, then the score (when a model was given)
    groups: tuple[GroupCheck, ...] = ()
    scored_rows: int | None = None  # rows with a finite score (None: no model)
    model_matches: bool | None = None  # the model's SHA-256 is the audited one's (None: unknown)
    notes: tuple[str, ...] = ()
    source: str = ""

    @property
    def score(self) -> ColumnCheck | None:
        return next((c for c in self.columns if c.role == "score"), None)

    def column(self, name: str) -> ColumnCheck:
        return next(c for c in self.columns if c.name == name and c.role == "feature")

    @property
    def alerts(self) -> tuple[Alert, ...]:
        """Every warning and alert, alerts first."""
        out = []
        for c in self.columns:
            if c.level in (WARN, ALERT):
                subject = "model score" if c.role == "score" else f"feature '{c.name}'"
                out.append(Alert(c.level, subject, "psi", c.shift.psi, 0.0, c.reason))
        if self.scored_rows is not None and self.scored_rows < self.rows:
            n = self.rows - self.scored_rows
            out.append(Alert(ALERT, "model score", "unscored_rows", n, 0.0,
                             f"the model returned no finite score on {plural(n, 'row')} of {self.rows:,}"))
        for g in self.groups:
            if g.rate_level in (WARN, ALERT):
                out.append(Alert(g.rate_level, g.label, "favorable_rate", g.favorable_rate, g.baseline_rate,
                                 g.rate_reason))
            if g.air_level in (WARN, ALERT):
                out.append(Alert(g.air_level, g.label, "adverse_impact_ratio", g.adverse_impact_ratio,
                                 _num(g.baseline_air), g.air_reason))
        return tuple(sorted(out, key=lambda a: -LEVEL_RANK[a.level]))

    @property
    def n_alerts(self) -> int:
        return sum(a.level == ALERT for a in self.alerts)

    @property
    def n_warnings(self) -> int:
        return sum(a.level == WARN for a in self.alerts)

    @property
    def status(self) -> str:
        return ALERT if self.n_alerts else OK

    def metrics(self) -> dict[str, Any]:
        """Headline numbers: alerts, warnings, the largest feature PSI, the score's PSI, the lowest
        adverse impact ratio of a judged group and the favourable rate over all rows."""
        feats = [c.shift.psi for c in self.columns if c.role == "feature" and math.isfinite(c.shift.psi)]
        airs = [g.adverse_impact_ratio for g in self.groups if g.air_judged]
        overall = next((g.favorable_rate for g in self.groups if g.grouping == ALL_ROWS), None)
        score = self.score
        return {"alerts": self.n_alerts, "warnings": self.n_warnings,
                "max_feature_psi": max(feats) if feats else None,
                "score_psi": score.shift.psi if score is not None else None,
                "min_adverse_impact_ratio": min(airs) if airs else None,
                "overall_favorable_rate": overall}

    def to_json(self) -> dict[str, Any]:
        b = self.baseline
        return {
            "kind": RESULT_KIND, "schema_version": SCHEMA_VERSION, "status": self.status,
            "counts": {"alerts": self.n_alerts, "warnings": self.n_warnings},
            "baseline": {"source": b.source, "audit": b.audit, "model_sha256": b.model.sha256},
            "data": {"source": self.source, "rows": self.rows, "scored_rows": self.scored_rows},
            "model": {"given": self.scored_rows is not None, "matches_baseline": self.model_matches},
            "metrics": {k: (_num(v) if isinstance(v, float) else v) for k, v in self.metrics().items()},
            "columns": [_column_check_json(c) for c in self.columns],
            "groups": [_group_check_json(g) for g in self.groups],
            "alerts": [a.to_json() for a in self.alerts],  # every warning and alert, alerts first
            "notes": list(self.notes),
        }


def _column_check_json(c: ColumnCheck) -> dict[str, Any]:
    s = c.shift
    out: dict[str, Any] = {"column": s.name, "role": c.role, "kind": s.kind, "rows": s.n_current,
                           "psi": _num(s.psi), "p_value": _num(s.p_value), "level": c.level, "reason": c.reason}
    if s.kind == NUMERIC:
        out.update({"mean_reference": _num(s.mean_reference), "mean": _num(s.mean_current)})
    if s.unseen:
        out["unseen_levels"] = list(s.unseen)
    out["bins"] = [{"bin": lab, "reference_share": r, "share": cur}
                   for lab, r, cur in zip(s.labels, s.reference_share, s.current_share)]
    return out


def _group_check_json(g: GroupCheck) -> dict[str, Any]:
    return {"grouping": g.grouping, "group": g.group, "reference": g.is_reference, "rows": g.rows,
            "favorable_rate": _num(g.favorable_rate), "baseline_favorable_rate": _num(g.baseline_rate),
            "change": _num(g.change), "p_value": _num(g.rate_p),
            "adverse_impact_ratio": _num(g.adverse_impact_ratio), "baseline_adverse_impact_ratio": _num(g.baseline_air),
            "air_p_value": _num(g.air_p), "level": g.level, "rate_level": g.rate_level, "rate_reason": g.rate_reason,
            "air_level": g.air_level, "air_reason": g.air_reason}


def _group_rows(fair: FairnessBaseline, frame: pd.DataFrame, decision: np.ndarray, p_fav: np.ndarray,
                levels: AlertLevels) -> list[GroupCheck]:
    """Every group's rate on the new rows beside the audit's (unjudged), all rows first."""
    k, n = int(decision.sum()), int(decision.size)
    rows = [GroupCheck(grouping=ALL_ROWS, group="all", is_reference=False, rows=n, favorable=k,
                       favorable_rate=k / n if n else float("nan"), adverse_impact_ratio=float("nan"),
                       air_p=float("nan"), reference_rows=0, baseline_rows=fair.rows,
                       baseline_favorable=fair.favorable_count, baseline_rate=fair.overall_rate)]
    for gb in fair.groupings:
        res: DisparateImpactResult = disparate_impact(grouping_of(frame, gb.spec), decision, p_fav,
                                                      min_group_size=levels.min_group_rows)
        n_ref = res.row(gb.spec.reference).count
        for r in res.rows:
            base = gb.get(r.group)
            rows.append(GroupCheck(
                grouping=gb.spec.name, group=r.group, is_reference=r.is_reference, rows=r.count,
                favorable=r.favorable_count, favorable_rate=r.favorable_rate, adverse_impact_ratio=r.air,
                air_p=r.p_value, reference_rows=n_ref, baseline_rows=base.rows if base else 0,
                baseline_favorable=base.favorable if base else 0,
                baseline_rate=base.favorable_rate if base else float("nan"),
                baseline_air=base.adverse_impact_ratio if base else float("nan")))
    return rows


def _groups(baseline: Baseline, df: pd.DataFrame, scored: Scored, notes: list[str]) -> tuple[GroupCheck, ...]:
    fair = baseline.fairness
    if fair is None or scored.decision is None or scored.p_favorable is None:
        return ()
    kept = FairnessBaseline(fair.favorable, fair.rows, fair.favorable_count, fair.overall_rate,
                            tuple(g for g in fair.groupings if all(c in df.columns for c in g.spec.columns)))
    missing = sorted({c for g in fair.groupings for c in g.spec.columns if c not in df.columns})
    if missing:
        notes.append(f"protected column(s) {', '.join(missing)} not in the data: their groups are not checked")
    ok = scored.finite
    rows = _group_rows(kept, df[ok].reset_index(drop=True), scored.decision[ok], scored.p_favorable[ok],
                       baseline.levels)
    return judge_groups(rows, baseline.levels)


def monitor(baseline: Baseline, df: pd.DataFrame, model: Any = None, *, source: str = "") -> MonitorResult:
    """Check new rows against the baseline: drift of every feature, and with the model (a
    ``LoadedModel`` or an adapter with ``predict_proba``/``predict``) drift of the score and the
    favourable rates and adverse impact ratios of the groups whose columns are present."""
    features = baseline.model.features
    missing = [f for f in features if f not in df.columns]
    if missing:
        shown = ", ".join(f"'{m}'" for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise MonitorInputError(f"the data has no column {shown} (a feature of the monitored model)")
    if len(df) == 0:
        raise MonitorInputError("the data has no rows")
    notes: list[str] = []
    shifts = [("feature", column_shift(ref, df[ref.name], epsilon=baseline.levels.epsilon))
              for ref in baseline.features]
    groups: tuple[GroupCheck, ...] = ()
    scored_rows = matches = None
    if model is None:
        notes.append("no model given (--model): the score and the group favourable rates were not checked")
    else:
        matches = _check_model(baseline.model, model)
        if matches is False:
            notes.append("the model file's SHA-256 is not the audited model's: its scores are compared with the "
                         "audited model's reference")
        scored = score_rows(baseline.model, model, df[list(features)])
        scored_rows = int(scored.finite.sum())
        if baseline.score is not None:
            shifts.append(("score", column_shift(baseline.score, scored.values[scored.finite],
                                                 epsilon=baseline.levels.epsilon)))
        groups = _groups(baseline, df, scored, notes)
    return MonitorResult(baseline=baseline, rows=len(df), columns=judge_columns(shifts, baseline.levels),
                         groups=groups, scored_rows=scored_rows, model_matches=matches, notes=tuple(notes),
                         source=source)
