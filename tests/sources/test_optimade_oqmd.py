"""OPTIMADE (generic --url, and OQMD's endpoint) and OQMD REST crawlers against the fixture server."""

from __future__ import annotations

import json

from matlib.sources import refresh
from matlib.sources.optimade import structures_endpoint
from tests.fixtures.http_server import FAST


def test_optimade_pages_by_links_next(server, store):
    ds = refresh(store, "optimade", url=server.url, page_size=5, **FAST)
    hits = server.hits("optimade")
    assert len(hits) == 4 and hits[0]["query"] == {"page_limit": "5"}
    assert [h["query"].get("page_offset") for h in hits[1:]] == ["5", "10", "15"]
    assert sorted(ds.records["record_id"]) == sorted(e["id"] for e in server.optimade)
    rec = ds.records.set_index("record_id")
    assert rec.at["mpf_1", "input"] == "Ac"
    s = json.loads(rec.at["mpf_1", "structure_json"])
    assert s["species_at_sites"] == ["Ac"] and len(s["lattice_vectors"]) == 3
    assert ds.name.startswith("optimade-127-0-0-1")


def test_oqmd_through_its_optimade_endpoint(server, store):
    ds = refresh(store, "oqmd", api="optimade", url=server.url + "/optimade/v1", page_size=10, **FAST)
    assert ds.name == "oqmd-optimade" and len(ds.records) == len(server.optimade)
    assert server.hits("optimade")[0]["path"] == "/optimade/v1/structures"


def test_structures_endpoint_forms():
    assert structures_endpoint("https://x.org/optimade") == "https://x.org/optimade/v1/structures"
    assert structures_endpoint("https://x.org/optimade/v1/") == "https://x.org/optimade/v1/structures"
    assert structures_endpoint("https://x.org/v1/structures") == "https://x.org/v1/structures"


def test_oqmd_rest_envelope(server, store):
    ds = refresh(store, "oqmd", url=server.url, page_size=16, **FAST)
    hits = server.hits("oqmd")
    assert [h["query"]["offset"] for h in hits] == ["0", "16", "32"]
    assert hits[0]["query"]["limit"] == "16" and "band_gap" in hits[0]["query"]["fields"]
    rec = ds.records.set_index("record_id")
    assert len(rec) == len(server.oqmd)
    e = server.oqmd[5]
    assert rec.at[f"oqmd-{e['entry_id']}", "band_gap"] == e["band_gap"]
