"""Build planning: prepare training tables per (dataset, descriptor, property), then split models into shards."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save

from matlib.atomic import atomic_write_bytes, atomic_write_json, atomic_write_parquet, read_json, read_parquet
from matlib.datasets import Dataset, import_table, load_dataset, read_table
from matlib.descriptors import DescriptorSpec, build_descriptors, load_descriptors
from matlib.errors import MatlibError, ValidationError
from matlib.hashing import canonical_json, sha256_file, spec_hash
from matlib.library.config import Group, LibraryConfig, MLPGroup, load_config
from matlib.models.arch import sample_architecture
from matlib.sources import SOURCES, refresh
from matlib.store import Store

MIN_ROWS = 20


@dataclass(frozen=True)
class TrainingUnit:
    """One prepared training table (a data file) and what its models share; GNN units also carry their tasks."""

    data_file: str
    n_rows: int
    group: int
    property: str
    dataset: str
    dataset_version: str
    descriptor: str
    descriptor_hash: str
    descriptor_spec: str
    n_in: int = 0  # MLP: input features
    tasks: list[str] | None = None  # GNN: the properties one model predicts
    n_node: int = 0  # GNN: node and edge feature widths
    n_edge: int = 0

    def is_gnn(self) -> bool:
        """True for a graph-network unit."""
        return self.tasks is not None

    def base(self) -> dict[str, str]:
        """The catalog fields every model trained on this unit shares."""
        return {k: getattr(self, k) for k in BASE_FIELDS}


BASE_FIELDS = ("property", "dataset", "dataset_version", "descriptor", "descriptor_hash", "descriptor_spec")


@dataclass(frozen=True)
class PlannedModel:
    """One model of a shard: its id, seed and (MLP) architecture."""

    model_id: str
    seed: int
    arch: dict[str, Any] | None = None


@dataclass(frozen=True)
class ShardJob:
    """One shard to train: its models, their training table and config, and where the shard goes."""

    shard: str
    library_dir: str
    data_file: str
    train: dict[str, Any]
    models: list[PlannedModel]
    base: dict[str, str]
    model_type: str = "mlp"
    arch: dict[str, Any] | None = None  # GNN: the one architecture of the shard
    tasks: list[str] | None = None  # GNN
    split_seed: int | None = None  # GNN
    n_rows: int = 0  # rows of the training table (for the cost estimate)

    def cost(self) -> float:
        """Estimated training work (rows x weights of every model), to run the largest shards first."""
        weights = sum(_mlp_weights(m.arch) if m.arch else _gnn_weights(self.arch or {}) for m in self.models)
        return float(max(self.n_rows, 1) * weights)


def _mlp_weights(arch: dict[str, Any]) -> int:
    """Weights of an MLP spec (n_in -> hidden ... -> n_out)."""
    widths = [int(arch.get("n_in", 1)), *(int(w) for w in arch.get("hidden", [])), int(arch.get("n_out", 1))]
    return sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def _gnn_weights(arch: dict[str, Any]) -> int:
    """A rough weight count of a GNN spec (depth x width^2; 1 when unknown)."""
    width = int(arch.get("width", 1) or 1)
    return max(1, int(arch.get("depth", 1) or 1) * width * width)


def largest_first(jobs: Sequence[ShardJob]) -> list[ShardJob]:
    """Jobs by estimated cost, largest first (ties keep plan order): the last shard to finish is a small one."""
    return sorted(jobs, key=lambda j: -j.cost())


def library_dir(store: Store, cfg: LibraryConfig | dict[str, Any]) -> Path:
    """The folder of the library a config builds."""
    return store.library(load_config(cfg).name)


def _slug(text: str) -> str:
    """A file-name-safe short form of text."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:40] or "x"


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed derived from parts (stable across runs and machines)."""
    return int(spec_hash(list(parts)), 16) % (2**31 - 1)


def cap_rows(keep: np.ndarray, max_rows: int | None, *seed_parts: Any) -> np.ndarray:
    """keep, or a seeded random subset of max_rows of its rows (sorted) when it has more (the seed from seed_parts)."""
    if not max_rows or len(keep) <= max_rows:
        return keep
    rng = np.random.default_rng(derive_seed(*seed_parts, "rows"))
    return np.sort(rng.choice(keep, size=max_rows, replace=False))


def ensure_dataset(store: Store, group: Group, lib_dir: Path) -> Dataset:
    """The group's dataset: from the store, else imported from its `import` table, else crawled by its source."""
    try:
        return load_dataset(store, group.dataset)
    except (MatlibError, FileNotFoundError):
        pass
    if group.import_ is not None:
        return _import_group_table(store, group, lib_dir)
    return _crawl_group_dataset(store, group)


