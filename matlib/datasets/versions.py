"""Dataset versions: content-hashed records + manifest, parent pointer, diffs, loading and listing."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matlib import __version__
from matlib.atomic import atomic_write_json, atomic_write_parquet, atomic_write_text, read_json, read_parquet
from matlib.datasets.schema import BASE_COLUMNS, KINDS, empty_quarantine
from matlib.errors import IntegrityError, MatlibError, ValidationError
from matlib.hashing import sha256_file
from matlib.store import Store, check_name

LATEST = "LATEST"
RECORDS = "records.parquet"
MANIFEST = "manifest.json"
DIFF = "diff.parquet"


@dataclass
class Dataset:
    """One dataset version: its records, manifest and folder."""

    name: str
    version: str
    records: pd.DataFrame
    manifest: dict
    path: Path
    diff: dict = field(default_factory=dict)

    @property
    def properties(self) -> list[str]:
        """The property (target) columns."""
        return list(self.manifest.get("properties", []))

    def quarantine(self, store: Store) -> pd.DataFrame:
        """The rows rejected when this version was made (row, record_id, field, reason, value)."""
        path = store.quarantine(self.name) / f"{self.version}.parquet"
        return read_parquet(path) if path.exists() else empty_quarantine()


def _cell_text(v: Any) -> str:
    """A stable text form of one non-float cell for hashing."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "\x00"
    return str(v)


def row_hashes(records: pd.DataFrame) -> pd.Series:
    """One uint64 content hash per record (all columns but record_id), stable across Parquet round trips."""
    cols = sorted(c for c in records.columns if c != "record_id")
    frame = pd.DataFrame(index=records.index)
    for c in cols:
        s = records[c]
        if pd.api.types.is_float_dtype(s) or pd.api.types.is_integer_dtype(s) or pd.api.types.is_bool_dtype(s):
            frame[c] = s.astype("float64")
        else:
            frame[c] = s.astype(object).map(_cell_text)
    if not cols:
        return pd.Series(np.zeros(len(records), dtype="uint64"), index=records.index)
    return pd.util.hash_pandas_object(frame, index=False)


def content_version(records: pd.DataFrame) -> str:
    """16-hex content hash of records (ids, columns and row content)."""
    h = hashlib.sha256()
    h.update("\x1f".join(sorted(map(str, records.columns))).encode())
    h.update(records["record_id"].astype(str).str.cat(sep="\x1f").encode())
    h.update(row_hashes(records).to_numpy(dtype="uint64").tobytes())
    return h.hexdigest()[:16]


def _canonical(records: pd.DataFrame) -> pd.DataFrame:
    """Records sorted by record_id, base columns first, properties as float64."""
    missing = [c for c in BASE_COLUMNS if c not in records.columns]
    if missing:
        raise ValidationError(f"records lack column(s) {', '.join(missing)}")
    rec = records.copy()
    rec["record_id"] = rec["record_id"].astype(str)
    if rec["record_id"].duplicated().any():
        dup = rec.loc[rec["record_id"].duplicated(), "record_id"].iloc[0]
        raise ValidationError(f"record_id {dup!r} is not unique; normalise the records first")
    bad_kind = ~rec["kind"].isin(KINDS)
    if bad_kind.any():
        raise ValidationError(
            f"record {rec.loc[bad_kind, 'record_id'].iloc[0]!r}: unknown kind {rec.loc[bad_kind, 'kind'].iloc[0]!r}"
        )
    rest = [c for c in rec.columns if c not in BASE_COLUMNS]
    rec = rec[BASE_COLUMNS + rest].sort_values("record_id", kind="stable").reset_index(drop=True)
    return rec


