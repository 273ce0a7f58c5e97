"""The input guard (issue 11, section 2): ``remediation/guard.json``, the domain the model was validated
for, measured on the test rows and on the inputs the audit saw break the model.

The guard (``auditor.Guard``) is built from the training data (the test data when there is none):
per feature its range widened by the margin the audit itself probed beyond the observed range (the
adversarial search's ``margin``, the partial-dependence grid's ``outside_fraction``: the smaller of
the two that ran), its levels, and missing values only where the training data had them or
``sensitivity.random_attack`` declares them valid (``missing_valid``). A random probe the model
survived is no evidence that it handles missing values (it returns a number, not necessarily a
meaningful one), so it does not open a column to them; scored test rows are (a constraint that more
than ``max_test_outside`` of the test rows break is widened to them). A side of a range loses its
margin where the audit saw the model break or the partial dependence turn erratic there, and a
single in-domain value that broke the model becomes an excluded value.

Measured: the share of the scored test rows it passes (at least ``min_test_passed``) and the share
of the audit's breaking inputs it accepts (none). ``verified`` only when both hold and every breaking
input could be rebuilt and checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from ..analysis.domain import feature_domains
from ..analysis.input_guard import (
    GuardBuild,
    GuardMeasurement,
    Probe,
    ProbeSet,
    adversarial_probes,
    build_guard,
    measure_guard,
    pdp_probes,
    random_attack_probes,
    unscored_probes,
)
from ..findings import Evidence, Finding, Status, Table
from ..guard import NUMERIC, Guard
from ..wording import pct, plural, value_text
from .base import Artifact, Remediation, Remedy, RemedyInputs, RemedyOutput, artifact_path, budget, setting, threshold

RANDOM_ATTACK = "sensitivity.random_attack"
ADVERSARIAL = "sensitivity.adversarial"
PDP = "sensitivity.partial_dependence"
GUARD_FILE = artifact_path("guard.json")
_FAILURE_KINDS = ("crash", "bad_shape", "non_finite", "out_of_range", "bad_sum")
_PDP_KINDS = ("below", "above", "missing", "unseen")
_FAILURE_TEXT = {"crash": "raised an error", "bad_shape": "returned the wrong shape", "non_finite": "returned NaN or "
                 "infinity", "out_of_range": "returned a probability outside [0, 1]", "bad_sum": "returned "
                 "probabilities not summing to one", "": "scored it"}


def check_option(inputs: RemedyInputs, check_id: str, name: str) -> Any:
    """A check's option as the audit ran it: the config's value, else the check's default."""
    from ..checks import default_registry

    configured = inputs.ctx.config.checks.options.get(check_id, {})
    if name in configured:
        return configured[name]
    registry = default_registry()
    return registry[check_id].defaults()[name] if check_id in registry else None


def ran(inputs: RemedyInputs, check_id: str) -> bool:
    result = inputs.checks.get(check_id)
    return result is not None and result.status is Status.OK and inputs.measurement(check_id) is not None


def audit_margin(inputs: RemedyInputs) -> tuple[float, str]:
    """The share of a feature's span the audit probed beyond the observed range, and whence."""
    probed = [(float(check_option(inputs, cid, name)), f"{cid} {name}")
              for cid, name in ((ADVERSARIAL, "margin"), (PDP, "outside_fraction")) if ran(inputs, cid)]
    if not probed:
        return 0.0, ("no check probed the model beyond the observed range (sensitivity.adversarial and "
                     "sensitivity.partial_dependence did not run), so numeric features keep their observed range")
    margin = min(v for v, _ in probed)
    return margin, (f"numeric ranges reach {pct(margin, 0)} of each feature's span beyond the observed range, as far "
                    f"as the audit probed the model ({', '.join(w for _, w in probed)}; never across zero, "
                    "integers rounded inwards)")


def test_labels(inputs: RemedyInputs) -> list[str]:
    """The test rows' labels as the adversarial search names them (the id column, else the index)."""
    ctx = inputs.ctx
    frame = ctx.frame("test")
    id_col = ctx.config.data.id
    values = frame[id_col] if id_col and id_col in frame.columns else frame.index
    return [str(v) for v in np.asarray(values)]


