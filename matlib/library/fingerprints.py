"""Input fingerprints of a library's source datasets, kept inside the library for the leakage guard.

For every dataset version a library's models were trained on, `sources/<dataset>-<version>.parquet` holds one row
per record: `key`, the first 8 bytes of the sha256 of the record's canonical input (RDKit canonical SMILES, or the
sorted fractional composition) as int64, and the library's property values of that record. The guard compares a
target against these hashes, so it works for a library copied away from the store it was built in, and the
library ships no source inputs in clear.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from matlib.atomic import atomic_write_parquet, read_parquet
from matlib.errors import IntegrityError
from matlib.hashing import sha256_file
from matlib.paths import confined

SOURCES_DIR = "sources"


def canonical_input(text: str, kind: str) -> str | None:
    """A canonical key for an input: RDKit canonical SMILES, or a sorted fractional composition."""
    text = (text or "").strip()
    if not text:
        return None
    if kind == "molecule":
        from rdkit import Chem, RDLogger

        RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
        mol = Chem.MolFromSmiles(text)
        return Chem.MolToSmiles(mol) if mol is not None else None
    from matlib.descriptors import parse_formula

    try:
        amounts = parse_formula(text)
    except ValueError:
        return None
    total = sum(amounts.values())
    if not total or not np.isfinite(total):
        return None
    return "".join(f"{el}{amounts[el] / total:.6f}" for el in sorted(amounts))


def canonical_inputs(values: Sequence[str], kind: str) -> list[str | None]:
    """canonical_input for many values, computed once per distinct value."""
    table = {v: canonical_input(v, kind) for v in set(values)}
    return [table[v] for v in values]


def key_hashes(keys: Sequence[str | None]) -> np.ndarray:
    """int64 fingerprints of canonical keys (first 8 bytes of sha256; 0 for a missing key)."""
    out = np.zeros(len(keys), dtype=np.int64)
    for i, k in enumerate(keys):
        if k is not None:
            out[i] = int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "little", signed=True) or 1
    return out


def record_fingerprints(records: pd.DataFrame, properties: dict[str, str], default_kind: str) -> pd.DataFrame:
    """`key` (int64 fingerprint, 0 dropped) + property values (column name -> record column) of every record, each
    input canonicalised by its own kind."""
    kinds = records["kind"].astype(str) if "kind" in records.columns else pd.Series(default_kind, index=records.index)
    inputs = records["input"].astype(str)
    keys = pd.Series(np.zeros(len(records), dtype=np.int64), index=records.index)
    for kind, idx in kinds.groupby(kinds).groups.items():
        keys.loc[idx] = key_hashes(canonical_inputs(inputs.loc[idx].tolist(), str(kind)))
    out = pd.DataFrame({"key": keys.to_numpy(np.int64)})
    for name, column in properties.items():
        if column in records.columns:
            out[name] = pd.to_numeric(records[column], errors="coerce").to_numpy(np.float64)
    return out[out["key"] != 0].reset_index(drop=True)


def _slug(text: str) -> str:
    """A file-name-safe short form of text."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:40] or "x"


def write_source_fingerprints(
    lib: Path, dataset, properties: dict[str, str], trained_on: dict[str, set[str]] | None = None
) -> dict:
    """Write one dataset version's fingerprints (properties: column name -> record column) into the library;
    trained_on (column name -> record ids) keeps a property's values only on the rows its models trained on.
    Returns the manifest record."""
    rel = f"{SOURCES_DIR}/{_slug(dataset.name)}-{dataset.version}.parquet"
    records = dataset.records
    if trained_on:
        records = records.copy()
        rid = records["record_id"].astype(str)
        for name, ids in trained_on.items():
            column = properties.get(name)
            if column in records.columns:
                records[column] = pd.to_numeric(records[column], errors="coerce").where(rid.isin(ids))
    table = record_fingerprints(records, properties, str(dataset.manifest.get("kind", "molecule")))
    atomic_write_parquet(Path(lib) / rel, table)
    return {"file": rel, "sha256": sha256_file(Path(lib) / rel), "n_inputs": int(table["key"].nunique())}


def read_source_fingerprints(lib: Path, record: dict, ref: str) -> pd.DataFrame:
    """A dataset's fingerprints from the library (sha256 checked, path confined to the library)."""
    path = confined(Path(lib), record.get("file"), f"library {lib} sources[{ref}]")
    if not path.is_file():
        raise IntegrityError(f"library {lib}: source fingerprints of {ref} ({record.get('file')}) are missing")
    if sha256_file(path) != record.get("sha256"):
        raise IntegrityError(
            f"library {lib}: {record.get('file')} was modified or corrupted (sha256 differs from manifest.json)"
        )
    return read_parquet(path)
