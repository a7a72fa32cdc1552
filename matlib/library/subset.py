"""A smaller library drawn from a built one: whole shards, spread evenly over its (property, descriptor) pairs.

For a laptop that cannot screen the whole library, and for measuring what a library's size buys. The shard files
are hard links of the parent's (copies across file systems), so a subset costs almost no disk; its catalog is the
parent's rows of the chosen shards, and its manifest (written last, with the catalog's sha256) records the parent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from matlib.atomic import atomic_write_parquet
from matlib.errors import MatlibError
from matlib.hashing import sha256_file
from matlib.library.build import seal_library
from matlib.library.library import CATALOG, MANIFEST, Library


def pick_shards(library: Library, n_models: int, seed: int = 0) -> list[str]:
    """Shards holding about n_models good models, taken round-robin over the (property, descriptor, model type)
    groups in a seeded order, so every group keeps its share."""
    cat = library.catalog
    ok = cat[(cat["status"] == "ok") & cat["shard"].notna()]
    sizes = ok.groupby("shard").size()
    keys = ["property", "descriptor"] + (["model_type"] if "model_type" in ok else [])
    rng = np.random.default_rng(seed)
    queues = []
    for _, g in ok.drop_duplicates("shard").groupby(keys, sort=True, dropna=False):
        names = sorted(g["shard"])
        queues.append([names[i] for i in rng.permutation(len(names))])
    order = rng.permutation(len(queues))
    chosen: list[str] = []
    total = 0
    while total < n_models and any(queues):
        for q in order:
            if queues[q] and total < n_models:
                name = queues[q].pop(0)
                chosen.append(name)
                total += int(sizes[name])
    return sorted(chosen)


def _link(src: Path, dst: Path) -> None:
    """Hard-link src to dst (a copy when the file systems differ)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def subset_library(src: str | Path, dst: str | Path, n_models: int, seed: int = 0) -> Path:
    """Write a library of about n_models models drawn from the library at src into dst (see the module doc)."""
    parent = Library(src)
    dst = Path(dst)
    if (dst / MANIFEST).exists():
        raise MatlibError(f"{dst} already holds a library; choose another name or remove it")
    if n_models < 1:
        raise MatlibError(f"--models must be positive, got {n_models}")
    shards = pick_shards(parent, n_models, seed)
    catalog = parent.catalog[parent.catalog["shard"].isin(shards)].reset_index(drop=True)
    for name in shards:
        _link(parent.shard_path(name), dst / "shards" / f"{name}.safetensors")
    kept = {f"{d}@{v}" for d, v in catalog[["dataset", "dataset_version"]].drop_duplicates().itertuples(index=False)}
    sources = {ref: rec for ref, rec in parent.manifest.get("sources", {}).items() if ref in kept}
    for rec in sources.values():
        _link(parent.path / rec["file"], dst / rec["file"])
    (dst / MANIFEST).unlink(missing_ok=True)
    atomic_write_parquet(dst / CATALOG, catalog)
    m = parent.manifest
    return seal_library(
        dst,
        {
            **{k: v for k, v in m.items() if k not in ("catalog", "format")},
            "name": dst.name,
            "n_models": int(len(catalog)),
            "n_ok": int(len(catalog)),
            "n_failed": 0,
            "shards": {name: m["shards"][name] for name in shards},
            "datasets": {ref.split("@")[0]: ref.split("@")[1] for ref in sorted(kept)},
            "sources": sources,
            "subset_of": {
                "name": parent.name,
                "manifest_sha256": sha256_file(parent.path / MANIFEST),
                "n_models": int(m.get("n_models", 0)),
                "seed": seed,
            },
        },
    )
