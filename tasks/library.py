"""Prefect tasks of a library build: prepare a group, plan shards, train one shard per task, finalize."""

from __future__ import annotations

import threading
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from matlib.library.build import finalize, run_shard_job
from matlib.library.config import load_config
from matlib.library.groups import plan_shards, prepare_group
from matlib.library.plan import ShardJob, TrainingUnit, is_done
from matlib.store import Store
from tasks.runner import retry_unless_user_error

_LOCK = threading.Lock()
_CLIENTS: dict[str, Any] = {}


def client_for(address: str | None) -> Any:
    """A Dask client on address: the process's default client when it matches, else one cached per address."""
    if not address:
        return None
    from distributed import Client, default_client

    try:
        c = default_client()
        if c.scheduler is not None and c.scheduler.address == address and c.status == "running":
            return c
    except ValueError:
        pass
    with _LOCK:
        c = _CLIENTS.get(address)
        if c is None or c.status != "running":
            c = _CLIENTS[address] = Client(address, set_as_default=False, timeout="30s")
        return c


def close_clients() -> None:
    """Close the clients this module opened."""
    with _LOCK:
        for c in _CLIENTS.values():
            c.close()
        _CLIENTS.clear()


@task(name="library-prepare-group", cache_policy=NO_CACHE)
def prepare_library_group(
    store_root: str | None, config: str, group: int, address: str | None = None
) -> list[TrainingUnit]:
    """Import/featurise one config group and write its training tables; returns the prepared units."""
    cfg = load_config(config)
    return prepare_group(Store.at(store_root), cfg, group, client_for(address))


@task(name="library-plan", cache_policy=NO_CACHE)
def plan_library(store_root: str | None, config: str, units: list[TrainingUnit]) -> list[ShardJob]:
    """Split all models into shard jobs (finished shards are kept in the list; their tasks skip them)."""
    return plan_shards(Store.at(store_root), load_config(config), units)


@task(
    name="library-shard",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_unless_user_error,
)
def train_library_shard(job: ShardJob, address: str | None = None) -> dict[str, Any]:
    """Train one shard of many models on the Dask cluster (rescheduled by Dask if its worker dies)."""
    if is_done(job):
        return {"shard": job.shard, "n_models": len(job.models), "skipped": True}
    client = client_for(address)
    if client is None:
        out = run_shard_job(job)
    else:
        # the largest shards first (as build_library does), whatever order the flow's threads submit in
        out = client.submit(
            run_shard_job, job, key=f"shard-{job.shard}", pure=False, retries=1, priority=int(job.cost())
        ).result()
    return {**out, "skipped": False}


@task(name="library-finalize", cache_policy=NO_CACHE)
def finalize_library(store_root: str | None, config: str, jobs: list[ShardJob]) -> str:
    """Write catalog.parquet and manifest.json from the shard parts (run after the shards: `wait_for=`)."""
    return str(finalize(Store.at(store_root), load_config(config), jobs))
