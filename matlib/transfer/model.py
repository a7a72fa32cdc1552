"""The chosen transfer model on disk (JSON + safetensors + LightGBM text, no pickle) and its predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from matlib.atomic import atomic_write_json, read_json
from matlib.errors import IntegrityError, MatlibError
from matlib.transfer.composite import block_features, block_specs, load_block_shards, save_block_shards
from matlib.transfer.impute import featurize_imputed, load_medians, save_medians, spec_key
from matlib.transfer.intervals import interval_frame
from matlib.transfer.learners import get_learner
from matlib.transfer.run_manifest import confined, verify_run

FORMAT = "matlib-transfer-model/1"
MEMBER_KEYS = ("key", "kind", "descriptor_spec", "learner", "model_id", "layer")


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
    blocks: list[dict] | None = None  # composite members (matlib.transfer.composite): their feature recipe

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {
            "key": self.key,
            "kind": self.kind,
            "descriptor_spec": self.descriptor_spec,
            "learner": self.learner,
            "model_id": self.model_id,
            "layer": self.layer,
            "clip": self.clip,
            "weight": self.weight,
            **({"blocks": self.blocks} if self.blocks else {}),
        }


def member_specs(entry: dict[str, Any]) -> list[dict]:
    """The descriptor specs a saved member reads: its blocks' (composite) or its own."""
    return block_specs(entry["blocks"]) if entry.get("blocks") else [entry["descriptor_spec"]]


def member_features(member: Member, X: np.ndarray, extractor=None) -> np.ndarray:
    """The member's learner inputs: raw descriptors, or the frozen hidden layer of its source model."""
    if member.kind == "direct":
        return np.asarray(X, dtype=np.float64)
    from matlib.library import shard_hidden_features

    hidden = shard_hidden_features(extractor, torch.as_tensor(X, dtype=torch.float32), clip=member.clip)
    return hidden[member.layer][0].double().numpy()


