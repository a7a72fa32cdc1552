"""Validators for record inputs: formulas (compositions) and SMILES (molecules, polymers).

The parsers live with the descriptors (`matlib.descriptors.composition`, `.molecular`), a layer above the datasets
(descriptors are computed from datasets), so they are imported where used, never when `matlib.datasets` loads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import pandas as pd

from matlib.text import factorize, is_missing, shorten


def _fmt(amount: float) -> str:
    """An amount in a formula: nothing for 1, an integer when integral, else 8 significant digits."""
    if abs(amount - 1.0) < 1e-9:
        return ""
    if abs(amount - round(amount)) < 1e-9:
        return str(int(round(amount)))
    return f"{amount:.8g}"


@lru_cache(maxsize=1 << 20)
def reduced_formula(formula: str) -> str:
    """Canonical reduced formula (integer amounts divided by their gcd, element order kept); ValueError if bad."""
    from matlib.descriptors.composition import parse_formula

    amounts = parse_formula(formula)
    values = list(amounts.values())
    ints = [int(a) for a in values]
    if ints == values:  # all integral: divide by the gcd
        g = math.gcd(*ints)
        return "".join(el if n == g else f"{el}{n // g}" for el, n in zip(amounts, ints))
    return "".join(f"{el}{_fmt(a)}" for el, a in amounts.items())


@lru_cache(maxsize=1 << 20)
def _check_smiles(smiles: str) -> str | None:
    """None if RDKit parses smiles, else the reason."""
    from rdkit import Chem, RDLogger

    from matlib.descriptors.molecular import smiles_text_problem

    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
    problem = smiles_text_problem(smiles)
    if problem:
        return problem
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return f"unparseable SMILES {shorten(smiles)!r}"
    return None


def _composition(value: str) -> tuple[str | None, str | None]:
    """(reduced formula, None) or (None, reason)."""
    try:
        return reduced_formula(value), None
    except ValueError as exc:
        return None, f"unparseable formula: {exc}"


def _molecule(value: str) -> tuple[str | None, str | None]:
    """(SMILES, None) or (None, reason)."""
    reason = _check_smiles(value)
    return (value, None) if reason is None else (None, reason)


VALIDATORS: dict[str, Callable[[str], tuple[str | None, str | None]]] = {
    "composition": _composition,
    "molecule": _molecule,
}


def normalise_inputs(values: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """Validate and normalise an input column once per distinct value: (normalised, reason-or-None)."""
    check = VALIDATORS[kind]
    text = [None if is_missing(v) or not str(v).strip() else str(v).strip() for v in values]
    codes, uniques = factorize(text)  # exact: pandas' hash tables merge strings that differ after a NUL
    results = [check(u) for u in uniques] + [(None, "missing input")]  # last entry: code -1
    picked = [results[c] for c in codes]
    norm = pd.Series([p[0] for p in picked], index=values.index, dtype=object)
    reason = pd.Series([p[1] for p in picked], index=values.index, dtype=object)
    return norm, reason
