"""Composite feature recipes: a learner's inputs built from several blocks, side by side.

A block is one of
- `{"type": "descriptor", "spec": S}`: the raw descriptor S of the input;
- `{"type": "prediction", "spec": S, "models": [ids], "label": L, "clip": c}`: one column, the mean prediction of the
  library models `ids` (all of one source property, fed descriptor S; with clip c, each model's inputs clamped to
  its training mean +- c standard deviations, as `hidden` blocks clamp theirs);
- `{"type": "hidden", "spec": S, "model": id, "layer": l, "clip": c}`: a frozen hidden layer of one library model.

Source predictions appended to descriptors (`source_features`) and multi-source stacks (`stacks`) are composite
members of a saved model: the recipe is stored as JSON in model.json and each library model it reads as a one-model
shard, so predict rebuilds exactly the columns the learner was fitted on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matlib.transfer.impute import spec_key
from matlib.transfer.source_models import RefineItem, slice_shard, stream_shards


def block_specs(blocks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct descriptor specs a recipe reads (first-seen order)."""
    seen: dict[str, dict[str, Any]] = {}
    for b in blocks:
        seen.setdefault(spec_key(b["spec"]), b["spec"])
    return list(seen.values())


def block_models(blocks: Iterable[dict[str, Any]]) -> list[str]:
    """The distinct library model ids a recipe reads (first-seen order)."""
    out: list[str] = []
    for b in blocks:
        for m in b.get("models", [b["model"]] if "model" in b else []):
            if m not in out:
                out.append(str(m))
    return out


def clamp_inputs(shard: Any, x: torch.Tensor, clip: float | None) -> torch.Tensor:
    """Raw inputs [n, d] clamped to a one-model shard's training mean +- clip standard deviations (None: as given):
    the same as clamping its standardised inputs to [-clip, clip]."""
    if clip is None:
        return x
    mean, std = shard.tensors["x_mean"][0], shard.tensors["x_std"][0]
    return torch.minimum(torch.maximum(x, mean - float(clip) * std), mean + float(clip) * std)


def _block(block: dict[str, Any], X: np.ndarray, shards: dict[str, Any]) -> np.ndarray:
    """The columns [n, d] of one block for raw descriptor values X of its spec."""
    from matlib.library import shard_hidden_features
    from matlib.library.features import shard_predict

    kind = block["type"]
    if kind == "descriptor":
        return np.asarray(X, dtype=np.float64)
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    if kind == "prediction":
        clip = block.get("clip")
        preds = [
            shard_predict(shards[m], clamp_inputs(shards[m], x, clip))[0].double().numpy() for m in block["models"]
        ]
        return np.mean(preds, axis=0).reshape(-1, 1)
    if kind == "hidden":
        hidden = shard_hidden_features(shards[block["model"]], x, clip=block.get("clip"))
        return hidden[int(block["layer"])][0].double().numpy()
    raise ValueError(f"unknown feature block type {kind!r}")


def block_features(
    blocks: list[dict[str, Any]], X_by_spec: dict[str, np.ndarray], shards: dict[str, Any]
) -> np.ndarray:
    """The recipe's columns [n, sum of block widths] (X_by_spec: spec_key -> raw features of the same rows)."""
    parts = [_block(b, X_by_spec[spec_key(b["spec"])], shards) for b in blocks]
    return np.concatenate(parts, axis=1) if parts else np.zeros((0, 0))


@dataclass
class CompositeItem:
    """A composite candidate of the menu: its recipe, its columns on the usable training rows, the library models
    it reads (model id -> one-model shard) and the learners it is cross-validated with."""

    key: str  # candidate id (CandidateId.of_composite), e.g. "composite:source+rdkit2d" or "composite:stack"
    kind: str  # "source" | "stack"
    blocks: list[dict[str, Any]]
    X: np.ndarray
    shards: dict[str, Any] = field(default_factory=dict)
    learners: list[str] = field(default_factory=list)

    def refine_item(self) -> RefineItem:
        """The RefineItem that `refine` cross-validates."""
        return RefineItem(self.key, self.kind, self.X, list(self.learners))


def load_models(lib: Any, model_ids: Iterable[str]) -> dict[str, Any]:
    """One-model shards of the given library models (model id -> Shard), read shard by shard."""

    ids = list(dict.fromkeys(str(m) for m in model_ids))
    cat = lib.catalog.set_index("model_id").loc[ids]
    out: dict[str, Any] = {}
    for shard in stream_shards(lib, sorted(cat["shard"].unique())):
        for mid, row in cat.loc[cat["shard"] == shard.name, "row"].items():
            out[str(mid)] = slice_shard(shard, int(row))
    return out


def save_block_shards(model_dir: Path, index: int, shards: dict[str, Any]) -> dict[str, str]:
    """Write a composite member's library models as one-model shards; returns model id -> path in model_dir."""
    from matlib.library import write_shard

    out = {}
    for j, (mid, sh) in enumerate(shards.items()):
        rel = f"extractors/m{index}-{j}.safetensors"
        write_shard(Path(model_dir) / rel, sh.arch, sh.tensors, {"model_ids": sh.model_ids})
        out[mid] = rel
    return out


def load_block_shards(model_dir: Path, entry: dict[str, Any], where: str) -> dict[str, Any]:
    """The saved one-model shards of a composite member (IntegrityError when one is missing, listed outside the
    model folder, holds a non-finite weight, or lacks a layer a block reads)."""
    from matlib.errors import IntegrityError
    from matlib.library import read_shard
    from matlib.library.features import n_feature_layers
    from matlib.transfer.run_manifest import confined

    paths = entry.get("block_extractors")
    if not isinstance(paths, dict):
        raise IntegrityError(f"{where}: composite member without its source models; the model is damaged")
    shards = {}
    for mid in block_models(entry["blocks"]):
        if mid not in paths:
            raise IntegrityError(f"{where}: source model {mid} of a feature block is not saved")
        shard = read_shard(confined(model_dir, paths[mid], where), None)
        for key, t in shard.tensors.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise IntegrityError(f"{where} ({paths[mid]}): non-finite weight in {key!r}; refusing to predict")
        shards[mid] = shard
    for b in entry["blocks"]:
        if b.get("type") == "hidden" and not 0 <= int(b.get("layer", -1)) < n_feature_layers(shards[b["model"]].arch):
            raise IntegrityError(f"{where}: feature block reads layer {b.get('layer')!r}, which its model lacks")
    return shards
