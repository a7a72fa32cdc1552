"""Real training data for model tests: Magpie descriptors of a slice of MP refractive indices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.fixtures import TEST_DATA


def magpie_slice(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(X, y): Magpie features and log refractive index of n real MP compositions."""
    from matlib.descriptors import get_featurizer

    df = pd.read_csv(TEST_DATA / "mp" / "matbench_dielectric.csv").iloc[offset : offset + n]
    res = get_featurizer("magpie").featurize(df["formula"].tolist())
    X, y = res.X[res.ok], np.log(df["target"].to_numpy(np.float32)[res.ok])
    return X.astype(np.float32), y.astype(np.float32)


@pytest.fixture(scope="session")
def dielectric_xy() -> tuple[np.ndarray, np.ndarray]:
    """800 rows of real data (132 Magpie features)."""
    return magpie_slice(800)
