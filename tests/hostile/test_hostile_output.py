"""Hostile output locations (issue 8, items 3-7): private reports, nothing written outside the output
folder, locked and unique output folders, unwritable and failing locations, --force and signals.

Every case is built here and run through the real console script in a subprocess (a write failure is
injected by monkeypatching inside that subprocess). Tests run as root in CI, where file modes do not
stop writes, so an unwritable location is made from a path under a regular file, or under /sys.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from conftest import ROOT
from sklearn.linear_model import LogisticRegression

from auditor.checks import default_registry
from auditor.outdir import OutputLocked, RunFolder, lock_name

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
ALL_CHECKS = tuple(default_registry().ids())
# keep the runs short: a few cheap checks (performance.metrics draws a figure); the HOME test adds
# the membership check, which imports ART
RUN = ("data.schema", "data.quality", "performance.metrics")


def skip_list(*run: str) -> str:
    return json.dumps([c for c in ALL_CHECKS if c not in RUN + run])

# a model whose every call is slow, and which says when it is first called: a run that is surely busy
SLOW_MODEL = """
import os, time
from pathlib import Path
import numpy as np

class Model:
    def predict_proba(self, X):
        Path(os.environ["AUDITOR_TEST_STARTED"]).touch()
        time.sleep(0.5)
        p = 1 / (1 + np.exp(-0.08 * (X['income'].to_numpy() - 50)))
        return np.column_stack([1 - p, p])
    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
"""

# a model module that leaves a mark as soon as it is imported (loading the model runs it)
MARKING_MODEL = """
import os
from pathlib import Path
Path(os.environ["AUDITOR_TEST_LOADED"]).touch()
class Model:
    def predict_proba(self, X):
        import numpy as np
        return np.tile([0.5, 0.5], (len(X), 1))
    def predict(self, X):
        import numpy as np
        return np.zeros(len(X), dtype=int)
"""


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env or ENV, timeout=600, **kw)


def one_line_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def final_error_line(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    """A failure after the checks ran: their progress lines, then exactly one error line, last."""
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert errors == [lines[-1]], proc.stderr
    return lines[-1]


def leftovers(folder: Path) -> list[str]:
    """Hidden auditor files (scratch folders, lock files) in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".auditor-")) if folder.exists() else []


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A small audit folder; the membership check runs (it imports ART) and the HTML report has figures."""
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(10, 3, n)})
    logit = 0.08 * (X["income"] - 50) - 0.3 * (X["debt"] - 10)
    X["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X.iloc[:300].to_csv(tmp_path / "train.csv", index=False)
    X.iloc[300:].to_csv(tmp_path / "test.csv", index=False)
    sio.dump(LogisticRegression().fit(X.iloc[:300][["income", "debt"]], X.iloc[:300]["default"]),
             tmp_path / "model.skops")
    (tmp_path / "audit.toml").write_text(
        '[audit]\nname = "small"\n[model]\npath = "model.skops"\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\ntarget = "default"\nfeatures = ["income", "debt"]\n'
        f'[checks]\nskip = {skip_list()}\n')
    return tmp_path


def python_model(project: Path, source: str) -> Path:
    (project / "my_model.py").write_text(source)
    text = (project / "audit.toml").read_text().replace('path = "model.skops"',
                                                        'path = "my_model.py:Model"\ntrusted = true')
    (project / "audit.toml").write_text(text)
    return project / "audit.toml"


# ---- item 3: private by default ----------------------------------------------------------------

def _modes(folder: Path) -> tuple[int, set[int]]:
    """The folder's mode and its files' modes; its sub-folders (remediation/) must have the folder's mode."""
    inside = list(folder.rglob("*"))
    assert {stat.S_IMODE(p.stat().st_mode) for p in inside if p.is_dir()} <= {stat.S_IMODE(folder.stat().st_mode)}
    return stat.S_IMODE(folder.stat().st_mode), {stat.S_IMODE(p.stat().st_mode) for p in inside if p.is_file()}