def pdp_erratic_kinds(inputs: RemedyInputs) -> dict[str, tuple[str, ...]]:
    """Per feature, the grid-point kinds (below/above/missing/unseen) an erratic finding names."""
    out: dict[str, tuple[str, ...]] = {}
    for f in inputs.findings_of(PDP, "low"):
        if "/erratic/" in f.id and f.features:
            out[f.features[0]] = tuple(k for k in _PDP_KINDS if f"{k}_change" in f.metrics)
    return out


def audit_probes(inputs: RemedyInputs) -> ProbeSet:
    """Every input the audit's checks tried that can be rebuilt as a row (and the breaking ones that
    cannot, as ``unrebuilt``): the random attack's, the adversarial search's failures, the partial
    dependence's erratic or refused grid points, and the test rows the model could not score."""
    ctx = inputs.ctx
    X = ctx.X("test")
    reference = ctx.X("train") if ctx.has_train else X
    domains = feature_domains(reference, categorical=ctx.categorical, features=ctx.features)
    sets: list[ProbeSet] = []
    ra = inputs.measurement(RANDOM_ATTACK)
    if ra is not None:
        sets.append(random_attack_probes(ra.result, ra.domains, X))
    adv = inputs.measurement(ADVERSARIAL)
    if adv is not None:
        sets.append(adversarial_probes(adv.result.failures, X, test_labels(inputs), adv.result.axes, domains))
    pdp = inputs.measurement(PDP)
    if pdp is not None:
        sets.append(pdp_probes(pdp.dependences, X, domains, pdp_erratic_kinds(inputs)))
    unscored = ctx.unscored.get("test")
    if unscored is not None and unscored.count and ctx.test_file is not None:
        rows = ctx.test_file.frame.iloc[list(unscored.positions)][list(ctx.features)]
        sets.append(unscored_probes(rows, unscored.set_apart_by))
    return ProbeSet.join(sets)


