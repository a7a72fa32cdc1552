"""The shipped element property tables (data/elements/*.csv) as dense [118, P] arrays."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from matlib.descriptors.composition import SYMBOLS
from matlib.errors import MatlibError
from matlib.resources import shipped_path

ELEMENTS_DIR = shipped_path("elements")


@cache
def table_sha256(name: str) -> str:
    """sha256 of a shipped element table (part of the spec hash of the descriptors that use it)."""
    from matlib.hashing import sha256_file

    return sha256_file(ELEMENTS_DIR / f"{name}.csv")


@cache
def element_table(name: str, impute: str | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Table `name` as float64 [118, P] (row Z-1; NaN where unknown) and its property names.

    impute="nanmean" fills every NaN of a column with the column's mean over the 118 elements
    (exactly matminer's `impute_nan=True` rule for its Magpie data).
    """
    path = ELEMENTS_DIR / f"{name}.csv"
    if not path.exists():
        raise MatlibError(f"element table {path} is missing (run data/elements/make_table.py)")
    df = pd.read_csv(path)
    props = tuple(c for c in df.columns if c not in ("Z", "symbol"))
    values = np.full((len(SYMBOLS), len(props)), np.nan)
    values[df["Z"].to_numpy() - 1] = df[list(props)].to_numpy(dtype=np.float64)
    if impute == "nanmean":
        means = np.nanmean(values, axis=0)
        values = np.where(np.isnan(values), means[None, :], values)
    elif impute is not None:
        raise MatlibError(f"unknown imputation {impute!r}")
    values.setflags(write=False)
    return values, props
