"""Descriptor specs (name + parameters -> hash) and the registry of featurizer variants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from matlib.errors import MatlibError
from matlib.hashing import spec_hash
from matlib.registry import Registry

# Bump when a change in code changes the numbers a spec produces (invalidates cached tables).
DESCRIPTORS_VERSION = 1

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Registered:
    """One registered descriptor: default parameters, input kind and the factory building it."""

    name: str
    input_kind: str
    defaults: dict[str, Any]
    factory: Callable[..., Any]
    version: int = DESCRIPTORS_VERSION
    doc: str = ""
    data_id: Callable[[], str] | None = None  # identifies data the numbers depend on (element table, ...)


# Filled at import: `matlib/descriptors/__init__.py` imports every built-in descriptor module, each of which
# registers its factories with `@register(...)` below.
DESCRIPTORS: Registry[Registered] = Registry("descriptor")


def register(
    name: str,
    input_kind: str,
    defaults: dict[str, Any] | None = None,
    version: int = DESCRIPTORS_VERSION,
    doc: str = "",
    data_id: Callable[[], str] | None = None,
) -> Callable[[F], F]:
    """Decorator registering a featurizer factory `factory(spec) -> Featurizer` under name."""

    def deco(factory: F) -> F:
        DESCRIPTORS.add(name, Registered(name, input_kind, dict(defaults or {}), factory, version, doc, data_id))
        return factory

    return deco


def registered(name: str) -> Registered:
    """The registry entry of name (MatlibError naming the known ones if absent)."""
    return DESCRIPTORS.get(name)


@dataclass(frozen=True)
class DescriptorSpec:
    """A named descriptor with its full parameters; `.hash` identifies the numbers it produces."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        entry = registered(self.name)
        unknown = set(self.params) - set(entry.defaults)
        if unknown:
            raise MatlibError(
                f"descriptor {self.name!r}: unknown parameter(s) {sorted(unknown)}; allowed: {sorted(entry.defaults)}"
            )
        object.__setattr__(self, "params", {**entry.defaults, **self.params})

    def __hash__(self) -> int:
        return hash(self.hash)

    @property
    def version(self) -> int:
        """Code version of this descriptor's implementation."""
        return registered(self.name).version

    @property
    def input_kind(self) -> str:
        """'composition' or 'molecule'."""
        return registered(self.name).input_kind

    @property
    def hash(self) -> str:
        """16-hex hash of name + full params + implementation version (+ the data it depends on)."""
        entry = registered(self.name)
        payload = {"name": self.name, "params": self.params, "version": self.version}
        if entry.data_id is not None:
            payload["data"] = entry.data_id()
        return spec_hash(payload)

    @property
    def dirname(self) -> str:
        """Folder name of this spec's tables: <name>-<hash>."""
        return f"{self.name}-{self.hash}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (name, params, version, hash)."""
        return {"name": self.name, "params": dict(self.params), "version": self.version, "hash": self.hash}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DescriptorSpec:
        """Inverse of to_dict (a stored hash that no longer matches raises MatlibError)."""
        spec = cls(d["name"], dict(d.get("params") or {}))
        if "hash" in d and d["hash"] != spec.hash:
            raise MatlibError(
                f"descriptor spec {d['name']!r}: stored hash {d['hash']} != {spec.hash} "
                "(the implementation version changed; rebuild the descriptors)"
            )
        return spec

    @classmethod
    def coerce(cls, spec: DescriptorSpec | str | dict[str, Any]) -> DescriptorSpec:
        """A spec from a spec, a registered name, or a dict."""
        if isinstance(spec, DescriptorSpec):
            return spec
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, dict):
            return cls.from_dict(spec)
        raise MatlibError(f"not a descriptor spec: {spec!r}")


def list_descriptors() -> list[dict[str, Any]]:
    """Every registered descriptor with its input kind and default parameters."""
    return [
        {"name": r.name, "input_kind": r.input_kind, "defaults": r.defaults, "version": r.version, "doc": r.doc}
        for r in (DESCRIPTORS.get(name) for name in DESCRIPTORS)
    ]
