"""QM9 tarball crawler: streamed .tar.bz2 of the real .xyz files, *^ exponents, Hartree -> eV."""

from __future__ import annotations

import pandas as pd
import pytest

from matlib.sources import refresh
from matlib.sources.qm9 import HARTREE_EV, parse_xyz, qm9_float
from tests.fixtures import TEST_DATA
from tests.fixtures.http_server import FAST, qm9_tarball


def test_qm9_tarball_parsed_with_units(server, store):
    ds = refresh(store, "qm9", url=server.url + "/dsgdb9nsd.xyz.tar.bz2", **FAST)
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
    assert qm9_float("2.1997*^-6") == pytest.approx(2.1997e-6)
    assert parse_xyz(with_exp)["record_id"] == "dsgdb9nsd_129002"
