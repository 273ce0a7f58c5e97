"""Root causes (auditor/causes.py): planted combinations of findings are grouped into one issue each,
unrelated findings stay apart, and findings.json carries the issues and each finding's issue."""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace
from datetime import date

import pytest
from conftest import SCHEMA

from auditor.causes import find_issues, issue_of
from auditor.findings import Finding, Severity, Status
from auditor.waivers import parse_waivers, waive_checks

UNDER_25 = (("age_band", "under 25"),)


def f(fid: str, severity: Severity = Severity.MEDIUM, *, features: tuple[str, ...] = (),
      groups: tuple[tuple[str, str], ...] = (), metrics: dict | None = None, status: str = "open") -> Finding:
    """A finding shaped as the check named by the id's first part produces it."""
    return Finding(id=fid, check=fid.split("/")[0], severity=severity, title=f"title of {fid}", summary="s",
                   features=features, groups=groups, metrics=metrics or {}, status=status)


OVER_CONFIDENT = {"calibration_slope": 0.55, "mean_predicted": 0.5, "observed_rate": 0.5}
UNDER_CONFIDENT = {"calibration_slope": 1.6, "mean_predicted": 0.5, "observed_rate": 0.5}


def disparity() -> list[Finding]:
    return [f("fairness.disparate_impact/age_band=under_25", groups=UNDER_25, features=("age_band",)),
            f("fairness.error_parity/age_band=under_25", groups=UNDER_25, features=("age_band",)),
            f("fairness.proxy/age_band/age", groups=UNDER_25, features=("age", "age_band"))]


def overfit() -> list[Finding]:
    return [f("performance.overfit/auc_gap", Severity.HIGH),
            f("security.membership_inference/attack", Severity.MEDIUM),
            f("performance.calibration/ece", Severity.MEDIUM, metrics=OVER_CONFIDENT),
            f("sensitivity.adversarial/knife_edge/duration", Severity.LOW, features=("duration",))]


def leak() -> list[Finding]:
    return [f("data.leakage/power/paid_late", Severity.HIGH, features=("paid_late",)),
            f("explain.importance/dominant/paid_late", Severity.MEDIUM, features=("paid_late",)),
            f("security.model_extraction/copy", Severity.MEDIUM)]


def by_finding(findings: list[Finding]) -> dict[str, str]:
    return issue_of(find_issues(findings))


def members(findings: list[Finding], issue_id: str) -> set[str]:
    return {fid for fid, iid in by_finding(findings).items() if iid == issue_id}


# ---- the rules -----------------------------------------------------------------------------------

def test_one_groups_disparity_is_one_issue_and_another_group_stays_apart() -> None:
    other = f("fairness.disparate_impact/sex=female", Severity.LOW, groups=(("sex", "female"),), features=("sex",))
    fine = f("fairness.disparate_impact/age_band=25_and_over", Severity.INFO, groups=(("age_band", "25 and over"),))
    issues = find_issues([*disparity(), other, fine])
    (group,) = [i for i in issues if i.rule == "disparity"]
    assert group.id == "disparity/age_band=under_25" and group.severity is Severity.MEDIUM
    assert set(group.findings) == {x.id for x in disparity()}
    assert group.title == "One disparity for age_band = under 25, seen as adverse impact, an error-rate gap and a proxy"
    owner = issue_of(issues)
    assert owner[other.id] == other.id  # control: another group is an issue of its own
    assert fine.id not in owner  # an info finding belongs to no issue


def test_a_proxy_without_a_group_joins_the_only_disparity_on_its_column() -> None:
    loose = f("fairness.proxy/age_band/all_features", Severity.LOW, features=("age_band",))
    assert by_finding([*disparity(), loose])[loose.id] == "disparity/age_band=under_25"
    # control: with two disparities on the column, it is not clear which one it carries
    second = f("fairness.disparate_impact/age_band=over_70", groups=(("age_band", "over 70"),))
    second_gap = f("fairness.error_parity/age_band=over_70", groups=(("age_band", "over 70"),))
    assert by_finding([*disparity(), second, second_gap, loose])[loose.id] == loose.id


