"""What every source provides, and the shared refresh: crawl -> rows -> validate -> new dataset version."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from matlib.datasets.schema import empty_quarantine, normalise_records
from matlib.datasets.versions import Dataset, commit_version
from matlib.errors import MatlibError
from matlib.sources.crawl import CrawlConfig, Crawler, Paginator, iter_page_records
from matlib.store import Store

SECRET_OPTIONS = frozenset({"api_key", "token", "password"})


@dataclass
class Rows:
    """A source's records as raw rows: the frame, its property and extra columns, and early rejects."""

    frame: pd.DataFrame
    properties: list[str]
    extras: list[str] = field(default_factory=list)
    rejected: pd.DataFrame = field(default_factory=empty_quarantine)


def crawl_config(options: dict) -> CrawlConfig:
    """A CrawlConfig from the options that name its fields (page_size, rate_per_second, ...)."""
    names = {f.name for f in fields(CrawlConfig)}
    return CrawlConfig(**{k: v for k, v in options.items() if k in names and v is not None})


def public_options(options: dict) -> dict:
    """Options without secrets or crawl tuning (safe for manifests and checkpoints)."""
    names = {f.name for f in fields(CrawlConfig)}
    return {k: v for k, v in sorted(options.items()) if k not in SECRET_OPTIONS and k not in names}


def reject(row: int, record_id: Any, field_name: str, reason: str, value: Any = None) -> dict:
    """One quarantine entry."""
    return {"row": int(row), "record_id": str(record_id), "field": field_name, "reason": reason,
            "value": None if value is None else str(value)[:200]}


def as_float(value: Any) -> float:
    """A number, or NaN for missing; non-numbers stay as their text so validation names them."""
    if value is None:
        return np.nan
    return value


class PagedSource:
    """A JSON API crawled page by page; subclasses give the paginator and the record -> row mapping."""

    name: str = ""
    kind: str = "composition"
    default_url: str = ""

    def dataset_name(self, url: str, options: dict) -> str:
        """The dataset this source writes (options['name'] overrides)."""
        return options.get("name") or self.name

    def headers(self, options: dict) -> tuple[dict[str, str], list[str]]:
        """(request headers, secret values to redact)."""
        return {}, []

    def paginator(self, url: str, options: dict, config: CrawlConfig) -> Paginator:
        """The paginator of this API."""
        raise NotImplementedError

    def to_rows(self, records: list[dict], options: dict) -> Rows:
        """Raw API records -> Rows (record_id, input, properties, extras, _row)."""
        raise NotImplementedError

    def fetch(self, store: Store, url: str, limit: int | None, options: dict) -> tuple[list[dict], dict]:
        """Crawl (resuming if interrupted) and return (records, crawl info)."""
        config = crawl_config(options)
        headers, secrets = self.headers(options)
        identity = {"url": url, "limit": limit, "page_size": config.page_size, "options": public_options(options)}
        with Crawler(store, self.name, identity, config, headers=headers, secrets=secrets,
                     transport=options.get("transport")) as crawler:
            pager = self.paginator(url, options, config)
            result = crawler.crawl(pager, limit=limit)
            records = list(iter_page_records(result.pages, pager, limit))
        info = {"snapshot": result.snapshot.name, "pages": len(result.pages), "resumed": result.resumed,
                **result.stats}
        return records, info


def refresh_source(store: Store, src: PagedSource, url: str | None, limit: int | None, options: dict) -> Dataset:
    """Fetch, normalise, validate and commit one source; the Dataset carries the diff counts."""
    url = (url or src.default_url).rstrip("/")
    if not url:
        raise MatlibError(f"source {src.name!r} needs --url")
    if limit is not None and limit <= 0:
        raise MatlibError(f"--limit must be positive, got {limit}")
    fetched_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    records, info = src.fetch(store, url, limit, options)
    rows = src.to_rows(records, options)
    frame = rows.frame
    if "_row" not in frame.columns:
        frame = frame.assign(_row=np.arange(len(frame), dtype="int64"))
    good, quarantine = normalise_records(frame, src.kind, rows.properties, rows.extras)
    if len(rows.rejected):
        quarantine = pd.concat([rows.rejected, quarantine], ignore_index=True).sort_values("row", kind="stable")
    origin = {"name": src.name, "url": url, "limit": limit, "options": json.loads(
        json.dumps(public_options({k: v for k, v in options.items() if k != "transport"}), default=str))}
    extra = {"n_fetched": len(records), "crawl": info}
    return commit_version(store, src.dataset_name(url, options), good, origin, quarantine.reset_index(drop=True),
                          fetched_at=fetched_at, extra=extra)
