"""The learner interface and its registry (a leaf: learner modules import it and register themselves)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from safetensors.numpy import load_file, save_file

from matlib.registry import Registry


class SourceContext(TypedDict):
    """What a learner needs of a transfer candidate's source model beyond its features (fine-tuning)."""

    arch: dict[str, Any]  # the source model's (padded) architecture
    tensors: dict[str, Any]  # its one-model stacked tensors [1, ...]
    layer: int  # the frozen layer whose features the learner sees


def save_arrays(state: dict[str, Any], path: Path) -> None:
    """Save a dict of numpy arrays as one safetensors file."""
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path / "learner.safetensors"))


def load_arrays(path: Path) -> dict[str, Any]:
    """Load a dict of numpy arrays from a safetensors file."""
    return dict(load_file(str(path / "learner.safetensors")))


class Learner:
    """A learner variant: fit(X, y, seed, context) -> state dict; predict(state, X) -> y; save/load safely (no pickle).

    A variant subclasses this and registers itself with `@LEARNERS.register(name)`. The state is saved as numpy
    arrays in safetensors unless the variant overrides save/load. `context` carries what a learner needs beyond
    the features (fine-tuning: the source model's later layers).
    """

    has_sd = False  # whether predict_sd gives a predictive standard deviation
    max_rows: int | None = None  # on the menu only up to this many training rows
    max_cols: int | None = None  # ... and this many feature columns

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int, context: SourceContext | None = None) -> dict[str, Any]:
        """The fitted state on rows X [n, d] with targets y [n]."""
        raise NotImplementedError

    def predict(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
        """Predictions [n] of a fitted state."""
        raise NotImplementedError

    def predict_sd(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
        """Predictive standard deviations [n] (only where has_sd)."""
        raise NotImplementedError(f"{type(self).__name__} has no predictive sd")

    def save(self, state: dict[str, Any], path: Path) -> None:
        """Write a fitted state into the folder path."""
        save_arrays(state, path)

    def load(self, path: Path) -> dict[str, Any]:
        """Read a state written by save."""
        return load_arrays(path)

    def applies(self, n: int, d: int = 0) -> bool:
        """Whether the learner is on the menu for n training rows of d features."""
        return (self.max_rows is None or n <= self.max_rows) and (self.max_cols is None or d <= self.max_cols)

    def suits(self, X: np.ndarray) -> bool:
        """Whether the learner is on the menu for the training features X [n, d] (by default: their shape)."""
        return self.applies(*X.shape)


LEARNERS: Registry[type[Learner]] = Registry("learner")
