#!/usr/bin/env python3
"""Benchmark: do the audit's severities survive a change of seed?

    .venv/bin/python bench/seed_stability.py [--which demo,adult] [--seeds 0,1,2,3,4] [--data ../shared/data]

Runs the real CLI (JSON only) on the demo config and on UCI Adult (the model of bench/adult_audit.py)
once per seed and prints, per audit:
- whether the set of high findings (id and severity) is identical for every seed;
- the share of findings that are medium or high under some seed and keep the same severity under
  every seed (target: high findings identical, at least 90% of medium-or-high unchanged);
- every finding whose severity moves, with its severity per seed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

RANK = {"high": 3, "medium": 2, "low": 1, "info": 0, None: -1}


def run(config: Path, seed: int, out: Path) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "auditor", "run", str(config), "--out", str(out), "--force",
                           "--seed", str(seed), "--format", "json"], env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"audit failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads((out / "findings.json").read_text())


def adult_config(data: Path, work: Path) -> Path:
    import skops.io as sio
    from adult_audit import CATEGORICAL, NUMERIC, load
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    train, test = load(data / "adult.data", 0), load(data / "adult.test", 1)
    model = Pipeline([
        ("encode", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                                       CATEGORICAL)], remainder="passthrough")),
        ("gbm", HistGradientBoostingClassifier(random_state=0)),
    ]).fit(train[CATEGORICAL + NUMERIC], train["income"])
    train.to_csv(work / "train.csv", index=False)
    test.to_csv(work / "test.csv", index=False)
    sio.dump(model, work / "model.skops")
    path = work / "audit.toml"
    path.write_text('[audit]\nname = "adult-hgb"\n[model]\npath = "model.skops"\n'
                    '[data]\ntrain = "train.csv"\ntest = "test.csv"\ntarget = "income"\n'
                    'protected = ["sex", "race"]\n')
    return path


def compare(name: str, docs: dict[int, dict]) -> tuple[bool, float]:
    seeds = sorted(docs)
    sev = {s: {f["id"]: f["severity"] for f in docs[s]["findings"]} for s in seeds}
    ids = sorted({i for s in seeds for i in sev[s]})
    highs = {s: sorted(i for i, v in sev[s].items() if v == "high") for s in seeds}
    high_same = all(highs[s] == highs[seeds[0]] for s in seeds)
    relevant = [i for i in ids if max(RANK[sev[s].get(i)] for s in seeds) >= RANK["medium"]]
    moved = [i for i in relevant if len({sev[s].get(i) for s in seeds}) > 1]
    share = 1.0 - len(moved) / len(relevant) if relevant else 1.0
    print(f"\n== {name}: seeds {', '.join(map(str, seeds))}")
    for s in seeds:
        counts = docs[s]["summary"]
        print(f"  seed {s}: {counts['high']} high, {counts['medium']} medium, {counts['low']} low, "
              f"{counts['info']} info; gate {docs[s]['audit']['gate']}")
    print(f"  high findings identical across seeds: {'yes' if high_same else 'NO'} ({len(highs[seeds[0]])} at seed "
          f"{seeds[0]})")
    print(f"  medium-or-high findings with an unchanged severity: {len(relevant) - len(moved)} of {len(relevant)} "
          f"({share:.0%}; target at least 90%)")
    for i in moved:
        print(f"    moves: {i}: " + ", ".join(f"{s}={sev[s].get(i) or '-'}" for s in seeds))
    return high_same, share


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--which", default="demo,adult")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    ok = True
    with tempfile.TemporaryDirectory(prefix="auditor-seeds-") as tmp:
        work = Path(tmp)
        for name in args.which.split(","):
            if name == "demo":
                config = ROOT / "sample_models" / "audit.toml"
            elif name == "adult":
                (work / "adult").mkdir()
                config = adult_config(args.data, work / "adult")
            else:
                raise SystemExit(f"unknown audit '{name}' (demo or adult)")
            t0 = time.perf_counter()
            docs = {s: run(config, s, work / f"{name}-{s}") for s in seeds}
            high_same, share = compare(name, docs)
            print(f"  ({time.perf_counter() - t0:.0f} s for {len(seeds)} audits)")
            ok = ok and high_same and share >= 0.9
    print("\nresult:", "targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
