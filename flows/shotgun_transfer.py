"""Flow: shotgun transfer of a library onto a small training table (same parameters as `matlib transfer fit`)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from matlib.cluster import dask_client
from tasks.library import close_clients
from tasks.transfer import finish_transfer, prepare_transfer, screen_transfer_shards


@flow(name="shotgun-transfer", task_runner=ThreadPoolTaskRunner(max_workers=16))
def shotgun_transfer(
    library: str,
    train: str,
    input_column: str,
    target_column: str,
    out: str,
    top_k: int = 10,
    seed: int = 0,
    max_overlap: float = 0.0,
    allow_leakage: bool = False,
    cluster: str | None = None,
) -> str:
    """Screen every (model, layer) shard batch on Dask, refine the top K, save the model; returns the run folder."""
    from tasks.artifacts import artifact_key, publish_link, publish_markdown

    batches = prepare_transfer(
        library, train, input_column, target_column, out, top_k, seed, max_overlap, allow_leakage
    )
    with dask_client(cluster) as client:
        try:
            futures = screen_transfer_shards.map(
                unmapped(out), batches, list(range(len(batches))), unmapped(client.scheduler.address)
            )
            screened = [f.result() for f in futures]
        finally:
            close_clients()
    markdown = finish_transfer(out, screened)
    publish_markdown(
        artifact_key("shotgun-transfer", Path(out).name),
        markdown,
        description="top of the ranking, chosen model and report path",
    )
    publish_link(
        artifact_key("shotgun-transfer", Path(out).name, "report"),
        Path(out) / "report.md",
        description="transfer report (Markdown with parity plot)",
    )
    return str(out)
