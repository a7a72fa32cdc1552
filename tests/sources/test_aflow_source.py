"""AFLOW through AFLUX against the fixture server: $paging(n,k), $format(json), keywords as property columns."""

from __future__ import annotations

import pytest

from matlib.errors import MatlibError
from matlib.sources import refresh
from matlib.sources.aflow import DEFAULT_KEYWORDS
from tests.fixtures.http_server import FAST


def test_aflux_paging_and_keywords(server, store):
    ds = refresh(store, "aflow", url=server.url + "/API/aflux/v1.0", page_size=10, **FAST)
    hits = server.hits("aflow")
    assert len(hits) == 5  # 45 entries: 4 full pages of 10 and a short one
    first = server.requests[0]
    assert first["path"] == "/API/aflux/v1.0/"
    assert ds.name == "aflow" and ds.properties == DEFAULT_KEYWORDS
    assert sorted(ds.records["record_id"]) == sorted(e["auid"] for e in server.aflow)
    rec = ds.records.set_index("record_id")
    for e in server.aflow[::7]:
        for k in DEFAULT_KEYWORDS:
            if k in e:
                assert rec.at[e["auid"], k] == pytest.approx(e[k])


def test_aflux_request_syntax(server, store):
    refresh(
        store,
        "aflow",
        url=server.url + "/API/aflux/v1.0",
        page_size=20,
        fields="Egap,ael_debye_temperature",
        filter="Egap(*)",
        **FAST,
    )
    raw = [r["raw_query"] for r in server.requests if r["route"] == "aflow"]
    assert raw[0] == "auid,compound,Egap,ael_debye_temperature,Egap(*),$paging(1,20),$format(json)"
    assert raw[1].endswith("$paging(2,20),$format(json)") and len(raw) == 3


def test_aflux_error_answer_is_one_line(server, store):
    server.aflow_error = {"error": "unknown keyword"}
    with pytest.raises(MatlibError, match="AFLUX answered .* instead of a list of entries"):
        refresh(store, "aflow", url=server.url + "/API/aflux/v1.0", **FAST)


def test_aflux_older_keyed_answer_is_read_in_order():
    """Older AFLUX servers answer an object keyed "i of N"; it is read in i order and gives the total N."""
    from matlib.sources.paging import AfluxPager

    pager = AfluxPager("https://aflow.org/API/aflux/v1.0/", "auid,compound,Egap", 2)
    payload = {"2 of 3": {"auid": "aflow:b"}, "1 of 3": {"auid": "aflow:a"}}
    assert [e["auid"] for e in pager.records(payload)] == ["aflow:a", "aflow:b"] and pager.total(payload) == 3
    nxt = pager.next(pager.first(), payload, 2)
    assert nxt.url.endswith("?auid,compound,Egap,$paging(2,2),$format(json)")
    assert pager.next(nxt, {"3 of 3": {"auid": "aflow:c"}}, 3) is None
