"""Chemical formula parsing and the sparse (rows x elements) amount matrix."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from matlib.text import factorize, shorten

# Symbols of Z = 1..118, in order (index + 1 == Z).
SYMBOLS: tuple[str, ...] = tuple(
    """H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se
    Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy
    Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf
    Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og""".split()
)
Z_OF: dict[str, int] = {s: i + 1 for i, s in enumerate(SYMBOLS)}
AMOUNT_TOLERANCE = 1e-8  # amounts below this are treated as absent (as pymatgen does)
MAX_AMOUNT = 1e12  # larger amounts are typos or attacks (weighted sums of element properties would overflow)


_TOKEN = re.compile(r"\s*(?:([A-Z][a-z]*)|([(\[{])|([)\]}])|(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))")
_CLOSE_OF = {"(": ")", "[": "]", "{": "}"}
# Fast path for the common bracket-free case: the whole string is (Element amount?)+
_SIMPLE = re.compile(r"(?:[A-Z][a-z]?(?:\d+(?:\.\d*)?|\.\d+)?)+")
SEPARATOR = "\n"  # joins formulas for the one-pass scan; a formula holding it is parsed on its own
_BULK = re.compile(r"([A-Z][a-z]?)(\d+(?:\.\d*)?|\.\d+)?|(\n)|(.)", re.DOTALL)
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
    bad = next((i for i, c in enumerate(s) if unicodedata.category(c)[0] == "C"), None)
    if bad is not None:  # a line break, tab or other control character is never part of a formula
        raise ValueError(f"control character {s[bad]!r} at position {bad} in {shorten(formula)!r}")
    simple = _parse_simple(s)
    if simple is not None:
        return _positive(simple, formula)
    # stack of (open bracket, {element: amount}) frames; `pending` waits for an optional number
    stack: list[tuple[str, dict[str, float]]] = [("", {})]
    pending: str | dict[str, float] | None = None

    def flush(multiplier: float) -> None:
        frame = stack[-1][1]
        items = [(pending, 1.0)] if isinstance(pending, str) else list((pending or {}).items())
        for el, amt in items:
            frame[el] = frame.get(el, 0.0) + amt * multiplier

    pos, n = 0, len(s)
    while pos < n:
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise ValueError(f"unexpected character {s[pos]!r} at position {pos} in {shorten(formula)!r}")
        pos = m.end()
        sym, opn, cls, num = m.groups()
        if num is not None:
            if pending is None:
                raise ValueError(f"number {num!r} without an element in {shorten(formula)!r}")
            flush(float(num))
            pending = None
            continue
        if pending is not None:
            flush(1.0)
            pending = None
        if sym is not None:
            if sym not in Z_OF:
                raise ValueError(f"unknown element {sym!r} in {shorten(formula)!r}")
            pending = sym
        elif opn is not None:
            stack.append((opn, {}))
        else:
            if len(stack) == 1 or _CLOSE_OF[stack[-1][0]] != cls:
                raise ValueError(f"unbalanced {cls!r} in {shorten(formula)!r}")
            _, inner = stack.pop()
            if not inner:
                raise ValueError(f"empty brackets in {shorten(formula)!r}")
            pending = inner
    if pending is not None:
        flush(1.0)
    if len(stack) != 1:
        raise ValueError(f"unclosed {stack[-1][0]!r} in {shorten(formula)!r}")
    return _positive(stack[0][1], formula)


def _positive(amounts: dict[str, float], formula: str) -> dict[str, float]:
    """Drop amounts below AMOUNT_TOLERANCE; ValueError if nothing is left."""
    huge = next((el for el, amt in amounts.items() if not np.isfinite(amt) or amt > MAX_AMOUNT), None)
    if huge is not None:
        raise ValueError(f"amount of {huge} out of range in {shorten(formula)!r}")
    out = {el: amt for el, amt in amounts.items() if amt >= AMOUNT_TOLERANCE}
    if not out:
        raise ValueError(f"no element with a positive amount in {shorten(formula)!r}")
    return out


@dataclass(frozen=True)
class AmountMatrix:
    """Distinct parsed formulas as a CSR matrix (distinct x 118 element amounts) + per-row mapping."""

    amounts: sp.csr_matrix  # [n_distinct, 118]; column j is element Z = j + 1
    row_to_distinct: np.ndarray  # int64 [n_rows], -1 where the row failed to parse
    reasons: list[str | None]  # per input row


def _bulk_parse(uniques: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tokenise all bracket-free formulas in one regex pass: (formula index, column, amount) + needs-slow-path mask.

    The formulas are joined by newlines and scanned once; any other character (brackets, spaces, signs,
    exponents) or an unknown symbol sends that formula to `parse_formula` for an exact amount or reason.
    A formula that itself holds the separator never enters the joined text (it goes to the slow path), so
    the k-th separator always ends the k-th scanned formula: no row's content can move another row.
    """
    slow = np.array([SEPARATOR in u for u in uniques], dtype=bool)
    scanned = np.flatnonzero(~slow)
    tokens = _BULK.findall("".join(uniques[int(i)] + SEPARATOR for i in scanned))
    if not tokens:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), slow
    sym, num, nl, other = (np.array(col, dtype=object) for col in zip(*tokens))
    is_nl = nl == SEPARATOR
    if int(is_nl.sum()) != len(scanned):  # cannot happen: the separator occurs only between formulas
        raise RuntimeError(f"formula scan found {int(is_nl.sum())} separators for {len(scanned)} formulas")
    fidx = scanned[np.cumsum(is_nl) - is_nl]
    is_el = sym != ""
    z = pd.Series(sym[is_el]).map(Z_OF).to_numpy(dtype=np.float64)
    slow[fidx[other != ""]] = True
    slow[fidx[is_el][np.isnan(z)]] = True
    amounts = np.where(num[is_el] == "", "1", num[is_el]).astype(np.float64)
    slow[fidx[is_el][amounts > MAX_AMOUNT]] = True  # parse_formula names the amount out of range
    return fidx[is_el], np.nan_to_num(z, nan=1.0).astype(np.int64) - 1, amounts, slow


