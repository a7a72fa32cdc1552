"""Standard descriptors for the direct learners, whatever the library uses; the concat descriptor."""

import numpy as np
import pandas as pd

from matlib.descriptors import DescriptorSpec, get_featurizer
from matlib.transfer.direct import add_standard_descriptors, raw_features, standard_specs
from matlib.transfer.target import prepare_target
from tests.fixtures import TEST_DATA
from tests.transfer.conftest import esol_rows


def test_standard_sets_per_input_kind():
    assert [s["name"] for s in standard_specs("molecule")] == ["rdkit2d", "morgan", "concat"]
    assert [s["name"] for s in standard_specs("composition")] == ["magpie", "xenonpy"]
    both = standard_specs("molecule")[2]
    assert [p["name"] for p in both["params"]["parts"]] == ["rdkit2d", "morgan"]


def test_concat_stacks_its_parts_and_round_trips_as_a_spec():
    smiles = esol_rows(5)["smiles"].tolist()
    spec = standard_specs("molecule")[2]
    feat = get_featurizer(DescriptorSpec.from_dict(spec))
    res = feat.featurize(smiles)
    a = get_featurizer("rdkit2d").featurize(smiles).X
    b = get_featurizer(DescriptorSpec("morgan", {"radius": 2, "n_bits": 2048, "counts": True})).featurize(smiles).X
    np.testing.assert_array_equal(res.X, np.hstack([a, b]))
    assert feat.input_kind == "molecule" and res.ok.all() and res.X.shape[1] == feat.n_features


def test_partly_undefined_rows_keep_their_defined_values():
    """RDKit leaves 12 of its 2D descriptors undefined for a selenium compound: the row keeps the other values."""
    X, ok = raw_features(["CCO", "c1cc[se]c1"], standard_specs("molecule")[0])
    assert ok.all()
    assert np.isnan(X[1]).sum() > 0 and np.isfinite(X[1]).sum() > 150 and np.isfinite(X[0]).all()


def test_added_to_a_target_that_has_only_the_library_descriptor():
    """A library on MACCS keys alone: the target gains rdkit2d, Morgan and both (compositions: magpie, xenonpy)."""
    df = esol_rows(30)
    maccs = DescriptorSpec("maccs").to_dict()
    target = prepare_target(df["smiles"].tolist(), df["logSolubility"].tolist(), {maccs["hash"]: maccs})
    added = add_standard_descriptors(target, "molecule")
    assert added == ["rdkit2d", "morgan", "concat"]
    assert len(target.features) == 4 and all(len(X) == 30 for X in target.features.values())
    assert add_standard_descriptors(target, "molecule") == []  # nothing twice
    comp = pd.read_csv(TEST_DATA / "mp" / "matbench_castelli.csv").head(30)
    magpie = DescriptorSpec("magpie").to_dict()
    t2 = prepare_target(comp["formula"].tolist(), comp["target"].tolist(), {magpie["hash"]: magpie})
    assert add_standard_descriptors(t2, "composition") == ["xenonpy"]  # magpie is the library's own
