"""The check protocol, check options and the registry of check ids.

A check is a small dataclass, generic in its measurement type, whose fields are its options
(overridable from ``[checks."<id>"]`` in the config). It declares its id, title, family and
report order once, as class attributes; the registry, the report and ``auditor checks`` derive
everything else from them. Running a check is four steps:

* ``skip_reason(ctx)``: why the check cannot apply to these inputs (or None);
* ``measure(ctx)``: call analysis functions, return a typed, frozen measurement;
* ``judge(m)``: a pure function of the measurement returning findings;
* ``evidence(m)``: the metrics, tables and figure specs the report shows.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from ..findings import Evidence, Finding

if TYPE_CHECKING:
    from ..config import AuditConfig
    from ..context import AuditContext


@dataclass(frozen=True)
class Family:
    """A family of checks: one chapter of the report."""

    name: str
    title: str
    order: int


DATA = Family("data", "Data integrity", 1)
PERFORMANCE = Family("performance", "Performance", 2)
SENSITIVITY = Family("sensitivity", "Sensitivity analysis", 3)
RESIDUAL = Family("residual", "Residual analysis", 4)
FAIRNESS = Family("fairness", "Disparate impact and fairness", 5)
BENCHMARK = Family("benchmark", "Benchmark models", 6)
SECURITY = Family("security", "Security", 7)
EXPLAIN = Family("explain", "Explanations", 8)


# ---- options --------------------------------------------------------------------------------------

OptionKind = Literal["threshold", "budget", "setting"]
OPTION_KINDS: tuple[OptionKind, ...] = ("threshold", "budget", "setting")
_KIND_TITLES = {"threshold": "thresholds (they set severities)", "budget": "budgets (rows, queries, time)",
                "setting": "settings (what is measured and how)"}


def _option(kind: OptionKind, default: Any, doc: str) -> Any:
    meta = {"kind": kind, "doc": doc}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def threshold(default: Any, doc: str) -> Any:
    """An option that sets a severity (a cut-off a finding is judged against)."""
    return _option("threshold", default, doc)


def budget(default: Any, doc: str) -> Any:
    """An option that bounds the work: rows sampled, model queries, resamples, figure sizes."""
    return _option("budget", default, doc)


def setting(default: Any, doc: str) -> Any:
    """An option that chooses what is measured or how (a method, a metric, a confidence level)."""
    return _option("setting", default, doc)


def required(doc: str, kind: OptionKind = "threshold") -> Any:
    """An option without a default: the config must set it when the check runs."""
    return field(default=None, metadata={"kind": kind, "doc": doc, "required": True})


@dataclass(frozen=True)
class OptionSpec:
    """One check option as ``auditor checks`` shows it."""

    name: str
    kind: OptionKind
    type: str  # as written in TOML: float, integer, boolean, string, array of float, table ...
    default: Any
    required: bool
    doc: str

    def default_toml(self) -> str:
        return "(required)" if self.required else toml_value(self.default)


def toml_value(value: Any) -> str:
    """A value written as it would be in the config file (no TOML value for "not set")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if value is None:
        return "(not set)"
    return repr(value) if isinstance(value, float) else str(value)


_TOML_TYPES = {"float": "float", "int": "integer", "bool": "boolean", "str": "string"}


def toml_type(annotation: Any) -> str:
    """The TOML type of an option from its annotation (a string under postponed evaluation)."""
    text = str(getattr(annotation, "__name__", annotation)).replace(" ", "")
    parts = [p for p in text.split("|") if p != "None"]
    if len(parts) != 1:
        return " or ".join(toml_type(p) for p in parts)
    t = parts[0]
    if t in _TOML_TYPES:
        return _TOML_TYPES[t]
    for prefix in ("tuple[", "list[", "Sequence["):
        if t.startswith(prefix):
            inner = t[len(prefix):-1].split(",")[0]
            return f"array of {toml_type(inner)}"
    if t.startswith(("dict[", "Mapping[")):
        return "table"
    return t


