"""Fine-tuning one library GNN end to end on a target's molecules: its decoder only, or all its layers.

What chemprop (`--checkpoint` with or without `--freeze-encoder`) and MatGL (fine-tuning a pretrained model at a
smaller learning rate) users expect: start from a pretrained graph network, re-fit the output for the new target
(ridge on the last decoder layer), then train either the decoder with message passing frozen (`layers="decoder"`)
or every layer, message passing at ENCODER_LR_SCALE times the decoder's learning rate (`layers="all"`), always
pulled towards the source weights (L2-SP). `layers="auto"` (the default) lets K-fold CV on the training rows choose
between the two, with the learning rate and the number of epochs; the test rows never take part. The result saves
as safetensors + a JSON spec (written last, with the weights' checksum), loads, and predicts new inputs in input
order (an input that does not featurise gets NaN and its reason).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from matlib.atomic import atomic_write_bytes, atomic_write_json, read_json
from matlib.errors import IntegrityError, ValidationError
from matlib.graphs.batch import GraphSet
from matlib.graphs.spec import GraphSpec
from matlib.hashing import sha256_bytes
from matlib.models.gnn import GNNRegressor
from matlib.transfer import finetune as ft
from matlib.transfer.gnn_finetune import EPOCH_GRID, INNER_FOLDS, LR_GRID

MODES = ("decoder", "all")
ENCODER_LR_SCALE = 0.1  # message passing learns this much slower than the decoder when all layers are tuned
PREDICT_BATCH = 512
WEIGHTS, SPEC = "tuned.safetensors", "tuned.json"


@dataclass
class TunedGNN:
    """A fine-tuned GNN: arch, parameters, the target's scaling, its graph spec and how it was tuned."""

    arch: dict
    params: dict[str, torch.Tensor]
    y_mean: float
    y_std: float
    graph: dict
    meta: dict = field(default_factory=dict)  # layers, lr, epochs, cv scores, source

    def module(self) -> GNNRegressor:
        """The model as a plain module (eval mode) predicting in the target's units."""
        model = GNNRegressor(self.arch, self.params, torch.tensor([self.y_mean]), torch.tensor([self.y_std]))
        return model.eval()

    def predict(self, inputs: Sequence[str]) -> pd.DataFrame:
        """Predictions for inputs in input order (columns input, prediction, reason; NaN where not featurised)."""
        gs, ok, reasons = GraphSpec.coerce(self.graph).featurize(list(inputs))
        pred = np.full(len(ok), np.nan)
        rows = np.flatnonzero(ok)
        model = self.module()
        with torch.no_grad():
            for s in range(0, len(rows), PREDICT_BATCH):
                part = rows[s : s + PREDICT_BATCH]
                pred[part] = model(gs.batch(part))[:, 0].double().numpy()
        return pd.DataFrame({"input": list(inputs), "prediction": pred, "reason": list(reasons)})

    def save(self, folder: str | Path) -> Path:
        """Write the weights, then the JSON spec naming their checksum (the spec last: it marks the model whole)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        data = st_save({k: v.detach().float().contiguous() for k, v in self.params.items()})
        atomic_write_bytes(out / WEIGHTS, data)
        spec = {"arch": self.arch, "y_mean": self.y_mean, "y_std": self.y_std, "graph": self.graph}
        atomic_write_json(out / SPEC, {**spec, "meta": self.meta, "sha256": sha256_bytes(data)})
        return out

    @classmethod
    def load(cls, folder: str | Path) -> TunedGNN:
        """A saved model, its weights checked against the spec's checksum (IntegrityError naming the file)."""
        folder = Path(folder)
        if not (folder / SPEC).exists():
            raise IntegrityError(f"{folder}: no {SPEC} (not a fine-tuned GNN, or its save did not finish)")
        spec = read_json(folder / SPEC)
        data = (folder / WEIGHTS).read_bytes()
        if sha256_bytes(data) != spec["sha256"]:
            raise IntegrityError(f"{folder / WEIGHTS}: checksum does not match {SPEC}")
        params = dict(st_load(data))
        return cls(spec["arch"], params, float(spec["y_mean"]), float(spec["y_std"]), spec["graph"], spec["meta"])


def _is_encoder(name: str) -> bool:
    """True for message-passing (and attention-pooling) parameters."""
    return name.startswith(("conv", "att"))


def _with_ridge_head(arch: dict, p: dict[str, torch.Tensor], gs: GraphSet, ys: torch.Tensor) -> tuple[dict, dict]:
    """(one-output arch, parameters with the output layer re-fitted by ridge on the last decoder layer)."""
    arch = {**arch, "n_out": 1}
    model = GNNRegressor(arch, {**p, "out.weight": p["out.weight"][:, :1], "out.bias": p["out.bias"][:1]})
    with torch.no_grad():
        H = model.embed(gs.batch(np.arange(len(gs))))[-1]
        w, b = ft._ridge_head(H, ys)
    return arch, {**p, "out.weight": w.T.contiguous(), "out.bias": b}


