"""Batched GNN trainer: M models of one family trained on the same graph mini-batches at once.

Every model sees the same split and the same batches (one shuffle per epoch); what differs is each model's seed
(initial weights). Targets are [n, T] (T properties: a multi-task model) standardised per property on the
training rows; missing labels (NaN) are masked out of the loss and the metrics. Adam runs over the stacked
tensors with a per-model learning rate (each model's own plateau schedule), which is elementwise, so no model
influences another: the result equals training the same models one at a time (`gnn_reference.train_gnn_single`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

import matlib.models.private_api as private_api
from matlib.errors import ValidationError
from matlib.graphs.batch import GraphSet
from matlib.models.config import checked_config
from matlib.models.data import Split, regression_metrics, split_indices
from matlib.models.gnn import init_gnn_params, stack_gnn_params
from matlib.models.gnn_stacked import stacked_gnn_forward
from matlib.models.mlp import torch_seed

EVAL_BATCH = 1024
EVAL_STATES = 1 << 16  # graphs x models x width per evaluation chunk of the stacked forward


@dataclass(frozen=True)
class GNNTrainConfig:
    """Hyper-parameters of one GNN training run (the same for every model of a shard)."""

    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 20  # epochs without a better validation loss before a model stops
    lr_patience: int = 0  # > 0: multiply a model's lr by lr_factor after this many epochs without improvement
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    diverge_loss: float = 1e4

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> GNNTrainConfig:
        """A config from a plain dict (unknown keys rejected with a one-line error)."""
        return checked_config(cls, d, "gnn training config")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return asdict(self)


@dataclass
class GNNTrainResult:
    """Best checkpoints of M models (stacked [M, ...], CPU float32), the split, and metrics per model."""

    arch: dict
    tensors: dict[str, torch.Tensor]  # parameters + y_mean, y_std [M, T]
    split: Split
    metrics: list[dict] = field(default_factory=list)
    epochs_run: int = 0


def check_targets(gs: GraphSet, y: np.ndarray) -> np.ndarray:
    """Targets as float64 [n, T], one-line errors for a shape mismatch or a property without labels."""
    y = np.asarray(y, dtype=np.float64)
    y = y.reshape(-1, 1) if y.ndim == 1 else y
    if y.ndim != 2 or y.shape[0] != len(gs):
        raise ValidationError(f"gnn training: targets have shape {y.shape}, expected [{len(gs)}, T]")
    return y


def target_scaling(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-property mean and std of y [n, T] over labelled rows (std 1 where constant)."""
    mean = np.nanmean(y, axis=0)
    std = np.nanstd(y, axis=0)
    return mean, np.where(~np.isfinite(std) | (std < 1e-8), 1.0, std)