def amount_matrix(formulas: Sequence[str]) -> AmountMatrix:
    """Parse each distinct formula once and stack the amounts into a sparse matrix (no per-row Python loop)."""
    n = len(formulas)
    codes, uniques = factorize(formulas)  # exact (pandas' factorize merges 'Fe' and 'Fe\x00O')
    not_text = {int(u): f"not a formula: {shorten(repr(v))}" for u, v in enumerate(uniques) if not isinstance(v, str)}
    uniques = [u if isinstance(u, str) else "" for u in uniques]
    bulk_rows, bulk_cols, bulk_vals, slow = _bulk_parse(uniques)
    keep = ~slow[bulk_rows]
    rows, cols, vals = [bulk_rows[keep]], [bulk_cols[keep]], [bulk_vals[keep]]
    unique_reason: dict[int, str] = dict(not_text)
    for u in np.flatnonzero(slow):
        try:
            parsed = parse_formula(uniques[u])
        except ValueError as exc:
            unique_reason[int(u)] = str(exc)
            continue
        rows.append(np.full(len(parsed), u))
        cols.append(np.array([Z_OF[el] - 1 for el in parsed]))
        vals.append(np.array(list(parsed.values()), dtype=np.float64))
    mat = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(uniques), len(SYMBOLS))
    ).tocsr()  # sums repeated elements
    mat.data[mat.data < AMOUNT_TOLERANCE] = 0.0  # amounts below tolerance are absent, as in parse_formula
    mat.eliminate_zeros()
    mat.sort_indices()
    good = np.diff(mat.indptr) > 0
    for u in np.flatnonzero(~good):
        if u not in unique_reason:
            unique_reason[int(u)] = (
                "empty formula"
                if not uniques[u].strip()
                else f"no element with a positive amount in {shorten(uniques[u])!r}"
            )
    distinct_of_unique = np.where(good, np.cumsum(good) - 1, -1)
    lookup = np.append(distinct_of_unique, -1)  # the extra last entry: missing rows (code -1)
    row_to_distinct = lookup[np.where(codes >= 0, codes, len(uniques))].astype(np.int64)
    reasons: list[str | None] = [None] * n
    for i in np.flatnonzero(row_to_distinct < 0):
        c = int(codes[i])
        reasons[i] = unique_reason[c] if c >= 0 else _missing_reason(formulas[int(i)])
    return AmountMatrix(mat[good], row_to_distinct, reasons)


def _missing_reason(value: object) -> str:
    """Reason for a missing (None/NaN) formula."""
    return "empty formula" if value is None or isinstance(value, float) else f"not a formula: {value!r}"