def _train(
    arch: dict,
    p0: dict[str, torch.Tensor],
    gs: GraphSet,
    ys: torch.Tensor,
    layers: str,
    lr: float,
    epochs: int,
    val: tuple[GraphSet, torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[int, float]]:
    """Full-batch Adam on the L2-SP objective from p0 (output re-fitted first); validation MAE at each epoch of
    EPOCH_GRID when val is given."""
    arch, p0 = _with_ridge_head(arch, p0, gs, ys)
    model = GNNRegressor(arch, p0)
    named = {k.replace("_", ".", 1): v for k, v in model.params.items()}
    dec = [v for k, v in named.items() if not _is_encoder(k)]
    enc = [v for k, v in named.items() if _is_encoder(k)]
    groups = [{"params": dec, "lr": lr}]
    if layers == "all":
        groups.append({"params": enc, "lr": lr * ENCODER_LR_SCALE})
    else:
        for v in enc:
            v.requires_grad_(False)
    trained = [(v, p0[k]) for k, v in named.items() if v.requires_grad]
    opt = torch.optim.Adam(groups, foreach=True)
    batch = gs.batch(np.arange(len(gs)))
    vbatch = val[0].batch(np.arange(len(val[0]))) if val is not None else None
    scores: dict[int, float] = {}
    for epoch in range(1, epochs + 1):
        opt.zero_grad()
        loss = ((model.forward_scaled(batch)[:, 0] - ys) ** 2).mean()
        loss = loss + ft.L2_SP * sum(((v - v0) ** 2).sum() for v, v0 in trained) / len(ys)
        loss.backward()
        opt.step()
        if vbatch is not None and val is not None and epoch in EPOCH_GRID:
            with torch.no_grad():
                scores[epoch] = float((model.forward_scaled(vbatch)[:, 0] - val[1]).abs().mean())
    return {k: v.detach().clone() for k, v in named.items()}, scores


def choose_schedule(
    arch: dict, p0: dict[str, torch.Tensor], gs: GraphSet, ys: torch.Tensor, modes: Sequence[str], seed: int
) -> tuple[str, float, int, dict[str, float]]:
    """(layers, learning rate, epochs, CV MAE of every choice) with the lowest K-fold CV MAE on these rows."""
    n = len(ys)
    order = np.random.default_rng([int(seed), 0x6A7]).permutation(n)
    folds = np.array_split(order, min(INNER_FOLDS, n))
    total: dict[tuple[str, float, int], float] = {}
    for mode in modes:
        for lr in LR_GRID:
            for f in folds:
                tr, va = np.setdiff1d(order, f), np.sort(f)
                _, scores = _train(arch, p0, gs.subset(tr), ys[tr], mode, lr, max(EPOCH_GRID), (gs.subset(va), ys[va]))
                for e, s in scores.items():
                    total[(mode, lr, e)] = total.get((mode, lr, e), 0.0) + s * len(f) / n
    # ties: the fewer trained layers, the fewer epochs, the smaller step
    best = min(total, key=lambda k: (total[k], MODES.index(k[0]), k[2], k[1]))
    return best[0], best[1], best[2], {f"{m}|{lr:g}|{e}": v for (m, lr, e), v in total.items()}


def training_graphs(inputs: Sequence[str], y: np.ndarray, graph: GraphSpec) -> GraphSet:
    """Graphs of the training inputs (one-line error naming the first input or target that cannot be used)."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) != len(inputs):
        raise ValidationError(f"gnn fine-tuning: {len(inputs)} inputs but {len(y)} targets")
    bad_y = np.flatnonzero(~np.isfinite(y))
    if len(bad_y):
        raise ValidationError(f"gnn fine-tuning: row {int(bad_y[0])}: target {y[bad_y[0]]!r} is not a finite number")
    gs, ok, reasons = graph.featurize(list(inputs))
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ValidationError(f"gnn fine-tuning: row {i}: input {inputs[i]!r} has no graph ({reasons[i]})")
    if len(y) < INNER_FOLDS + 1:
        raise ValidationError(f"gnn fine-tuning: {len(y)} rows; at least {INNER_FOLDS + 1} are needed")
    return gs


def finetune_gnn(
    source: GNNRegressor,
    inputs: Sequence[str],
    y: Sequence[float] | np.ndarray,
    layers: str = "auto",
    seed: int = 0,
    graph: GraphSpec | dict | str = "molgraph",
    source_id: str = "",
) -> TunedGNN:
    """Fine-tune a pretrained GNN (e.g. `Library.load_model(gnn_id)`) on (inputs, y).

    layers: "decoder" (message passing frozen), "all" (message passing at ENCODER_LR_SCALE x the decoder's
    learning rate) or "auto" (the one with the lower inner-CV MAE). The learning rate and epochs are always chosen by
    K-fold CV on these rows."""
    if layers not in (*MODES, "auto"):
        raise ValidationError(f"gnn fine-tuning: layers must be one of decoder, all, auto (got {layers!r})")
    spec = GraphSpec.coerce(graph)
    y = np.asarray(y, dtype=np.float64)
    gs = training_graphs(inputs, y, spec)
    torch.manual_seed(int(seed))
    y_mean, y_std = float(np.mean(y)), float(np.std(y) or 1.0)
    ys = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32)
    p0 = {k.replace("_", ".", 1): v.detach().clone().float() for k, v in source.params.items()}
    modes = MODES if layers == "auto" else (layers,)
    mode, lr, epochs, cv = choose_schedule(source.arch, p0, gs, ys, modes, seed)
    params, _ = _train(source.arch, p0, gs, ys, mode, lr, epochs)
    meta: dict[str, Any] = {"layers": mode, "asked": layers, "lr": lr, "epochs": epochs, "cv_mae": cv}
    meta.update(encoder_lr_scale=ENCODER_LR_SCALE, source=source_id, n_train=len(y))
    return TunedGNN({**source.arch, "n_out": 1}, params, y_mean, y_std, spec.to_dict(), json.loads(json.dumps(meta)))