@dataclass
class GuardRemedy(Remedy):
    """Builds ``remediation/guard.json`` and measures it (see the module docstring). Always runs: with
    no breaking input found, the guard is still the domain the model was validated on."""

    id: ClassVar[str] = "guard"
    title: ClassVar[str] = "Input guard"
    order: ClassVar[int] = 40
    kinds: ClassVar[tuple[str, ...]] = ("guard",)
    reads: ClassVar[tuple[str, ...] | None] = (RANDOM_ATTACK, ADVERSARIAL, PDP)

    min_test_passed: float = threshold(0.99, "share of the scored test rows the guard must pass to be verified")
    max_test_outside: float = threshold(0.01, "share of the test rows breaking a constraint above which the "
                                              "constraint is widened to the test rows (see widen)")
    widen: bool = setting(True, "widen a constraint too many test rows break to the test rows' values (false: "
                                "reject them and say so)")
    max_table_rows: int = budget(40, "rows shown in each of the guard's tables")

    def skip_reason(self, inputs: RemedyInputs) -> str | None:
        return None if inputs.ctx.features else "the model has no input columns"

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        ctx = inputs.ctx
        reference = ctx.X("train") if ctx.has_train else ctx.X("test")
        source = (f"training data ({len(reference):,} rows)" if ctx.has_train
                  else f"test data ({len(reference):,} rows; no training data was given)")
        margin, margin_note = audit_margin(inputs)
        probes = audit_probes(inputs)
        kinds = pdp_erratic_kinds(inputs)
        tighten = {f: {k: "the partial dependence is erratic there" for k in ks if k in ("below", "above")}
                   for f, ks in kinds.items()}
        missing_valid = bool(check_option(inputs, RANDOM_ATTACK, "missing_valid")) if ran(inputs, RANDOM_ATTACK) \
            else False
        build = build_guard(reference, features=ctx.features, categorical=ctx.categorical, margin=margin,
                            source=source, test=ctx.X("test"), breaking=probes.breaking,
                            tighten={f: t for f, t in tighten.items() if t},
                            missing_ok=ctx.features if missing_valid else (), widen=self.widen,
                            max_test_outside=self.max_test_outside)
        guard = replace(build.guard, notes=self._guard_notes(build, margin_note, missing_valid, ctx.has_train))
        m = measure_guard(guard, ctx.X("test"), probes)
        remediation = self._remediation(inputs, build, guard, m, margin)
        artifact = Artifact(GUARD_FILE, guard.dumps().encode("utf-8"), title="Input guard (auditor.Guard.load)")
        return RemedyOutput(remediations=(remediation,), artifacts=(artifact,), notes=self._notes(m, margin_note))

    # ---- the remediation --------------------------------------------------------------------------
    def _remediation(self, inputs: RemedyInputs, build: GuardBuild, guard: Guard, m: GuardMeasurement,
                     margin: float) -> Remediation:
        before: dict[str, Any] = {"test_rows_passed_share": 1.0}
        after: dict[str, Any] = {"test_rows_passed_share": m.test_pass_share}
        if m.breaking_total or m.unmeasured:
            before["breaking_inputs_accepted_share"] = 1.0
            after["breaking_inputs_accepted_share"] = m.breaking_accepted_share
        passes = m.test_pass_share >= self.min_test_passed
        stops_all = m.breaking_rejected == m.breaking_total and not m.unmeasured
        numeric = [r for r in guard.features if r.kind == NUMERIC]
        decisions = build.decisions
        params: dict[str, Any] = {
            "file": GUARD_FILE, "source": guard.source, "margin": margin, "features": len(guard.features),
            "numeric_features": len(numeric), "categorical_features": len(guard.features) - len(numeric),
            "missing_allowed_in": ", ".join(r.name for r in guard.features if r.missing_allowed) or "none",
            "test_rows": m.test.n_rows, "test_rows_rejected": m.test.n_rejected,
            "breaking_inputs": m.breaking_total + m.unmeasured, "breaking_inputs_rejected": m.breaking_rejected,
            "breaking_inputs_unmeasured": m.unmeasured,
            "tightened": _decision_text(decisions, "tightened") or "none",
            "widened": _decision_text(decisions, "widened") or "none",
            "excluded_values": _decision_text(decisions, "excluded") or "none",
        }
        return Remediation(
            id="guard", kind="guard", addresses=tuple(addressed(inputs, m)),
            title="Input guard: reject records outside the domain the model was validated on",
            summary=self._summary(guard, m, margin, passes, stops_all,
                                  [c for c in (RANDOM_ATTACK, ADVERSARIAL, PDP) if ran(inputs, c)]),
            before=before, after=after,
            verified=passes and stops_all, parameters=params, caveats=self._caveats(build, m, passes),
            artifacts=(GUARD_FILE,),
            evidence=Evidence(tables=(self._rules_table(guard), *self._probe_tables(m), *self._test_table(m))))

    def _summary(self, guard: Guard, m: GuardMeasurement, margin: float, passes: bool, stops_all: bool,
                 probed: Sequence[str]) -> str:
        numeric = sum(r.kind == NUMERIC for r in guard.features)
        cat = len(guard.features) - numeric
        parts = [f"{GUARD_FILE} holds the input constraints the model was validated for, from the {guard.source}: "
                 f"{plural(numeric, 'numeric feature')} within the observed range"
                 + (f" plus the {pct(margin, 0)} margin the audit probed" if margin > 0 else "")
                 + f", {plural(cat, 'categorical feature')} limited to the observed levels, missing values allowed in "
                 + (", ".join(r.name for r in guard.features if r.missing_allowed) or "no column") + "."]
        short = "" if passes else f", below the required {pct(self.min_test_passed)}"
        parts.append(f"It passes {m.test.n_passed:,} of the {m.test.n_rows:,} scored test rows "
                     f"({pct(m.test_pass_share)}{short}).")
        if m.breaking_total or m.unmeasured:
            what = rejected_text(m)
            parts.append(f"Of the {plural(m.breaking_total + m.unmeasured, 'input')} that broke the model in the audit "
                         f"it rejects {m.breaking_rejected:,}" + (f" ({what})" if what else "")
                         + (": every one." if stops_all else
                            f"; {m.breaking_total - m.breaking_rejected:,} pass it (in-domain: only a fix of the model "
                            "helps there)" + (f" and {m.unmeasured:,} could not be rebuilt to check" if m.unmeasured
                                              else "") + "."))
        elif probed:
            parts.append(f"No input broke the model in the checks that probe it ({', '.join(probed)}); the guard is "
                         "the validated domain, to reject records the audit never tested the model on.")
        else:
            parts.append("No check probed the model with invented inputs (sensitivity.random_attack, "
                         "sensitivity.adversarial and sensitivity.partial_dependence did not run), so the guard is "
                         "measured on the test rows only.")
        parts.append("Load it with auditor.Guard.load(path) and call .check(frame) before scoring: per row it says "
                     "whether the row passes and which constraint it breaks.")
        return " ".join(parts)

    def _caveats(self, build: GuardBuild, m: GuardMeasurement, passes: bool) -> tuple[str, ...]:
        out = ["The guard marks the domain the audit measured the model on; inside it the model can still be wrong, "
               "and outside it a record is not necessarily wrong: route rejected records to a person or a fallback."]
        widened = [d for d in build.decisions if d.action == "widened"]
        if widened:
            out.append("Widened to the test rows (more of them lay outside the training domain than "
                       f"{pct(self.max_test_outside)}): {_decision_text(widened, 'widened')}; the test pass share is "
                       "then measured on rows that shaped the guard.")
        if m.test.n_rejected:
            top = sorted(m.test.rejected_by().items(), key=lambda kv: -kv[1])[:3]
            n = m.test.n_rejected
            out.append(f"{plural(n, 'scored test row')} {'lies' if n == 1 else 'lie'} outside the guard ("
                       + ", ".join(f"{k}: {v:,}" for k, v in top) + ")"
                       + ("" if passes else "; the guard rejects too many real records to deploy as it is") + ".")
        if m.in_domain_unrebuilt or m.breaking_rejected < m.breaking_rebuilt:
            out.append("Some inputs that broke the model lie inside the validated domain (random in-range values, tiny "
                       "jitter, values the search changed together, or real test rows); no input rule can stop them "
                       "without rejecting real records: fix the model.")
        if m.unmeasured:
            one = m.unmeasured == 1
            out.append(f"{plural(m.unmeasured, 'breaking input')} drawn at random over every column at once "
                       f"{'was' if one else 'were'} not kept by the audit, so whether the guard stops "
                       f"{'it' if one else 'them'} is not measured.")
        out.append("Numeric values are read as numbers (text such as \"12\" passes as 12); categorical levels are "
                   "compared as text unless every level is a number.")
        return tuple(out)

    # ---- tables ------------------------------------------------------------------------------------
    def _rules_table(self, guard: Guard) -> Table:
        records = []
        for r in guard.features:
            numeric = r.kind == NUMERIC
            levels = [value_text(v) for v in r.levels]
            records.append({
                "feature": r.name, "kind": r.kind, "min": r.min if numeric else None, "max": r.max if numeric else None,
                "observed": (f"{value_text(r.observed_min)} to {value_text(r.observed_max)}"
                             if numeric and r.observed_min is not None else ""),
                "levels": "" if numeric else _short(", ".join(levels), 120) + f" ({len(levels)})",
                "missing_allowed": "yes" if r.missing_allowed else "no",
                "excluded": ", ".join(value_text(v) for v in r.excluded), "note": r.note})
        return Table.from_records(
            "guard_rules", "Input constraints (remediation/guard.json)", records,
            columns=("feature", "kind", "min", "max", "observed", "levels", "missing_allowed", "excluded", "note"),
            caption=f"From the {guard.source}. Numeric values must read as finite numbers within [min, max]; "
                    "categorical values must be one of the levels; excluded values broke the model in the audit.",
            max_rows=self.max_table_rows)

    def _probe_tables(self, m: GuardMeasurement) -> tuple[Table, ...]:
        if not len(m.probes) and not m.probes.unrebuilt:
            return ()
        passed = m.probe_result.passed if m.probe_result is not None else np.zeros(0, dtype=bool)
        reasons = m.probe_result.reasons.tolist() if m.probe_result is not None else []
        records = [{"source": p.source, "input": p.label, "in_domain": "yes" if p.in_domain else "no",
                    "model": _FAILURE_TEXT.get(p.failure, p.failure), "guard": "passes" if ok else "rejects",
                    "reason": "; ".join(why)}
                   for p, ok, why in zip(m.probes.probes, passed, reasons) if p.breaking]
        records += [{"source": p.source, "input": p.label + " (values not kept)", "in_domain": "yes" if p.in_domain
                     else "no", "model": _FAILURE_TEXT.get(p.failure, p.failure),
                     "guard": "passes (in-domain)" if p.in_domain else "not measured", "reason": ""}
                    for p in m.probes.unrebuilt]
        records = _counted(records)
        tables = []
        if records:
            tables.append(Table.from_records(
                "guard_breaking", "Inputs that broke the model in the audit, and the guard", records,
                columns=("source", "input", "inputs", "in_domain", "model", "guard", "reason"),
                caption="Each rebuilt on a real in-domain test row with the audit's own values (identical ones "
                        "counted in inputs); in_domain as the audit classified it.", max_rows=self.max_table_rows))
        tables.append(Table.from_records(
            "guard_probes", "Every rebuilt audit input by source and family", _family_records(m),
            columns=("source", "family", "inputs", "broke_model", "rejected"),
            caption="Inputs the model scored soundly are rejected too when they lie outside the guard (an unseen "
                    "level, a value far outside the range)."))
        return tuple(tables)

    def _test_table(self, m: GuardMeasurement) -> tuple[Table, ...]:
        counts = m.test.rejected_by()
        if not counts:
            return ()
        records = [{"constraint": k, "test_rows": v, "share": v / m.test.n_rows} for k, v in counts.items()]
        return (Table.from_records("guard_test", "Scored test rows the guard rejects, by constraint", records,
                                   columns=("constraint", "test_rows", "share"), max_rows=self.max_table_rows),)

    # ---- notes -------------------------------------------------------------------------------------------
    def _guard_notes(self, build: GuardBuild, margin_note: str, missing_valid: bool,
                     has_train: bool) -> tuple[str, ...]:
        data = "training" if has_train else "test"
        notes = [margin_note[0].upper() + margin_note[1:] + ".",
                 "Missing values are allowed in every column (sensitivity.random_attack missing_valid)."
                 if missing_valid else f"Missing values are allowed only where the {data} data had them (or more "
                                       "than the widening share of the scored test rows had them)."]
        if not has_train:
            notes.append("No training data was given: the constraints come from the test data.")
        notes += [f"{d.feature}: {d.action} {d.constraint} ({d.why})." for d in build.decisions]
        return tuple(notes)

    def _notes(self, m: GuardMeasurement, margin_note: str) -> tuple[str, ...]:
        by_source: dict[str, int] = {}
        for p in m.probes.probes:
            by_source[p.source] = by_source.get(p.source, 0) + 1
        rebuilt = ", ".join(f"{v:,} from {k}" for k, v in sorted(by_source.items())) or "none"
        return (f"Measured on all {m.test.n_rows:,} scored test rows and on the inputs the audit tried, rebuilt as "
                f"rows ({rebuilt}); no model call.", margin_note[0].upper() + margin_note[1:] + ".")


