"""The shared crawl mechanism: rate limit, Retry-After, retries on 429/5xx/truncated JSON, redaction."""

from __future__ import annotations

import json
import logging

import pytest

import matlib
from matlib.errors import MatlibError
from matlib.sources import refresh
from matlib.sources.crawl import RateLimiter, parse_retry_after
from matlib.sources.redact import Redactor, redact_url
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


@pytest.mark.parametrize(
    "action, words",
    [
        ("403bot", "blocked as a bot by the service's firewall, not a key problem"),
        ("403limit", "the server refused the page size: lower --page-size"),
        ("403key", "check the API key"),
    ],
)
def test_403_is_worded_by_what_the_response_says(server, store, action, words):
    """Failed before: every 403 was reported as 'check the API key'."""
    server.fail("optimade", action)
    with pytest.raises(MatlibError) as err:
        refresh(store, "optimade", url=server.url, **FAST)
    msg = str(err.value)
    assert "HTTP 403" in msg and words in msg and "\n" not in msg
    if action != "403key":
        assert "check the API key" not in msg


def test_descriptive_user_agent(server, store):
    """Failed before: httpx's default 'python-httpx/x' User-Agent, which WAFs block."""
    refresh(store, "oqmd", url=server.url, limit=5, page_size=5, **FAST)
    ua = server.hits("oqmd")[0]["headers"]["User-Agent"]
    assert ua.startswith(f"matlib/{matlib.__version__}")


def test_credentials_in_url_never_printed_or_saved(server, store, caplog):
    """Issue 15 item 10: userinfo and key-like query parameters of --url are sent (basic auth, query) but
    redacted from logs, errors, checkpoints and manifests. Failed before: printed and saved in checkpoint.json."""
    user, password, key = "alice", "pw-S3CRET-7788", "qk-SECRET-55aa66bb"
    url = server.url.replace("http://", f"http://{user}:{password}@") + f"/?apikey={key}"
    caplog.set_level(logging.DEBUG)
    server.fail("oqmd", "500")  # a retry warning line with the URL
    ds = refresh(store, "oqmd", url=url.replace("/?", "?"), page_size=20, **FAST)
    hits = server.hits("oqmd")
    assert all(h["headers"].get("Authorization", "").startswith("Basic ") for h in hits)
    assert all(h["query"].get("apikey") == key for h in hits)  # sent on every page, next links included
    assert len(ds.records) == len(server.oqmd)
    texts = [caplog.text, json.dumps(ds.manifest)]
    texts += [p.read_text(errors="replace") for p in store.root.rglob("*") if p.is_file() and p.suffix == ".json"]
    assert any("apikey=***" in t or "GET" in t for t in texts)
    for t in texts:
        assert password not in t and key not in t
    server.fail("oqmd", "403key")
    with pytest.raises(MatlibError) as err:
        refresh(store, "oqmd", url=url.replace("/?", "?"), page_size=20, name="again", **FAST)
    assert password not in str(err.value) and key not in str(err.value)


def test_redact_url_forms():
    assert (
        redact_url("GET http://u:p%40ss@h:8/x?a=1&api_key=K&token=T&fields=x")
        == "GET http://***@h:8/x?a=1&api_key=***&token=***&fields=x"
    )
    assert redact_url("https://h/x?sort_key=1") == "https://h/x?sort_key=***"