def diff_records(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Per-record status against the parent: record_id, status in {added, changed, removed}."""
    if old is None:
        return pd.DataFrame({"record_id": new["record_id"].astype(str), "status": "added"})
    a = pd.DataFrame({"record_id": old["record_id"].astype(str).to_numpy(), "h_old": row_hashes(old).to_numpy()})
    b = pd.DataFrame({"record_id": new["record_id"].astype(str).to_numpy(), "h_new": row_hashes(new).to_numpy()})
    m = a.merge(b, on="record_id", how="outer", indicator=True)
    status = np.where(
        m["_merge"] == "left_only",
        "removed",
        np.where(m["_merge"] == "right_only", "added", np.where(m["h_old"] != m["h_new"], "changed", "same")),
    )
    out = pd.DataFrame({"record_id": m["record_id"], "status": status})
    return out[out["status"] != "same"].reset_index(drop=True)


def latest_version(store: Store, name: str) -> str | None:
    """The latest committed version of a dataset, or None."""
    p = store.datasets(name) / LATEST
    return p.read_text().strip() if p.exists() else None


def commit_version(
    store: Store,
    name: str,
    records: pd.DataFrame,
    source: str | Mapping[str, Any],
    quarantine: pd.DataFrame | None = None,
    *,
    parent: str | None = "latest",
    fetched_at: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Dataset:
    """Write records as a new content-hashed version (records, quarantine, diff vs parent, manifest)."""
    check_name("dataset", name)
    rec = _canonical(records)
    version = content_version(rec)
    parent_version = latest_version(store, name) if parent == "latest" else parent
    old = None
    if parent_version and parent_version != version:
        old = load_dataset(store, f"{name}@{parent_version}").records
    elif parent_version == version:
        old = rec
    diff = diff_records(old, rec)
    counts = {k: int((diff["status"] == k).sum()) for k in ("added", "changed", "removed")}
    folder = store.datasets(name) / version
    q = quarantine if quarantine is not None else empty_quarantine()
    src = {"name": source} if isinstance(source, str) else dict(source)
    properties = [c for c in rec.columns if c not in BASE_COLUMNS and pd.api.types.is_float_dtype(rec[c])]
    kinds = sorted(rec["kind"].unique().tolist())
    if not (folder / MANIFEST).exists():
        atomic_write_parquet(folder / RECORDS, rec)
        atomic_write_parquet(store.quarantine(name) / f"{version}.parquet", q.reset_index(drop=True))
        atomic_write_parquet(folder / DIFF, diff)
        manifest = {
            "name": name,
            "version": version,
            "parent": parent_version if parent_version != version else None,
            "source": src.get("name"),
            "origin": src,
            "fetched_at": fetched_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "kind": kinds[0] if len(kinds) == 1 else "mixed",
            "n_rows": int(len(rec)),
            "n_quarantined": int(len(q)),
            "properties": properties,
            "columns": list(rec.columns),
            "sha256": sha256_file(folder / RECORDS),
            "diff": counts,
            "created_by": f"matlib {__version__}",
            **dict(extra or {}),
        }
        atomic_write_json(folder / MANIFEST, manifest)
    atomic_write_text(store.datasets(name) / LATEST, version + "\n")
    ds = load_dataset(store, f"{name}@{version}")
    ds.diff = counts
    return ds


def _resolve(store: Store, ref: str) -> tuple[str, str]:
    """(name, version) from 'name' or 'name@version' (a unique version prefix is enough)."""
    name, _, version = ref.partition("@")
    base = store.datasets(name)
    if not name or not base.is_dir():
        known = ", ".join(sorted(p.name for p in store.datasets().glob("*") if p.is_dir())) or "none"
        raise MatlibError(f"dataset {name!r} not found in {store.root} (available: {known})")
    if not version:
        v = latest_version(store, name)
        if not v:
            raise MatlibError(f"dataset {name!r} has no committed version")
        return name, v
    matches = [p.name for p in base.iterdir() if p.is_dir() and p.name.startswith(version) and (p / MANIFEST).exists()]
    if len(matches) != 1:
        what = "no" if not matches else "an ambiguous"
        raise MatlibError(f"{what} version {version!r} of dataset {name!r}")
    return name, matches[0]


def load_dataset(store: Store, ref: str, verify: bool = True) -> Dataset:
    """Load 'name' (latest) or 'name@version'; verifies the records' sha256 against the manifest."""
    name, version = _resolve(store, ref)
    folder = store.datasets(name) / version
    manifest = read_json(folder / MANIFEST)
    if verify and sha256_file(folder / RECORDS) != manifest["sha256"]:
        raise IntegrityError(f"dataset {name}@{version}: records.parquet does not match its manifest sha256")
    records = read_parquet(folder / RECORDS)
    return Dataset(
        name=name, version=version, records=records, manifest=manifest, path=folder, diff=dict(manifest.get("diff", {}))
    )


def load_diff(store: Store, ref: str) -> pd.DataFrame:
    """record_id/status of what changed in this version against its parent."""
    name, version = _resolve(store, ref)
    return read_parquet(store.datasets(name) / version / DIFF)


def list_datasets(store: Store) -> pd.DataFrame:
    """One row per dataset version: name, version, latest, rows, quarantined, properties, source, diff."""
    rows = []
    base = store.datasets()
    for mpath in sorted(base.glob(f"*/*/{MANIFEST}")):
        m = read_json(mpath)
        rows.append(
            {
                "name": m["name"],
                "version": m["version"],
                "latest": latest_version(store, m["name"]) == m["version"],
                "kind": m.get("kind"),
                "n_rows": m.get("n_rows"),
                "n_quarantined": m.get("n_quarantined"),
                "properties": ",".join(m.get("properties", [])),
                "source": m.get("source"),
                "fetched_at": m.get("fetched_at"),
                "parent": m.get("parent"),
                **{k: m.get("diff", {}).get(k) for k in ("added", "changed", "removed")},
            }
        )
    cols = [
        "name",
        "version",
        "latest",
        "kind",
        "n_rows",
        "n_quarantined",
        "properties",
        "source",
        "fetched_at",
        "parent",
        "added",
        "changed",
        "removed",
    ]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["name", "fetched_at"]).reset_index(drop=True) if len(df) else df
