"""Shipping a library: pack -> serve over loopback HTTP -> pull -> fit; resume after a kill; tampering refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from matlib.errors import IntegrityError, MatlibError
from matlib.library import Library
from matlib.library.bundle import BUNDLE_FILE, pack_library, pull_library, pulled_root, resolve_library
from matlib.store import Store
from matlib.transfer import fit_transfer
from tests.fixtures import TEST_DATA
from tests.fixtures.file_server import FileServer

REPO = Path(__file__).resolve().parents[2]
FIT = {"top_k": 2, "repeats": 1, "folds": 3, "include_direct": False, "report": False, "seed": 1}


@pytest.fixture(scope="module")
def bundle(built_library, tmp_path_factory) -> Path:
    """The 24-model test library packed once."""
    _, lib = built_library
    return pack_library(lib, tmp_path_factory.mktemp("bundles"))


def _target(n: int = 30) -> tuple[list[str], list[float]]:
    """Real AFLOW Debye temperatures of n compositions (a target the library did not train on)."""
    df = pd.read_csv(TEST_DATA / "aflow" / "ael_debye_temperature.csv").head(n)
    return df["formula"].tolist(), df["target"].tolist()


def test_bundle_is_content_addressed_and_complete(built_library, bundle, tmp_path):
    _, lib = built_library
    meta = json.loads((bundle / BUNDLE_FILE).read_text())
    assert meta["format_version"] == "1.0" and bundle.name == f"{meta['name']}-{meta['version']}"
    paths = {f["path"] for f in meta["files"]}
    assert {"manifest.json", "catalog.parquet"} <= paths
    assert {f"shards/{s}.safetensors" for s in Library(lib).manifest["shards"]} <= paths
    assert meta["datasets"] == Library(lib).manifest["datasets"] and set(meta["licences"]) == set(meta["datasets"])
    assert pack_library(lib, tmp_path).name == bundle.name  # same library, same version


def test_pull_over_http_then_fit_ranks_as_the_local_library(built_library, bundle, tmp_path):
    _, lib = built_library
    store = Store(tmp_path / "store")
    inputs, y = _target()
    with FileServer(bundle) as server:
        pulled = resolve_library(store, server.url)  # a URL: pulled into the store once
        assert (
            resolve_library(store, server.url) == pulled
            and len(server.requests) == 1 + len(json.loads((bundle / BUNDLE_FILE).read_text())["files"]) + 1
        )
    assert pulled.parent == pulled_root(store) and Library(pulled).verify() == len(Library(lib).manifest["shards"])
    assert resolve_library(store, Library(lib).name) == pulled  # by the pulled bundle's name, offline
    local = fit_transfer(lib, inputs, y, tmp_path / "local", **FIT)
    remote = fit_transfer(pulled, inputs, y, tmp_path / "remote", **FIT)
    pd.testing.assert_frame_equal(local.ranking, remote.ranking)


PULL_SCRIPT = """
import sys
from matlib.library.bundle import pull_library
from matlib.store import Store
pull_library(Store(sys.argv[1]), sys.argv[2])
"""


def test_a_pull_killed_mid_transfer_resumes(bundle, tmp_path):
    store = Store(tmp_path / "store")
    largest = max((f for f in json.loads((bundle / BUNDLE_FILE).read_text())["files"]), key=lambda f: f["size"])
    with FileServer(bundle, slow=largest["path"], delay_per_chunk=0.05, chunk=512) as server:
        proc = subprocess.Popen([sys.executable, "-c", PULL_SCRIPT, str(store.root), server.url], cwd=REPO)
        staging = pulled_root(store)
        part = f"{Path(largest['path']).name}.part"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(p.stat().st_size > 0 for p in staging.rglob(part)):
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        parts = list(staging.rglob(part))
        assert parts and 0 < parts[0].stat().st_size < largest["size"], "killed while the file was in transfer"
        assert not list(staging.glob(f"*/{BUNDLE_FILE}"))  # nothing that looks complete
        server.delay = 0.0
        done = pull_library(store, server.url)
        assert any(r["range"] for r in server.requests)  # the partial file continued where it stopped
    assert (done / BUNDLE_FILE).exists() and Library(done).verify() > 0
    assert not list(staging.rglob("*.part")) and not list(staging.glob(".*partial"))


def _copy(bundle: Path, dst: Path) -> Path:
    """A copy of a bundle folder to tamper with."""
    import shutil

    return Path(shutil.copytree(bundle, dst / bundle.name))


def test_a_flipped_byte_is_refused_naming_the_file(bundle, tmp_path):
    bad = _copy(bundle, tmp_path)
    shard = sorted((bad / "shards").glob("*.safetensors"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    store = Store(tmp_path / "store")
    with pytest.raises(IntegrityError, match=f"bundle file shards/{shard.name} does not match its sha256"):
        pull_library(store, str(bad))
    assert not list(pulled_root(store).glob(f"*/{BUNDLE_FILE}"))


def test_format_versions(bundle, tmp_path):
    newer = _copy(bundle, tmp_path)
    meta = json.loads((newer / BUNDLE_FILE).read_text())
    (newer / BUNDLE_FILE).write_text(json.dumps({**meta, "format_version": "2.0"}))
    with pytest.raises(MatlibError, match=r"bundle format 2\.0 is newer than this matlib reads \(1\.x\)"):
        pull_library(Store(tmp_path / "a"), str(newer))
    (newer / BUNDLE_FILE).write_text(json.dumps({**meta, "format_version": "1.0"}))
    assert (pull_library(Store(tmp_path / "b"), str(newer)) / "manifest.json").exists()


def test_paths_outside_the_library_are_refused(bundle, tmp_path):
    evil = _copy(bundle, tmp_path)
    meta = json.loads((evil / BUNDLE_FILE).read_text())
    meta["files"][0]["path"] = "../../outside.txt"
    (evil / BUNDLE_FILE).write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match="leaves the library folder"):
        pull_library(Store(tmp_path / "store"), str(evil))