def _default_of(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def option_specs(cls: Any) -> tuple[OptionSpec, ...]:
    """The options of a dataclass of ``threshold``/``budget``/``setting`` fields (a check, a remedy)."""
    return tuple(OptionSpec(name=f.name, kind=f.metadata.get("kind", "setting"), type=toml_type(f.type),
                            default=_default_of(f), required=bool(f.metadata.get("required")),
                            doc=f.metadata.get("doc", ""))
                 for f in fields(cls))


def option_defaults(cls: Any) -> dict[str, Any]:
    return {f.name: _default_of(f) for f in fields(cls)}


# ---- the check protocol ---------------------------------------------------------------------------

M = TypeVar("M")


@dataclass
class Check(Generic[M]):
    """Base class. A subclass declares ``id``, ``title``, ``family`` and ``order`` and adds option
    fields made with ``threshold``, ``budget`` or ``setting``."""

    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    family: ClassVar[Family]
    order: ClassVar[int] = 0  # position within its family in the report
    cost: ClassVar[int] = 1  # rough seconds at the default budgets on UCI Adult: workers start the costliest first

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.id:
            family = getattr(cls, "family", None)
            if not isinstance(family, Family) or not cls.id.startswith(family.name + "."):
                raise TypeError(f"check {cls.id} must declare a family matching its id prefix")
            if not cls.title:
                raise TypeError(f"check {cls.id} has no title")

    @classmethod
    def options(cls) -> tuple[OptionSpec, ...]:
        """Every option with its kind, TOML type, default and one-line description."""
        return option_specs(cls)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return option_defaults(cls)

    @classmethod
    def validate_options(cls, options: dict[str, Any], config: AuditConfig) -> None:
        """Check option values that need more than a type and range check (e.g. against the
        config's columns). Raise ValueError with a message that names the option."""
        missing = [o.name for o in cls.options() if o.required and options.get(o.name) is None]
        if missing:
            raise ValueError(f"{', '.join(missing)} must be set")

    def validate_inputs(self, ctx: AuditContext) -> None:
        """Check option values against the loaded inputs (e.g. a class name against the model's
        classes) before any check runs. Raise AuditInputError naming the option."""

    def skip_reason(self, ctx: AuditContext) -> str | None:
        return None

    def measure(self, ctx: AuditContext) -> M:
        raise NotImplementedError

    def judge(self, m: M) -> list[Finding]:
        return []

    def evidence(self, m: M) -> Evidence:
        return Evidence()


def report_key(cls: type[Check]) -> tuple[int, int, str]:
    return (cls.family.order, cls.order, cls.id)


class CheckRegistry:
    """Check classes keyed by id. Built explicitly and passed to the runner, never global."""

    def __init__(self, checks: Iterable[type[Check]] = ()) -> None:
        self._checks: dict[str, type[Check]] = {}
        for c in checks:
            self.add(c)

    def add(self, cls: type[Check]) -> type[Check]:
        if not cls.id:
            raise ValueError(f"{cls.__name__} has no id")
        if cls.id in self._checks and self._checks[cls.id] is not cls:
            raise ValueError(f"two checks have the id {cls.id}: {self._checks[cls.id].__name__} and {cls.__name__}")
        self._checks[cls.id] = cls
        return cls

    def __contains__(self, check_id: str) -> bool:
        return check_id in self._checks

    def __getitem__(self, check_id: str) -> type[Check]:
        return self._checks[check_id]

    def ids(self) -> list[str]:
        """In report order: by family, then each check's declared order."""
        return [c.id for c in sorted(self._checks.values(), key=report_key)]

    def defaults(self) -> dict[str, dict[str, Any]]:
        """Each check's options with their defaults (for validating ``[checks."<id>"]``)."""
        return {cid: cls.defaults() for cid, cls in self._checks.items()}


def _concrete_checks(cls: type[Check]) -> Iterable[type[Check]]:
    for sub in cls.__subclasses__():
        if sub.id:
            yield sub
        yield from _concrete_checks(sub)


def discover(package: str = __package__ or "auditor.checks") -> CheckRegistry:
    """Every check class defined in the modules of ``package`` (imported here, once)."""
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        importlib.import_module(info.name)
    prefix = package + "."
    return CheckRegistry(c for c in _concrete_checks(Check) if c.__module__.startswith(prefix))
