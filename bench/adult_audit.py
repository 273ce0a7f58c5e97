#!/usr/bin/env python3
"""Benchmark: time `auditor run` end to end on UCI Adult against the model's own fit time.

    .venv/bin/python bench/adult_audit.py [--data ../shared/data] [--keep DIR]

Trains a HistGradientBoosting pipeline on adult.data (32,561 rows), scores adult.test
(16,281 rows), saves model and data like a user would, then runs the real CLI in a child
process and prints wall time, peak memory (max RSS of the child), time per check and the
ratio of audit wall time to fit time. The target, once every check exists, is at most 10x.
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

import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
           "income"]
CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "native-country"]
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


def load(path: Path, skip: int) -> pd.DataFrame:
    df = pd.read_csv(path, header=None, names=COLUMNS, skipinitialspace=True, skiprows=skip, na_values="?")
    df["income"] = df["income"].str.rstrip(".").eq(">50K").astype(int)
    for col in CATEGORICAL + ["race", "sex"]:
        df[col] = df[col].fillna("missing")
    return df


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--keep", type=Path, default=None, help="keep the inputs and report in this folder")
    args = parser.parse_args()

    train = load(args.data / "adult.data", 0)
    test = load(args.data / "adult.test", 1)
    model = Pipeline([
        ("encode", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                                       CATEGORICAL)], remainder="passthrough")),
        ("gbm", HistGradientBoostingClassifier(random_state=0)),
    ])
    t0 = time.perf_counter()
    model.fit(train[CATEGORICAL + NUMERIC], train["income"])
    fit_s = time.perf_counter() - t0

    work = args.keep or Path(tempfile.mkdtemp(prefix="auditor-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    train.to_csv(work / "train.csv", index=False)
    test.to_csv(work / "test.csv", index=False)
    sio.dump(model, work / "model.skops")
    (work / "audit.toml").write_text(
        '[audit]\nname = "adult-hgb"\n[model]\npath = "model.skops"\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\ntarget = "income"\nprotected = ["sex", "race"]\n'
        '[report]\nformats = ["html", "pdf", "json"]\n')
    out = work / "report"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "auditor", "run", str(work / "audit.toml"), "--out", str(out),
                           "--force"], env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode not in (0, 1, 3):
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    doc = json.loads((out / "findings.json").read_text())

    print(f"data: train {len(train):,} rows, test {len(test):,} rows, {len(CATEGORICAL + NUMERIC)} features")
    print(f"model fit:        {fit_s:8.2f} s")
    print(f"audit wall time:  {wall_s:8.2f} s  (exit {proc.returncode}, status {doc['audit']['status']})")
    print(f"ratio audit/fit:  {wall_s / fit_s:8.1f} x  (target: at most 10x once every check exists)")
    print(f"peak memory:      {peak_mb:8.0f} MB (max RSS of the audit process)")
    print("time per check:")
    for c in sorted(doc["checks"], key=lambda c: -c.get("duration_s", 0)):
        print(f"  {c['id']:<34} {c.get('duration_s', 0):7.2f} s  {c['status']}")
    ran = sum(c["status"] == "ok" for c in doc["checks"])
    print(f"checks run: {ran} of {len(doc['checks'])}; report in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
