"""Parity of `magpie` with matminer's ElementProperty.from_preset("magpie") on real MP formulas."""

from __future__ import annotations

import warnings

import numpy as np
from matminer.featurizers.composition import ElementProperty
from pymatgen.core import Composition

from matlib.descriptors import get_featurizer


def _matminer(formulas):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = ElementProperty.from_preset("magpie")
        return ep, np.array([ep.featurize(Composition(f)) for f in formulas], dtype=np.float64)


def test_magpie_equals_matminer_on_1200_mp_formulas(mp_formulas, fractional_formulas):
    formulas = mp_formulas + fractional_formulas[:100]
    feat = get_featurizer("magpie")
    res = feat.featurize(formulas)
    ep, ref = _matminer(formulas)
    assert feat.feature_names == ep.feature_labels() and len(feat.feature_names) == 132
    assert res.ok.all() and res.X.dtype == np.float32
    # all 132 features within 1e-6 relative; exact zeros must stay (numerically) zero
    np.testing.assert_allclose(res.X, ref, rtol=1e-6, atol=1e-12)


def test_magpie_mode_ties_take_smallest_value():
    # NaCl: equal amounts -> matminer returns the smaller property value among the tied elements
    res = get_featurizer("magpie").featurize(["NaCl", "Na2Cl"])
    names = get_featurizer("magpie").feature_names
    j = names.index("MagpieData mode Number")
    assert res.X[0, j] == 11.0 and res.X[1, j] == 11.0
    res2 = get_featurizer("magpie").featurize(["NaCl2"])
    assert res2.X[0, j] == 17.0


def test_magpie_failures_keep_their_row():
    res = get_featurizer("magpie").featurize(["Fe2O3", "Zz3", "", "Og2"])
    assert res.ok.tolist() == [True, False, False, True]  # Og has imputed Magpie values (matminer's rule)
    assert np.isnan(res.X[1]).all() and np.isnan(res.X[2]).all() and np.isfinite(res.X[3]).all()
    assert "unknown element 'Zz'" in res.reasons[1] and res.reasons[2] == "empty formula"


def test_magpie_without_imputation_quarantines_elements_lacking_data():
    feat = get_featurizer({"name": "magpie", "params": {"impute_nan": False}})
    res = feat.featurize(["Fe2O3", "HeNe"])  # He has no Magpie melting point
    assert res.ok.tolist() == [True, False]
    assert "He" in res.reasons[1] and "magpie element table" in res.reasons[1]


def test_empty_input():
    res = get_featurizer("magpie").featurize([])
    assert res.X.shape == (0, 132) and res.ok.shape == (0,) and res.reasons == []
