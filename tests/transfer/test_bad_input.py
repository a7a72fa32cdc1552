"""Bad input: clear one-line errors, skipped rows listed with a count, unusable descriptors skipped with a note."""

import numpy as np
import pytest

from matlib.errors import MatlibError
from matlib.library import Library
from matlib.transfer import fit_transfer
from matlib.transfer.fit import library_specs
from matlib.transfer.target import prepare_target, read_target_csv
from tests.transfer.conftest import FAST, esol_rows


@pytest.fixture(scope="module")
def specs(small_library):
    return library_specs(Library(small_library).catalog)


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text
    return text


def test_fewer_than_8_usable_rows(small_library, tmp_path):
    df = esol_rows(7)
    with pytest.raises(MatlibError) as err:
        fit_transfer(small_library, df["smiles"].tolist(), df["logSolubility"].tolist(), tmp_path / "r", **FAST)
    assert "only 7 usable training rows" in _one_line(err.value)


def test_unparseable_rows_push_below_minimum(specs):
    df = esol_rows(9)
    inputs = df["smiles"].tolist()
    inputs[2] = "C1CC(("  # unparseable
    inputs[5] = "xyz"
    with pytest.raises(MatlibError) as err:
        prepare_target(inputs, df["logSolubility"].tolist(), specs, "logSolubility")
    assert "only 7 usable" in _one_line(err.value) and "2 skipped" in str(err.value)


def test_constant_target(specs):
    df = esol_rows(20)
    with pytest.raises(MatlibError) as err:
        prepare_target(df["smiles"].tolist(), [1.5] * 20, specs, "logSolubility")
    assert "constant" in _one_line(err.value)


def test_non_numeric_column(specs):
    df = esol_rows(20)
    with pytest.raises(MatlibError) as err:
        prepare_target(df["smiles"].tolist(), ["high", "low"] * 10, specs, "solubility_class")
    assert "not numeric" in _one_line(err.value) and "row 1" in str(err.value)


def test_unparseable_rows_listed_and_skipped(specs):
    df = esol_rows(30)
    inputs = df["smiles"].tolist()
    y = df["logSolubility"].astype(object).tolist()
    inputs[4] = "C1CC(("
    inputs[10] = ""
    y[12] = "n/a"
    y[13] = None
    t = prepare_target(inputs, y, specs, "logSolubility")
    assert int(t.usable.sum()) == 26
    assert t.skipped_rows["row"].tolist() == [5, 11, 13, 14]
    reasons = dict(zip(t.skipped_rows["row"], t.skipped_rows["reason"]))
    assert "C1CC((" in reasons[5] and reasons[11] == "empty input"
    assert "not a finite number" in reasons[13] and reasons[14] == "missing target value"
    assert t.features[next(iter(t.features))].shape[0] == 26


def test_descriptor_that_cannot_featurise_is_skipped_with_note(specs):
    df = esol_rows(30)
    t = prepare_target(df["smiles"].tolist(), df["logSolubility"].tolist(), specs, "logSolubility")
    assert [s["name"] for s in t.specs.values()] == ["maccs"]
    assert any("magpie" in n and "skipped" in n for n in t.notes)
    # and the other way round: formulas use magpie, maccs is skipped
    import pandas as pd

    from tests.transfer.conftest import REPO

    mp = pd.read_csv(REPO / "data" / "samples" / "mp_gap_sample.csv").tail(30)
    t2 = prepare_target(mp["formula"].tolist(), mp["band_gap_eV"].tolist(), specs, "band_gap_eV")
    assert [s["name"] for s in t2.specs.values()] == ["magpie"]
    assert any("maccs" in n and "skipped" in n for n in t2.notes)


def test_inputs_no_descriptor_can_read(specs):
    with pytest.raises(MatlibError) as err:
        prepare_target(["???"] * 10, list(np.arange(10.0)), specs, "y")
    assert "none of the library's descriptors" in _one_line(err.value)


def test_missing_column(tmp_path):
    path = tmp_path / "t.csv"
    esol_rows(10).to_csv(path, index=False)
    with pytest.raises(MatlibError) as err:
        read_target_csv(path, "smiles", "solubility")
    assert "no column 'solubility'" in _one_line(err.value)
