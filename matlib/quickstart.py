"""What the quickstart runs on: the shipped samples, the target split and the held-out score."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from matlib.resources import shipped_path


@dataclass(frozen=True)
class SampleDataset:
    """One shipped sample file imported as a dataset."""

    name: str
    file: str
    input_column: str
    targets: tuple[str, ...]
    descriptor: str  # the registered descriptor its source models are trained on


@dataclass(frozen=True)
class TargetSample:
    """The shipped small target: the first n_train rows train, the rest are held out."""

    file: str
    input_column: str
    target_column: str
    n_train: int


SAMPLE_DATASETS = (
    SampleDataset(
        "qm9_sample",
        "qm9_sample.csv",
        "smiles",
        ("HOMO_LUMO_gap_au", "Polarizability_bohr3", "Heatcapacity_Cv_cal_mol_K", "Dipole_debye"),
        "morgan",
    ),
    SampleDataset("mp_e_form_sample", "mp_e_form_sample.csv", "formula", ("e_form_eV_per_atom",), "magpie"),
    SampleDataset("mp_gap_sample", "mp_gap_sample.csv", "formula", ("band_gap_eV",), "magpie"),
)
TARGET = TargetSample("esol_sample.csv", "smiles", "logSolubility", 100)


def samples_dir() -> Path:
    """The shipped samples (the repository's data/samples, installed as package data)."""
    return shipped_path("samples")


GNN_DATASET = SAMPLE_DATASETS[0]  # graph networks on the QM9 sample's molecular graphs
GNN_EPOCHS = 12


def gnn_group(models_per_property: int, epochs: int) -> dict:
    """The quickstart's graph networks: N/2 small GCNs per QM9 sample property (families of 4, a few epochs)."""
    return {
        "model": "gnn",
        "dataset": GNN_DATASET.name,
        "properties": list(GNN_DATASET.targets),
        "models_per_property": max(1, models_per_property // 2),
        "family_size": 4,
        "architecture": {"depth": [2, 3], "width": [32, 64], "decoder_layers": [1, 2], "decoder_width": [32]},
        "training": {"epochs": min(epochs, GNN_EPOCHS), "lr": 0.002, "batch_size": 64, "patience": 4, "lr_patience": 2},
    }


def library_config(models_per_property: int, seed: int = 0, epochs: int = 40) -> dict:
    """The quickstart's library build config: every sample property x its descriptor x N small random models, plus
    a few graph networks on the QM9 sample (`gnn_group`)."""
    groups = [
        {
            "dataset": d.name,
            "descriptors": [d.descriptor],
            "properties": list(d.targets),
            "models_per_property": models_per_property,
        }
        for d in SAMPLE_DATASETS
    ]
    return {
        "name": "quickstart",
        "seed": seed,
        "shard_size": 64,
        "architecture": {"n_layers": [1, 3], "max_width": 128},
        "training": {"epochs": epochs, "patience": 8, "batch_size": 256},
        "groups": groups + [gnn_group(models_per_property, epochs)],
    }


def split_target(target_csv: Path, out_dir: Path) -> dict[str, str]:
    """Write train.csv (first n_train rows) and holdout.csv (the rest) of the target sample."""
    table = pd.read_csv(target_csv)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, holdout = out_dir / "train.csv", out_dir / "holdout.csv"
    table.iloc[: TARGET.n_train].to_csv(train, index=False)
    table.iloc[TARGET.n_train :].to_csv(holdout, index=False)
    return {"train": str(train), "holdout": str(holdout)}


def holdout_scores(y_true: np.ndarray, y_pred: np.ndarray, train_mean: float) -> dict[str, float]:
    """MAE of the predictions and of predicting the training mean (a sanity floor) on the held-out rows."""
    ok = np.isfinite(y_pred)
    mae = float(np.mean(np.abs(y_true[ok] - y_pred[ok])))
    return {"holdout_mae": mae, "mean_predictor_mae": float(np.mean(np.abs(y_true - train_mean)))}


BASELINE_TREES = 300  # the plain forest a chemist tries first: scikit-learn defaults, 300 trees


def rf_baseline_mae(train: pd.DataFrame, holdout: pd.DataFrame, seed: int = 0) -> float:
    """Held-out MAE of a plain random forest (300 trees) on RDKit 2D descriptors, trained on the same rows."""
    from sklearn.ensemble import RandomForestRegressor

    from matlib.transfer.direct import raw_features
    from matlib.transfer.gp import fill_missing, fill_values

    spec = {"name": "rdkit2d", "params": {}}
    X_train = raw_features(train[TARGET.input_column].astype(str).tolist(), spec)[0].astype(np.float64)
    X_held = raw_features(holdout[TARGET.input_column].astype(str).tolist(), spec)[0].astype(np.float64)
    fill = fill_values(X_train)
    rf = RandomForestRegressor(n_estimators=BASELINE_TREES, random_state=seed, n_jobs=1)
    rf.fit(fill_missing(X_train, fill).astype(np.float32), train[TARGET.target_column].to_numpy(float))
    pred = rf.predict(fill_missing(X_held, fill).astype(np.float32))
    return float(np.mean(np.abs(pred - holdout[TARGET.target_column].to_numpy(float))))
