"""Build planning: prepare training tables per (dataset, descriptor, property), then split models into shards."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save

from matlib.atomic import atomic_write_bytes, read_json, read_parquet
from matlib.errors import MatlibError, ValidationError
from matlib.hashing import canonical_json, sha256_file, spec_hash
from matlib.models.arch import sample_architecture
from matlib.store import Store

MIN_ROWS = 20


def library_dir(store: Store, cfg: dict) -> Path:
    """The folder of the library a config builds."""
    return store.library(cfg["name"])


def _slug(text: str) -> str:
    """A file-name-safe short form of text."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:40] or "x"


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed derived from parts (stable across runs and machines)."""
    return int(spec_hash(list(parts)), 16) % (2**31 - 1)


def ensure_dataset(store: Store, group: dict, lib_dir: Path) -> Any:
    """The group's dataset: from the store, else imported from its `import` table, else crawled by its source."""
    from matlib.datasets import load_dataset

    try:
        return load_dataset(store, group["dataset"])
    except (MatlibError, FileNotFoundError):
        pass
    if group.get("import"):
        return _import_group_table(store, group, lib_dir)
    return _crawl_group_dataset(store, group)


def _crawl_group_dataset(store: Store, group: dict) -> Any:
    """Fetch a dataset the store lacks with its source's crawler (as `matlib data refresh` does)."""
    from matlib.sources import SOURCES, refresh

    name, _, version = group["dataset"].partition("@")
    options = dict(group.get("refresh") or {})
    source = str(options.pop("source", name))
    if version:
        raise MatlibError(
            f"dataset {group['dataset']} is not in the store {store.root}; a crawl makes a new "
            f"version, so name the dataset without @version (or refresh it first)"
        )
    if source not in SOURCES and source != "local":
        raise MatlibError(
            f"dataset {name!r} is not in the store {store.root}, and no crawler is named {source!r}: "
            f"give the group an `import:` table or a `refresh: {{source: ...}}` (one of "
            f"{', '.join(sorted(SOURCES))})"
        )
    if name != source:
        options.setdefault("name", name)
    return refresh(store, source, url=options.pop("url", None), limit=options.pop("limit", None), **options)


def _import_group_table(store: Store, group: dict, lib_dir: Path) -> Any:
    """Import the group's `import` table (a seeded slice of it with `sample_rows`) as its dataset."""
    from matlib.datasets import import_table

    imp = dict(group["import"])
    name = group["dataset"].split("@")[0]
    file = Path(imp.pop("file"))
    sample = imp.pop("sample_rows", None)
    if sample:  # a seeded random slice of a big table, kept next to the library for provenance
        from matlib.datasets import read_table

        table = read_table(file)
        if len(table) > int(sample):
            table = table.sample(n=int(sample), random_state=derive_seed(name, file.name, sample) % 2**32)
            table = table.sort_index()
        file = lib_dir / "imports" / f"{name}-{file.name.split('.')[0]}-{int(sample)}.csv"
        file.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(file, index=False)
    return import_table(store, name, file, imp.pop("input_column"), imp.pop("target_columns"), **imp)


def group_dataset(store: Store, cfg: dict, gi: int) -> tuple[Any, str]:
    """(dataset, "name@version") of group gi, checked to hold every property the group trains on."""
    group = cfg["groups"][gi]
    ds = ensure_dataset(store, group, library_dir(store, cfg))
    ref = f"{ds.name}@{ds.version}"
    missing = [p for p in group["properties"] if p not in ds.records.columns]
    if missing:
        raise ValidationError(
            f"library config groups[{gi}]: dataset {ref} has no property {missing[0]!r} "
            f"(it has {', '.join(ds.manifest.get('properties', []))})"
        )
    return ds, ref


