"""The shared crawl mechanism: rate limit, Retry-After, retries on 429/5xx/truncated JSON, redaction."""

from __future__ import annotations

import json

import pytest

from matlib.errors import MatlibError
from matlib.sources import refresh
from matlib.sources.crawl import Redactor, RateLimiter, parse_retry_after
from tests.fixtures.http_server import FAST


def test_rate_limiter_spaces_requests():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    lim = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        lim.acquire()
    assert slept == pytest.approx([0.25, 0.25, 0.25, 0.25])
    assert now[0] == pytest.approx(1.0)


def test_retry_after_parsing():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert parse_retry_after("soon") is None


def test_redactor_scrubs_url_with_params():
    r = Redactor(["s3cr3t-key"])
    assert r("GET https://x/y?api_key=s3cr3t-key&_limit=5 -> 200") == "GET https://x/y?api_key=***&_limit=5 -> 200"


def test_429_and_500_then_truncated_page_lose_and_duplicate_nothing(server, store):
    server.fail("oqmd", "429:1", "500", "503")  # first page: throttled, then two server errors
    server.fail("oqmd", "truncate")  # and then a truncated body
    ds = refresh(store, "oqmd", url=server.url, page_size=6, **FAST)
    expected = [f"oqmd-{e['entry_id']}" for e in server.oqmd]
    assert sorted(ds.records["record_id"]) == sorted(expected)
    assert ds.records["record_id"].is_unique
    crawl = ds.manifest["crawl"]
    assert crawl["retries"] == 4
    assert crawl["waits"][0] == pytest.approx(1.0)  # Retry-After honoured
    assert all(w <= 0.05 for w in crawl["waits"][1:])  # exponential backoff capped at backoff_max
    # raw pages are the bodies as fetched, one file per page, all complete JSON
    pages = sorted((store.raw("oqmd") / crawl["snapshot"]).glob("page-*.json"))
    assert len(pages) == crawl["pages"] == 7
    assert sum(len(json.loads(p.read_bytes())["data"]) for p in pages) == len(expected)


def test_persistent_failure_is_one_line_error(server, store):
    server.fail("optimade", *["500"] * 10)
    with pytest.raises(MatlibError, match="gave up after 3 attempts: HTTP 500"):
        refresh(store, "optimade", url=server.url, max_attempts=3, **FAST)


def test_limit_stops_early(server, store):
    ds = refresh(store, "oqmd", url=server.url, limit=10, page_size=4, **FAST)
    assert len(ds.records) == 10
    assert len(server.hits("oqmd")) == 3  # 4 + 4 + 4 records fetched, 10 kept
