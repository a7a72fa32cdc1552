"""molgraph codes: a molecule's graph as one fixed-width row, decoded back exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matlib.descriptors import get_featurizer
from matlib.graphs.code import CODE_WIDTH, MAX_ATOMS, decode_codes
from matlib.graphs.spec import GraphSpec


def test_codes_decode_to_the_same_graphs(samples_dir):
    smiles = pd.read_csv(samples_dir / "qm9_sample.csv")["smiles"].head(100).tolist()
    smiles += ["*CC(*)c1ccccc1", "CC(=O)[O-]", "C/C=C/C", "[NH4+]", "[CH3]", "c1ccncc1"]
    res = get_featurizer("molgraph").featurize(smiles)
    assert res.ok.all() and res.X.shape == (len(smiles), CODE_WIDTH)
    decoded = decode_codes(res.X)
    direct, _, _ = GraphSpec("molgraph").featurize(smiles)
    np.testing.assert_array_equal(decoded.x, direct.x)
    np.testing.assert_array_equal(decoded.edge_attr, direct.edge_attr)
    np.testing.assert_array_equal(decoded.edge_index, direct.edge_index)
    np.testing.assert_array_equal(decoded.node_ptr, direct.node_ptr)


def test_too_large_and_bad_molecules_fail_with_a_reason():
    big = "C" * (MAX_ATOMS + 1)
    res = get_featurizer("molgraph").featurize([big, "C1CC", "CCO"])
    assert res.ok.tolist() == [False, False, True]
    assert "at most" in res.reasons[0] and "unparseable" in res.reasons[1]
    assert np.isnan(res.X[0]).all()
