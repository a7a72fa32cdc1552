"""Formula parsing and the sparse amount matrix, checked against pymatgen on real formulas."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition

from matlib.descriptors.composition import SYMBOLS, amount_matrix, parse_formula


def _pmg(formula: str) -> dict[str, float]:
    return {str(el): amt for el, amt in Composition(formula).element_composition.items()}


def test_fractional_formulas_match_pymatgen(fractional_formulas):
    for f in fractional_formulas:
        got, ref = parse_formula(f), _pmg(f)
        assert got.keys() == ref.keys(), f
        for el in ref:
            assert got[el] == pytest.approx(ref[el], rel=1e-12), f


def test_bracket_formulas_match_pymatgen(bracket_formulas):
    assert bracket_formulas
    for f in bracket_formulas:
        got, ref = parse_formula(f), _pmg(f)
        assert got == pytest.approx(ref, rel=1e-12), f


def test_issue_example_and_nesting():
    assert parse_formula("Fe0.62C0.00095Mn0.3") == {"Fe": 0.62, "C": 0.00095, "Mn": 0.3}
    assert parse_formula("K4[Fe(CN)6]2") == {"K": 4.0, "Fe": 2.0, "C": 12.0, "N": 12.0}
    assert parse_formula("Ca3(PO4)2") == {"Ca": 3.0, "P": 2.0, "O": 8.0}
    assert parse_formula("FeFe2O") == {"Fe": 3.0, "O": 1.0}
    assert parse_formula(" Li2O ") == {"Li": 2.0, "O": 1.0}
    assert parse_formula("Fe0O2") == {"O": 2.0}  # zero amounts are absent, as in pymatgen


@pytest.mark.parametrize(
    "bad, words",
    [
        ("Xx2O", "unknown element 'Xx'"),
        ("", "empty"),
        ("   ", "empty"),
        ("Fe(O2", "unclosed"),
        ("FeO)2", "unbalanced"),
        ("2Fe", "without an element"),
        ("Fe2O3!", "unexpected character"),
        ("fe2o3", "unexpected character"),
        ("Fe0", "no element with a positive amount"),
        ("()", "empty brackets"),
        ("Fe(O]", "unbalanced"),
    ],
)
def test_bad_formulas_raise_with_reason(bad, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_formula(bad)


def test_non_string_is_rejected():
    with pytest.raises(ValueError, match="must be a string"):
        parse_formula(None)  # type: ignore[arg-type]


def test_amount_matrix_parses_distinct_formulas_once(mp_formulas):
    rows = mp_formulas + mp_formulas[:100] + ["Qq2", "Fe2O3", ""]
    am = amount_matrix(rows)
    n_distinct = len(set(mp_formulas) | {"Fe2O3"})
    assert am.amounts.shape == (n_distinct, len(SYMBOLS))
    assert (am.row_to_distinct[:-3] >= 0).all() and am.row_to_distinct[-3] == -1 and am.row_to_distinct[-1] == -1
    assert am.reasons[-3].startswith("unknown element") and am.reasons[-1] == "empty formula"
    assert np.array_equal(am.row_to_distinct[:100], am.row_to_distinct[len(mp_formulas) : len(mp_formulas) + 100])
    fe2o3 = am.amounts[am.row_to_distinct[-2]].toarray()[0]
    assert fe2o3[25] == 2.0 and fe2o3[7] == 3.0 and fe2o3.sum() == 5.0


def test_amount_matrix_of_nothing():
    am = amount_matrix([])
    assert am.amounts.shape == (0, len(SYMBOLS)) and len(am.row_to_distinct) == 0


def test_fast_and_general_paths_agree_in_one_matrix():
    rows = ["Fe2O3", None, float("nan"), "", "Ca3(PO4)2", "Qq", "Fe0", " Li2O", "Xe1e-3", "Fe2O3", "O3Fe2"]
    am = amount_matrix(rows)
    assert am.reasons[1] == am.reasons[2] == am.reasons[3] == "empty formula"
    assert am.reasons[5].startswith("unknown element") and am.reasons[6].startswith("no element with a positive")
    ok = [i for i, r in enumerate(am.reasons) if r is None]
    assert ok == [0, 4, 7, 8, 9, 10]
    for i in ok:
        dense = am.amounts[am.row_to_distinct[i]].toarray()[0]
        expected = parse_formula(rows[i])
        assert {SYMBOLS[j]: dense[j] for j in np.flatnonzero(dense)} == expected
    assert am.row_to_distinct[0] == am.row_to_distinct[9] != am.row_to_distinct[10]
