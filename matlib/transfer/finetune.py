"""Fine-tuning learner: retrain a source model's layers after the frozen one, starting from its weights."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from matlib.errors import MatlibError
from matlib.models.mlp import BN_EPS
from matlib.models.stacked import ACT_FUNCS
from matlib.registry import Registry
from matlib.transfer.clamp import clip_to_training_range
from matlib.transfer.learner import LEARNERS, Learner, SourceContext
from matlib.transfer.threads import single_thread_torch

EPOCHS = 80
LR = 5e-3
L2_SP = 1e-2  # pull towards the source weights (L2-SP), relative to the data loss

# fine-tuning of source models other than MLPs, by arch["model"] (filled by matlib.transfer.learners at import)
SOURCE_FINETUNERS: Registry[Callable[[np.ndarray, np.ndarray, int, dict], dict[str, Any]]] = Registry("fine-tuner")


def _later_params(context: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    """Copies of the source tensors of every layer after the frozen one (model 0 of a one-model shard)."""
    arch, layer, t = context["arch"], int(context["layer"]), context["tensors"]
    keep = {}
    for i in range(layer + 1, len(arch["hidden"]) + 1):
        for k in (
            f"l{i}.weight",
            f"l{i}.bias",
            f"bn{i}.weight",
            f"bn{i}.bias",
            f"bn{i}.running_mean",
            f"bn{i}.running_var",
            f"width{i}",
        ):
            if k in t:
                keep[k] = t[k][0].detach().clone().to(torch.float32)
    return keep, arch


def _forward_hidden(p: dict[str, torch.Tensor], arch: dict, layer: int, h: torch.Tensor) -> torch.Tensor:
    """Last hidden activations from layer-`layer` features through the later hidden layers."""
    act = ACT_FUNCS[arch["activation"]]
    for i in range(layer + 1, len(arch["hidden"])):
        z = h @ p[f"l{i}.weight"].T + p[f"l{i}.bias"]
        if f"bn{i}.running_mean" in p:
            z = (z - p[f"bn{i}.running_mean"]) * torch.rsqrt(p[f"bn{i}.running_var"] + BN_EPS)
            z = z * p[f"bn{i}.weight"] + p[f"bn{i}.bias"]
        a = act(z)
        if f"width{i}" in p:
            a = a * (torch.arange(a.shape[1]) < p[f"width{i}"]).to(a.dtype)
        h = a
    return h


def _ridge_head(H: torch.Tensor, ys: torch.Tensor, lam: float = 1e-1) -> tuple[torch.Tensor, torch.Tensor]:
    """Output layer (weight [1,h], bias [1]) fitted by ridge on the last hidden activations."""
    m = H.mean(0)
    Hc = H - m
    w = torch.linalg.solve(Hc.T @ Hc + lam * len(H) * torch.eye(H.shape[1], dtype=H.dtype), Hc.T @ ys)
    return w.unsqueeze(0), (ys.mean() - m @ w).reshape(1)


def fit(X: np.ndarray, y: np.ndarray, seed: int, context: SourceContext | None = None) -> dict[str, Any]:
    """Fine-tune on one thread: these matrices are small, and extra threads only contend."""
    with single_thread_torch():
        return _fit_one_thread(X, y, seed, context)


def _fit_one_thread(X: np.ndarray, y: np.ndarray, seed: int, context: SourceContext | None = None) -> dict[str, Any]:
    """Fine-tune the later layers (output re-fitted first) on standardised targets, full batch, L2-SP."""
    if context is None:
        raise MatlibError("the finetune learner needs a source model (it only applies to transfer candidates)")
    model = context["arch"].get("model", "mlp")
    if model in SOURCE_FINETUNERS:  # another kind of source model (a GNN: matlib.transfer.gnn_finetune)
        return SOURCE_FINETUNERS.get(model)(X, y, seed, dict(context))
    p0, arch = _later_params(context)
    layer = int(context["layer"])
    n_hidden = len(arch["hidden"])
    Xt = torch.as_tensor(X, dtype=torch.float32)
    y_mean, y_std = float(np.mean(y)), float(np.std(y) or 1.0)
    ys = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32)
    with torch.no_grad():
        w, b = _ridge_head(_forward_hidden(p0, arch, layer, Xt), ys)
    p0[f"l{n_hidden}.weight"], p0[f"l{n_hidden}.bias"] = w, b
    train = [k for k in p0 if k.startswith("l") or (k.startswith("bn") and k.endswith(("weight", "bias")))]
    p = {k: v.clone().requires_grad_(k in train) for k, v in p0.items()}
    opt = torch.optim.Adam([p[k] for k in train], lr=LR, foreach=True)
    for _ in range(EPOCHS):
        opt.zero_grad()
        H = _forward_hidden(p, arch, layer, Xt)
        out = (H @ p[f"l{n_hidden}.weight"].T + p[f"l{n_hidden}.bias"]).squeeze(-1)
        loss = ((out - ys) ** 2).mean() + L2_SP * sum(((p[k] - p0[k]) ** 2).sum() for k in train) / len(ys)
        loss.backward()
        opt.step()
    state = {k: v.detach().numpy() for k, v in p.items()}
    state["meta"] = np.frombuffer(json.dumps({"arch": arch, "layer": layer}).encode(), dtype=np.uint8).copy()
    state["y_scale"] = np.array([y_mean, y_std])
    state["lo"], state["hi"] = X.min(axis=0).astype(np.float32), X.max(axis=0).astype(np.float32)
    return state


def predict(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Forward through the fine-tuned later layers, back in target units."""
    meta = json.loads(bytes(np.asarray(state["meta"], dtype=np.uint8)).decode())
    arch, layer = meta["arch"], int(meta["layer"])
    n_hidden = len(arch["hidden"])
    p = {k: torch.as_tensor(v) for k, v in state.items() if k not in ("meta", "y_scale", "lo", "hi")}
    X = clip_to_training_range(state, X)  # no extrapolation on outlying inputs
    with torch.no_grad():
        H = _forward_hidden(p, arch, layer, torch.as_tensor(X, dtype=torch.float32))
        out = (H @ p[f"l{n_hidden}.weight"].T + p[f"l{n_hidden}.bias"]).squeeze(-1).numpy()
    y_mean, y_std = state["y_scale"]
    return out * y_std + y_mean


@LEARNERS.register("finetune")
class FineTune(Learner):
    """The source model's layers after the frozen one, retrained from its weights (transfer candidates only)."""

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int, context: SourceContext | None = None) -> dict[str, Any]:
        """See `fit`."""
        return fit(X, y, seed, context)

    def predict(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
        """See `predict`."""
        return predict(state, X)
