"""The chosen transfer model on disk (JSON + safetensors + LightGBM text, no pickle) and its predictions."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from matlib.atomic import atomic_write_json, read_json
from matlib.errors import MatlibError
from matlib.transfer.intervals import interval_frame
from matlib.transfer.learners import get_learner

FORMAT = "matlib-transfer-model/1"


@dataclass
class Member:
    """One ensemble member: a feature source (frozen layer of a library model, or raw descriptor) + a learner."""

    key: str
    kind: str  # "transfer" | "direct"
    descriptor_spec: dict
    learner: str
    model_id: str = ""
    layer: int = -1
    clip: float | None = None  # target inputs clamped to +-clip source standard deviations before the frozen layers
    weight: float = 1.0  # share of the member in the model's weighted average prediction

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"key": self.key, "kind": self.kind, "descriptor_spec": self.descriptor_spec, "learner": self.learner,
                "model_id": self.model_id, "layer": self.layer, "clip": self.clip, "weight": self.weight}


def slice_shard(shard, row: int):
    """A one-model Shard holding model `row` of shard (same padded arch, tensors [1, ...])."""
    from matlib.library import Shard

    tensors = {k: v[row:row + 1].clone() for k, v in shard.tensors.items()}
    mid = shard.model_ids[row] if row < len(shard.model_ids) else str(row)
    return Shard(name=f"{shard.name}-{row}", arch=dict(shard.arch), tensors=tensors,
                 rows=pd.DataFrame({"model_id": [mid], "row": [0]}), meta={"model_ids": [mid]})


def member_features(member: Member, X: np.ndarray, extractor=None) -> np.ndarray:
    """The member's learner inputs: raw descriptors, or the frozen hidden layer of its source model."""
    if member.kind == "direct":
        return np.asarray(X, dtype=np.float64)
    from matlib.library import shard_hidden_features

    hidden = shard_hidden_features(extractor, torch.as_tensor(X, dtype=torch.float32), clip=member.clip)
    return hidden[member.layer][0].double().numpy()


def save_model(model_dir: Path, members: list[Member], extractors: dict[str, Any], states: dict[str, list[dict]],
               info: dict[str, Any]) -> Path:
    """Write model.json, one extractor shard per transfer member, and every member's full + fold learners."""
    from matlib.library import write_shard

    model_dir = Path(model_dir)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    entries = []
    for i, m in enumerate(members):
        entry = m.to_dict()
        if m.kind == "transfer":
            sh = extractors[m.key]
            rel = f"extractors/m{i}.safetensors"
            write_shard(model_dir / rel, sh.arch, sh.tensors, {"model_ids": sh.model_ids})
            entry["extractor"] = rel
        lr = get_learner(m.learner)
        entry["fits"] = []
        for j, state in enumerate(states[m.key]):
            rel = f"members/m{i}/fit{j}"
            lr.save(state, model_dir / rel)
            entry["fits"].append(rel)
        entries.append(entry)
    atomic_write_json(model_dir / "model.json", {"format": FORMAT, "members": entries, **info})
    return model_dir


def load_model(run_dir: str | Path) -> dict[str, Any]:
    """The saved model description with its extractors and learner states loaded."""
    from matlib.library import read_shard

    run_dir = Path(run_dir)
    model_dir = run_dir / "model" if (run_dir / "model" / "model.json").exists() else run_dir
    path = model_dir / "model.json"
    if not path.exists():
        raise MatlibError(f"{run_dir} holds no transfer model (no model/model.json); run `matlib transfer fit` first")
    spec = read_json(path)
    if spec.get("format") != FORMAT:
        raise MatlibError(f"{path}: unknown model format {spec.get('format')!r} (expected {FORMAT})")
    for entry in spec["members"]:
        lr = get_learner(entry["learner"])
        entry["states"] = [lr.load(model_dir / rel) for rel in entry["fits"]]
        entry["shard"] = read_shard(model_dir / entry["extractor"], None) if entry.get("extractor") else None
    return spec


def predict_transfer(run_dir: str | Path | dict, inputs: Sequence[str]) -> pd.DataFrame:
    """One row per input, in order: prediction (weighted mean of members), uncertainty (member/fold spread), reason."""
    from matlib.transfer.target import featurize_inputs

    spec = run_dir if isinstance(run_dir, dict) else load_model(run_dir)
    inputs = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip() for v in inputs]
    n = len(inputs)
    reasons: list[str | None] = ["empty input" if not s else None for s in inputs]
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for entry in spec["members"]:
        h = entry["descriptor_spec"].get("hash") or entry["descriptor_spec"]["name"]
        if h not in feats:
            X, ok, why, _ = featurize_inputs(inputs, entry["descriptor_spec"]) if n else (np.zeros((0, 0)), np.zeros(0, bool), [], "")
            feats[h] = (X, ok)
            for i in np.flatnonzero(~ok):
                if reasons[i] is None:
                    reasons[i] = f"{entry['descriptor_spec'].get('name')}: {why[i] or 'cannot be featurised'}"
    good = np.array([r is None for r in reasons], dtype=bool)
    full, spread, weights, sds = [], [], [], []
    if good.any():
        for entry in spec["members"]:
            h = entry["descriptor_spec"].get("hash") or entry["descriptor_spec"]["name"]
            member = Member(**{k: entry[k] for k in ("key", "kind", "descriptor_spec", "learner", "model_id", "layer")},
                            clip=entry.get("clip", spec.get("input_clip")),  # older models: one clip per run
                            weight=float(entry.get("weight", 1.0)))  # older models: equal weights
            Z = member_features(member, feats[h][0][good], entry["shard"])
            lr = get_learner(entry["learner"])
            preds = [lr.predict(state, Z) for state in entry["states"]]
            full.append(preds[0])
            weights.append(member.weight)
            if lr.predict_sd is not None:
                sds.append(lr.predict_sd(entry["states"][0], Z))
            spread.extend(preds[1:] if len(preds) > 1 else preds)
    pred = np.full(n, np.nan)
    unc = np.full(n, np.nan)
    if good.any():
        pred[good] = np.average(full, axis=0, weights=weights)
        unc[good] = np.std(np.vstack(spread + full), axis=0)
    sd = np.full(n, np.nan)
    if good.any() and len(sds) == len(full):  # every member has a predictive sd (Gaussian process)
        sd[good] = np.average(sds, axis=0, weights=weights)
    bounds = interval_frame(pred, spec.get("interval"), sd if len(sds) == len(full) and good.any() else None)
    return pd.concat([pd.DataFrame({"input": inputs, "prediction": pred, "uncertainty": unc}), bounds,
                      pd.DataFrame({"reason": reasons})], axis=1)
