"""One model as a plain torch module, and its seeded initial parameters (shared by both trainers)."""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

ACT_MODULES = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
}

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def torch_seed(seed: int, stream: int) -> int:
    """A 63-bit torch seed for one model seed and one random stream (init, shuffle, dropout)."""
    return (int(seed) * 1_000_003 + stream * 7_919 + 12_345) % (2**63 - 1)


def build_sequential(arch: dict) -> nn.Sequential:
    """The network of arch as nn.Sequential with names l{i}, bn{i}, act{i}, drop{i}."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    d = int(arch["n_in"])
    for i, h in enumerate(arch["hidden"]):
        layers[f"l{i}"] = nn.Linear(d, int(h))
        if arch["batchnorm"]:
            layers[f"bn{i}"] = nn.BatchNorm1d(int(h), eps=BN_EPS, momentum=BN_MOMENTUM)
        layers[f"act{i}"] = ACT_MODULES[arch["activation"]]()
        if float(arch["dropout"]) > 0:
            layers[f"drop{i}"] = nn.Dropout(float(arch["dropout"]))
        d = int(h)
    layers[f"l{len(arch['hidden'])}"] = nn.Linear(d, int(arch.get("n_out", 1)))
    return nn.Sequential(layers)


def init_params(arch: dict, seed: int) -> dict[str, torch.Tensor]:
    """Initial parameters of one model (nn.Linear's default uniform init), reproducible from seed."""
    g = torch.Generator().manual_seed(torch_seed(seed, 0))
    out: dict[str, torch.Tensor] = {}
    d = int(arch["n_in"])
    dims = [int(h) for h in arch["hidden"]] + [int(arch.get("n_out", 1))]
    for i, h in enumerate(dims):
        bound = 1.0 / math.sqrt(d)
        out[f"l{i}.weight"] = (torch.rand(h, d, generator=g) * 2 - 1) * bound
        out[f"l{i}.bias"] = (torch.rand(h, generator=g) * 2 - 1) * bound
        if arch["batchnorm"] and i < len(arch["hidden"]):
            out[f"bn{i}.weight"] = torch.ones(h)
            out[f"bn{i}.bias"] = torch.zeros(h)
            out[f"bn{i}.running_mean"] = torch.zeros(h)
            out[f"bn{i}.running_var"] = torch.ones(h)
        d = h
    return out


class MLPRegressor(nn.Module):
    """A trained model: input standardisation, the MLP body, and target un-scaling."""

    x_mean: torch.Tensor  # registered buffers
    x_std: torch.Tensor
    y_mean: torch.Tensor
    y_std: torch.Tensor

    def __init__(
        self, arch: dict, body: nn.Sequential, x_mean: torch.Tensor, x_std: torch.Tensor, y_mean: float, y_std: float
    ) -> None:
        super().__init__()
        self.arch = dict(arch)
        self.body = body
        self.register_buffer("x_mean", torch.as_tensor(x_mean, dtype=torch.float32).clone())
        self.register_buffer("x_std", torch.as_tensor(x_std, dtype=torch.float32).clone())
        self.register_buffer("y_mean", torch.tensor(float(y_mean)))
        self.register_buffer("y_std", torch.tensor(float(y_std)))

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise raw inputs with this model's stored training-split statistics."""
        return (x.to(self.x_mean.dtype) - self.x_mean) / self.x_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions [n] in the property's original units."""
        return self.body(self.scale(x)).squeeze(-1) * self.y_std + self.y_mean

    def hidden_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every hidden layer's post-activation output for raw inputs x (eval mode)."""
        h = self.scale(x)
        feats = []
        for name, module in self.body.named_children():
            h = module(h)
            if name.startswith("act"):
                feats.append(h)
        return feats


def build_module(
    arch: dict, params: dict[str, torch.Tensor], x_mean: torch.Tensor, x_std: torch.Tensor, y_mean: float, y_std: float
) -> MLPRegressor:
    """A ready (eval mode) MLPRegressor from one model's parameters and scaling."""
    body = build_sequential(arch)
    state = body.state_dict()
    for key in state:
        if key.endswith("num_batches_tracked"):
            continue
        state[key] = params[key].reshape(state[key].shape).to(torch.float32)
    body.load_state_dict(state)
    model = MLPRegressor(arch, body, x_mean, x_std, y_mean, y_std)
    return model.eval()
