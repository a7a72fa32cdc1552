"""Ridge: standardised features, penalty chosen by exact LOO on the training rows, predictions clamped to the
training range."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from matlib.transfer.clamp import clip_to_training_range
from matlib.transfer.gp import fill_missing, fill_values
from matlib.transfer.learner import LEARNERS, Learner, SourceContext
from matlib.transfer.ridge import DEFAULT_GRID, relative_lambdas, ridge_loo


def _scaler(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 where a column is constant)."""
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std = np.where(std > 1e-8 * (1 + np.abs(mean)), std, 1.0)
    return mean, std


@LEARNERS.register("ridge")
class Ridge(Learner):
    """Ridge with the penalty picked by LOO MAE over the relative grid, solved in closed form."""

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int, context: SourceContext | None = None) -> dict[str, Any]:
        """Standardise, pick the penalty by exact LOO, solve (primal or dual, whichever is smaller)."""
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

    def predict(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
        """Linear prediction on standardised features, clamped to the training range."""
        Z = (clip_to_training_range(state, X) - state["mean"]) / state["std"]
        return np.asarray(Z @ state["coef"] + state["intercept"][0])
