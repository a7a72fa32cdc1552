"""`xenonpy` compositional descriptor over the shipped element table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matlib.descriptors import get_featurizer
from matlib.descriptors.elements import ELEMENTS_DIR
from matlib.errors import MatlibError


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(ELEMENTS_DIR / "xenonpy.csv").set_index("symbol")


def test_statistics_match_a_direct_computation(table, mp_formulas):
    from matlib.descriptors.composition import parse_formula

    feat = get_featurizer("xenonpy")
    props = [c for c in table.columns if c != "Z"]
    assert 55 <= len(props) <= 65 and len(feat.feature_names) == 5 * len(props)
    sample = [f for f in mp_formulas if all(el in table.index for el in parse_formula(f))][:50]
    res = feat.featurize(sample)
    assert res.ok.all()
    for i, f in enumerate(sample):
        comp = parse_formula(f)
        amt = np.array(list(comp.values()))
        v = table.loc[list(comp), props].to_numpy()
        w = amt / amt.sum()
        ave = w @ v
        expected = np.concatenate([ave, amt @ v, w @ (v - ave) ** 2, v.max(0), v.min(0)])
        np.testing.assert_allclose(res.X[i], expected, rtol=2e-6, atol=1e-6)


def test_elements_missing_from_the_table_are_quarantined():
    res = get_featurizer("xenonpy").featurize(["Fe2O3", "AmO2", "Cf0.5Pu0.5", "Fe0.62C0.00095Mn0.3"])
    assert res.ok.tolist() == [True, False, False, True]
    assert res.reasons[1] == "element(s) Am have no data in the xenonpy element table"
    assert "Cf" in res.reasons[2] and "Pu" not in res.reasons[2]
    assert np.isnan(res.X[1]).all()


def test_optional_geometric_and_harmonic_means(table):
    feat = get_featurizer({"name": "xenonpy", "params": {"stats": ["ave", "gmean", "hmean"]}})
    gnames = [n for n in feat.feature_names if n.startswith("gmean:")]
    assert gnames and len(gnames) < len(table.columns) - 1  # only properties positive for every element
    res = feat.featurize(["Fe2O3"])
    prop = gnames[0].split(":", 1)[1]
    a, b = table.loc["Fe", prop], table.loc["O", prop]
    g = feat.feature_names.index(f"gmean:{prop}")
    h = feat.feature_names.index(f"hmean:{prop}")
    assert res.X[0, g] == pytest.approx(a**0.4 * b**0.6, rel=1e-6)
    assert res.X[0, h] == pytest.approx(1 / (0.4 / a + 0.6 / b), rel=1e-6)


def test_unknown_stat_is_a_clear_error():
    with pytest.raises(MatlibError, match="unknown stats"):
        get_featurizer({"name": "xenonpy", "params": {"stats": ["median"]}})


def test_shipped_tables_are_what_make_table_generates(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_table", ELEMENTS_DIR / "make_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "HERE", tmp_path)
    mod.main()
    for name in ("magpie.csv", "xenonpy.csv", "xenonpy_provenance.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / name), pd.read_csv(ELEMENTS_DIR / name))
    prov = pd.read_csv(ELEMENTS_DIR / "xenonpy_provenance.csv")
    kept = prov[prov["kept"]]
    assert kept["source"].str.len().gt(0).all()
    assert set(kept["column"]) == set(pd.read_csv(ELEMENTS_DIR / "xenonpy.csv").columns) - {"Z", "symbol"}
