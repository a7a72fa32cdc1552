"""Batched multi-model trainer: M models of one shape trained as one stacked computation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from matlib.models import manual
from matlib.models.arch import padded_arch
from matlib.models.config import TrainConfig
from matlib.models.data import check_xy, regression_metrics, split_indices
from matlib.models.fused_adam import FusedAdam
from matlib.models.mlp import init_params, torch_seed
from matlib.models.model_rows import ModelRows
from matlib.models.stacked import (
    ZERO_AT_ZERO,
    buffer_names,
    param_names,
    stack_params,
    stacked_forward,
    trim_stacked,
    width_masks,
)

KERNEL_ALIGN = 8  # hidden widths are padded to a multiple of this in training (full SIMD lanes / tensor-core tiles)
CPU_CHUNK_BYTES = 2 << 20  # single-threaded CPU step: buffers per chunk of models (about a core's L2 cache)


@dataclass
class TrainResult:
    """Best checkpoints of M models (stacked, CPU float32) and one metrics dict per model."""

    arch: dict  # the common (padded) architecture of the stack
    archs: list[dict]  # each model's own architecture
    tensors: dict[str, torch.Tensor]  # l{i}.*, bn{i}.*, x_mean, x_std, y_mean, y_std, width{i}
    metrics: list[dict] = field(default_factory=list)  # mae, rmse, r2, n_train, best_epoch, epochs, status, reason


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_chunk(arch: dict, batch_size: int, threads: int = 1) -> int | None:
    """Models per chunk of the CPU step (None: all at once).

    One thread (a library build runs one single-threaded worker per core): chunks whose activations and gradients
    take about CPU_CHUNK_BYTES, so the batched matmuls find their operands in cache. Several threads: whole tensors,
    so that every operation has enough work to split between them.
    """
    if threads > 1:
        return None
    floats_per_model = batch_size * (int(arch["n_in"]) + 3 * sum(int(h) for h in arch["hidden"]) + 3)
    return max(1, CPU_CHUNK_BYTES // (4 * floats_per_model))


def _adam(params: list[torch.Tensor], cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Adam over the stacked tensors (elementwise, so no model influences another)."""
    try:
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)


