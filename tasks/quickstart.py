"""Prefect tasks of the quickstart: import the shipped samples, split the target, score held-out predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task

from matlib.quickstart import SAMPLE_DATASETS, TARGET, holdout_scores, rf_baseline_mae, split_target
from matlib.store import Store


@task(name="quickstart-import-samples")
def import_samples(store_root: str, samples_dir: str) -> dict[str, str]:
    """Import every shipped sample as a versioned dataset; returns {name: name@version}."""
    from matlib.datasets import import_table

    store = Store(store_root)
    refs = {}
    for spec in SAMPLE_DATASETS:
        ds = import_table(store, spec.name, Path(samples_dir) / spec.file, spec.input_column, list(spec.targets))
        refs[spec.name] = f"{ds.name}@{ds.version}"
    return refs


@task(name="quickstart-split-target")
def split_target_task(samples_dir: str, out_dir: str) -> dict[str, str]:
    """Write the target's training CSV and its held-out CSV; returns their paths."""
    return split_target(Path(samples_dir) / TARGET.file, Path(out_dir))


@task(name="quickstart-predict-holdout")
def predict_holdout(run_dir: str, train_csv: str, holdout_csv: str) -> dict:
    """Predict the held-out rows with the chosen model; returns MAE figures and the predictions path."""
    from matlib.transfer import predict_transfer

    holdout = pd.read_csv(holdout_csv)
    preds = predict_transfer(run_dir, holdout[TARGET.input_column].astype(str).tolist())
    out = (
        Path(holdout_csv).parent / "holdout_predictions.csv"
    )  # beside the inputs: a sealed run folder stays as fit left it
    table = pd.concat([holdout.reset_index(drop=True), preds.reset_index(drop=True)], axis=1)
    table.to_csv(out, index=False)
    train_mean = float(pd.read_csv(train_csv)[TARGET.target_column].mean())
    scores = holdout_scores(
        holdout[TARGET.target_column].to_numpy(float), preds["prediction"].to_numpy(float), train_mean
    )
    baseline = rf_baseline_mae(pd.read_csv(train_csv), holdout)
    return {
        **scores,
        "rf_rdkit2d_mae": baseline,
        "predictions": str(out),
        "n": int(np.isfinite(preds["prediction"]).sum()),
    }
