"""The ``auditor`` console script: argument parsing, exit codes, progress and the final summary.

Exit codes (contract): 0 gate passed; 1 a finding at or above the gate level; 2 the audit could
not start, or its report could not be written (one line on stderr, no report folder); 3 the audit ran
but a check ended in error; 130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP):
nothing left behind.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from . import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from .config import AuditConfig
    from .diff import AuditDiff
    from .findings import CheckResult, Finding
    from .outdir import RunFolder
    from .remediation import RemedyResult
    from .result import AuditResult

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Model-risk audit reports for trained tabular models (HTML, PDF and findings.json).",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts name config tables like [audit]: print them as written
)

EXIT_OK, EXIT_GATE, EXIT_INPUT, EXIT_INCOMPLETE = 0, 1, 2, 3
EXIT_SIGNAL_BASE = 128  # + the signal's number: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
FORCE_HELP = "Replace a previous report in a non-empty --out folder (the whole folder; nothing else is deleted)."
WORKERS_HELP = ("Override [engine] workers: 0 = one worker process per core (the default), 1 = run the checks in "
                "this process, N = N worker processes.")
SHARED_HELP = "Let others read the report (files 0644, folder 0755); by default it is private (0600/0700)."
SEVERITY_STYLE = {"high": "bold red", "medium": "dark_orange", "low": "yellow", "info": "cyan"}


class _Fail(Exception):
    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised as an interrupt so the same cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped(signum)


@contextmanager
def _stop_signals() -> Iterator[None]:
    """For the run, SIGTERM and SIGHUP interrupt it like Ctrl-C (cleanup runs, exit 128 + signal)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"auditor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Show the version and exit.")) -> None:
    """Audit a trained model: data integrity, performance, sensitivity, fairness, security, explanations."""


