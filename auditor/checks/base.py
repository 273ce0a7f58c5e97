"""The check protocol and the registry of check ids.

A check is a small dataclass whose fields are its thresholds and options (overridable from
``[checks."<id>"]`` in the config). Running it is three steps:

* ``skip_reason(ctx)``: why the check cannot apply to these inputs (or None);
* ``measure(ctx)``: call analysis functions, return a typed measurement;
* ``judge(m)``: a pure function of the measurement returning findings;
* ``evidence(m)``: the metrics, tables and figures the report shows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Iterable

from ..findings import Evidence, Finding

if TYPE_CHECKING:
    from ..config import AuditConfig
    from ..context import AuditContext

# The contract's check ids, in report order, with their family and title.
CONTRACT_CHECKS: tuple[tuple[str, str], ...] = (
    ("data.schema", "Schema and types"),
    ("data.quality", "Data quality"),
    ("data.leakage", "Target leakage"),
    ("data.drift", "Train/test drift"),
    ("performance.metrics", "Headline metrics"),
    ("performance.overfit", "Train/test gap"),
    ("performance.calibration", "Calibration"),
    ("sensitivity.partial_dependence", "Partial dependence, ICE and ALE"),
    ("sensitivity.adversarial", "Adversarial example search"),
    ("sensitivity.random_attack", "Random and hostile inputs"),
    ("residual.analysis", "Residual analysis"),
    ("residual.segments", "Weak segments"),
    ("fairness.disparate_impact", "Disparate impact"),
    ("fairness.error_parity", "Error-rate parity"),
    ("fairness.proxy", "Proxies for protected attributes"),
    ("benchmark.comparison", "Benchmark model comparison"),
    ("security.membership_inference", "Membership inference"),
    ("security.model_extraction", "Model extraction"),
    ("security.attribute_inference", "Attribute inference"),
    ("explain.importance", "Feature importance (SHAP)"),
)

FAMILY_TITLES: dict[str, str] = {
    "data": "Data integrity",
    "performance": "Performance",
    "sensitivity": "Sensitivity analysis",
    "residual": "Residual analysis",
    "fairness": "Disparate impact and fairness",
    "benchmark": "Benchmark models",
    "security": "Security",
    "explain": "Explanations",
}


@dataclass
class Check:
    """Base class. Subclasses set ``id`` and ``title`` and add option fields with defaults."""

    id: ClassVar[str] = ""
    title: ClassVar[str] = ""

    @classmethod
    def family(cls) -> str:
        return cls.id.split(".", 1)[0]

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def validate_options(cls, options: dict[str, Any], config: "AuditConfig") -> None:
        """Check option values that need more than a type and range check (e.g. against the
        config's columns). Raise ValueError with a message that names the option."""

    def validate_inputs(self, ctx: "AuditContext") -> None:
        """Check option values against the loaded inputs (e.g. a class name against the model's
        classes) before any check runs. Raise AuditInputError naming the option."""

    def skip_reason(self, ctx: "AuditContext") -> str | None:
        return None

    def measure(self, ctx: "AuditContext") -> Any:
        raise NotImplementedError

    def judge(self, m: Any) -> list[Finding]:
        return []

    def evidence(self, m: Any) -> Evidence:
        return Evidence()


@dataclass
class NotImplementedCheck(Check):
    """Stands in for a contract check this version does not have yet: always skipped, honestly."""

    def skip_reason(self, ctx: "AuditContext") -> str | None:
        return "not implemented in this version"


def placeholder(check_id: str, title: str) -> type[Check]:
    return type(f"Pending_{check_id.replace('.', '_')}", (NotImplementedCheck,),
                {"id": check_id, "title": title, "__doc__": "Not implemented in this version."})


class CheckRegistry:
    """Check classes keyed by id. Built explicitly and passed to the runner, never global."""

    def __init__(self, checks: Iterable[type[Check]] = ()) -> None:
        self._checks: dict[str, type[Check]] = {}
        for c in checks:
            self.add(c)

    def add(self, cls: type[Check]) -> type[Check]:
        if not cls.id:
            raise ValueError(f"{cls.__name__} has no id")
        self._checks[cls.id] = cls
        return cls

    def __contains__(self, check_id: str) -> bool:
        return check_id in self._checks

    def __getitem__(self, check_id: str) -> type[Check]:
        return self._checks[check_id]

    def ids(self) -> list[str]:
        """Contract ids first in contract order, then any extra ids sorted."""
        order = [cid for cid, _ in CONTRACT_CHECKS if cid in self._checks]
        return order + sorted(c for c in self._checks if c not in order)

    def option_names(self) -> dict[str, dict[str, Any]]:
        """Each check's options with their defaults (for validating ``[checks."<id>"]``)."""
        from dataclasses import MISSING

        def default(f: Any) -> Any:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
            return None

        return {cid: {f.name: default(f) for f in fields(cls)} for cid, cls in self._checks.items()}

    def implemented(self, check_id: str) -> bool:
        return not issubclass(self._checks[check_id], NotImplementedCheck)
