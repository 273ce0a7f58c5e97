"""An honest verdict: the gate is never `passed` on incomplete evidence, every config value that can
be checked against the data is checked before any check runs, and the runner's isolation has no hole."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
import skops.io as sio
from conftest import TEST_FAMILY, one_line_error
from sklearn.linear_model import LogisticRegression
from test_cli import cli
from test_engine import Boom, classification_data, classifier

from auditor.api import audit as notebook_audit
from auditor.checks.base import Check, CheckRegistry
from auditor.config import parse_config
from auditor.engine import prepare_objects
from auditor.errors import AuditInputError, ConfigError
from auditor.findings import Finding, Rule, Severity, Status, safe_id


@dataclass
class Flag(Check):
    id: ClassVar[str] = "test.flag"
    family = TEST_FAMILY
    title: ClassVar[str] = "Finds something"
    severity: str = "high"

    def measure(self, ctx):
        return 0.0

    def judge(self, m):
        return [Finding(id=f"{self.id}/age band=under 25", check=self.id, severity=Severity(self.severity),
                        title="t", summary="s",
                        rule=Rule("adverse_impact_ratio", 0.74, "<", 0.8, interval=(0.6, 0.91), p_value=0.0002))]


@dataclass
class Thief(Check):
    """Returns a finding tagged with another check's id: a programming error the runner must isolate."""

    id: ClassVar[str] = "test.thief"
    family = TEST_FAMILY
    title: ClassVar[str] = "Mislabels its finding"

    def measure(self, ctx):
        return 0.0

    def judge(self, m):
        return [Finding(id="other.check/x", check="other.check", severity=Severity.HIGH, title="t", summary="s")]


@dataclass
class Exits(Check):
    """Model code that calls sys.exit must not end the audit."""

    id: ClassVar[str] = "test.exits"
    family = TEST_FAMILY
    title: ClassVar[str] = "Calls sys.exit"

    def measure(self, ctx):
        raise SystemExit(0)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = classification_data()
    return df.iloc[:400], df.iloc[400:]


@pytest.fixture(scope="module")
def model(data):
    return classifier(data[0])


def _run(model, data, checks, fail_on="high", **kw):
    train, test = data
    return prepare_objects(model, test=test, train=train, target="default", registry=CheckRegistry(checks),
                           fail_on=fail_on, **kw).run()


# ---- gate ---------------------------------------------------------------------------------------

def test_a_check_in_error_never_passes_the_gate(model, data) -> None:
    result = _run(model, data, [Boom])
    assert result.gate == "incomplete" and result.exit_code == 3
    doc = result.to_json()
    assert doc["audit"]["gate"] == "incomplete" and doc["audit"]["status"] == "incomplete"


def test_a_failed_gate_takes_precedence_over_an_error(model, data) -> None:
    result = _run(model, data, [Boom, Flag])
    assert result.gate == "failed" and result.exit_code == 1


def test_no_error_and_no_gate_finding_passes(model, data) -> None:
    result = _run(model, data, [Flag], fail_on="none")
    assert result.gate == "passed" and result.exit_code == 0


def test_cover_and_summary_say_not_evaluated(model, data) -> None:
    result = _run(model, data, [Boom])
    html = result.to_html()
    assert "Gate not evaluated" in html and "Gate passed" not in html
    assert "1 check ended in an error" in html and "1 in error" in html
    assert 'gate-incomplete' in html


def test_report_states_each_findings_severity_rule(model, data) -> None:
    html = _run(model, data, [Flag]).to_html()
    assert "Severity rule:" in html
    assert "adverse impact ratio = 0.74 &lt; 0.8; interval 0.6 to 0.91; p = 0.0002" in html


def test_accepted_findings_do_not_count_towards_the_gate(model, data) -> None:
    from dataclasses import replace

    result = _run(model, data, [Flag])
    assert result.gate == "failed"
    check = result.checks[0]
    waived = replace(check, findings=tuple(replace(f, status="accepted") for f in check.findings))
    assert replace(result, checks=(waived,)).gate == "passed"


# ---- runner isolation ---------------------------------------------------------------------------

