"""Real data slices for the transfer tests (tests/fixtures/data)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.fixtures import TEST_DATA

ESOL = TEST_DATA / "targets" / "esol.csv"
POLYMER = TEST_DATA / "targets" / "polymer_o2_permeability.csv"


@cache
def esol_rows(n: int) -> pd.DataFrame:
    """The first n ESOL rows (smiles, logSolubility)."""
    return pd.read_csv(ESOL).head(n)


def esol_morgan(n: int, bits: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Morgan counts (radius 2) and logSolubility for the first n ESOL molecules, via RDKit directly."""
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=bits)
    df = esol_rows(n)
    X = np.stack([gen.GetCountFingerprintAsNumPy(Chem.MolFromSmiles(s.strip())) for s in df["smiles"]])
    return X.astype(np.float64), df["logSolubility"].to_numpy(np.float64)


@pytest.fixture(name="esol_morgan")
def esol_morgan_fixture():
    """The esol_morgan(n) helper as a fixture."""
    return esol_morgan


REPO = Path(__file__).resolve().parents[2]
LIBRARY_CONFIG = {
    "name": "transfer-test",
    "seed": 0,
    "shard_size": 4,
    "training": {"epochs": 8, "batch_size": 64, "patience": 3},
    "groups": [
        {
            "dataset": "qm9_sample",
            "descriptors": ["maccs"],
            "properties": ["HOMO_LUMO_gap_au", "Polarizability_bohr3"],
            "models_per_property": 3,
            "max_rows": 400,
            "import": {
                "file": str(REPO / "data" / "samples" / "qm9_sample.csv"),
                "input_column": "smiles",
                "target_columns": ["HOMO_LUMO_gap_au", "Polarizability_bohr3"],
                "kind": "molecule",
            },
        },
        {
            "dataset": "mp_gap_sample",
            "descriptors": ["magpie"],
            "properties": ["band_gap_eV"],
            "models_per_property": 3,
            "max_rows": 400,
            "import": {
                "file": str(REPO / "data" / "samples" / "mp_gap_sample.csv"),
                "input_column": "formula",
                "target_columns": ["band_gap_eV"],
                "kind": "composition",
            },
        },
    ],
}


@pytest.fixture(scope="session")
def small_library(tmp_path_factory) -> Path:
    """A real (small) library trained by the library room's builder on the shipped QM9 / MP samples."""
    from matlib.library import build_library
    from matlib.store import Store

    store = Store(tmp_path_factory.mktemp("store"))
    return Path(build_library(store, LIBRARY_CONFIG))


@pytest.fixture(scope="session")
def esol_table(tmp_path_factory) -> Path:
    """A 40-row ESOL training CSV (real rows)."""
    path = tmp_path_factory.mktemp("esol") / "esol40.csv"
    esol_rows(200).sample(40, random_state=1).to_csv(path, index=False)
    return path


FAST = {"top_k": 2, "repeats": 1, "folds": 4, "max_overlap": 1.0}
