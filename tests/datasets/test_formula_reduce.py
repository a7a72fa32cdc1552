"""Reduced formulas used as dataset inputs agree with pymatgen's composition on a real sample."""

from __future__ import annotations

import pandas as pd
import pytest
from pymatgen.core import Composition

from matlib.datasets.validate import normalise_inputs, reduced_formula


def test_reduced_formula_matches_pymatgen_on_real_formulas(real_data):
    formulas = pd.read_csv(real_data / "mp" / "mp_e_hull.csv", keep_default_na=False)["formula"].iloc[::30]
    frac = pd.read_csv(real_data / "oqmd" / "oqmd_bandgap.csv")["formula"].iloc[::20]
    for f in [*formulas, *frac]:
        ours = Composition(reduced_formula(f))
        assert ours.reduced_composition.almost_equals(Composition(f).reduced_composition, rtol=1e-6), f


def test_bad_formulas_get_reasons():
    norm, reason = normalise_inputs(pd.Series(["Fe2O3", "Qq2", "Fe(O", None, "  ", "NaN"]), "composition")
    assert list(norm) == ["Fe2O3", None, None, None, None, "NaN"]
    assert "unknown element 'Qq'" in reason[1] and "unclosed" in reason[2]
    assert reason[3] == reason[4] == "missing input" and reason[5] is None
    with pytest.raises(ValueError):
        reduced_formula("Xx")


def test_smiles_validation_keeps_polymer_stars():
    norm, reason = normalise_inputs(pd.Series(["CCO", "*CC*", "C1CC", "c1ccccc1 "]), "molecule")
    assert list(norm) == ["CCO", "*CC*", None, "c1ccccc1"]
    assert reason[2].startswith("unparseable SMILES")
