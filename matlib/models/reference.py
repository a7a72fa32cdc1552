"""Reference trainer: one model at a time, the usual PyTorch way (nn.Sequential + DataLoader).

Used for parity tests and as the benchmark baseline; same split, scaling, init, shuffling
and early-stopping rules as the batched trainer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from matlib.models.config import TrainConfig
from matlib.models.data import check_xy, feature_scaling, regression_metrics, split_indices, target_scaling
from matlib.models.mlp import MLPRegressor, build_module, build_sequential, init_params, torch_seed


class EpochPermutation(Sampler[int]):
    """A fresh random order of n rows every epoch from the model's own shuffle generator."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.generator = torch.Generator().manual_seed(torch_seed(seed, 1))

    def __iter__(self):  # noqa: ANN204 - Sampler protocol
        return iter(torch.randperm(self.n, generator=self.generator).tolist())

    def __len__(self) -> int:
        return self.n


def _train_epoch(
    net: torch.nn.Module,
    loader: DataLoader,
    opt: torch.optim.Optimizer,
    loss_fn: torch.nn.Module,
    dev: torch.device,
) -> float:
    """One pass over the loader's batches; the mean batch loss."""
    net.train()
    total, nb = 0.0, 0
    for xb, yb in loader:
        xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
        opt.zero_grad()
        loss = loss_fn(net(xb).squeeze(-1), yb)
        loss.backward()
        opt.step()
        total += float(loss.detach())
        nb += 1
    return total / max(nb, 1)


def train_single(
    X: np.ndarray,
    y: np.ndarray,
    arch: dict,
    seed: int,
    config: TrainConfig | dict | None = None,
    device: str | torch.device = "cpu",
) -> tuple[MLPRegressor, dict]:
    """Train one model; returns the best-checkpoint module and its test metrics."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    X, y = check_xy(X, y)
    dev = torch.device(device)
    sp = split_indices(len(y), seed, cfg.val_fraction, cfg.test_fraction)
    x_mean, x_std = feature_scaling(X[sp.train])
    y_mean, y_std = target_scaling(y[sp.train])

    def scaled(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.from_numpy((X[idx] - x_mean) / x_std),
            torch.from_numpy(((y[idx] - y_mean) / y_std).astype(np.float32)),
        )

    xtr, ytr = scaled(sp.train)  # the dataset stays on the CPU; batches are moved to the device
    xva, yva = (t.to(dev) for t in scaled(sp.val))
    net = build_sequential(arch)
    net.load_state_dict(init_params(arch, seed), strict=False)
    net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    bs = min(cfg.batch_size, len(sp.train))
    loader = DataLoader(
        TensorDataset(xtr, ytr), batch_size=bs, sampler=EpochPermutation(len(sp.train), seed), drop_last=True
    )
    loss_fn = torch.nn.MSELoss()
    best_val, best_state, best_epoch, bad, failed, epochs = float("inf"), None, 0, 0, False, 0
    for epoch in range(cfg.epochs):
        epochs = epoch + 1
        train_loss = _train_epoch(net, loader, opt, loss_fn, dev)
        net.eval()
        with torch.no_grad():
            val = float(loss_fn(net(xva).squeeze(-1), yva))
        if not np.isfinite(train_loss) or train_loss > cfg.diverge_loss or not np.isfinite(val):
            failed = True
            break
        if val < best_val:
            best_val, best_epoch, bad = val, epoch + 1, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    params = {k: v.cpu() for k, v in (best_state or net.state_dict()).items()}
    model = build_module(arch, params, torch.from_numpy(x_mean), torch.from_numpy(x_std), y_mean, y_std)
    with torch.no_grad():
        pred = model(torch.from_numpy(X[sp.test])).numpy()
    return model, _metrics(y[sp.test], pred, not failed and best_state is not None, len(sp.train), best_epoch, epochs)


def _metrics(ytrue: np.ndarray, pred: np.ndarray, trained: bool, n_train: int, best_epoch: int, epochs: int) -> dict:
    """Test metrics and training status of the model."""
    met: dict[str, Any] = dict(regression_metrics(ytrue, pred))
    ok = trained and bool(np.isfinite(met["rmse"]))
    met.update(
        n_train=n_train,
        best_epoch=best_epoch,
        epochs=epochs,
        status="ok" if ok else "failed",
        reason=None if ok else "diverged (non-finite or exploding loss)",
    )
    return met
