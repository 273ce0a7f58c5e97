"""Where the shipped templates and sample models are, installed or in a source checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _package_or_repo(name: str) -> Path:
    """``auditor/<name>`` inside an installed wheel, else ``<repo>/<name>`` in a checkout."""
    try:
        packaged = Path(str(resources.files("auditor") / name))
        if packaged.is_dir():
            return packaged
    except (ModuleNotFoundError, TypeError):
        pass
    repo = Path(__file__).resolve().parent.parent / name
    if repo.is_dir():
        return repo
    raise FileNotFoundError(f"auditor's {name} folder is missing from this installation")


def templates_dir() -> Path:
    return _package_or_repo("templates")


def sample_models_dir() -> Path:
    return _package_or_repo("sample_models")


def findings_schema_text() -> str:
    """The findings.json JSON Schema this version writes to (a copy of the contract's, shipped in the package)."""
    return (resources.files("auditor") / "schema" / "findings.schema.json").read_text(encoding="utf-8")
