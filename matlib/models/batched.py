"""Batched multi-model trainer: M models of one shape trained as one stacked computation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

import matlib.models.manual as manual
from matlib.models.arch import padded_arch
from matlib.models.config import TrainConfig
from matlib.models.data import check_xy, regression_metrics, split_indices
from matlib.models.fused_adam import FusedAdam, public_adam
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


class TrainStep(Protocol):
    """One optimiser step of M stacked models on their rows, and their outputs on other rows (one interface for the
    hand-written step and the autograd step)."""

    def train(self, idx: torch.Tensor) -> torch.Tensor:
        """Update every model on its rows idx [M, B]; returns each model's batch loss [M]."""
        ...

    def evaluate(self, params: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        """Outputs [M, n] (scaled units) of the models `params` on their rows idx [M, n], no gradients."""
        ...


class ManualTrainStep:
    """The hand-written forward/backward (matlib.models.manual) with the fused Adam kernel: no autograd graph."""

    def __init__(
        self,
        params: dict[str, torch.Tensor],
        arch: dict,
        data: ModelRows,
        batch_size: int,
        masks: list[torch.Tensor] | None,
        dropout_gen: torch.Generator,
        cfg: TrainConfig,
        chunk: int | None,
    ) -> None:
        self.step = manual.ManualStep(params, arch, data, batch_size, masks, dropout_gen, chunk)
        self.opt = FusedAdam(list(params.values()), cfg.lr, cfg.weight_decay)  # after the step's .grads

    def train(self, idx: torch.Tensor) -> torch.Tensor:
        """Gradients into .grad by hand, then one Adam update."""
        loss = self.step(idx)
        self.opt.step()
        return loss

    def evaluate(self, params: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        """Forward in the step's preallocated buffers."""
        return self.step.evaluate(params, idx)


class AutogradTrainStep:
    """stacked_forward + autograd (batch norm, bfloat16 autocast on CUDA) with torch's Adam."""

    def __init__(
        self,
        state: dict[str, torch.Tensor],
        arch: dict,
        data: ModelRows,
        masks: list[torch.Tensor] | None,
        dropout_gen: torch.Generator,
        cfg: TrainConfig,
        params: list[torch.Tensor],
        amp: bool,
    ) -> None:
        self.state, self.arch, self.data, self.masks, self.gen, self.amp = state, arch, data, masks, dropout_gen, amp
        self.opt = public_adam(params, cfg.lr, cfg.weight_decay)
        self._rows: tuple[torch.Tensor, torch.Tensor] | None = None  # (idx, its inputs): validation, every epoch

    def train(self, idx: torch.Tensor) -> torch.Tensor:
        """Forward, mean squared error per model, backward, one Adam update."""
        xb, yb = self.data.rows(idx)
        with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out, _ = stacked_forward(self.state, self.arch, xb, self.masks, training=True, dropout_gen=self.gen)
        loss = ((out.float() - yb) ** 2).mean(dim=1)
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.opt.step()
        return loss.detach()

    def evaluate(self, params: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        """Forward in evaluation mode (the inputs of the last rows asked for are kept)."""
        if self._rows is None or self._rows[0] is not idx:
            self._rows = (idx, self.data.rows(idx)[0])
        return stacked_forward(params, self.arch, self._rows[1], self.masks, training=False)[0]


class EarlyStopping:
    """Per-model bookkeeping of M models trained together: best checkpoint by validation loss, patience, and
    divergence (a diverged model stops, its weights are zeroed, and it is reported as failed)."""

    def __init__(self, state: dict[str, torch.Tensor], params: list[str], buffers: list[str], cfg: TrainConfig) -> None:
        dev, M = state[params[0]].device, state[params[0]].shape[0]
        self.params, self.patience, self.diverge_loss = params, cfg.patience, cfg.diverge_loss
        self.best = {k: state[k].detach().clone() for k in params + buffers}
        self.best_val = torch.full((M,), float("inf"), device=dev)
        self.best_epoch = torch.zeros(M, dtype=torch.long, device=dev)
        self.bad = torch.zeros(M, dtype=torch.long, device=dev)
        self.active = torch.ones(M, dtype=torch.bool, device=dev)
        self.failed = torch.zeros(M, dtype=torch.bool, device=dev)

    @torch.no_grad()
    def update(self, epoch: int, train_loss: torch.Tensor, val: torch.Tensor, state: dict[str, torch.Tensor]) -> bool:
        """Record epoch (0-based) of every active model; zero diverged models' parameters in state. Whether any
        model is still active."""
        diverged = self.active & (~torch.isfinite(train_loss) | (train_loss > self.diverge_loss) | ~torch.isfinite(val))
        self.failed |= diverged
        improved = self.active & ~diverged & (val < self.best_val)
        if bool(improved.any()):
            for k in self.best:
                self.best[k][improved] = state[k].detach()[improved]
            self.best_val = torch.where(improved, val, self.best_val)
            self.best_epoch = torch.where(improved, torch.full_like(self.best_epoch, epoch + 1), self.best_epoch)
        self.bad = torch.where(improved, torch.zeros_like(self.bad), self.bad + 1)
        self.active &= ~diverged & (self.bad < self.patience)
        if diverged.any():  # keep NaN/huge values of dead models out of later arithmetic
            for k in self.params:
                state[k].data[diverged] = 0.0
        return bool(self.active.any())


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
    padded = padded_arch(archs, align=KERNEL_ALIGN)  # trained with widths the matmul kernels like; stored trimmed
    splits = [split_indices(len(y), s, cfg.val_fraction, cfg.test_fraction) for s in seeds]
    n_train = len(splits[0].train)
    data = ModelRows(X, y, splits, dev)
    state = {k: v.to(dev) for k, v in stack_params(padded, [init_params(a, s) for a, s in zip(archs, seeds)]).items()}
    pnames = param_names(padded)
    stop = EarlyStopping(state, pnames, buffer_names(padded), cfg)
    bs = min(cfg.batch_size, n_train)
    n_batches = n_train // bs  # drop_last: every step sees full batches for every model
    step = _make_step(state, pnames, padded, archs, data, seeds, cfg, bs, dev)
    shuffle_gens = [torch.Generator().manual_seed(torch_seed(s, 1)) for s in seeds]
    yv = torch.gather(data.targets, 1, data.val)  # the same rows every epoch
    epochs_run = 0
    for epoch in range(cfg.epochs):
        epochs_run = epoch + 1
        perm = torch.stack([torch.randperm(n_train, generator=g) for g in shuffle_gens]).to(dev)
        order = torch.gather(data.train, 1, perm)
        ep_loss = torch.zeros(len(archs), device=dev)
        for b in range(n_batches):
            ep_loss += step.train(order[:, b * bs : (b + 1) * bs])
        ep_loss /= n_batches
        with torch.no_grad():
            val = ((step.evaluate(state, data.val).float() - yv) ** 2).mean(dim=1)
        if not stop.update(epoch, ep_loss, val, state):
            break

    with torch.no_grad():
        out = step.evaluate(stop.best, data.test)
        pred = (out.float() * data.y_std.to(dev).unsqueeze(1) + data.y_mean.to(dev).unsqueeze(1)).cpu().numpy()
    metrics = _metrics(y[data.test.cpu().numpy()], pred, stop, n_train, epochs_run)
    return _result(stop.best, archs, padded_arch(archs), data, metrics)


def _make_step(
    state: dict[str, torch.Tensor],
    pnames: list[str],
    padded: dict,
    archs: list[dict],
    data: ModelRows,
    seeds: list[int],
    cfg: TrainConfig,
    bs: int,
    dev: torch.device,
) -> TrainStep:
    """The hand-written step where it covers the arch (no batch norm, no autocast), the autograd step otherwise."""
    params = [state[k].requires_grad_(True) for k in pnames]
    # Padded units have zero weights in and out; with act(0) == 0 they stay exactly zero without masks.
    needs_mask = any(a["hidden"] != padded["hidden"] for a in archs) and padded["activation"] not in ZERO_AT_ZERO
    masks = width_masks(padded, archs, dev) if needs_mask else None
    drop_gen = torch.Generator(device=dev).manual_seed(torch_seed(seeds[0], 2))
    amp = cfg.amp and dev.type == "cuda"
    if manual.supports(padded, amp):
        chunk = cpu_chunk(padded, bs, torch.get_num_threads()) if dev.type == "cpu" else None  # a GPU: all at once
        return ManualTrainStep({k: state[k] for k in pnames}, padded, data, bs, masks, drop_gen, cfg, chunk)
    return AutogradTrainStep(state, padded, data, masks, drop_gen, cfg, params, amp)


def _metrics(ytrue: np.ndarray, pred: np.ndarray, stop: EarlyStopping, n_train: int, epochs: int) -> list[dict]:
    """Test metrics and training status of each model."""
    failed, best_epoch = stop.failed.cpu().numpy(), stop.best_epoch.cpu().numpy()
    metrics = []
    for m in range(len(pred)):
        met: dict[str, Any] = dict(regression_metrics(ytrue[m], pred[m]))
        ok = not failed[m] and best_epoch[m] > 0 and np.isfinite(met["rmse"])
        reason = (
            None if ok else ("diverged (non-finite or exploding loss)" if failed[m] else "no finite validation loss")
        )
        met.update(
            n_train=n_train,
            best_epoch=int(best_epoch[m]),
            epochs=epochs,
            status="ok" if ok else "failed",
            reason=reason,
        )
        metrics.append(met)
    return metrics


def _result(
    best: dict[str, torch.Tensor], archs: list[dict], stored: dict, data: ModelRows, metrics: list[dict]
) -> TrainResult:
    """The best checkpoints trimmed to the stored (unaligned) arch, with the data scaling and each model's widths."""
    tensors = trim_stacked({k: v.detach().float().cpu() for k, v in best.items()}, stored)
    tensors.update(x_mean=data.x_mean, x_std=data.x_std, y_mean=data.y_mean, y_std=data.y_std)
    for i in range(len(stored["hidden"])):
        tensors[f"width{i}"] = torch.tensor([int(a["hidden"][i]) for a in archs], dtype=torch.int64)
    return TrainResult(arch=stored, archs=[dict(a) for a in archs], tensors=tensors, metrics=metrics)
