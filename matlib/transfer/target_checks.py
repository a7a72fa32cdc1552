"""Checks of a training target before any fitting: arithmetic range, extreme outliers, repeated inputs.

- Range: the screening runs in float32 and sums squared residuals over the rows, so a value whose squared
  deviation from the median could overflow float32 (about 1.8e19 / sqrt(n)) is refused in one line naming the rows,
  rather than fitted into a meaningless model (`1e308` among normal values) or a crash.
- Outliers: a value far from the rest (robust z-score |y - median| / (1.4826 MAD) above OUTLIER_Z) is kept but
  named in a note (the fit summary and the report show notes).
- Repeated inputs: rows whose inputs are the same material (the same composition up to scale, e.g. Fe2O3 and
  O3Fe2, or the same molecule, e.g. OCC and CCO) are merged into the first one with the mean target, as is usual
  for materials data: a model cannot tell them apart, and kept apart they would sit on both sides of a CV split
  and flatter the CV score. Conflicting repeats (different targets) are listed with their values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matlib.errors import ValidationError
from matlib.text import shorten

OUTLIER_Z = 10.0  # robust z-score above which a target value is reported as an extreme outlier
MAD_TO_SD = 1.4826  # MAD of a normal distribution x 1.4826 = its standard deviation
MEANAD_TO_SD = 1.2533  # mean absolute deviation x 1.2533 = sd (used when more than half the values are equal)
SAFETY = 10.0  # headroom below float32 overflow
SHOWN = 5  # rows named in a message before "and k more"


def max_deviation(n: int) -> float:
    """Largest |y - median| whose squares, summed over n rows, stay finite in float32 (with SAFETY headroom)."""
    return float(np.sqrt(np.finfo(np.float32).max / max(1, n))) / SAFETY


def _rows(rows: Sequence[int], values: Sequence[float] | None = None) -> str:
    """'row 3 (1e+308), row 9 (...) and 4 more' for 0-based rows."""
    shown = [
        f"row {r + 1}" + (f" ({v:.4g})" if values is not None else "")
        for r, v in zip(rows[:SHOWN], values[:SHOWN] if values is not None else [None] * SHOWN)
    ]
    more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
    return ", ".join(shown) + more


def check_range(y: np.ndarray, usable: np.ndarray, column: str) -> None:
    """One-line ValidationError naming the rows whose value would make the fit's arithmetic overflow."""
    idx = np.flatnonzero(usable)
    if not len(idx):
        return
    yu = y[idx]
    limit = max_deviation(len(idx))
    med = float(np.median(yu))
    with np.errstate(over="ignore", invalid="ignore"):
        dev = np.abs(yu - med)
    bad = ~np.isfinite(dev) | (dev > limit) | (np.abs(yu) > limit)
    if bad.any():
        rows = idx[bad]
        raise ValidationError(
            f"target column {column!r}: value(s) too large for the fit's arithmetic (|value| and |value - median| "
            f"must stay below {limit:.2g} for {len(idx)} rows) at {_rows(rows.tolist(), y[rows].tolist())}; "
            "rescale the target (e.g. other units or a log) or remove those rows"
        )


def robust_z(values: np.ndarray) -> np.ndarray:
    """|x - median| / (1.4826 MAD) per value (mean absolute deviation when the MAD is 0; zeros if all are equal)."""
    med = np.median(values)
    dev = np.abs(values - med)
    scale = MAD_TO_SD * np.median(dev)
    if scale <= 0:
        scale = MEANAD_TO_SD * float(np.mean(dev))
    return dev / scale if scale > 0 else np.zeros_like(values)


def outlier_note(y: np.ndarray, usable: np.ndarray, column: str) -> str | None:
    """A note naming the extreme outliers among the usable target values (robust z > OUTLIER_Z), else None."""
    idx = np.flatnonzero(usable)
    if len(idx) < 3:
        return None
    z = robust_z(y[idx])
    far = np.flatnonzero(z > OUTLIER_Z)
    if not len(far):
        return None
    order = far[np.argsort(-z[far], kind="stable")]
    rows = idx[order]
    detail = ", ".join(f"row {r + 1} ({y[r]:.4g}, z={z[k]:.0f})" for r, k in zip(rows[:SHOWN], order[:SHOWN]))
    more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
    return (
        f"target {column!r}: {len(rows)} extreme outlier(s) (robust z-score |y - median| / (1.4826 MAD) > "
        f"{OUTLIER_Z:g}; median {np.median(y[idx]):.4g}): {detail}{more}; they are kept: check them, a typo or "
        "a unit mix-up dominates a small training set"
    )


def material_key(text: str, kind: str) -> str | None:
    """The identity of an input as a material: fractional composition (elements sorted) or canonical SMILES."""
    if kind == "composition":
        from matlib.descriptors.composition import parse_formula

        try:
            amounts = parse_formula(text)
        except ValueError:
            return None
        total = sum(amounts.values())
        return " ".join(f"{el}:{amt / total:.10g}" for el, amt in sorted(amounts.items()))
    from rdkit import Chem

    from matlib.descriptors.molecular import smiles_text_problem

    mol = None if smiles_text_problem(text) else Chem.MolFromSmiles(text.strip())
    return Chem.MolToSmiles(mol) if mol is not None else None


def merge_repeats(
    inputs: Sequence[str], y: np.ndarray, usable: np.ndarray, reasons: list[str | None], kind: str, column: str
) -> tuple[np.ndarray, list[str]]:
    """Merge usable rows holding the same material into their first row (mean target); returns (y, notes).

    Updates usable and reasons in place: a merged row becomes unusable with the reason naming the row it went to.
    """
    idx = np.flatnonzero(usable)
    groups: dict[str, list[int]] = {}
    for i in idx:
        key = material_key(inputs[int(i)], kind)
        groups.setdefault(key if key is not None else f"\x00{i}", []).append(int(i))
    repeated = [g for g in groups.values() if len(g) > 1]
    if not repeated:
        return y, []
    y = y.copy()
    conflicts = []
    for g in repeated:
        vals = y[g]
        mean = float(np.mean(vals))
        spread = float(np.ptp(vals))
        if spread > 1e-12 * max(1.0, float(np.max(np.abs(vals)))):
            conflicts.append((g, vals, mean))
        y[g[0]] = mean
        for j in g[1:]:
            usable[j] = False
            reasons[j] = (
                f"same material as row {g[0] + 1} ({shorten(inputs[g[0]])!r}): merged into it "
                f"(target {vals[g.index(j)]:.6g}; mean of {len(g)} rows {mean:.6g})"
            )
    n_rows = sum(len(g) for g in repeated)
    notes = [
        f"repeated inputs: {len(repeated)} material(s) appear in more than one row ({n_rows} rows); each is "
        f"merged into its first row with the mean {column!r} (one row per material, so no material is on both "
        f"sides of a CV split)"
    ]
    if conflicts:
        shown = "; ".join(
            f"row {g[0] + 1} {shorten(inputs[g[0]], 30)!r}: "
            + ", ".join(f"{v:.4g}" for v in vals[:6])
            + (" ..." if len(vals) > 6 else "")
            + f" -> {mean:.4g}"
            for g, vals, mean in conflicts[:SHOWN]
        )
        more = f"; and {len(conflicts) - SHOWN} more" if len(conflicts) > SHOWN else ""
        notes.append(
            f"conflicting repeats: {len(conflicts)} material(s) have different {column!r} values in "
            f"different rows, averaged: {shown}{more}"
        )
    return y, notes
