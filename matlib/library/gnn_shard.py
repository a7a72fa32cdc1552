"""GNN shards: one model of a shard as a module, and every model's frozen features for many inputs at once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from matlib.errors import ValidationError
from matlib.graphs.batch import GraphSet
from matlib.library.shard import Shard
from matlib.models.gnn import GNNRegressor, param_shapes
from matlib.models.gnn_stacked import stacked_gnn_forward

FEATURE_BATCH = 512  # graphs per forward pass when extracting features


def is_gnn_shard(shard: Shard) -> bool:
    """True when the shard stores GNNs."""
    return shard.meta.get("model_type") == "gnn" or shard.arch.get("model") == "gnn"


def gnn_module(shard: Shard, m: int) -> GNNRegressor:
    """Model m of a GNN shard as a plain module (eval mode), predicting in the properties' units."""
    params = {k: shard.tensors[k][m].clone() for k in param_shapes(shard.arch)}
    model = GNNRegressor(shard.arch, params, shard.tensors["y_mean"][m], shard.tensors["y_std"][m])
    return model.eval()


@torch.no_grad()
def gnn_shard_features(
    shard: Shard, gs: GraphSet, rows: Sequence[int] | None = None, device: str | torch.device | None = None
) -> list[torch.Tensor]:
    """Frozen features [M, n, h] of every model for graphs gs: the pooled embedding, then each decoder layer."""
    if gs.n_node_features != int(shard.arch["n_node"]) or gs.n_edge_features != int(shard.arch["n_edge"]):
        raise ValidationError(
            f"shard {shard.name}: graphs have {gs.n_node_features} node / {gs.n_edge_features} "
            f"edge features, the models expect {shard.arch['n_node']} / {shard.arch['n_edge']}"
        )
    dev = torch.device(device) if device is not None else torch.device("cpu")
    p = {k: shard.tensors[k].to(dev) for k in param_shapes(shard.arch)}
    idx = np.arange(len(gs)) if rows is None else np.asarray(rows, dtype=np.int64)
    parts = [
        stacked_gnn_forward(p, shard.arch, gs.batch(idx[s : s + FEATURE_BATCH], dev), collect=True)[1]
        for s in range(0, len(idx), FEATURE_BATCH)
    ]
    return [torch.cat([part[layer] for part in parts], dim=1) for layer in range(len(parts[0]))]


@torch.no_grad()
def gnn_shard_predict(shard: Shard, gs: GraphSet) -> torch.Tensor:
    """Predictions [M, n, T] of every model in the properties' units."""
    p = {k: shard.tensors[k] for k in param_shapes(shard.arch)}
    outs = [
        stacked_gnn_forward(p, shard.arch, gs.batch(np.arange(s, min(s + FEATURE_BATCH, len(gs)))))[0]
        for s in range(0, len(gs), FEATURE_BATCH)
    ]
    return torch.cat(outs, dim=1) * shard.tensors["y_std"].unsqueeze(1) + shard.tensors["y_mean"].unsqueeze(1)


def gnn_code_features(shard: Shard, X: torch.Tensor, device: torch.device | None = None) -> list[torch.Tensor]:
    """Frozen features [M, n, h] per layer for molgraph codes X [n, CODE_WIDTH] (see matlib.graphs.code)."""
    from matlib.graphs.code import CODE_WIDTH, decode_codes

    if X.ndim != 2 or X.shape[1] != CODE_WIDTH:
        raise ValidationError(
            f"shard {shard.name}: inputs have shape {tuple(X.shape)}, expected molgraph codes [n, {CODE_WIDTH}]"
        )
    return gnn_shard_features(shard, decode_codes(X.detach().cpu().numpy()), device=device)