def train_batched(
    X: np.ndarray,
    y: np.ndarray,
    archs: list[dict],
    seeds: list[int],
    config: TrainConfig | dict | None = None,
    device: str | torch.device | None = None,
) -> TrainResult:
    """Train one model per (arch, seed) on (X, y) at once; archs may differ only in widths."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    X, y = check_xy(X, y)
    dev = torch.device(device) if device is not None else default_device()
    M = len(archs)
    stored = padded_arch(archs)
    padded = padded_arch(archs, align=KERNEL_ALIGN)  # trained with widths the matmul kernels like; stored trimmed
    splits = [split_indices(len(y), s, cfg.val_fraction, cfg.test_fraction) for s in seeds]
    n_train = len(splits[0].train)

    data = ModelRows(X, y, splits, dev)

    state = {k: v.to(dev) for k, v in stack_params(padded, [init_params(a, s) for a, s in zip(archs, seeds)]).items()}
    pnames, bnames = param_names(padded), buffer_names(padded)
    params = [state[k].requires_grad_(True) for k in pnames]
    # Padded units have zero weights in and out; with act(0) == 0 they stay exactly zero without masks.
    needs_mask = any(a["hidden"] != padded["hidden"] for a in archs) and padded["activation"] not in ZERO_AT_ZERO
    masks = width_masks(padded, archs, dev) if needs_mask else None

    shuffle_gens = [torch.Generator().manual_seed(torch_seed(s, 1)) for s in seeds]
    drop_gen = torch.Generator(device=dev).manual_seed(torch_seed(seeds[0], 2))
    bs = min(cfg.batch_size, n_train)
    n_batches = n_train // bs  # drop_last: every step sees full batches for every model

    best = {k: state[k].detach().clone() for k in pnames + bnames}
    best_val = torch.full((M,), float("inf"), device=dev)
    best_epoch = torch.zeros(M, dtype=torch.long, device=dev)
    bad = torch.zeros(M, dtype=torch.long, device=dev)
    active = torch.ones(M, dtype=torch.bool, device=dev)
    failed = torch.zeros(M, dtype=torch.bool, device=dev)
    amp = cfg.amp and dev.type == "cuda"
    fast = manual.supports(padded, amp)  # hand-written backward, no autograd graph per step
    chunk = cpu_chunk(padded, bs, torch.get_num_threads()) if dev.type == "cpu" else None  # a GPU takes all at once
    step = manual.ManualStep({k: state[k] for k in pnames}, padded, data, bs, masks, drop_gen, chunk) if fast else None
    opt = FusedAdam(params, cfg.lr, cfg.weight_decay) if fast else _adam(params, cfg, dev)  # after the step's .grads
    yv = torch.gather(data.targets, 1, data.val)  # the same rows every epoch
    xv = data.rows(data.val)[0] if step is None else None
    epochs_run = 0

    for epoch in range(cfg.epochs):
        epochs_run = epoch + 1
        perm = torch.stack([torch.randperm(n_train, generator=g) for g in shuffle_gens]).to(dev)
        order = torch.gather(data.train, 1, perm)
        ep_loss = torch.zeros(M, device=dev)
        for b in range(n_batches):
            idx = order[:, b * bs : (b + 1) * bs]
            if step is not None:
                ep_loss += step(idx)
                opt.step()
                continue
            xb, yb = data.rows(idx)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                out, _ = stacked_forward(state, padded, xb, masks, training=True, dropout_gen=drop_gen)
            loss = ((out.float() - yb) ** 2).mean(dim=1)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            ep_loss += loss.detach()
        ep_loss /= n_batches
        with torch.no_grad():
            out = (
                step.evaluate(state, data.val)
                if step is not None
                else stacked_forward(state, padded, xv, masks, training=False)[0]
            )
            val = ((out.float() - yv) ** 2).mean(dim=1)
            diverged = active & (~torch.isfinite(ep_loss) | (ep_loss > cfg.diverge_loss) | ~torch.isfinite(val))
            failed |= diverged
            improved = active & ~diverged & (val < best_val)
            if bool(improved.any()):
                for k in best:
                    best[k][improved] = state[k].detach()[improved]
                best_val = torch.where(improved, val, best_val)
                best_epoch = torch.where(improved, torch.full_like(best_epoch, epoch + 1), best_epoch)
            bad = torch.where(improved, torch.zeros_like(bad), bad + 1)
            active &= ~diverged & (bad < cfg.patience)
            if diverged.any():  # keep NaN/huge values of dead models out of later arithmetic
                for k in pnames:
                    state[k].data[diverged] = 0.0
        if not bool(active.any()):
            break

    with torch.no_grad():
        out = (
            step.evaluate(best, data.test)
            if step is not None
            else stacked_forward(best, padded, data.rows(data.test)[0], masks, training=False)[0]
        )
        pred = (out.float() * data.y_std.to(dev).unsqueeze(1) + data.y_mean.to(dev).unsqueeze(1)).cpu().numpy()
    ytrue = y[data.test.cpu().numpy()]
    failed_c, best_epoch_c = failed.cpu().numpy(), best_epoch.cpu().numpy()
    metrics = []
    for m in range(M):
        met = regression_metrics(ytrue[m], pred[m])
        ok = not failed_c[m] and best_epoch_c[m] > 0 and np.isfinite(met["rmse"])
        reason = (
            None if ok else ("diverged (non-finite or exploding loss)" if failed_c[m] else "no finite validation loss")
        )
        met.update(
            n_train=n_train,
            best_epoch=int(best_epoch_c[m]),
            epochs=epochs_run,
            status="ok" if ok else "failed",
            reason=reason,
        )
        metrics.append(met)

    tensors = trim_stacked({k: v.detach().float().cpu() for k, v in best.items()}, stored)
    tensors.update(x_mean=data.x_mean, x_std=data.x_std, y_mean=data.y_mean, y_std=data.y_std)
    for i in range(len(padded["hidden"])):
        tensors[f"width{i}"] = torch.tensor([int(a["hidden"][i]) for a in archs], dtype=torch.int64)
    return TrainResult(arch=stored, archs=[dict(a) for a in archs], tensors=tensors, metrics=metrics)
