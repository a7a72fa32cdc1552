"""Undefined descriptor values at predict time: filled from the fitted model's training medians, with a note.

A valid input can have a few descriptors its featurizer cannot define (RDKit has no Gasteiger charges for Se, so
Ebselen's MaxPartialCharge & co. are NaN). Such a row is still predicted: each non-finite value is replaced by the
median of that feature over the model's training rows (recorded at fit time, per descriptor spec), and the row's
note says which features were imputed. Only an input the featurizer cannot read at all is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from matlib.errors import IntegrityError

MEDIANS_FILE = "impute.safetensors"


def spec_key(spec: dict) -> str:
    """The key a descriptor spec dict is known by in a saved model (its hash, else its name)."""
    return str(spec.get("hash") or spec["name"])


def training_medians(features: dict[str, np.ndarray], specs: dict[str, dict]) -> dict[str, np.ndarray]:
    """Per descriptor spec (by spec_key) the median of every feature over the training rows."""
    return {
        spec_key(specs[h]): np.median(np.asarray(X, dtype=np.float64), axis=0).astype(np.float32)
        for h, X in features.items()
        if len(X)
    }


def save_medians(model_dir: Path, medians: dict[str, np.ndarray]) -> str:
    """Write the medians beside model.json; returns the file's name relative to the model folder."""
    from safetensors.numpy import save

    from matlib.atomic import atomic_write_bytes

    atomic_write_bytes(
        Path(model_dir) / MEDIANS_FILE,
        save(
            {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in medians.items()} or {"_": np.zeros(1, np.float32)}
        ),
    )
    return MEDIANS_FILE


def load_medians(path: Path) -> dict[str, np.ndarray]:
    """The medians written by save_medians (every value finite, else IntegrityError)."""
    from safetensors.numpy import load

    try:
        medians = dict(load(Path(path).read_bytes()))
    except Exception as exc:
        raise IntegrityError(f"{path}: not a readable medians file ({str(exc).splitlines()[0]})") from None
    for k, v in medians.items():
        if not np.isfinite(v).all():
            raise IntegrityError(f"{path}: non-finite training median for descriptor {k}; the model is damaged")
    return medians


def featurize_imputed(
    inputs: Sequence[str], spec: dict, medians: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, list[str | None], list[str | None]]:
    """(X float32 [n,d], ok [n], reasons, notes): rows with undefined descriptor values get the training medians.

    Without medians (a model saved before they were recorded) a row with undefined values fails as before.
    """
    from matlib.descriptors import DescriptorSpec, get_featurizer

    feat = get_featurizer(DescriptorSpec.from_dict(spec))
    n = len(inputs)
    notes: list[str | None] = [None] * n
    if medians is None or n == 0:
        res = feat.featurize(list(inputs))
        return np.asarray(res.X, dtype=np.float32), np.asarray(res.ok, dtype=bool), list(res.reasons), notes
    if len(medians) != feat.n_features:
        raise IntegrityError(
            f"descriptor {spec.get('name')}: {len(medians)} training medians for "
            f"{feat.n_features} features; the model does not match this featurizer"
        )
    raw = feat.compute(list(inputs))  # before undefined values turn a row into a failure
    X = np.array(raw.X, dtype=np.float32)
    ok = np.asarray(raw.ok, dtype=bool).copy()
    reasons = list(raw.reasons)
    name = spec.get("name")
    for i in np.flatnonzero(ok):
        bad = np.flatnonzero(~np.isfinite(X[i]))
        if len(bad) == 0:
            continue
        X[i, bad] = medians[bad]
        cols = [feat.feature_names[j] for j in bad]
        more = f" and {len(cols) - 3} more" if len(cols) > 3 else ""
        notes[i] = (
            f"{name}: {len(cols)} undefined descriptor value(s) ({', '.join(cols[:3])}{more}) "
            "imputed from the training medians"
        )
    X[~ok] = np.nan
    return X, ok, reasons, notes
