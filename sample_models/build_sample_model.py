"""Rebuild the demo credit model from sample_models/german.csv.

Run from the repository root: ``python sample_models/build_sample_model.py``. It writes
train.csv, test.csv and credit_model.skops beside this script. The split and the model are
seeded, so a rebuild reproduces the shipped files (up to library versions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

HERE = Path(__file__).resolve().parent
SEED = 20261124
TARGET = "risk"  # 1 = good credit (the favorable outcome)
CATEGORICAL = ["job", "housing", "saving_accounts", "checking_account", "purpose"]
NUMERIC = ["credit_amount", "duration", "age"]
FEATURES = CATEGORICAL + NUMERIC  # sex and age_band are audited as protected attributes, not model inputs


def age_band(age: pd.Series) -> pd.Series:
    return pd.cut(age, bins=[0, 24, 200], labels=["under 25", "25 and over"]).astype(str)


def build() -> None:
    df = pd.read_csv(HERE / "german.csv")
    df["age_band"] = age_band(df["age"])
    df["job"] = df["job"].map({0: "unskilled non-resident", 1: "unskilled resident", 2: "skilled",
                               3: "highly skilled"})
    df.insert(0, "applicant_id", np.arange(1, len(df) + 1))
    train, test = train_test_split(df, test_size=0.3, random_state=SEED, stratify=df[TARGET])
    model = Pipeline([
        ("encode", ColumnTransformer(
            [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL)],
            remainder="passthrough", verbose_feature_names_out=False)),
        ("gbm", HistGradientBoostingClassifier(max_depth=2, learning_rate=0.05, max_iter=60,
                                               min_samples_leaf=60, l2_regularization=5.0,
                                               random_state=SEED)),
    ])
    model.fit(train[FEATURES], train[TARGET])
    for name, part in (("train", train), ("test", test)):
        auc = roc_auc_score(part[TARGET], model.predict_proba(part[FEATURES])[:, 1])
        print(f"{name}: {len(part)} rows, AUC {auc:.3f}")
    train.to_csv(HERE / "train.csv", index=False)
    test.to_csv(HERE / "test.csv", index=False)
    sio.dump(model, HERE / "credit_model.skops")


if __name__ == "__main__":
    build()
