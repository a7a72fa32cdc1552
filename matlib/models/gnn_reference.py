"""One GNN at a time (the reference the batched trainer must equal): a plain module, torch.optim.Adam."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from matlib.graphs.batch import GraphSet
from matlib.models.data import Split
from matlib.models.gnn import GNNRegressor, init_gnn_params, stack_gnn_params
from matlib.models.gnn_batched import (
    EVAL_BATCH,
    GNNTrainConfig,
    GNNTrainResult,
    _finish,
    check_targets,
    epoch_batches,
    make_split,
    masked_mse,
    target_scaling,
)
from matlib.models.mlp import torch_seed


@torch.no_grad()
def _predict(model: GNNRegressor, gs: GraphSet, rows: np.ndarray) -> torch.Tensor:
    """Standardised predictions [len(rows), T]."""
    return torch.cat(
        [model.forward_scaled(gs.batch(rows[s : s + EVAL_BATCH])) for s in range(0, len(rows), EVAL_BATCH)]
    )


def _train_one(
    gs: GraphSet, ys: torch.Tensor, arch: dict, seed: int, cfg: GNNTrainConfig, sp: Split
) -> tuple[dict[str, torch.Tensor], bool, int, int]:
    """(best parameters, diverged, best epoch, epochs run) of one model trained alone."""
    model = GNNRegressor(arch, init_gnn_params(arch, seed))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=False)
    gen = torch.Generator().manual_seed(torch_seed(int(sp.train.sum()) + len(sp.train), 3))
    best = {k: v.detach().clone() for k, v in model.params.items()}
    best_val, best_epoch, bad, since_lr, dead, runs = float("inf"), 0, 0, 0, False, 0
    for epoch in range(cfg.epochs):
        runs = epoch + 1
        ep_loss, batches = 0.0, epoch_batches(len(sp.train), cfg.batch_size, gen)
        for pos in batches:
            rows = sp.train[pos]
            yb = ys[rows]
            loss = masked_mse(model.forward_scaled(gs.batch(rows)).unsqueeze(0), yb, torch.isfinite(yb))[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
            ep_loss += float(loss.detach())
        ep_loss /= len(batches)
        val = float(masked_mse(_predict(model, gs, sp.val).unsqueeze(0), ys[sp.val], torch.isfinite(ys[sp.val]))[0])
        if not np.isfinite(ep_loss) or ep_loss > cfg.diverge_loss or not np.isfinite(val):
            dead = True
            break
        if val < best_val:
            best = {k: v.detach().clone() for k, v in model.params.items()}
            best_val, best_epoch, bad, since_lr = val, epoch + 1, 0, 0
        else:
            bad, since_lr = bad + 1, since_lr + 1
        if cfg.lr_patience > 0 and since_lr >= cfg.lr_patience:
            for g in opt.param_groups:
                g["lr"] = max(g["lr"] * cfg.lr_factor, cfg.min_lr)
            since_lr = 0
        if bad >= cfg.patience:
            break
    return {k.replace("_", ".", 1): v for k, v in best.items()}, dead, best_epoch, runs


def train_gnn_single(
    gs: GraphSet,
    y: np.ndarray,
    arch: dict,
    seeds: Sequence[int],
    config: GNNTrainConfig | dict | None = None,
    split_seed: int | None = None,
    split: Split | None = None,
) -> GNNTrainResult:
    """Train the same models as train_gnn_batched, one after the other (CPU); results stacked alike."""
    cfg = config if isinstance(config, GNNTrainConfig) else GNNTrainConfig.from_dict(config)
    y = check_targets(gs, y)
    sp = make_split(len(gs), cfg, int(seeds[0] if split_seed is None else split_seed), split)
    y_mean, y_std = target_scaling(y[sp.train])
    ys = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32)
    bests, failed, best_epochs, runs = [], [], [], 0
    for seed in seeds:
        best, dead, best_epoch, ran = _train_one(gs, ys, arch, seed, cfg, sp)
        bests.append(best)
        failed.append(dead)
        best_epochs.append(best_epoch)
        runs = max(runs, ran)
    stacked = stack_gnn_params(bests)
    return _finish(
        stacked,
        arch,
        gs,
        y,
        y_mean,
        y_std,
        sp,
        torch.tensor(failed),
        torch.tensor(best_epochs),
        runs,
        torch.device("cpu"),
    )
