"""Descriptor engine: registered specs, vectorised featurizers, Dask -> Parquet tables."""

from __future__ import annotations

from matlib.descriptors.base import FeatureResult, Featurizer
from matlib.descriptors.composition import parse_formula
from matlib.descriptors.spec import DescriptorSpec, list_descriptors, registered


def get_featurizer(spec: DescriptorSpec | str | dict) -> Featurizer:
    """The featurizer of a spec (or a registered name, or a spec dict)."""
    spec = DescriptorSpec.coerce(spec)
    return registered(spec.name).factory(spec)


from matlib.descriptors.build import build_descriptors, load_descriptors  # noqa: E402

__all__ = [
    "DescriptorSpec",
    "FeatureResult",
    "Featurizer",
    "build_descriptors",
    "get_featurizer",
    "list_descriptors",
    "load_descriptors",
    "parse_formula",
]
