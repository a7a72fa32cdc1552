"""Closed-form ridge with exact leave-one-out and GCV, batched over candidate feature sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

DEFAULT_GRID: tuple[float, ...] = tuple(float(10.0**e) for e in torch.linspace(-4, 2, 13).tolist())


@dataclass
class RidgeLOO:
    """Per-candidate LOO results over a penalty grid (C candidates, L penalties)."""

    lambdas: torch.Tensor  # [C, L] absolute penalties actually used
    loo_mse: torch.Tensor  # [C, L]
    loo_mae: torch.Tensor  # [C, L]
    gcv: torch.Tensor  # [C, L] generalised cross-validation score
    loo_pred: torch.Tensor  # [C, n, L] leave-one-out predictions

    def best(self, metric: str = "mae") -> tuple[torch.Tensor, torch.Tensor]:
        """(best score [C], best penalty index [C]) by LOO `mae`, `mse` or `gcv`."""
        table = {"mae": self.loo_mae, "mse": self.loo_mse, "gcv": self.gcv}[metric]
        score, idx = table.min(dim=1)
        return score, idx


def _spectral_parts(Fc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvalues s [C,k], P [C,n,k]) with Fc (Fc'Fc + lam I)^-1 Fc' = P diag(1/(s+lam)) P'."""
    n, h = Fc.shape[-2], Fc.shape[-1]
    if h <= n:  # primal: Gram [h, h]
        s, V = torch.linalg.eigh(Fc.transpose(-1, -2) @ Fc)
        P = Fc @ V  # P_ik^2 /(s_k+lam) summed over k gives the hat diagonal
    else:  # kernel: [n, n]
        s, U = torch.linalg.eigh(Fc @ Fc.transpose(-1, -2))
        s = s.clamp_min(0)
        P = U * s.sqrt().unsqueeze(-2)
    return s.clamp_min(0), P


def ridge_loo(F: torch.Tensor, y: torch.Tensor, lambdas: torch.Tensor) -> RidgeLOO:
    """Exact LOO of ridge with an unpenalised intercept for F [C,n,h], y [n], lambdas [L] or [C,L]."""
    if F.dim() == 2:
        F = F.unsqueeze(0)
    C, n, _ = F.shape
    dtype = F.dtype
    y = y.to(dtype)
    lam = lambdas.to(dtype)
    if lam.dim() == 1:
        lam = lam.unsqueeze(0).expand(C, -1)
    Fc = F - F.mean(dim=1, keepdim=True)
    ym = y.mean()
    yc = y - ym
    s, P = _spectral_parts(Fc)
    W = 1.0 / (s.unsqueeze(-1) + lam.unsqueeze(1))  # [C, k, L]
    b = torch.einsum("cnk,n->ck", P, yc)  # P' yc
    fitted = ym + (P * b.unsqueeze(1)) @ W  # [C, n, L]
    hdiag = 1.0 / n + (P * P) @ W  # [C, n, L]
    resid = y.view(1, n, 1) - fitted
    loo_resid = resid / (1.0 - hdiag).clamp_min(1e-12)
    trace = 1.0 + (s.unsqueeze(-1) * W).sum(dim=1)  # [C, L]
    gcv = (resid * resid).mean(dim=1) / ((1.0 - trace / n).clamp_min(1e-12) ** 2)
    return RidgeLOO(
        lambdas=lam,
        loo_mse=(loo_resid * loo_resid).mean(dim=1),
        loo_mae=loo_resid.abs().mean(dim=1),
        gcv=gcv,
        loo_pred=y.view(1, n, 1) - loo_resid,
    )


def standardize(F: torch.Tensor) -> torch.Tensor:
    """Scale each column of F [C,n,h] to unit standard deviation over the n rows (constant columns -> 0)."""
    mean = F.mean(dim=1, keepdim=True)
    std = F.std(dim=1, keepdim=True, unbiased=False)
    std = torch.where(std > 1e-8 * (1 + mean.abs()), std, torch.ones_like(std))
    Z = (F - mean) / std
    return torch.where(torch.isfinite(Z), Z, torch.zeros_like(Z))


def relative_lambdas(F: torch.Tensor, grid: Sequence[float] = DEFAULT_GRID) -> torch.Tensor:
    """Penalties [C,L] = grid x (mean non-zero eigenvalue of the centred Gram) per candidate."""
    n, h = F.shape[-2], F.shape[-1]
    Fc = F - F.mean(dim=1, keepdim=True)
    scale = (Fc * Fc).sum(dim=(1, 2)) / max(1, min(n - 1, h))
    scale = scale.clamp_min(1e-12)
    g = torch.as_tensor(list(grid), dtype=F.dtype, device=F.device)
    return scale.unsqueeze(1) * g.unsqueeze(0)


def screen_features(
    F: torch.Tensor, y: torch.Tensor, grid: Sequence[float] = DEFAULT_GRID, metric: str = "mae"
) -> dict[str, torch.Tensor]:
    """Standardise, then score every candidate in F [C,n,h] by its best LOO ridge over the grid."""
    finite = torch.isfinite(F).all(dim=2).all(dim=1)
    Z = standardize(F)
    res = ridge_loo(Z, y, relative_lambdas(Z, grid))
    score, idx = res.best(metric)
    take = idx.view(-1, 1)
    out = {
        "loo_mae": res.loo_mae.gather(1, take).squeeze(1),
        "loo_rmse": res.loo_mse.gather(1, take).squeeze(1).sqrt(),
        "gcv": res.gcv.gather(1, take).squeeze(1),
        "alpha": torch.as_tensor(list(grid), dtype=F.dtype, device=F.device)[idx],
        "score": score,
    }
    bad = ~finite | ~torch.isfinite(score)
    for key in ("loo_mae", "loo_rmse", "gcv", "score"):
        out[key] = torch.where(bad, torch.full_like(out[key], float("inf")), out[key])
    return out
