"""One shard: a safetensors file of M stacked models of one shape, with JSON metadata; sha256-checked."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from matlib.atomic import atomic_write_bytes
from matlib.errors import IntegrityError, MatlibError
from matlib.hashing import sha256_bytes

FORMAT = "matlib-shard/1"


@dataclass
class Shard:
    """A loaded shard: padded arch, stacked tensors [M, ...], and its catalog rows ordered by row."""

    name: str
    arch: dict
    tensors: dict[str, torch.Tensor]
    rows: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def model_ids(self) -> list[str]:
        """Model ids in row order."""
        return list(self.meta.get("model_ids", self.rows["model_id"].tolist() if len(self.rows) else []))

    def __len__(self) -> int:
        return len(self.model_ids)


def shard_bytes(arch: dict, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> bytes:
    """Serialise stacked tensors + arch + metadata (all JSON strings) to safetensors bytes."""
    md = {"format": FORMAT, "arch": json.dumps(arch, sort_keys=True)}
    md.update({k: json.dumps(v, sort_keys=True) for k, v in meta.items()})
    return st_save({k: v.contiguous() for k, v in tensors.items()}, metadata=md)


def write_shard(path: str | Path, arch: dict, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
    """Write a shard atomically; returns its sha256."""
    data = shard_bytes(arch, tensors, meta)
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def _header_metadata(data: bytes, name: str) -> dict[str, str]:
    """The __metadata__ of a safetensors buffer."""
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
    except Exception as exc:
        raise IntegrityError(f"shard {name}: not a readable safetensors file ({exc})") from None
    return header.get("__metadata__", {})


def read_shard(path: str | Path, expected_sha256: str | None, rows: pd.DataFrame | None = None) -> Shard:
    """Load a shard, failing with IntegrityError naming it if its sha256 differs from the record."""
    path = Path(path)
    name = path.name.removesuffix(".safetensors")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MatlibError(f"shard {name}: file {path} is missing") from None
    if expected_sha256 is not None:
        found = sha256_bytes(data)
        if found != expected_sha256:
            raise IntegrityError(
                f"shard {name}: sha256 mismatch (recorded {expected_sha256[:12]}..., "
                f"file has {found[:12]}...); the file was modified or corrupted: {path}"
            )
    md = _header_metadata(data, name)
    if md.get("format") != FORMAT:
        raise IntegrityError(f"shard {name}: unknown format {md.get('format')!r} (expected {FORMAT})")
    try:
        tensors = st_load(data)
    except Exception as exc:
        raise IntegrityError(f"shard {name}: cannot decode tensors ({exc})") from None
    try:
        meta = {k: json.loads(v) for k, v in md.items() if k != "format"}
        arch = meta.pop("arch")
    except (ValueError, KeyError) as exc:
        raise IntegrityError(f"shard {name}: unreadable metadata ({exc})") from None
    ids = meta.get("model_ids")
    n = _n_models(tensors)
    if not isinstance(ids, list) or len(ids) != n:
        raise IntegrityError(
            f"shard {name}: its metadata lists {len(ids) if isinstance(ids, list) else 'no'} model "
            f"ids for {n} stored models"
        )
    if rows is None:
        rows = pd.DataFrame({"model_id": ids, "row": range(len(ids))})
    rows = rows.sort_values("row").reset_index(drop=True)
    check_rows(name, ids, rows)
    return Shard(name=name, arch=arch, tensors=tensors, rows=rows, meta=meta)


def _n_models(tensors: dict[str, torch.Tensor]) -> int:
    """M, the leading dimension every stacked tensor shares."""
    sizes = {int(t.shape[0]) for t in tensors.values() if t.ndim}
    return sizes.pop() if len(sizes) == 1 else -1


def check_rows(name: str, ids: list[str], rows: pd.DataFrame) -> None:
    """The catalog's (model_id, row) entries must name the model the shard stores at that row (IntegrityError)."""
    for mid, row in zip(rows["model_id"], rows["row"]):
        r = int(row)
        if not 0 <= r < len(ids):
            raise IntegrityError(
                f"shard {name}: the catalog puts model {mid} at row {r}, but the shard holds {len(ids)} models"
            )
        if ids[r] != mid:
            raise IntegrityError(
                f"shard {name}: the catalog puts model {mid} at row {r}, but the shard stores "
                f"{ids[r]} there; the catalog and the shard disagree"
            )
