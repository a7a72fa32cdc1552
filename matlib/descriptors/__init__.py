"""Descriptor engine: registered specs, vectorised featurizers, Dask -> Parquet tables.

Importing the package fills the descriptor registry (`matlib.descriptors.spec.DESCRIPTORS`): each module below
registers its featurizers with `@register(...)`. A new descriptor is one more module here and one decorator.
"""

from __future__ import annotations

# The built-in descriptor modules: imported for their `@register` side effect.
from matlib.descriptors import combined, compositional, molecular  # noqa: F401
from matlib.descriptors.base import FeatureResult, Featurizer, get_featurizer
from matlib.descriptors.build import build_descriptors, load_descriptors
from matlib.descriptors.composition import parse_formula
from matlib.descriptors.spec import DescriptorSpec, list_descriptors
from matlib.graphs import code  # noqa: F401  (molgraph: graph codes for GNN source models)

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
