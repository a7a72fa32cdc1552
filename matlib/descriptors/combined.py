"""`concat`: several descriptors of the same input kind side by side (e.g. RDKit 2D + Morgan counts)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matlib.descriptors.base import FeatureResult, Featurizer, get_featurizer
from matlib.descriptors.spec import DescriptorSpec, register
from matlib.errors import MatlibError


@register("concat", "any", {"parts": []}, doc="the listed descriptor specs concatenated (parts: [{name, params}])")
def concat(spec: DescriptorSpec) -> Featurizer:
    """Featurise with every part and stack the columns; a row fails where any part fails."""
    parts = [get_featurizer(DescriptorSpec(p["name"], dict(p.get("params") or {}))) for p in spec.params["parts"]]
    if not parts:
        raise MatlibError("descriptor 'concat' needs at least one part")
    kinds = {f.input_kind for f in parts}
    if len(kinds) != 1:
        raise MatlibError(f"descriptor 'concat': parts featurise different input kinds ({', '.join(sorted(kinds))})")
    names = [f"{f.spec.name}:{c}" for f in parts for c in f.feature_names]

    def compute(inputs: Sequence[str]) -> FeatureResult:
        results = [f.compute(list(inputs)) for f in parts]  # raw: the outer featurize marks non-finite rows
        ok = np.logical_and.reduce([r.ok for r in results])
        reasons = [next((r.reasons[i] for r in results if not r.ok[i]), None) for i in range(len(inputs))]
        return FeatureResult(np.hstack([r.X for r in results]).astype(np.float32), ok, reasons)

    return Featurizer(spec, kinds.pop(), names, compute)
