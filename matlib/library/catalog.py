"""The catalog: one row per model, stored as Parquet; fast column filters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from matlib.errors import ValidationError

COLUMNS = [
    "model_id",
    "property",
    "dataset",
    "dataset_version",
    "descriptor",
    "descriptor_hash",
    "descriptor_spec",
    "arch",
    "seed",
    "train_config",
    "n_train",
    "mae",
    "rmse",
    "r2",
    "shard",
    "row",
    "status",
    "model_type",
]

_OPS = {
    "gt": lambda c, v: c > v,
    "ge": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "le": lambda c, v: c <= v,
    "ne": lambda c, v: c != v,
    "in": lambda c, v: c.isin(list(v)),
    "contains": lambda c, v: c.astype(str).str.contains(str(v), regex=False),
}


def filter_catalog(catalog: pd.DataFrame, **filters: Any) -> pd.DataFrame:
    """Rows matching every filter: col=value, col=[values], col=callable, or col__gt/ge/lt/le/ne/in/contains=v."""
    mask = np.ones(len(catalog), dtype=bool)
    for key, value in filters.items():
        if value is None:
            continue
        col, _, op = key.partition("__")
        if col not in catalog.columns:
            raise ValidationError(f"catalog query: unknown column {col!r} (columns: {', '.join(catalog.columns)})")
        c = catalog[col]
        if op:
            if op not in _OPS:
                raise ValidationError(f"catalog query: unknown operator {op!r} in {key!r} (use {sorted(_OPS)})")
            m = _OPS[op](c, value)
        elif callable(value):
            m = value(c)
        elif isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
            m = c.isin(list(value))
        else:
            m = c == value
        mask &= np.asarray(m, dtype=bool)
    return catalog[mask]