@app.command()
def run(
    config: Path = typer.Argument(..., help="The audit spec (TOML).", show_default=False),
    out: Path | None = typer.Option(None, "--out", help="Write exactly into this folder (created if missing)."),
    seed: int | None = typer.Option(None, "--seed", help="Override [audit] seed."),
    fail_on: str | None = typer.Option(None, "--fail-on", help="Gate level: high | medium | low | none."),
    formats: str | None = typer.Option(None, "--format", help="Comma-separated: html,pdf,json,junit,md."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    shared: bool = typer.Option(False, "--shared", help=SHARED_HELP),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors."),
    workers: int | None = typer.Option(None, "--workers", help=WORKERS_HELP, show_default=False),
) -> None:
    """Run the audit described by CONFIG and write the report."""
    raise typer.Exit(_main(config, out=out, seed=seed, fail_on=fail_on, formats=formats, force=force,
                           shared=shared, debug=debug, demo=False, workers=workers))


@app.command()
def demo(
    out: Path | None = typer.Option(None, "--out", help="Write exactly into this folder (created if missing)."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    shared: bool = typer.Option(False, "--shared", help=SHARED_HELP),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors."),
    workers: int | None = typer.Option(None, "--workers", help=WORKERS_HELP, show_default=False),
) -> None:
    """Audit the shipped sample credit model on its shipped data (offline)."""
    from .resources import sample_models_dir

    raise typer.Exit(_main(sample_models_dir() / "audit.toml", out=out, seed=None, fail_on=None, formats=None,
                           force=force, shared=shared, debug=debug, demo=True, workers=workers))


@app.command("checks")
def list_checks() -> None:
    """List every check id with its options: kind, TOML type, default and what each does (set
    them under [checks."<id>"] in the config)."""
    from rich.console import Console
    from rich.markup import escape

    from .checks import default_registry
    from .checks.base import _KIND_TITLES, OPTION_KINDS

    out = Console(highlight=False, soft_wrap=True)
    registry = default_registry()
    for check_id in registry.ids():
        cls = registry[check_id]
        out.print(f"[bold]{check_id}[/]  {escape(cls.title)}")
        options = cls.options()
        for kind in OPTION_KINDS:
            chosen = [o for o in options if o.kind == kind]
            if not chosen:
                continue
            out.print(f"  [dim]{_KIND_TITLES[kind]}[/]")
            for o in chosen:
                out.print(f"    {o.name} = {escape(o.default_toml())}  [dim]({escape(o.type)})[/]  {escape(o.doc)}")
        if not options:
            out.print("  [dim](no options)[/]")


# ---- auditor diff and auditor schema ------------------------------------------------------------

@app.command("diff")
def diff_command(
    old: Path = typer.Argument(..., help="The earlier audit: its report folder or findings.json.", show_default=False),
    new: Path = typer.Argument(..., help="The later audit: its report folder or findings.json.", show_default=False),
    fail_on: str = typer.Option("high", "--fail-on",
                                help="Exit 1 when a new or worsened open finding is at or above this level: "
                                     "high | medium | low | none."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON (findings.json's diff)."),
) -> None:
    """Compare two audits: new, resolved and changed findings, check status changes and headline-metric
    deltas. Exit 1 when a new or worsened open finding is at or above --fail-on, 0 otherwise."""
    import json

    from .diff import GATE_LEVELS, DiffInputError, compare, load_snapshot

    console = _console()
    try:
        if fail_on not in GATE_LEVELS:
            raise DiffInputError(f"--fail-on must be one of {', '.join(GATE_LEVELS)}; got {fail_on!r}")
        result = compare(load_snapshot(old), load_snapshot(new))
    except DiffInputError as exc:
        console.print(f"[bold red]error:[/] {_esc(str(exc))}", markup=True, highlight=False)
        raise typer.Exit(EXIT_INPUT) from None
    tripping = result.gate(fail_on)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, allow_nan=False))
    else:
        _print_diff(_stdout_console(), result, fail_on, tripping)
    raise typer.Exit(EXIT_GATE if tripping else EXIT_OK)


def _stdout_console() -> Console:
    """The command's output: the terminal's width, or 120 columns in a log (unless COLUMNS says)."""
    from rich.console import Console

    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(highlight=False, width=120)
    return out


def _audit_label(snap: Any) -> str:
    parts = [snap.name or "audit", snap.started_at]
    if snap.model_sha256:
        parts.append(f"model {snap.model_sha256[:12]}")
    return " · ".join(p for p in parts if p)


def _print_diff(out: Console, d: AuditDiff, level: str, tripping: list[Any]) -> None:
    """The comparison as terminal tables: findings, check statuses, moved headline metrics, verdict."""
    from rich.markup import escape
    from rich.table import Table

    out.print(f"[bold]old[/] {escape(_audit_label(d.old))}  [dim]{escape(d.old.source)}[/]")
    out.print(f"[bold]new[/] {escape(_audit_label(d.new))}  [dim]{escape(d.new.source)}[/]")
    out.print(f"Findings: {len(d.added)} new · {len(d.resolved)} resolved · {len(d.changed)} changed"
              + (f" · {len(d.not_rechecked)} not rechecked" if d.not_rechecked else "")
              + f" · {d.unchanged} unchanged")
    rows = [("new", "bold red", f.severity, f.status, f) for f in d.added]
    rows += [("worse" if c.worse else "better", "bold red" if c.worse else "green",
              _arrow(c.before.severity, c.after.severity), _arrow(c.before.status, c.after.status), c.after)
             for c in d.changed]
    rows += [("resolved", "green", f.severity, "", f) for f in d.resolved]
    rows += [("not rechecked", "yellow", f.severity, f.status, f) for f in d.not_rechecked]
    if rows:
        table = Table(show_edge=False, pad_edge=False, header_style="bold")
        for col in ("change", "severity", "status", "finding"):
            table.add_column(col, overflow="fold")
        for word, style, sev, status, f in rows:
            table.add_row(f"[{style}]{word}[/]", f"[{SEVERITY_STYLE[f.severity]}]{escape(sev)}[/]", escape(status),
                          f"{escape(f.title)}\n[dim]{escape(f.id)}[/]")
        out.print(table)
    for c in d.checks:
        out.print(f"Check [bold]{escape(c.id)}[/]: {c.before} → {c.after}")
    moved = d.moved_metrics
    out.print(f"Headline metrics: {len(moved)} of {len(d.metrics)} moved")
    if moved:
        table = Table(show_edge=False, pad_edge=False, header_style="bold")
        table.add_column("metric", overflow="fold")
        for col in ("old", "new", "change"):
            table.add_column(col, justify="right", no_wrap=True)
        table.add_column("intervals")
        for m in moved:
            note = {True: "[dim]overlap[/]", False: "apart", None: ""}[m.intervals_overlap]
            table.add_row(f"{escape(m.check)} [bold]{escape(m.metric)}[/]", _with_interval(m.before, m.before_interval),
                          _with_interval(m.after, m.after_interval), f"{m.delta:+.3g}", note)
        out.print(table)
    if level == "none":
        out.print("Gate: none (--fail-on none)")
    elif tripping:
        out.print(f"[bold red]FAILED[/]: {len(tripping)} new or worsened open finding(s) at or above {level}")
    else:
        out.print(f"[bold green]PASSED[/]: no new or worsened open finding at or above {level}")


def _arrow(before: str, after: str) -> str:
    return after if before == after else f"{before} → {after}"


def _with_interval(value: float, interval: tuple[float, float] | None) -> str:
    from rich.markup import escape

    return escape(f"{value:.4g}" + (f" ({interval[0]:.3g}–{interval[1]:.3g})" if interval else ""))


# ---- auditor monitor ----------------------------------------------------------------------------

@app.command("monitor")
def monitor_command(
    baseline: Path = typer.Argument(..., help="The monitoring baseline an audit wrote (remediation/monitoring.json, "
                                              "or the report folder).", show_default=False),
    data: Path = typer.Argument(..., help="New rows to check (CSV or Parquet).", show_default=False),
    model: str | None = typer.Option(None, "--model", help="The model file (or file.py:NAME): adds the score's drift "
                                                           "and the groups' favourable rates and adverse impact "
                                                           "ratios."),
    trusted: bool = typer.Option(False, "--trusted", help="Allow a pickle or Python model (it can run code when "
                                                          "loaded), as [model] trusted = true does."),
    out: Path | None = typer.Option(None, "--out", help="Write the result as JSON to this file."),
) -> None:
    """Check production data against an audit's monitoring baseline: drift per feature (and of the
    score with --model), favourable rates and adverse impact ratios by group when the protected
    columns are present. Exit 1 on an alert, 0 otherwise, 2 on bad input."""
    import json

    from .errors import AuditInputError
    from .inputs import load_model, load_table
    from .monitor import load_baseline, monitor

    console = _console()
    if not sys.warnoptions:
        warnings.simplefilter("ignore")
    try:
        base = load_baseline(baseline)
        table = load_table(str(data), role="monitored")
        loaded = load_model(model, trusted=trusted) if model else None
        result = monitor(base, table.frame, loaded, source=table.path)
        if out is not None:
            text = json.dumps(result.to_json(), indent=1, allow_nan=False, ensure_ascii=False) + "\n"
            try:
                out.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise AuditInputError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    except AuditInputError as exc:
        message = str(exc).replace("set [model] trusted = true", "pass --trusted")  # the loader speaks of the config
        console.print(f"[bold red]error:[/] {_esc(message)}", markup=True, highlight=False)
        raise typer.Exit(EXIT_INPUT) from None
    _print_monitor(_stdout_console(), result)
    raise typer.Exit(EXIT_GATE if result.n_alerts else EXIT_OK)


MONITOR_STYLE = {"alert": "bold red", "warn": "dark_orange", "ok": "green", "not judged": "dim"}


def _print_monitor(out: Console, r: Any) -> None:
    """The monitor's result as terminal tables: columns by PSI, groups, then the alerts and the verdict."""
    import math

    from rich.markup import escape
    from rich.table import Table

    b = r.baseline
    out.print(f"[bold]baseline[/] {escape(b.audit or 'audit')} · model {escape(b.model.sha256[:12])}  "
              f"[dim]{escape(b.source)}[/]")
    scored = "" if r.scored_rows is None else f" · {r.scored_rows:,} scored by the model"
    out.print(f"[bold]data[/] {r.rows:,} rows{scored}  [dim]{escape(r.source)}[/]")
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for col in ("column", "kind", "PSI", "p", "level"):
        table.add_column(col, justify="right" if col in ("PSI", "p") else "left", overflow="fold")
    def rank(c: Any) -> tuple[bool, float]:  # the score first, then the features by PSI
        return c.role != "score", -(c.shift.psi if math.isfinite(c.shift.psi) else -1.0)

    for c in sorted(r.columns, key=rank):
        name = "model score" if c.role == "score" else c.name
        table.add_row(escape(name), c.shift.kind, f"{c.shift.psi:.3f}", f"{c.shift.p_value:.2g}",
                      f"[{MONITOR_STYLE[c.level]}]{c.level}[/]")
    out.print(table)
    if r.groups:
        groups = Table(show_edge=False, pad_edge=False, header_style="bold")
        for col in ("group", "rows", "favourable rate", "AIR", "level"):
            groups.add_column(col, justify="left" if col in ("group", "level") else "right", overflow="fold")
        for g in r.groups:
            rate = _arrow(_pct(g.baseline_rate), _pct(g.favorable_rate))
            air = "" if g.grouping == "all rows" or g.is_reference else _arrow(_fix(g.baseline_air),
                                                                               _fix(g.adverse_impact_ratio))
            groups.add_row(escape(g.label) + (" [dim](reference)[/]" if g.is_reference else ""), f"{g.rows:,}",
                           escape(rate), escape(air), f"[{MONITOR_STYLE[g.level]}]{g.level}[/]")
        out.print(groups)
    for a in r.alerts:
        out.print(f"[{MONITOR_STYLE[a.level]}]{a.level:<5}[/] {escape(a.subject)}: {escape(a.reason)}")
    for note in r.notes:
        out.print(f"[dim]note: {escape(note)}[/]")
    if r.n_alerts:
        out.print(f"[bold red]ALERT[/]: {r.n_alerts} alert(s), {r.n_warnings} warning(s)")
    else:
        out.print(f"[bold green]OK[/]: no alert ({r.n_warnings} warning(s))")


def _pct(x: float) -> str:
    from .wording import pct

    return pct(x)


def _fix(x: float) -> str:
    from .wording import fixed

    return fixed(x)


@app.command("schema")
def schema_command() -> None:
    """Print the findings.json JSON Schema shipped with this version of auditor."""
    from .resources import findings_schema_text

    sys.stdout.write(findings_schema_text())


def _main(config_path: Path, *, out: Path | None, seed: int | None, fail_on: str | None, formats: str | None,
          force: bool, debug: bool, demo: bool, shared: bool = False, workers: int | None = None) -> int:
    console = _console()
    if not debug:
        warnings.simplefilter("ignore")
    try:
        with _stop_signals():
            return _audit(console, config_path, out=out, seed=seed, fail_on=fail_on, formats=formats,
                          force=force, shared=shared, debug=debug, demo=demo, workers=workers)
    except _Fail as exc:
        console.print(f"[bold red]error:[/] {_esc(str(exc))}", markup=True, highlight=False)
        return exc.code
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, _Stopped) else signal.SIGINT
        word = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        console.print(f"[bold red]{word}[/]: no report written")
        return EXIT_SIGNAL_BASE + int(signum)
    except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback unless --debug
        if debug:
            raise
        console.print(f"[bold red]error:[/] internal error: {type(exc).__name__}: {_esc(str(exc))} "
                      "(run with --debug for details)",
                      markup=True)
        return EXIT_INCOMPLETE


def _audit(console: Console, config_path: Path, *, out: Path | None, seed: int | None, fail_on: str | None,
           formats: str | None, force: bool, shared: bool, debug: bool, demo: bool, workers: int | None = None) -> int:
    from dataclasses import replace

    from .config import load_config
    from .errors import AuditInputError

    try:
        config = load_config(config_path)
        fmt = tuple(f.strip().lower() for f in formats.split(",") if f.strip()) if formats is not None else None
        if fmt is not None and not fmt:
            raise AuditInputError("--format needs at least one of html, pdf, json, junit, md")
        config = config.with_overrides(seed=seed, fail_on=fail_on, formats=fmt, workers=workers)
        if demo:
            config = replace(config, report=replace(config.report, out=str(Path.cwd() / "reports")))
        out_dir = _out_dir(config, out)
    except AuditInputError as exc:
        raise _Fail(str(exc)) from None

    from .outdir import OutputError, RunFolder, private_library_files

    # the output folder is checked, created beside itself and locked before anything else runs
    folder = RunFolder(out_dir, replace=force, shared=shared)
    try:
        folder.open()
    except OutputError as exc:
        raise _Fail(str(exc)) from None
    try:
        with private_library_files(folder.home):
            return _run(console, config, folder, debug)
    finally:
        folder.close()


def _run(console: Console, config: AuditConfig, folder: RunFolder, debug: bool) -> int:
    """Load, run every check and write the report into ``folder`` (open and locked)."""
    from .engine import prepare
    from .errors import AuditInputError
    from .outdir import OutputError

    t0 = time.perf_counter()
    with _Steps(console) as step:
        try:
            audit = prepare(config, step=step)
        except AuditInputError as exc:
            if debug:
                raise
            raise _Fail(str(exc)) from None
    ctx = audit.context
    console.print(f"[bold]auditor {__version__}[/] · {config.audit.name} · {ctx.model.adapter.kind} · {ctx.task} · "
                  f"test {len(ctx.test):,} rows" + (f", train {len(ctx.train):,} rows" if ctx.train is not None else "")
                  + f" · {len(ctx.features)} features · seed {config.audit.seed}")

    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread: the checks make many small batched model calls, where extra threads
    # only spin and, on a busy machine, slow a call down by orders of magnitude. The workers (if any)
    # start before the progress display, whose thread a forked process must not inherit.
    try:
        with threadpool_limits(limits=_threads()), audit.engine(), \
                _RichProgress(console, total=len(audit.registry.ids())) as progress:
            result = audit.run(progress=progress)
    except AuditInputError as exc:  # the cluster went away before the checks were sent
        if debug:
            raise
        raise _Fail(str(exc)) from None
    finally:
        audit.close()
    for cid, why in audit.in_process.items():
        console.print(f"  [dim]{_esc(cid)} ran in the audit process: {_esc(why)}[/]", markup=True, highlight=False)
    if debug:
        for cid, tb in audit.tracebacks.items():
            console.print(f"[bold red]{cid} traceback:[/]\n{tb}", markup=True, highlight=False)

    with _Steps(console) as step:
        try:
            # figures drawn by forked processes, as the local workers; not beside a Dask client (its threads)
            drawing = config.engine.workers if config.engine.backend == "local" else 1
            written = result.write_into(folder, config.report.formats, step=step, workers=drawing)
        except OutputError as exc:
            raise _Fail(str(exc)) from None
    from .outdir import PRIVATE

    _summary(console, result, written, time.perf_counter() - t0, private=folder.permissions == PRIVATE)
    return result.exit_code


def _threads() -> int:
    """Threads for BLAS/OpenMP inside model calls: AUDITOR_THREADS if set, else 1."""
    try:
        return max(1, int(os.environ.get("AUDITOR_THREADS", "1")))
    except ValueError:
        return 1


def _out_dir(config: AuditConfig, out: Path | None) -> Path:
    """``--out`` as given (absolute), else ``<report.out>/<name>-<UTC timestamp>-<6 random hex digits>``.

    The random suffix keeps two runs started in the same second apart; whether the folder can be
    used is decided by ``RunFolder.open`` (under its lock).
    """
    from .outdir import lock_name

    if out is not None:
        return out.expanduser().resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in config.audit.name).lstrip(".") or "audit"
    base = Path(config.report.out)
    while True:
        path = base / f"{safe[:120]}-{stamp}-{secrets.token_hex(3)}"
        if not path.exists() and not (base / lock_name(path.name)).exists():
            return path


