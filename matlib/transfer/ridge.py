"""Closed-form ridge with exact leave-one-out and GCV, batched over candidate feature sets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    fallback: torch.Tensor  # [C] int8: index into FALLBACKS (how the eigendecomposition was obtained)

    def best(self, metric: str = "mae") -> tuple[torch.Tensor, torch.Tensor]:
        """(best score [C], best penalty index [C]) by LOO `mae`, `mse` or `gcv`."""
        table = {"mae": self.loo_mae, "mse": self.loo_mse, "gcv": self.gcv}[metric]
        score, idx = table.min(dim=1)
        return score, idx


# How a candidate's eigendecomposition was obtained (the `fallback` code of RidgeLOO and of the ranking).
FALLBACKS = ("none", "float64", "jitter", "svd", "dropped")
JITTER = 1e-6  # relative ridge added to the diagonal of a Gram matrix whose eigh does not converge


def _eigh_one(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(eigenvalues, eigenvectors, fallback code) of one symmetric PSD matrix: eigh, in float64, with a small
    jitter, then SVD; NaNs and code 4 (dropped) if every way fails (e.g. the matrix holds NaN)."""
    attempts = ((0, lambda: torch.linalg.eigh(G)), (1, lambda: torch.linalg.eigh(G.double())))
    for code, fn in attempts:
        try:
            s, V = fn()
            return s.to(G.dtype), V.to(G.dtype), code
        except torch.linalg.LinAlgError:
            pass
    G64 = G.double()
    k = G64.shape[-1]
    jitter = JITTER * (float(torch.diagonal(G64).abs().mean()) + 1e-12)
    try:
        s, V = torch.linalg.eigh(G64 + jitter * torch.eye(k, dtype=G64.dtype, device=G64.device))
        return (s - jitter).to(G.dtype), V.to(G.dtype), 2
    except torch.linalg.LinAlgError:
        pass
    try:  # for a symmetric PSD matrix the SVD is its eigendecomposition
        U, S, _ = torch.linalg.svd(G64)
        if torch.isfinite(S).all():
            return S.flip(-1).to(G.dtype), U.flip(-1).to(G.dtype), 3
    except torch.linalg.LinAlgError:
        pass
    nan = float("nan")
    return torch.full((k,), nan, dtype=G.dtype, device=G.device), torch.full_like(G, nan), 4


def gram_eigh(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(eigenvalues [C,k], eigenvectors [C,k,k], fallback code [C] int8) of symmetric PSD matrices G [C,k,k].

    One batched eigh when it converges; if it fails (LAPACK/cuSOLVER reject the whole batch when one matrix is
    ill-conditioned or has too many repeated eigenvalues), the batch in float64, then each matrix on its own down
    the ladder of `_eigh_one`, so one bad candidate never costs the others.
    """
    code = torch.zeros(G.shape[0], dtype=torch.int8, device=G.device)
    try:
        s, V = torch.linalg.eigh(G)
        return s, V, code
    except torch.linalg.LinAlgError:
        pass
    try:
        s, V = torch.linalg.eigh(G.double())
        return s.to(G.dtype), V.to(G.dtype), code.fill_(1)
    except torch.linalg.LinAlgError:
        pass
    s = torch.empty(G.shape[:-1], dtype=G.dtype, device=G.device)
    V = torch.empty_like(G)
    for c in range(G.shape[0]):
        s[c], V[c], one = _eigh_one(G[c])
        code[c] = one
    return s, V, code


def _spectral_parts(Fc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(eigenvalues s [C,k], P [C,n,k], fallback code [C]) with Fc (Fc'Fc + lam I)^-1 Fc' = P diag(1/(s+lam)) P'."""
    n, h = Fc.shape[-2], Fc.shape[-1]
    if h <= n:  # primal: Gram [h, h]
        s, V, code = gram_eigh(Fc.transpose(-1, -2) @ Fc)
        P = Fc @ V  # P_ik^2 /(s_k+lam) summed over k gives the hat diagonal
    else:  # kernel: [n, n]
        s, U, code = gram_eigh(Fc @ Fc.transpose(-1, -2))
        s = s.clamp_min(0)
        P = U * s.sqrt().unsqueeze(-2)
    return s.clamp_min(0), P, code


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
    s, P, fallback = _spectral_parts(Fc)
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
        fallback=fallback,
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
        "fallback": res.fallback.to(F.dtype),
    }
    bad = ~finite | ~torch.isfinite(score)
    out["fallback"] = torch.where(
        ~torch.isfinite(score), torch.full_like(out["fallback"], FALLBACKS.index("dropped")), out["fallback"]
    )
    for key in ("loo_mae", "loo_rmse", "gcv", "score"):
        out[key] = torch.where(bad, torch.full_like(out[key], float("inf")), out[key])
    return out
