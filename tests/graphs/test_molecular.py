"""Molecular graph features checked by hand against chemistry (charged atom, aromatic ring, radical, polymer `*`)."""

from __future__ import annotations

import numpy as np
import pytest

from matlib.graphs.molecular import (
    ATOM_FEATURE_NAMES,
    ATOM_SYMBOLS,
    BOND_FEATURE_NAMES,
    N_ATOM_FEATURES,
    N_BOND_FEATURES,
    smiles_to_graph,
)


def on(row: np.ndarray, names=ATOM_FEATURE_NAMES) -> dict[str, float]:
    """The non-zero features of one row by name."""
    return {names[j]: float(v) for j, v in enumerate(row) if v != 0}


def test_layout_is_the_canonical_74_and_12():
    assert N_ATOM_FEATURES == 74 and N_BOND_FEATURES == 12
    assert len(ATOM_SYMBOLS) == 43 and ATOM_SYMBOLS[:4] == ("C", "N", "O", "S") and ATOM_SYMBOLS[-1] == "Pb"
    # 43 types, degree 0-10 (11), implicit valence 0-6 (7), charge, radicals, 5 hybridizations, aromatic, H 0-4
    assert ATOM_FEATURE_NAMES.index("degree_0") == 43
    assert ATOM_FEATURE_NAMES.index("implicit_valence_0") == 54
    assert ATOM_FEATURE_NAMES.index("formal_charge") == 61
    assert ATOM_FEATURE_NAMES.index("radical_electrons") == 62
    assert ATOM_FEATURE_NAMES[63:68] == [
        "hybridization_SP",
        "hybridization_SP2",
        "hybridization_SP3",
        "hybridization_SP3D",
        "hybridization_SP3D2",
    ]
    assert ATOM_FEATURE_NAMES[68] == "aromatic" and ATOM_FEATURE_NAMES[69:] == [f"total_h_{i}" for i in range(5)]
    assert BOND_FEATURE_NAMES[:6] == [
        "bond_single",
        "bond_double",
        "bond_triple",
        "bond_aromatic",
        "conjugated",
        "in_ring",
    ]


def test_ammonium_is_a_charged_sp3_nitrogen_with_four_h():
    g = smiles_to_graph("[NH4+]")
    assert g.x.shape == (1, 74) and g.n_edges == 0
    # N, no heavy neighbours, the 4 H written in the bracket are explicit (implicit valence 0), charge +1, sp3
    assert on(g.x[0]) == {
        "type_N": 1,
        "degree_0": 1,
        "implicit_valence_0": 1,
        "formal_charge": 1.0,
        "hybridization_SP3": 1,
        "total_h_4": 1,
    }


def test_acetate_oxygen_carries_minus_one():
    g = smiles_to_graph("CC(=O)[O-]")
    charges = g.x[:, ATOM_FEATURE_NAMES.index("formal_charge")]
    assert charges.tolist() == [0, 0, 0, -1]
    assert on(g.x[3])["type_O"] == 1 and on(g.x[3])["degree_1"] == 1 and "total_h_0" in on(g.x[3])


def test_pyridine_ring_is_aromatic():
    g = smiles_to_graph("c1ccncc1")
    assert g.x.shape == (6, 74)
    carbon, nitrogen = on(g.x[0]), on(g.x[3])
    # aromatic CH: two ring neighbours, one implicit H, sp2
    assert carbon == {
        "type_C": 1,
        "degree_2": 1,
        "implicit_valence_1": 1,
        "hybridization_SP2": 1,
        "aromatic": 1,
        "total_h_1": 1,
    }
    # pyridine N: two ring neighbours, no H, sp2, aromatic
    assert nitrogen == {
        "type_N": 1,
        "degree_2": 1,
        "implicit_valence_0": 1,
        "hybridization_SP2": 1,
        "aromatic": 1,
        "total_h_0": 1,
    }
    # 6 ring bonds -> 12 directed edges, each aromatic, conjugated, in a ring, no stereo
    assert g.edge_index.shape == (2, 12)
    for row in g.edge_attr:
        assert on(row, BOND_FEATURE_NAMES) == {"bond_aromatic": 1, "conjugated": 1, "in_ring": 1, "stereo_none": 1}
    # both directions of every bond
    pairs = {tuple(p) for p in g.edge_index.T.tolist()}
    assert all((j, i) in pairs for i, j in pairs)


def test_methyl_radical_and_sp_carbon():
    assert on(smiles_to_graph("[CH3]").x[0])["radical_electrons"] == 1.0
    co2 = smiles_to_graph("O=C=O")
    assert "hybridization_SP" in on(co2.x[1]) and on(co2.x[1])["degree_2"] == 1


def test_trans_double_bond_stereo():
    g = smiles_to_graph("C/C=C/C")
    double = [on(r, BOND_FEATURE_NAMES) for r in g.edge_attr if r[BOND_FEATURE_NAMES.index("bond_double")]]
    assert len(double) == 2 and all(d.get("stereo_e") == 1 for d in double)


def test_polymer_ends_are_capped_like_the_fingerprints():
    # polystyrene repeat unit -> ethylbenzene (8 heavy atoms): the `*` ends become H on their neighbours
    g = smiles_to_graph("*CC(*)c1ccccc1")
    assert g.x.shape == (8, 74)
    assert g.x[:, :43].sum(axis=1).tolist() == [1] * 8  # every atom has a known type: no dummy left
    ch3 = on(g.x[0])
    assert ch3 == {"type_C": 1, "degree_1": 1, "implicit_valence_3": 1, "hybridization_SP3": 1, "total_h_3": 1}
    assert g.x[:, ATOM_FEATURE_NAMES.index("aromatic")].sum() == 6
    # kept as dummy atoms, `*` has no type among the 43 symbols (all zeros) but keeps its bond
    d = smiles_to_graph("*CC(*)c1ccccc1", polymer_ends="dummy")
    assert d.x.shape == (10, 74) and d.x[0, :43].sum() == 0 and on(d.x[0])["degree_1"] == 1


def test_bad_smiles_raises_a_reason():
    with pytest.raises(ValueError, match="unparseable"):
        smiles_to_graph("C1CC")
