"""Build a library: run shard jobs (one per shard of many models) and assemble catalog + manifest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from matlib.atomic import atomic_write_json, atomic_write_parquet, read_json
from matlib.datasets import load_dataset
from matlib.errors import MatlibError
from matlib.hashing import sha256_file, spec_hash
from matlib.library.catalog import COLUMNS
from matlib.library.config import LibraryConfig, load_config
from matlib.library.fingerprints import write_source_fingerprints
from matlib.library.gnn_plan import run_gnn_shard_job
from matlib.library.groups import plan_shards, prepare_group
from matlib.library.library import CATALOG, LIBRARY_FORMAT, MANIFEST
from matlib.library.plan import (
    ShardJob,
    catalog_rows,
    finish_shard,
    largest_first,
    library_dir,
    load_training_table,
    part_paths,
    pending,
    read_part,
    trained_record_ids,
)
from matlib.library.shard import write_shard
from matlib.models.batched import train_batched
from matlib.models.stacked import trim_stacked
from matlib.store import Store


def _set_threads() -> None:
    """On a Dask worker, use as many torch threads as the worker has task threads."""
    try:
        from distributed import get_worker

        torch.set_num_threads(max(1, int(get_worker().state.nthreads)))
    except (ImportError, ValueError, AttributeError):
        if os.environ.get("MATLIB_TORCH_THREADS"):
            torch.set_num_threads(int(os.environ["MATLIB_TORCH_THREADS"]))


def run_shard_job(job: ShardJob) -> dict[str, Any]:
    """Train one shard's models, write the shard (good models only), its catalog part and its done record."""
    _set_threads()
    if job.model_type == "gnn":
        return run_gnn_shard_job(job)
    shard_file = part_paths(Path(job.library_dir), job.shard)[0]
    X, y = load_training_table(job.data_file)
    models = job.models
    archs = [m.arch or {} for m in models]
    res = train_batched(X, y, archs, [m.seed for m in models], job.train)
    ok = [i for i, met in enumerate(res.metrics) if met["status"] == "ok"]
    sha = None
    if ok:
        idx = torch.tensor(ok)
        tensors = {k: v.index_select(0, idx).contiguous() for k, v in res.tensors.items()}
        meta = {
            "model_ids": [models[i].model_id for i in ok],
            **job.base,
            "train_config": job.train,
            "archs": [archs[i] for i in ok],
        }
        arch = dict(res.arch)
        arch["hidden"] = [int(tensors[f"width{j}"].max()) for j in range(len(arch["hidden"]))]
        tensors = trim_stacked(tensors, arch)
        sha = write_shard(shard_file, arch, tensors, meta)
    return finish_shard(job, catalog_rows(job, archs, res.metrics), sha, dict(res.arch))


def finalize(store: Store, cfg: LibraryConfig, jobs: list[ShardJob]) -> Path:
    """Assemble catalog.parquet and manifest.json from every planned shard's finished part."""
    lib = library_dir(store, cfg)
    not_done = pending(jobs)
    if not_done:
        raise MatlibError(
            f"library {cfg.name}: {len(not_done)} shard(s) unfinished (first: {not_done[0].shard}); "
            "rerun the build to complete them"
        )
    parts, shards = [], {}
    for job in jobs:
        df, record = read_part(lib, job.shard)
        parts.append(df)
        if record["n_ok"]:
            shards[job.shard] = {"sha256": record["sha256"], "n_models": record["n_ok"]}
    catalog = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    catalog["model_type"] = catalog["model_type"].fillna("mlp") if "model_type" in catalog else "mlp"
    if catalog["model_id"].duplicated().any():
        dup = catalog.loc[catalog["model_id"].duplicated(), "model_id"].iloc[0]
        raise MatlibError(f"library {cfg.name}: model {dup} appears in more than one shard")
    datasets = {j.base["dataset"]: j.base["dataset_version"] for j in jobs}
    if _sealed(lib, cfg, shards, datasets):
        return lib  # a rerun with nothing new leaves the library as it is, readable throughout
    # the manifest is what makes a library complete: take the old one away first, write the new one last
    (lib / MANIFEST).unlink(missing_ok=True)
    sources = _write_sources(store, cfg, lib, catalog, trained_record_ids(jobs))
    atomic_write_parquet(lib / CATALOG, catalog)
    n_ok = int((catalog["status"] == "ok").sum())
    return seal_library(
        lib,
        {
            "name": cfg.name,
            "config": cfg.to_dict(),
            "config_hash": spec_hash(cfg.to_dict()),
            "created_by": _code_version(),
            "n_models": int(len(catalog)),
            "n_ok": n_ok,
            "n_failed": int(len(catalog) - n_ok),
            "shards": shards,
            "datasets": datasets,
            "sources": sources,
        },
    )