def masked_mse(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error of pred [M, G, T] against y [G, T] over labelled entries only -> [M]."""
    diff = torch.where(mask.unsqueeze(0), pred - y.unsqueeze(0), torch.zeros((), dtype=pred.dtype))
    return (diff**2).sum(dim=(1, 2)) / mask.sum().clamp_min(1)


def epoch_batches(n_train: int, batch_size: int, gen: torch.Generator) -> list[np.ndarray]:
    """Positions into the training rows for each batch of one epoch (shuffled; last short batch dropped
    unless it is the only one)."""
    perm = torch.randperm(n_train, generator=gen).numpy()
    bs = min(batch_size, n_train)
    return [perm[b * bs : (b + 1) * bs] for b in range(max(1, n_train // bs))]


class StackedAdam:
    """Adam (torch.optim.Adam's update) over stacked [M, ...] tensors with a per-model learning rate.

    Where torch has its fused Adam kernel (`private_api.PRIVATE_FUSED_ADAM`), one pass computes every model's step
    at learning rate 1 into a buffer and one more scales it by each model's rate into the parameters (measured
    0.22 ms vs 0.54 ms per step for 32 GNNs of 7.8k parameters); elsewhere a few multi-tensor ops do the same.
    """

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: torch.Tensor,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params, self.lr, self.wd, self.betas, self.eps = params, lr, weight_decay, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in params]
        self.delta = [torch.zeros_like(p) for p in params]

    def _rates(self) -> list[torch.Tensor]:
        """The per-model learning rate shaped to broadcast over each parameter tensor."""
        return [self.lr.view(-1, *([1] * (p.dim() - 1))) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter from its .grad."""
        self.t += 1
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self.wd:
            grads = list(torch._foreach_add(grads, self.params, alpha=self.wd))
        if private_api.PRIVATE_FUSED_ADAM is not None:
            self._fused_step(private_api.PRIVATE_FUSED_ADAM, grads)
        else:
            self._foreach_step(grads)
        for p in self.params:
            p.grad = None

    def _fused_step(self, kernel: Callable[..., None], grads: list[torch.Tensor]) -> None:
        """The fused kernel's step at learning rate 1 into self.delta, then params += lr * delta."""
        torch._foreach_add_(self.steps, 1)
        torch._foreach_zero_(self.delta)
        b1, b2 = self.betas
        kernel(
            self.delta,
            grads,
            self.m,
            self.v,
            [],
            self.steps,
            amsgrad=False,
            lr=1.0,
            beta1=b1,
            beta2=b2,
            weight_decay=0.0,
            eps=self.eps,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )
        torch._foreach_addcmul_(self.params, self.delta, self._rates())

    def _foreach_step(self, grads: list[torch.Tensor]) -> None:
        """The same update in multi-tensor ops (a few kernel calls per step)."""
        b1, b2 = self.betas
        bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
        torch._foreach_mul_(self.m, b1)
        torch._foreach_add_(self.m, grads, alpha=1 - b1)
        torch._foreach_mul_(self.v, b2)
        torch._foreach_addcmul_(self.v, grads, grads, value=1 - b2)
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_div_(denom, bc2**0.5)
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_div(self.m, denom)
        torch._foreach_mul_(update, [r / bc1 for r in self._rates()])
        torch._foreach_sub_(self.params, update)


def flatten_params(stacked: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[tuple[str, tuple[int, ...]]]]:
    """Stacked parameters [M, ...] as one [M, P] tensor (each model's parameters in one row) and its layout."""
    layout = [(k, tuple(v.shape[1:])) for k, v in stacked.items()]
    return torch.cat([v.reshape(v.shape[0], -1) for v in stacked.values()], dim=1), layout


def unflatten_params(flat: torch.Tensor, layout: list[tuple[str, tuple[int, ...]]]) -> dict[str, torch.Tensor]:
    """Views [M, ...] of a flat [M, P] parameter tensor (one split: its backward is one concatenation)."""
    sizes = [int(np.prod(shape)) for _, shape in layout]
    parts = torch.split(flat, sizes, dim=1)
    return {k: part.view(flat.shape[0], *shape) for (k, shape), part in zip(layout, parts)}


@torch.no_grad()
def predict_stacked(
    p: dict[str, torch.Tensor], arch: dict, gs: GraphSet, rows: np.ndarray, device: torch.device
) -> torch.Tensor:
    """Standardised predictions [M, len(rows), T] of every model for graphs rows."""
    step = eval_rows(next(iter(p.values())).shape[0], arch)
    outs = [stacked_gnn_forward(p, arch, gs.batch(rows[s : s + step], device))[0] for s in range(0, len(rows), step)]
    return torch.cat(outs, dim=1)


def eval_rows(M: int, arch: dict) -> int:
    """Graphs per evaluation batch of M stacked models: fewer as M grows, so each [M, N, width] intermediate stays
    a few MB (tens of MB are fresh pages on every allocation and measured 2-3x slower per graph)."""
    return max(16, min(EVAL_BATCH, EVAL_STATES // (M * int(arch["width"]))))


def model_chunks(M: int, chunk: int | None = None) -> list[tuple[int, int]]:
    """[lo, hi) bounds of the chunks of models stepped together on each batch (default: all at once; on 2 busy CPU
    cores, smaller chunks measured slower, unlike the MLP step)."""
    chunk = M if chunk is None else max(1, min(int(chunk), M))
    return [(a, min(a + chunk, M)) for a in range(0, M, chunk)]


def make_split(n: int, cfg: GNNTrainConfig, split_seed: int, split: Split | None) -> Split:
    """The given split, else a seeded random one."""
    return split if split is not None else split_indices(n, split_seed, cfg.val_fraction, cfg.test_fraction)


def task_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Metrics over labelled entries: per property (lists) and their means (mae, rmse, r2)."""
    per = [
        regression_metrics(y_true[np.isfinite(y_true[:, t]), t], pred[np.isfinite(y_true[:, t]), t])
        for t in range(y_true.shape[1])
    ]
    out: dict[str, Any] = {k: float(np.mean([m[k] for m in per])) for k in ("mae", "rmse", "r2")}
    if len(per) > 1:
        out["tasks"] = per
    return out


def train_gnn_batched(
    gs: GraphSet,
    y: np.ndarray,
    arch: dict,
    seeds: Sequence[int],
    config: GNNTrainConfig | dict | None = None,
    split_seed: int | None = None,
    split: Split | None = None,
    device: str | torch.device | None = None,
    chunk: int | None = None,
) -> GNNTrainResult:
    """Train len(seeds) models of one arch on graphs gs with targets y [n] or [n, T] at once.

    With chunk, models are stepped chunk at a time on each shared batch (bounding memory); by default all at once.
    """
    cfg = config if isinstance(config, GNNTrainConfig) else GNNTrainConfig.from_dict(config)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    y = check_targets(gs, y)
    sp = make_split(len(gs), cfg, int(seeds[0] if split_seed is None else split_seed), split)
    y_mean, y_std = target_scaling(y[sp.train])
    ys = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32)
    M = len(seeds)
    stacked = stack_gnn_params([init_gnn_params(arch, s) for s in seeds])
    flat0, layout = flatten_params(stacked)
    lr = torch.full((M,), float(cfg.lr), device=dev)
    bounds = model_chunks(M, chunk)
    # one flat [models, parameters] leaf (and one optimiser step over it) per chunk of models
    flats = [flat0[a:b].to(dev).clone().requires_grad_(True) for a, b in bounds]
    opts = [StackedAdam([f], lr[a:b], cfg.weight_decay) for f, (a, b) in zip(flats, bounds)]
    gen = torch.Generator().manual_seed(torch_seed(int(sp.train.sum()) + len(sp.train), 3))
    best = flat0.detach().clone().to(dev)
    track = _Tracker(M, dev)
    yv, mv = ys[sp.val].to(dev), torch.isfinite(ys[sp.val]).to(dev)
    epochs_run = 0
    for epoch in range(cfg.epochs):
        epochs_run = epoch + 1
        batches = [sp.train[pos] for pos in epoch_batches(len(sp.train), cfg.batch_size, gen)]
        ep_loss = _train_epoch(gs, ys, batches, arch, list(zip(flats, opts, bounds)), layout, track.active, dev)
        with torch.no_grad():
            state = torch.cat([f.detach() for f in flats])
            val = masked_mse(predict_stacked(unflatten_params(state, layout), arch, gs, sp.val, dev), yv, mv)
            improved = track.update(ep_loss, val, epoch, cfg, lr)
            best[improved] = state[improved]
            for flat, (lo, hi) in zip(flats, bounds):
                dead = track.failed[lo:hi]
                if dead.any():  # keep NaN/huge values of dead models out of later arithmetic
                    flat.data[dead] = 0.0
        if not bool(track.active.any()):
            break
    best_params = {k: v.contiguous() for k, v in unflatten_params(best, layout).items()}
    return _finish(best_params, arch, gs, y, y_mean, y_std, sp, track.failed, track.best_epoch, epochs_run, dev)


def _train_epoch(
    gs: GraphSet,
    ys: torch.Tensor,
    batches: list[np.ndarray],
    arch: dict,
    chunks: list[tuple[torch.Tensor, StackedAdam, tuple[int, int]]],
    layout: list[tuple[str, tuple[int, ...]]],
    active: torch.Tensor,
    dev: torch.device,
) -> torch.Tensor:
    """One epoch over the batches (rows of gs) for every chunk of models with an active one; mean loss [M]."""
    ep_loss = torch.zeros(len(active), device=dev)
    for rows in batches:
        b = gs.batch(rows, dev)  # built once, shared by every chunk of models
        yb = ys[rows].to(dev)
        mb = torch.isfinite(yb)
        for flat, opt, (lo, hi) in chunks:
            if not bool(active[lo:hi].any()):
                continue
            out, _ = stacked_gnn_forward(unflatten_params(flat, layout), arch, b)
            loss = masked_mse(out, yb, mb)
            loss.sum().backward()
            opt.step()
            ep_loss[lo:hi] += loss.detach()
    return ep_loss / len(batches)


class _Tracker:
    """Per-model early stopping, divergence and plateau learning-rate state of a batched run."""

    def __init__(self, M: int, dev: torch.device) -> None:
        self.best_val = torch.full((M,), float("inf"), device=dev)
        self.best_epoch = torch.zeros(M, dtype=torch.long, device=dev)
        self.bad = torch.zeros(M, dtype=torch.long, device=dev)
        self.since_lr = torch.zeros(M, dtype=torch.long, device=dev)
        self.active = torch.ones(M, dtype=torch.bool, device=dev)
        self.failed = torch.zeros(M, dtype=torch.bool, device=dev)

    def update(
        self, ep_loss: torch.Tensor, val: torch.Tensor, epoch: int, cfg: GNNTrainConfig, lr: torch.Tensor
    ) -> torch.Tensor:
        """Record one epoch's training and validation losses [M]; returns the models that improved (their
        checkpoint is to be kept). Cuts plateaued models' lr in place and zeroes stopped models' lr."""
        diverged = self.active & (~torch.isfinite(ep_loss) | (ep_loss > cfg.diverge_loss) | ~torch.isfinite(val))
        self.failed |= diverged
        improved = self.active & ~diverged & (val < self.best_val)
        self.best_val = torch.where(improved, val, self.best_val)
        self.best_epoch = torch.where(improved, torch.full_like(self.best_epoch, epoch + 1), self.best_epoch)
        self.bad = torch.where(improved, torch.zeros_like(self.bad), self.bad + 1)
        if cfg.lr_patience > 0:
            self.since_lr = torch.where(improved, torch.zeros_like(self.since_lr), self.since_lr + 1)
            cut = self.active & (self.since_lr >= cfg.lr_patience)
            lr.copy_(torch.where(cut, (lr * cfg.lr_factor).clamp_min(cfg.min_lr), lr))
            self.since_lr = torch.where(cut, torch.zeros_like(self.since_lr), self.since_lr)
        self.active &= ~diverged & (self.bad < cfg.patience)
        lr.mul_(self.active.to(lr.dtype))  # stopped models stop moving (their best checkpoint is kept)
        return improved


def _finish(
    best: dict[str, torch.Tensor],
    arch: dict,
    gs: GraphSet,
    y: np.ndarray,
    y_mean: np.ndarray,
    y_std: np.ndarray,
    sp: Split,
    failed: torch.Tensor,
    best_epoch: torch.Tensor,
    epochs_run: int,
    dev: torch.device,
) -> GNNTrainResult:
    """Test metrics of the best checkpoints and the stacked tensors to store."""
    M = int(failed.shape[0])
    pred = predict_stacked(best, arch, gs, sp.test, dev).cpu().double().numpy() * y_std + y_mean
    metrics = []
    for m in range(M):
        met = task_metrics(y[sp.test], pred[m])
        ok = not bool(failed[m]) and int(best_epoch[m]) > 0 and np.isfinite(met["rmse"])
        met.update(
            n_train=int(len(sp.train)),
            best_epoch=int(best_epoch[m]),
            epochs=epochs_run,
            status="ok" if ok else "failed",
            reason=None
            if ok
            else ("diverged (non-finite or exploding loss)" if bool(failed[m]) else "no finite validation loss"),
        )
        metrics.append(met)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in best.items()}
    tensors["y_mean"] = torch.as_tensor(np.tile(y_mean, (M, 1)), dtype=torch.float32)
    tensors["y_std"] = torch.as_tensor(np.tile(y_std, (M, 1)), dtype=torch.float32)
    return GNNTrainResult(arch=dict(arch), tensors=tensors, split=sp, metrics=metrics, epochs_run=epochs_run)
