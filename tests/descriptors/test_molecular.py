"""Molecular descriptors (morgan, maccs, rdkit2d) on real QM9 / ESOL / polymer SMILES."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem, Descriptors, MACCSkeys

from matlib.descriptors import get_featurizer, molecular
from matlib.descriptors.polymer import cap_ends
from tests.fixtures import TEST_DATA


def test_morgan_counts_equal_plain_rdkit(qm9_smiles):
    res = get_featurizer("morgan").featurize(qm9_smiles)
    assert res.ok.all() and res.X.shape == (len(qm9_smiles), 2048)
    for i, smi in enumerate(qm9_smiles[:100]):
        fp = AllChem.GetHashedMorganFingerprint(Chem.MolFromSmiles(smi), 2, nBits=2048)
        ref = np.zeros(2048)
        for k, v in fp.GetNonzeroElements().items():
            ref[k] = v
        np.testing.assert_array_equal(res.X[i], ref)


def test_morgan_radius_and_bits_are_parameters(qm9_smiles):
    feat = get_featurizer({"name": "morgan", "params": {"radius": 3, "n_bits": 512, "counts": False}})
    res = feat.featurize(qm9_smiles[:50])
    assert res.X.shape == (50, 512) and set(np.unique(res.X)) <= {0.0, 1.0}
    assert feat.spec.hash != get_featurizer("morgan").spec.hash


def test_maccs_and_rdkit2d_match_rdkit(qm9_smiles):
    smi = qm9_smiles[:40]
    maccs = get_featurizer("maccs").featurize(smi)
    r2d = get_featurizer("rdkit2d")
    res = r2d.featurize(smi)
    assert maccs.ok.all() and res.ok.all()
    for i, s in enumerate(smi[:10]):
        mol = Chem.MolFromSmiles(s)
        bits = np.zeros(167)
        bits[list(MACCSkeys.GenMACCSKeys(mol).GetOnBits())] = 1
        np.testing.assert_array_equal(maccs.X[i], bits)
        ref = np.array([f(mol) for _, f in Descriptors._descList], dtype=np.float32)
        np.testing.assert_array_equal(res.X[i], ref)
    assert r2d.feature_names[:3] == [n for n, _ in Descriptors._descList][:3]


def test_charged_and_odd_smiles():
    smiles = [
        "[NH4+]",
        "[O-]C(=O)C",
        "[Na+].[Cl-]",
        "C[N+](C)(C)C",
        "c1ccccc1",
        "C1CC",
        "c1cccc1",
        "not a smiles",
        "",
        "[2H]OC",
    ]
    for name in ("morgan", "maccs", "rdkit2d"):
        res = get_featurizer(name).featurize(smiles)
        # RDKit's BCUT2D descriptors are NaN for a salt of single ions: that row is a failure with a reason
        salt_ok = name != "rdkit2d"
        assert res.ok.tolist() == [True, True, salt_ok, True, True, False, False, False, False, True], name
        if not salt_ok:
            assert res.reasons[2].startswith("non-finite descriptor value in BCUT2D_MWHI")
        assert "unparseable SMILES 'C1CC'" == res.reasons[5]
        assert res.reasons[8] == "empty SMILES"
        assert np.isnan(res.X[~res.ok]).all() and np.isfinite(res.X[res.ok]).all()


def test_polymer_repeat_units_are_capped_with_hydrogen(polymer_smiles):
    assert all("*" in s for s in polymer_smiles[:20])
    capped = cap_ends(Chem.MolFromSmiles("*CC(*)c1ccccc1"))
    assert Chem.MolToSmiles(capped) == Chem.MolToSmiles(Chem.MolFromSmiles("CCc1ccccc1"))  # polystyrene
    res = get_featurizer("morgan").featurize(polymer_smiles)
    assert res.ok.all(), [r for r in res.reasons if r][:3]
    same = get_featurizer("morgan").featurize(["*CC(*)c1ccccc1", "CCc1ccccc1"])
    np.testing.assert_array_equal(same.X[0], same.X[1])


def test_polymer_end_policies_differ():
    smi = ["*CC(*)c1ccccc1"]
    methyl = get_featurizer({"name": "maccs", "params": {"polymer_ends": "methyl"}}).featurize(smi)
    dummy = get_featurizer({"name": "morgan", "params": {"polymer_ends": "dummy"}}).featurize(smi)
    assert methyl.ok.all() and dummy.ok.all()
    hydro = get_featurizer("morgan").featurize(smi)
    assert not np.array_equal(dummy.X, hydro.X)
    ref = get_featurizer({"name": "maccs"}).featurize(["CCC(C)c1ccccc1"])  # both ends methyl-capped
    np.testing.assert_array_equal(methyl.X, ref.X)


def test_rdkit2d_on_polymers_and_esol():
    import pandas as pd

    esol = pd.read_csv(TEST_DATA / "targets" / "esol.csv")["smiles"].head(60).tolist()
    res = get_featurizer("rdkit2d").featurize(esol + ["*Oc1ccc(cc1)C(C)(C)c1ccc(cc1)OC(=O)*"])
    assert res.ok.all()


def test_empty_input():
    for name in ("morgan", "maccs", "rdkit2d"):
        feat = get_featurizer(name)
        res = feat.featurize([])
        assert res.X.shape == (0, len(feat.feature_names)) and res.reasons == []


@pytest.mark.parametrize("name", ["morgan", "maccs", "rdkit2d"])
def test_duplicates_are_computed_once_and_copied(name, qm9_smiles, monkeypatch):
    distinct, alone, seen = [], [], set()
    for smiles in qm9_smiles:  # five molecules with distinct rows, so a misassigned row shows
        row = get_featurizer(name).featurize([smiles]).X[0]  # each input featurised on its own
        if row.tobytes() not in seen:
            seen.add(row.tobytes())
            distinct.append(smiles)
            alone.append(row)
        if len(distinct) == 5:
            break
    calls: list[str] = []
    real = molecular.to_mol

    def counting_to_mol(smiles, *args, **kwargs):
        calls.append(smiles)
        return real(smiles, *args, **kwargs)

    monkeypatch.setattr(molecular, "to_mol", counting_to_mol)
    order = [0, 1, 2, 3, 4, 4, 2, 0, 3, 1, 1, 3, 0, 2, 4]  # every input three times, repeats out of order
    res = get_featurizer(name).featurize([distinct[i] for i in order])
    assert sorted(calls) == sorted(distinct)  # each distinct molecule featurised once
    assert res.ok.all()
    for row, i in zip(res.X, order):
        np.testing.assert_array_equal(row, alone[i])


def test_in_chain_star_becomes_a_carbon():
    capped = cap_ends(Chem.MolFromSmiles("*CC(=O)c1ccc(*c2ccccc2)cc1"))  # the second * bonds two atoms
    assert Chem.MolToSmiles(capped) == Chem.MolToSmiles(Chem.MolFromSmiles("CC(=O)c1ccc(Cc2ccccc2)cc1"))
