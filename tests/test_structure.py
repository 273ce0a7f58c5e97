"""The layering the code relies on: analysis -> checks -> presentation, one way, and check metadata
declared once by each check class."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from auditor.checks import default_registry
from auditor.checks.base import OPTION_KINDS

PACKAGE = Path(__file__).resolve().parents[1] / "auditor"
REGISTRY = default_registry()
TOML_TYPES = {"float", "integer", "boolean", "string", "table", "array of float", "array of integer",
              "array of string", "string or integer", "integer or float", "float or integer"}


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules a source file imports (relative imports resolved), at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)
    return out


def _sources(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _sources("checks") + _sources("remediation"),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_checks_never_draw(path: Path) -> None:
    """Checks and remedies return figure specs; drawing belongs to auditor.plots, called by the report."""
    bad = {m for m in _imports(path) if m.startswith(("auditor.plots", "matplotlib", "auditor.render"))}
    assert not bad, bad


@pytest.mark.parametrize("path", _sources("analysis"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_analysis_knows_no_findings_or_presentation(path: Path) -> None:
    bad = {m for m in _imports(path)
           if m.startswith(("auditor.checks", "auditor.plots", "auditor.render", "auditor.findings", "matplotlib",
                            "auditor.wording"))}
    assert not bad, bad


@pytest.mark.parametrize("folder", ["render", "plots"])
def test_presentation_does_not_import_checks(folder: str) -> None:
    for path in _sources(folder):
        bad = {m for m in _imports(path) if m.startswith("auditor.checks")}
        assert not bad, (path.name, bad)


@pytest.mark.parametrize("check_id", REGISTRY.ids())
def test_every_option_has_a_kind_a_toml_type_and_a_description(check_id: str) -> None:
    options = REGISTRY[check_id].options()
    for o in options:
        assert o.kind in OPTION_KINDS, (o.name, o.kind)
        assert o.doc and "\n" not in o.doc and len(o.doc) <= 200, (o.name, o.doc)
        assert o.type in TOML_TYPES, (o.name, o.type)
        assert o.required or o.default_toml() != "(not set)" or "not set" in o.doc or "none" in o.doc.lower(), o.name
    # a threshold in every check that can raise a finding above info
    assert any(o.kind == "threshold" for o in options), check_id


def test_no_function_over_80_lines() -> None:
    """God functions were split (issue 9); keep them split."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > 80:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.name} ({n} lines)")
    assert not long, long
