"""Reading library models for a fit: open a library, stream its shards, slice one model out, frozen features of
picked candidates, and the cross-validation of refinement items (the pieces fit.py and the composite options share)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from matlib.errors import MatlibError
from matlib.transfer.candidate import MemberKey
from matlib.transfer.cv import Folds, cross_validate
from matlib.transfer.learners import SourceContext
from matlib.transfer.screen import clip_value
from matlib.transfer.target import TargetFeatures


def open_library(library_dir: str | Path):
    """The library at library_dir (one-line error if it is not one)."""
    from matlib.library import Library

    path = Path(library_dir)
    if not path.exists():
        raise MatlibError(f"library not found: {path}")
    return Library(path)


def stream_shards(lib, names: Sequence[str] | None = None) -> Iterator[Any]:
    """Load shards one at a time without caching them (a library larger than memory streams)."""
    from matlib.library import read_shard

    records = lib.manifest.get("shards", {})
    catalog = lib.catalog
    for name in sorted(records) if names is None else names:
        yield read_shard(lib.shard_path(name), records[name]["sha256"], catalog[catalog["shard"] == name])


def slice_shard(shard, row: int):
    """A one-model Shard holding model `row` of shard (same padded arch, tensors [1, ...])."""
    from matlib.library import Shard

    tensors = {k: v[row : row + 1].clone() for k, v in shard.tensors.items()}
    mid = shard.model_ids[row] if row < len(shard.model_ids) else str(row)
    return Shard(
        name=f"{shard.name}-{row}",
        arch=dict(shard.arch),
        tensors=tensors,
        rows=pd.DataFrame({"model_id": [mid], "row": [0]}),
        meta={"model_ids": [mid]},
    )


def preferred_clip_rows(transfer: pd.DataFrame, column: str = "loo_mae") -> np.ndarray:
    """Mask of the transfer rows fed to their frozen layers the way that works better for their source descriptor.

    One choice per descriptor, by the median LOO MAE over all its (model, layer) candidates: evidence from
    every model of that descriptor, so the choice adds no per-candidate selection noise.
    """
    if transfer.empty:
        return np.zeros(0, dtype=bool)
    clip = transfer["clip"].astype(float).fillna(-1.0)  # -1: no clamp
    med = transfer.assign(_clip=clip).groupby(["descriptor_hash", "_clip"])[column].median().reset_index()
    best = med.sort_values([column, "_clip"], kind="mergesort").drop_duplicates("descriptor_hash")
    chosen = dict(zip(best["descriptor_hash"], best["_clip"]))
    return clip.to_numpy() == transfer["descriptor_hash"].map(chosen).to_numpy()


def candidate_features(
    lib: Any, picks: pd.DataFrame, target: TargetFeatures
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(features [n,h], one-model extractor shard) of each picked transfer candidate."""
    from matlib.library import shard_hidden_features

    cat = lib.catalog.set_index("model_id")
    feats, extractors = {}, {}
    picks = picks.assign(shard=picks["model_id"].map(cat["shard"]), row=picks["model_id"].map(cat["row"]))
    for shard in stream_shards(lib, sorted(picks["shard"].unique())):
        for p in picks[picks["shard"] == shard.name].to_dict("records"):
            ext = slice_shard(shard, int(p["row"]))
            X = torch.as_tensor(target.features[p["descriptor_hash"]], dtype=torch.float32)
            hidden = shard_hidden_features(ext, X, clip=clip_value(p["clip"]))
            feats[p["candidate"]] = hidden[int(p["layer"])][0].double().numpy()
            extractors[p["candidate"]] = ext
    return feats, extractors


def source_context(extractor: Any, layer: int) -> SourceContext | None:
    """Fine-tuning context: the source model's arch and its (one-model) stacked tensors."""
    if extractor is None:
        return None
    return {"arch": extractor.arch, "tensors": extractor.tensors, "layer": int(layer)}


@dataclass
class RefineItem:
    """One candidate on the refinement menu: its features and the learners cross-validated on them."""

    key: str  # the candidate id (CandidateId.format)
    kind: str  # "transfer" | "direct"
    X: np.ndarray  # features [n, h] of the usable target rows
    learners: list[str]
    context: SourceContext | None = None  # what fine-tuning needs of the source model (transfer only)


def refine(
    items: list[RefineItem], y: np.ndarray, folds: Folds, seed: int, sd_pool: dict[str, np.ndarray] | None = None
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Repeated K-fold CV of every (item, learner): the refinement table and the out-of-fold pool by member key.

    sd_pool, if given, receives the out-of-fold predictive sds of the learners that have them."""
    rows, pool = [], {}
    for it in items:
        for name in it.learners:
            res = cross_validate(it.X, y, folds, name, seed, it.context)
            key = MemberKey(it.key, name).format()
            pool[key] = res.oof
            if sd_pool is not None and res.oof_sd is not None:
                sd_pool[key] = res.oof_sd
            rows.append(
                {
                    "member": key,
                    "candidate": it.key,
                    "kind": it.kind,
                    "learner": name,
                    "cv_mae": res.mae,
                    "cv_rmse": res.rmse,
                    "cv_mae_sd": res.mae_sd,
                }
            )
    table = pd.DataFrame(rows).sort_values(["cv_mae", "member"], kind="mergesort").reset_index(drop=True)
    return table, pool