# ---- which findings the guard addresses ----------------------------------------------------------------

def addressed(inputs: RemedyInputs, m: GuardMeasurement) -> list[str]:
    """Findings (low or above) of the random attack, the adversarial search and the partial dependence
    whose inputs the guard rejects, every one of them."""
    if m.probe_result is None:
        return []
    rejected = {id(p): not ok for p, ok in zip(m.probes.probes, m.probe_result.passed)}
    out = []
    for f in [*inputs.findings_of(RANDOM_ATTACK, "low"), *inputs.findings_of(ADVERSARIAL, "low"),
              *inputs.findings_of(PDP, "low")]:
        sel = _finding_probes(f, m.probes.probes)
        missed = _finding_probes(f, m.probes.unrebuilt)
        if sel and not missed and all(rejected[id(p)] for p in sel):
            out.append(f.id)
    return sorted(out)


def _finding_probes(f: Finding, probes: Sequence[Probe]) -> list[Probe]:
    """The rebuilt inputs a finding is about (empty: the guard has nothing to show for it)."""
    part = f.id[len(f.check) + 1:].split("/")
    if f.check == RANDOM_ATTACK:
        mine = [p for p in probes if p.source == "random_attack"]
        if part[0] == "guard" and len(part) > 1:
            return [p for p in mine if p.failure == "crash" and part[1] in p.violations and p.column in f.features]
        if part[0] in _FAILURE_KINDS and len(part) > 1:
            col = "" if part[1] == "combined" else part[1]
            return [p for p in mine if p.failure == part[0] and p.column == col]
        if part[0] == "accepts_invalid":
            return [p for p in mine if p.family == "wrong_type" and not p.failure and p.column in f.features]
        return []
    if f.check == ADVERSARIAL and part[0] == "non_finite":
        sel = [p for p in probes if p.source == "adversarial"]
        if f.metrics.get("test_rows_non_finite"):
            sel += [p for p in probes if p.source == "test_rows"]
        return sel
    if f.check == PDP and part[0] == "erratic" and f.features:
        kinds = {k for k in _PDP_KINDS if f"{k}_change" in f.metrics}
        return [p for p in probes
                if p.source == "partial_dependence" and p.column == f.features[0] and p.family in kinds]
    return []


