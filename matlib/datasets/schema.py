"""One record schema per material kind: normalise raw rows, send invalid ones to quarantine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from matlib.datasets.validate import normalise_inputs
from matlib.errors import ValidationError

KINDS = ("composition", "molecule")
BASE_COLUMNS = ["record_id", "input", "kind"]
QUARANTINE_COLUMNS = ["row", "record_id", "field", "reason", "value"]


def empty_quarantine() -> pd.DataFrame:
    """An empty quarantine table with the standard columns."""
    return pd.DataFrame(
        {
            "row": pd.Series(dtype="int64"),
            "record_id": pd.Series(dtype=object),
            "field": pd.Series(dtype=object),
            "reason": pd.Series(dtype=object),
            "value": pd.Series(dtype=object),
        }
    )


def unreadable_quarantine(unreadable: pd.DataFrame) -> pd.DataFrame:
    """Quarantine entries for rows of a file that could not be read (row, line, reason from a TextTable)."""
    return pd.DataFrame(
        {
            "row": unreadable["row"].to_numpy(dtype="int64"),
            "record_id": None,
            "field": "row",
            "reason": [f"line {ln}: {r}" for ln, r in zip(unreadable["line"], unreadable["reason"])],
            "value": None,
        },
        columns=QUARANTINE_COLUMNS,
    )


def _quarantine_rows(
    raw: pd.DataFrame, mask: np.ndarray, field: pd.Series | str, reason: pd.Series | str, value: pd.Series | None
) -> pd.DataFrame:
    """Quarantine entries for the rows where mask is True."""
    sel = raw.loc[mask]
    n = len(sel)
    pick = lambda x: x[mask].astype(object).to_numpy() if isinstance(x, pd.Series) else [x] * n  # noqa: E731
    return pd.DataFrame(
        {
            "row": sel["_row"].to_numpy(dtype="int64"),
            "record_id": sel["record_id"].astype(str).to_numpy(),
            "field": pick(field),
            "reason": pick(reason),
            "value": [
                None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                for v in (value[mask].to_numpy() if value is not None else [None] * n)
            ],
        }
    )


def _property_problems(raw: pd.DataFrame, properties: Sequence[str]) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Coerce property columns to float64; (values, first bad field, reason) per row."""
    field = pd.Series(None, index=raw.index, dtype=object)
    reason = pd.Series(None, index=raw.index, dtype=object)
    values = pd.DataFrame(index=raw.index)
    for col in properties:
        original = raw[col]
        num = pd.to_numeric(original, errors="coerce").astype("float64")
        not_number = (
            num.isna()
            & original.notna()
            & ~original.astype(str).str.strip().str.lower().isin(["", "nan", "none", "null", "na"])
        )
        inf = np.isinf(num.to_numpy())
        for bad, why in ((not_number, "not a number"), (pd.Series(inf, index=raw.index), "infinite value")):
            new = bad & field.isna()
            field[new] = col
            reason[new] = why + f" in {col!r}"
        values[col] = num.where(~np.isinf(num), np.nan)
    if properties:
        no_target = values.isna().all(axis=1) & field.isna()
        field[no_target] = list(properties)[0] if len(properties) == 1 else ",".join(properties)
        reason[no_target] = "no finite target value (NaN or missing)"
    return values, field, reason


def normalise_records(
    raw: pd.DataFrame, kind: str, properties: Sequence[str], extra_columns: Sequence[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate raw rows (record_id, input, properties, extras) -> (records, quarantine with row/field/reason)."""
    if kind not in KINDS:
        raise ValidationError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    for col in ["record_id", "input", *properties, *extra_columns]:
        if col not in raw.columns:
            raise ValidationError(f"column {col!r} is missing from the records")
    raw = raw.reset_index(drop=True).copy()
    if "_row" not in raw.columns:
        raw["_row"] = np.arange(len(raw), dtype="int64")
    raw["record_id"] = raw["record_id"].astype(str)
    norm, in_reason = normalise_inputs(raw["input"], kind)
    values, p_field, p_reason = _property_problems(raw, properties)
    parts = []
    bad_input = in_reason.notna().to_numpy()
    parts.append(_quarantine_rows(raw, bad_input, "input", in_reason, raw["input"]))
    bad_prop = (~bad_input) & p_field.notna().to_numpy()
    prop_value = pd.Series(
        [raw.at[i, f] if isinstance(f, str) and f in raw.columns else None for i, f in zip(raw.index, p_field)],
        index=raw.index,
        dtype=object,
    )
    parts.append(_quarantine_rows(raw, bad_prop, p_field, p_reason, prop_value))
    good = ~(bad_input | bad_prop)

    rec = pd.DataFrame({"record_id": raw["record_id"], "input": norm, "kind": kind})
    for col in properties:
        rec[col] = values[col]
    for col in extra_columns:
        rec[col] = raw[col]
    rec = rec.loc[good]
    rows = raw.loc[good]

    # duplicated ids: identical copies collapse to the first (the rest quarantined as exact
    # duplicates); copies with different content are all quarantined.
    dup_any = rec["record_id"].duplicated(keep=False).to_numpy()
    if dup_any.any():
        content_cols = ["input", *properties]
        sub = rec.loc[dup_any, ["record_id", *content_cols]]
        n_distinct = sub.astype(str).drop_duplicates().groupby("record_id").size()
        conflicting = rec["record_id"].map(n_distinct).fillna(1).to_numpy() > 1
        extra_copy = rec["record_id"].duplicated(keep="first").to_numpy() & ~conflicting
        sub_raw = rows.assign(record_id=rec["record_id"])
        parts.append(
            _quarantine_rows(
                sub_raw, conflicting, "record_id", "duplicate record_id with different content", rec["record_id"]
            )
        )
        parts.append(
            _quarantine_rows(
                sub_raw, extra_copy, "record_id", "exact duplicate of an earlier row (kept once)", rec["record_id"]
            )
        )
        keep = ~(conflicting | extra_copy)
        rec = rec.loc[keep]
    quarantine = pd.concat([p for p in parts if len(p)] or [empty_quarantine()], ignore_index=True)
    quarantine = quarantine.sort_values("row", kind="stable").reset_index(drop=True)
    return rec.reset_index(drop=True), quarantine
