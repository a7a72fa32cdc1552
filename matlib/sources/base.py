"""What every source provides, and the shared refresh: crawl -> rows -> validate -> new dataset version."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from matlib.datasets.schema import empty_quarantine, normalise_records
from matlib.datasets.versions import Dataset, commit_version
from matlib.errors import MatlibError
from matlib.sources.crawl import CrawlConfig, Crawler, Paginator, iter_page_records
from matlib.sources.mirror import MirrorTransport
from matlib.sources.redact import clean_url, redact_url, split_credentials
from matlib.store import Store

SECRET_OPTIONS = frozenset({"api_key", "token", "password"})
INTERNAL_OPTIONS = frozenset({"transport", "mirror"})


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
    given = {k: v for k, v in options.items() if k in names and v is not None}
    if "rate_per_second" in options:  # given as None or 0: no limit
        given["rate_per_second"] = options["rate_per_second"] or None
    return CrawlConfig(**given)


def public_options(options: dict) -> dict:
    """Options without secrets or crawl tuning (safe for manifests and checkpoints)."""
    names = {f.name for f in fields(CrawlConfig)}
    return {
        k: v
        for k, v in sorted(options.items())
        if k not in SECRET_OPTIONS and k not in names and k not in INTERNAL_OPTIONS
    }


def field_list(value: Any, default: list[str]) -> list[str]:
    """Requested field names from a list or one comma-separated string (never split into characters)."""
    if value is None or value == "" or value == []:
        return list(default)
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    out = [x.strip() for x in items if x.strip()]
    if not out:
        raise MatlibError(f"no field names in {value!r}")
    return list(dict.fromkeys(out))


def reject(row: int, record_id: Any, field_name: str, reason: str, value: Any = None) -> dict:
    """One quarantine entry."""
    return {
        "row": int(row),
        "record_id": str(record_id),
        "field": field_name,
        "reason": reason,
        "value": None if value is None else str(value)[:200],
    }


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
        """(request headers, secret values to redact); options['mirror'] is set when reading a mirror."""
        return {}, []

    def check_options(self, options: dict) -> None:
        """Refuse bad options before any request (one-line MatlibError)."""

    def paginator(self, url: str, options: dict, config: CrawlConfig) -> Paginator:
        """The paginator of this API."""
        raise NotImplementedError

    def to_rows(self, records: list[dict], options: dict) -> Rows:
        """Raw API records -> Rows (record_id, input, properties, extras, _row)."""
        raise NotImplementedError

    def record_key(self, record: Any) -> str | None:
        """The id of a raw record (for the duplicate check across pages), or None when it has none."""
        return None

    def open_crawler(self, store: Store, url: str, identity: dict, options: dict) -> Crawler:
        """A Crawler for this source: credentials from the URL sent but never stored, mirror as the transport."""
        clean, auth, secret_params = split_credentials(url)
        headers, secrets = self.headers(options)
        return Crawler(
            store,
            self.name,
            identity,
            crawl_config(options),
            headers=headers,
            secrets=secrets,
            transport=options.get("transport"),
            auth=auth,
            secret_params=secret_params,
        )

    def fetch(self, store: Store, url: str, limit: int | None, options: dict) -> tuple[list[dict], dict]:
        """Crawl (resuming if interrupted) and return (records, crawl info); a listing that changed or was cut
        short while being crawled is a one-line error, never a dataset."""
        config = crawl_config(options)
        clean = clean_url(url)
        identity = {"url": clean, "limit": limit, "page_size": config.page_size, "options": public_options(options)}
        with self.open_crawler(store, url, identity, options) as crawler:
            pager = self.paginator(clean, options, config)
            result = crawler.crawl(pager, limit=limit)
            records = list(iter_page_records(result.pages, pager, limit))
            check_listing(self.name, result.pages, pager, records, self.record_key, limit)
        info = {"snapshot": result.snapshot.name, "pages": len(result.pages), "resumed": result.resumed, **result.stats}
        return records, info


def check_listing(source: str, pages: list, pager: Paginator, records: list[dict], key: Any, limit: int | None) -> None:
    """Refuse a crawl whose listing changed while it was paged: an id on two pages, or a total that moved."""
    ids = [key(r) for r in records]
    counts = Counter(i for i in ids if i is not None)
    dups = sorted(i for i, n in counts.items() if n > 1)
    if dups:
        raise MatlibError(
            f"{source}: {len(dups)} record(s) came on two pages (first: {dups[0]}); the source "
            f"changed while it was crawled; refresh again"
        )
    total_of = getattr(pager, "total", None)
    if total_of is None or not pages:
        return
    first, last = (total_of(json.loads(p.read_bytes())) for p in (pages[0], pages[-1]))
    if first is not None and last is not None and first != last:
        raise MatlibError(
            f"{source}: the listing went from {first} to {last} records while it was crawled; refresh again"
        )
    if limit is None and last is not None and len(records) != last:
        raise MatlibError(
            f"{source}: the server lists {last} records but the pages held {len(records)}; "
            f"not committing an incomplete dataset"
        )


def refresh_source(
    store: Store, src: PagedSource, url: str | None, limit: int | None, options: dict, mirror: str | None = None
) -> Dataset:
    """Fetch (from the service, or from a mirror of it), normalise, validate and commit one source; the Dataset
    carries the diff counts."""
    url = (url or src.default_url).rstrip("/")
    if not url:
        raise MatlibError(f"source {src.name!r} needs --url")
    if limit is not None and limit <= 0:
        raise MatlibError(f"--limit must be positive, got {limit}")
    src.check_options(options)
    fetched_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    transport = MirrorTransport(mirror) if mirror else None
    try:
        if transport is not None:
            # a mirror folder is a local copy: the service's politeness limit does not apply unless asked for
            local = {"rate_per_second": 0.0} if transport.is_local else {}
            options = {**local, **options, "transport": transport, "mirror": transport}
        records, info = src.fetch(store, url, limit, options)
    finally:
        if transport is not None:
            transport.close()
    if transport is not None:
        info = {**info, "mirror": {"location": transport.shown, "origin": transport.origin}}
    rows = src.to_rows(records, options)
    frame = rows.frame
    if "_row" not in frame.columns:
        frame = frame.assign(_row=np.arange(len(frame), dtype="int64"))
    good, quarantine = normalise_records(frame, src.kind, rows.properties, rows.extras)
    if len(rows.rejected):
        quarantine = pd.concat([rows.rejected, quarantine], ignore_index=True).sort_values("row", kind="stable")
    origin = {
        "name": src.name,
        "url": clean_url(url),
        "limit": limit,
        "options": json.loads(redact_url(json.dumps(public_options(options), default=str))),
    }
    extra = {"n_fetched": len(records), "crawl": info}
    return commit_version(
        store,
        src.dataset_name(url, options),
        good,
        origin,
        quarantine.reset_index(drop=True),
        fetched_at=fetched_at,
        extra=extra,
    )
