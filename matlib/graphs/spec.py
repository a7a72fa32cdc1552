"""Graph specs: which featurisation turns a dataset's inputs into graphs (hashed, so caches never go stale)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matlib.errors import ValidationError
from matlib.hashing import spec_hash
from matlib.registry import Registry

FORMAT_VERSION = 1


@dataclass(frozen=True)
class GraphFeaturisation:
    """One registered graph featurisation."""

    kind: str  # input kind: "molecule" (SMILES) or "structure" (structure JSON)
    featurize: Callable  # (inputs, params) -> (graphs, ok, reasons)
    defaults: dict[str, Any]
    fingerprint: Callable[[], str]  # identifies the code/data the graphs depend on


# Filled at import by matlib.graphs.featurize (imported by the package __init__).
GRAPHS: Registry[GraphFeaturisation] = Registry("graph featurisation")


def register_graphs(name: str, kind: str, fn: Callable, defaults: dict, fingerprint: Callable[[], str]) -> None:
    """Register a graph featurisation under name."""
    GRAPHS.add(name, GraphFeaturisation(kind, fn, dict(defaults), fingerprint))


@dataclass(frozen=True)
class GraphSpec:
    """A graph featurisation and its parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in GRAPHS:
            raise ValidationError(f"unknown graph featurisation {self.name!r} (known: {', '.join(GRAPHS)})")
        defaults = GRAPHS.get(self.name).defaults
        unknown = sorted(set(self.params) - set(defaults))
        if unknown:
            raise ValidationError(f"graph spec {self.name}: unknown parameters {unknown} (known: {sorted(defaults)})")
        object.__setattr__(self, "params", {**defaults, **self.params})

    @property
    def kind(self) -> str:
        """Input kind: "molecule" (SMILES) or "structure" (structure JSON)."""
        return GRAPHS.get(self.name).kind

    @property
    def hash(self) -> str:
        """16 hex of name, parameters, format version and the featuriser's fingerprint."""
        return spec_hash([self.name, self.params, FORMAT_VERSION, GRAPHS.get(self.name).fingerprint()])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"name": self.name, "params": dict(self.params)}

    @classmethod
    def coerce(cls, value: GraphSpec | dict | str) -> GraphSpec:
        """A spec from a spec, a {"name", "params"} dict or a bare name."""
        if isinstance(value, GraphSpec):
            return value
        if isinstance(value, str):
            return cls(value)
        return cls(str(value["name"]), dict(value.get("params") or {}))

    def featurize(self, inputs: Sequence[str]):
        """(GraphSet of every input (failed ones empty), ok bool [n], reasons) for inputs."""
        return GRAPHS.get(self.name).featurize(list(inputs), self.params)


def empty_reasons(n: int) -> tuple[np.ndarray, list[str | None]]:
    """An all-False ok mask and n None reasons."""
    return np.zeros(n, dtype=bool), [None] * n