def test_a_finding_of_another_check_is_an_error_not_an_abort(model, data) -> None:
    result = _run(model, data, [Thief, Flag])
    thief, flag = result.check("test.thief"), result.check("test.flag")
    assert thief.status is Status.ERROR and "another check" in thief.error
    assert flag.status is Status.OK and result.exit_code == 1


def test_sys_exit_in_a_check_is_recorded_as_error(model, data) -> None:
    result = _run(model, data, [Exits, Flag])
    assert result.check("test.exits").status is Status.ERROR and "SystemExit" in result.check("test.exits").error
    assert result.check("test.flag").status is Status.OK


def test_error_messages_are_never_empty(model, data) -> None:
    @dataclass
    class Empty(Check):
        id: ClassVar[str] = "test.empty"
        family = TEST_FAMILY
        title: ClassVar[str] = "Raises with no message"

        def measure(self, ctx):
            raise ValueError("first line\n\n")

    assert _run(model, data, [Empty]).checks[0].error == "ValueError: first line"


# ---- finding ids and rule -----------------------------------------------------------------------

def test_finding_ids_are_url_safe_and_carry_their_rule(model, data) -> None:
    result = _run(model, data, [Flag])
    f = result.to_json()["findings"][0]
    assert f["id"] == "test.flag/age_band=under_25"
    assert f["status"] == "open"
    assert f["rule"] == {"metric": "adverse_impact_ratio", "value": 0.74, "operator": "<", "threshold": 0.8,
                         "interval": [0.6, 0.91], "p_value": 0.0002}


@pytest.mark.parametrize("raw,expected", [
    ("fairness.disparate_impact/age_band=under 25", "fairness.disparate_impact/age_band=under_25"),
    ("residual.segments/sex=-0.0446&s4in[-0.0395,0.0159)", "residual.segments/sex=-0.0446&s4in_-0.0395_0.0159"),
    ("a/b:c+d", "a/b:c+d"),
])
def test_safe_id(raw: str, expected: str) -> None:
    import re

    assert safe_id(raw) == expected
    assert re.fullmatch(r"[A-Za-z0-9._/=&:+-]+", safe_id(raw))


# ---- every config value checked before any check runs --------------------------------------------

def test_reference_group_typo_is_named_with_a_suggestion(model, data) -> None:
    train, test = data
    with pytest.raises(AuditInputError, match=r"data\.reference\.sex.*'M'.*did you mean 'm'"):
        prepare_objects(model, test=test, train=train, target="default", protected=["sex"], reference={"sex": "M"})


def test_favorable_must_be_a_class(model, data) -> None:
    train, test = data
    with pytest.raises(AuditInputError, match=r"model\.favorable.*'approved'.*classes"):
        prepare_objects(model, test=test, train=train, target="default", favorable="approved")


def test_expect_names_must_be_features(model, data) -> None:
    train, test = data
    with pytest.raises(AuditInputError, match=r"expect\.monotone.*'incme'.*did you mean 'income'"):
        prepare_objects(model, test=test, train=train, target="default", expect={"monotone": {"incme": 1}})
    with pytest.raises(AuditInputError, match=r"data\.categorical.*'regoin'"):
        prepare_objects(model, test=test, train=train, target="default", categorical=["regoin"])


@pytest.mark.parametrize("check_id,options,match", [
    ("fairness.disparate_impact", {"alpha": 1.5}, "between 0 and 1"),
    ("performance.metrics", {"confidence": 0.0}, "between 0 and 1"),
    ("fairness.disparate_impact", {"min_group_size": 0}, "positive whole number"),
    ("fairness.disparate_impact", {"bands": {"sex": [1, 2]}, "min_ratio": 0.8}, None),
    ("fairness.disparate_impact", {"bands": {"age": [25, 40]}}, r"bands\.age.*not in \[data\] protected"),
    ("fairness.error_parity", {"bands": {"sex": "25"}}, r"bands\.sex.*list of cut points"),
    ("fairness.proxy", {"bands": {"sex": [40, 25]}}, "increasing"),
])
def test_check_options_are_range_checked_at_config_time(model, data, check_id, options, match) -> None:
    train, test = data
    if match is None:  # a valid value passes
        prepare_objects(model, test=test, train=train, target="default", protected=["sex"],
                        checks={check_id: options})
        return
    with pytest.raises(ConfigError, match=match):
        prepare_objects(model, test=test, train=train, target="default", protected=["sex"],
                        checks={check_id: options})


