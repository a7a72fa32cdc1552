"""Graph specs: which featurisation turns a dataset's inputs into graphs (hashed, so caches never go stale)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matlib.errors import ValidationError
from matlib.hashing import spec_hash

FORMAT_VERSION = 1

# name -> (input kind, featurise(inputs, params) -> (graphs, ok, reasons), defaults, fingerprint of the code/data)
_REGISTRY: dict[str, tuple[str, Callable, dict, Callable[[], str]]] = {}


def register_graphs(name: str, kind: str, fn: Callable, defaults: dict, fingerprint: Callable[[], str]) -> None:
    """Register a graph featurisation under name."""
    _REGISTRY[name] = (kind, fn, dict(defaults), fingerprint)


@dataclass(frozen=True)
class GraphSpec:
    """A graph featurisation and its parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _ensure_registered()
        if self.name not in _REGISTRY:
            raise ValidationError(f"unknown graph featurisation {self.name!r} (known: {', '.join(sorted(_REGISTRY))})")
        defaults = _REGISTRY[self.name][2]
        unknown = sorted(set(self.params) - set(defaults))
        if unknown:
            raise ValidationError(f"graph spec {self.name}: unknown parameters {unknown} (known: {sorted(defaults)})")
        object.__setattr__(self, "params", {**defaults, **self.params})

    @property
    def kind(self) -> str:
        """Input kind: "molecule" (SMILES) or "structure" (structure JSON)."""
        return _REGISTRY[self.name][0]

    @property
    def hash(self) -> str:
        """16 hex of name, parameters, format version and the featuriser's fingerprint."""
        return spec_hash([self.name, self.params, FORMAT_VERSION, _REGISTRY[self.name][3]()])

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
        return _REGISTRY[self.name][1](list(inputs), self.params)


def _ensure_registered() -> None:
    """Import the modules that register the built-in graph featurisations."""
    if not _REGISTRY:
        import matlib.graphs.featurize  # noqa: F401


def empty_reasons(n: int) -> tuple[np.ndarray, list[str | None]]:
    """An all-False ok mask and n None reasons."""
    return np.zeros(n, dtype=bool), [None] * n
