"""Adam for the hand-written training step: the fused kernel of ``torch.optim.Adam(fused=True)``, called directly.

``torch.optim.Adam.step`` spends about 0.3 ms of Python per call (profiler hooks, grouping tensors by
device) — as much as the update itself for a shard of small models. Same kernel, same maths; falls
back to ``torch.optim.Adam`` where the fused kernel is missing.
"""

from __future__ import annotations

import torch

import matlib.models.private_api as private_api

BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults
EPS = 1e-8


class FusedAdam:
    """Adam over a fixed list of tensors whose .grad the caller fills (no autograd involved)."""

    def __init__(self, params: list[torch.Tensor], lr: float, weight_decay: float = 0.0) -> None:
        self.params = params
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.kernel = private_api.PRIVATE_FUSED_ADAM
        self.fallback: torch.optim.Optimizer | None = None
        if self.kernel is None:
            self.fallback = public_adam(params, lr, weight_decay)
            return
        self.grads: list[torch.Tensor] = [p.grad for p in params if p.grad is not None]
        if len(self.grads) != len(params):
            raise ValueError("FusedAdam needs every parameter's .grad allocated first")
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every tensor from its .grad."""
        if self.kernel is None:
            assert self.fallback is not None
            self.fallback.step()
            return
        torch._foreach_add_(self.steps, 1)
        self.kernel(
            self.params,
            self.grads,
            self.exp_avg,
            self.exp_avg_sq,
            [],
            self.steps,
            amsgrad=False,
            lr=self.lr,
            beta1=BETAS[0],
            beta2=BETAS[1],
            weight_decay=self.weight_decay,
            eps=EPS,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )


def public_adam(params: list[torch.Tensor], lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """torch.optim.Adam with the fused kernel where the device has one (multi-tensor foreach otherwise)."""
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)
