"""Graph tables cached per (graph spec, dataset version): safetensors + Parquet, manifest written last.

Layout: graphs/<name>-<spec hash>/<dataset version>/ holds graphs.safetensors (the packed GraphSet),
records.parquet (record_id, ok, reason: failed rows keep an empty graph and their reason) and manifest.json
(spec, counts, sha256 of both files). The manifest is written last, so its presence marks a complete table;
reads check both checksums.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from matlib.atomic import atomic_write_bytes, atomic_write_json, atomic_write_parquet, read_json, read_parquet
from matlib.errors import IntegrityError, MatlibError
from matlib.graphs.batch import GraphSet
from matlib.graphs.spec import GraphSpec
from matlib.hashing import sha256_bytes, sha256_file
from matlib.store import Store

INPUT_COLUMN = {"molecule": "input", "structure": "structure_json"}


def graphs_dir(store: Store, spec: GraphSpec, version: str) -> Path:
    """Folder of one (spec, dataset version) graph table."""
    return store.root / "graphs" / f"{spec.name}-{spec.hash}" / version


def graphset_bytes(gs: GraphSet) -> bytes:
    """A GraphSet as safetensors bytes (node / edge features in float16 when that is exact)."""

    def compact(a: np.ndarray) -> torch.Tensor:
        h = a.astype(np.float16)
        return torch.from_numpy(h if np.array_equal(h.astype(np.float32), a) else a.astype(np.float32))

    tensors = {
        "x": compact(gs.x),
        "edge_attr": compact(gs.edge_attr),
        "edge_index": torch.from_numpy(gs.edge_index.astype(np.int32)),
        "node_ptr": torch.from_numpy(gs.node_ptr),
        "edge_ptr": torch.from_numpy(gs.edge_ptr),
    }
    return st_save({k: v.contiguous() for k, v in tensors.items()}, metadata={"meta": json.dumps(gs.meta)})


def graphset_from_bytes(data: bytes) -> GraphSet:
    """The GraphSet serialised by graphset_bytes."""
    import struct

    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["meta"])
    t = st_load(data)
    return GraphSet(
        t["x"].float().numpy(),
        t["edge_index"].long().numpy(),
        t["edge_attr"].float().numpy(),
        t["node_ptr"].numpy(),
        t["edge_ptr"].numpy(),
        meta,
    )


def build_graphs(store: Store, dataset_ref: str, spec: GraphSpec | dict | str) -> Path:
    """Compute (or reuse) the graphs of a dataset version; returns the table's folder."""
    from matlib.datasets import load_dataset

    spec = GraphSpec.coerce(spec)
    ds = load_dataset(store, dataset_ref)
    out = graphs_dir(store, spec, ds.version)
    if (out / "manifest.json").exists():
        return out
    col = INPUT_COLUMN[spec.kind]
    if col not in ds.records.columns:
        raise MatlibError(f"graphs {spec.name}: dataset {ds.name}@{ds.version} has no column {col!r}")
    inputs = ["" if pd.isna(v) else str(v) for v in ds.records[col]]
    gs, ok, reasons = spec.featurize(inputs)
    data = graphset_bytes(gs)
    atomic_write_bytes(out / "graphs.safetensors", data)
    atomic_write_parquet(
        out / "records.parquet",
        pd.DataFrame({"record_id": ds.records["record_id"].astype(str).to_numpy(), "ok": ok, "reason": reasons}),
    )
    atomic_write_json(
        out / "manifest.json",
        {
            "spec": spec.to_dict(),
            "spec_hash": spec.hash,
            "dataset": ds.name,
            "version": ds.version,
            "n_rows": len(inputs),
            "n_ok": int(ok.sum()),
            "sha256": sha256_bytes(data),
            "records_sha256": sha256_file(out / "records.parquet"),
        },
    )
    return out


def load_graphs(store: Store, dataset_ref: str, spec: GraphSpec | dict | str) -> tuple[np.ndarray, GraphSet]:
    """(record ids, GraphSet) of the rows that featurised, built first when not cached; checksums verified."""
    out = build_graphs(store, dataset_ref, spec)
    manifest = read_json(out / "manifest.json")
    data = (out / "graphs.safetensors").read_bytes()
    if sha256_bytes(data) != manifest["sha256"] or sha256_file(out / "records.parquet") != manifest["records_sha256"]:
        raise IntegrityError(f"graph table {out}: sha256 mismatch; the files were modified or corrupted")
    records = read_parquet(out / "records.parquet")
    gs = graphset_from_bytes(data)
    keep = np.flatnonzero(records["ok"].to_numpy(bool))
    return records["record_id"].to_numpy()[keep], gs.subset(keep)
