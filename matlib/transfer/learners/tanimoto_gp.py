"""A Gaussian process with the Tanimoto (MinMax) kernel on count fingerprints: the standard small-data learner for
molecules (Ralaivola et al. 2005; GAUCHE, Griffiths et al. 2023), with a predictive sd.

    k(a, b) = sf^2 sum_j min(a_j, b_j) / sum_j max(a_j, b_j) + sn^2 [a = b]

on the raw counts (no scaling: a shared fragment counts the same whatever its frequency). Two rows without any bit
set have similarity 1. The targets are standardised; sf and sn maximise the log marginal likelihood (with weak
log-normal priors that keep tiny-n fits away from zero noise), evaluated exactly for every pair on a grid through
one eigendecomposition of the Tanimoto matrix and refined by L-BFGS-B from the best grid point. The learner is on
the menu only for count features: finite, non-negative, whole numbers (Morgan counts, not descriptors).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.spatial.distance import cdist

from matlib.transfer.learner import LEARNERS, Learner, SourceContext

MAX_ROWS = 2000  # O(n^2 d) kernel, O(n^3) solve
CHUNK = 512  # rows of a prediction's kernel at once
LOG_GRID = np.linspace(-7.0, 3.0, 41)  # log sf^2 and log sn^2 grid of the marginal-likelihood search
PRIOR_SD = 1.5  # log-normal priors on sf (around 1) and sn (around 0.3), in log units


def _counts(X: np.ndarray) -> np.ndarray:
    """Rows as float64 counts (non-finite entries -> 0)."""
    X = np.asarray(X, dtype=np.float64)
    return np.where(np.isfinite(X), X, 0.0)


def tanimoto(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """MinMax similarity [len(A), len(B)] of non-negative count rows (1 between two empty rows)."""
    l1 = cdist(A, B, metric="cityblock")
    sa, sb = A.sum(axis=1)[:, None], B.sum(axis=1)[None, :]
    den = sa + sb + l1  # 2 sum max
    return np.where(den > 0, (sa + sb - l1) / np.where(den > 0, den, 1.0), 1.0)


def _neg_log_posterior(log_sf2: np.ndarray, log_sn2: np.ndarray, lam: np.ndarray, proj2: np.ndarray) -> np.ndarray:
    """Negative log marginal likelihood + priors for broadcast (log sf^2, log sn^2) arrays, from the eigenvalues lam
    of the Tanimoto matrix and the squared projections proj2 of the targets on its eigenvectors."""
    var = np.exp(log_sf2)[..., None] * lam + np.exp(log_sn2)[..., None]
    nll = 0.5 * (proj2 / var).sum(-1) + 0.5 * np.log(var).sum(-1) + 0.5 * len(lam) * math.log(2 * math.pi)
    # priors on log sf and log sn (half the log variances)
    prior = (0.5 * log_sf2) ** 2 / (2 * PRIOR_SD**2) + (0.5 * log_sn2 - math.log(0.3)) ** 2 / (2 * PRIOR_SD**2)
    return nll + prior


def _hyperparameters(lam: np.ndarray, proj2: np.ndarray) -> tuple[float, float]:
    """(sf^2, sn^2) at the best marginal likelihood: grid, then L-BFGS-B from the grid's best point."""
    gs, gn = np.meshgrid(LOG_GRID, LOG_GRID, indexing="ij")
    values = _neg_log_posterior(gs, gn, lam, proj2)
    i, j = np.unravel_index(int(np.argmin(values)), values.shape)
    start = np.array([LOG_GRID[i], LOG_GRID[j]])
    res = minimize(
        lambda p: float(_neg_log_posterior(np.array(p[0]), np.array(p[1]), lam, proj2)),
        start,
        method="L-BFGS-B",
        bounds=[(-12.0, 6.0), (-12.0, 6.0)],
    )
    best = res.x if res.success and res.fun <= values[i, j] else start
    return float(np.exp(best[0])), float(np.exp(best[1]))


@LEARNERS.register("gp-tanimoto")
class TanimotoGP(Learner):
    """Tanimoto-kernel GP on count fingerprints, hyperparameters by marginal likelihood, with a predictive sd."""

    has_sd = True
    max_rows = MAX_ROWS

    def suits(self, X: np.ndarray) -> bool:
        """Count features only: every finite value a non-negative whole number (and some row with a count)."""
        if not self.applies(*X.shape):
            return False
        v = np.asarray(X, dtype=np.float64)
        v = v[np.isfinite(v)]
        return bool(v.size) and bool((v >= 0).all()) and bool((v == np.round(v)).all()) and bool(v.max() > 0)

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int, context: SourceContext | None = None) -> dict[str, Any]:
        """Standardise y, fit sf and sn by marginal likelihood, keep the inverse of the training covariance."""
        Xc = _counts(X)
        y = np.asarray(y, dtype=np.float64)
        y_mean, y_std = float(y.mean()), float(y.std() or 1.0)
        ys = (y - y_mean) / y_std
        K = tanimoto(Xc, Xc)
        lam, U = np.linalg.eigh(0.5 * (K + K.T))
        lam = np.clip(lam, 0.0, None)
        proj2 = (U.T @ ys) ** 2
        sf2, sn2 = _hyperparameters(lam, proj2)
        inv = (U / (sf2 * lam + sn2)) @ U.T  # (sf^2 K + sn^2 I)^-1
        return {
            "train": Xc.astype(np.float32),
            "alpha": sf2 * (inv @ ys),
            "inv": inv,
            "sf2": np.array([sf2]),
            "sn2": np.array([sn2]),
            "y_scale": np.array([y_mean, y_std]),
        }

    def _cross(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
        """Tanimoto similarity of the rows X to the training rows, in chunks."""
        Xc, T = _counts(X), state["train"].astype(np.float64)
        blocks = [tanimoto(Xc[i : i + CHUNK], T) for i in range(0, len(Xc), CHUNK)]
        return np.concatenate(blocks) if blocks else np.zeros((0, len(T)))

    def predict(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
        """Posterior mean in target units."""
        y_mean, y_std = state["y_scale"]
        return self._cross(state, X) @ state["alpha"] * y_std + y_mean

    def predict_sd(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
        """Predictive standard deviation (posterior + noise) in target units."""
        sf2, sn2 = float(state["sf2"][0]), float(state["sn2"][0])
        Ks = sf2 * self._cross(state, X)
        var = sf2 - np.einsum("ij,jk,ik->i", Ks, state["inv"], Ks) + sn2
        return np.sqrt(np.clip(var, sn2, None)) * state["y_scale"][1]
