"""OPTIMADE (generic --url, and OQMD's endpoint) and OQMD REST crawlers against the fixture server."""

from __future__ import annotations

import json

import pytest

from matlib.datasets import list_datasets
from matlib.errors import MatlibError
from matlib.sources import refresh
from matlib.sources.optimade import structures_endpoint
from tests.fixtures.http_server import FAST, oqmd_optimade_entries


def test_optimade_pages_by_links_next(server, store):
    ds = refresh(store, "optimade", url=server.url, page_size=5, **FAST)
    hits = server.hits("optimade")
    assert len(hits) == 4 and hits[0]["query"]["page_limit"] == "5"
    assert "species_at_sites" in hits[0]["query"]["response_fields"].split(",")
    assert [h["query"].get("page_offset") for h in hits[1:]] == ["5", "10", "15"]
    assert sorted(ds.records["record_id"]) == sorted(e["id"] for e in server.optimade)
    rec = ds.records.set_index("record_id")
    assert rec.at["mpf_1", "input"] == "Ac"
    s = json.loads(rec.at["mpf_1", "structure_json"])
    assert s["species_at_sites"] == ["Ac"] and len(s["lattice_vectors"]) == 3
    assert ds.name.startswith("optimade-127-0-0-1")


def test_oqmd_through_its_optimade_endpoint(server, store):
    """Properties are requested by name (response_fields) and only those become columns; OQMD's ids stay
    metadata. Failed before: _oqmd_entry_id and _oqmd_icsd_id became prediction targets."""
    server.optimade = oqmd_optimade_entries(server.oqmd)
    ds = refresh(store, "oqmd", api="optimade", url=server.url + "/optimade/v1", page_size=10, **FAST)
    assert ds.name == "oqmd-optimade" and len(ds.records) == len(server.optimade)
    hit = server.hits("optimade")[0]
    assert hit["path"] == "/optimade/v1/structures"
    asked = hit["query"]["response_fields"].split(",")
    assert {"_oqmd_band_gap", "_oqmd_delta_e", "_oqmd_stability", "_oqmd_entry_id"} <= set(asked)
    assert ds.properties == ["delta_e", "band_gap", "stability"]
    assert not any("entry_id" in p or "icsd" in p for p in ds.properties)
    rec = ds.records.set_index("record_id")
    e = server.oqmd[3]
    assert rec.at[str(e["entry_id"]), "band_gap"] == e["band_gap"]
    assert json.loads(rec.at[str(e["entry_id"]), "provider_json"])["_oqmd_entry_id"] == e["entry_id"]


def test_optimade_columns_do_not_depend_on_page_contents(server, store):
    """Failed before: a numeric provider field present on some page became a property column."""
    ds = refresh(store, "optimade", url=server.url, page_size=5, **FAST)
    assert ds.properties == []
    assert "mcloud_ctime" not in ds.records.columns
    assert len(ds.records) == len(server.optimade)


def test_optimade_more_data_without_next_link_is_an_error(server, store):
    """meta.more_data_available true with no links.next: one-line error, nothing committed. Failed before: page 1
    was committed as the complete dataset."""
    server.fail("optimade", "nonext")
    with pytest.raises(MatlibError) as err:
        refresh(store, "optimade", url=server.url, page_size=5, **FAST)
    msg = str(err.value)
    assert "\n" not in msg and "more_data_available" in msg and "links.next" in msg
    assert list_datasets(store).empty


def test_optimade_next_link_as_links_object(server, store):
    server.optimade_next_as_object = True  # {"href": ..., "meta": ...}, allowed by the specification
    ds = refresh(store, "optimade", url=server.url, page_size=5, **FAST)
    assert len(ds.records) == len(server.optimade) and len(server.hits("optimade")) == 4


def test_oqmd_fields_as_one_string_is_not_split_into_characters(server, store):
    """Failed before: fields='name,entry_id,band_gap' was sent as 'n,a,m,e,...' and every row was quarantined."""
    ds = refresh(store, "oqmd", url=server.url, page_size=20, fields="name,entry_id,band_gap", **FAST)
    assert server.hits("oqmd")[0]["query"]["fields"] == "name,entry_id,band_gap"
    assert len(ds.records) == len(server.oqmd) and ds.manifest["n_quarantined"] == 0
    assert ds.properties == ["band_gap"]


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
