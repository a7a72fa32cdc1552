"""M GNNs of one family evaluated at once on one graph batch.

Node states live as [N, M, w] (node-major), so each message-passing step is ONE sparse-dense product for all
models (Â @ H viewed as [N, M*w]); the first convolution's input is shared by every model, so its aggregation is
computed once and its weights applied as one [N, d] x [d, M*w] matrix product; later per-model weights are one
batched matmul over the model axis. The pooled embeddings and decoder layers are [M, G, w].
"""

from __future__ import annotations

import torch

from matlib.graphs.batch import GraphBatch
from matlib.models.gnn import activation, segment_softmax


def _shared_linear(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [N, d] (the same for every model) times per-model weights w [M, d, o] (+ bias [M, o]) -> [N, M, o], one
    matmul."""
    M, d, o = w.shape
    flat = w.permute(1, 0, 2).reshape(d, M * o)
    out = x @ flat if bias is None else torch.addmm(bias.reshape(1, M * o), x, flat)
    return out.view(x.shape[0], M, o)


def _model_linear(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """h [N, M, d] times per-model weights w [M, d, o] -> [N, M, o] (one batched matmul over models)."""
    return torch.bmm(h.transpose(0, 1).contiguous(), w).transpose(0, 1)  # strided bmm is ~3x slower on CPU


def stacked_node_states(p: dict[str, torch.Tensor], arch: dict, batch: GraphBatch) -> torch.Tensor:
    """Node states [N, M, width] of every model after the graph convolutions."""
    act = activation(arch["activation"])
    N = batch.x.shape[0]
    h = None
    for i in range(int(arch["depth"])):
        W, b = p[f"conv{i}.weight"], p.get(f"conv{i}.bias")
        if h is None:  # the first aggregation (Â x) is shared by every model: bias folded into its matmul
            z = _shared_linear(batch.ax, W, b)
            b = None
        else:
            M, w = h.shape[1], h.shape[2]
            z = _model_linear(batch.propagate(h.reshape(N, M * w)).view(N, M, w), W)
        if arch["edge_features"]:  # edge term and bias in one matmul
            z = z + _shared_linear(batch.edge_agg, p[f"conv{i}.edge_weight"], b)
        elif b is not None:
            z = z + b.unsqueeze(0)
        h = act(z)
    assert h is not None
    return h


def stacked_pool(p: dict[str, torch.Tensor], arch: dict, h: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
    """Graph embeddings [M, G, width] from node states [N, M, width]."""
    G, (N, M, w) = batch.n_graphs, h.shape
    if arch["pooling"] == "attention":
        s = (h * p["att.weight"].unsqueeze(0)).sum(-1) + p["att.bias"].view(1, -1)  # [N, M]
        h = segment_softmax(s, batch.graph, G).unsqueeze(-1) * h
    out = batch.pool(h.reshape(N, M * w), mean=arch["pooling"] == "mean").view(G, M, w)
    return out.transpose(0, 1)


def stacked_gnn_forward(
    p: dict[str, torch.Tensor], arch: dict, batch: GraphBatch, collect: bool = False
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(predictions [M, G, n_out] in standardised units, [pooled, decoder outputs...] each [M, G, w] if collect)."""
    act = activation(arch["activation"])
    h = stacked_pool(p, arch, stacked_node_states(p, arch, batch), batch)
    feats = [h] if collect else []
    for i in range(len(arch["decoder"])):
        h = act(torch.baddbmm(p[f"dec{i}.bias"].unsqueeze(1), h, p[f"dec{i}.weight"]))
        if collect:
            feats.append(h)
    return torch.baddbmm(p["out.bias"].unsqueeze(1), h, p["out.weight"]), feats
