"""Paginators for the paging styles the sources use: skip/limit, offset + next link, OPTIMADE links.next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matlib.sources.crawl import PageRequest


def _next_link(payload: Any) -> str | None:
    """links.next of a JSON:API style payload (a string or an object with href)."""
    links = payload.get("links") if isinstance(payload, dict) else None
    nxt = links.get("next") if isinstance(links, dict) else None
    if isinstance(nxt, dict):
        nxt = nxt.get("href")
    return nxt or None


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

    def first(self) -> PageRequest:
        """The first page."""
        return PageRequest(self.url, dict(self.params))

    def next(self, request: PageRequest, payload: Any, n_records: int) -> PageRequest | None:
        """links.next, unless the server says there is no more data."""
        meta = payload.get("meta") if isinstance(payload, dict) else None
        if self.more_key and isinstance(meta, dict) and meta.get(self.more_key) is False:
            return None
        nxt = _next_link(payload)
        if not nxt or not _data(payload):
            return None
        return PageRequest(nxt, {})

    def records(self, payload: Any) -> list[dict]:
        """payload['data']."""
        return _data(payload)
