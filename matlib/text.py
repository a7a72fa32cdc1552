"""User-provided text: how it is shown in messages, and exact grouping of equal strings."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

H = TypeVar("H", bound=Hashable)

SHOW_CHARS = 60  # user text quoted in a reason or a report cell is cut to this many characters


def shorten(text: str, limit: int = SHOW_CHARS) -> str:
    """text cut to limit characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[:limit] + "…"


def is_missing(value: Any) -> bool:
    """None or a float NaN (how an empty cell arrives)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def factorize(values: Sequence[H | None]) -> tuple[np.ndarray, list[H]]:
    """(codes int64 [n], distinct values in first-seen order); -1 for missing values.

    Exact for every string: pandas' hash tables (pd.factorize, pd.unique, Series.map with a dict) compare
    object strings as C strings, so 'Fe' and 'Fe\\x00O' fall together and one row would get the other's result.
    """
    index: dict[H, int] = {}
    codes = np.fromiter(
        (-1 if v is None or is_missing(v) else index.setdefault(v, len(index)) for v in values),
        dtype=np.int64,
        count=len(values),
    )
    return codes, list(index)


def names_list(names: Iterable[Any], limit: int = 200) -> str:
    """Column (or other) names for a one-line message: each as repr (a line break stays visible), cut to limit."""
    return shorten(", ".join(repr(str(n)) for n in names), limit)
