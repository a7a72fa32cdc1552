"""No input can move another row's features (issue 15, defect 1), for every registered descriptor.

The formula featurizers scan all formulas in one regex pass over a joined text; an input holding the joiner
(a newline, from a quoted multi-line CSV cell) used to shift every later row. Each row of a batch must equal the
same input featurised alone, whatever the other rows hold.
"""

from __future__ import annotations

import numpy as np
import pytest

from matlib.descriptors import get_featurizer
from matlib.descriptors.spec import list_descriptors

HOSTILE_FORMULAS = [
    "NaCl",
    "Fe\nO",
    "MgO",
    "Al2O3",
    "SiO2",
    "",
    "Fe\n\nO\nNaCl",
    "\n",
    "Ca\n",
    "Ti\r\nO2",
    "Fe1e400",
    "Fe99999999999999999",
    "<script>",
    None,
    5,
    float("nan"),
    "K2O",
    "Fe2O3",
]
HOSTILE_SMILES = [
    "CCO",
    "C\nO",
    "C C",
    "c1ccccc1",
    "",
    "\n",
    "CCO\n",
    "N\x00C",
    "C1CC((",
    None,
    5,
    float("nan"),
    "*CC(*)c1ccccc1",
    "O=C(O)c1ccccc1",
    "CC(=O)Oc1ccccc1C(=O)O",
]
NAMES = [d["name"] for d in list_descriptors()]
PARAMS = {"concat": {"parts": [{"name": "rdkit2d"}, {"name": "morgan"}]}}  # descriptors that need parameters


def _featurizer(name: str):
    """The registered descriptor with its defaults (or the parameters it cannot do without)."""
    return get_featurizer({"name": name, "params": PARAMS.get(name, {})})


def _inputs(name: str) -> list:
    return HOSTILE_FORMULAS if _featurizer(name).input_kind == "composition" else HOSTILE_SMILES


def test_every_descriptor_is_covered():
    assert {"magpie", "xenonpy", "morgan", "maccs", "rdkit2d"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_row_is_featurised_as_if_alone(name):
    feat = _featurizer(name)
    inputs = _inputs(name)
    batch = feat.featurize(inputs)
    assert batch.X.shape[0] == len(inputs) and len(batch.reasons) == len(inputs)
    for i, x in enumerate(inputs):
        alone = feat.featurize([x])
        assert bool(batch.ok[i]) == bool(alone.ok[0]), (name, x)
        assert batch.reasons[i] == alone.reasons[0], (name, x)
        assert np.array_equal(batch.X[i], alone.X[0], equal_nan=True), (name, x)
        assert batch.ok[i] or batch.reasons[i], (name, x)  # a value or a reason


@pytest.mark.parametrize("name", NAMES)
def test_rows_after_a_multiline_input_keep_their_own_features(name):
    """The issue's probe: MgO / Al2O3 / SiO2 after "Fe\\nO" (or the SMILES equivalent) keep their features."""
    feat = _featurizer(name)
    clean = ["NaCl", "MgO", "Al2O3", "SiO2"] if feat.input_kind == "composition" else ["CCO", "CCN", "CCC", "CCCl"]
    bad = "Fe\nO" if feat.input_kind == "composition" else "C\nO"
    ref = feat.featurize(clean)
    got = feat.featurize([clean[0], bad, *clean[1:], ""])
    assert not got.ok[1] and not got.ok[-1]
    assert np.array_equal(got.X[[0, 2, 3, 4]], ref.X, equal_nan=True)
    assert got.ok[[0, 2, 3, 4]].all()


def test_multiline_formula_and_smiles_get_a_reason():
    magpie, morgan = get_featurizer("magpie"), get_featurizer("morgan")
    r = magpie.featurize(["Fe\nO"])
    assert not r.ok[0] and "control character" in r.reasons[0]
    for smi in ("C\nO", "C C", "CCO\tx"):  # RDKit alone reads only up to the whitespace: 'C C' would be methane
        r = morgan.featurize([smi])
        assert not r.ok[0] and "whitespace" in r.reasons[0], smi


def test_overflowing_amounts_are_refused_not_featurised():
    r = get_featurizer("magpie").featurize(["Fe1e400", "Fe99999999999999999O", "Fe2O3"])
    assert r.ok.tolist() == [False, False, True]
    assert all("out of range" in r.reasons[i] for i in (0, 1))


def test_long_inputs_are_cut_in_reasons():
    long = "Xx" * 10000
    r = get_featurizer("magpie").featurize([long])
    assert not r.ok[0] and len(r.reasons[0]) < 200
    r = get_featurizer("maccs").featurize(["C(" * 10000])
    assert not r.ok[0] and len(r.reasons[0]) < 200


def test_a_single_missing_input_does_not_crash():
    """featurize([None]) used to raise IndexError (no distinct formula at all)."""
    for name in ("magpie", "xenonpy"):
        r = get_featurizer(name).featurize([None])
        assert not r.ok[0] and r.reasons[0] == "empty formula"


def test_chain_ends_alone_are_not_a_molecule():
    """'*' or '**' used to be capped into H2 and featurised as hydrogen."""
    r = get_featurizer("morgan").featurize(["*", "**", "[*]", "*CC(*)c1ccccc1"])
    assert r.ok.tolist() == [False, False, False, True]
    assert all("only polymer chain ends" in r.reasons[i] for i in range(3))
