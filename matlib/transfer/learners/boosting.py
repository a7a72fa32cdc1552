"""LightGBM gradient-boosted trees with small-data settings, saved in LightGBM's own text model format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from matlib.transfer.learner import LEARNERS, Learner, SourceContext

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


@LEARNERS.register("lightgbm")
class LightGBM(Learner):
    """Gradient-boosted trees (state: the booster)."""

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int, context: SourceContext | None = None) -> dict[str, Any]:
        """LGBM_ROUNDS rounds with LGBM_PARAMS."""
        import lightgbm as lgb

        params = {**LGBM_PARAMS, "seed": int(seed)}
        ds = lgb.Dataset(X.astype(np.float64), label=y.astype(np.float64), params={"verbose": -1, "min_data_in_bin": 1})
        return {"booster": lgb.train(params, ds, num_boost_round=LGBM_ROUNDS)}

    def predict(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
        """Booster prediction."""
        return np.asarray(state["booster"].predict(X.astype(np.float64)), dtype=np.float64)

    def save(self, state: dict[str, Any], path: Path) -> None:
        """LightGBM's own text model format."""
        path.mkdir(parents=True, exist_ok=True)
        state["booster"].save_model(str(path / "lightgbm.txt"))

    def load(self, path: Path) -> dict[str, Any]:
        """Load a LightGBM text model."""
        import lightgbm as lgb

        return {"booster": lgb.Booster(model_file=str(path / "lightgbm.txt"))}
