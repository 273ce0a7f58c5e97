"""The TOML audit spec, validated into a frozen config. Unknown keys are errors."""

from __future__ import annotations

import difflib
import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .findings import Waiver
from .waivers import parse_waivers

GATE_LEVELS = ("high", "medium", "low", "none")
FORMATS = ("html", "pdf", "json")  # written when [report] formats is not set
KNOWN_FORMATS = (*FORMATS, "junit", "md")  # every format --format and [report] formats accept
TASKS = ("classification", "regression")
BACKENDS = ("local", "dask")
DASK_HINT = "pip install auditor[dask]"


@dataclass(frozen=True)
class AuditSection:
    name: str = "audit"
    seed: int = 0
    fail_on: str = "high"
    baseline: str | None = None  # an earlier findings.json (or its report folder) to compare with


@dataclass(frozen=True)
class ModelSection:
    path: str = ""
    trusted: bool = False
    task: str | None = None
    positive_class: Any = None
    threshold: float = 0.5
    favorable: Any = None
    timeout_s: float = 300.0  # per model call in the model-host process (Python objects, pickles)


@dataclass(frozen=True)
class DataSection:
    test: str = ""
    target: str = ""
    train: str | None = None
    features: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    reference: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    categorical: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExpectSection:
    monotone: Mapping[str, int] = field(default_factory=dict)
    immutable: tuple[str, ...] = ()
    additive: tuple[str, ...] = ()  # features whose effect the owner declares the same for every row


@dataclass(frozen=True)
class ChecksSection:
    skip: tuple[str, ...] = ()
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class RemediationSection:
    """[remediation]: the remedies computed after the checks (``auditor.remediation``)."""

    enabled: bool = True
    skip: tuple[str, ...] = ()
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # [remediation."<id>"]


REPORT_CONTEXT = ("purpose", "intended_use", "out_of_scope", "limitations", "data_period")  # contract 5


@dataclass(frozen=True)
class ReportSection:
    title: str = ""
    owner: str = ""
    formats: tuple[str, ...] = FORMATS
    out: str = "reports"
    # what the model owner declares about the model, shown in the report's model overview
    purpose: str = ""
    intended_use: str = ""
    out_of_scope: str = ""
    limitations: str = ""
    data_period: str = ""

    @property
    def context(self) -> tuple[tuple[str, str], ...]:
        """The report-context fields as (key, text) pairs in ``REPORT_CONTEXT`` order ("" when not declared)."""
        return tuple((key, str(getattr(self, key)).strip()) for key in REPORT_CONTEXT)


DEFAULT_CHECK_TIMEOUT = 1800.0  # seconds: far above any budgeted check on a model of usual speed


@dataclass(frozen=True)
class EngineSection:
    """[engine]: where the checks run (``auditor.parallel``, ``auditor.cluster``). Results are the same
    whatever is chosen."""

    workers: int = 0  # local: 0 = one worker process per core, 1 = in this process, N = N processes
    backend: str = "local"  # local | dask
    address: str = ""  # dask: the scheduler of an existing cluster, e.g. "tcp://10.0.0.5:8786"
    # local worker processes: a check (or a remedy beside the checks) still running after this many
    # seconds is stopped and recorded as an error; 0: no limit
    check_timeout: float = DEFAULT_CHECK_TIMEOUT


@dataclass(frozen=True)
class AuditConfig:
    """A validated audit spec. Paths are absolute (resolved against the config's folder)."""

    audit: AuditSection
    model: ModelSection
    data: DataSection
    expect: ExpectSection = field(default_factory=ExpectSection)
    checks: ChecksSection = field(default_factory=ChecksSection)
    report: ReportSection = field(default_factory=ReportSection)
    remediation: RemediationSection = field(default_factory=RemediationSection)
    engine: EngineSection = field(default_factory=EngineSection)
    waivers: tuple[Waiver, ...] = ()  # [[waiver]] entries, in config order (auditor.waivers)
    source: str = ""  # path of the config file, or "" when built in code
    sha256: str = ""  # of the config file's bytes

    def with_overrides(self, *, seed: int | None = None, fail_on: str | None = None,
                       formats: tuple[str, ...] | None = None, workers: int | None = None) -> AuditConfig:
        cfg = self
        if workers is not None:
            _check_workers("--workers", workers)
            cfg = replace(cfg, engine=replace(cfg.engine, workers=int(workers)))
        if seed is not None:
            _check_seed("--seed", seed)
            cfg = replace(cfg, audit=replace(cfg.audit, seed=int(seed)))
        if fail_on is not None:
            _check_choice("--fail-on", fail_on, GATE_LEVELS)
            cfg = replace(cfg, audit=replace(cfg.audit, fail_on=fail_on))
        if formats is not None:
            if not formats:
                raise ConfigError(f"--format needs at least one of {', '.join(KNOWN_FORMATS)}")
            for f in formats:
                _check_choice("--format", f, KNOWN_FORMATS)
            cfg = replace(cfg, report=replace(cfg.report, formats=tuple(formats)))
        return cfg


