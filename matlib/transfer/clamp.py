"""Clamping a learner's inputs to the range it was trained on (shared by ridge and fine-tuning)."""

from __future__ import annotations

from typing import Any

import numpy as np

from matlib.transfer.gp import fill_missing


def clip_to_training_range(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Clamp each feature to its training range (no linear extrapolation on outlying descriptor values)."""
    X = np.asarray(X, dtype=np.float64)
    if "fill" in state:  # missing descriptor values: the training medians
        X = fill_missing(X, state["fill"])
    return np.clip(X, state["lo"], state["hi"]) if "lo" in state else X
