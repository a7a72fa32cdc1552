"""Local tables (CSV, gzipped CSV, Parquet) into validated dataset versions."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from matlib.atomic import read_parquet
from matlib.datasets.schema import KINDS, normalise_records, unreadable_quarantine
from matlib.datasets.textfile import TextTable, read_text_table
from matlib.datasets.versions import Dataset, commit_version
from matlib.errors import MatlibError, ValidationError
from matlib.hashing import sha256_file
from matlib.store import Store
from matlib.text import factorize, is_missing, names_list, shorten

DUPLICATE_MODES = ("keep", "mean")


def load_table(file: str | Path) -> TextTable:
    """Every row of a CSV / TSV (optionally .gz/.bz2/.xz/.zip) or Parquet file; unreadable text rows are set aside
    with their line and reason (see matlib.datasets.textfile)."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise MatlibError(f"file not found: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        try:
            frame = read_parquet(path)
        except (ValueError, OSError) as exc:
            raise MatlibError(f"cannot read {path.name}: {str(exc).splitlines()[0]}") from exc
        return TextTable(path.name, frame, np.arange(2, len(frame) + 2, dtype=np.int64), [None] * len(frame))
    return read_text_table(path)


def read_table(file: str | Path) -> pd.DataFrame:
    """The readable rows of a table file as a DataFrame (text cells; `attrs["unreadable"]`: row, line, reason of
    the rows set aside)."""
    table = load_table(file)
    frame = table.readable()
    frame.attrs["unreadable"] = table.unreadable()
    return frame


def infer_kind(input_column: str) -> str:
    """'molecule' for a SMILES column, 'composition' for a formula column; else a one-line error."""
    low = input_column.lower()
    if "smiles" in low:
        return "molecule"
    if "formula" in low or "composition" in low:
        return "composition"
    raise ValidationError(f"cannot infer the kind from column {input_column!r}; pass --kind composition|molecule")


def content_ids(inputs: pd.Series) -> pd.Series:
    """Stable ids from the input text: 12 hex of its sha256, '-k' for the k-th repeat of the same input."""
    text = ["" if is_missing(v) else str(v).strip() for v in inputs]
    codes, uniques = factorize(text)  # exact: pandas' hash tables merge strings that differ after a NUL
    base = (
        np.array(
            [hashlib.sha256(u.encode("utf-8", "surrogateescape")).hexdigest()[:12] for u in uniques], dtype=object
        )[codes]
        if len(codes)
        else np.zeros(0, dtype=object)
    )
    k = pd.Series(codes).groupby(codes).cumcount().to_numpy()
    return pd.Series(np.where(k == 0, base, base + "-" + k.astype(str)), index=inputs.index)


def _aggregate_mean(records: pd.DataFrame, properties: Sequence[str]) -> pd.DataFrame:
    """One record per input: the mean of each property, with n_merged and the merged ids."""
    g = records.groupby("input", sort=False)
    out = g[list(properties)].mean()
    out["n_merged"] = g.size().astype("int64")
    out["merged_ids"] = g["record_id"].agg(lambda s: ",".join(s))
    out = out.reset_index()
    out.insert(0, "record_id", content_ids(out["input"]))
    out.insert(2, "kind", records["kind"].iloc[0] if len(records) else "composition")
    return out


def _check_options(targets: list[str], duplicates: str, kind: str | None, input_column: str) -> str:
    """The checked kind (inferred from the input column's name if not given); one-line errors for no target, an
    unknown duplicates mode or kind."""
    if not targets:
        raise ValidationError("give at least one target column")
    if duplicates not in DUPLICATE_MODES:
        raise ValidationError(f"duplicates must be one of {', '.join(DUPLICATE_MODES)}, not {duplicates!r}")
    kind = kind or infer_kind(input_column)
    if kind not in KINDS:
        raise ValidationError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def _check_columns(table: pd.DataFrame, wanted: list[str], file_name: str) -> None:
    """A one-line error naming the first wanted column the table lacks."""
    for col in wanted:
        if col not in table.columns:
            raise ValidationError(
                f"column {shorten(repr(col))} not in {file_name} (columns: {names_list(table.columns)})"
            )


def import_table(
    store: Store,
    name: str,
    file: str | Path,
    input_column: str,
    target_columns: str | Sequence[str],
    kind: str | None = None,
    id_column: str | None = None,
    duplicates: str = "keep",
) -> Dataset:
    """Import a local table as a dataset version; invalid rows are quarantined, duplicates kept or averaged."""
    targets = [target_columns] if isinstance(target_columns, str) else list(target_columns)
    kind = _check_options(targets, duplicates, kind, input_column)
    loaded = load_table(file)
    table = loaded.readable()
    _check_columns(table, [input_column, *targets, *([id_column] if id_column else [])], Path(file).name)
    raw = pd.DataFrame(
        {
            "record_id": table[id_column].astype(str) if id_column else content_ids(table[input_column]),
            "input": table[input_column],
            "source_row": table.index.to_numpy(dtype="int64"),
        }
    )
    for t in targets:
        raw[t] = table[t]
    raw["_row"] = raw["source_row"]
    records, quarantine = normalise_records(raw, kind, targets, extra_columns=["source_row"])
    unreadable = loaded.unreadable()
    if len(unreadable):
        quarantine = pd.concat([quarantine, unreadable_quarantine(unreadable)], ignore_index=True)
        quarantine = quarantine.sort_values("row", kind="stable").reset_index(drop=True)
    n_valid = len(records)
    if duplicates == "mean":
        records = _aggregate_mean(records, targets)
    n_dup_inputs = (
        int(records["input"].duplicated(keep=False).sum())
        if duplicates == "keep"
        else int((records["n_merged"] > 1).sum())
    )
    path = Path(file)
    origin = {
        "name": "local",
        "file": path.name,
        "file_sha256": sha256_file(path),
        "input_column": input_column,
        "target_columns": targets,
        "id_column": id_column,
        "duplicates": duplicates,
    }
    extra = {
        "n_input_rows": int(len(loaded.frame)),
        "n_unreadable_rows": int(len(unreadable)),
        "n_valid_rows": int(n_valid),
        "duplicates": duplicates,
        "n_duplicate_inputs": n_dup_inputs,
    }
    return commit_version(store, name, records, origin, quarantine, extra=extra)
