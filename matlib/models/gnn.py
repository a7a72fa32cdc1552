"""Graph convolutional networks: random architectures, seeded parameters, one model as a plain torch module.

An architecture (plain JSON) is `{"model": "gnn", "n_node", "n_edge", "edge_features", "depth", "width",
"pooling", "decoder": [widths], "activation", "n_out"}`: `depth` graph convolutions of `width` units
(h' = act(Â h W + b), Â the normalised adjacency with self loops; with `edge_features`, the bond / distance
features aggregated the same way enter every convolution through their own weights), a readout (`mean`, `sum`,
or gated `attention`), a decoder of fully connected layers and a linear output of `n_out` properties. Weights
are stored as [in, out]. Models of one family share every key but their seed, so they stack without padding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from matlib.errors import ValidationError
from matlib.graphs.batch import GraphBatch
from matlib.models.mlp import torch_seed
from matlib.models.stacked import ACT_FUNCS

Activation = Callable[[torch.Tensor], torch.Tensor]


def activation(name: str) -> Activation:
    """The registered activation function called name."""
    return cast(Activation, ACT_FUNCS[name])


POOLINGS = ("mean", "sum", "attention")

GNN_SPACE: dict[str, Any] = {
    "depth": [1, 8],  # message-passing layers (inclusive range)
    "width": [32, 64, 128],
    "pooling": list(POOLINGS),
    "decoder_layers": [1, 3],  # fully connected layers after pooling (inclusive range)
    "decoder_width": [32, 64, 128],
    "activation": ["relu", "silu", "softplus"],
    "edge_features": [True, False],
}


def resolve_gnn_space(space: dict[str, Any] | None) -> dict[str, Any]:
    """The default GNN space updated with overrides (unknown keys and values rejected)."""
    merged = dict(GNN_SPACE)
    for key, value in (space or {}).items():
        if key not in GNN_SPACE:
            raise ValidationError(f"gnn architecture space: unknown key {key!r} (known: {sorted(GNN_SPACE)})")
        merged[key] = value
    for p in merged["pooling"]:
        if p not in POOLINGS:
            raise ValidationError(f"gnn architecture space: unknown pooling {p!r} (known: {POOLINGS})")
    for a in merged["activation"]:
        if a not in ACT_FUNCS:
            raise ValidationError(f"gnn architecture space: unknown activation {a!r} (known: {sorted(ACT_FUNCS)})")
    for key in ("depth", "decoder_layers"):
        lo, hi = merged[key]
        if not 0 <= int(lo) <= int(hi) or (key == "depth" and int(lo) < 1):
            raise ValidationError(f"gnn architecture space: {key} range {merged[key]} is invalid")
    return merged


def sample_gnn_architecture(
    n_node: int, n_edge: int, seed: int, space: dict[str, Any] | None = None, n_out: int = 1
) -> dict:
    """A random GNN spec (plain JSON) reproducible from seed (pass the family's seed: a family shares its arch)."""
    sp = resolve_gnn_space(space)
    rng = np.random.default_rng([int(seed), 0x6A7])
    dlo, dhi = (int(v) for v in sp["depth"])
    llo, lhi = (int(v) for v in sp["decoder_layers"])
    n_dec = int(rng.integers(llo, lhi + 1))
    pick = lambda values: values[int(rng.integers(len(values)))]  # noqa: E731
    return {
        "model": "gnn",
        "n_node": int(n_node),
        "n_edge": int(n_edge),
        "depth": int(rng.integers(dlo, dhi + 1)),
        "width": int(pick(sp["width"])),
        "pooling": str(pick(sp["pooling"])),
        "decoder": [int(pick(sp["decoder_width"])) for _ in range(n_dec)],
        "activation": str(pick(sp["activation"])),
        "edge_features": bool(pick(sp["edge_features"])),
        "n_out": int(n_out),
    }


def is_gnn(arch: dict) -> bool:
    """True for a GNN arch (MLP archs have no "model" key)."""
    return arch.get("model") == "gnn"


def family_key(arch: dict) -> str:
    """Models with equal keys stack without padding."""
    import json

    return json.dumps(arch, sort_keys=True)


def param_shapes(arch: dict) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter of one model, in a fixed order."""
    w, de = int(arch["width"]), int(arch["n_edge"])
    shapes: dict[str, tuple[int, ...]] = {}
    d = int(arch["n_node"])
    for i in range(int(arch["depth"])):
        shapes[f"conv{i}.weight"] = (d, w)
        if arch["edge_features"]:
            shapes[f"conv{i}.edge_weight"] = (de, w)
        shapes[f"conv{i}.bias"] = (w,)
        d = w
    if arch["pooling"] == "attention":
        shapes["att.weight"] = (w,)
        shapes["att.bias"] = (1,)
    for i, h in enumerate(arch["decoder"]):
        shapes[f"dec{i}.weight"] = (d, int(h))
        shapes[f"dec{i}.bias"] = (int(h),)
        d = int(h)
    shapes["out.weight"] = (d, int(arch["n_out"]))
    shapes["out.bias"] = (int(arch["n_out"]),)
    return shapes


def init_gnn_params(arch: dict, seed: int) -> dict[str, torch.Tensor]:
    """Initial parameters, uniform in +-1/sqrt(fan_in) of their layer (node + edge inputs for a convolution),
    reproducible from seed."""
    g = torch.Generator().manual_seed(torch_seed(seed, 10))
    shapes = param_shapes(arch)
    out = {}
    for name, shape in shapes.items():
        layer, _, kind = name.partition(".")
        weight = shapes.get(f"{layer}.weight", shape)
        fan_in = weight[0] + (shapes[f"{layer}.edge_weight"][0] if f"{layer}.edge_weight" in shapes else 0)
        bound = 1.0 / math.sqrt(max(1, fan_in))  # a layer's weights and bias share its fan-in (nn.Linear's rule)
        out[name] = (torch.rand(shape, generator=g) * 2 - 1) * bound
    return out


def stack_gnn_params(params: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per-model parameter dicts stacked along a new leading model axis."""
    return {k: torch.stack([p[k] for p in params]).contiguous() for k in params[0]}


def segment_softmax(scores: torch.Tensor, graph: torch.Tensor, n_graphs: int) -> torch.Tensor:
    """Softmax of scores [N, ...] over the nodes of each graph."""
    shape = (n_graphs,) + tuple(scores.shape[1:])
    idx = graph.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
    smax = torch.full(shape, -torch.inf, dtype=scores.dtype, device=scores.device)
    smax = smax.scatter_reduce(0, idx, scores.detach(), "amax", include_self=True)
    e = torch.exp(scores - smax.index_select(0, graph))
    denom = torch.zeros(shape, dtype=scores.dtype, device=scores.device).index_add_(0, graph, e)
    return e / denom.index_select(0, graph)


class GNNRegressor(nn.Module):
    """One GNN (reference implementation and what `Library.load_model` returns for a GNN id).

    forward(batch) gives predictions [n_graphs, n_out] in the properties' units; `embed(batch)` gives the pooled
    embedding and every decoder layer's output, the frozen features transfer uses.
    """

    def __init__(
        self,
        arch: dict,
        params: dict[str, torch.Tensor],
        y_mean: torch.Tensor | None = None,
        y_std: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.arch = dict(arch)
        self.params = nn.ParameterDict(
            {k.replace(".", "_"): nn.Parameter(v.clone().float()) for k, v in params.items()}
        )
        n_out = int(arch["n_out"])
        self.register_buffer("y_mean", torch.zeros(n_out) if y_mean is None else y_mean.float().reshape(n_out))
        self.register_buffer("y_std", torch.ones(n_out) if y_std is None else y_std.float().reshape(n_out))

    def p(self, name: str) -> torch.Tensor:
        """One parameter by its stored name."""
        return self.params[name.replace(".", "_")]

    def node_states(self, batch: GraphBatch) -> torch.Tensor:
        """Node states [N, width] after the graph convolutions."""
        act = activation(self.arch["activation"])
        h = batch.x
        for i in range(int(self.arch["depth"])):
            z = batch.propagate(h) @ self.p(f"conv{i}.weight") + self.p(f"conv{i}.bias")
            if self.arch["edge_features"]:
                z = z + batch.edge_agg @ self.p(f"conv{i}.edge_weight")
            h = act(z)
        return h

    def pool(self, h: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        """Graph embeddings [G, width]."""
        if self.arch["pooling"] == "attention":
            a = segment_softmax(h @ self.p("att.weight") + self.p("att.bias"), batch.graph, batch.n_graphs)
            h = a.unsqueeze(1) * h
        return batch.pool(h, mean=self.arch["pooling"] == "mean")

    def embed(self, batch: GraphBatch) -> list[torch.Tensor]:
        """[pooled embedding, decoder layer 0 output, ...]: the frozen features of transfer."""
        act = activation(self.arch["activation"])
        h = self.pool(self.node_states(batch), batch)
        feats = [h]
        for i in range(len(self.arch["decoder"])):
            h = act(h @ self.p(f"dec{i}.weight") + self.p(f"dec{i}.bias"))
            feats.append(h)
        return feats

    def forward_scaled(self, batch: GraphBatch) -> torch.Tensor:
        """Predictions [G, n_out] in standardised units (what training fits)."""
        return self.embed(batch)[-1] @ self.p("out.weight") + self.p("out.bias")

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """Predictions [G, n_out] in the properties' units."""
        return self.forward_scaled(batch) * self.get_buffer("y_std") + self.get_buffer("y_mean")
