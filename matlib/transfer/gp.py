"""Gaussian-process learner for small n: ARD Matern-5/2 + linear kernel on principal components, fitted by marginal
likelihood, with a predictive standard deviation.

Inputs (raw descriptors or frozen features, any width) are standardised and projected on their leading principal
components (at most MAX_DIM, scaled to unit variance); the kernel is

    k(a, b) = sf^2 Matern52(|(a - b) / l|) + sl^2 a.b / d + sn^2 [a = b]

with one length scale per component (ARD). The linear part is a marginalised linear mean: with it the GP can leave
the training range of the target (a pure stationary kernel reverts to the mean away from the data). Every
hyperparameter (d length scales, sf, sl, sn) maximises the log marginal likelihood (L-BFGS, weak log-normal priors
keep tiny-n fits away from zero noise or vanishing length scales). Missing feature values are filled with the
training medians.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from matlib.transfer.threads import single_thread_torch

MAX_DIM = 20  # principal components the ARD kernel sees
MAX_ROWS = 200  # the learner is on the menu up to this many training rows (O(n^3))
MAX_COLS = 512  # ... and for dense features: the principal components of count fingerprints suit it poorly
ITERS = 40  # L-BFGS iterations of the marginal-likelihood fit


def fill_values(X: np.ndarray) -> np.ndarray:
    """Column medians of the finite values (0 for a column with none)."""
    X = np.where(np.isfinite(X), X, np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(X, axis=0) if X.shape[0] else np.zeros(X.shape[1])
    return np.where(np.isfinite(med), med, 0.0)


def fill_missing(X: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """X as float64 with non-finite entries replaced by fill (per column)."""
    X = np.asarray(X, dtype=np.float64)
    bad = ~np.isfinite(X)
    return np.where(bad, fill[None, :], X) if bad.any() else X


def _project(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Principal-component coordinates of raw rows."""
    Z = (fill_missing(X, state["fill"]) - state["mean"]) / state["std"]
    return np.clip(Z, -state["zclip"][0], state["zclip"][0]) @ state["proj"]


def _matern52(A: torch.Tensor, B: torch.Tensor, ls: torch.Tensor) -> torch.Tensor:
    """ARD Matern-5/2 correlation between the rows of A and B."""
    d2 = torch.cdist(A / ls, B / ls).pow(2)
    r = torch.sqrt(d2.clamp_min(1e-12)) * math.sqrt(5.0)
    return (1.0 + r + r * r / 3.0) * torch.exp(-r)


