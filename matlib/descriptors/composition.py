"""Chemical formula parsing and the sparse (rows x elements) amount matrix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

# Symbols of Z = 1..118, in order (index + 1 == Z).
SYMBOLS: tuple[str, ...] = tuple(
    """H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se
    Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy
    Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf
    Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og""".split()
)
Z_OF: dict[str, int] = {s: i + 1 for i, s in enumerate(SYMBOLS)}
AMOUNT_TOLERANCE = 1e-8  # amounts below this are treated as absent (as pymatgen does)

_TOKEN = re.compile(r"\s*(?:([A-Z][a-z]*)|([(\[{])|([)\]}])|(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))")
_CLOSE_OF = {"(": ")", "[": "]", "{": "}"}
# Fast path for the common bracket-free case: the whole string is (Element amount?)+
_SIMPLE = re.compile(r"(?:[A-Z][a-z]?(?:\d+(?:\.\d*)?|\.\d+)?)+")
_PAIR = re.compile(r"([A-Z][a-z]?)(\d+(?:\.\d*)?|\.\d+)?")


def _parse_simple(s: str) -> dict[str, float] | None:
    """Bracket-free formula -> amounts, or None when the general parser must decide."""
    if not _SIMPLE.fullmatch(s):
        return None
    out: dict[str, float] = {}
    for sym, num in _PAIR.findall(s):
        if sym not in Z_OF:
            return None
        out[sym] = out.get(sym, 0.0) + (float(num) if num else 1.0)
    return out


def parse_formula(formula: str) -> dict[str, float]:
    """Parse a formula (fractional amounts, nested brackets) into {element: amount}; ValueError on bad input."""
    if not isinstance(formula, str):
        raise ValueError(f"formula must be a string, got {type(formula).__name__}")
    s = formula.strip()
    if not s:
        raise ValueError("empty formula")
    simple = _parse_simple(s)
    if simple is not None:
        return _positive(simple, formula)
    # stack of (open bracket, {element: amount}) frames; `pending` waits for an optional number
    stack: list[tuple[str, dict[str, float]]] = [("", {})]
    pending: str | dict[str, float] | None = None

    def flush(multiplier: float) -> None:
        frame = stack[-1][1]
        items = [(pending, 1.0)] if isinstance(pending, str) else list(pending.items())
        for el, amt in items:
            frame[el] = frame.get(el, 0.0) + amt * multiplier

    pos, n = 0, len(s)
    while pos < n:
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise ValueError(f"unexpected character {s[pos]!r} at position {pos} in {formula!r}")
        pos = m.end()
        sym, opn, cls, num = m.groups()
        if num is not None:
            if pending is None:
                raise ValueError(f"number {num!r} without an element in {formula!r}")
            flush(float(num))
            pending = None
            continue
        if pending is not None:
            flush(1.0)
            pending = None
        if sym is not None:
            if sym not in Z_OF:
                raise ValueError(f"unknown element {sym!r} in {formula!r}")
            pending = sym
        elif opn is not None:
            stack.append((opn, {}))
        else:
            if len(stack) == 1 or _CLOSE_OF[stack[-1][0]] != cls:
                raise ValueError(f"unbalanced {cls!r} in {formula!r}")
            _, inner = stack.pop()
            if not inner:
                raise ValueError(f"empty brackets in {formula!r}")
            pending = inner
    if pending is not None:
        flush(1.0)
    if len(stack) != 1:
        raise ValueError(f"unclosed {stack[-1][0]!r} in {formula!r}")
    return _positive(stack[0][1], formula)


def _positive(amounts: dict[str, float], formula: str) -> dict[str, float]:
    """Drop amounts below AMOUNT_TOLERANCE; ValueError if nothing is left."""
    out = {el: amt for el, amt in amounts.items() if amt >= AMOUNT_TOLERANCE}
    if not out:
        raise ValueError(f"no element with a positive amount in {formula!r}")
    return out


@dataclass(frozen=True)
class AmountMatrix:
    """Distinct parsed formulas as a CSR matrix (distinct x 118 element amounts) + per-row mapping."""

    amounts: sp.csr_matrix  # [n_distinct, 118]; column j is element Z = j + 1
    row_to_distinct: np.ndarray  # int64 [n_rows], -1 where the row failed to parse
    reasons: list[str | None]  # per input row


def amount_matrix(formulas: Sequence[str]) -> AmountMatrix:
    """Parse each distinct formula once and stack the amounts into a sparse matrix."""
    import pandas as pd

    n = len(formulas)
    codes, uniques = pd.factorize(pd.Series(formulas, dtype=object), use_na_sentinel=True)
    reasons: list[str | None] = [None] * n
    distinct_of_unique = np.full(len(uniques), -1, dtype=np.int64)
    indptr, indices, data = [0], [], []
    unique_reason: dict[int, str] = {}
    for u, f in enumerate(uniques):
        try:
            parsed = parse_formula(f)
        except ValueError as exc:
            unique_reason[u] = str(exc)
            continue
        distinct_of_unique[u] = len(indptr) - 1
        for el, amt in parsed.items():
            indices.append(Z_OF[el] - 1)
            data.append(amt)
        indptr.append(len(indices))
    row_to_distinct = np.where(codes >= 0, distinct_of_unique[np.maximum(codes, 0)], -1)
    for i in np.flatnonzero(row_to_distinct < 0):
        c = codes[i]
        reasons[i] = unique_reason.get(int(c), "empty formula") if c >= 0 else _missing_reason(formulas[i])
    mat = sp.csr_matrix(
        (np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
        shape=(len(indptr) - 1, len(SYMBOLS)),
    )
    mat.sort_indices()
    return AmountMatrix(mat, row_to_distinct.astype(np.int64), reasons)


def _missing_reason(value: object) -> str:
    """Reason for a missing (None/NaN) formula."""
    return "empty formula" if value is None or isinstance(value, float) else f"not a formula: {value!r}"
