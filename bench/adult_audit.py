#!/usr/bin/env python3
"""Benchmark: where the time of a full audit of UCI Adult goes, against the model's own fit time.

    .venv/bin/python bench/adult_audit.py [--data ../shared/data] [--scale K] [--workers N]
                                          [--formats html,pdf,json] [--keep DIR]

Trains a HistGradientBoosting pipeline on adult.data (32,561 rows), saves model and data like a
user would (skops, CSV), then runs the audit in a fresh child process, as the CLI does (config,
prepare, checks, remediation, report), and prints in one run:

- wall time of the child (interpreter start to report written), the model's fit time, their ratio;
- time per phase: import, load (model and data files), predictions (the test rows, the training
  rows), checks, remediation, figures, HTML, PDF, and time per check;
- peak RSS: of the audit process, and of its largest child process (a forked worker counts the pages
  it shares with the audit process);
- HTML and PDF size;
- the rows the audit sent to the audited model (every process, every call) and the time those
  rows take in one batched ``predict_proba`` call, which the model adapter splits into pieces of
  ``auditor.model.BATCH_ROWS`` rows like every call of the audit (the scoring-bound floor; timed on
  at most 500,000 rows and scaled when there are more);
- with ``--scale K`` (K > 1): the same at K = 1 and at K (K copies of train and test, the numeric
  columns of every copy but the first jittered), the model refitted on each, and the K / K=1 ratio
  of the audit's wall time.

Timings on a shared machine are noisy: compare runs made back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
           "income"]
CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "native-country"]
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
FLOOR_MAX_ROWS = 500_000


def load(path: Path, skip: int) -> pd.DataFrame:
    df = pd.read_csv(path, header=None, names=COLUMNS, skipinitialspace=True, skiprows=skip, na_values="?")
    df["income"] = df["income"].str.rstrip(".").eq(">50K").astype(int)
    for col in CATEGORICAL + ["race", "sex"]:
        df[col] = df[col].fillna("missing")
    return df


def scaled(df: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """K copies of the rows; every copy but the first has its numeric columns jittered (about 5% of
    each column's spread, rounded and kept within the column's range) so rows are not exact repeats."""
    if k == 1:
        return df
    rng = np.random.default_rng(seed)
    copies = [df]
    for _ in range(k - 1):
        c = df.copy()
        for col in NUMERIC:
            x = c[col].to_numpy(dtype=float)
            jitter = rng.normal(0.0, 0.05 * x.std(), len(x)) * (x != 0)  # zeros (no capital gain) stay zero
            c[col] = np.clip(np.round(x + jitter), x.min(), x.max()).astype(df[col].dtype)
        copies.append(c)
    return pd.concat(copies, ignore_index=True)


def fit_and_save(train: pd.DataFrame, test: pd.DataFrame, work: Path, formats: str) -> float:
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    model = Pipeline([
        ("encode", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                                       CATEGORICAL)], remainder="passthrough")),
        ("gbm", HistGradientBoostingClassifier(random_state=0)),
    ])
    t0 = time.perf_counter()
    model.fit(train[CATEGORICAL + NUMERIC], train["income"])
    fit_s = time.perf_counter() - t0
    work.mkdir(parents=True, exist_ok=True)
    train.to_csv(work / "train.csv", index=False)
    test.to_csv(work / "test.csv", index=False)
    sio.dump(model, work / "model.skops")
    fmt = ", ".join(f'"{f}"' for f in formats.split(","))
    (work / "audit.toml").write_text(
        '[audit]\nname = "adult-hgb"\n[model]\npath = "model.skops"\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\ntarget = "income"\nprotected = ["sex", "race"]\n'
        f'[report]\nformats = [{fmt}]\n')
    return fit_s


# ---- the child: one audit, timed phase by phase -----------------------------------------------------
def child(work: Path, workers: int | None, timings: Path) -> int:
    """Runs in a fresh interpreter: the CLI's steps with a clock on each, written to ``timings``."""
    t_start = time.perf_counter()
    import multiprocessing

    import auditor.cli  # noqa: F401 - the import cost of the console script and what it loads
    from auditor.checks import default_registry
    from auditor.config import load_config
    from auditor.engine import prepare
    from auditor.model import PythonModel
    from auditor.outdir import RunFolder

    registry = default_registry()
    phases: dict[str, float] = {"import": time.perf_counter() - t_start}
    peaks: dict[str, float] = {"import": _peak_mb()}  # the audit process's peak RSS at the end of each phase
    rows = multiprocessing.Value("q", 0)  # shared with forked workers: rows sent to the audited model
    audited: list[PythonModel] = []
    original = PythonModel.predict_proba

    def counting(self: PythonModel, X: pd.DataFrame) -> np.ndarray:
        if not audited:
            audited.append(self)  # the first adapter made is the audited model's
        if self is audited[0]:
            with rows.get_lock():
                rows.value += len(X)
        return original(self, X)

    PythonModel.predict_proba = counting  # type: ignore[method-assign]
    marks: list[tuple[str, float]] = []
    config = load_config(work / "audit.toml").with_overrides(workers=workers)
    audit = prepare(config, registry, step=lambda text: marks.append((text, time.perf_counter())))
    t_prepared = time.perf_counter()
    marks.append(("end", t_prepared))
    load_s = predict_s = 0.0
    for (text, t), (_, t_next) in zip(marks, marks[1:]):
        if text.startswith("loading"):
            load_s += t_next - t
        else:
            predict_s += t_next - t
    t0 = time.perf_counter()
    audit.context.warm()  # the training rows too (a check would otherwise predict them inside its time)
    predict_s += time.perf_counter() - t0
    phases["load"], phases["predictions"] = load_s, predict_s
    peaks["predictions"] = _peak_mb()

    from threadpoolctl import threadpool_limits

    last = {"check": 0.0}

    class Progress:
        def started(self, check_id: str, title: str) -> None:
            pass

        def finished(self, result: object) -> None:
            last["check"] = time.perf_counter()

    t0 = time.perf_counter()
    with threadpool_limits(limits=1), audit.engine():
        result = audit.run(progress=Progress())
    t_run = time.perf_counter()
    phases["checks"] = last["check"] - t0
    phases["remediation"] = t_run - last["check"]
    peaks["checks and remediation"] = _peak_mb()
    steps: list[tuple[str, float, float]] = []
    with RunFolder(work / "report", replace=True) as folder:
        written = result.write_into(folder, config.report.formats, workers=config.engine.workers,
                                    step=lambda text: steps.append((text, time.perf_counter(), _peak_mb())))
    steps.append(("end", time.perf_counter(), _peak_mb()))
    for (text, t, _), (_, t_next, peak_next) in zip(steps, steps[1:]):
        key = ("figures" if "figure" in text else "HTML" if text.endswith(".html") else
               "PDF" if text.endswith(".pdf") else "other writing")
        phases[key] = phases.get(key, 0.0) + t_next - t
        peaks[key] = max(peaks.get(key, 0.0), peak_next)
    doc = {
        "phases": phases, "peaks": peaks, "rows": rows.value, "where": audit.where,
        "checks": [(c.id, c.duration_s, c.status.value) for c in result.checks],
        "remedies": [(r.id, r.duration_s, r.status.value) for r in result.remedies],
        "beside": list(audit.remedies_beside_checks),
        "status": result.status, "files": {fmt: p.stat().st_size for fmt, p in written.items()},
        "rss_self_mb": _peak_mb(),
        "rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "test_rows": len(audit.context.test),
    }
    timings.write_text(json.dumps(doc))
    return 0


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ``getrusage``'s ``ru_maxrss``: Linux carries it
    over an exec from the process that forked, so a child started by this benchmark would report
    the benchmark's own peak (the data and the model fit) as its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scoring_floor(work: Path, n_rows: int) -> tuple[float, int]:
    """Seconds one batched predict_proba through the audit's model adapter (pieces of BATCH_ROWS rows)
    takes on ``n_rows`` rows of the test data (repeated), timed on at most FLOOR_MAX_ROWS rows and scaled."""
    import skops.io as sio

    from auditor.model import PythonModel

    model = sio.load(work / "model.skops", trusted=sio.get_untrusted_types(file=work / "model.skops"))
    test = pd.read_csv(work / "test.csv")[CATEGORICAL + NUMERIC]
    n = min(n_rows, FLOOR_MAX_ROWS)
    X = test.iloc[np.resize(np.arange(len(test)), n)].reset_index(drop=True)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        t0 = time.perf_counter()
        PythonModel(model).predict_proba(X)
        seconds = time.perf_counter() - t0
    return seconds * n_rows / max(n, 1), n


