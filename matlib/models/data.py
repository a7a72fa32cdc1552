"""Per-model data handling: seeded train/val/test splits, feature and target scaling, metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matlib.errors import ValidationError

MIN_STD = 1e-8


@dataclass(frozen=True)
class Split:
    """Row indices of one model's train, validation and test parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_indices(n: int, seed: int, val_fraction: float = 0.1, test_fraction: float = 0.1) -> Split:
    """A random split of n rows, reproducible from seed (each model has its own)."""
    n_val = int(round(n * val_fraction))
    n_test = int(round(n * test_fraction))
    n_train = n - n_val - n_test
    if n_train < 2 or n_val < 1 or n_test < 1:
        raise ValidationError(f"split: {n} rows are too few for val={val_fraction}, test={test_fraction}")
    perm = np.random.default_rng([int(seed), 1]).permutation(n)
    return Split(np.sort(perm[:n_train]), np.sort(perm[n_train : n_train + n_val]), np.sort(perm[n_train + n_val :]))


def feature_scaling(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of X (float32); zero-variance features get std 1."""
    mean = X.mean(axis=0, dtype=np.float64)
    std = X.std(axis=0, dtype=np.float64)
    std = np.where(std < MIN_STD, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


def target_scaling(y: np.ndarray) -> tuple[float, float]:
    """Mean and std of y (std 1 when y is constant)."""
    std = float(np.std(y, dtype=np.float64))
    return float(np.mean(y, dtype=np.float64)), (std if std >= MIN_STD else 1.0)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R2 of predictions (NaN predictions give NaN metrics)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    err = y_pred - y_true
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    ss_res = float(np.sum(err**2))
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan"),
    }


def check_xy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X as float32 [n, d] and y as float32 [n], both finite, or a one-line error naming the row."""
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
    y = np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1))
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValidationError(f"training data: X {X.shape} and y {y.shape} do not match")
    bad = ~np.isfinite(X).all(axis=1) | ~np.isfinite(y)
    if bad.any():
        raise ValidationError(
            f"training data: row {int(np.argmax(bad))} has a non-finite feature or target "
            f"({int(bad.sum())} such rows; drop or quarantine them first)"
        )
    return X, y


def feature_scaling_many(X: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """feature_scaling of X[rows[m]] for every model m at once (rows [M, k]): means and stds [M, d] (float32).

    Moments about the all-rows mean in float64 through one 0/1 membership matrix product each, so M models
    cost two small matrix products instead of M passes over their own copy of the rows.
    """
    center = X.mean(axis=0, dtype=np.float64)
    Xc = X.astype(np.float64) - center
    member = np.zeros((rows.shape[0], X.shape[0]))
    np.put_along_axis(member, rows, 1.0, axis=1)
    k = rows.shape[1]
    mean_c = member @ Xc / k
    var = np.maximum(member @ (Xc * Xc) / k - mean_c * mean_c, 0.0)
    std = np.sqrt(var)
    std = np.where(std < MIN_STD, 1.0, std)
    return (mean_c + center).astype(np.float32), std.astype(np.float32)
