"""Learner variants fitted on a robustly scaled target: asinh((y - median) / MAD), predictions mapped back.

A heavy-tailed target (refractive indices up to 60 around a median of 2, elastic anisotropy, magnetic moments)
makes every squared-error learner chase its few extreme rows, and the error on the bulk of the rows grows. The
transform is linear near the median and logarithmic in the tails, defined for any sign, and fixed by the training
rows alone (median and MAD), so it is refitted inside every CV fold like any other part of the learner. Whether it
helps a given target is left to the CV that chooses among the menu's options; each variant is registered under
`<base>-asinh` beside its base learner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from matlib.atomic import atomic_write_json, read_json
from matlib.transfer.learner import LEARNERS, Learner, SourceContext

SUFFIX = "-asinh"
BASES = ("ridge", "gp", "lightgbm", "rf", "extratrees")
TRANSFORM_FILE = "target_transform.json"
TRANSFORM_KEYS = ("target_center", "target_scale", "target_lo", "target_hi")
MAD_TO_SD = 1.4826  # MAD of a normal distribution x this = its standard deviation
SPANS_BEYOND = 1.0  # a linear head may leave the training range by this many training spans of the target


def target_scale(y: np.ndarray) -> tuple[float, float]:
    """(center, scale) of a target: its median and its MAD as a standard deviation (the SD, or 1, if that is 0)."""
    y = np.asarray(y, dtype=np.float64)
    center = float(np.median(y))
    scale = MAD_TO_SD * float(np.median(np.abs(y - center)))
    if not scale > 0:
        scale = float(np.std(y)) or 1.0
    return center, scale


def to_robust(y: np.ndarray, center: float, scale: float) -> np.ndarray:
    """The transformed target asinh((y - center) / scale)."""
    return np.arcsinh((np.asarray(y, dtype=np.float64) - center) / scale)


def from_robust(t: np.ndarray, center: float, scale: float) -> np.ndarray:
    """The inverse of to_robust."""
    return center + scale * np.sinh(np.asarray(t, dtype=np.float64))


def target_bounds(y: np.ndarray, center: float, scale: float) -> tuple[float, float]:
    """(lo, hi) on the transformed scale of the predictions a variant may give: the training range widened by
    SPANS_BEYOND training spans on the target's own scale (a span in the transformed scale is exponential in y)."""
    y = np.asarray(y, dtype=np.float64)
    span = float(y.max() - y.min()) or scale
    lo, hi = to_robust(np.array([y.min() - SPANS_BEYOND * span, y.max() + SPANS_BEYOND * span]), center, scale)
    return float(lo), float(hi)


def _split(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """(the base learner's state, the transform's parameters) of a variant's state."""
    inner = {k: v for k, v in state.items() if k not in TRANSFORM_KEYS}
    return inner, {k: float(np.asarray(state[k])) for k in TRANSFORM_KEYS}


def robust_variant(base_name: str) -> type[Learner]:
    """A learner class that fits the registered learner base_name on the transformed target."""
    base_cls = LEARNERS.get(base_name)

    class RobustTarget(Learner):
        __doc__ = f"{base_name} on asinh((y - median) / MAD), predictions mapped back"
        max_rows = base_cls.max_rows
        max_cols = base_cls.max_cols

        def fit(self, X: np.ndarray, y: np.ndarray, seed: int, context: SourceContext | None = None) -> dict[str, Any]:
            """The base learner's state on the transformed target, plus the transform (and the range it saw)."""
            center, scale = target_scale(y)
            t = to_robust(y, center, scale)
            state = base_cls().fit(X, t, seed, context)
            lo, hi = target_bounds(y, center, scale)
            params = {"target_center": center, "target_scale": scale, "target_lo": lo, "target_hi": hi}
            return {**state, **{k: np.asarray(v, dtype=np.float64) for k, v in params.items()}}

        def predict(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
            """The base learner's prediction, mapped back to the target's scale."""
            inner, p = _split(state)
            t = np.clip(base_cls().predict(inner, X), p["target_lo"], p["target_hi"])
            return from_robust(t, p["target_center"], p["target_scale"])

        def save(self, state: dict[str, Any], path: Path) -> None:
            """The base learner's files, and the transform as JSON beside them."""
            inner, params = _split(state)
            base_cls().save(inner, path)
            atomic_write_json(path / TRANSFORM_FILE, params)

        def load(self, path: Path) -> dict[str, Any]:
            """Read a state written by save."""
            params = read_json(path / TRANSFORM_FILE)
            return {**base_cls().load(path), **{k: np.asarray(float(params[k])) for k in TRANSFORM_KEYS}}

    RobustTarget.__name__ = RobustTarget.__qualname__ = f"RobustTarget_{base_name}"
    return RobustTarget


for _base in BASES:
    LEARNERS.add(_base + SUFFIX, robust_variant(_base))