def run_once(train: pd.DataFrame, test: pd.DataFrame, k: int, args: argparse.Namespace) -> dict:
    work = (args.keep or Path(tempfile.mkdtemp(prefix="auditor-bench-"))) / f"K{k}"
    fit_s = fit_and_save(scaled(train, k, 1), scaled(test, k, 2), work, args.formats)
    timings = work / "timings.json"
    cmd = [sys.executable, __file__, "--child", str(work), "--timings", str(timings)]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - t0
    if proc.returncode:
        print(proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(proc.returncode)
    doc = json.loads(timings.read_text())
    floor_s, timed_rows = scoring_floor(work, doc["rows"])
    doc.update(wall_s=wall_s, fit_s=fit_s, floor_s=floor_s, floor_timed_rows=timed_rows, k=k,
               train_rows=len(train) * k, work=str(work))
    return doc


def report(d: dict) -> None:
    print(f"== K = {d['k']}: train {d['train_rows']:,} rows, test {d['test_rows']:,} rows, "
          f"{len(CATEGORICAL + NUMERIC)} features; checks: {d['where']}")
    print(f"model fit:        {d['fit_s']:8.2f} s")
    print(f"audit wall time:  {d['wall_s']:8.2f} s  (status {d['status']})")
    print(f"ratio audit/fit:  {d['wall_s'] / d['fit_s']:8.1f} x  (target: at most 10x)")
    print("time per phase:")
    order = ["import", "load", "predictions", "checks", "remediation", "figures", "HTML", "PDF", "other writing"]
    for key in order:
        if key in d["phases"]:
            print(f"  {key:<14} {d['phases'][key]:7.2f} s")
    print(f"peak RSS:         {d['rss_self_mb']:8.0f} MB audit process, {d['rss_workers_mb']:.0f} MB largest "
          "child process (target: at most 1 GB)")
    print("  audit process's peak at the end of: " + ", ".join(f"{k} {v:.0f}" for k, v in d["peaks"].items()) + " MB")
    for fmt in ("html", "pdf"):
        if fmt in d["files"]:
            print(f"{fmt.upper()} size:        {d['files'][fmt] / 1e6:8.2f} MB" + ("  (target: at most 2 MB)"
                                                                                 if fmt == "html" else ""))
    scaled_note = "" if d["floor_timed_rows"] == d["rows"] else f", timed on {d['floor_timed_rows']:,} rows"
    print(f"rows to the model: {d['rows']:,} (every process); one batched call on them, in the audit's "
          f"pieces: {d['floor_s']:.2f} s "
          f"(the scoring floor{scaled_note})")
    total = sum(c[1] for c in d["checks"])
    beside = sum(r[1] for r in d.get("remedies", []) if r[0] in d.get("beside", []))
    print(f"checks: {total:.2f} s of check time and {beside:.2f} s of the remedies run beside them in "
          f"{d['phases']['checks']:.2f} s of wall time ({(total + beside) / max(d['phases']['checks'], 1e-9):.2f} "
          "at a time on average)")
    print("time per check (in its process):")
    for cid, seconds, status in sorted(d["checks"], key=lambda c: -c[1]):
        print(f"  {cid:<34} {seconds:7.2f} s  {status}")
    print("time per remedy: " + ", ".join(f"{rid} {seconds:.2f} s" + ("" if status == "ok" else f" ({status})")
                                          for rid, seconds, status in d.get("remedies", []))
          + (f"; beside the checks: {', '.join(d['beside'])}" if d.get("beside") else ""))
    print(f"inputs and report in {d['work']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--keep", type=Path, default=None, help="keep the inputs and reports in this folder")
    parser.add_argument("--scale", type=int, default=1, help="K: also run on K jittered copies of the data")
    parser.add_argument("--workers", type=int, default=None, help="[engine] workers (default: the config's, 0)")
    parser.add_argument("--formats", default="html,pdf,json")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--timings", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        from auditor.processes import exit_now

        exit_now(child(args.child, args.workers, args.timings))  # as the console script ends
    if args.scale < 1:
        parser.error("--scale must be at least 1")

    train = load(args.data / "adult.data", 0)
    test = load(args.data / "adult.test", 1)
    runs = [run_once(train, test, k, args) for k in sorted({1, args.scale})]
    for d in runs:
        report(d)
    if len(runs) == 2:
        base, big = runs
        print(f"== K = {big['k']} / K = 1: audit wall time {big['wall_s'] / base['wall_s']:.2f}x "
              f"(target: at most 1.5x at K = 4), fit {big['fit_s'] / base['fit_s']:.2f}x, "
              f"checks {big['phases']['checks'] / base['phases']['checks']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
