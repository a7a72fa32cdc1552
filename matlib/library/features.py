"""Frozen features: every hidden layer's output for all M models of a shard at once."""

from __future__ import annotations

import numpy as np
import torch

from matlib.errors import ValidationError
from matlib.library.shard import Shard
from matlib.models.stacked import stacked_forward


def n_feature_layers(arch: dict) -> int:
    """Layers a model offers as frozen features: an MLP's hidden layers; a GNN's pooled embedding + decoder layers."""
    if arch.get("model") == "gnn":
        return 1 + len(arch.get("decoder") or [])
    return len(arch.get("hidden") or [])


def shard_masks(shard: Shard, device: torch.device) -> list[torch.Tensor] | None:
    """Per hidden layer a [M, H_l] mask of each model's real units (None when no padding)."""
    masks, padded = [], False
    for i, H in enumerate(shard.arch["hidden"]):
        w = shard.tensors[f"width{i}"].to(device)
        padded |= bool((w < int(H)).any())
        masks.append((torch.arange(int(H), device=device)[None, :] < w[:, None]).to(torch.float32))
    return masks if padded else None


@torch.no_grad()
def shard_hidden_features(
    shard: Shard, X: np.ndarray | torch.Tensor, device: str | torch.device | None = None, clip: float | None = None
) -> list[torch.Tensor]:
    """Hidden outputs [M, n, H_l] per layer for raw inputs X [n, d_in], each model scaling X itself.

    Units beyond a model's own width (padding within a shard) are exactly zero. With clip, every standardised
    input is clamped to [-clip, clip] (in standard deviations of the model's training data) before the forward
    pass: inputs far outside the source's training data (a descriptor nearly constant there) then cannot
    saturate or blow up the hidden units.
    """
    x = torch.as_tensor(X)
    dev = torch.device(device) if device is not None else x.device
    if shard.arch.get("model") == "gnn":  # graph codes in, pooled embedding + decoder layers out (clip: n/a)
        from matlib.library.gnn_shard import gnn_code_features

        return gnn_code_features(shard, x, dev)
    x = x.to(dev, torch.float32)
    d_in = int(shard.arch["n_in"])
    if x.ndim != 2 or x.shape[1] != d_in:
        raise ValidationError(f"shard {shard.name}: inputs have shape {tuple(x.shape)}, expected [n, {d_in}]")
    t = {k: v.to(dev) for k, v in shard.tensors.items()}
    xs = (x.unsqueeze(0) - t["x_mean"].unsqueeze(1)) / t["x_std"].unsqueeze(1)
    if clip is not None:
        xs = xs.clamp(-float(clip), float(clip))
    _, hidden = stacked_forward(t, shard.arch, xs, shard_masks(shard, dev), training=False, collect=True)
    return hidden


@torch.no_grad()
def shard_predict(shard: Shard, X: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Predictions [M, n] of every model of the shard, in the property's units ([M, n, T] for multi-task GNNs,
    whose inputs are molgraph codes)."""
    x = torch.as_tensor(X, dtype=torch.float32)
    if shard.arch.get("model") == "gnn":
        from matlib.graphs.code import decode_codes
        from matlib.library.gnn_shard import gnn_shard_predict

        out = gnn_shard_predict(shard, decode_codes(x.numpy()))
        return out[..., 0] if out.shape[-1] == 1 else out
    t = shard.tensors
    xs = (x.unsqueeze(0) - t["x_mean"].unsqueeze(1)) / t["x_std"].unsqueeze(1)
    out, _ = stacked_forward(t, shard.arch, xs, shard_masks(shard, x.device), training=False)
    return out * t["y_std"].unsqueeze(1) + t["y_mean"].unsqueeze(1)
