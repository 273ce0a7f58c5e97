"""The audit result: every check's outcome, the gate verdict, and the reproducibility manifest."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .findings import CheckResult, Finding, Severity, Status, clean_number, severity_counts, sort_findings

if TYPE_CHECKING:
    from collections.abc import Callable

    from .causes import Issue
    from .diff import AuditDiff, AuditSnapshot
    from .outdir import RunFolder
    from .remediation import Artifact, Remediation, RemedyResult

SCHEMA_VERSION = "1.1"
DEFAULT_AUDIT_NAME = "audit"  # [audit] name when the config or the notebook call names none
REPR_FINDINGS = 8  # findings listed by repr(result)
REPR_WIDTH = 100  # characters of a finding title in repr(result)
MANIFEST_PACKAGES = ("auditor", "numpy", "pandas", "scipy", "scikit-learn", "shap", "fairlearn",
                     "adversarial-robustness-toolbox", "matplotlib", "jinja2", "weasyprint", "skops",
                     "onnxruntime", "lightgbm", "xgboost-cpu", "xgboost")


def environment() -> dict[str, Any]:
    packages = {}
    for name in MANIFEST_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "platform": platform.platform(terse=True), "packages": packages}


@dataclass(frozen=True)
class DatasetInfo:
    path: str
    sha256: str
    rows: int
    columns: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "rows": self.rows, "columns": self.columns}


@dataclass(frozen=True)
class AuditInfo:
    """What was audited: plain values only, copied out of the context."""

    name: str
    title: str
    owner: str
    seed: int
    fail_on: str
    model_path: str
    model_sha256: str
    model_kind: str
    task: str
    target: str
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    protected: tuple[str, ...]
    positive_class: Any
    favorable: Any
    threshold: float
    test: DatasetInfo
    train: DatasetInfo | None
    config_path: str
    config_sha256: str
    config_text: str
    environment: dict[str, Any] = field(default_factory=dict)
    id_column: str | None = None
    reference: tuple[tuple[str, str], ...] = ()  # protected column -> reference group
    monotone: tuple[tuple[str, int], ...] = ()  # declared monotone features and direction
    immutable: tuple[str, ...] = ()
    classes: tuple[Any, ...] = ()  # classification: the model's classes in its own order
    context: tuple[tuple[str, str], ...] = ()  # [report] purpose, intended_use, ...: (key, text), "" undeclared

    @property
    def report_title(self) -> str:
        """The report's title: ``[report] title``, else one naming the audit, or the model when the
        audit kept its default name (a notebook audit is not titled "Model audit: audit")."""
        if self.title:
            return self.title
        if self.name and self.name != DEFAULT_AUDIT_NAME:
            return f"Model audit: {self.name}"
        model = self.model_path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        if not model or model.startswith("<"):  # an in-memory model: name its class
            model = self.model_kind.rsplit(".", 1)[-1] or "model"
        return f"{self.task.capitalize() or 'Model'} model audit: {model}"


@dataclass(frozen=True)
class AuditResult:
    info: AuditInfo
    checks: tuple[CheckResult, ...]
    started_at: str
    duration_s: float
    baseline: AuditSnapshot | None = None  # [audit] baseline: the earlier audit this one is compared with
    remedies: tuple[RemedyResult, ...] = ()  # the remediation step's outcome, remedy by remedy

    @property
    def remediations(self) -> list[Remediation]:
        """Every remedy measured on held-out rows (findings.json ``remediations[]``)."""
        return [rem for r in self.remedies for rem in r.remediations]

    @property
    def artifacts(self) -> list[Artifact]:
        """The files the remedies hand over, written under ``remediation/`` in the report folder."""
        return [a for r in self.remedies for a in r.artifacts]

    @property
    def findings(self) -> list[Finding]:
        return sort_findings([f for c in self.checks for f in c.findings])

    @property
    def counts(self) -> dict[str, int]:
        return severity_counts(self.findings)

    @property
    def accepted(self) -> list[Finding]:
        """Findings accepted by a waiver in force (they keep their severity; the gate skips them)."""
        return [f for f in self.findings if f.status == "accepted"]

    @cached_property
    def issues(self) -> tuple[Issue, ...]:
        """Root causes: the findings grouped by shared cause (``auditor.causes``), strongest first."""
        from .causes import find_issues

        return find_issues(self.findings)

    @property
    def status(self) -> str:
        return "incomplete" if any(c.status is Status.ERROR for c in self.checks) else "complete"

    @property
    def gate_findings(self) -> list[Finding]:
        """Open findings at or above the gate level (accepted ones do not count)."""
        if self.info.fail_on == "none":
            return []
        level = Severity(self.info.fail_on).rank
        return [f for f in self.findings if f.severity.rank >= level and f.status != "accepted"]

    @property
    def gate_failed(self) -> bool:
        return bool(self.gate_findings)

    @property
    def errored(self) -> list[str]:
        return [c.id for c in self.checks if c.status is Status.ERROR]

    @property
    def gate(self) -> str:
        """failed, else incomplete when a check errored, else passed: never passed on partial evidence."""
        if self.gate_failed:
            return "failed"
        return "incomplete" if self.status == "incomplete" else "passed"

    @property
    def exit_code(self) -> int:
        return {"failed": 1, "incomplete": 3, "passed": 0}[self.gate]

    def __repr__(self) -> str:
        """One screen: the verdict, the counts and the most severe findings (not a dataclass dump)."""
        i = self.info
        counts = self.counts
        ran = sum(c.status is Status.OK for c in self.checks)
        skipped = sum(c.status is Status.SKIPPED for c in self.checks)
        by_severity = ", ".join(f"{counts[s.value]} {s.value}" for s in Severity.ordered())
        lines = [f"<AuditResult {i.name!r}: gate {self.gate} (fail_on {i.fail_on}), audit {self.status}",
                 f"  {len(self.checks)} checks: {ran} ran, {skipped} skipped, {len(self.errored)} in error; "
                 f"{len(self.findings)} findings: {by_severity}"
                 + (f" ({len(self.accepted)} accepted)" if self.accepted else "")]
        findings = self.findings
        for f in findings[:REPR_FINDINGS]:
            title = f.title if len(f.title) <= REPR_WIDTH else f.title[:REPR_WIDTH - 1] + "\u2026"
            lines.append(f"  {f.severity.value:<6} {title}")
        if len(findings) > REPR_FINDINGS:
            lines.append(f"  +{len(findings) - REPR_FINDINGS} more in .findings")
        if self.errored:
            lines.append(f"  in error: {', '.join(self.errored)}")
        lines.append("  .write(folder) writes the report (HTML, PDF, findings.json)>")
        return "\n".join(lines)

    def check(self, check_id: str) -> CheckResult:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def to_json(self) -> dict[str, Any]:
        i = self.info
        inputs: dict[str, Any] = {
            "model": {"path": i.model_path, "sha256": i.model_sha256, "kind": i.model_kind, "task": i.task},
        }
        if i.classes:
            inputs["model"]["classes"] = [clean_number(c) for c in i.classes]
        inputs |= {
            "test": i.test.to_json(),
        }
        if i.train is not None:
            inputs["train"] = i.train.to_json()
        inputs["config_sha256"] = i.config_sha256
        inputs["environment"] = i.environment
        return self._with_diff({
            "schema_version": SCHEMA_VERSION,
            "auditor_version": __version__,
            "audit": {"name": i.name, "seed": i.seed, "fail_on": i.fail_on, "status": self.status,
                      "gate": self.gate, "started_at": self.started_at, "duration_s": round(self.duration_s, 3)},
            "inputs": inputs,
            "checks": [c.to_json() for c in self.checks],
            "findings": self._findings_json(),
            "summary": {**self.counts, "accepted": len(self.accepted)},
            "issues": [i.to_json() for i in self.issues],
            "remediations": [r.to_json() for r in self.remediations],
        })

    # ---- comparison with the baseline ([audit] baseline) ----------------------------------------
    @property
    def diff(self) -> AuditDiff | None:
        """What changed since the baseline audit; None without one."""
        if self.baseline is None:
            return None
        return self._compare(self.to_json())

    def _compare(self, doc: dict[str, Any]) -> AuditDiff:
        from .diff import compare, snapshot

        assert self.baseline is not None
        return compare(self.baseline, snapshot(doc, source="this audit"))

    def _with_diff(self, doc: dict[str, Any]) -> dict[str, Any]:
        """findings.json with ``audit.baseline`` and ``diff`` when a baseline was given."""
        if self.baseline is not None:
            doc["audit"]["baseline"] = self.baseline.source
            doc["diff"] = self._compare(doc).to_json()
        return doc

    def _findings_json(self) -> list[dict[str, Any]]:
        """Every finding, each naming its root-cause issue (info findings belong to none)."""
        from .causes import issue_of

        owner = issue_of(self.issues)
        return [f.to_json() | ({"issue": owner[f.id]} if f.id in owner else {}) for f in self.findings]

    # ---- writing ------------------------------------------------------------------------------
    def write(self, out_dir: str | Path, formats: tuple[str, ...] = ("html", "pdf", "json"), *,
              shared: bool = False, replace: bool = True) -> dict[str, Path]:
        """Write the report into ``out_dir``, whole or not at all, and return the files' paths.

        The files are written into a hidden folder beside ``out_dir`` and moved into place when all of
        them are complete; a previous report in ``out_dir`` is replaced whole (never mixed with the new
        one), and a folder holding anything but report files is refused (``replace=False`` refuses any
        non-empty folder). Files are ``0600`` and the folder ``0700`` (the report holds personal data)
        unless ``shared``: ``0644``/``0755``. Raises ``auditor.outdir.OutputError`` (one line) when the
        folder is in use by another run or cannot be written; nothing is left behind then.
        """
        from .outdir import RunFolder

        with RunFolder(out_dir, replace=replace, shared=shared) as folder:
            return self.write_into(folder, formats)

    def write_into(self, folder: RunFolder, formats: tuple[str, ...] = ("html", "pdf", "json"), *,
                   step: Callable[[str], None] | None = None, workers: int = 0) -> dict[str, Path]:
        """Write the report into an open ``RunFolder``'s staging folder and swap it into place
        (``step`` is told which file is being written, for progress lines; ``workers`` processes draw
        the figures, as ``[engine] workers``: 0 is one per core)."""
        from .outdir import OutputError
        from .render import write_report

        try:
            written = write_report(self, folder.stage, formats, step=step, workers=workers)
        except OSError as exc:
            raise OutputError(f"cannot write the report to {folder.final}: {exc.strerror or type(exc).__name__}"
                              ) from None
        final = folder.commit()
        return {fmt: final / p.name for fmt, p in written.items()}

    def to_html(self) -> str:
        from .render.html import render_html
        from .render.view import build_view

        return render_html(build_view(self))

    def _repr_html_(self) -> str:
        from .render.html import render_summary_html
        from .render.view import build_view

        return render_summary_html(build_view(self))
