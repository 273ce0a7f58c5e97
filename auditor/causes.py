"""Root causes: findings that share a cause, grouped into issues (``issues[]`` of findings.json).

One cause often shows up as several findings. ``find_issues`` groups them by these rules, applied
in this order (a finding joins the first group that claims it); only findings of severity low or
above take part, since an ``info`` finding reports the absence of a problem:

1. **disparity**: fairness.disparate_impact, fairness.error_parity and fairness.proxy findings that
   name the same protected group (the same column = value pairs) are one disparity. A proxy finding
   that names no group joins the disparity on its protected column when there is exactly one.
2. **leaked_feature**: a data.leakage finding on one feature (``power/<f>``: it alone predicts the
   target; ``id_like/<f>``: an identifier) is the anchor; explain.importance ``dominant/<f>`` on the
   same feature joins it, and so does an easy security.model_extraction copy (a model that rests on
   one input is cheap to copy; with several leaked features, the copy joins the most severe one, then
   the first by name). Without the data.leakage anchor, dominance is an issue of its own.
3. **overfit**: a performance.overfit finding (a train/test gap) is the anchor; then
   security.membership_inference, an over-confident performance.calibration finding and every
   sensitivity.adversarial knife-edge step join it. Without the anchor they stay apart.
4. **feature_sensitivity**: sensitivity.partial_dependence, sensitivity.adversarial and
   sensitivity.random_attack findings that name exactly one feature, the same one, are one issue.

A rule's group of one finding, and every finding no rule groups, is an issue of its own: its id is the
finding's id and its title the finding's title. Info findings belong to no issue (the findings
register still lists them). An issue's severity is the strongest among its open findings; when every
finding of the issue is accepted (waived), the strongest among those, and the issue counts as accepted.
Issue ids are deterministic and URL-safe: ``disparity/<column>=<value>``, ``leaked_feature/<feature>``,
``overfit``, ``feature_sensitivity/<feature>``, or the finding's id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .findings import Finding, Severity, safe_id, sort_findings
from .wording import plural, quoted

FAIRNESS = ("fairness.disparate_impact", "fairness.error_parity", "fairness.proxy")
SENSITIVITY = ("sensitivity.partial_dependence", "sensitivity.adversarial", "sensitivity.random_attack")
_FAIRNESS_WORDS = {"fairness.disparate_impact": "adverse impact", "fairness.error_parity": "an error-rate gap",
                   "fairness.proxy": "a proxy"}
_SENSITIVITY_WORDS = {"sensitivity.partial_dependence": "partial dependence",
                      "sensitivity.adversarial": "adversarial search", "sensitivity.random_attack": "random inputs"}


@dataclass(frozen=True)
class Issue:
    """One root cause: the findings it explains (ids, most severe first), its strongest severity and a
    plain-language title. ``rule`` names the grouping rule (``single`` for a finding on its own)."""

    id: str
    severity: Severity
    title: str
    findings: tuple[str, ...]
    rule: str = "single"
    summary: str = ""
    accepted: int = 0  # how many of its findings are accepted by a waiver

    @property
    def all_accepted(self) -> bool:
        return self.accepted == len(self.findings)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "severity": self.severity.value, "title": self.title}
        if self.summary:
            out["summary"] = self.summary
        out["findings"] = list(self.findings)
        return out


@dataclass
class _Group:
    rule: str
    key: str  # the id part after the rule name ('' for overfit)
    members: list[Finding]
    words: Callable[[list[Finding]], tuple[str, str]]  # members -> (title, summary)


def find_issues(findings: Sequence[Finding]) -> tuple[Issue, ...]:
    """Group findings by shared cause (module docstring). Pure: the same findings give the same issues."""
    symptoms = [f for f in sort_findings(findings) if f.severity is not Severity.INFO]
    claimed: set[str] = set()
    groups: list[_Group] = []
    for rule in (_disparities, _leaked_features, _overfit, _feature_sensitivity):
        for g in rule([f for f in symptoms if f.id not in claimed]):
            claimed.update(f.id for f in g.members)
            groups.append(g)
    issues = [_issue(g) if len(g.members) > 1 else _single(g.members[0]) for g in groups]
    issues += [_single(f) for f in symptoms if f.id not in claimed]
    return tuple(sorted(issues, key=lambda i: (i.all_accepted, -i.severity.rank, -len(i.findings), i.id)))


def issue_of(issues: Sequence[Issue]) -> dict[str, str]:
    """Finding id -> the id of its issue."""
    return {fid: i.id for i in issues for fid in i.findings}


# ---- the rules --------------------------------------------------------------------------------

def _group_text(pairs: Sequence[tuple[str, str]]) -> str:
    return " & ".join(f"{c} = {v}" for c, v in pairs)


def _seen_as(words: Sequence[str]) -> str:
    words = list(dict.fromkeys(words))
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _disparities(findings: list[Finding]) -> list[_Group]:
    by_group: dict[tuple[tuple[str, str], ...], list[Finding]] = {}
    for f in findings:
        if f.check in FAIRNESS and f.groups:
            by_group.setdefault(tuple(sorted(f.groups)), []).append(f)
    for f in findings:
        if f.check == "fairness.proxy" and not f.groups and f.features:
            column = f.features[-1]  # a proxy finding names (feature, protected) or (protected,)
            keys = [k for k in by_group if column in {c for c, _ in k}]
            if len(keys) == 1:
                by_group[keys[0]].append(f)

    def words_for(pairs: tuple[tuple[str, str], ...]) -> Callable[[list[Finding]], tuple[str, str]]:
        def words(members: list[Finding]) -> tuple[str, str]:
            seen = _seen_as([_FAIRNESS_WORDS[f.check] for f in sorted(members, key=lambda f: FAIRNESS.index(f.check))])
            who = _group_text(pairs)
            return (f"One disparity for {who}, seen as {seen}",
                    f"These findings describe one disadvantage of {who} from several sides: outcome rates "
                    "(fairness.disparate_impact), error rates (fairness.error_parity) and inputs that stand in for "
                    "the group (fairness.proxy). They share a cause, so address them together: the decision rule "
                    "or the inputs that carry the group.")
        return words

    return [_Group("disparity", "&".join(f"{c}={v}" for c, v in k), members, words_for(k))
            for k, members in sorted(by_group.items())]


def _single_feature(f: Finding, check: str, prefixes: Sequence[str]) -> str | None:
    if f.check == check and len(f.features) == 1 and any(f.id.startswith(f"{check}/{p}/") for p in prefixes):
        return f.features[0]
    return None


def _leaked_features(findings: list[Finding]) -> list[_Group]:
    anchors: dict[str, list[Finding]] = {}
    for f in findings:
        feature = _single_feature(f, "data.leakage", ("power", "id_like"))
        if feature is not None:
            anchors.setdefault(feature, []).append(f)
    if not anchors:
        return []
    for f in findings:
        feature = _single_feature(f, "explain.importance", ("dominant",))
        if feature in anchors:
            anchors[feature].append(f)
    strongest = min(anchors, key=lambda k: (-max(f.severity.rank for f in anchors[k]), k))
    anchors[strongest] += [f for f in findings if f.check == "security.model_extraction"]

    def words_for(feature: str) -> Callable[[list[Finding]], tuple[str, str]]:
        def words(members: list[Finding]) -> tuple[str, str]:
            seen = []
            for f in members:
                if f.check == "data.leakage":
                    seen.append("an identifier-like input" if "/id_like/" in f.id else "single-feature power")
                elif f.check == "explain.importance":
                    seen.append("dominance of the attributions")
                else:
                    seen.append("an easy copy of the model")
            name = quoted(feature)
            return (f"{name} may be leaked or dominant, seen as {_seen_as(seen)}",
                    f"The model rests on {name}: it predicts the target on its own or identifies rows "
                    "(data.leakage), and what follows from that (its share of the attributions, how cheaply the "
                    f"model can be copied) is reported by other checks. Establish first whether {name} is known at "
                    "decision time, before the outcome, and reliable in production.")
        return words

    return [_Group("leaked_feature", k, anchors[k], words_for(k)) for k in sorted(anchors)]


def _over_confident(f: Finding) -> bool:
    from .analysis.calibration import miscalibration_direction

    m: Mapping[str, Any] = f.metrics
    try:
        direction = miscalibration_direction(float(m["calibration_slope"]), float(m["mean_predicted"]),
                                             float(m["observed_rate"]))
    except (KeyError, TypeError, ValueError):
        return False
    return direction == "over-confident" or (f.id.endswith("/top_label_ece") and direction == "too high")


def _overfit(findings: list[Finding]) -> list[_Group]:
    anchors = [f for f in findings if f.check == "performance.overfit"]
    if not anchors:
        return []
    members = anchors + [f for f in findings if f.check == "security.membership_inference"
                         or (f.check == "performance.calibration" and _over_confident(f))
                         or f.id.startswith("sensitivity.adversarial/knife_edge/")]
    order = ("performance.overfit", "security.membership_inference", "performance.calibration",
             "sensitivity.adversarial")
    labels = dict(zip(order, ("a train/test gap", "membership leakage", "over-confidence", "knife-edge steps")))

    def words(group: list[Finding]) -> tuple[str, str]:
        seen = _seen_as([labels[f.check] for f in sorted(group, key=lambda f: order.index(f.check))])
        return (f"The model is overfit, seen as {seen}",
                "The model performs clearly better on its training rows than on new ones (performance.overfit): "
                "it has partly memorised them. Leaking which rows were in the training data, over-confident "
                "probabilities and sharp steps in the score are common consequences of that. Regularising the "
                "model and choosing its complexity by cross-validation addresses them together.")

    return [_Group("overfit", "", members, words)]


def _feature_sensitivity(findings: list[Finding]) -> list[_Group]:
    by_feature: dict[str, list[Finding]] = {}
    for f in findings:
        if f.check in SENSITIVITY and len(f.features) == 1:
            by_feature.setdefault(f.features[0], []).append(f)

    def words_for(feature: str) -> Callable[[list[Finding]], tuple[str, str]]:
        def words(members: list[Finding]) -> tuple[str, str]:
            seen = _seen_as([_SENSITIVITY_WORDS[f.check]
                             for f in sorted(members, key=lambda f: SENSITIVITY.index(f.check))])
            name = quoted(feature)
            return (f"How the model responds to {name}: {plural(len(members), 'finding')} from {seen}",
                    f"Several sensitivity analyses flag the same input, {name}; read them together, since "
                    "they describe one behaviour of the model in that input.")
        return words

    return [_Group("feature_sensitivity", k, v, words_for(k)) for k, v in sorted(by_feature.items())]


# ---- issues -------------------------------------------------------------------------------------

def _severity(members: Sequence[Finding]) -> Severity:
    open_ = [f for f in members if f.status != "accepted"]
    return max(open_ or members, key=lambda f: f.severity.rank).severity


def _accepted_note(members: Sequence[Finding]) -> str:
    n = sum(f.status == "accepted" for f in members)
    if not n:
        return ""
    if n == len(members):
        return f" All {len(members)} findings are accepted by waivers."
    return f" {n} of its {len(members)} findings {'is' if n == 1 else 'are'} accepted by waivers."


def _issue(g: _Group) -> Issue:
    members = sort_findings(g.members)
    title, summary = g.words(members)
    return Issue(id=safe_id(f"{g.rule}/{g.key}" if g.key else g.rule), severity=_severity(members), title=title,
                 summary=summary + _accepted_note(members), findings=tuple(f.id for f in members), rule=g.rule,
                 accepted=sum(f.status == "accepted" for f in members))


def _single(f: Finding) -> Issue:
    return Issue(id=f.id, severity=f.severity, title=f.title, findings=(f.id,),
                 accepted=int(f.status == "accepted"))