_SECTIONS = {
    "audit": AuditSection,
    "model": ModelSection,
    "data": DataSection,
    "expect": ExpectSection,
    "checks": ChecksSection,
    "report": ReportSection,
    "remediation": RemediationSection,
    "engine": EngineSection,
}
_REQUIRED = {("model", "path"), ("data", "test"), ("data", "target")}
WAIVER_KEY = "waiver"  # [[waiver]] risk acceptances, validated by auditor.waivers.parse_waivers


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")


SEED_LIMIT = 2**32  # numpy's SeedSequence and the explainers take seeds in [0, 2**32)


def _check_seed(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEED_LIMIT:
        raise ConfigError(f"{key} must be a whole number from 0 to {SEED_LIMIT - 1}; got {value!r}")


def _expect_type(key: str, value: Any, kind: type | tuple[type, ...], what: str) -> None:
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ConfigError(f"config key '{key}' must be {what}; got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"config key '{key}' must be {what}; got {value!r}")


def _str_list(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"config key '{key}' must be a list of column names (strings)")
    return tuple(value)


def parse_config(raw: Mapping[str, Any], *, base_dir: Path, source: str = "", sha256: str = "") -> AuditConfig:
    """Validate a parsed TOML mapping. Raises ConfigError naming the first bad key."""
    values = _known_keys({k: v for k, v in raw.items() if k != WAIVER_KEY})
    _check_audit(values["audit"])
    _check_baseline(values["audit"], base_dir)
    _check_model(values["model"], base_dir)
    _check_data(values["data"], base_dir)
    _check_expect(values["expect"])
    c = values["checks"]
    if "skip" in c:
        c["skip"] = _str_list("checks.skip", c["skip"])
    _check_report(values["report"], base_dir)
    r = values["remediation"]
    if "skip" in r:
        r["skip"] = _str_list("remediation.skip", r["skip"])
    if "enabled" in r:
        _expect_type("remediation.enabled", r["enabled"], bool, "true or false")
    _check_engine(values["engine"])
    waivers = parse_waivers(raw.get(WAIVER_KEY))  # [[waiver]]: an array of tables, not a section
    return AuditConfig(
        audit=AuditSection(**values["audit"]),
        model=ModelSection(**values["model"]),
        data=DataSection(**values["data"]),
        expect=ExpectSection(**values["expect"]),
        checks=ChecksSection(**c),
        report=ReportSection(**values["report"]),
        remediation=RemediationSection(**r),
        engine=EngineSection(**values["engine"]),
        waivers=waivers,
        source=source,
        sha256=sha256,
    )


def _known_keys(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each section's keys, all known, with the required ones present (values not yet checked)."""
    for section in raw:
        if section not in _SECTIONS:
            raise ConfigError(f"unknown config section [{section}]{_suggest(section, [*_SECTIONS, WAIVER_KEY])}")
        if not isinstance(raw[section], dict):
            raise ConfigError(f"config key '{section}' must be a table ([{section}])")
    values: dict[str, dict[str, Any]] = {}
    for section, cls in _SECTIONS.items():
        table = dict(raw.get(section, {}))
        valid = [f.name for f in fields(cls) if f.name != "options"]
        if section in ("checks", "remediation"):
            # [checks."<id>"] tables are per-check options; everything else must be a known key
            opts = {k: v for k, v in table.items() if isinstance(v, dict)}
            table = {k: v for k, v in table.items() if not isinstance(v, dict)}
            values[section] = {"options": opts}
        else:
            values[section] = {}
        for key, value in table.items():
            if key not in valid:
                raise ConfigError(f"unknown config key '{section}.{key}'{_suggest(key, valid)}")
            values[section][key] = value
    for section, key in sorted(_REQUIRED):
        if not values[section].get(key):
            raise ConfigError(f"missing required config key '{section}.{key}'")
    return values


def _check_audit(a: dict[str, Any]) -> None:
    if "name" in a:
        _expect_type("audit.name", a["name"], str, "a string")
    if "seed" in a:
        _expect_type("audit.seed", a["seed"], int, "an integer")
        _check_seed("config key 'audit.seed'", a["seed"])
    if "fail_on" in a:
        _check_choice("audit.fail_on", a["fail_on"], GATE_LEVELS)


def _check_baseline(a: dict[str, Any], base_dir: Path) -> None:
    """``[audit] baseline``: an earlier audit's findings.json (or report folder), resolved against the
    config's folder; it must exist (its content is read when the audit is prepared)."""
    if "baseline" not in a:
        return
    _expect_type("audit.baseline", a["baseline"], str, "the path of an earlier findings.json")
    path = (base_dir / a["baseline"]).resolve()
    if path.is_dir():
        path = path / "findings.json"
    if not path.is_file():
        raise ConfigError(f"config key 'audit.baseline': no findings.json at {path}")
    a["baseline"] = str(path)


def _check_model(m: dict[str, Any], base_dir: Path) -> None:
    """Types and ranges of [model]; the model path resolved against the config's folder."""
    _expect_type("model.path", m["path"], str, "a string")
    m["path"] = _resolve_model_path(m["path"], base_dir)
    if "trusted" in m:
        _expect_type("model.trusted", m["trusted"], bool, "true or false")
    if "task" in m:
        _check_choice("model.task", m["task"], TASKS)
    if "threshold" in m:
        _expect_type("model.threshold", m["threshold"], (int, float), "a number")
        if not 0.0 < float(m["threshold"]) < 1.0:
            raise ConfigError("config key 'model.threshold' must be between 0 and 1")
        m["threshold"] = float(m["threshold"])
    if "timeout_s" in m:
        _expect_type("model.timeout_s", m["timeout_s"], (int, float), "a number of seconds")
        if not 0.0 < float(m["timeout_s"]) < float("inf"):
            raise ConfigError("config key 'model.timeout_s' must be a number of seconds greater than 0")
        m["timeout_s"] = float(m["timeout_s"])


def _check_data(d: dict[str, Any], base_dir: Path) -> None:
    """Types of [data]; file paths resolved; the id, protected and reference columns consistent."""
    for key in ("test", "train", "target", "id"):
        if key in d:
            _expect_type(f"data.{key}", d[key], str, "a string")
    for key in ("test", "train"):
        if key in d:
            d[key] = str((base_dir / d[key]).resolve())
    for key in ("features", "protected", "categorical"):
        if key in d:
            d[key] = _str_list(f"data.{key}", d[key])
    if d.get("id") and d["id"] == d["target"]:
        raise ConfigError(f"config key 'data.id' names the target column '{d['target']}'; "
                          "the id column must be a different column")
    if d["target"] in d.get("protected", ()):
        raise ConfigError(f"config key 'data.protected' names the target column '{d['target']}'; "
                          "a protected column must be a different column")
    if "reference" in d:
        _expect_type("data.reference", d["reference"], dict, "a table such as { sex = \"male\" }")
        for col in d["reference"]:
            if col not in d.get("protected", ()):
                raise ConfigError(f"config key 'data.reference.{col}' names a column that is not in data.protected")


def _check_expect(e: dict[str, Any]) -> None:
    if "monotone" in e:
        _expect_type("expect.monotone", e["monotone"], dict, "a table such as { income = 1 }")
        for col, direction in e["monotone"].items():
            if direction not in (1, -1) or isinstance(direction, bool):
                raise ConfigError(f"config key 'expect.monotone.{col}' must be 1 or -1; got {direction!r}")
    if "immutable" in e:
        e["immutable"] = _str_list("expect.immutable", e["immutable"])
    if "additive" in e:
        e["additive"] = _str_list("expect.additive", e["additive"])


def _check_report(r: dict[str, Any], base_dir: Path) -> None:
    """Types of [report]; the formats known; the output folder resolved against the config's folder."""
    for key in ("title", "owner", "out", *REPORT_CONTEXT):
        if key in r:
            _expect_type(f"report.{key}", r[key], str, "a string")
    if "formats" in r:
        r["formats"] = _str_list("report.formats", r["formats"])
        if not r["formats"]:
            raise ConfigError(f"config key 'report.formats' is empty; name at least one of {', '.join(KNOWN_FORMATS)}")
        for f in r["formats"]:
            _check_choice("report.formats", f, KNOWN_FORMATS)
    r["out"] = str((base_dir / r.get("out", "reports")).resolve())


def _check_workers(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} must be a whole number: 0 (one worker process per core), 1 (in this process) "
                          f"or more; got {value!r}")


def _check_engine(e: dict[str, Any]) -> None:
    """[engine]: workers a count, backend known, address given exactly when the backend is dask, and
    the dask extra installed when it is asked for."""
    if "workers" in e:
        _check_workers("config key 'engine.workers'", e["workers"])
    if "check_timeout" in e:
        t = e["check_timeout"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t >= 0 or t == float("inf"):
            raise ConfigError("config key 'engine.check_timeout' must be a number of seconds, 0 for no limit; "
                              f"got {t!r}")
        e["check_timeout"] = float(t)
    if "backend" in e:
        _check_choice("engine.backend", e["backend"], BACKENDS)
    if "address" in e:
        _expect_type("engine.address", e["address"], str, 'a scheduler address such as "tcp://10.0.0.5:8786"')
        e["address"] = e["address"].strip()
    backend, address = e.get("backend", "local"), e.get("address", "")
    if backend == "local" and address:
        raise ConfigError("config key 'engine.address' is only used with engine.backend = \"dask\"; "
                          "set backend = \"dask\" or remove the address")
    if backend == "dask":
        if not address:
            raise ConfigError("config key 'engine.address' is missing: engine.backend = \"dask\" needs the "
                              "address of a running Dask scheduler, e.g. \"tcp://10.0.0.5:8786\"")
        if not dask_installed():
            raise ConfigError(f"engine.backend = \"dask\" needs Dask, which is not installed: {DASK_HINT}")


def dask_installed() -> bool:
    """Whether the dask extra (dask.distributed) can be imported, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec("distributed") is not None and importlib.util.find_spec("dask") is not None
    except (ImportError, ValueError):
        return False


def _resolve_model_path(spec: str, base_dir: Path) -> str:
    """Files are resolved against the config folder; ``module:NAME`` is left as is."""
    file_part, sep, name = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if sep and file_part.endswith(".py"):
        return f"{(base_dir / file_part).resolve()}:{name}"
    if sep and len(file_part) > 1 and "/" not in file_part and "\\" not in file_part:
        return spec  # package.module:NAME
    return str((base_dir / spec).resolve())


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate a config file. Raises ConfigError with one clear line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    data = p.read_bytes()
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    return parse_config(raw, base_dir=p.resolve().parent, source=str(p.resolve()),
                        sha256=hashlib.sha256(data).hexdigest())


def validate_check_options(config: AuditConfig, known: Mapping[str, Any], registry: Any = None) -> None:
    """Check ids in ``skip`` and ``[checks."<id>"]``, their option names, types and ranges.

    ``known`` maps each check id to its options: a mapping of name -> default (types are checked
    against the default), or just a sequence of names. With ``registry``, each check class's own
    ``validate_options`` hook runs too (e.g. fairness bands against the protected columns).
    """
    ids = sorted(known)
    for cid in config.checks.skip:
        if cid not in known:
            raise ConfigError(f"unknown check id '{cid}' in checks.skip{_suggest(cid, ids)}")
    for cid, opts in config.checks.options.items():
        if cid not in known:
            raise ConfigError(f"unknown check id [checks.\"{cid}\"]{_suggest(cid, ids)}")
        for key in opts:
            if key not in known[cid]:
                valid = list(known[cid])
                hint = _suggest(key, valid) or (f" (valid: {', '.join(valid)})" if valid
                                                else " (this check has no options)")
                raise ConfigError(f"unknown config key 'checks.\"{cid}\".{key}'{hint}")
            if isinstance(known[cid], Mapping):
                _check_option_type(f'checks."{cid}".{key}', opts[key], known[cid][key])
                if not (opts[key] == 0 and _zero_allowed(registry, cid, key)):
                    _check_option_range(f'checks."{cid}".{key}', key, opts[key], known[cid][key])
        if registry is not None and cid in registry:
            try:
                registry[cid].validate_options(dict(opts), config)
            except ValueError as exc:
                raise ConfigError(f'[checks."{cid}"]: {exc}') from None


def _zero_allowed(registry: Any, cid: str, key: str) -> bool:
    """An option whose description gives 0 a meaning ("(0: no ALE)") takes 0."""
    if registry is None or cid not in registry:
        return False
    return any(o.name == key and "(0:" in o.doc for o in registry[cid].options())


def validate_remedy_options(config: AuditConfig, known: Mapping[str, Mapping[str, Any]]) -> None:
    """Remedy ids in ``[remediation] skip`` and ``[remediation."<id>"]``, option names, types, ranges."""
    ids = sorted(known)
    section = config.remediation

    def hint(name: str, valid: list[str], none: str) -> str:
        return _suggest(name, valid) or (f" (valid: {', '.join(valid)})" if valid else none)

    for rid in section.skip:
        if rid not in known:
            raise ConfigError(f"unknown remedy '{rid}' in remediation.skip{hint(rid, ids, '')}")
    for rid, opts in section.options.items():
        if rid not in known:
            raise ConfigError(f"unknown remedy [remediation.\"{rid}\"]{hint(rid, ids, '')}")
        for key, value in opts.items():
            if key not in known[rid]:
                raise ConfigError(f"unknown config key 'remediation.\"{rid}\".{key}'"
                                  f"{hint(key, list(known[rid]), ' (this remedy has no options)')}")
            _check_option_type(f'remediation."{rid}".{key}', value, known[rid][key])
            _check_option_range(f'remediation."{rid}".{key}', key, value, known[rid][key])


_UNIT_INTERVAL = ("alpha", "confidence", "confident_p")  # probabilities: strictly between 0 and 1
_SHARE_WORDS = ("share", "fraction")  # proportions: from 0 to 1


def _check_option_range(key: str, name: str, value: Any, default: Any) -> None:
    """Ranges implied by an option's name and default: probabilities in (0, 1), shares in [0, 1],
    counts and sizes positive, thresholds finite and not negative where the default is positive."""
    import math

    if isinstance(value, bool) or default is None or isinstance(default, bool):
        return
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)) and default:
        for i, v in enumerate(value):
            _check_option_type(f"{key}[{i}]", v, default[0])
            _check_option_range(f"{key}[{i}]", name, v, default[0])
        return
    if not isinstance(value, (int, float)) or not isinstance(default, (int, float)):
        return
    if not math.isfinite(float(value)):
        raise ConfigError(f"config key '{key}' must be a finite number; got {value!r}")
    if name in _UNIT_INTERVAL or name.endswith("_alpha"):
        if not 0.0 < float(value) < 1.0:
            raise ConfigError(f"config key '{key}' must be between 0 and 1 (exclusive); got {value!r}")
    elif any(w in name for w in _SHARE_WORDS):
        if not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"config key '{key}' must be a share between 0 and 1; got {value!r}")
    elif isinstance(default, int) and default >= 1 and value < 1:
        raise ConfigError(f"config key '{key}' must be a positive whole number; got {value!r}")
    elif (isinstance(default, int) and value < 0
          or isinstance(default, float) and default > 0 and "r2" not in name and value < 0):
        raise ConfigError(f"config key '{key}' must not be negative; got {value!r}")


def _check_option_type(key: str, value: Any, default: Any) -> None:
    if default is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        what = "true or false"
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, int) and ok and not isinstance(value, int):
            ok, what = False, "a whole number"
        else:
            what = "a number"
    elif isinstance(default, str):
        ok, what = isinstance(value, str), "a string"
    elif isinstance(default, (tuple, list)):
        ok, what = isinstance(value, list), "a list"
    else:
        return
    if not ok:
        raise ConfigError(f"config key '{key}' must be {what}; got {value!r}")
