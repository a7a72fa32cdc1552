"""The standard descriptors every fit's direct learners see, whatever descriptors the library uses.

Molecules and polymer repeat units: RDKit 2D descriptors, Morgan counts (radius 2, 2,048 bits) and both side by
side; compositions: Magpie and XenonPy element statistics. A chemist's first model (a random forest on RDKit 2D) is
then always on the menu, and the CV choice cannot fall below the best of these except by CV noise.
Rows a descriptor leaves partly undefined (RDKit returns NaN for some descriptors of unusual elements) keep their
defined values; the learners fill the missing ones with training medians.
"""

from __future__ import annotations

import numpy as np

from matlib.descriptors import DescriptorSpec, get_featurizer
from matlib.errors import MatlibError
from matlib.transfer.target import MIN_SPEC_COVERAGE, TargetFeatures

MORGAN = {"name": "morgan", "params": {"radius": 2, "n_bits": 2048, "counts": True}}
STANDARD: dict[str, list[dict]] = {
    "molecule": [
        {"name": "rdkit2d", "params": {}},
        MORGAN,
        {"name": "concat", "params": {"parts": [{"name": "rdkit2d", "params": {}}, MORGAN]}},
    ],
    "composition": [{"name": "magpie", "params": {}}, {"name": "xenonpy", "params": {}}],
}


def standard_specs(input_kind: str) -> list[dict]:
    """Full spec dicts (with hashes) of the standard descriptors of an input kind."""
    return [DescriptorSpec(s["name"], dict(s["params"])).to_dict() for s in STANDARD.get(input_kind, [])]


def raw_features(inputs: list[str], spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(X float32 [n, d] with NaN where undefined, ok [n]: rows with at least one defined value)."""
    feat = get_featurizer(DescriptorSpec.from_dict(spec))
    res = feat.compute(list(inputs)) if inputs else None
    X = np.asarray(res.X, dtype=np.float32) if res is not None else np.zeros((0, feat.n_features), np.float32)
    X = np.where(np.isfinite(X), X, np.nan).astype(np.float32)
    ok = np.asarray(res.ok, dtype=bool) & np.isfinite(X).any(axis=1) if res is not None else np.zeros(0, bool)
    X[~ok] = np.nan
    return X, ok


def add_standard_descriptors(target: TargetFeatures, input_kind: str) -> list[str]:
    """Featurise the usable rows with each standard descriptor the target lacks; returns the names added."""
    inputs = [target.inputs[i] for i in np.flatnonzero(target.usable)]
    added = []
    for spec in standard_specs(input_kind):
        if spec["hash"] in target.features:
            continue
        try:
            X, ok = raw_features(inputs, spec)
        except MatlibError as exc:
            target.notes.append(f"standard descriptor {spec['name']} skipped: {exc}")
            continue
        if len(ok) and ok.mean() < MIN_SPEC_COVERAGE:
            target.notes.append(
                f"standard descriptor {spec['name']} skipped: only {ok.mean():.0%} of the rows featurised"
            )
            continue
        if (~ok).any():
            target.notes.append(
                f"standard descriptor {spec['name']}: {int((~ok).sum())} row(s) undefined, "
                "filled with training medians by the learners"
            )
        target.features[spec["hash"]] = X
        target.specs[spec["hash"]] = spec
        added.append(spec["name"])
    return added
