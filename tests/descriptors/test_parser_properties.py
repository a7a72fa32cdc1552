"""Property-based tests (hypothesis) of the formula and SMILES parsers behind every featurizer: any sequence of
strings in, the same number of rows out, in order, each with a value or a reason, and each row's result the same
as that string's alone (so no row's content can move another row)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matlib.descriptors import get_featurizer
from matlib.descriptors.composition import amount_matrix, parse_formula

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Formula-like text: element symbols, digits, brackets, separators and any other character, mixed.
FORMULA_PIECES = st.one_of(
    st.sampled_from(
        [
            "Fe",
            "O",
            "Na",
            "Cl",
            "H",
            "Xx",
            "Uuo",
            "2",
            "0.5",
            ".3",
            "1e3",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            " ",
            "\n",
            "\r",
            "\t",
            "\x00",
            "-",
            "+",
            "é",
            "\u2028",
        ]
    ),
    st.text(max_size=3),
)
FORMULAS = st.lists(st.lists(FORMULA_PIECES, max_size=8).map("".join), max_size=12)
SMILES_PIECES = st.one_of(
    st.sampled_from(
        ["C", "c1ccccc1", "O", "N", "(", ")", "=", "#", "*", "[Se]", "1", " ", "\n", "Cl", "[nH]", "@", "/", "\\"]
    ),
    st.text(max_size=2),
)
SMILES = st.lists(st.lists(SMILES_PIECES, max_size=8).map("".join), max_size=8)


@SETTINGS
@given(FORMULAS)
def test_amount_matrix_rows_are_independent(formulas):
    am = amount_matrix(formulas)
    assert len(am.row_to_distinct) == len(formulas) == len(am.reasons)
    for i, f in enumerate(formulas):
        has_value = am.row_to_distinct[i] >= 0
        assert has_value != (am.reasons[i] is not None), f  # a value or a reason, never both or neither
        try:
            alone = parse_formula(f)
        except ValueError as exc:
            assert not has_value and am.reasons[i], f
            assert str(exc) == am.reasons[i] or am.reasons[i] in ("empty formula",) or "positive" in am.reasons[i]
            continue
        if not has_value:
            # only amounts that vanish below the tolerance in the sparse sum can differ from parse_formula
            assert "positive amount" in am.reasons[i], (f, am.reasons[i])
            continue
        row = am.amounts[am.row_to_distinct[i]]
        got = {int(j): float(v) for j, v in zip(row.indices, row.data)}
        from matlib.descriptors.composition import Z_OF

        want = {Z_OF[el] - 1: amt for el, amt in alone.items()}
        assert got.keys() == want.keys(), f
        for j in want:
            assert got[j] == np.float64(want[j]) or abs(got[j] - want[j]) <= 1e-12 * abs(want[j]), f


@SETTINGS
@given(FORMULAS)
def test_formula_featurizer_rows_match_single_rows(formulas):
    feat = get_featurizer("magpie")
    batch = feat.featurize(formulas)
    assert batch.X.shape[0] == len(formulas)
    for i, f in enumerate(formulas):
        alone = feat.featurize([f])
        assert bool(batch.ok[i]) == bool(alone.ok[0]) and batch.reasons[i] == alone.reasons[0], f
        assert np.array_equal(batch.X[i], alone.X[0], equal_nan=True), f
        assert batch.ok[i] != (batch.reasons[i] is not None), f


@SETTINGS
@given(SMILES)
def test_smiles_featurizer_rows_match_single_rows(smiles):
    feat = get_featurizer("maccs")
    batch = feat.featurize(smiles)
    assert batch.X.shape[0] == len(smiles) == len(batch.reasons)
    for i, s in enumerate(smiles):
        alone = feat.featurize([s])
        assert bool(batch.ok[i]) == bool(alone.ok[0]) and batch.reasons[i] == alone.reasons[0], s
        assert np.array_equal(batch.X[i], alone.X[0], equal_nan=True), s
        assert batch.ok[i] != (batch.reasons[i] is not None), s