def save_model(
    model_dir: Path,
    members: list[Member],
    extractors: dict[str, Any],
    states: dict[str, list[dict]],
    info: dict[str, Any],
    medians: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write model.json, one extractor shard per transfer member, every member's full + fold learners, and the
    training medians used to fill undefined descriptor values at predict time (into a new, empty model_dir)."""
    from matlib.library import write_shard

    model_dir = Path(model_dir)
    if model_dir.exists() and any(model_dir.iterdir()):
        raise MatlibError(f"{model_dir} is not empty; a model is saved only into a new folder")
    entries = []
    for i, m in enumerate(members):
        entry = m.to_dict()
        if m.blocks:
            entry["block_extractors"] = save_block_shards(model_dir, i, extractors.get(m.key, {}))
        elif m.kind == "transfer":
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
    if medians is not None:
        info = {**info, "impute": save_medians(model_dir, medians)}
    atomic_write_json(model_dir / "model.json", {"format": FORMAT, "members": entries, **info})
    return model_dir


def _finite_state(state: dict[str, Any], where: str) -> None:
    """Refuse a learner state holding a NaN or infinite weight (IntegrityError naming the file)."""
    for key, value in state.items():
        if key == "booster":  # LightGBM: the leaf values are the weights
            lines = [ln.split("=", 1)[1] for ln in value.model_to_string().splitlines() if ln.startswith("leaf_value=")]
            arr = np.array(" ".join(lines).split(), dtype=np.float64)
        else:
            arr = np.asarray(value)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise IntegrityError(f"{where}: non-finite weight in {key!r}; refusing to predict with it")


def load_model(run_dir: str | Path) -> dict[str, Any]:
    """The saved model of a complete, verified run (see run_manifest) with its extractors and learner states."""
    from matlib.library import read_shard
    from matlib.library.features import n_feature_layers

    run = verify_run(run_dir)
    model_dir = confined(run, "model", f"run {run}")
    path = model_dir / "model.json"
    try:
        spec = read_json(path)
    except ValueError as exc:
        raise IntegrityError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise MatlibError(
            f"{path}: unknown model format {spec.get('format') if isinstance(spec, dict) else None!r} "
            f"(expected {FORMAT})"
        )
    members = spec.get("members")
    if not isinstance(members, list) or not members:
        raise IntegrityError(f"{path}: no members; the model is damaged")
    for i, entry in enumerate(members):
        where = f"{path} member {i}"
        missing = [k for k in MEMBER_KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise IntegrityError(f"{where}: missing {', '.join(missing)}; the model is damaged")
        lr = get_learner(entry["learner"])
        fits = entry.get("fits")
        if not isinstance(fits, list) or not fits:
            raise IntegrityError(f"{where}: no fitted learner listed")
        entry["states"] = []
        for rel in fits:
            state = lr.load(confined(model_dir, rel, where))
            _finite_state(state, f"{where} ({rel})")
            entry["states"].append(state)
        entry["shard"] = None
        if entry.get("blocks"):
            entry["shards"] = load_block_shards(model_dir, entry, where)
        elif entry.get("kind") == "transfer" or entry.get("extractor"):
            shard = read_shard(confined(model_dir, entry.get("extractor"), where), None)
            for key, t in shard.tensors.items():
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    raise IntegrityError(
                        f"{where} ({entry['extractor']}): non-finite weight in {key!r}; refusing to predict with it"
                    )
            n_hidden = n_feature_layers(shard.arch)  # a GNN's: pooled embedding + decoder layers
            layer = entry.get("layer")
            if not isinstance(layer, int) or not 0 <= layer < n_hidden:
                raise IntegrityError(
                    f"{where}: layer {layer!r} does not exist (its source model has {n_hidden} hidden layers)"
                )
            entry["shard"] = shard
    spec["medians"] = load_medians(confined(model_dir, spec["impute"], str(path))) if spec.get("impute") else {}
    return spec


def _member_inputs(
    spec: dict[str, Any], inputs: list[str]
) -> tuple[dict[str, np.ndarray], list[str | None], list[list[str]]]:
    """Each member descriptor's features of the inputs (by spec key), each row's reason to have no prediction (None:
    it has one), and each row's notes (imputed descriptor values)."""
    n = len(inputs)
    reasons: list[str | None] = ["empty input" if not s else None for s in inputs]
    notes: list[list[str]] = [[] for _ in range(n)]
    medians = spec.get("medians", {})
    feats: dict[str, np.ndarray] = {}
    for desc in [d for entry in spec["members"] for d in member_specs(entry)]:
        h = spec_key(desc)
        if h in feats:
            continue
        X, ok, why, note = (
            featurize_imputed(inputs, desc, medians.get(h)) if n else (np.zeros((0, 0)), np.zeros(0, bool), [], [])
        )
        feats[h] = X
        for i in np.flatnonzero(~ok):
            if reasons[i] is None:
                reasons[i] = f"{desc.get('name')}: {why[i] or 'cannot be featurised'}"
        for j, text in enumerate(note):
            if text:
                notes[j].append(text)
    return feats, reasons, notes


def predict_transfer(run_dir: str | Path | dict, inputs: Sequence[str]) -> pd.DataFrame:
    """One row per input, in order: prediction (weighted mean of members), uncertainty (member/fold spread), reason
    (why a row has no prediction) and note (e.g. descriptor values imputed from the training medians)."""
    spec = run_dir if isinstance(run_dir, dict) else load_model(run_dir)
    inputs = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip() for v in inputs]
    n = len(inputs)
    feats, reasons, notes = _member_inputs(spec, inputs)
    good = np.array([r is None for r in reasons], dtype=bool)
    full, spread, weights, sds = [], [], [], []
    if good.any():
        for entry in spec["members"]:
            h = spec_key(entry["descriptor_spec"])
            member = Member(
                **{k: entry[k] for k in MEMBER_KEYS},
                clip=entry.get("clip", spec.get("input_clip")),  # older models: one clip per run
                weight=float(entry.get("weight", 1.0)),
            )  # older models: equal weights
            Z = (
                block_features(entry["blocks"], {k: v[good] for k, v in feats.items()}, entry["shards"])
                if entry.get("blocks")
                else member_features(member, feats[h][good], entry["shard"])
            )
            lr = get_learner(entry["learner"])
            preds = [lr.predict(state, Z) for state in entry["states"]]
            full.append(preds[0])
            weights.append(member.weight)
            if lr.has_sd:
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
    note = ["; ".join(x) if x and good[i] else None for i, x in enumerate(notes)]
    return pd.concat(
        [
            pd.DataFrame({"input": inputs, "prediction": pred, "uncertainty": unc}),
            bounds,
            pd.DataFrame({"reason": reasons, "note": note}),
        ],
        axis=1,
    )
