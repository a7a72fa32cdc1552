"""Prediction intervals of the chosen model, calibrated on its out-of-fold residuals (split-conformal).

Every row's interval is prediction +- halfwidth. Without a per-row uncertainty the half-width is one number: the
finite-sample (1 + 1/n) quantile of the absolute out-of-fold residuals. When every member of the chosen model has a
predictive sd (the Gaussian process), the half-width is scale x sd, with scale the same quantile of the residuals
divided by their out-of-fold sd: rows far from the training data get wider intervals. Either way, the calibration
residuals come from rows the predicting model never saw, and `oof_coverage` is the share of them inside.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

LEVEL = 0.9


def conformal_quantile(scores: np.ndarray, level: float = LEVEL) -> float:
    """The ceil((n + 1) level) / n empirical quantile of non-negative scores (the largest one if that exceeds 1)."""
    s = np.sort(np.asarray(scores, dtype=float)[np.isfinite(scores)])
    if not len(s):
        return float("nan")
    rank = min(len(s), int(math.ceil((len(s) + 1) * level)))
    return float(s[rank - 1])


def calibrate(y: np.ndarray, oof: np.ndarray, oof_sd: np.ndarray | None = None, level: float = LEVEL) -> dict[str, Any]:
    """Interval settings from out-of-fold predictions [r, n] (and sds [r, n]) of the chosen model (every repeat's
    residuals pooled); `halfwidth` is always there, `scale` (x sd) too when sds are given."""
    resid = np.abs(np.asarray(oof, dtype=float).reshape(-1, len(y)) - np.asarray(y, dtype=float)[None, :]).ravel()
    half = conformal_quantile(resid, level)
    out = {
        "level": level,
        "method": "conformal on |out-of-fold residual|",
        "halfwidth": half,
        "oof_coverage": float((resid <= half).mean()),
        "n_calibration": int(len(y)),
    }
    if oof_sd is not None:
        sd = np.asarray(oof_sd, dtype=float).reshape(-1, len(y)).ravel()
        if len(sd) == len(resid) and np.isfinite(sd).all() and (sd > 0).all():
            scale = conformal_quantile(resid / sd, level)
            out.update(
                {
                    "method": "conformal on the GP's predictive sd",
                    "scale": scale,
                    "oof_coverage": float((resid <= scale * sd).mean()),
                }
            )
    return out


def column_names(level: float = LEVEL) -> tuple[str, str]:
    """Names of the interval columns, e.g. lower_90 / upper_90."""
    pct = f"{100 * level:g}".replace(".", "_")
    return f"lower_{pct}", f"upper_{pct}"


def interval_frame(pred: np.ndarray, settings: dict[str, Any] | None, sd: np.ndarray | None = None) -> pd.DataFrame:
    """lower_/upper_ columns for predictions (NaN where a prediction is NaN or no calibration was stored)."""
    settings = settings or {}
    level = float(settings.get("level", LEVEL))
    lo_name, hi_name = column_names(level)
    pred = np.asarray(pred, dtype=float)
    if "scale" in settings and sd is not None:
        half = float(settings["scale"]) * np.asarray(sd, dtype=float)
    else:
        half = np.full(len(pred), float(settings.get("halfwidth", np.nan)))
    return pd.DataFrame({lo_name: pred - half, hi_name: pred + half})
