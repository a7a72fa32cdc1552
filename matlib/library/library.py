"""A built library on disk: catalog, sha256-checked shards, load by id, shard iteration."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from matlib.atomic import read_json, read_parquet
from matlib.errors import IntegrityError, MatlibError
from matlib.hashing import sha256_file
from matlib.library.catalog import filter_catalog
from matlib.library.shard import Shard, read_shard
from matlib.models.mlp import MLPRegressor, build_module
from matlib.paths import confined

SHARD_CACHE = 4
LIBRARY_FORMAT = "matlib-library/1"
MANIFEST = "manifest.json"
CATALOG = "catalog.parquet"


class Library:
    """Read access to library/<name>/ (catalog.parquet, shards/*.safetensors, manifest.json)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.exists():
            raise MatlibError(
                f"{self.path} is not a matlib library (no manifest.json); build one with "
                "`matlib library build --config ...`"
            )
        try:
            self.manifest: dict[str, Any] = read_json(manifest)
        except ValueError as exc:
            raise IntegrityError(f"{manifest}: not valid JSON ({exc})") from None
        self._catalog: pd.DataFrame | None = None
        self._shards: OrderedDict[str, Shard] = OrderedDict()  # small LRU for load_model

    @property
    def name(self) -> str:
        """The library's name."""
        return str(self.manifest.get("name", self.path.name))

    @property
    def catalog(self) -> pd.DataFrame:
        """One row per model (see docs/architecture.md for the columns); sha256-checked against the manifest and
        consistent with its shards (every stored model at a row its shard holds)."""
        if self._catalog is None:
            self._catalog = verified_catalog(self.path, self.manifest)
        return self._catalog

    def query(self, **filters: Any) -> pd.DataFrame:
        """Catalog rows matching filters (col=v, col=[v...], col__gt=v, ...; see filter_catalog)."""
        return filter_catalog(self.catalog, **filters)

    def shard_path(self, shard: str) -> Path:
        """Path of a shard file, inside the library's own shards/ folder (IntegrityError for a name that escapes it
        or a symbolic link)."""
        return confined(self.path, f"shards/{shard}.safetensors", f"library {self.name}")

    def shard(self, name: str, cache: bool = True) -> Shard:
        """Load one shard (sha256 checked against the manifest); the last few are kept in memory."""
        if name in self._shards:
            self._shards.move_to_end(name)
            return self._shards[name]
        record = self.manifest.get("shards", {}).get(name)
        if record is None:
            raise MatlibError(f"shard {name} is not in the manifest of library {self.name}")
        rows = self.catalog[self.catalog["shard"] == name]
        shard = read_shard(self.shard_path(name), record["sha256"], rows)
        if cache:
            self._shards[name] = shard
            while len(self._shards) > SHARD_CACHE:
                self._shards.popitem(last=False)
        return shard

    def iter_shards(self, **filters: Any) -> Iterator[Shard]:
        """Shards holding at least one model that matches filters (all shards by default)."""
        names = sorted(self.manifest.get("shards", {}))
        if filters:
            wanted = set(self.query(**filters)["shard"].dropna())
            names = [n for n in names if n in wanted]
        for n in names:
            yield self.shard(n, cache=False)  # streamed: a library larger than memory still iterates

    def verify(self) -> int:
        """Check the catalog, every shard (sha256 and model ids) and the source fingerprints; returns the number of
        shards checked (IntegrityError on the first mismatch)."""
        from matlib.library.fingerprints import read_source_fingerprints

        catalog = self.catalog
        count = 0
        for name, record in sorted(self.manifest.get("shards", {}).items()):
            read_shard(self.shard_path(name), record["sha256"], catalog[catalog["shard"] == name])
            count += 1
        for ref, record in sorted(self.manifest.get("sources", {}).items()):
            read_source_fingerprints(self.path, record, ref)
        return count

    def load_model(self, model_id: str) -> MLPRegressor | Any:
        """The model as a plain torch.nn.Module (eval mode), predicting in the property's units (a GNN id gives a
        `matlib.models.gnn.GNNRegressor`)."""
        rows = self.catalog[self.catalog["model_id"] == model_id]
        if rows.empty:
            raise MatlibError(f"model {model_id} is not in library {self.name}")
        row = rows.iloc[0]
        if row["status"] != "ok" or not isinstance(row["shard"], str) or not row["shard"]:
            raise MatlibError(f"model {model_id} has status {row['status']!r}; it has no stored weights")
        shard = self.shard(row["shard"])
        m = int(row["row"])
        if shard.model_ids[m] != model_id:
            raise IntegrityError(
                f"library {self.name}: shard {shard.name} holds {shard.model_ids[m]} at row {m}, not {model_id}"
            )
        arch = json.loads(row["arch"])
        if row.get("model_type") == "gnn":
            from matlib.library.gnn_shard import gnn_module

            return gnn_module(shard, m)
        params = {}
        for key, tensor in shard.tensors.items():
            if key.startswith(("l", "bn")):
                params[key] = _unpad(key, tensor[m], arch)
        t = shard.tensors
        return build_module(arch, params, t["x_mean"][m], t["x_std"][m], float(t["y_mean"][m]), float(t["y_std"][m]))


def verified_catalog(path: Path, manifest: dict[str, Any]) -> pd.DataFrame:
    """The library's catalog, refused (one line) unless its sha256 is the manifest's and its (shard, row) pairs are
    exactly the rows 0..n-1 of every shard the manifest lists."""
    record = manifest.get("catalog")
    if not isinstance(record, dict) or not record.get("sha256"):
        raise IntegrityError(
            f"library {path}: its manifest does not cover {CATALOG} (built by an older matlib); "
            "rebuild it with `matlib library build` (finished shards are reused)"
        )
    file = path / CATALOG
    if not file.is_file() or file.is_symlink():
        raise IntegrityError(f"library {path}: {CATALOG} is missing")
    if sha256_file(file) != record["sha256"]:
        raise IntegrityError(f"library {path}: {CATALOG} was modified or corrupted (sha256 differs from {MANIFEST})")
    catalog = read_parquet(file)
    shards = manifest.get("shards", {})
    ok = catalog[catalog["status"] == "ok"]
    stray = ok[~ok["shard"].isin(list(shards))]
    if len(stray):
        raise IntegrityError(
            f"library {path}: model {stray['model_id'].iloc[0]} is in shard "
            f"{stray['shard'].iloc[0]!r}, which the manifest does not list"
        )
    for name, rows in ok.groupby("shard", sort=True):
        n = int(shards[name].get("n_models", len(rows)))
        got = sorted(int(r) for r in rows["row"])
        if got != list(range(n)):
            bad = next((r for r in got if not 0 <= r < n), None)
            what = (
                f"row {bad} is outside the shard's {n} models"
                if bad is not None
                else f"rows {got[:5]}{'...' if len(got) > 5 else ''} are not 0..{n - 1} once each"
            )
            raise IntegrityError(f"library {path}: catalog entries of shard {name}: {what}")
    return catalog


def _unpad(key: str, t: torch.Tensor, arch: dict) -> torch.Tensor:
    """Slice one model's padded tensor down to its own layer widths."""
    dims = [int(arch["n_in"])] + [int(h) for h in arch["hidden"]] + [int(arch.get("n_out", 1))]
    layer = int(key.split(".")[0].lstrip("lbn"))
    if key.startswith("l") and key.endswith("weight"):
        return t[: dims[layer + 1], : dims[layer]].clone()
    return t[: dims[layer + 1]].clone()