def test_report_is_private_by_default_and_shared_on_request(project: Path) -> None:
    # umask 0 in the child: the modes come from auditor, not from the caller's umask
    private, shared = project / "private", project / "shared"
    proc = cli("run", str(project / "audit.toml"), "--out", str(private), "--format", "json,html",
               preexec_fn=lambda: os.umask(0))
    assert proc.returncode in (0, 1), proc.stderr
    assert _modes(private) == (0o700, {0o600})
    assert sorted(p.name for p in private.iterdir()) == ["findings.json", "remediation", "report.html"]
    proc = cli("run", str(project / "audit.toml"), "--out", str(shared), "--format", "json", "--shared",
               preexec_fn=lambda: os.umask(0o077))
    assert proc.returncode in (0, 1), proc.stderr
    assert _modes(shared) == (0o755, {0o644})


# ---- item 4: nothing written outside the output folder -----------------------------------------

def test_nothing_is_written_under_home(project: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    text = (project / "audit.toml").read_text().replace(skip_list(), skip_list("security.membership_inference"))
    (project / "audit.toml").write_text(text)
    env = {k: v for k, v in ENV.items() if k not in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
                                                     "XDG_DATA_HOME")}
    env["HOME"] = str(home)
    env["TMPDIR"] = str(tmp_path / "systmp")  # the system temporary folder, watched too
    (tmp_path / "systmp").mkdir()
    parent = tmp_path / "reports"
    out = parent / "audit"
    proc = cli("run", str(project / "audit.toml"), "--out", str(out), "--format", "json,html,pdf", env=env)
    assert proc.returncode in (0, 1), proc.stderr
    # the run did import ART (membership attack) and matplotlib (figures in the HTML report)
    doc = json.loads((out / "findings.json").read_text())
    assert {c["id"]: c["status"] for c in doc["checks"]}["security.membership_inference"] == "ok"
    assert "data:image/svg+xml" in (out / "report.html").read_text()
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []
    assert list((tmp_path / "systmp").iterdir()) == []
    assert sorted(p.name for p in project.iterdir()) == sorted(["audit.toml", "model.skops", "train.csv",
                                                                "test.csv", "home", "systmp", "reports"])
    assert sorted(p.name for p in parent.iterdir()) == ["audit"]  # no lock, no scratch folder left


def test_art_config_goes_to_the_private_home(tmp_path: Path) -> None:
    """ART writes ~/.art/config.json when first imported: inside the run's folder, not under HOME."""
    home, private = tmp_path / "home", tmp_path / "private"
    home.mkdir()
    private.mkdir()
    code = ("import sys; from auditor.outdir import private_library_files\n"
            f"with private_library_files({str(private)!r}):\n"
            "    import art.config\n"
            "import os; print(os.environ.get('MPLCONFIGDIR'), os.environ['HOME'])\n")
    env = {k: v for k, v in ENV.items() if k != "MPLCONFIGDIR"}
    env["HOME"] = str(home)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (private / ".art" / "config.json").is_file()  # ART did write: the redirect is what kept HOME clean
    assert list(home.iterdir()) == []
    assert proc.stdout.split() == ["None", str(home)]  # environment restored after the block


# ---- item 5: concurrent runs -------------------------------------------------------------------

