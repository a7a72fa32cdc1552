"""QM9 crawler: figshare files 3195389 (tarball) and 3195404 (uncharacterized list), 200 + bzip2 only, sha256
checked, *^ exponents, Hartree -> eV, malformed members quarantined."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from matlib.datasets import list_datasets
from matlib.errors import MatlibError
from matlib.sources import refresh
from matlib.sources.qm9 import (
    DEFAULT_URL,
    HARTREE_EV,
    KNOWN_FILES,
    excluded_url,
    figshare_file_id,
    parse_uncharacterized,
    parse_xyz,
    qm9_float,
)
from tests.fixtures import TEST_DATA
from tests.fixtures.http_server import FAST, qm9_tarball, uncharacterized_txt

FIGSHARE = "/ndownloader/files/3195389"


def test_qm9_tarball_parsed_with_units(server, store):
    server.uncharacterized = uncharacterized_txt([(58, "NC(=N)C#N")])
    ds = refresh(store, "qm9", url=server.url + FIGSHARE, **FAST)
    rec = ds.records.set_index("record_id")
    assert sorted(rec.index) == ["dsgdb9nsd_017001", "dsgdb9nsd_067017", "dsgdb9nsd_129001"]
    # compare with the same molecules in the curated CSV (energies in Hartree there)
    csv = pd.read_csv(TEST_DATA / "qm9" / "qm9.csv.gz").set_index("gdb_id").loc[rec.index]
    assert list(rec["input"]) == list(csv["smiles"])
    assert rec["homo_eV"].to_numpy() == pytest.approx(csv["HOMO_au"].to_numpy() * HARTREE_EV)
    assert rec["U0_eV"].to_numpy() == pytest.approx(csv["InternalEnergy_0K_au"].to_numpy() * HARTREE_EV)
    assert rec["mu_debye"].to_numpy() == pytest.approx(csv["Dipole_debye"].to_numpy())
    assert (rec["n_atoms"] == csv["n_atoms"]).all()
    assert ds.manifest["kind"] == "molecule"
    files = ds.manifest["crawl"]["files"]
    assert files["dsgdb9nsd.xyz.tar.bz2"]["sha256"] == hashlib.sha256(server.tarball).hexdigest()


def test_uncharacterized_molecules_are_quarantined_or_flagged(server, store):
    """The authors' list (real layout) is fetched beside the tarball; listed molecules are quarantined with the
    reason, or kept and flagged. Failed before: they were committed as ordinary training rows."""
    ds = refresh(store, "qm9", url=server.url + FIGSHARE, **FAST)
    assert server.hits("qm9-list")[0]["path"] == "/ndownloader/files/3195404"
    q = ds.quarantine(store)
    assert list(q["record_id"]) == ["dsgdb9nsd_067017"] and "uncharacterized" in q["reason"].iloc[0]
    assert "dsgdb9nsd_067017" not in set(ds.records["record_id"]) and len(ds.records) == 2
    assert ds.manifest["crawl"]["n_uncharacterized_listed"] == 2
    flagged = refresh(store, "qm9", url=server.url + FIGSHARE, uncharacterized="flag", name="qm9flag", **FAST)
    rec = flagged.records.set_index("record_id")
    assert (
        len(rec) == 3
        and rec.at["dsgdb9nsd_067017", "uncharacterized"]
        and not rec.at["dsgdb9nsd_017001", "uncharacterized"]
    )


def test_waf_challenge_202_is_a_one_line_error_not_a_done_snapshot(server, store):
    """figshare's web host answers scripts with an empty HTTP 202. Failed before: a 0-byte tarball was saved, the
    snapshot marked done, and the parse crashed with tarfile.ReadError."""
    server.fail("qm9", "202")
    with pytest.raises(MatlibError) as err:
        refresh(store, "qm9", url=server.url + FIGSHARE, **FAST)
    msg = str(err.value)
    assert "\n" not in msg and "HTTP 202" in msg and "empty body" in msg
    cps = [json.loads(p.read_text()) for p in store.raw("qm9").glob("*/checkpoint.json")]
    assert len(cps) == 1 and not cps[0]["done"] and cps[0]["files"] == {}
    assert not any(p.name.endswith(".tar.bz2") for p in store.raw("qm9").rglob("*"))
    assert list_datasets(store).empty
    ds = refresh(store, "qm9", url=server.url + FIGSHARE, **FAST)  # the next run resumes and succeeds
    assert len(ds.records) == 2 and ds.manifest["crawl"]["resumed"] is True


def test_html_page_with_200_is_refused(server, store):
    server.fail("qm9", "html200")
    with pytest.raises(MatlibError, match="HTML page.*not the .tar.bz2"):
        refresh(store, "qm9", url=server.url + FIGSHARE, **FAST)


def test_sha256_mismatch_is_refused(server, store):
    with pytest.raises(MatlibError) as err:
        refresh(store, "qm9", url=server.url + FIGSHARE, sha256="0" * 64, **FAST)
    assert "expected 0000000000000000" in str(err.value) and "\n" not in str(err.value)
    ok = refresh(store, "qm9", url=server.url + FIGSHARE, sha256=hashlib.sha256(server.tarball).hexdigest(), **FAST)
    assert len(ok.records) == 2


def test_documented_checksums_for_figshare_urls():
    assert DEFAULT_URL == "https://ndownloader.figshare.com/files/3195389"
    assert figshare_file_id(DEFAULT_URL) == "3195389" in KNOWN_FILES
    assert figshare_file_id("https://api.figshare.com/v2/file/download/3195389") == "3195389"
    assert figshare_file_id("http://127.0.0.1:8000/ndownloader/files/3195389") is None  # not figshare: recorded only
    assert excluded_url(DEFAULT_URL) == "https://ndownloader.figshare.com/files/3195404"
    assert (
        excluded_url("https://api.figshare.com/v2/file/download/3195389")
        == "https://api.figshare.com/v2/file/download/3195404"
    )
    assert excluded_url("http://x/dsgdb9nsd.xyz.tar.bz2") is None


def test_uncharacterized_format():
    text = uncharacterized_txt([(58, "NC(=N)C#N"), (61, "NC(=N)C=O"), (133866, "C1C2OC3CC4OC1C234")]).decode()
    assert parse_uncharacterized(text) == {58, 61, 133866}
    with pytest.raises(ValueError):
        parse_uncharacterized("<html>not the list</html>")


def test_mathematica_exponents_and_malformed_member(server, store):
    good = (TEST_DATA / "qm9" / "raw" / "dsgdb9nsd_129001.xyz").read_text()
    lines = good.splitlines()
    parts = lines[2].split("\t")  # first atom line: give its Mulliken charge in QM9's *^ notation
    parts[-1] = "-4.3217*^-2"
    with_exp = "\n".join([lines[0], lines[1].replace("gdb 129001", "gdb 129002"), "\t".join(parts), *lines[3:]])
    server.tarball = qm9_tarball({"dsgdb9nsd_129002.xyz": with_exp, "dsgdb9nsd_000099.xyz": "5\nnot a gdb line\n"})
    ds = refresh(store, "qm9", url=server.url + "/qm9.tar.bz2", **FAST)
    assert "dsgdb9nsd_129002" in set(ds.records["record_id"])
    q = ds.quarantine(store)
    assert list(q["record_id"]) == ["dsgdb9nsd_000099"] and q["reason"].iloc[0].startswith("malformed .xyz")
    assert len(ds.records) == 4
    assert ds.manifest["crawl"]["n_uncharacterized_listed"] is None  # no list beside a non-figshare URL
    assert qm9_float("2.1997*^-6") == pytest.approx(2.1997e-6)
    assert parse_xyz(with_exp)["record_id"] == "dsgdb9nsd_129002"
