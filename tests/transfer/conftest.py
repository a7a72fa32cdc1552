"""Real data slices for the transfer tests (../shared/data next to the repository)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ESOL = SHARED / "targets" / "esol.csv"
POLYMER = SHARED / "targets" / "polymer_o2_permeability.csv"


@lru_cache(maxsize=None)
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
