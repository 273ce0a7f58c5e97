"""findings.json: the machine-readable result (schema: findings.schema.json of the contract)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def render_json(result: Any) -> str:
    """The result as JSON text. NaN and infinity are already ``None``; any left would raise here."""
    return json.dumps(result.to_json(), indent=2, allow_nan=False, sort_keys=False, ensure_ascii=False) + "\n"


def write_json(result: Any, target: Path) -> Path:
    target.write_text(render_json(result), encoding="utf-8")
    return target
