"""Paginators for the paging styles the sources use: skip/limit (MP), links.next (OQMD REST, OPTIMADE),
$paging(n,k) (AFLUX). Each also reads the listing's total, for the crawl's consistency check."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from matlib.errors import MatlibError
from matlib.sources.crawl import PageRequest
from matlib.sources.redact import redact_url


def _next_link(payload: Any) -> str | None:
    """links.next of a JSON:API style payload: a URL string, or a links object {"href": URL, "meta": {...}}
    (both allowed by the OPTIMADE specification), or null."""
    links = payload.get("links") if isinstance(payload, dict) else None
    nxt = links.get("next") if isinstance(links, dict) else None
    if isinstance(nxt, dict):
        nxt = nxt.get("href")
    return nxt or None


def _meta_int(payload: Any, key: str | None) -> int | None:
    """An integer from payload['meta'][key], or None."""
    meta = payload.get("meta") if isinstance(payload, dict) and key else None
    value = meta.get(key) if isinstance(meta, dict) else None
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _data(payload: Any) -> list[dict]:
    """payload['data'] as a list (a malformed envelope gives an empty list)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    return data if isinstance(data, list) else []


@dataclass
class SkipLimitPager:
    """Skip/limit paging (Materials Project API: _skip/_limit, meta.total_doc)."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)
    page_size: int = 100
    skip_key: str = "_skip"
    limit_key: str = "_limit"
    total_key: str = "total_doc"

    def total(self, payload: Any) -> int | None:
        """meta.total_doc: how many documents the listing holds."""
        return _meta_int(payload, self.total_key)

    def first(self) -> PageRequest:
        """Page at skip 0."""
        return PageRequest(self.url, {**self.params, self.limit_key: self.page_size, self.skip_key: 0})

    def next(self, request: PageRequest, payload: Any, n_records: int) -> PageRequest | None:
        """The next skip, or None after the last document."""
        got = len(_data(payload))
        total = (payload.get("meta") or {}).get("total_doc") if isinstance(payload, dict) else None
        if got == 0 or (total is not None and n_records >= int(total)) or (total is None and got < self.page_size):
            return None
        skip = int(request.params.get(self.skip_key, 0)) + got
        return PageRequest(request.url, {**request.params, self.skip_key: skip})

    def records(self, payload: Any) -> list[dict]:
        """payload['data']."""
        return _data(payload)


@dataclass
class NextLinkPager:
    """Paging by the server's links.next (OQMD REST limit/offset, OPTIMADE page_limit)."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)
    more_key: str | None = "more_data_available"
    total_key: str | None = "data_returned"
    source: str = "source"

    def first(self) -> PageRequest:
        """The first page."""
        return PageRequest(self.url, dict(self.params))

    def total(self, payload: Any) -> int | None:
        """How many records the whole listing holds (OPTIMADE meta.data_returned, OQMD meta.data_available)."""
        return _meta_int(payload, self.total_key)

    def next(self, request: PageRequest, payload: Any, n_records: int) -> PageRequest | None:
        """links.next; a server that says more data is available but gives no next link is an error (a partial
        listing must never pass for a complete one)."""
        meta = payload.get("meta") if isinstance(payload, dict) else None
        more = meta.get(self.more_key) if self.more_key and isinstance(meta, dict) else None
        if more is False:
            return None
        nxt = _next_link(payload)
        total = self.total(payload)
        missing = more is True or (total is not None and n_records < total)
        if nxt and _data(payload):
            return PageRequest(nxt, {})
        if missing:
            why = (
                "meta.more_data_available is true"
                if more is True
                else f"meta.{self.total_key} is {total} but {n_records} records came"
            )
            raise MatlibError(
                f"{self.source}: {why} and there is no links.next after "
                f"{redact_url(request.url)}; the listing is cut short, not committing it"
            )
        return None

    def records(self, payload: Any) -> list[dict]:
        """payload['data']."""
        return _data(payload)


@dataclass
class AfluxPager:
    """AFLUX paging: `?<matchbook>,$paging(n,k),$format(json)`, n = 1, 2, ...; a short or empty page ends it.

    AFLUX answers a JSON list of entries (newer servers) or an object keyed "i of N" (older ones); both are read.
    Entries come sorted by the first keyword of the matchbook, so the matchbook starts with the unique `auid`."""

    url: str
    matchbook: str
    page_size: int = 100

    def request(self, page: int) -> PageRequest:
        """The request of page n (1-based: $paging(0) would return the whole result set at once)."""
        return PageRequest(f"{self.url}?{self.matchbook},$paging({page},{self.page_size}),$format(json)", {})

    def first(self) -> PageRequest:
        """Page 1."""
        return self.request(1)

    def next(self, request: PageRequest, payload: Any, n_records: int) -> PageRequest | None:
        """The next page, or None after a short page (or when the "i of N" total is reached)."""
        got = len(self.records(payload))
        total = self.total(payload)
        if got < self.page_size or (total is not None and n_records >= total):
            return None
        return self.request(n_records // self.page_size + 1)

    def total(self, payload: Any) -> int | None:
        """N from an "i of N" keyed answer, else None."""
        if isinstance(payload, dict) and payload:
            last = next(iter(payload)).split()
            if len(last) == 3 and last[1] == "of" and last[2].isdigit():
                return int(last[2])
        return None

    def records(self, payload: Any) -> list[dict]:
        """The entries of one answer, in order (a non-object entry is kept for quarantine, not dropped)."""
        if isinstance(payload, list):
            return [e if isinstance(e, dict) else {"_malformed": e} for e in payload]
        keys = list(payload) if isinstance(payload, dict) else []
        if payload == {}:
            return []
        if keys and all(re.fullmatch(r"\d+ of \d+", k) for k in keys):
            return [payload[k] for k in sorted(keys, key=lambda k: int(k.split()[0]))]
        shown = json.dumps(payload)[:200] if payload is not None else "null"
        raise MatlibError(f"aflow: AFLUX answered {shown} instead of a list of entries")
