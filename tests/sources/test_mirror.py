"""Offline mirrors: built by scripts/build_mirror.py from tests/fixtures/data, read from a folder or over HTTP,
giving the same datasets as the loopback services; a mirror also records from a (loopback) service."""

from __future__ import annotations

import functools
import importlib.util
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pandas as pd
import pytest

from matlib.errors import MatlibError
from matlib.sources import refresh
from matlib.sources.mirror import MANIFEST, MirrorTransport, RecordingTransport, mirror_key
from matlib.store import Store
from tests.fixtures.http_server import FAST, MP_KEY, TEST_DATA

REPO = Path(__file__).resolve().parents[2]
ROWS = 30


def _script():
    spec = importlib.util.spec_from_file_location("build_mirror", REPO / "scripts" / "build_mirror.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A mirror folder built by the script's --from-shared code from the repository's test data."""
    bm = _script()
    out = tmp_path_factory.mktemp("mirror") / "m"
    bm.build_from_shared(TEST_DATA, out, rows=ROWS)
    return bm, out


def _same(a, b) -> None:
    cols = sorted(a.records.columns)
    assert cols == sorted(b.records.columns)
    pd.testing.assert_frame_equal(
        a.records[cols].sort_values("record_id").reset_index(drop=True),
        b.records[cols].sort_values("record_id").reset_index(drop=True),
    )
    assert a.version == b.version  # content-addressed: the same records give the same version


URLS = {"mp": "", "oqmd": "", "aflow": "/API/aflux/v1.0", "qm9": "/ndownloader/files/3195389"}


@pytest.mark.parametrize("source", ["mp", "oqmd", "aflow", "qm9"])
def test_mirror_folder_gives_the_loopback_dataset(built, server, tmp_path, monkeypatch, source):
    bm, mirror = built
    monkeypatch.setenv("MP_API_KEY", MP_KEY)
    server.mp, server.oqmd, server.aflow = (
        bm.mp_docs(TEST_DATA, ROWS),
        bm.oqmd_entries(TEST_DATA, ROWS),
        bm.aflow_entries(TEST_DATA, ROWS),
    )
    server.tarball, server.uncharacterized = bm.qm9_files(TEST_DATA, ROWS)
    live = refresh(Store(tmp_path / "a"), source, url=server.url + URLS[source], **FAST)
    monkeypatch.delenv("MP_API_KEY")  # a mirror needs no key
    offline = refresh(Store(tmp_path / "b"), source, mirror=str(mirror), **FAST)
    assert len(offline.records) > 0
    _same(live, offline)
    assert offline.manifest["crawl"]["mirror"]["origin"] == "shared"


def test_mirror_over_http_and_matlib_mirror_setting(built, tmp_path, monkeypatch):
    _, mirror = built
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=str(mirror)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        monkeypatch.setenv("MATLIB_MIRROR", url)
        a = refresh(Store(tmp_path / "http"), "aflow", **FAST)
        b = refresh(Store(tmp_path / "dir"), "aflow", mirror=str(mirror), **FAST)
        _same(a, b)
        assert a.manifest["crawl"]["mirror"]["location"] == url
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_mirror_refuses_missing_and_corrupt_files(built, tmp_path):
    _, mirror = built
    with pytest.raises(MatlibError) as err:  # another page size: pages the mirror never recorded
        refresh(Store(tmp_path / "s"), "oqmd", mirror=str(mirror), page_size=7, **FAST)
    assert "has no copy of GET https://oqmd.org/oqmdapi/formationenergy" in str(err.value)
    assert "\n" not in str(err.value)
    bad = tmp_path / "bad"
    import shutil

    shutil.copytree(mirror, bad)
    manifest = json.loads((bad / MANIFEST).read_text())
    key = next(k for k in manifest["files"] if k.startswith("aflow.org"))
    (bad / key).write_bytes(b"[]")
    with pytest.raises(MatlibError, match="does not match its sha256"):
        refresh(Store(tmp_path / "t"), "aflow", mirror=str(bad), **FAST)
    with pytest.raises(MatlibError, match="no mirror.json"):
        refresh(Store(tmp_path / "u"), "aflow", mirror=str(tmp_path), **FAST)


def test_recording_a_mirror_from_a_service(server, tmp_path, monkeypatch):
    """The --from-service path (here against the loopback service): record, then refresh offline."""
    from matlib.sources import get_source
    from matlib.sources.base import refresh_source

    rec = RecordingTransport(tmp_path / "m", inner=httpx.HTTPTransport(), origin="service")
    live = refresh_source(
        Store(tmp_path / "a"), get_source("oqmd"), server.url, None, {**FAST, "page_size": 15, "transport": rec}
    )
    rec.finish()
    files = json.loads((tmp_path / "m" / MANIFEST).read_text())["files"]
    assert len(files) == 3 and all(k.startswith("127.0.0.1_") for k in files)
    offline = refresh(Store(tmp_path / "b"), "oqmd", url=server.url, page_size=15, mirror=str(tmp_path / "m"), **FAST)
    _same(live, offline)
    assert len(server.hits("oqmd")) == 3  # the offline refresh made no request to the service


def test_mirror_key_layout():
    assert mirror_key("https://api.materialsproject.org/materials/summary/?_skip=0&_limit=5") == mirror_key(
        "https://api.materialsproject.org/materials/summary/?_limit=5&_skip=0"
    )
    assert (
        mirror_key("https://ndownloader.figshare.com/files/3195389") == "ndownloader.figshare.com/files/3195389/index"
    )
    assert mirror_key("http://u:p@h:8080/x?api_key=K&a=1") == mirror_key("http://h:8080/x?a=1")
    assert mirror_key("http://h:8080/x").startswith("h_8080/x/")
    with pytest.raises(MatlibError):
        mirror_key("http://h/../etc/passwd")


def test_recording_files_a_redirected_download_under_the_url_asked_for(tmp_path):
    """figshare redirects its download URL to a signed storage URL: the mirror files the body under the figshare
    URL (which the crawler asks for) and never stores the signature."""
    signed = "https://storage.example/qm9.tar.bz2?X-Amz-Signature=SIG-SECRET-1&X-Amz-Expires=10"

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "ndownloader.figshare.com":
            return httpx.Response(302, headers={"Location": signed})
        return httpx.Response(200, content=b"BZh9-tarball-bytes")

    rec = RecordingTransport(tmp_path / "m", inner=httpx.MockTransport(handle))
    with httpx.Client(transport=rec, follow_redirects=True) as client:
        assert client.get("https://ndownloader.figshare.com/files/3195389").content == b"BZh9-tarball-bytes"
    rec.finish()
    text = (tmp_path / "m" / MANIFEST).read_text()
    files = json.loads(text)["files"]
    assert list(files) == ["ndownloader.figshare.com/files/3195389/index"] and "SIG-SECRET-1" not in text
    with httpx.Client(transport=MirrorTransport(str(tmp_path / "m"))) as client:
        assert client.get("https://ndownloader.figshare.com/files/3195389").content == b"BZh9-tarball-bytes"


def test_a_mirror_folder_is_read_without_the_services_rate_limit(built, tmp_path):
    """The politeness limit (5 requests/s by default) is for the real service; a local copy is read at full speed,
    unless a rate is asked for."""
    _, mirror = built
    ds = refresh(Store(tmp_path / "free"), "qm9", mirror=str(mirror))  # two files: the tarball and a list
    assert ds.manifest["crawl"]["requests"] >= 2
    assert ds.manifest["crawl"]["rate_limited_s"] == 0
    slow = refresh(Store(tmp_path / "slow"), "qm9", mirror=str(mirror), rate_per_second=4.0)
    assert slow.manifest["crawl"]["rate_limited_s"] > 0


def test_rate_option_zero_or_none_means_no_limit():
    from matlib.sources.base import crawl_config

    assert crawl_config({}).rate_per_second == 5.0
    assert crawl_config({"rate_per_second": 0.0}).rate_per_second is None
    assert crawl_config({"rate_per_second": None}).rate_per_second is None
    assert crawl_config({"rate_per_second": 2.0}).rate_per_second == 2.0