class _Steps:
    """Progress of the steps before and after the checks (loading inputs, writing the report): a
    spinner naming the step in a terminal; otherwise (CI logs) plain lines, so no step is silent.
    The plain lines go to stdout: stderr keeps the one-line error of an audit that cannot start."""

    def __init__(self, console: Console) -> None:
        from rich.console import Console

        self.console = console if console.is_terminal else Console(highlight=False, soft_wrap=True)
        self.status = console.status("", spinner="dots") if console.is_terminal else None

    def __enter__(self) -> _Steps:
        if self.status is not None:
            self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()

    def __call__(self, text: str) -> None:
        if self.status is not None:
            self.status.update(f"{_esc(text)}…")
        else:
            self.console.print(f"{_esc(text)}…", markup=True, highlight=False)


class _RichProgress:
    """Live progress on stderr (check name, count, elapsed) and one line per finished check."""

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True,
                                 disable=not console.is_terminal)
        self.task = self.progress.add_task("starting", total=total)

    def __enter__(self) -> _RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, check_id: str, title: str) -> None:
        self.progress.update(self.task, description=check_id)

    def finished(self, result: CheckResult) -> None:
        self.progress.advance(self.task)
        status = result.status.value
        style = {"ok": "green", "error": "bold red", "skipped": "dim"}[status]
        worst = max((f.severity.rank for f in result.findings), default=-1)
        sev = {3: "high", 2: "medium", 1: "low", 0: "info"}.get(worst, "")
        if status == "ok":
            extra = f"{len(result.findings)} finding(s)" + (f", worst [{SEVERITY_STYLE[sev]}]{sev}[/]" if sev else "")
        else:
            extra = _esc(result.reason if status == "skipped" else result.error)
        self.console.print(f"  [{style}]{status:<7}[/] {result.id:<32} {result.duration_s:6.1f}s  {extra}",
                           markup=True, highlight=False)

    def remedy_finished(self, result: RemedyResult) -> None:
        status = result.status.value
        style = {"ok": "green", "error": "bold red", "skipped": "dim"}[status]
        if status == "ok":
            n = len(result.remediations)
            extra = f"{n} remed{'y' if n == 1 else 'ies'} measured" + (
                f", {len(result.artifacts)} file(s)" if result.artifacts else "")
        else:
            extra = _esc(result.reason if status == "skipped" else result.error)
        self.console.print(f"  [{style}]{status:<7}[/] {'remedy ' + result.id:<32} {result.duration_s:6.1f}s  {extra}",
                           markup=True, highlight=False)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _summary(console: Console, result: AuditResult, written: dict[str, Path], seconds: float, *,
             private: bool = True) -> None:
    counts = result.counts
    gate = result.gate
    gate_style = "bold green" if gate == "passed" else "bold red"
    gate_word = f"NOT EVALUATED: {len(result.errored)} check(s) in error" if gate == "incomplete" else gate.upper()
    console.print()
    if result.status == "incomplete":
        errored = result.errored
        console.print(f"[bold red]INCOMPLETE[/]: {len(errored)} check(s) ended in error: {', '.join(errored)}")
    console.print(f"Gate [{gate_style}]{gate_word}[/] (fail on {result.info.fail_on}) · "
                  + " · ".join(f"[{SEVERITY_STYLE[k]}]{v} {k}[/]" for k, v in counts.items())
                  + _accepted_count(result) + f" · {seconds:.1f}s")
    _top_findings(console, result.findings)
    if written:
        folder = next(iter(written.values())).parent
        access = "private: only you can read it, --shared to widen" if private else "shared: readable by others"
        console.print(f"Report: {folder}  ({', '.join(p.name for p in written.values())}; {access})")


