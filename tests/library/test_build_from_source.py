"""A library group that names a dataset the store lacks is crawled by its source (loopback server), once."""

from __future__ import annotations

from matlib.datasets import list_datasets, load_dataset
from matlib.library import Library, build_library
from matlib.library.config import load_config
from matlib.library.groups import plan_shards, prepare_group
from matlib.library.plan import pending
from matlib.sources import refresh
from matlib.store import Store
from tests.fixtures.http_server import FAST, FixtureServer


def _config(url: str) -> dict:
    """Six tiny models on OQMD band gaps crawled from the loopback server's OQMD REST API."""
    return {
        "name": "crawled",
        "seed": 0,
        "shard_size": 3,
        "family_size": 3,
        "architecture": {"n_layers": [1, 2], "max_width": 16},
        "training": {"epochs": 2, "batch_size": 16, "patience": 2},
        "groups": [
            {
                "dataset": "oqmd",
                "refresh": {"url": url, "page_size": 16, **FAST},
                "descriptors": ["magpie"],
                "properties": ["band_gap"],
                "models_per_property": 6,
            }
        ],
    }


def test_build_crawls_a_missing_dataset_and_reuses_it(tmp_path):
    store = Store(tmp_path / "store")
    with FixtureServer() as server:
        cfg = _config(server.url)
        lib = build_library(store, cfg)
        assert len(server.hits("oqmd")) > 1  # the crawler paged through the loopback OQMD API
        ds = load_dataset(store, "oqmd")
        catalog = Library(lib).catalog
        assert len(catalog) == 6 and set(catalog["dataset"]) == {"oqmd"}
        assert set(catalog["dataset_version"]) == {ds.version}
        assert Library(lib).manifest["datasets"] == {"oqmd": ds.version}

        # the nightly refresh runs again and finds nothing new: the same version, so the build trains nothing
        again = refresh(store, "oqmd", url=server.url, page_size=16, **FAST)
        assert again.version == ds.version and list(list_datasets(store)["name"]) == ["oqmd"]
        resolved = load_config(cfg)
        units = prepare_group(store, resolved, 0)
        assert pending(plan_shards(store, resolved, units)) == []
        hits = len(server.hits("oqmd"))
        assert build_library(store, cfg) == lib
        assert len(server.hits("oqmd")) == hits  # the build read the store; only the refresh crawled


def test_build_trains_on_the_new_version_after_a_changing_refresh(tmp_path):
    store = Store(tmp_path / "store")
    with FixtureServer() as server:
        cfg = _config(server.url)
        first = Library(build_library(store, cfg)).catalog
        server.oqmd = server.oqmd[:-5]  # the service dropped five entries
        newer = refresh(store, "oqmd", url=server.url, page_size=16, **FAST)
        assert newer.manifest["diff"]["removed"] == 5
        units = prepare_group(store, load_config(cfg), 0)
        assert {u.dataset_version for u in units} == {newer.version}
        second = Library(build_library(store, cfg)).catalog
        assert set(second["dataset_version"]) == {newer.version}
        assert not set(second["model_id"]) & set(first["model_id"])


def test_a_crawl_cannot_make_a_named_version(tmp_path):
    import pytest

    from matlib.errors import MatlibError

    cfg = _config("http://127.0.0.1:9")
    cfg["groups"][0]["dataset"] = "oqmd@0123456789abcdef"
    with pytest.raises(MatlibError, match="not in the store"):
        build_library(Store(tmp_path), cfg)
    cfg["groups"][0]["dataset"] = "nosuch"
    cfg["groups"][0]["refresh"] = None
    with pytest.raises(MatlibError, match="no crawler is named 'nosuch'"):
        build_library(Store(tmp_path), cfg)
