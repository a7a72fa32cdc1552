"""Prefect tasks for data refresh: one task per source (network, retried) and the run summary."""

from __future__ import annotations

import os
from typing import Any

from prefect import task
from prefect.tasks import exponential_backoff

from matlib.store import Store

MP_SECRET_BLOCK = "mp-api-key"


def mp_api_key() -> str | None:
    """The Materials Project key: $MP_API_KEY, else the 'mp-api-key' Prefect Secret block, else None."""
    key = os.environ.get("MP_API_KEY")
    if key:
        return key
    try:
        from prefect.blocks.system import Secret

        return Secret.load(MP_SECRET_BLOCK).get()
    except Exception:  # no block registered (or no API): the source reports the missing key in one line
        return None


@task(
    name="refresh-source",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    log_prints=False,
)
def refresh_source(
    source: str,
    url: str | None = None,
    limit: int | None = None,
    store_root: str | None = None,
    options: dict[str, Any] | None = None,
) -> dict:
    """Crawl one source into a new dataset version; returns its counts (never the key)."""
    from matlib.sources import refresh

    opts = dict(options or {})
    if source == "mp":
        key = mp_api_key()
        if key:
            opts["api_key"] = key  # resolved here, never a task parameter, redacted from logs and files
    ds = refresh(Store.at(store_root), source, url=url, limit=limit, **opts)
    m = ds.manifest
    return {
        "source": source,
        "dataset": ds.name,
        "version": ds.version,
        "n_fetched": m.get("n_fetched"),
        "n_rows": m["n_rows"],
        "n_quarantined": m["n_quarantined"],
        **ds.diff,
    }


def refresh_markdown(results: list[dict]) -> str:
    """The refresh summary as Markdown: rows fetched / kept / quarantined and diff counts per source."""
    from tasks.artifacts import markdown_table

    cols = ["source", "dataset", "version", "n_fetched", "n_rows", "n_quarantined", "added", "changed", "removed"]
    total = {k: sum(int(r.get(k) or 0) for r in results) for k in cols[3:]}
    lines = [
        "# Data refresh",
        "",
        markdown_table(results, cols),
        "",
        "**Totals**: " + ", ".join(f"{k} {v}" for k, v in total.items()),
    ]
    return "\n".join(lines) + "\n"
