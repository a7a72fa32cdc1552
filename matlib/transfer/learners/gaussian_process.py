"""The Gaussian process of matlib.transfer.gp as a learner: small n only, with a predictive sd."""

from __future__ import annotations

from typing import Any

import numpy as np

import matlib.transfer.gp as gp
from matlib.transfer.learner import LEARNERS, Learner, SourceContext


@LEARNERS.register("gp")
class GaussianProcess(Learner):
    """ARD Matern-5/2 + linear kernel on principal components (see matlib.transfer.gp)."""

    has_sd = True
    max_rows = gp.MAX_ROWS
    max_cols = gp.MAX_COLS

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int, context: SourceContext | None = None) -> dict[str, Any]:
        """Hyperparameters by marginal likelihood."""
        return gp.gp_fit(X, y, seed)

    def predict(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
        """Predictive mean."""
        return gp.gp_predict(state, X)

    def predict_sd(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
        """Predictive standard deviation."""
        return gp.gp_predict_sd(state, X)