def test_an_overfit_model_is_one_issue_when_the_overfit_finding_is_there() -> None:
    issues = find_issues(overfit())
    assert [(i.id, i.severity, len(i.findings)) for i in issues] == [("overfit", Severity.HIGH, 4)]
    assert issues[0].title == ("The model is overfit, seen as a train/test gap, membership leakage, over-confidence "
                               "and knife-edge steps")
    # control: without the train/test gap, nothing says the other three share a cause
    without = [x for x in overfit() if x.check != "performance.overfit"]
    assert sorted(i.id for i in find_issues(without)) == sorted(x.id for x in without)


def test_only_over_confidence_joins_the_overfit_issue() -> None:
    under = f("performance.calibration/ece", Severity.MEDIUM, metrics=UNDER_CONFIDENT)
    findings = [overfit()[0], under]
    assert by_finding(findings)[under.id] == under.id
    top_label_high = f("performance.calibration/top_label_ece", Severity.MEDIUM,
                       metrics={"calibration_slope": 1.0, "mean_predicted": 0.9, "observed_rate": 0.8})
    assert by_finding([overfit()[0], top_label_high])[top_label_high.id] == "overfit"


def test_a_leaked_feature_is_one_issue_and_another_features_dominance_stays_apart() -> None:
    other = f("explain.importance/dominant/income", Severity.LOW, features=("income",))
    issues = find_issues([*leak(), other])
    owner = issue_of(issues)
    assert {k for k, v in owner.items() if v == "leaked_feature/paid_late"} == {x.id for x in leak()}
    assert owner[other.id] == other.id
    group = next(i for i in issues if i.id == "leaked_feature/paid_late")
    assert group.severity is Severity.HIGH and "'paid_late' may be leaked or dominant" in group.title
    # control: without the data.leakage finding, dominance and an easy copy are separate issues
    alone = leak()[1:]
    assert sorted(i.id for i in find_issues(alone)) == sorted(x.id for x in alone)


def test_an_easy_copy_joins_the_most_severe_leaked_feature() -> None:
    second = [f("data.leakage/power/a_weak", Severity.LOW, features=("a_weak",)),
              f("explain.importance/dominant/a_weak", Severity.LOW, features=("a_weak",))]
    owner = by_finding([*leak(), *second])
    assert owner["security.model_extraction/copy"] == "leaked_feature/paid_late"
    assert owner["explain.importance/dominant/a_weak"] == "leaked_feature/a_weak"


def test_one_features_sensitivity_findings_are_one_issue() -> None:
    findings = [f("sensitivity.partial_dependence/interaction/duration", Severity.LOW, features=("duration",)),
                f("sensitivity.adversarial/knife_edge/duration", Severity.LOW, features=("duration",)),
                f("sensitivity.random_attack/unstable/duration", Severity.MEDIUM, features=("duration",)),
                f("sensitivity.partial_dependence/interaction/credit_amount", Severity.LOW,
                  features=("credit_amount",)),
                f("sensitivity.random_attack/accepts_invalid", Severity.LOW, features=("job", "duration"))]
    owner = by_finding(findings)
    assert {k for k, v in owner.items() if v == "feature_sensitivity/duration"} == {x.id for x in findings[:3]}
    # controls: another feature, and a finding about several features, stay apart
    assert owner[findings[3].id] == findings[3].id and owner[findings[4].id] == findings[4].id
    # with an overfit finding, the knife edge is read as a symptom of overfitting instead
    with_overfit = by_finding([*findings, overfit()[0]])
    assert with_overfit["sensitivity.adversarial/knife_edge/duration"] == "overfit"