def _accepted_count(result: AuditResult) -> str:
    """`` · N accepted`` for the counts line when waivers accepted findings (the gate skips them)."""
    n = len(result.accepted)
    return f" · [green]{n} accepted[/] (waived, not counted by the gate)" if n else ""


def _accepted_mark(finding: Finding) -> str:
    """A finding accepted by a waiver is shown as accepted, with its approver and expiry."""
    from rich.markup import escape

    w = finding.waiver
    if finding.status != "accepted" or w is None:
        return ""
    return f"[green]accepted[/] ({escape(w.approved_by)}, until {w.expires.isoformat()}) "


TOP_FINDINGS = 5  # shown in the run summary; the rest are counted ("+N more")


def _top_findings(console: Console, findings: list[Any]) -> None:
    """The most severe findings (info left out), then "+N more" naming what the report holds besides."""
    from rich.markup import escape

    shown = [f for f in findings if f.severity.value != "info"][:TOP_FINDINGS]
    for f in shown:
        sev = f.severity.value
        console.print(f"  [{SEVERITY_STYLE[sev]}]{sev:<6}[/] {_accepted_mark(f)}{escape(f.title)}")
    rest = findings[len(shown):]
    if rest:
        by_severity = {s: sum(f.severity.value == s for f in rest) for s in SEVERITY_STYLE}
        parts = ", ".join(f"{n} {s}" for s, n in by_severity.items() if n)
        console.print(f"  [dim]+{len(rest)} more ({parts}) in the report[/]")


def main() -> None:
    from .processes import exit_now

    try:
        app(prog_name="auditor")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_INPUT)
    exit_now(code)  # the console script ends here: no second of freeing the audit's heap at exit


if __name__ == "__main__":
    main()