def test_notebook_api_names_a_misspelt_keyword(model, data) -> None:
    train, test = data
    with pytest.raises(ConfigError, match=r"unknown keyword 'protectd'.*did you mean 'protected'"):
        notebook_audit(model, test=test, train=train, target="default", protectd=["sex"])


def test_parse_config_still_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="did you mean 'protected'"):
        parse_config({"model": {"path": "m.skops"}, "data": {"test": "t.csv", "target": "y", "protectd": []}},
                     base_dir=Path("."))


# ---- the same through the CLI: exit 2, one line, no report folder --------------------------------

@pytest.fixture()
def project(tmp_path: Path) -> Path:
    df = classification_data(500)
    df.iloc[:350].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[350:].to_csv(tmp_path / "test.csv", index=False)
    model = LogisticRegression().fit(df.iloc[:350][["income", "debt"]], df.iloc[:350]["default"])
    sio.dump(model, tmp_path / "model.skops")
    return tmp_path


def _config(project: Path, extra_model: str = "", extra_data: str = "", extra: str = "") -> Path:
    path = project / "audit.toml"
    path.write_text('[audit]\nname = "v"\n[model]\npath = "model.skops"\n' + extra_model +
                    '[data]\ntrain = "train.csv"\ntest = "test.csv"\ntarget = "default"\n'
                    'features = ["income", "debt"]\nprotected = ["sex"]\n' + extra_data + extra)
    return path


@pytest.mark.parametrize("extra_model,extra_data,extra,words", [
    ("", 'reference = { sex = "Male" }\n', "", ["data.reference.sex", "'Male'"]),
    ('favorable = 2\n', "", "", ["model.favorable", "2"]),
    ("", "", '[expect]\nmonotone = { incom = 1 }\n', ["expect.monotone", "'incom'", "did you mean 'income'"]),
    ("", "", '[checks."fairness.disparate_impact"]\nbands = { sex = "x" }\n', ["bands.sex"]),
])
def test_cli_refuses_bad_values_before_running(project: Path, extra_model, extra_data, extra, words) -> None:
    out = project / "out"
    line = one_line_error(cli("run", str(_config(project, extra_model, extra_data, extra)), "--out", str(out)))
    for w in words:
        assert w in line, line
    assert not out.exists()


def test_cli_incomplete_audit_says_not_evaluated(project: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import auditor.engine
    from auditor.cli import _main

    monkeypatch.setattr(auditor.engine, "default_registry", lambda: CheckRegistry([Boom]))
    out = tmp_path / "r"
    code = _main(_config(project), out=out, seed=None, fail_on=None, formats="json,html", force=False,
                 debug=False, demo=False)
    err = capsys.readouterr().err
    assert code == 3
    assert "NOT EVALUATED: 1 check(s) in error" in err and "PASSED" not in err
    doc = json.loads((out / "findings.json").read_text())
    assert doc["audit"]["gate"] == "incomplete"
    assert "Gate not evaluated" in (out / "report.html").read_text()


def test_auditor_checks_prints_defaults_as_toml() -> None:
    proc = cli("checks")
    assert proc.returncode == 0
    assert "bands = {}" in proc.stdout and "(required)" not in proc.stdout
    assert "intersections = true" in proc.stdout and "True" not in proc.stdout
    assert "low_fpr = [0.01, 0.05]" in proc.stdout


def test_an_option_naming_a_class_is_checked_before_the_run() -> None:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    model = LogisticRegression(max_iter=500).fit(frame.drop(columns="target"), frame["target"])
    with pytest.raises(AuditInputError, match=r"explain_class.*'7'.*not one of the model's classes"):
        prepare_objects(model, test=frame, target="target", checks={"explain.importance": {"explain_class": "7"}})
