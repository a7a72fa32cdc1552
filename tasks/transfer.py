"""Prefect tasks of a shotgun transfer run: prepare the target, screen a batch of shards, refine + report."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from matlib.transfer.fit import finish_run, library_shard_names, prepare_run, screen_step
from matlib.transfer.report import run_summary_markdown
from matlib.transfer.target import read_target_csv
from tasks.library import client_for
from tasks.runner import retry_unless_user_error

SHARDS_PER_TASK = 8


@task(name="transfer-prepare", cache_policy=NO_CACHE)
def prepare_transfer(
    library: str,
    train: str,
    input_column: str,
    target_column: str,
    out: str,
    top_k: int,
    seed: int,
    max_overlap: float = 0.0,
    allow_leakage: bool = False,
) -> list[list[str]]:
    """Validate + featurise the target and run the leakage guard; returns the shard batches to screen."""
    inputs, y = read_target_csv(train, input_column, target_column)
    prepare_run(
        library,
        inputs,
        y,
        out,
        target_column=target_column,
        input_column=input_column,
        top_k=top_k,
        seed=seed,
        max_overlap=max_overlap,
        allow_leakage=allow_leakage,
    )
    names = library_shard_names(library)
    return [names[i : i + SHARDS_PER_TASK] for i in range(0, len(names), SHARDS_PER_TASK)]


@task(
    name="transfer-screen-shards",
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=2,
    retry_condition_fn=retry_unless_user_error,
)
def screen_transfer_shards(out: str, shards: list[str], part: int, address: str | None = None) -> str:
    """Screen one batch of shards (on the Dask cluster when an address is given); returns its Parquet path."""
    client = client_for(address)
    if client is None:
        return str(screen_step(out, shards, f"{part:05d}"))
    fut = client.submit(screen_step, out, shards, f"{part:05d}", key=f"transfer-screen-{part}", pure=False)
    return str(fut.result())


@task(name="transfer-finish", cache_policy=NO_CACHE)
def finish_transfer(out: str, screened: list[str]) -> str:
    """Rank, refine the top K, choose by CV, save the model and write report.md; returns a Markdown summary."""
    return run_summary_markdown(finish_run(out, screened))
