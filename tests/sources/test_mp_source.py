"""Materials Project crawler against the fixture server: envelope, fields, malformed record, key secrecy."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from matlib.errors import MatlibError
from matlib.sources import refresh
from tests.fixtures.http_server import FAST, MP_KEY


def test_mp_crawl_sends_key_header_and_configured_fields(server, store, monkeypatch):
    monkeypatch.setenv("MP_API_KEY", MP_KEY)
    ds = refresh(
        store,
        "mp",
        url=server.url,
        page_size=15,
        fields="material_id,formula_pretty,energy_above_hull,total_magnetization",
        **FAST,
    )
    hits = server.hits("mp")
    assert [h["query"]["_skip"] for h in hits] == ["0", "15", "30"]
    assert all(h["headers"].get("X-API-KEY") == MP_KEY for h in hits)
    assert hits[0]["query"]["_fields"] == "material_id,formula_pretty,energy_above_hull,total_magnetization"
    assert ds.properties == ["energy_above_hull", "total_magnetization"]
    rec = ds.records.set_index("record_id")
    for doc in server.mp:
        assert rec.at[doc["material_id"], "energy_above_hull"] == pytest.approx(doc["energy_above_hull"])
    assert ds.manifest["n_rows"] == len(server.mp) and ds.manifest["n_quarantined"] == 0


def test_malformed_records_are_quarantined_not_lost(server, store, monkeypatch):
    monkeypatch.setenv("MP_API_KEY", MP_KEY)
    server.mp[3]["formula_pretty"] = "Qz2O3"  # unknown element
    server.mp[7]["energy_above_hull"] = float("inf")
    server.mp[8]["energy_above_hull"] = "n/a"
    server.mp[8]["total_magnetization"] = None
    del server.mp[11]["material_id"]
    ds = refresh(store, "mp", url=server.url, page_size=10, fields="energy_above_hull,total_magnetization", **FAST)
    q = ds.quarantine(store).set_index("record_id")
    ids = [server.mp[i].get("material_id") for i in (3, 7, 8)]
    assert sorted(q.index) == sorted([*ids, "#0"])  # the document without an id sorts first (row 0)
    assert "unknown element 'Qz'" in q.at[ids[0], "reason"] and q.at[ids[0], "field"] == "input"
    assert q.at[ids[1], "reason"].startswith("infinite value") and q.at[ids[1], "field"] == "energy_above_hull"
    assert q.at[ids[2], "reason"].startswith("not a number") and q.at[ids[2], "value"] == "n/a"
    assert q.at["#0", "field"] == "material_id"
    assert len(ds.records) + len(q) == len(server.mp)  # nothing dropped silently
    assert np.isfinite(ds.records["energy_above_hull"]).all()


def test_wrong_key_is_a_one_line_error_without_the_key(server, store):
    with pytest.raises(MatlibError) as err:
        refresh(store, "mp", url=server.url, api_key="wrong-key-XYZ987654", **FAST)
    assert "HTTP 401" in str(err.value) and "wrong-key-XYZ987654" not in str(err.value)


def test_missing_key_is_a_one_line_error(store, monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(MatlibError, match="MP_API_KEY"):
        refresh(store, "mp", url="http://127.0.0.1:9", **FAST)


def test_key_never_in_logs_raw_files_checkpoints_or_manifests(server, store, monkeypatch, caplog):
    monkeypatch.setenv("MP_API_KEY", MP_KEY)
    server.fail("mp", "429:0", "500")
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("matlib.sources")
    with caplog.at_level(logging.DEBUG):
        refresh(store, "mp", url=server.url, page_size=20, **FAST)
        # a URL-with-params line that carries the key is redacted while a crawl is running
        from matlib.sources.crawl import Crawler

        with Crawler(store, "mp-logcheck", {}, secrets=[MP_KEY]):
            log.info("GET %s", f"{server.url}/materials/summary/?api_key={MP_KEY}&_limit=5")
    text = caplog.text
    assert "materials/summary" in text and "_skip=" in text  # URL lines with params were logged
    assert "api_key=***" in text
    assert MP_KEY not in text
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert any(p.name == "checkpoint.json" for p in files) and any(p.name == "manifest.json" for p in files)
    for p in files:
        assert MP_KEY.encode() not in p.read_bytes(), p


def test_unknown_summary_field_is_refused_before_crawling(server, store, monkeypatch):
    """The MP server ignores unknown `_fields` names (all-NaN columns); they are refused first. Failed before:
    the crawl ran and committed an all-NaN column."""
    monkeypatch.setenv("MP_API_KEY", MP_KEY)
    with pytest.raises(MatlibError) as err:
        refresh(store, "mp", url=server.url, fields="band_gap,formation_energy,e_above_hull", **FAST)
    msg = str(err.value)
    assert "\n" not in msg and "'formation_energy'" in msg and "'e_above_hull'" in msg and "'band_gap'" not in msg
    assert server.hits("mp") == []


def test_mp_sends_sort_fields_and_user_agent(server, store, monkeypatch):
    monkeypatch.setenv("MP_API_KEY", MP_KEY)
    refresh(store, "mp", url=server.url, page_size=20, fields="energy_above_hull", **FAST)
    hits = server.hits("mp")
    assert all(h["query"]["_sort_fields"] == "material_id" for h in hits)
    assert all(h["headers"]["User-Agent"].startswith("matlib/") for h in hits)