def _crawl_group_dataset(store: Store, group: Group) -> Dataset:
    """Fetch a dataset the store lacks with its source's crawler (as `matlib data refresh` does)."""
    name, _, version = group.dataset.partition("@")
    options = dict(group.refresh or {})
    source = str(options.pop("source", name))
    if version:
        raise MatlibError(
            f"dataset {group.dataset} is not in the store {store.root}; a crawl makes a new "
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


def _import_group_table(store: Store, group: Group, lib_dir: Path) -> Dataset:
    """Import the group's `import` table (a seeded slice of it with `sample_rows`) as its dataset."""
    imp = group.import_
    assert imp is not None
    name = group.dataset.split("@")[0]
    file = Path(imp.file)
    sample = imp.sample_rows
    if sample:  # a seeded random slice of a big table, kept next to the library for provenance
        table = read_table(file)
        if len(table) > int(sample):
            table = table.sample(n=int(sample), random_state=derive_seed(name, file.name, sample) % 2**32)
            table = table.sort_index()
        file = lib_dir / "imports" / f"{name}-{file.name.split('.')[0]}-{int(sample)}.csv"
        file.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(file, index=False)
    return import_table(store, name, file, imp.input_column, imp.target_columns, **imp.options())


def group_dataset(store: Store, cfg: LibraryConfig | dict[str, Any], gi: int) -> tuple[Dataset, str]:
    """(dataset, "name@version") of group gi, checked to hold every property the group trains on."""
    cfg = load_config(cfg)
    group = cfg.groups[gi]
    ds = ensure_dataset(store, group, library_dir(store, cfg))
    ref = f"{ds.name}@{ds.version}"
    missing = [p for p in group.properties if p not in ds.records.columns]
    if missing:
        raise ValidationError(
            f"library config groups[{gi}]: dataset {ref} has no property {missing[0]!r} "
            f"(it has {', '.join(ds.manifest.get('properties', []))})"
        )
    return ds, ref


def prepare_mlp_group(store: Store, cfg: LibraryConfig, gi: int, client: Any = None) -> list[TrainingUnit]:
    """Descriptors + one training table (X, y) per property of MLP group gi; returns the prepared units."""
    group = cfg.groups[gi]
    assert isinstance(group, MLPGroup)
    ds, ref = group_dataset(store, cfg, gi)
    y_all = ds.records.set_index("record_id")
    units = []
    for d in group.descriptors:
        spec = DescriptorSpec.coerce(d)
        build_descriptors(store, ref, spec, client=client, progress=False)
        ids, X = load_descriptors(store, ref, spec)
        for prop in group.properties:
            y = y_all[prop].reindex(ids).to_numpy(dtype=np.float64)
            keep = cap_rows(np.flatnonzero(np.isfinite(y)), group.max_rows, cfg.seed, ds.version, prop)
            if len(keep) < MIN_ROWS:
                raise ValidationError(
                    f"library config groups[{gi}]: property {prop!r} of {ref} has only "
                    f"{len(keep)} usable rows with descriptor {spec.name} (need {MIN_ROWS})"
                )
            key = spec_hash([ds.version, spec.hash, prop, group.max_rows, cfg.seed])
            path = library_dir(store, cfg) / "data" / f"{_slug(prop)}-{spec.name}-{key}.safetensors"
            if not path.exists():
                _write_training_table(
                    path, X[keep], y[keep], {"dataset": ref, "property": prop, "descriptor": spec.name}
                )
            if not trained_ids_path(path).exists():
                atomic_write_parquet(trained_ids_path(path), pd.DataFrame({"record_id": ids[keep].astype(str)}))
            units.append(
                TrainingUnit(
                    data_file=str(path),
                    n_rows=int(len(keep)),
                    n_in=int(X.shape[1]),
                    group=gi,
                    property=group.property_names.get(prop, prop),
                    dataset=ds.name,
                    dataset_version=ds.version,
                    descriptor=spec.name,
                    descriptor_hash=spec.hash,
                    descriptor_spec=canonical_json(spec.to_dict()),
                )
            )
    return units


def _write_training_table(path: Path, X: np.ndarray, y: np.ndarray, meta: dict[str, str]) -> None:
    """An MLP training table: X float32 [n, d] and y float32 [n] in one safetensors file."""
    tensors = {"X": torch.from_numpy(np.ascontiguousarray(X)), "y": torch.from_numpy(y.astype(np.float32))}
    atomic_write_bytes(path, save(tensors, metadata=meta))


def trained_ids_path(data_file: str | Path) -> Path:
    """The record ids of a training table's rows (written beside it), for the library's source fingerprints."""
    path = Path(data_file)
    return path.with_name(path.name.split(".")[0] + ".ids.parquet")


def trained_record_ids(jobs: Sequence[ShardJob]) -> dict[tuple[str, str, str], set[str] | None]:
    """(dataset, version, property) -> the record ids its models trained on (union over descriptors); None where a
    training table has no id list (every record with a value then counts as trained on)."""
    out: dict[tuple[str, str, str], set[str] | None] = {}
    for data_file, key in {
        (j.data_file, (j.base["dataset"], j.base["dataset_version"], j.base["property"])) for j in jobs
    }:
        ids_file = trained_ids_path(data_file)
        if not ids_file.exists() or out.get(key, set()) is None:
            out[key] = None
            continue
        out[key] = (out.get(key) or set()) | set(read_parquet(ids_file)["record_id"].astype(str))
    return out


def load_training_table(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of a prepared training table."""
    t = load_file(str(path))
    return t["X"].numpy(), t["y"].numpy()


def plan_mlp_shards(store: Store, cfg: LibraryConfig, units: list[TrainingUnit]) -> list[ShardJob]:
    """Shard jobs for every MLP unit: models sampled from seeds, grouped by family, sorted by width, chunked."""
    lib = library_dir(store, cfg)
    return [job for u in units if not u.is_gnn() for job in _mlp_jobs(lib, cfg, u)]


def _mlp_jobs(lib: Path, cfg: LibraryConfig, u: TrainingUnit) -> list[ShardJob]:
    """The shard jobs of one MLP unit: models sampled from seeds, grouped by family, sorted by width, chunked."""
    group = cfg.groups[u.group]
    assert isinstance(group, MLPGroup)
    train = group.training
    families: dict[int, list[PlannedModel]] = {}
    for i in range(group.models_per_property):
        parts = (cfg.seed, u.dataset_version, u.descriptor_hash, u.property)
        seed = derive_seed(*parts, i)
        fam = derive_seed(*parts, "family", i // cfg.family_size)
        arch = sample_architecture(u.n_in, seed, group.architecture, family_seed=fam)
        mid = spec_hash([u.dataset_version, u.descriptor_hash, u.property, u.n_rows, arch, seed, train])
        families.setdefault(i // cfg.family_size, []).append(PlannedModel(mid, seed, arch))
    jobs = []
    for fam_id in sorted(families):
        fam_models = sorted(families[fam_id], key=lambda m: (tuple((m.arch or {})["hidden"]), m.model_id))
        for start in range(0, len(fam_models), cfg.shard_size):
            chunk = fam_models[start : start + cfg.shard_size]
            name = f"{_slug(u.property)}-{u.descriptor}-{spec_hash([m.model_id for m in chunk], 12)}"
            jobs.append(ShardJob(name, str(lib), u.data_file, train, chunk, u.base(), n_rows=u.n_rows))
    return jobs


def part_paths(lib: Path, shard: str) -> tuple[Path, Path, Path]:
    """(shard file, catalog part, done record) of a shard."""
    return lib / "shards" / f"{shard}.safetensors", lib / "parts" / f"{shard}.parquet", lib / "parts" / f"{shard}.json"


def is_done(job: ShardJob) -> bool:
    """True when a shard was finished before: its done record exists and its files match it."""
    shard_file, part, done = part_paths(Path(job.library_dir), job.shard)
    if not done.exists() or not part.exists():
        return False
    record = read_json(done)
    if record.get("n_ok", 0) == 0:
        return True
    return shard_file.exists() and sha256_file(shard_file) == record.get("sha256")


def pending(jobs: list[ShardJob]) -> list[ShardJob]:
    """The jobs whose shard is not finished yet."""
    return [j for j in jobs if not is_done(j)]


def read_part(lib: Path, shard: str) -> tuple[pd.DataFrame, dict]:
    """The catalog part and done record of a finished shard."""
    _, part, done = part_paths(lib, shard)
    return read_parquet(part), read_json(done)


def catalog_rows(
    job: ShardJob, archs: Sequence[dict[str, Any]], metrics: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One catalog row per model of a trained shard: good ones point at their row of the shard, failed ones at none."""
    ok = [i for i, met in enumerate(metrics) if met["status"] == "ok"]
    rows = []
    for i, (m, arch, met) in enumerate(zip(job.models, archs, metrics)):
        good = i in ok
        rows.append(
            {
                "model_id": m.model_id,
                **job.base,
                "arch": canonical_json(arch),
                "seed": int(m.seed),
                "train_config": canonical_json(job.train),
                "n_train": int(met["n_train"]),
                "mae": met["mae"],
                "rmse": met["rmse"],
                "r2": met["r2"],
                "shard": job.shard if good else None,
                "row": ok.index(i) if good else -1,
                "status": met["status"],
                "reason": met["reason"],
                "best_epoch": int(met["best_epoch"]),
            }
        )
    return rows


def finish_shard(job: ShardJob, rows: list[dict[str, Any]], sha: str | None, arch: dict | None) -> dict[str, Any]:
    """Write a trained shard's catalog part, then its done record (last); returns the shard's summary."""
    _, part, done = part_paths(Path(job.library_dir), job.shard)
    atomic_write_parquet(part, pd.DataFrame(rows))
    n_ok = sum(r["status"] == "ok" for r in rows)
    record = {
        "shard": job.shard,
        "sha256": sha,
        "n_models": len(job.models),
        "n_ok": n_ok,
        "arch": arch if n_ok else None,
    }
    atomic_write_json(done, record)
    return {k: record[k] for k in ("shard", "sha256", "n_models", "n_ok")}
