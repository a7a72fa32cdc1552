"""A training step of M stacked MLPs (no batch norm) with a hand-written backward pass.

Same maths as autograd through stacked_forward + per-model mean squared error, without the autograd
graph: gradients are written straight into preallocated .grad tensors (bmm/sum with out=), activations
use aten's fused backward kernels, and nothing is recorded or freed per step.
"""

from __future__ import annotations

import torch

from matlib.models.stacked import ACT_FUNCS


def _act_backward(name: str, g: torch.Tensor, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """d loss / d z from d loss / d act(z) for activation name (z: pre-activation, a: its output)."""
    ops = torch.ops.aten
    if name == "relu":
        return ops.threshold_backward(g, a, 0)
    if name == "tanh":
        return ops.tanh_backward(g, a)
    if name == "silu":
        return ops.silu_backward(g, z)
    if name == "leaky_relu":
        return ops.leaky_relu_backward(g, z, 0.01, False)
    if name == "elu":
        return ops.elu_backward(g, 1.0, 1, 1.0, False, z)
    if name == "softplus":
        return ops.softplus_backward(g, z, 1.0, 20.0)
    raise ValueError(f"unknown activation {name!r}")


def supports(arch: dict, amp: bool) -> bool:
    """True when the manual step covers arch (no batch norm, no autocast)."""
    return not arch["batchnorm"] and not amp and arch["activation"] in ACT_FUNCS


def ensure_grads(params: dict[str, torch.Tensor]) -> None:
    """Give every parameter a preallocated zero .grad (the manual step writes into it)."""
    for v in params.values():
        if v.grad is None:
            v.grad = torch.zeros_like(v)


def train_step(p: dict[str, torch.Tensor], arch: dict, xb: torch.Tensor, yb: torch.Tensor,
               masks: list[torch.Tensor] | None, dropout_gen: torch.Generator | None = None) -> torch.Tensor:
    """Forward + backward of M models on xb [M, B, d] (weights [M, in, out]); fills .grad, returns loss [M]."""
    name = arch["activation"]
    act = ACT_FUNCS[name]
    drop = float(arch["dropout"])
    n_hidden = len(arch["hidden"])
    with torch.no_grad():
        h, cache = xb, []
        for i in range(n_hidden):
            z = torch.baddbmm(p[f"l{i}.bias"].unsqueeze(1), h, p[f"l{i}.weight"])
            a = act(z)
            out = a if masks is None else a * masks[i].unsqueeze(1)
            keep = None
            if drop > 0:
                keep = (torch.rand(out.shape, device=out.device, generator=dropout_gen) >= drop).to(out.dtype)
                keep.mul_(1.0 / (1.0 - drop))
                out = out * keep
            cache.append((h, z, a, keep))
            h = out
        wl = p[f"l{n_hidden}.weight"]
        out = torch.baddbmm(p[f"l{n_hidden}.bias"].unsqueeze(1), h, wl)  # [M, B, 1]
        diff = out.squeeze(-1) - yb
        loss = diff.square().mean(dim=1)
        g = diff.mul_(2.0 / diff.shape[1]).unsqueeze(-1)  # d loss / d out, [M, B, 1]
        torch.bmm(h.transpose(1, 2), g, out=wl.grad)
        torch.sum(g, dim=1, out=p[f"l{n_hidden}.bias"].grad)
        gh = g * wl.transpose(1, 2)  # [M, B, h_last]
        for i in range(n_hidden - 1, -1, -1):
            h_in, z, a, keep = cache[i]
            if keep is not None:
                gh.mul_(keep)
            if masks is not None:
                gh.mul_(masks[i].unsqueeze(1))
            gz = _act_backward(name, gh, z, a)
            w = p[f"l{i}.weight"]
            torch.bmm(h_in.transpose(1, 2), gz, out=w.grad)
            torch.sum(gz, dim=1, out=p[f"l{i}.bias"].grad)
            if i > 0:
                gh = torch.bmm(gz, w.transpose(1, 2))
    return loss
