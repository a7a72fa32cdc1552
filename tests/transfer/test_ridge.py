"""Batched closed-form ridge LOO/GCV against brute-force refits."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from matlib.transfer.ridge import ridge_loo, screen_features


def _brute_loo(X: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    n = len(y)
    pred = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        m = Ridge(alpha=lam, fit_intercept=True, solver="svd").fit(X[keep], y[keep])
        pred[i] = m.predict(X[i : i + 1])[0]
    return pred


@pytest.mark.parametrize("n,h", [(30, 8), (20, 45)])  # primal (h<=n) and kernel (h>n) branches
def test_batched_loo_equals_brute_force(n, h):
    rng = np.random.default_rng(0)
    C = 3
    F = rng.normal(size=(C, n, h)) * rng.uniform(0.1, 5, size=(C, 1, h)) + rng.normal(size=(C, 1, h))
    y = F[0, :, 0] * 2 - F[1, :, 1] + rng.normal(size=n)
    lams = np.array([1e-2, 1.0, 30.0])
    res = ridge_loo(torch.tensor(F), torch.tensor(y), torch.tensor(lams))
    for c in range(C):
        for j, lam in enumerate(lams):
            brute = _brute_loo(F[c], y, lam)
            np.testing.assert_allclose(res.loo_pred[c, :, j].numpy(), brute, rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(res.loo_mae[c, j].item(), np.abs(brute - y).mean(), rtol=1e-6)
            np.testing.assert_allclose(res.loo_mse[c, j].item(), ((brute - y) ** 2).mean(), rtol=1e-6)


def test_gcv_matches_definition():
    rng = np.random.default_rng(1)
    n, h = 25, 6
    X = rng.normal(size=(n, h))
    y = X @ rng.normal(size=h) + 0.3 * rng.normal(size=n)
    lam = 2.0
    res = ridge_loo(torch.tensor(X), torch.tensor(y), torch.tensor([lam]))
    Xa = np.hstack([np.ones((n, 1)), X - X.mean(0)])
    D = np.diag([0.0] + [lam] * h)
    H = Xa @ np.linalg.solve(Xa.T @ Xa + D, Xa.T)
    r = y - H @ y
    gcv = n * (r @ r) / (n - np.trace(H)) ** 2
    np.testing.assert_allclose(res.gcv[0, 0].item(), gcv, rtol=1e-8)


def test_float32_screen_close_to_float64_and_flags_nonfinite():
    rng = np.random.default_rng(2)
    F = rng.normal(size=(4, 40, 16))
    y = F[2, :, 3] + 0.1 * rng.normal(size=40)
    s64 = screen_features(torch.tensor(F), torch.tensor(y))
    s32 = screen_features(torch.tensor(F, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    np.testing.assert_allclose(s32["loo_mae"].numpy(), s64["loo_mae"].numpy(), rtol=1e-3)
    assert int(torch.argmin(s64["score"])) == 2
    F[1, 5, 2] = np.nan
    s = screen_features(torch.tensor(F), torch.tensor(y))
    assert torch.isinf(s["score"][1]) and torch.isfinite(s["score"][0])