def _kernel(A: torch.Tensor, B: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Signal kernel (no noise) between the rows of A and B."""
    d = A.shape[1]
    return p["sf"] ** 2 * _matern52(A, B, p["ls"]) + p["sl"] ** 2 * (A @ B.T) / max(1, d)


def _params(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Positive hyperparameters from their logs."""
    return {k[4:]: torch.exp(v) for k, v in raw.items()}


def _nll(raw: dict[str, torch.Tensor], T: torch.Tensor, y: torch.Tensor, ls0: float) -> torch.Tensor:
    """Negative log marginal likelihood + weak log-normal priors."""
    p = _params(raw)
    n = len(y)
    K = _kernel(T, T, p) + (p["sn"] ** 2 + 1e-6) * torch.eye(n, dtype=T.dtype)
    L = torch.linalg.cholesky(K)
    alpha = torch.cholesky_solve(y.unsqueeze(1), L).squeeze(1)
    nll = 0.5 * y @ alpha + torch.log(torch.diagonal(L)).sum() + 0.5 * n * math.log(2 * math.pi)
    prior = (
        ((raw["log_ls"] - math.log(ls0)) ** 2).sum() / (2 * 1.5**2)
        + (raw["log_sn"] - math.log(0.3)) ** 2 / (2 * 1.5**2)
        + raw["log_sf"] ** 2 / (2 * 1.5**2)
        + (raw["log_sl"] - math.log(0.3)) ** 2 / (2 * 2.0**2)
    )
    return nll + prior


def gp_fit(X: np.ndarray, y: np.ndarray, seed: int = 0, context: dict | None = None) -> dict[str, Any]:
    """Fit the GP (projection, hyperparameters by marginal likelihood, Cholesky factor) on X [n, d], y [n]."""
    with single_thread_torch():
        return _gp_fit(X, y, seed)


def _gp_fit(X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    """gp_fit on the current torch threads."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = X.shape[0]
    fill = fill_values(X)
    Xf = fill_missing(X, fill)
    mean = Xf.mean(axis=0)
    std = Xf.std(axis=0)
    std = np.where(std > 1e-8 * (1 + np.abs(mean)), std, 1.0)
    zclip = np.array([10.0])
    Z = np.clip((Xf - mean) / std, -zclip[0], zclip[0])
    Zc = Z - Z.mean(axis=0)
    k = max(1, min(MAX_DIM, Z.shape[1], n - 1))
    _, s, Vt = np.linalg.svd(Zc, full_matrices=False)
    keep = max(1, min(k, int((s > 1e-8 * max(1.0, s[0])).sum())))
    sd = s[:keep] / math.sqrt(max(1, n))
    proj = Vt[:keep].T / sd[None, :]  # unit-variance components
    state = {"fill": fill, "mean": mean, "std": std, "zclip": zclip, "proj": proj}
    T_np = _project(state, X)
    y_mean, y_std = float(y.mean()), float(y.std() or 1.0)
    T = torch.as_tensor(T_np, dtype=torch.float64)
    ys = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float64)
    raw = _max_likelihood(T, ys, keep)
    with torch.no_grad():
        p = _params(raw)
        K = _kernel(T, T, p) + (p["sn"] ** 2 + 1e-6) * torch.eye(n, dtype=T.dtype)
        L = torch.linalg.cholesky(K)
        alpha = torch.cholesky_solve(ys.unsqueeze(1), L).squeeze(1)
    return {
        **state,
        "train": T_np,
        "alpha": alpha.numpy(),
        "chol": L.numpy(),
        "ls": p["ls"].numpy(),
        "sf": p["sf"].reshape(1).numpy(),
        "sl": p["sl"].reshape(1).numpy(),
        "sn": p["sn"].reshape(1).numpy(),
        "y_scale": np.array([y_mean, y_std]),
    }


def _max_likelihood(T: torch.Tensor, ys: torch.Tensor, dim: int) -> dict[str, torch.Tensor]:
    """Raw hyperparameters (log scale, clamped to +-12) at the best marginal likelihood L-BFGS saw from the start
    point (length scales sqrt(dim), sf 1, sl and sn 0.3)."""
    ls0 = math.sqrt(dim)
    raw = {
        "log_ls": torch.full((dim,), math.log(ls0), dtype=torch.float64),
        "log_sf": torch.zeros((), dtype=torch.float64),
        "log_sl": torch.full((), math.log(0.3), dtype=torch.float64),
        "log_sn": torch.full((), math.log(0.3), dtype=torch.float64),
    }
    for v in raw.values():
        v.requires_grad_(True)
    opt = torch.optim.LBFGS(list(raw.values()), lr=0.5, max_iter=ITERS, line_search_fn="strong_wolfe")
    best_loss, best_raw = float("inf"), {k: v.detach().clone() for k, v in raw.items()}

    def closure() -> torch.Tensor:
        nonlocal best_loss, best_raw
        opt.zero_grad()
        try:
            loss = _nll(raw, T, ys, ls0)
        except torch.linalg.LinAlgError:
            return torch.tensor(1e10, dtype=torch.float64, requires_grad=True)
        if not torch.isfinite(loss):
            return torch.tensor(1e10, dtype=torch.float64, requires_grad=True)
        if float(loss.detach()) < best_loss:
            best_loss, best_raw = float(loss.detach()), {k: v.detach().clone() for k, v in raw.items()}
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        for key in raw:  # the best point seen (L-BFGS may end on a worse line-search trial)
            raw[key].copy_(best_raw[key].clamp(-12.0, 12.0))
    return raw


def _cross(state: dict[str, Any], X: np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """(test-train kernel, hyperparameters, test coordinates)."""
    p = {
        k: torch.as_tensor(state[k]).reshape(-1) if k == "ls" else torch.as_tensor(state[k])[0]
        for k in ("ls", "sf", "sl", "sn")
    }
    Ts = torch.as_tensor(_project(state, X), dtype=torch.float64)
    return _kernel(Ts, torch.as_tensor(state["train"]), p), p, Ts


def gp_predict(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Posterior mean in target units."""
    Ks, _, _ = _cross(state, X)
    y_mean, y_std = state["y_scale"]
    return (Ks @ torch.as_tensor(state["alpha"])).numpy() * y_std + y_mean


def gp_predict_sd(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Predictive standard deviation (posterior + noise) in target units."""
    Ks, p, Ts = _cross(state, X)
    L = torch.as_tensor(state["chol"])
    v = torch.linalg.solve_triangular(L, Ks.T, upper=False)
    prior = p["sf"] ** 2 + p["sl"] ** 2 * (Ts * Ts).sum(1) / max(1, Ts.shape[1])
    var = (prior - (v * v).sum(0)).clamp_min(0.0) + p["sn"] ** 2
    return var.sqrt().numpy() * state["y_scale"][1]
