"""Shared test helpers: small seeded data, and running one check on in-memory objects."""

from __future__ import annotations

import os
import subprocess

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from auditor.checks.base import (  # noqa: E402
    Check,
    CheckRegistry,  # noqa: E402
    Family,
)
from auditor.engine import prepare_objects  # noqa: E402
from auditor.findings import CheckResult  # noqa: E402
from auditor.runner import run_checks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# The shared folder sits beside the checkout in CI; a clone on its own falls back to the copies
# shipped in the repository (German credit in sample_models/, the schema in tests/contract/).
SHARED_DATA = SHARED / "data" if (SHARED / "data" / "german.csv").is_file() else ROOT / "sample_models"
TEST_FAMILY = Family("test", "Test checks", 99)  # for the checks tests define

# The contract's check ids (CONTRACT.md section 3), in report order. Every one must be registered.
CONTRACT_IDS: tuple[str, ...] = (
    "data.schema", "data.quality", "data.leakage", "data.drift",
    "performance.metrics", "performance.overfit", "performance.calibration",
    "sensitivity.partial_dependence", "sensitivity.adversarial", "sensitivity.random_attack",
    "residual.analysis", "residual.segments",
    "fairness.disparate_impact", "fairness.error_parity", "fairness.proxy",
    "benchmark.comparison",
    "security.membership_inference", "security.model_extraction", "security.attribute_inference",
    "explain.importance",
)
SCHEMA_COPY = Path(__file__).resolve().parent / "contract" / "findings.schema.json"
SHARED_SCHEMA = SHARED / "contract" / "findings.schema.json"
SCHEMA = SHARED_SCHEMA if SHARED_SCHEMA.is_file() else SCHEMA_COPY


def run_check(check_cls: type[Check], model: Any, *, test: pd.DataFrame, target: str,
              train: pd.DataFrame | None = None, options: dict[str, Any] | None = None,
              **kwargs: Any) -> CheckResult:
    """Run one check through the real runner on in-memory inputs and return its result."""
    registry = CheckRegistry([check_cls])
    checks = {check_cls.id: options} if options else None
    audit = prepare_objects(model, test=test, train=train, target=target, checks=checks,
                            registry=registry, **kwargs)
    out = run_checks(audit.context, registry)
    result = out.results[0]
    if result.status.value == "error":
        raise AssertionError(f"{check_cls.id} errored: {result.error}\n{out.tracebacks.get(check_cls.id, '')}")
    return result


def severities(result: CheckResult) -> list[str]:
    return [f.severity.value for f in result.findings]


@pytest.fixture(scope="session")
def german() -> pd.DataFrame:
    return pd.read_csv(SHARED_DATA / "german.csv")


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The CLI refused to start: exit 2 and exactly one line on stderr, with no traceback."""
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def svg_of(fig: Any) -> str:
    """A figure spec of a check's evidence, drawn as the report draws it ('' when it draws nothing)."""
    from auditor.plots import draw

    return draw(fig) or ""


# ---- the demo, run once per test session --------------------------------------------------------

# Tests that read the demo's whole report (the CLI's end-to-end test, the report-structure tests)
# share one `auditor demo` run. Mark them xdist_group(DEMO_GROUP) so they land in one worker; the
# lock makes a worker that gets one anyway wait for the run instead of repeating it.
BASELINE = ROOT / "tests" / "baseline" / "demo_findings.json"
# Floats of the baseline may differ from a run in their last bits: a numpy, scipy or BLAS release
# sums in another order (a fresh install picks up the newest release in the pinned ranges). A
# finding that moves moves by far more than this.
FLOAT_REL_TOL = 1e-9


def stable(doc: dict) -> dict:
    """findings.json's checks (without their timings) and findings: what the baseline holds."""
    checks = [{k: v for k, v in c.items() if k != "duration_s"} for c in doc["checks"]]
    return {"checks": checks, "findings": doc["findings"]}


def json_diff(want: object, got: object, path: str = "") -> list[str]:
    """Where two JSON documents differ, as readable paths (the first 20); floats equal to
    ``FLOAT_REL_TOL`` (relative) are the same."""
    import math

    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{path}.{k}: {'missing' if k not in got else 'unexpected'}" for k in sorted(set(want) ^ set(got))]
        for k in sorted(set(want) & set(got)):
            out += json_diff(want[k], got[k], f"{path}.{k}")
        return out[:20]
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{path}: {len(want)} items, now {len(got)}"]
        return [d for i, (a, b) in enumerate(zip(want, got)) for d in json_diff(a, b, f"{path}[{i}]")][:20]
    if isinstance(want, float) and isinstance(got, float) and math.isclose(want, got, rel_tol=FLOAT_REL_TOL,
                                                                           abs_tol=1e-15):
        return []
    return [] if want == got else [f"{path}: {want!r} -> {got!r}"]


def baseline_diff(doc: dict) -> list[str]:
    """How a demo run's findings.json differs from the stored baseline (empty: it matches)."""
    import json

    return json_diff(json.loads(BASELINE.read_text()), stable(doc))


DEMO_GROUP = "demo"


@dataclass(frozen=True)
class DemoRun:
    out: Path  # the report folder (read it, never write into it: other tests read it too)
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``auditor demo --out <folder>`` through the console entry point, once per test session."""
    import fcntl
    import json
    import sys

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # shared by a session's workers
    out, record = root / "demo-report", root / "demo-run.json"
    with open(root / "demo-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.is_file():
            env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
            proc = subprocess.run([sys.executable, "-m", "auditor", "demo", "--out", str(out)], capture_output=True,
                                  text=True, cwd=ROOT, env=env, timeout=900)
            record.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout,
                                          "stderr": proc.stderr}))
    return DemoRun(out, **json.loads(record.read_text()))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Say so when --dist loadgroup did not group (pytest 9.2 broke it, pytest-xdist#1386): the
    tests still pass, but the demo and other whole audits then run once per worker."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        import warnings

        warnings.warn(f"--dist loadgroup did not group {len(lost)} test(s), e.g. {lost[0]}: whole-audit "
                      "fixtures run in more than one worker (pytest-xdist#1386; pytest<9.2 groups)",
                      pytest.PytestWarning, stacklevel=1)