def _sealed(lib: Path, cfg: LibraryConfig, shards: dict, datasets: dict) -> bool:
    """Whether lib's manifest already seals this config, these shards and dataset versions over an intact catalog."""
    try:
        manifest = read_json(lib / MANIFEST)
        return bool(
            manifest.get("config_hash") == spec_hash(cfg.to_dict())
            and manifest.get("shards") == shards
            and manifest.get("datasets") == datasets
            and manifest["catalog"]["sha256"] == sha256_file(lib / CATALOG)
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def seal_library(lib: Path, manifest: dict) -> Path:
    """Write manifest.json last: the given fields + format + the sha256 of the catalog already in place."""
    lib = Path(lib)
    atomic_write_json(
        lib / MANIFEST,
        {**manifest, "format": LIBRARY_FORMAT, "catalog": {"file": CATALOG, "sha256": sha256_file(lib / CATALOG)}},
    )
    return lib


def _write_sources(
    store: Store,
    cfg: LibraryConfig,
    lib: Path,
    catalog: pd.DataFrame,
    trained: dict[tuple[str, str, str], set[str] | None],
) -> dict[str, dict]:
    """Input fingerprints of every source dataset version, with the values of the catalog's properties on the rows
    its models trained on (a `max_rows` slice, not the whole table), written into the library so the leakage guard
    needs no store."""
    out = {}
    for (name, version), g in catalog.groupby(["dataset", "dataset_version"], sort=True):
        renamed = {
            new: old
            for grp in cfg.groups
            if grp.dataset.split("@")[0] == name
            for old, new in grp.property_names.items()
        }
        ds = load_dataset(store, f"{name}@{version}")
        columns = {p: renamed.get(p, p) for p in sorted(g["property"].astype(str).unique())}
        rows = {p: trained.get((str(name), str(version), p)) for p in columns}
        out[f"{name}@{version}"] = write_source_fingerprints(
            lib, ds, columns, {p: ids for p, ids in rows.items() if ids is not None}
        )
    return out


def _code_version() -> str:
    """matlib's version string."""
    try:
        from importlib.metadata import version

        return f"matlib {version('matlib')}"
    except Exception:  # pragma: no cover - not installed
        return "matlib (source)"


def prepare_and_plan(
    store: Store, config: str | Path | dict[str, Any] | LibraryConfig, client: Any = None
) -> tuple[LibraryConfig, list[ShardJob]]:
    """Validated config and the full list of shard jobs (descriptors and training tables prepared)."""
    cfg = load_config(config)
    units = [u for gi in range(len(cfg.groups)) for u in prepare_group(store, cfg, gi, client)]
    return cfg, plan_shards(store, cfg, units)


def gather_shards(client: Any, futures: list, name: str) -> None:
    """Wait for shard jobs; a job whose workers kept dying becomes a one-line error (finished shards are kept)."""
    from distributed import KilledWorker

    try:
        client.gather(futures)
    except KilledWorker as exc:
        task = getattr(exc, "task", None) or (exc.args[0] if exc.args else "a shard")
        raise MatlibError(
            f"library {name}: the workers training {task} died repeatedly (out of memory?); "
            "the finished shards are kept: run the build again to resume"
        ) from None


def build_library(store: Store, config: str | Path | dict[str, Any] | LibraryConfig, client: Any = None) -> Path:
    """Build (or resume) a library from a config, without Prefect; shard jobs go to client when given."""
    cfg, jobs = prepare_and_plan(store, config, client)
    todo = largest_first(pending(jobs))
    if client is None:
        for job in todo:
            run_shard_job(job)
    else:
        futures = [
            client.submit(run_shard_job, j, key=f"shard-{j.shard}", pure=False, priority=int(j.cost())) for j in todo
        ]
        gather_shards(client, futures, cfg.name)
    return finalize(store, cfg, jobs)
