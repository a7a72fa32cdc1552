"""Flow: build a model library from a YAML config: prepare groups, one task per shard on Dask, finalize."""

from __future__ import annotations

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from matlib.cluster import dask_client
from matlib.library.plan import largest_first
from matlib.library.summary import build_summary
from tasks.library import close_clients, finalize_library, plan_library, prepare_library_group, train_library_shard


@flow(name="build-library", task_runner=ThreadPoolTaskRunner(max_workers=32))
def build_library_flow(config: str, cluster: str | None = None, store_root: str | None = None) -> str:
    """Build (or resume) the library of config on the cluster (address, GPUs or local CPU); returns its folder."""
    from matlib.library.config import load_config
    from tasks.artifacts import artifact_key, publish_markdown

    cfg = load_config(config)
    with dask_client(cluster) as client:
        address = client.scheduler.address
        try:
            units = [u for gi in range(len(cfg.groups)) for u in prepare_library_group(store_root, config, gi, address)]
            jobs = plan_library(store_root, config, units)
            shards = train_library_shard.map(largest_first(jobs), unmapped(address))
            results = [f.result() for f in shards]
        finally:
            close_clients()
    library = finalize_library(store_root, config, jobs, wait_for=shards)
    publish_markdown(
        artifact_key("library", cfg.name), build_summary(library, results), description="models built / failed"
    )
    return library
