"""Flow: refresh data sources (one task per source, retried) and publish a summary artifact."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.tasks import exponential_backoff

from tasks.data import refresh_markdown, refresh_source

DEFAULT_SOURCES = ["mp", "oqmd", "qm9", "aflow"]


@flow(name="refresh-data")
def refresh_data(
    sources: list[str] = DEFAULT_SOURCES,
    url: str | None = None,
    limit: int | None = None,
    store_root: str | None = None,
    options: dict[str, Any] | None = None,
    retry_delay_s: float = 30.0,
) -> list[dict]:
    """Refresh each source in its own task; publish rows fetched / quarantined and the diffs."""
    from tasks.artifacts import publish_markdown

    task = refresh_source.with_options(retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=retry_delay_s))
    futures = [task.submit(s, url, limit, store_root, options) for s in sources]
    results = [f.result() for f in futures]
    publish_markdown("data-refresh", refresh_markdown(results), description="rows fetched, quarantined, diff")
    return results