def test_unrelated_findings_stay_apart() -> None:
    findings = [f("data.drift/income", Severity.MEDIUM, features=("income",)),
                f("benchmark.comparison/not_better", Severity.MEDIUM),
                f("residual.segments/sex=female", Severity.MEDIUM, groups=(("sex", "female"),)),
                f("fairness.disparate_impact/sex=female", Severity.MEDIUM, groups=(("sex", "female"),)),
                f("security.membership_inference/attack", Severity.LOW),
                f("explain.importance/dominant/income", Severity.LOW, features=("income",))]
    issues = find_issues(findings)
    assert all(i.rule == "single" for i in issues) and len(issues) == len(findings)
    assert {i.id: i.title for i in issues}["data.drift/income"] == "title of data.drift/income"


# ---- severity, accepted findings, order and ids ----------------------------------------------------

def test_an_issue_takes_the_strongest_open_severity_and_counts_accepted_findings() -> None:
    trio = disparity()
    trio[0] = replace(trio[0], severity=Severity.HIGH, status="accepted")
    trio[1] = replace(trio[1], severity=Severity.LOW)
    trio[2] = replace(trio[2], severity=Severity.LOW)
    (issue,) = find_issues(trio)
    assert issue.severity is Severity.LOW and issue.accepted == 1 and not issue.all_accepted
    assert "1 of its 3 findings is accepted by waivers" in issue.summary
    everything = [replace(x, status="accepted") for x in trio]
    (issue,) = find_issues(everything)
    assert issue.severity is Severity.HIGH and issue.all_accepted


def test_open_issues_come_first_strongest_first() -> None:
    accepted_high = f("data.drift/income", Severity.HIGH, status="accepted")
    issues = find_issues([accepted_high, f("benchmark.comparison/not_better", Severity.LOW), *overfit()])
    assert [i.id for i in issues] == ["overfit", "benchmark.comparison/not_better", "data.drift/income"]


def test_issues_are_deterministic_and_url_safe() -> None:
    findings = [*disparity(), *overfit(), *leak(),
                f("fairness.disparate_impact/race=Black&sex=female", groups=(("race", "Black"), ("sex", "female"))),
                f("fairness.error_parity/race=Black&sex=female", groups=(("sex", "female"), ("race", "Black")))]
    first = find_issues(findings)
    shuffled = list(findings)
    random.Random(0).shuffle(shuffled)
    assert find_issues(shuffled) == first
    assert "disparity/race=Black&sex=female" in {i.id for i in first}
    assert all(re.fullmatch(r"[A-Za-z0-9._/=&:+-]+", i.id) for i in first)


# ---- findings.json -------------------------------------------------------------------------------

def test_findings_json_validates_with_waivers_and_issues() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from test_render import make_result

    base = make_result(errored=False)
    checks = []
    for c in base.checks:
        if c.id.startswith("fairness."):
            mine = tuple(x for x in disparity() if x.check == c.id)
            c = replace(c, status=Status.OK, reason="", findings=mine)
        checks.append(c)
    waivers = parse_waivers([{"finding": "fairness.proxy/*", "reason": "age_band is derived from age",
                              "approved_by": "A. Smith", "expires": "2030-01-01"},
                             {"finding": "security.*", "reason": "r", "approved_by": "a", "expires": "2020-01-01"}])
    result = replace(base, checks=waive_checks(checks, waivers, date(2026, 1, 2)))
    doc = json.loads(json.dumps(result.to_json()))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    issues = {i["id"]: i for i in doc["issues"]}
    assert issues["disparity/age_band=under_25"]["findings"] == sorted(x.id for x in disparity())
    for finding in doc["findings"]:
        if finding["severity"] == "info":
            assert "issue" not in finding
        else:
            assert finding["id"] in issues[finding["issue"]]["findings"]
    proxy = next(x for x in doc["findings"] if x["id"] == "fairness.proxy/age_band/age")
    assert proxy["status"] == "accepted" and proxy["waiver"]["approved_by"] == "A. Smith"
    assert doc["summary"]["accepted"] == 1
    assert {x["id"] for x in doc["findings"] if x["check"] == "audit.waivers"} == {
        "audit.waivers/expired/security._all"}
    html = result.to_html()
    assert 'id="issue-disparity-age-band-under-25"' in html and "One disparity for age_band = under 25" in html
