"""A training step of M stacked MLPs (no batch norm) with a hand-written backward pass.

Same maths as autograd through stacked_forward + per-model mean squared error, without the autograd
graph: every activation and gradient is written into buffers allocated once per run (bmm/sum/activations
with out=), activations use aten's fused backward kernels, and nothing is recorded or freed per step.
"""

from __future__ import annotations

import torch

from matlib.models.model_rows import ModelRows
from matlib.models.stacked import ACT_FUNCS

_OPS = torch.ops.aten
_MINUS_ONE = torch.tensor(-1.0)  # a CPU scalar: fine next to tensors on any device


def _bias_act(name: str, z: torch.Tensor, bias: torch.Tensor, out: torch.Tensor) -> None:
    """out = act(z + bias) for z [m, n, h] and bias [m, h], in as few passes over z as possible.

    z is overwritten (with z + bias, or for tanh with 2 (z + bias): tanh's backward needs only out).
    tanh goes through the sigmoid kernel, 2 sigmoid(2x) - 1: the same function, several times faster on CPU.
    """
    b = bias.unsqueeze(1)
    if name == "tanh":
        torch.add(b * 2.0, z, alpha=2.0, out=z)
        torch.sigmoid(z, out=out)
        torch.add(_MINUS_ONE, out, alpha=2.0, out=out)
        return
    z.add_(b)
    if name == "relu":
        torch.clamp_min(z, 0.0, out=out)
    elif name == "silu":
        _OPS.silu.out(z, out=out)
    elif name == "leaky_relu":
        _OPS.leaky_relu.out(z, 0.01, out=out)
    elif name == "elu":
        _OPS.elu.out(z, 1.0, 1, 1, out=out)
    elif name == "softplus":
        _OPS.softplus.out(z, 1.0, 20.0, out=out)
    else:
        raise ValueError(f"unknown activation {name!r}")


def _act_backward(name: str, g: torch.Tensor, z: torch.Tensor, a: torch.Tensor, out: torch.Tensor) -> None:
    """out = d loss / d z from g = d loss / d act(z) (z: pre-activation, a: its output)."""
    if name == "relu":
        _OPS.threshold_backward.grad_input(g, a, 0, grad_input=out)
    elif name == "tanh":
        _OPS.tanh_backward.grad_input(g, a, grad_input=out)
    elif name == "silu":
        _OPS.silu_backward.grad_input(g, z, grad_input=out)
    elif name == "leaky_relu":
        _OPS.leaky_relu_backward.grad_input(g, z, 0.01, False, grad_input=out)
    elif name == "elu":
        _OPS.elu_backward.grad_input(g, 1.0, 1, 1.0, False, z, grad_input=out)
    elif name == "softplus":
        _OPS.softplus_backward.grad_input(g, z, 1.0, 20.0, grad_input=out)
    else:
        raise ValueError(f"unknown activation {name!r}")


def supports(arch: dict, amp: bool) -> bool:
    """True when the manual step covers arch (no batch norm, no autocast)."""
    return not arch["batchnorm"] and not amp and arch["activation"] in ACT_FUNCS


def ensure_grads(params: dict[str, torch.Tensor]) -> None:
    """Give every parameter a preallocated zero .grad (the manual step writes into it)."""
    for v in params.values():
        if v.grad is None:
            v.grad = torch.zeros_like(v)