def _family_records(m: GuardMeasurement) -> list[dict[str, Any]]:
    passed = m.probe_result.passed if m.probe_result is not None else np.zeros(0, dtype=bool)
    groups: dict[tuple[str, str], list[int]] = {}
    for p, ok in zip(m.probes.probes, passed):
        g = groups.setdefault((p.source, p.family), [0, 0, 0])
        g[0] += 1
        g[1] += p.breaking
        g[2] += not ok
    return [{"source": s, "family": f, "inputs": n, "broke_model": b, "rejected": r}
            for (s, f), (n, b, r) in sorted(groups.items())]


_CONSTRAINT_TEXT = {"missing": "missing values", "not_a_number": "values that are not numbers",
                    "not_finite": "infinity", "min": "values below the range", "max": "values above the range",
                    "level": "unseen levels", "excluded": "the excluded values"}


def rejected_text(m: GuardMeasurement) -> str:
    """What the guard rejected the breaking inputs for, by constraint: "values above the range (income), ..."."""
    if m.probe_result is None:
        return ""
    breaking = np.array([p.breaking for p in m.probes.probes], dtype=bool)
    hit = m.probe_result.violations.to_numpy(dtype=bool)[breaking].any(axis=0)
    by: dict[str, list[str]] = {}
    for col, used in zip(m.probe_result.violations.columns, hit):
        if used:
            feature, constraint = str(col).rsplit(":", 1)
            by.setdefault(constraint, []).append(feature)
    order = list(_CONSTRAINT_TEXT)
    return "; ".join(f"{_CONSTRAINT_TEXT[c]} in {_join(fs)}" for c, fs in sorted(by.items(),
                                                                               key=lambda kv: order.index(kv[0])))


def _counted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Identical records once, with their count in ``inputs``, first appearance first."""
    counts: dict[tuple, dict[str, Any]] = {}
    for r in records:
        key = tuple(sorted(r.items()))
        if key in counts:
            counts[key]["inputs"] += 1
        else:
            counts[key] = {**r, "inputs": 1}
    return list(counts.values())


def _decision_text(decisions: Sequence[Any], action: str) -> str:
    return "; ".join(f"{d.feature} {d.constraint}" for d in decisions if d.action == action)


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def _short(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"

