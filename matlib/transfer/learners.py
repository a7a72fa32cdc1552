"""Registered learners for refinement and direct baselines: fit, predict, and safe save/load (no pickle)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from matlib.errors import MatlibError
from matlib.transfer.gp import MAX_COLS as GP_MAX_COLS
from matlib.transfer.gp import MAX_ROWS as GP_MAX_ROWS
from matlib.transfer.gp import fill_missing, fill_values, gp_fit, gp_predict, gp_predict_sd
from matlib.transfer.ridge import DEFAULT_GRID, relative_lambdas, ridge_loo


@dataclass(frozen=True)
class Learner:
    """A learner variant: fit(X, y, seed, context) -> state dict; predict(state, X) -> y; save/load safely.

    `context` carries what a learner needs beyond the features (fine-tuning: the source model's later layers).
    """

    name: str
    fit: Callable[..., dict[str, Any]]
    predict: Callable[[dict[str, Any], np.ndarray], np.ndarray]
    save: Callable[[dict[str, Any], Path], None]
    load: Callable[[Path], dict[str, Any]]
    predict_sd: Callable[[dict[str, Any], np.ndarray], np.ndarray] | None = None  # predictive sd, where it has one
    max_rows: int | None = None  # on the menu only up to this many training rows
    max_cols: int | None = None  # ... and this many feature columns

    def applies(self, n: int, d: int = 0) -> bool:
        """Whether the learner is on the menu for n training rows of d features."""
        return (self.max_rows is None or n <= self.max_rows) and (self.max_cols is None or d <= self.max_cols)


LEARNERS: dict[str, Learner] = {}


def register_learner(learner: Learner) -> Learner:
    """Add a learner variant to the registry."""
    LEARNERS[learner.name] = learner
    return learner


def get_learner(name: str) -> Learner:
    """The registered learner called name (one-line MatlibError otherwise)."""
    try:
        return LEARNERS[name]
    except KeyError:
        raise MatlibError(f"unknown learner {name!r}; known: {', '.join(sorted(LEARNERS))}") from None


def _save_arrays(state: dict[str, Any], path: Path) -> None:
    """Save a dict of numpy arrays as one safetensors file."""
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path / "learner.safetensors"))


def _load_arrays(path: Path) -> dict[str, Any]:
    """Load a dict of numpy arrays from a safetensors file."""
    return dict(load_file(str(path / "learner.safetensors")))


# ---- ridge: standardised features, penalty chosen by exact LOO on the training rows ----


def _scaler(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 where a column is constant)."""
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std = np.where(std > 1e-8 * (1 + np.abs(mean)), std, 1.0)
    return mean, std


def _ridge_fit(X: np.ndarray, y: np.ndarray, seed: int, context: dict | None = None) -> dict[str, Any]:
    """Ridge with the penalty picked by LOO MAE over the relative grid, solved in closed form."""
    fill = fill_values(X)
    X = fill_missing(X, fill)
    mean, std = _scaler(X)
    Z = torch.as_tensor((X - mean) / std, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    lams = relative_lambdas(Z.unsqueeze(0), DEFAULT_GRID)
    res = ridge_loo(Z.unsqueeze(0), yt, lams)
    lam = float(lams[0, int(res.best("mae")[1][0])])
    Zc = Z - Z.mean(0)
    yc = yt - yt.mean()
    h = Z.shape[1]
    if h <= Z.shape[0]:
        coef = torch.linalg.solve(Zc.T @ Zc + lam * torch.eye(h, dtype=Z.dtype), Zc.T @ yc)
    else:
        coef = Zc.T @ torch.linalg.solve(Zc @ Zc.T + lam * torch.eye(Z.shape[0], dtype=Z.dtype), yc)
    intercept = float(yt.mean() - Z.mean(0) @ coef)
    return {
        "mean": mean.astype(np.float64),
        "std": std.astype(np.float64),
        "coef": coef.numpy(),
        "intercept": np.array([intercept]),
        "lambda": np.array([lam]),
        "lo": X.min(axis=0).astype(np.float64),
        "hi": X.max(axis=0).astype(np.float64),
        "fill": fill,
    }


def clip_to_training_range(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Clamp each feature to its training range (no linear extrapolation on outlying descriptor values)."""
    X = np.asarray(X, dtype=np.float64)
    if "fill" in state:  # missing descriptor values: the training medians
        X = fill_missing(X, state["fill"])
    return np.clip(X, state["lo"], state["hi"]) if "lo" in state else X


def _ridge_predict(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Linear prediction on standardised features, clamped to the training range."""
    return ((clip_to_training_range(state, X) - state["mean"]) / state["std"]) @ state["coef"] + state["intercept"][0]


register_learner(Learner("ridge", _ridge_fit, _ridge_predict, _save_arrays, _load_arrays))


# ---- LightGBM: saved in its own text model format ----

LGBM_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 3,
    "min_data_in_bin": 1,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
}
LGBM_ROUNDS = 300


def _lgbm_fit(X: np.ndarray, y: np.ndarray, seed: int, context: dict | None = None) -> dict[str, Any]:
    """Gradient-boosted trees with small-data settings."""
    import lightgbm as lgb

    params = {**LGBM_PARAMS, "seed": int(seed)}
    ds = lgb.Dataset(X.astype(np.float64), label=y.astype(np.float64), params={"verbose": -1, "min_data_in_bin": 1})
    booster = lgb.train(params, ds, num_boost_round=LGBM_ROUNDS)
    return {"booster": booster}


def _lgbm_predict(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Booster prediction."""
    return np.asarray(state["booster"].predict(X.astype(np.float64)), dtype=np.float64)


def _lgbm_save(state: dict[str, Any], path: Path) -> None:
    """LightGBM's own text model format."""
    path.mkdir(parents=True, exist_ok=True)
    state["booster"].save_model(str(path / "lightgbm.txt"))


def _lgbm_load(path: Path) -> dict[str, Any]:
    """Load a LightGBM text model."""
    import lightgbm as lgb

    return {"booster": lgb.Booster(model_file=str(path / "lightgbm.txt"))}


register_learner(Learner("lightgbm", _lgbm_fit, _lgbm_predict, _lgbm_save, _lgbm_load))


# ---- random forest: trees exported as flat arrays (safetensors), predicted in numpy ----

RF_PARAMS: dict[str, Any] = {"n_estimators": 200, "max_features": 0.33, "min_samples_leaf": 1, "n_jobs": 1}
ET_PARAMS: dict[str, Any] = {"n_estimators": 200, "max_features": 0.33, "min_samples_leaf": 1, "n_jobs": 1}


def _export_forest(forest: Any, fill: np.ndarray, columns: np.ndarray) -> dict[str, Any]:
    """A fitted scikit-learn forest as concatenated node arrays (+ the missing-value fill); it was fitted on
    X[:, columns], and the exported split features index the full X."""
    left, right, feat, thr, val, roots = [], [], [], [], [], []
    offset = 0
    for est in forest.estimators_:
        t = est.tree_
        leaf = t.children_left < 0
        left.append(np.where(leaf, -1, t.children_left + offset))
        right.append(np.where(leaf, -1, t.children_right + offset))
        feat.append(np.where(leaf, 0, columns[np.maximum(t.feature, 0)]))
        thr.append(t.threshold)
        val.append(t.value[:, 0, 0])
        roots.append(offset)
        offset += t.node_count
    return {
        "left": np.concatenate(left).astype(np.int64),
        "right": np.concatenate(right).astype(np.int64),
        "feature": np.concatenate(feat).astype(np.int64),
        "threshold": np.concatenate(thr).astype(np.float64),
        "value": np.concatenate(val).astype(np.float64),
        "roots": np.asarray(roots, dtype=np.int64),
        "fill": fill,
    }


def _forest_fit(kind: str, X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    """Random forest ("rf") or extremely randomised trees ("extratrees"), exported as node arrays."""
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

    fill = fill_values(X)
    Xf = np.clip(fill_missing(X, fill), -3e38, 3e38).astype(np.float32)  # sklearn splits on float32 values
    cls, params = (RandomForestRegressor, RF_PARAMS) if kind == "rf" else (ExtraTreesRegressor, ET_PARAMS)
    # constant columns (most fingerprint bits of a small table) cannot split: left out, max_features counts the rest
    varying = np.flatnonzero(Xf.max(axis=0) > Xf.min(axis=0)) if len(Xf) else np.zeros(0, np.int64)
    varying = varying if len(varying) else np.arange(min(1, Xf.shape[1]))
    return _export_forest(cls(random_state=int(seed), **params).fit(Xf[:, varying], y), fill, varying)


def _rf_fit(X: np.ndarray, y: np.ndarray, seed: int, context: dict | None = None) -> dict[str, Any]:
    """scikit-learn random forest, exported as concatenated node arrays."""
    return _forest_fit("rf", X, y, seed)


def _et_fit(X: np.ndarray, y: np.ndarray, seed: int, context: dict | None = None) -> dict[str, Any]:
    """scikit-learn extra trees, exported as concatenated node arrays."""
    return _forest_fit("extratrees", X, y, seed)


def _rf_predict(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Mean over trees, walking all rows and trees at once down the node arrays."""
    X = fill_missing(X, state["fill"]) if "fill" in state else np.asarray(X, dtype=np.float64)
    X = np.clip(X, -3e38, 3e38).astype(np.float32).astype(np.float64)  # sklearn splits on float32 values
    n = X.shape[0]
    node = np.broadcast_to(state["roots"], (n, len(state["roots"]))).copy()
    rows = np.arange(n)[:, None]
    while True:
        left = state["left"][node]
        active = left >= 0
        if not active.any():
            break
        go_left = X[rows, state["feature"][node]] <= state["threshold"][node]
        node = np.where(active, np.where(go_left, left, state["right"][node]), node)
    return state["value"][node].mean(axis=1)


register_learner(Learner("rf", _rf_fit, _rf_predict, _save_arrays, _load_arrays))
register_learner(Learner("extratrees", _et_fit, _rf_predict, _save_arrays, _load_arrays))


# ---- Gaussian process (matlib.transfer.gp): small n, predictive sd ----

register_learner(
    Learner(
        "gp",
        gp_fit,
        gp_predict,
        _save_arrays,
        _load_arrays,
        predict_sd=gp_predict_sd,
        max_rows=GP_MAX_ROWS,
        max_cols=GP_MAX_COLS,
    )
)


def _register_finetune() -> None:
    """Register the fine-tuning learner (defined in its own module)."""
    from matlib.transfer import finetune

    register_learner(Learner("finetune", finetune._fit, finetune._predict, _save_arrays, _load_arrays))


_register_finetune()
