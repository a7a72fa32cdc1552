"""A smaller library drawn from a built one: whole shards from every (property, descriptor), verified, loadable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from matlib.library import Library, build_library
from matlib.library.subset import pick_shards, subset_library
from matlib.store import Store

CMD = [sys.executable, "-c", "from matlib.cli import main; main()"]


@pytest.fixture(scope="module")
def two_descriptor_library(tmp_path_factory, make_config):
    """(store root, library) of 32 models: refractive index on Magpie and on XenonPy, shards of 8."""
    cfg = make_config("pair", models=16)
    cfg["groups"][0]["descriptors"] = ["magpie", "xenonpy"]
    root = tmp_path_factory.mktemp("store")
    return root, build_library(Store(root), cfg)


def test_shards_are_drawn_from_every_descriptor(two_descriptor_library):
    _, path = two_descriptor_library
    lib = Library(path)
    chosen = pick_shards(lib, 16, seed=0)
    descriptors = set(lib.catalog[lib.catalog["shard"].isin(chosen)]["descriptor"])
    assert descriptors == {"magpie", "xenonpy"}
    assert pick_shards(lib, 16, seed=0) == chosen  # seeded
    assert len(pick_shards(lib, 10_000)) == len(lib.manifest["shards"])  # asking for more takes all


def test_a_subset_is_a_verified_library_holding_the_same_models(two_descriptor_library, tmp_path):
    _, path = two_descriptor_library
    parent = Library(path)
    sub = Library(subset_library(path, tmp_path / "sub", 12, seed=3))
    assert sub.verify() == len(sub.manifest["shards"]) == 2
    assert sub.manifest["n_models"] == len(sub.catalog) == 16
    assert sub.manifest["subset_of"]["name"] == "pair"
    assert set(sub.manifest["sources"]) == set(parent.manifest["sources"])
    for row in sub.catalog.head(3).itertuples():
        x = torch.randn(5, json.loads(row.arch)["n_in"])
        a, b = parent.load_model(row.model_id), sub.load_model(row.model_id)
        assert torch.equal(a(x), b(x))
        name = row.shard
        assert os.path.samefile(sub.shard_path(name), parent.shard_path(name))  # hard links: no extra disk
    with pytest.raises(Exception, match="already holds a library"):
        subset_library(path, tmp_path / "sub", 12)


def test_cli_subset_into_the_store(two_descriptor_library, tmp_path):
    root, _ = two_descriptor_library
    env = {**os.environ, "MATLIB_HOME": str(root)}
    out = subprocess.run(
        [*CMD, "library", "subset", "pair", "--models", "8", "--out", "pair-8"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "models=8 shards=1 (from pair)" in out.stdout
    bad = subprocess.run(
        [*CMD, "library", "subset", "pair", "--models", "8", "--out", "a/b"], env=env, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "invalid library name 'a/b'" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
