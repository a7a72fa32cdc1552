"""A training step of M stacked MLPs (no batch norm) with a hand-written backward pass.

Same maths as autograd through stacked_forward + per-model mean squared error, without the autograd
graph: every activation and gradient is written into buffers allocated once per run (bmm/sum/activations
with out=), activations use aten's fused backward kernels, and nothing is recorded or freed per step.
"""

from __future__ import annotations

import torch

import matlib.models.private_api as private_api
from matlib.models.model_rows import ModelRows, gather_scaled
from matlib.models.stacked import ACT_FUNCS

_OPS = torch.ops.aten
_SILU_BACKWARD = _OPS.silu_backward.grad_input
_MINUS_ONE = torch.tensor(-1.0)  # a CPU scalar: fine next to tensors on any device


def _bias_act(name: str, z: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    """out = act(z + b) for z [m, n, h] and b [m, 1, h], in as few passes over z as possible.

    z is overwritten (with z + bias, or for tanh with 2 (z + bias): tanh's backward needs only out).
    tanh goes through the sigmoid kernel, 2 sigmoid(2x) - 1: the same function, several times faster on CPU.
    """
    if name == "tanh":
        torch.add(b * 2.0, z, alpha=2.0, out=z)
        torch.sigmoid(z, out=out)
        torch.add(_MINUS_ONE, out, alpha=2.0, out=out)
        return
    z.add_(b)
    if name == "relu":
        torch.clamp_min(z, 0.0, out=out)
    elif name == "silu":
        private_api.silu_out(z, out=out)
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
        _SILU_BACKWARD(g, z, grad_input=out)
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


def _grad(p: torch.Tensor) -> torch.Tensor:
    """p's preallocated .grad (see ensure_grads)."""
    if p.grad is None:
        raise ValueError("the manual step needs every parameter's .grad allocated (ensure_grads)")
    return p.grad


class _Chunk:
    """One chunk of models as the step sees it: every slice, transpose and buffer view made once.

    Views stay valid for the whole run: parameters, gradients and buffers are only ever updated in place.
    """

    def __init__(
        self,
        c0: int,
        c1: int,
        params: dict[str, torch.Tensor],
        n_layers: int,
        data: ModelRows,
        layer_bufs: dict[str, list[torch.Tensor]],
        bufs: dict[str, torch.Tensor],
        masks: list[torch.Tensor] | None,
    ) -> None:
        m = c1 - c0
        self.models, self.m = slice(c0, c1), m
        self.w = [params[f"l{i}.weight"][c0:c1] for i in range(n_layers)]  # [m, out, in]
        self.wt = [w.transpose(1, 2) for w in self.w]  # [m, in, out]
        self.b = [params[f"l{i}.bias"][c0:c1].unsqueeze(1) for i in range(n_layers)]  # [m, 1, out]
        self.gw = [_grad(params[f"l{i}.weight"])[c0:c1] for i in range(n_layers)]
        self.gb = [_grad(params[f"l{i}.bias"])[c0:c1] for i in range(n_layers)]  # [m, out]
        self.masks = None if masks is None else [mk[c0:c1].unsqueeze(1) for mk in masks]  # [m, 1, h]
        self.z, self.a, self.g = ([t[:m] for t in layer_bufs[k]] for k in ("z", "a", "g"))
        self.gt = [g.transpose(1, 2) for g in self.g]  # [m, h, B]
        self.x, self.y, self.out, self.diff = (bufs[k][:m] for k in ("x", "y", "out", "diff"))
        self.out_flat = self.out.squeeze(-1)  # [m, B]
        self.diff_row, self.diff_col = self.diff.unsqueeze(1), self.diff.unsqueeze(-1)
        self.gain, self.shift, self.targets = data.gain[c0:c1], data.shift[c0:c1], data.targets[c0:c1]
        self.b_out = params[f"l{n_layers - 1}.bias"][c0:c1]  # [m, 1]
        self.sq_sum = bufs["loss"][c0:c1].view(m, 1, 1)  # each model's sum of squared errors (the step scales it)


class ManualStep:
    """Forward + backward of M models on batches [M, B, d] (weights [M, out, in]) into preallocated buffers.

    Models are processed in chunks of `chunk` so that one chunk's activations and gradients stay in cache.
    """

    def __init__(
        self,
        params: dict[str, torch.Tensor],
        arch: dict,
        data: ModelRows,
        batch_size: int,
        masks: list[torch.Tensor] | None,
        dropout_gen: torch.Generator | None = None,
        chunk: int | None = None,
    ) -> None:
        ensure_grads(params)
        self.p, self.arch, self.data, self.masks, self.gen = params, arch, data, masks, dropout_gen
        self.act = arch["activation"]
        self.drop = float(arch["dropout"])
        self.n_hidden = len(arch["hidden"])
        w0 = params["l0.weight"]
        self.M, dev = w0.shape[0], w0.device
        self.chunk = min(self.M, chunk or self.M)

        def buf(width: int) -> torch.Tensor:
            return torch.empty((self.chunk, batch_size, int(width)), device=dev)

        widths = [int(h) for h in arch["hidden"]]
        layer_bufs = {
            "z": [buf(h) for h in widths],  # pre-activations
            "a": [buf(h) for h in widths],  # activations
            "g": [buf(h) for h in widths],
        }  # d loss / d activation, then (in place) d loss / d pre-activation
        self.loss = torch.empty(self.M, device=dev)
        bufs = {
            "x": buf(w0.shape[2]),  # the chunk's gathered inputs
            "y": torch.empty((self.chunk, batch_size), device=dev),  # and targets
            "out": buf(1),
            "diff": torch.empty((self.chunk, batch_size), device=dev),
            "loss": self.loss,
        }
        self._eval_buffers: dict[int, list[torch.Tensor]] = {}
        with torch.no_grad():  # plain views: nothing here is recorded for autograd
            self._chunks = [
                _Chunk(c0, min(c0 + self.chunk, self.M), params, self.n_hidden + 1, data, layer_bufs, bufs, masks)
                for c0 in range(0, self.M, self.chunk)
            ]

    def evaluate(self, params: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        """Outputs [M, n] (scaled units) of the models `params` (same shapes as training) on their rows idx [M, n]."""
        n = idx.shape[1]
        if n not in self._eval_buffers:  # validation and test rows: the same sizes every epoch
            dev = self.p["l0.weight"].device
            dims = [self.p["l0.weight"].shape[2], *(int(h) for h in self.arch["hidden"])]
            self._eval_buffers[n] = [torch.empty((self.chunk, n, d), device=dev) for d in dims]
        bufs = self._eval_buffers[n]
        out = torch.empty((self.M, n), device=idx.device)
        with torch.inference_mode():
            idx = idx.contiguous()
            for ch in self._chunks:  # the same chunks as training; `params` may be other tensors
                c0, c1 = ch.models.start, ch.models.stop
                h = gather_scaled(self.data.table, ch.gain, ch.shift, idx[ch.models], bufs[0][: ch.m])
                for i in range(self.n_hidden):
                    z = bufs[i + 1][: ch.m]
                    torch.bmm(h, params[f"l{i}.weight"][c0:c1].transpose(1, 2), out=z)
                    _bias_act(self.act, z, params[f"l{i}.bias"][c0:c1].unsqueeze(1), z)
                    if ch.masks is not None:
                        z.mul_(ch.masks[i])
                    h = z
                k = self.n_hidden
                torch.bmm(h, params[f"l{k}.weight"][c0:c1].transpose(1, 2), out=out[c0:c1].unsqueeze(-1))
                out[c0:c1].add_(params[f"l{k}.bias"][c0:c1])
        return out

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """Fill every parameter's .grad for the rows idx [M, B] of each model; returns the loss [M]."""
        with torch.inference_mode():
            idx = idx.contiguous()  # each chunk's rows then flatten without a copy
            for ch in self._chunks:
                rows = idx[ch.models]
                gather_scaled(self.data.table, ch.gain, ch.shift, rows, ch.x)  # per chunk: still in cache below
                self._chunk(ch, ch.x, torch.gather(ch.targets, 1, rows, out=ch.y))
            self.loss.div_(idx.shape[1])  # sums of squares -> mean squared errors
        return self.loss

    def _chunk(self, ch: _Chunk, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """One chunk: forward, its summed squared error into the loss, its gradients into the parameters' .grad."""
        n_hidden = self.n_hidden
        h, inputs, keeps = xb, [], []
        for i in range(n_hidden):
            torch.bmm(h, ch.wt[i], out=ch.z[i])
            _bias_act(self.act, ch.z[i], ch.b[i], ch.a[i])
            out = ch.a[i]
            if ch.masks is not None:
                out = out * ch.masks[i]
            keep = None
            if self.drop > 0:
                keep = (torch.rand(out.shape, device=out.device, generator=self.gen) >= self.drop).to(out.dtype)
                keep.mul_(1.0 / (1.0 - self.drop))
                out = out * keep
            inputs.append(h)
            keeps.append(keep)
            h = out
        torch.bmm(h, ch.wt[n_hidden], out=ch.out)  # [m, B, 1]
        diff = torch.sub(ch.out_flat, yb, out=ch.diff).add_(ch.b_out)
        torch.bmm(ch.diff_row, ch.diff_col, out=ch.sq_sum)
        diff.mul_(2.0 / diff.shape[1])  # d loss / d out
        torch.bmm(ch.diff_row, h, out=ch.gw[n_hidden])
        torch.sum(diff, dim=1, keepdim=True, out=ch.gb[n_hidden])
        gh = torch.mul(ch.diff_col, ch.w[n_hidden], out=ch.g[n_hidden - 1])  # [m, B, h_last]
        for i in range(n_hidden - 1, -1, -1):
            keep = keeps[i]
            if keep is not None:
                gh.mul_(keep)
            if ch.masks is not None:
                gh.mul_(ch.masks[i])
            _act_backward(self.act, gh, ch.z[i], ch.a[i], gh)  # in place: gh becomes d loss / d z
            torch.bmm(ch.gt[i], inputs[i], out=ch.gw[i])
            torch.sum(gh, dim=1, out=ch.gb[i])
            if i > 0:
                gh = torch.bmm(gh, ch.w[i], out=ch.g[i - 1])