def prepare_group(store: Store, cfg: dict, gi: int, client: Any = None) -> list[dict]:
    """Descriptors + one training table (X, y) per property of group gi; returns the prepared units."""
    from matlib.descriptors import DescriptorSpec, build_descriptors, load_descriptors

    group = cfg["groups"][gi]
    if group.get("model") == "gnn":  # graph networks: graphs instead of descriptors (matlib.library.gnn_plan)
        from matlib.library.gnn_plan import prepare_gnn_group

        return prepare_gnn_group(store, cfg, gi)
    lib = library_dir(store, cfg)
    ds, ref = group_dataset(store, cfg, gi)
    y_all = ds.records.set_index("record_id")
    units = []
    for d in group["descriptors"]:
        spec = DescriptorSpec.coerce(d)
        build_descriptors(store, ref, spec, client=client, progress=False)
        ids, X = load_descriptors(store, ref, spec)
        for prop in group["properties"]:
            y = y_all[prop].reindex(ids).to_numpy(dtype=np.float64)
            keep = np.flatnonzero(np.isfinite(y))
            if group["max_rows"] and len(keep) > group["max_rows"]:
                rng = np.random.default_rng(derive_seed(cfg["seed"], ds.version, prop, "rows"))
                keep = np.sort(rng.choice(keep, size=group["max_rows"], replace=False))
            if len(keep) < MIN_ROWS:
                raise ValidationError(
                    f"library config groups[{gi}]: property {prop!r} of {ref} has only "
                    f"{len(keep)} usable rows with descriptor {spec.name} (need {MIN_ROWS})"
                )
            key = spec_hash([ds.version, spec.hash, prop, group["max_rows"], cfg["seed"]])
            path = lib / "data" / f"{_slug(prop)}-{spec.name}-{key}.safetensors"
            if not path.exists():
                atomic_write_bytes(
                    path,
                    save(
                        {
                            "X": torch.from_numpy(np.ascontiguousarray(X[keep])),
                            "y": torch.from_numpy(y[keep].astype(np.float32)),
                        },
                        metadata={"dataset": ref, "property": prop, "descriptor": spec.name},
                    ),
                )
            units.append(
                {
                    "data_file": str(path),
                    "n_rows": int(len(keep)),
                    "n_in": int(X.shape[1]),
                    "group": gi,
                    "property": group["property_names"].get(prop, prop),
                    "dataset": ds.name,
                    "dataset_version": ds.version,
                    "descriptor": spec.name,
                    "descriptor_hash": spec.hash,
                    "descriptor_spec": canonical_json(spec.to_dict()),
                }
            )
    return units


def load_training_table(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of a prepared training table."""
    t = load_file(str(path))
    return t["X"].numpy(), t["y"].numpy()


def plan_shards(store: Store, cfg: dict, units: list[dict]) -> list[dict]:
    """Shard jobs for every unit: models sampled from seeds, grouped by family, sorted by width, chunked."""
    from matlib.library.gnn_plan import plan_gnn_shards

    lib = library_dir(store, cfg)
    jobs = plan_gnn_shards(store, cfg, [u for u in units if "tasks" in u])  # GNN units carry their tasks
    for u in (u for u in units if "tasks" not in u):
        group = cfg["groups"][u["group"]]
        train = group["training"]
        n = group["models_per_property"]
        models = []
        for i in range(n):
            seed = derive_seed(cfg["seed"], u["dataset_version"], u["descriptor_hash"], u["property"], i)
            fam = derive_seed(
                cfg["seed"],
                u["dataset_version"],
                u["descriptor_hash"],
                u["property"],
                "family",
                i // cfg["family_size"],
            )
            arch = sample_architecture(u["n_in"], seed, group["architecture"], family_seed=fam)
            mid = spec_hash([u["dataset_version"], u["descriptor_hash"], u["property"], u["n_rows"], arch, seed, train])
            models.append({"model_id": mid, "seed": seed, "arch": arch, "family": i // cfg["family_size"]})
        for fam_id in sorted({m["family"] for m in models}):
            fam_models = sorted(
                (m for m in models if m["family"] == fam_id), key=lambda m: (tuple(m["arch"]["hidden"]), m["model_id"])
            )
            for start in range(0, len(fam_models), cfg["shard_size"]):
                chunk = fam_models[start : start + cfg["shard_size"]]
                name = f"{_slug(u['property'])}-{u['descriptor']}-{spec_hash([m['model_id'] for m in chunk], 12)}"
                jobs.append(
                    {
                        "shard": name,
                        "library_dir": str(lib),
                        "data_file": u["data_file"],
                        "train": train,
                        "models": [{k: m[k] for k in ("model_id", "seed", "arch")} for m in chunk],
                        "base": {
                            k: u[k]
                            for k in (
                                "property",
                                "dataset",
                                "dataset_version",
                                "descriptor",
                                "descriptor_hash",
                                "descriptor_spec",
                            )
                        },
                    }
                )
    return jobs


def part_paths(lib: Path, shard: str) -> tuple[Path, Path, Path]:
    """(shard file, catalog part, done record) of a shard."""
    return lib / "shards" / f"{shard}.safetensors", lib / "parts" / f"{shard}.parquet", lib / "parts" / f"{shard}.json"


def is_done(job: dict) -> bool:
    """True when a shard was finished before: its done record exists and its files match it."""
    shard_file, part, done = part_paths(Path(job["library_dir"]), job["shard"])
    if not done.exists() or not part.exists():
        return False
    record = read_json(done)
    if record.get("n_ok", 0) == 0:
        return True
    return shard_file.exists() and sha256_file(shard_file) == record.get("sha256")


def pending(jobs: list[dict]) -> list[dict]:
    """The jobs whose shard is not finished yet."""
    return [j for j in jobs if not is_done(j)]


def read_part(lib: Path, shard: str) -> tuple[pd.DataFrame, dict]:
    """The catalog part and done record of a finished shard."""
    _, part, done = part_paths(lib, shard)
    return read_parquet(part), read_json(done)
