"""Config validation: unknown keys are errors that name the key; paths resolve against the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.config import load_config, parse_config, validate_check_options
from auditor.errors import ConfigError

BASE = {"model": {"path": "m.skops"}, "data": {"test": "t.csv", "target": "y"}}


def parse(extra: dict | None = None, base_dir: Path = Path("/cfg")):
    raw = {k: dict(v) for k, v in BASE.items()}
    for section, values in (extra or {}).items():
        raw.setdefault(section, {}).update(values)
    return parse_config(raw, base_dir=base_dir)


def test_defaults_match_the_contract() -> None:
    cfg = parse()
    assert cfg.audit.seed == 0 and cfg.audit.fail_on == "high"
    assert cfg.model.threshold == 0.5 and cfg.model.trusted is False
    assert cfg.report.formats == ("html", "pdf", "json")
    assert cfg.model.path == "/cfg/m.skops" and cfg.data.test == "/cfg/t.csv"
    assert cfg.report.out == "/cfg/reports"


@pytest.mark.parametrize("section,key,hint", [
    ("data", "targte", "target"), ("model", "treshold", "threshold"), ("audit", "sed", "seed"),
])
def test_unknown_key_is_named_with_a_suggestion(section: str, key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse({section: {key: 1}})
    assert f"'{section}.{key}'" in str(err.value) and f"'{hint}'" in str(err.value)


def test_unknown_section() -> None:
    with pytest.raises(ConfigError, match=r"\[modle\].*'model'"):
        parse_config({**BASE, "modle": {}}, base_dir=Path("/"))


@pytest.mark.parametrize("extra,match", [
    ({"audit": {"fail_on": "critical"}}, "audit.fail_on"),
    ({"model": {"threshold": 1.5}}, "model.threshold"),
    ({"model": {"task": "ranking"}}, "model.task"),
    ({"expect": {"monotone": {"x": 2}}}, "expect.monotone.x"),
    ({"data": {"protected": "sex"}}, "data.protected"),
    ({"report": {"formats": ["docx"]}}, "report.formats"),
    ({"data": {"reference": {"race": "x"}}}, "data.reference.race"),
])
def test_bad_values_are_named(extra: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse(extra)


def test_required_keys() -> None:
    with pytest.raises(ConfigError, match="data.target"):
        parse_config({"model": {"path": "m"}, "data": {"test": "t.csv"}}, base_dir=Path("/"))


def test_model_object_specs() -> None:
    assert parse({"model": {"path": "pkg.module:MODEL"}}).model.path == "pkg.module:MODEL"
    assert parse({"model": {"path": "src/m.py:build"}}).model.path == "/cfg/src/m.py:build"


def test_check_options_are_validated_against_the_registry() -> None:
    known = {"data.drift": ("psi_high", "alpha")}
    cfg = parse({"checks": {"skip": ["data.drift"], "data.drift": {"psi_high": 0.3}}})
    validate_check_options(cfg, known)
    with pytest.raises(ConfigError, match=r"psi_hgh.*psi_high"):
        validate_check_options(parse({"checks": {"data.drift": {"psi_hgh": 0.3}}}), known)
    with pytest.raises(ConfigError, match="data.drfit"):
        validate_check_options(parse({"checks": {"skip": ["data.drfit"]}}), known)


def test_load_config_reports_toml_errors(tmp_path: Path) -> None:
    bad = tmp_path / "a.toml"
    bad.write_text("[model\npath = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_check_option_types_follow_the_defaults() -> None:
    known = {"data.drift": {"psi_high": 0.25, "rows": 500, "figure": True}}
    validate_check_options(parse({"checks": {"data.drift": {"psi_high": 1, "rows": 100, "figure": False}}}), known)
    for bad, match in ((("psi_high", "high"), "must be a number"), (("rows", 10.5), "whole number"),
                       (("figure", 1), "true or false")):
        with pytest.raises(ConfigError, match=match):
            validate_check_options(parse({"checks": {"data.drift": {bad[0]: bad[1]}}}), known)


def test_schema_copy_matches_the_contract() -> None:
    """tests/contract holds a copy of the contract's schema for clones without the shared folder."""
    from conftest import SCHEMA_COPY, SHARED_SCHEMA

    if not SHARED_SCHEMA.is_file():
        pytest.skip("the shared contract folder is not beside this checkout")
    assert SCHEMA_COPY.read_bytes() == SHARED_SCHEMA.read_bytes()


def test_an_option_whose_description_gives_zero_a_meaning_takes_zero() -> None:
    from auditor.checks import default_registry
    from auditor.config import validate_check_options

    registry = default_registry()
    base = {"model": {"path": "m.skops"}, "data": {"test": "t.csv", "target": "y"}}
    ok = parse_config({**base, "checks": {"sensitivity.partial_dependence": {"ale_bins": 0}}}, base_dir=Path.cwd())
    validate_check_options(ok, registry.defaults(), registry)  # 0: no ALE
    bad = parse_config({**base, "checks": {"sensitivity.partial_dependence": {"grid_size": 0}}}, base_dir=Path.cwd())
    with pytest.raises(ConfigError, match="grid_size"):
        validate_check_options(bad, registry.defaults(), registry)


# ---- [engine] ---------------------------------------------------------------------------------------
def test_engine_defaults_match_the_contract() -> None:
    engine = parse().engine
    assert (engine.workers, engine.backend, engine.address) == (0, "local", "")
    assert parse({"engine": {"workers": 3}}).engine.workers == 3
    assert parse().with_overrides(workers=1).engine.workers == 1


@pytest.mark.parametrize("engine,match", [
    ({"workers": -1}, "engine.workers' must be a whole number: 0 .one worker process per core."),
    ({"workers": 1.5}, "engine.workers"),
    ({"workers": True}, "engine.workers"),
    ({"backend": "ray"}, "engine.backend must be one of local, dask; got 'ray'"),
    ({"address": "tcp://x:8786"}, "'engine.address' is only used with engine.backend = \"dask\""),
    ({"backend": "dask"}, "'engine.address' is missing"),
    ({"backend": "dask", "address": 8786}, "engine.address"),
    ({"wokers": 2}, "'engine.wokers'.*'workers'"),
])
def test_bad_engine_values_are_one_line_errors(engine: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        parse({"engine": engine})
    assert "\n" not in str(err.value)


def test_workers_override_is_checked() -> None:
    with pytest.raises(ConfigError, match="--workers must be a whole number"):
        parse().with_overrides(workers=-2)


def test_dask_backend_without_dask_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import auditor.config

    monkeypatch.setattr(auditor.config, "dask_installed", lambda: False)
    with pytest.raises(ConfigError) as err:
        parse({"engine": {"backend": "dask", "address": "tcp://10.0.0.5:8786"}})
    assert "pip install auditor[dask]" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setattr(auditor.config, "dask_installed", lambda: True)
    assert parse({"engine": {"backend": "dask", "address": "tcp://10.0.0.5:8786"}}).engine.backend == "dask"
