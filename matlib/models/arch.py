"""Random fully connected architectures in the XenonPy manner, reproducible from a seed."""

from __future__ import annotations

from typing import Any

import numpy as np

from matlib.errors import ValidationError

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "silu", "elu", "softplus")

DEFAULT_SPACE: dict[str, Any] = {
    "n_layers": [1, 5],  # inclusive range of hidden layers
    "width_fraction": [0.2, 1.0],  # each width is a fraction of n_in drawn from this range
    "min_width": 4,
    "max_width": 512,
    "width_round": 4,  # widths rounded to a multiple of this (helps shape buckets)
    "decreasing": 0.9,  # probability that widths are sorted in decreasing order
    "family_jitter": 0.0,  # each model's width fraction = family's base fraction x U(1 - j, 1 + j)
    "activation": list(ACTIVATIONS),
    "dropout": [0.0, 0.0, 0.1, 0.2],
    "batchnorm": [False, True],
}


def resolve_space(space: dict[str, Any] | None) -> dict[str, Any]:
    """The default space updated with the given overrides (unknown keys rejected)."""
    merged = dict(DEFAULT_SPACE)
    for key, value in (space or {}).items():
        if key not in DEFAULT_SPACE:
            raise ValidationError(f"architecture space: unknown key {key!r} (known: {sorted(DEFAULT_SPACE)})")
        merged[key] = value
    for act in merged["activation"]:
        if act not in ACTIVATIONS:
            raise ValidationError(f"architecture space: unknown activation {act!r} (known: {ACTIVATIONS})")
    lo, hi = merged["n_layers"]
    if not 1 <= int(lo) <= int(hi):
        raise ValidationError(f"architecture space: n_layers range {merged['n_layers']} is invalid")
    return merged


def sample_architecture(
    n_in: int, seed: int, space: dict[str, Any] | None = None, family_seed: int | None = None
) -> dict:
    """Sample a random MLP spec (plain JSON) for n_in inputs, reproducible from seed.

    Depth, activation, dropout, batch norm and base width fractions come from family_seed
    (default: seed); each model's widths are the base fractions jittered by its own seed. Models
    of one family thus differ only (and not much) in widths and train in one stacked bucket.
    """
    if int(n_in) < 1:
        raise ValidationError(f"sample_architecture: n_in must be >= 1, got {n_in}")
    sp = resolve_space(space)
    fam = np.random.default_rng([int(seed if family_seed is None else family_seed), 0xFA31])
    rng = np.random.default_rng([int(seed), 0x5EED])
    lo, hi = (int(v) for v in sp["n_layers"])
    depth = int(fam.integers(lo, hi + 1))
    flo, fhi = (float(v) for v in sp["width_fraction"])
    base = fam.uniform(flo, fhi, size=depth)
    decreasing = fam.random() < float(sp["decreasing"])
    jitter = float(sp["family_jitter"])
    fractions = np.clip(base * rng.uniform(1 - jitter, 1 + jitter, size=depth), flo, fhi)
    step = max(1, int(sp["width_round"]))
    widths = []
    for f in fractions:
        w = int(round(f * n_in / step)) * step
        w = min(max(w, int(sp["min_width"])), int(sp["max_width"]))
        widths.append(int(w))
    if decreasing:
        widths.sort(reverse=True)
    acts = list(sp["activation"])
    drops = list(sp["dropout"])
    bns = list(sp["batchnorm"])
    return {
        "n_in": int(n_in),
        "hidden": widths,
        "activation": str(acts[int(fam.integers(len(acts)))]),
        "dropout": float(drops[int(fam.integers(len(drops)))]),
        "batchnorm": bool(bns[int(fam.integers(len(bns)))]),
        "n_out": 1,
    }


def bucket_key(arch: dict) -> tuple:
    """Models sharing this key can be trained and stored together (widths padded exactly)."""
    return (
        int(arch["n_in"]),
        len(arch["hidden"]),
        arch["activation"],
        float(arch["dropout"]),
        bool(arch["batchnorm"]),
        int(arch.get("n_out", 1)),
    )


def padded_arch(archs: list[dict], align: int = 1) -> dict:
    """The common arch of a bucket: per-layer maximum widths rounded up to a multiple of align (all keys else equal)."""
    keys = {bucket_key(a) for a in archs}
    if len(keys) != 1:
        raise ValidationError(f"padded_arch: architectures differ beyond widths: {sorted(keys)}")
    out = dict(archs[0])
    out["hidden"] = [-(-int(max(ws)) // align) * align for ws in zip(*(a["hidden"] for a in archs))]
    return out
