"""Leakage guard: models trained on the target's own data / property / inputs are flagged and left out."""

import pandas as pd

from matlib.library import Library
from matlib.transfer import fit_transfer
from matlib.transfer.leakage import canonical_input
from tests.fixtures import TEST_DATA
from tests.transfer.conftest import REPO


def test_canonical_keys():
    assert canonical_input("OC", "molecule") == canonical_input("CO", "molecule")
    assert canonical_input("Fe2O3", "composition") == canonical_input("O3Fe2", "composition")
    assert canonical_input("Fe4O6", "composition") == canonical_input("Fe2O3", "composition")
    assert canonical_input("C1CC((", "molecule") is None


def test_same_data_and_overlap_flagged(small_library, tmp_path):
    # target = rows the QM9 models were trained on, with their own HOMO-LUMO gap values, renamed column
    qm9 = pd.read_csv(REPO / "data" / "samples" / "qm9_sample.csv").head(30)
    res = fit_transfer(small_library, qm9["smiles"].tolist(), qm9["HOMO_LUMO_gap_au"].tolist(), tmp_path / "leak",
                       target_column="gap", top_k=2, repeats=1, folds=4, learners=("ridge",),
                       direct_learners=("ridge",))
    tr = res.ranking[res.ranking["kind"] == "transfer"]
    assert tr["leak"].all()
    lib = Library(small_library).catalog.set_index("model_id")
    gap = tr[tr["model_id"].map(lib["property"]) == "HOMO_LUMO_gap_au"]
    assert gap["leak_reason"].str.contains("own values").all()
    assert tr["leak_reason"].str.contains("trained on 30 of the target's 30 inputs").all()
    assert (res.refined["kind"] == "direct").all()  # nothing flagged reaches refinement
    assert any("leakage guard" in n for n in res.notes)
    # explicitly allowing leakage keeps them
    res2 = fit_transfer(small_library, qm9["smiles"].tolist(), qm9["HOMO_LUMO_gap_au"].tolist(), tmp_path / "allow",
                        target_column="gap", top_k=2, repeats=1, folds=4, allow_leakage=True,
                        learners=("ridge",), direct_learners=("ridge",))
    assert (res2.refined["kind"] == "transfer").any()


def test_same_property_name_flagged(small_library, tmp_path):
    esol = pd.read_csv(TEST_DATA / "targets" / "esol.csv").head(30)
    res = fit_transfer(small_library, esol["smiles"].tolist(), esol["logSolubility"].tolist(), tmp_path / "p",
                       target_column="Polarizability_bohr3", top_k=1, repeats=1, folds=4, max_overlap=1.0,
                       learners=("ridge",), direct_learners=("ridge",))
    tr = res.ranking[res.ranking["kind"] == "transfer"]
    lib = Library(small_library).catalog.set_index("model_id")
    pol = tr["model_id"].map(lib["property"]) == "Polarizability_bohr3"
    assert tr.loc[pol, "leak"].all() and not tr.loc[~pol, "leak"].any()
    assert tr.loc[pol, "leak_reason"].str.contains("same property").all()
