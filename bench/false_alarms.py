#!/usr/bin/env python3
"""False alarms: audit a corpus of well-built models and count their findings by severity.

    .venv/bin/python bench/false_alarms.py [--data ../shared/data] [--only NAME ...] [--json PATH]

Each corpus model is a sound model of its family on real or realistic data (fixed seeds, a held-out
test split, nothing saved to disk), audited in-process with every registered check (the JSON
result only, no html/pdf). A calibrated audit gives such models no `high` finding and at most
three `medium` ones (issue 10, part 1); the script prints, per model, the counts by severity and
every medium-or-high title, then a final table. Findings listed in ``REAL`` are true findings of a
corpus model (the demo's planted disparity, Adult's income gap by sex and race), each with its
evidence: they stay in the raw counts and are left out of the false-alarm count, and the script
exits 1 when a model has more false alarms than the target allows.

Corpus: the shipped demo (sample_models/audit.toml); a scaled, regularised logistic regression and
a LightGBM model on scikit-learn's breast-cancer data; a ridge regression and a gradient-boosted
regressor on its diabetes data; a random forest on its wine data (3 classes); a HistGradientBoosting
pipeline on UCI Adult (sex and race left out of the features, audited as protected attributes; a
seeded sample of the rows for speed); a gradient-boosted classifier on plentiful clean synthetic
data.

Counts before the recalibration of issue 10 (commit dc81d23, seed 0; the full output with every
medium and high title is bench/false_alarms_before.txt):

    model                     high  medium  low  info
    demo                         0       5    7     6
    breast_cancer_logistic       0       3   10     3
    breast_cancer_lightgbm       0       6    7     2
    diabetes_ridge               0       4    1     3
    diabetes_gbr                 1       4    1     2
    wine_random_forest           0       2    3     2
    adult_hgb                    2       6   15     5
    synthetic_gbm                0       7   10     3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auditor.engine import Audit, prepare, prepare_objects  # noqa: E402

SEVERITIES = ("high", "medium", "low", "info")
MAX_MEDIUM = 3
ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
                 "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
                 "native-country", "income"]
ADULT_CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "native-country"]
ADULT_NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


@dataclass(frozen=True)
class CorpusModel:
    name: str
    what: str
    build: Callable[[Path], Audit]


def _split(frame: pd.DataFrame, target: str, *, stratify: bool, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train_test_split(frame, test_size=0.3, random_state=seed,
                                   stratify=frame[target] if stratify else None)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _sklearn_frame(loader: Callable[..., Any]) -> pd.DataFrame:
    frame = loader(as_frame=True).frame
    return frame.rename(columns=lambda c: str(c).replace(" ", "_").replace("/", "_per_"))


def _fit_and_prepare(model: Any, frame: pd.DataFrame, target: str, *, stratify: bool, **options: Any) -> Audit:
    train, test = _split(frame, target, stratify=stratify)
    features = [c for c in frame.columns if c != target]
    model.fit(train[features], train[target])
    return prepare_objects(model, test=test, train=train, target=target, seed=0, **options)


def demo(data: Path) -> Audit:
    from auditor.config import load_config

    return prepare(load_config(ROOT / "sample_models" / "audit.toml"))


def breast_cancer_logistic(data: Path) -> Audit:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
    return _fit_and_prepare(model, _sklearn_frame(load_breast_cancer), "target", stratify=True,
                            name="breast-cancer-logistic")


def breast_cancer_lightgbm(data: Path) -> Audit:
    from lightgbm import LGBMClassifier
    from sklearn.datasets import load_breast_cancer

    model = LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=10,
                           subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=0, verbose=-1)
    return _fit_and_prepare(model, _sklearn_frame(load_breast_cancer), "target", stratify=True,
                            name="breast-cancer-lightgbm")


def diabetes_ridge(data: Path) -> Audit:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    return _fit_and_prepare(Ridge(alpha=1.0), _sklearn_frame(load_diabetes), "target", stratify=False,
                            name="diabetes-ridge")


def diabetes_gbr(data: Path) -> Audit:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor

    # the hyper-parameters a 5-fold grid search on the training rows chooses (depth 1-3, 50-200 trees,
    # learning rate 0.05-0.1, minimum leaf 5-20)
    model = GradientBoostingRegressor(n_estimators=100, max_depth=1, learning_rate=0.1, min_samples_leaf=5,
                                      subsample=0.8, random_state=0)
    return _fit_and_prepare(model, _sklearn_frame(load_diabetes), "target", stratify=False,
                            name="diabetes-gbr")


def wine_random_forest(data: Path) -> Audit:
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=300, min_samples_leaf=2, random_state=0, n_jobs=1)
    return _fit_and_prepare(model, _sklearn_frame(load_wine), "target", stratify=True, name="wine-random-forest")


def _adult(path: Path, skip: int) -> pd.DataFrame:
    df = pd.read_csv(path, header=None, names=ADULT_COLUMNS, skipinitialspace=True, skiprows=skip,
                     na_values="?")
    df["income"] = df["income"].str.rstrip(".").eq(">50K").astype(int)
    for col in ADULT_CATEGORICAL + ["race", "sex"]:
        df[col] = df[col].fillna("missing")
    return df


def adult_hgb(data: Path) -> Audit:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    train = _adult(data / "adult.data", 0).sample(n=10_000, random_state=0).reset_index(drop=True)
    test = _adult(data / "adult.test", 1).sample(n=6_000, random_state=0).reset_index(drop=True)
    features = ADULT_CATEGORICAL + ADULT_NUMERIC
    model = Pipeline([
        ("encode", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False,
                                                            min_frequency=20), ADULT_CATEGORICAL)],
                                     remainder="passthrough")),
        ("gbm", HistGradientBoostingClassifier(early_stopping=True, random_state=0)),
    ])
    model.fit(train[features], train["income"])
    return prepare_objects(model, test=test, train=train, target="income", features=features,
                           categorical=ADULT_CATEGORICAL, protected=["sex", "race"],
                           reference={"sex": "Male", "race": "White"}, positive_class=1, favorable=1,
                           seed=0, name="adult-hgb")


def synthetic_gbm(data: Path) -> Audit:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = make_classification(n_samples=20_000, n_features=10, n_informative=6, n_redundant=2,
                               flip_y=0.02, class_sep=1.0, random_state=0)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame["y"] = y
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=0)
    return _fit_and_prepare(model, frame, "y", stratify=True, name="synthetic-gbm")


CORPUS: tuple[CorpusModel, ...] = (
    CorpusModel("demo", "the shipped demo: German credit, one-hot + HistGradientBoosting", demo),
    CorpusModel("breast_cancer_logistic", "breast cancer, scaled L2 logistic regression (C=0.5)",
                breast_cancer_logistic),
    CorpusModel("breast_cancer_lightgbm", "breast cancer, LightGBM (200 trees, 15 leaves, subsampled)",
                breast_cancer_lightgbm),
    CorpusModel("diabetes_ridge", "diabetes, ridge regression (alpha=1)", diabetes_ridge),
    CorpusModel("diabetes_gbr", "diabetes, gradient-boosted regressor (grid-searched: 100 stumps)", diabetes_gbr),
    CorpusModel("wine_random_forest", "wine (3 classes), random forest (300 trees)", wine_random_forest),
    CorpusModel("adult_hgb", "UCI Adult, one-hot + early-stopped HistGradientBoosting; sex, race protected, not inputs",
                adult_hgb),
    CorpusModel("synthetic_gbm", "20,000 clean synthetic rows, HistGradientBoosting", synthetic_gbm),
)


#: Findings of the corpus that are true, not false alarms: what the data or the model really has,
#: with the evidence. They are printed as [real] and kept out of the false-alarm count, never out of
#: the raw counts. An id here that the audit stops finding is reported as missing.
REAL: dict[str, dict[str, str]] = {
    "demo": {
        "fairness.disparate_impact/age_band=under_25":
            "the sample data's real disadvantage of applicants under 25 (the demo's planted finding; "
            "tests/test_cli.py requires it at medium)",
        "fairness.error_parity/age_band=under_25":
            "the same disparity seen as wrongful denials: 30% of creditworthy under-25s refused vs 7.5%",
        "fairness.proxy/age_band/age":
            "age_band is a banding of the model input age, so the model sees the protected attribute",
    },
    "adult_hgb": {
        "fairness.disparate_impact/sex=Female":
            "Adult's income gap by sex (observed >50K rates 12% vs 31% in the test sample): leaving sex "
            "out does not remove it",
        "fairness.disparate_impact/race=Black":
            "Adult's income gap by race (observed >50K rates 11% vs 26%)",
        "fairness.proxy/sex/all_features":
            "relationship (Husband / Wife) and marital status encode sex",
        "sensitivity.adversarial/flip":
            "every flip is a capital gain or loss moved between census codes (5,013 -> 5,037 turns 0.11 "
            "into 0.86; a loss of 1,977 -> 1,979 turns 0.96 into 0.09): the model learned exact codes",
        "sensitivity.adversarial/knife_edge/capital-gain": "the same code-level steps, located",
        "sensitivity.adversarial/knife_edge/capital-loss": "the same code-level steps, located",
    },
}


def audit_one(entry: CorpusModel, data: Path) -> dict[str, Any]:
    """Build, fit and audit one corpus model; the counts, titles and errored checks of its audit."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = entry.build(data)
        doc = audit.run().to_json()
    findings = doc["findings"]
    counts = {s: sum(f["severity"] == s for f in findings) for s in SEVERITIES}
    real = REAL.get(entry.name, {})
    flagged = [{"severity": f["severity"], "id": f["id"], "title": f["title"], "real": real.get(f["id"], "")}
               for f in findings if f["severity"] in ("high", "medium")]
    false_alarms = {s: sum(f["severity"] == s and not f["real"] for f in flagged) for s in ("high", "medium")}
    missing = sorted(set(real) - {f["id"] for f in flagged})
    errors = {c["id"]: c.get("error", "") for c in doc["checks"] if c["status"] == "error"}
    return {"name": entry.name, "what": entry.what, "counts": counts, "false_alarms": false_alarms,
            "flagged": flagged, "real_not_found": missing, "errors": errors,
            "seconds": round(time.perf_counter() - t0, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder holding adult.data and adult.test")
    parser.add_argument("--only", nargs="+", choices=[m.name for m in CORPUS], help="audit only these models")
    parser.add_argument("--json", type=Path, default=None, help="save the counts and titles to this file")
    args = parser.parse_args()
    if not (args.data / "adult.data").is_file():
        fallback = Path("/work/shared/data")
        args.data = fallback if (fallback / "adult.data").is_file() else args.data

    rows = []
    for entry in CORPUS:
        if args.only and entry.name not in args.only:
            continue
        row = audit_one(entry, args.data)
        rows.append(row)
        c = row["counts"]
        print(f"\n== {entry.name}: {entry.what}  ({row['seconds']} s)")
        print("   " + "  ".join(f"{s} {c[s]}" for s in SEVERITIES))
        for f in row["flagged"]:
            print(f"   [{f['severity']:<6}] {f['title']}  ({f['id']})")
            if f["real"]:
                print(f"            [real] {f['real']}")
        for fid in row["real_not_found"]:
            print(f"   [gone  ] {fid}: listed as real in REAL but not found at medium or high")
        for check_id, message in row["errors"].items():
            print(f"   [error ] {check_id}: {message}")

    print(f"\n{'model':<24} {'high':>5} {'medium':>7} {'low':>5} {'info':>5}  {'raw target':<11} "
          "false alarms (high/medium not [real])")
    missed = missed_raw = 0
    for row in rows:
        c, fa = row["counts"], row["false_alarms"]
        raw = c["high"] == 0 and c["medium"] <= MAX_MEDIUM and not row["errors"]
        ok = fa["high"] == 0 and fa["medium"] <= MAX_MEDIUM and not row["errors"]
        missed += not ok
        missed_raw += not raw
        print(f"{row['name']:<24} {c['high']:>5} {c['medium']:>7} {c['low']:>5} {c['info']:>5}  "
              f"{'met' if raw else 'MISSED':<11} {fa['high']} high, {fa['medium']} medium: {'met' if ok else 'MISSED'}")
    print(f"target: no high, at most {MAX_MEDIUM} medium per model, no check in error; raw counts: "
          f"{len(rows) - missed_raw} of {len(rows)} met; false alarms only: {len(rows) - missed} of {len(rows)} met")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
