"""M GNNs of one family evaluated at once on one graph batch.

Node states live model-major as [M, N, w], the layout batched matmuls read and write, so no step copies them into
another layout: each message-passing step is ONE sparse-dense product for all models (the batch's normalised
adjacency repeated M times along a block diagonal, on the states viewed as [M*N, w]), and per-model weights are
one batched matmul whose bias / edge term rides in as the added input (`baddbmm`). The first convolution's input
(Â x, and the aggregated edge features) is the same for every model: it is computed once per batch, restricted to
its columns that are nonzero in the batch (one-hot atom features leave most of them zero; the products over the
others add exact zeros, and their weights' gradients are exactly zero either way). Pooling is one more sparse
product per batch, straight into the decoder's [M, G, w] layout.
"""

from __future__ import annotations

import torch

from matlib.graphs.batch import GraphBatch
from matlib.models.gnn import activation, segment_softmax


def _nonzero_columns(t: torch.Tensor) -> torch.Tensor:
    """Indices of the columns of t [N, d] holding a nonzero entry."""
    return torch.nonzero((t != 0).any(dim=0)).view(-1)


def _shared_inputs(batch: GraphBatch, edge: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(the first convolution's input [N, k] = [Â x | edge_agg] over their nonzero columns, those columns of x and
    of edge_agg, edge_agg over its nonzero columns) for one batch."""
    cols_x = _nonzero_columns(batch.ax)
    cols_e = _nonzero_columns(batch.edge_agg) if edge else cols_x[:0]
    edge_in = batch.edge_agg.index_select(1, cols_e)
    first = torch.cat([batch.ax.index_select(1, cols_x), edge_in], dim=1) if edge else batch.ax.index_select(1, cols_x)
    return first.contiguous(), cols_x, cols_e, edge_in.contiguous()


def _per_model(x: torch.Tensor, M: int) -> torch.Tensor:
    """x [N, k], the same for every model, as a [M, N, k] batched-matmul operand (a view, no copy)."""
    return x.unsqueeze(0).expand(M, *x.shape)


def stacked_node_states(p: dict[str, torch.Tensor], arch: dict, batch: GraphBatch) -> torch.Tensor:
    """Node states [M, N, width] of every model after the graph convolutions."""
    act = activation(arch["activation"])
    edge = bool(arch["edge_features"])
    first, cols_x, cols_e, edge_in = batch.cached(("gnn_inputs", edge), lambda: _shared_inputs(batch, edge))
    W0 = p["conv0.weight"].index_select(1, cols_x)
    if edge:
        W0 = torch.cat([W0, p["conv0.edge_weight"].index_select(1, cols_e)], dim=1)
    M = W0.shape[0]
    h = act(torch.baddbmm(p["conv0.bias"].unsqueeze(1), _per_model(first, M), W0))
    for i in range(1, int(arch["depth"])):
        base = p[f"conv{i}.bias"].unsqueeze(1)
        if edge:  # edge term and bias: the added input of the convolution's batched matmul
            base = torch.baddbmm(base, _per_model(edge_in, M), p[f"conv{i}.edge_weight"].index_select(1, cols_e))
        h = act(torch.baddbmm(base, batch.propagate_models(h), p[f"conv{i}.weight"]))
    return h


def stacked_pool(p: dict[str, torch.Tensor], arch: dict, h: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
    """Graph embeddings [M, G, width] from node states [M, N, width]."""
    if arch["pooling"] == "attention":
        s = (h * p["att.weight"].unsqueeze(1)).sum(-1) + p["att.bias"].view(-1, 1)  # [M, N]
        h = segment_softmax(s.t(), batch.graph, batch.n_graphs).t().unsqueeze(-1) * h
    return batch.pool_models(h, mean=arch["pooling"] == "mean")


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
