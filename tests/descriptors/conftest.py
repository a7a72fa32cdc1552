"""Real data slices for the descriptor tests (tests/fixtures/data)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.fixtures import TEST_DATA


@pytest.fixture(scope="session")
def mp_formulas() -> list[str]:
    """1,200 real Materials Project formulas (matbench mp_e_form), fixed random sample."""
    df = pd.read_csv(TEST_DATA / "mp" / "matbench_mp_e_form.csv")
    return df["formula"].sample(1200, random_state=7).tolist()


@pytest.fixture(scope="session")
def fractional_formulas() -> list[str]:
    """Real fractional formulas (e.g. Fe0.62C0.00095...) from the test-data tables."""
    frames = [pd.read_csv(p, usecols=["formula"]) for p in sorted((TEST_DATA / "mp").glob("*.csv"))]
    frames += [pd.read_csv(p, usecols=["formula"]) for p in sorted((TEST_DATA / "aflow").glob("*.csv"))]
    f = pd.concat(frames)["formula"].dropna().astype(str).drop_duplicates()
    frac = f[f.str.contains(r"[A-Za-z]\d*\.\d", regex=True)]
    assert len(frac) > 0, "the test data holds fractional formulas"
    return frac.head(300).tolist()


@pytest.fixture(scope="session")
def bracket_formulas() -> list[str]:
    """Real formulas with parentheses (MP shear modulus set)."""
    f = pd.read_csv(TEST_DATA / "mp" / "mp_shear_modulus.csv")["formula"].dropna().astype(str)
    return f[f.str.contains("(", regex=False)].head(200).tolist()


@pytest.fixture(scope="session")
def qm9_smiles() -> list[str]:
    """500 real QM9 SMILES."""
    df = pd.read_csv(TEST_DATA / "qm9" / "qm9.csv.gz", usecols=["smiles"], nrows=20000)
    return df["smiles"].sample(500, random_state=3).tolist()


@pytest.fixture(scope="session")
def polymer_smiles() -> list[str]:
    """The 595 real polymer repeat units (with `*` ends) of the O2 permeability target."""
    return pd.read_csv(TEST_DATA / "targets" / "polymer_o2_permeability.csv")["SMILES"].tolist()


@pytest.fixture(scope="session")
def mp_records() -> pd.DataFrame:
    """2,000 real MP formulas as dataset records (record_id, input, kind, e_form)."""
    df = pd.read_csv(TEST_DATA / "mp" / "matbench_mp_e_form.csv").head(2000)
    return pd.DataFrame(
        {
            "record_id": [f"mp-{i:05d}" for i in range(len(df))],
            "input": df["formula"],
            "kind": "composition",
            "e_form": df["target"].astype("float64"),
        }
    )