def test_second_run_on_a_locked_out_refuses(project: Path) -> None:
    out = project / "out"
    holder = RunFolder(out).open()  # what a first run holds for its whole duration
    try:
        with pytest.raises(OutputLocked):
            RunFolder(out).open()
        line = one_line_error(cli("run", str(project / "audit.toml"), "--out", str(out), "--format", "json"))
        assert "in use by another audit run" in line and lock_name("out") in line
        assert not out.exists()
    finally:
        holder.close()
    assert leftovers(project) == []
    # a lock file left by a killed run (nobody holds it) does not block
    (project / lock_name("out")).write_text("")
    proc = cli("run", str(project / "audit.toml"), "--out", str(out), "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    assert (out / "findings.json").is_file() and leftovers(project) == []


def test_default_folder_names_are_unique_within_a_second(project: Path, monkeypatch) -> None:
    from datetime import datetime

    import auditor.cli as cli_mod
    from auditor.config import load_config

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    monkeypatch.setattr(cli_mod, "datetime", Frozen)
    config = load_config(project / "audit.toml")
    names = {cli_mod._out_dir(config, None).name for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith("small-20260102T030405Z-") for n in names)


def test_two_default_runs_started_together_keep_both_reports(project: Path) -> None:
    assert not (project / "reports").exists()  # the default parent is created, on the output's filesystem
    procs = [subprocess.Popen([sys.executable, "-m", "auditor", "run", str(project / "audit.toml"), "--format",
                               "json"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode in (0, 1), err
    reports = project / "reports"
    folders = sorted(p for p in reports.iterdir())
    assert len(folders) == 2, folders
    assert all((f / "findings.json").is_file() for f in folders)
    assert leftovers(reports) == []


# ---- item 6: unwritable locations and write failures -------------------------------------------

def test_out_under_a_regular_file_is_refused_before_anything_runs(project: Path) -> None:
    config = python_model(project, MARKING_MODEL)
    loaded = project / "loaded"
    blocker = project / "file.txt"
    blocker.write_text("not a folder")
    out = blocker / "sub" / "out"
    line = one_line_error(cli("run", str(config), "--out", str(out), "--format", "json",
                              env={**ENV, "AUDITOR_TEST_LOADED": str(loaded)}))
    assert str(out) in line and "not a folder" in line
    assert not loaded.exists(), "the model was loaded before the output location was checked"
    assert blocker.read_text() == "not a folder" and leftovers(project) == []


def test_out_in_a_read_only_location_is_refused_before_anything_runs(project: Path) -> None:
    """/sys refuses new folders even to root (EPERM); elsewhere, a 0555 folder does for a normal user."""
    config = python_model(project, MARKING_MODEL)
    loaded = project / "loaded"
    if os.geteuid() == 0:
        parent = Path("/sys")
        try:
            (parent / "auditor-probe").mkdir()
        except OSError:
            pass
        else:
            (parent / "auditor-probe").rmdir()
            pytest.skip("/sys takes new folders here")
    else:
        parent = project / "ro"
        parent.mkdir(mode=0o555)
    out = parent / "auditor-test-out"
    line = one_line_error(cli("run", str(config), "--out", str(out), "--format", "json",
                              env={**ENV, "AUDITOR_TEST_LOADED": str(loaded)}))
    assert str(out) in line and "not writable" in line
    assert not loaded.exists() and not out.exists()


BOOM = """
import errno, sys
import auditor.render.json as j
def boom(result, target):
    target.write_bytes(b"{partial")
    raise OSError(errno.ENOSPC, "No space left on device", str(target))
j.write_json = boom
from auditor.cli import main
sys.argv = ["auditor", *sys.argv[1:]]
main()
"""

BAD_SWAP = """
import errno, sys
import auditor.outdir as o
def bad(self, stage):
    raise OSError(errno.EXDEV, "Invalid cross-device link")
o.RunFolder._swap = bad
from auditor.cli import main
sys.argv = ["auditor", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("script", [BOOM, BAD_SWAP], ids=["disk-full", "move-fails"])
def test_write_failure_is_exit_2_one_line_nothing_left(project: Path, script: str) -> None:
    parent = project / "new" / "deeper"
    out = parent / "out"
    proc = subprocess.run([sys.executable, "-c", script, "run", str(project / "audit.toml"), "--out", str(out),
                           "--format", "html,json"], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600)
    line = final_error_line(proc)
    assert f"cannot write the report to {out}" in line
    assert ("No space left" in line) if script is BOOM else ("cross-device" in line)
    assert not (project / "new").exists(), "the parent folders the run created are removed again"
    assert leftovers(project) == []


def test_run_folder_stages_beside_the_output(tmp_path: Path) -> None:
    with RunFolder(tmp_path / "a" / "b" / "out") as folder:
        assert folder.stage.parent.parent == tmp_path / "a" / "b"
        assert folder.stage.stat().st_dev == (tmp_path / "a" / "b").stat().st_dev
        (folder.stage / "findings.json").write_text("{}")
        folder.commit()
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["out"]


# ---- item 7: --force replaces the whole folder; signals ---------------------------------------

def test_force_replaces_the_whole_previous_report(project: Path) -> None:
    out = project / "out"
    proc = cli("run", str(project / "audit.toml"), "--out", str(out), "--format", "json,html")
    assert proc.returncode in (0, 1), proc.stderr
    (out / "report.pdf").write_bytes(b"%PDF old audit")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # a write failure while replacing leaves the previous report exactly as it was
    proc = subprocess.run([sys.executable, "-c", BOOM, "run", str(project / "audit.toml"), "--out", str(out),
                           "--format", "json", "--force"], capture_output=True, text=True, cwd=ROOT, env=ENV,
                          timeout=600)
    final_error_line(proc)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert leftovers(project) == []
    proc = cli("run", str(project / "audit.toml"), "--out", str(out), "--format", "json", "--force")
    assert proc.returncode in (0, 1), proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["findings.json", "remediation"]
    assert leftovers(project) == []


def test_force_never_deletes_files_that_are_not_a_report(project: Path) -> None:
    out = project / "out"
    out.mkdir()
    (out / "findings.json").write_text("{}")
    (out / "notes.txt").write_text("my notes")
    line = one_line_error(cli("run", str(project / "audit.toml"), "--out", str(out), "--format", "json",
                              "--force"))
    assert "notes.txt" in line and "not an audit report" in line
    assert (out / "notes.txt").read_text() == "my notes" and (out / "findings.json").read_text() == "{}"


def test_nonempty_out_without_force_is_refused(project: Path) -> None:
    out = project / "out"
    out.mkdir()
    (out / "findings.json").write_text("{}")
    line = one_line_error(cli("run", str(project / "audit.toml"), "--out", str(out), "--format", "json"))
    assert "--force" in line and str(out) in line


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_signal_during_a_run_cleans_up(project: Path, signum: int, code: int) -> None:
    config = python_model(project, SLOW_MODEL)
    started = project / "started"
    parent = project / "reports"
    out = parent / "out"
    proc = subprocess.Popen([sys.executable, "-m", "auditor", "run", str(config), "--out", str(out), "--format",
                             "json,html"], cwd=ROOT, env={**ENV, "AUDITOR_TEST_STARTED": str(started)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a run started from a background job inherits an ignored SIGINT (as a
                            # shell does for `cmd &`): give the child the disposition a terminal gives
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not started.exists():  # the model is being called: checks are running
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert leftovers(parent), "the run's scratch folder and lock exist while it runs"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert "Traceback" not in err and "no report written" in err
    assert not out.exists()
    assert leftovers(parent) == []
    assert not (project / "__pycache__").exists(), "no bytecode cache written beside the model's module"


@pytest.mark.parametrize("atomic", [True, False], ids=["renameat2-exchange", "rename-aside"])
def test_replace_swaps_the_whole_folder(tmp_path: Path, monkeypatch, atomic: bool) -> None:
    """Both ways of replacing an older report (one atomic exchange, or old aside then new in) leave
    only the new report, private, and nothing beside it."""
    import auditor.outdir as outdir

    if not atomic:
        monkeypatch.setattr(outdir, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("report.html", "report.pdf", "findings.json"):
        (out / name).write_text("old")
    with RunFolder(out, replace=True) as folder:
        (folder.stage / "findings.json").write_text("new")
        assert folder.commit() == out
    assert {p.name: p.read_text() for p in out.iterdir()} == {"findings.json": "new"}
    assert _modes(out) == (0o700, {0o600})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
