"""Offset paging over a listing that changes between pages: a fixed order (MP `_sort_fields`) and a crawl that
refuses a listing whose ids repeat or whose total moved, so a resumed crawl loses and duplicates nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from matlib.datasets import list_datasets
from matlib.errors import MatlibError
from matlib.sources import refresh
from tests.fixtures.http_server import FAST, MP_KEY


def test_resumed_mp_crawl_over_a_changing_listing_loses_and_duplicates_nothing(server, store, monkeypatch):
    """The server's natural order moves between requests (as a store's does after writes) and values change
    between pages; the crawl dies after 2 pages and is resumed. Failed before: without `_sort_fields` records
    came twice and others never."""
    monkeypatch.setenv("MP_API_KEY", MP_KEY)
    server.unsorted_order_changes = True
    opts = dict(page_size=8, fields="energy_above_hull,total_magnetization", max_attempts=2, **FAST)
    calls = {"n": 0}
    original = server.mp_page

    def flaky(q):  # first run: two pages, then the server fails until the crawler gives up
        calls["n"] += 1
        if calls["n"] > 2:
            raise ConnectionError("down")
        return original(q)

    server.mp_page = flaky
    with pytest.raises(MatlibError):
        refresh(store, "mp", url=server.url, **opts)
    assert list_datasets(store).empty
    server.mp_page = original
    for d in server.mp[::5]:  # values change between the two runs
        d["energy_above_hull"] = (d["energy_above_hull"] or 0) + 0.25
    ds = refresh(store, "mp", url=server.url, **opts)
    assert ds.manifest["crawl"]["resumed"] is True
    ids = list(ds.records["record_id"])
    assert Counter(ids).most_common(1)[0][1] == 1  # no duplicates
    assert sorted(ids) == sorted(d["material_id"] for d in server.mp)  # nothing lost
    assert ds.manifest["n_quarantined"] == 0


def test_listing_that_grows_during_the_crawl_is_refused(server, store, monkeypatch):
    """A record inserted before the cursor shifts the offsets: the crawl says so in one line, commits nothing."""
    monkeypatch.setenv("MP_API_KEY", MP_KEY)
    original = server.mp_page

    def growing(q):
        if q.get("_skip") == "16":
            server.mp.insert(0, {**server.mp[0], "material_id": "mp-0999"})
        return original(q)

    server.mp_page = growing
    with pytest.raises(MatlibError) as err:
        refresh(store, "mp", url=server.url, page_size=8, fields="energy_above_hull", **FAST)
    msg = str(err.value)
    assert "\n" not in msg and ("changed while it was crawled" in msg or "went from 40 to 41" in msg)
    assert list_datasets(store).empty


def test_oqmd_listing_total_moved_is_refused(server, store):
    """OQMD REST has no order by entry id: a listing whose data_available moves mid-crawl is refused."""
    original = server.oqmd_page

    def shrinking(q, path):
        if q.get("offset") == "20":
            server.oqmd.pop(0)
        return original(q, path)

    server.oqmd_page = shrinking
    with pytest.raises(MatlibError, match="went from 40 to 39 records"):
        refresh(store, "oqmd", url=server.url, page_size=10, **FAST)
