"""Fine-tuning a GNN source's decoder with its message passing frozen; learning rate and epochs by inner CV.

A GNN candidate's frozen features are its pooled embedding (layer 0) or a decoder layer's output; what comes
after them is a small MLP (the rest of the decoder and the output layer). This module states it in the MLP
fine-tuner's terms (`decoder_context`) and fits it with `matlib.transfer.finetune`'s L2-SP objective, choosing
the learning rate and the number of epochs by K-fold CV on the rows it is given (a refinement fold's training
rows: the outer CV's held-out rows never take part). The state it returns is the MLP fine-tuner's, so
`finetune._predict` predicts with it and the run saves it like any learner state.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from matlib.transfer import finetune as ft

LR_GRID = (2e-3, 1e-2)
EPOCH_GRID = (20, 50, 100)
INNER_FOLDS = 3


def decoder_context(context: dict) -> dict:
    """A GNN fine-tuning context (arch, one-model tensors [1, ...], layer) restated as the MLP fine-tuner's."""
    arch, t = context["arch"], context["tensors"]
    hidden = [int(arch["width"])] + [int(h) for h in arch["decoder"]]
    mlp = {
        "n_in": int(arch["width"]),
        "hidden": hidden,
        "activation": arch["activation"],
        "batchnorm": False,
        "dropout": 0.0,
        "n_out": int(arch["n_out"]),
    }
    tensors = {}
    for j in range(1, len(hidden)):
        tensors[f"l{j}.weight"] = t[f"dec{j - 1}.weight"].transpose(1, 2).contiguous()
        tensors[f"l{j}.bias"] = t[f"dec{j - 1}.bias"]
    tensors[f"l{len(hidden)}.weight"] = t["out.weight"].transpose(1, 2).contiguous()
    tensors[f"l{len(hidden)}.bias"] = t["out.bias"]
    return {"arch": mlp, "tensors": tensors, "layer": int(context["layer"])}


def _train(
    p0: dict[str, torch.Tensor],
    arch: dict,
    layer: int,
    X: torch.Tensor,
    ys: torch.Tensor,
    lr: float,
    epochs: int,
    checkpoints: tuple[int, ...] = (),
    Xv: torch.Tensor | None = None,
    yv: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], dict[int, float]]:
    """Full-batch Adam on the L2-SP objective from p0 (output re-fitted by ridge first); validation MAE at
    each checkpoint epoch when (Xv, yv) are given."""
    n_hidden = len(arch["hidden"])
    p0 = dict(p0)
    with torch.no_grad():
        w, b = ft._ridge_head(ft._forward_hidden(p0, arch, layer, X), ys)
    p0[f"l{n_hidden}.weight"], p0[f"l{n_hidden}.bias"] = w, b
    train = [k for k in p0 if k.startswith("l")]
    p = {k: v.clone().requires_grad_(k in train) for k, v in p0.items()}
    opt = torch.optim.Adam([p[k] for k in train], lr=lr, foreach=True)
    scores: dict[int, float] = {}
    for epoch in range(1, epochs + 1):
        opt.zero_grad()
        out = (ft._forward_hidden(p, arch, layer, X) @ p[f"l{n_hidden}.weight"].T + p[f"l{n_hidden}.bias"]).squeeze(-1)
        loss = ((out - ys) ** 2).mean() + ft.L2_SP * sum(((p[k] - p0[k]) ** 2).sum() for k in train) / len(ys)
        loss.backward()
        opt.step()
        if epoch in checkpoints and Xv is not None and yv is not None:
            with torch.no_grad():
                pv = (
                    ft._forward_hidden(p, arch, layer, Xv) @ p[f"l{n_hidden}.weight"].T + p[f"l{n_hidden}.bias"]
                ).squeeze(-1)
                scores[epoch] = float((pv - yv).abs().mean())
    return {k: v.detach() for k, v in p.items()}, scores


def choose_schedule(
    p0: dict, arch: dict, layer: int, X: torch.Tensor, ys: torch.Tensor, seed: int
) -> tuple[float, int]:
    """(learning rate, epochs) with the lowest K-fold CV MAE on these rows (each fold's own scaling kept simple:
    the targets are already standardised on all of these rows, which are the learner's training rows)."""
    n = len(ys)
    k = min(INNER_FOLDS, n)
    order = np.random.default_rng([int(seed), 0x1F7]).permutation(n)
    folds = np.array_split(order, k)
    total: dict[tuple[float, int], float] = {}
    for lr in LR_GRID:
        for f in folds:
            tr = torch.as_tensor(np.setdiff1d(order, f))
            va = torch.as_tensor(np.sort(f))
            _, scores = _train(p0, arch, layer, X[tr], ys[tr], lr, max(EPOCH_GRID), EPOCH_GRID, X[va], ys[va])
            for e, s in scores.items():
                total[(lr, e)] = total.get((lr, e), 0.0) + s * len(f) / n
    return min(total, key=lambda key: (total[key], key[1], key[0]))


def fit_decoder(X: np.ndarray, y: np.ndarray, seed: int, context: dict) -> dict[str, Any]:
    """Fine-tune the GNN's decoder after the frozen layer; state in `finetune._predict`'s format."""
    ctx = decoder_context(context)
    p0, arch = ft._later_params(ctx)
    layer = int(ctx["layer"])
    torch.manual_seed(int(seed))
    Xt = torch.as_tensor(X, dtype=torch.float32)
    y_mean, y_std = float(np.mean(y)), float(np.std(y) or 1.0)
    ys = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32)
    lr, epochs = choose_schedule(p0, arch, layer, Xt, ys, seed)
    p, _ = _train(p0, arch, layer, Xt, ys, lr, epochs)
    state: dict[str, Any] = {k: v.numpy() for k, v in p.items()}
    state["meta"] = np.frombuffer(
        json.dumps({"arch": arch, "layer": layer, "lr": lr, "epochs": epochs, "source": "gnn-decoder"}).encode(),
        dtype=np.uint8,
    ).copy()
    state["y_scale"] = np.array([y_mean, y_std])
    state["lo"], state["hi"] = X.min(axis=0).astype(np.float32), X.max(axis=0).astype(np.float32)
    return state
