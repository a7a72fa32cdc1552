"""The rows of M models that share one table (X, y), each with its own split and its own scaling."""

from __future__ import annotations

import numpy as np
import torch

from matlib.models.data import Split, feature_scaling, feature_scaling_many, target_scaling


def gather_scaled(
    table: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor, idx: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """out [m, b, d] = table[idx] * gain + shift: rows idx [m, b] (contiguous) of each model, scaled its own way."""
    torch.index_select(table, 0, idx.view(-1), out=out.view(-1, table.shape[1]))
    return torch.addcmul(shift, out, gain, out=out)


class ModelRows:
    """One scaled copy of X on the device; per-model scaling applied as an affine map to gathered rows."""

    def __init__(self, X: np.ndarray, y: np.ndarray, splits: list[Split], device: torch.device) -> None:
        train = np.stack([sp.train for sp in splits])
        x_mean, x_std = feature_scaling_many(X, train)
        ys = [target_scaling(y[sp.train]) for sp in splits]
        self.x_mean, self.x_std = torch.from_numpy(x_mean), torch.from_numpy(x_std)  # each model's own (CPU)
        self.y_mean = torch.tensor([m for m, _ in ys], dtype=torch.float32)
        self.y_std = torch.tensor([s for _, s in ys], dtype=torch.float32)
        center, spread = feature_scaling(X)  # the shared table is scaled once, by all rows (well conditioned)
        self.table = torch.from_numpy((X - center) / spread).to(device)  # [n, d]
        # (x - mean_m) / std_m == table * gain_m + shift_m
        self.gain = torch.from_numpy(spread / x_std).unsqueeze(1).to(device)  # [M, 1, d]
        self.shift = torch.from_numpy((center - x_mean) / x_std).unsqueeze(1).to(device)
        y_t = torch.from_numpy(y).unsqueeze(0)
        self.targets = ((y_t - self.y_mean.unsqueeze(1)) / self.y_std.unsqueeze(1)).to(device)  # [M, n]
        self.train = torch.from_numpy(train).to(device)
        self.val = torch.from_numpy(np.stack([sp.val for sp in splits])).to(device)
        self.test = torch.from_numpy(np.stack([sp.test for sp in splits])).to(device)

    def rows(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows idx [M, b] of every model, scaled each model's own way: (x [M, b, d], y [M, b])."""
        m, b = idx.shape
        x = torch.empty((m, b, self.table.shape[1]), device=self.table.device)
        gather_scaled(self.table, self.gain, self.shift, idx.contiguous(), x)
        return x, torch.gather(self.targets, 1, idx)