class ManualStep:
    """Forward + backward of M models on batches [M, B, d] (weights [M, out, in]) into preallocated buffers.

    Models are processed in chunks of `chunk` so that one chunk's activations and gradients stay in cache.
    """

    def __init__(self, params: dict[str, torch.Tensor], arch: dict, batch_size: int,
                 masks: list[torch.Tensor] | None, dropout_gen: torch.Generator | None = None,
                 chunk: int | None = None) -> None:
        ensure_grads(params)
        self.p, self.arch, self.masks, self.gen = params, arch, masks, dropout_gen
        self.act = arch["activation"]
        self.drop = float(arch["dropout"])
        self.n_hidden = len(arch["hidden"])
        w0 = params["l0.weight"]
        self.M, dev = w0.shape[0], w0.device
        self.chunk = min(self.M, chunk or self.M)

        def buf(width: int) -> torch.Tensor:
            return torch.empty((self.chunk, batch_size, int(width)), device=dev)

        widths = [int(h) for h in arch["hidden"]]
        self.z = [buf(h) for h in widths]  # pre-activations
        self.a = [buf(h) for h in widths]  # activations
        self.g = [buf(h) for h in widths]  # d loss / d activation, then (in place) d loss / d pre-activation
        self.x = buf(params["l0.weight"].shape[2])  # the chunk's gathered inputs
        self.out = buf(1)
        self.diff = torch.empty((self.chunk, batch_size), device=dev)
        self.loss = torch.empty(self.M, device=dev)
        self._eval_buffers: dict[int, list[torch.Tensor]] = {}
        self._chunks = []  # per chunk: (c0, c1, parameter views, gradient views, mask views), made once
        for c0 in range(0, self.M, self.chunk):
            c1 = min(c0 + self.chunk, self.M)
            self._chunks.append((c0, c1, {k: v[c0:c1] for k, v in params.items()},
                                 {k: v.grad[c0:c1] for k, v in params.items()},
                                 None if masks is None else [m[c0:c1] for m in masks]))

    def evaluate(self, params: dict[str, torch.Tensor], data: ModelRows, idx: torch.Tensor) -> torch.Tensor:
        """Outputs [M, n] (scaled units) of the models `params` (same shapes as training) on their rows idx [M, n]."""
        n = idx.shape[1]
        if n not in self._eval_buffers:  # validation and test rows: the same sizes every epoch
            dev = self.p["l0.weight"].device
            dims = [self.p["l0.weight"].shape[2], *(int(h) for h in self.arch["hidden"])]
            self._eval_buffers[n] = [torch.empty((self.chunk, n, d), device=dev) for d in dims]
        bufs = self._eval_buffers[n]
        out = torch.empty((self.M, n), device=idx.device)
        with torch.no_grad():
            for c0, c1, *_ in self._chunks:  # the same chunks as training; `params` may be other tensors
                m = c1 - c0
                h, _ = data.rows(idx[c0:c1], bufs[0], slice(c0, c1))
                for i in range(self.n_hidden):
                    z = bufs[i + 1][:m]
                    torch.bmm(h, params[f"l{i}.weight"][c0:c1].transpose(1, 2), out=z)
                    _bias_act(self.act, z, params[f"l{i}.bias"][c0:c1], z)
                    if self.masks is not None:
                        z.mul_(self.masks[i][c0:c1].unsqueeze(1))
                    h = z
                k = self.n_hidden
                torch.bmm(h, params[f"l{k}.weight"][c0:c1].transpose(1, 2), out=out[c0:c1].unsqueeze(-1))
                out[c0:c1].add_(params[f"l{k}.bias"][c0:c1])
        return out

    def __call__(self, data: ModelRows, idx: torch.Tensor) -> torch.Tensor:
        """Fill every parameter's .grad for the rows idx [M, B] of each model; returns the loss [M]."""
        with torch.no_grad():
            for c0, c1, p, g, masks in self._chunks:
                xb, yb = data.rows(idx[c0:c1], self.x, slice(c0, c1))  # gathered per chunk: still in cache below
                self.loss[c0:c1] = self._chunk(p, g, masks, xb, yb, c1 - c0)
        return self.loss

    def _chunk(self, p: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], masks: list[torch.Tensor] | None,
               xb: torch.Tensor, yb: torch.Tensor, m: int) -> torch.Tensor:
        """One chunk of m models: forward, loss [m], and gradients written into grads."""
        n_hidden = self.n_hidden
        h, inputs, keeps = xb, [], []
        for i in range(n_hidden):
            z, a = self.z[i][:m], self.a[i][:m]
            torch.bmm(h, p[f"l{i}.weight"].transpose(1, 2), out=z)
            _bias_act(self.act, z, p[f"l{i}.bias"], a)
            out = a
            if masks is not None:
                out = a * masks[i].unsqueeze(1)
            keep = None
            if self.drop > 0:
                keep = (torch.rand(out.shape, device=out.device, generator=self.gen) >= self.drop).to(out.dtype)
                keep.mul_(1.0 / (1.0 - self.drop))
                out = out * keep
            inputs.append(h)
            keeps.append(keep)
            h = out
        wl, bl = p[f"l{n_hidden}.weight"], p[f"l{n_hidden}.bias"]  # [m, 1, h_last], [m, 1]
        o = self.out[:m]
        torch.bmm(h, wl.transpose(1, 2), out=o)  # [m, B, 1]
        diff = torch.sub(o.squeeze(-1), yb, out=self.diff[:m]).add_(bl)
        loss = diff.square().mean(dim=1)
        gout = diff.mul_(2.0 / diff.shape[1]).unsqueeze(-1)  # d loss / d out, [m, B, 1]
        torch.bmm(gout.transpose(1, 2), h, out=grads[f"l{n_hidden}.weight"])
        torch.sum(gout.squeeze(-1), dim=1, keepdim=True, out=grads[f"l{n_hidden}.bias"])
        gh = torch.mul(gout, wl, out=self.g[n_hidden - 1][:m])  # [m, B, h_last]
        for i in range(n_hidden - 1, -1, -1):
            if keeps[i] is not None:
                gh.mul_(keeps[i])
            if masks is not None:
                gh.mul_(masks[i].unsqueeze(1))
            _act_backward(self.act, gh, self.z[i][:m], self.a[i][:m], gh)  # in place: gh becomes d loss / d z
            w = p[f"l{i}.weight"]
            torch.bmm(gh.transpose(1, 2), inputs[i], out=grads[f"l{i}.weight"])
            torch.sum(gh, dim=1, out=grads[f"l{i}.bias"])
            if i > 0:
                gh = torch.bmm(gh, w, out=self.g[i - 1][:m])
        return loss
