"""Descriptor tables: a dataset version's features as partitioned Parquet, cached and incremental.

Layout: descriptors/<name>-<hash>/<dataset-version>/ holds part-*.parquet (record_id, input, features:
a fixed-size list of float32 — 10x smaller and faster than one column per feature for 2048-bit
fingerprints; failed rows stay with NaN features; names in build.json "feature_names"), quarantine.parquet
(record_id, field, reason, value = the input), spec.json and build.json (counts; written last, so its presence
marks a complete table).

The build is three plain steps so Dask and Prefect can drive them alike:
`plan_build` (cache check; reuse of the parent version's rows with the same record_id + input, failed ones
with their quarantine reason; the rows left to compute written to a staging folder in batches), `compute_batch`
(one batch -> one part), `finalize_build` (quarantine + metadata, then the staging folder is renamed into
place atomically).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from matlib.atomic import atomic_write_arrow, atomic_write_json, atomic_write_parquet, read_json, read_parquet
from matlib.datasets import load_dataset
from matlib.descriptors.base import get_featurizer
from matlib.descriptors.spec import DescriptorSpec
from matlib.errors import MatlibError
from matlib.store import Store

BUILD_JSON = "build.json"
TODO = "todo.parquet"
QUARANTINE_COLUMNS = ["record_id", "field", "reason", "value"]
DEFAULT_PARTITION_ROWS = {"composition": 100_000, "molecule": 5_000}


@dataclass
class BuildPlan:
    """What a build has to do (passed between tasks and to Dask workers)."""

    spec: dict
    dataset: str
    version: str
    out_dir: str
    stage_dir: str | None
    n_rows: int
    n_reused: int
    n_batches: int
    parent: str | None
    cached: bool

    def stage(self) -> Path:
        """The staging folder of a build that is not cached."""
        if self.stage_dir is None:
            raise MatlibError(f"descriptor build of {self.dataset}@{self.version} has no staging folder (cached)")
        return Path(self.stage_dir)


def table_dir(store: Store, spec: DescriptorSpec, version: str) -> Path:
    """Folder of one (spec, dataset version) descriptor table."""
    return store.descriptors() / spec.dirname / version


def is_complete(path: Path) -> bool:
    """True if the table at path was fully written (build.json present)."""
    return (path / BUILD_JSON).exists()


def part_table(record_ids: Sequence[str], inputs: Sequence[str], X: np.ndarray) -> pa.Table:
    """One part: record_id, input, features (fixed-size list of float32, one entry per feature)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    feats = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), X.shape[1])
    return pa.table(
        {
            "record_id": pa.array(list(record_ids), pa.string()),
            "input": pa.array(list(inputs), pa.string()),
            "features": feats,
        }
    )


def read_table(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(record_ids, inputs, X float32 [n, d]) of all parts of a table, sorted by record_id."""
    parts = sorted(path.glob("part-*.parquet"))
    d = int(build_info(path)["n_features"]) if (path / BUILD_JSON).exists() else None
    tables = [pq.read_table(p) for p in parts]
    if not tables:
        return np.array([], dtype=str), np.array([], dtype=str), np.zeros((0, d or 0), np.float32)
    t = pa.concat_tables(tables)
    d = d if d is not None else t.schema.field("features").type.list_size
    ids = t.column("record_id").to_numpy(zero_copy_only=False).astype(str)
    inputs = t.column("input").to_numpy(zero_copy_only=False).astype(str)
    X = t.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    X = X.astype(np.float32, copy=False).reshape(len(ids), d)
    order = np.argsort(ids, kind="stable")
    return ids[order], inputs[order], X[order]


def plan_build(
    store: Store, dataset_ref: str, spec: DescriptorSpec | str | dict, partition_rows: int | None = None
) -> BuildPlan:
    """Check the cache and stage the rows still to compute (reusing the parent version's unchanged rows)."""
    spec = DescriptorSpec.coerce(spec)
    feat = get_featurizer(spec)
    ds = load_dataset(store, dataset_ref)
    out = table_dir(store, spec, ds.version)
    parent = ds.manifest.get("parent")
    base: dict[str, Any] = dict(
        spec=spec.to_dict(),
        dataset=ds.name,
        version=ds.version,
        out_dir=str(out),
        n_rows=len(ds.records),
        parent=parent,
    )
    if is_complete(out):
        return BuildPlan(stage_dir=None, n_reused=0, n_batches=0, cached=True, **base)
    resumed = _interrupted_stage(out, ds.version)
    if resumed is not None:  # a crashed build's staging folder: keep its finished batches
        todo = pq.read_table(resumed / TODO, columns=["batch"]).column("batch").to_numpy()
        n_reused = sum(pq.ParquetFile(p).metadata.num_rows for p in resumed.glob("part-r-*.parquet"))
        n_batches = int(todo.max()) + 1 if len(todo) else 0
        return BuildPlan(stage_dir=str(resumed), n_reused=n_reused, n_batches=n_batches, cached=False, **base)
    rec = ds.records[["record_id", "input", "kind"]].copy()
    rec["record_id"] = rec["record_id"].astype(str)
    stage = out.parent / f".{ds.version}.staging-{uuid.uuid4().hex[:8]}"
    stage.mkdir(parents=True)
    n_reused = 0
    parent_dir = table_dir(store, spec, parent) if parent else None
    if parent_dir is not None and is_complete(parent_dir):
        n_reused, rec = _reuse_parent(parent_dir, stage, rec)
    size = partition_rows or DEFAULT_PARTITION_ROWS[feat.input_kind]
    rec = rec.reset_index(drop=True)
    rec["batch"] = np.arange(len(rec)) // size
    n_batches = int(rec["batch"].max()) + 1 if len(rec) else 0
    atomic_write_parquet(stage / TODO, rec)
    return BuildPlan(stage_dir=str(stage), n_reused=n_reused, n_batches=n_batches, cached=False, **base)


def _interrupted_stage(out: Path, version: str) -> Path | None:
    """The staging folder an interrupted build of this table left (its todo list written, so complete), if any."""
    stages = sorted(p for p in out.parent.glob(f".{version}.staging-*") if (p / TODO).is_file())
    return stages[0] if stages else None


def _reuse_parent(parent_dir: Path, stage: Path, rec: pd.DataFrame) -> tuple[int, pd.DataFrame]:
    """Copy the parent's rows whose (record_id, input) are unchanged, part by part; return (n, rows left)."""
    wanted = pd.MultiIndex.from_frame(rec[["record_id", "input"]])
    reused: list[pd.DataFrame] = []
    for k, part in enumerate(sorted(parent_dir.glob("part-*.parquet"))):
        table = pq.read_table(part)
        keys = pd.MultiIndex.from_arrays(
            [
                table.column("record_id").to_numpy(zero_copy_only=False),
                table.column("input").to_numpy(zero_copy_only=False),
            ]
        )
        mask = keys.isin(wanted)
        if mask.any():
            atomic_write_arrow(stage / f"part-r-{k:05d}.parquet", table.filter(pa.array(mask)))
            reused.append(pd.DataFrame({"record_id": keys.get_level_values(0)[mask]}))
    if not reused:
        return 0, rec
    ids = pd.concat(reused)["record_id"]
    old_q = read_parquet(parent_dir / "quarantine.parquet")  # reused failed rows keep their reason
    atomic_write_parquet(stage / "quarantine-r.parquet", old_q[old_q["record_id"].isin(ids)])
    return len(ids), rec[~rec["record_id"].isin(ids)]


def compute_batch(plan: BuildPlan, batch: int) -> dict[str, int]:
    """Featurise one staged batch into part-c-<batch>.parquet (+ its quarantine rows)."""
    stage = plan.stage()
    part, done = stage / f"part-c-{batch:05d}.parquet", stage / f"quarantine-{batch:05d}.parquet"
    if done.exists() and part.exists():  # finished before an interruption (its quarantine is written last)
        return {"batch": batch, "n": pq.ParquetFile(part).metadata.num_rows, "n_failed": len(read_parquet(done))}
    todo = pq.read_table(stage / TODO, filters=[("batch", "=", batch)]).to_pandas()
    feat = get_featurizer(DescriptorSpec.from_dict(plan.spec))
    inputs = todo["input"].tolist()
    kind_ok = (todo["kind"] == feat.input_kind).to_numpy()
    X = np.full((len(todo), feat.n_features), np.nan, dtype=np.float32)
    reasons: list[str | None] = [
        f"kind {k!r} cannot use {feat.input_kind} descriptor {feat.spec.name!r}" if not good else None
        for k, good in zip(todo["kind"], kind_ok)
    ]
    idx = np.flatnonzero(kind_ok)
    if len(idx):
        res = feat.featurize([inputs[i] for i in idx])
        X[idx] = res.X
        for j, i in enumerate(idx):
            if not res.ok[j]:
                reasons[i] = res.reasons[j] or "descriptor failed"
    atomic_write_arrow(part, part_table(todo["record_id"], inputs, X))
    bad = [i for i, r in enumerate(reasons) if r is not None]
    q = pd.DataFrame(
        {
            "record_id": todo["record_id"].to_numpy()[bad],
            "field": "input",
            "reason": [reasons[i] for i in bad],
            "value": [inputs[i] for i in bad],
        }
    )
    atomic_write_parquet(done, q)
    return {"batch": batch, "n": int(len(todo)), "n_failed": len(bad)}


def finalize_build(plan: BuildPlan) -> Path:
    """Gather quarantine + metadata and move the staged table into place (atomic rename)."""
    out = Path(plan.out_dir)
    if plan.cached:
        return out
    stage = plan.stage()
    missing = [b for b in range(plan.n_batches) if not (stage / f"part-c-{b:05d}.parquet").exists()]
    if missing:
        raise MatlibError(f"descriptor build of {plan.dataset}@{plan.version}: batch(es) {missing[:5]} not computed")
    qs = [read_parquet(p) for p in sorted(stage.glob("quarantine-*.parquet"))]
    q = pd.concat(qs, ignore_index=True) if qs else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    atomic_write_parquet(stage / "quarantine.parquet", q.sort_values("record_id").reset_index(drop=True))
    for p in stage.glob("quarantine-*.parquet"):
        p.unlink()
    for p in stage.glob("*.tmp"):  # a part an interrupted run was writing (killed before its rename)
        p.unlink()
    (stage / TODO).unlink(missing_ok=True)
    spec_dict = plan.spec
    feature_names = get_featurizer(DescriptorSpec.from_dict(spec_dict)).feature_names
    atomic_write_json(stage / "spec.json", spec_dict)
    atomic_write_json(out.parent / "spec.json", spec_dict)
    n_computed = plan.n_rows - plan.n_reused
    atomic_write_json(
        stage / BUILD_JSON,
        {
            "dataset": plan.dataset,
            "version": plan.version,
            "parent": plan.parent,
            "spec": spec_dict,
            "n_rows": plan.n_rows,
            "n_reused": plan.n_reused,
            "n_computed": n_computed,
            "n_failed": int(len(q)),
            "n_batches": plan.n_batches,
            "n_features": len(feature_names),
            "feature_names": feature_names,
        },
    )
    try:
        os.replace(stage, out)
    except OSError:
        if not is_complete(out):  # not a concurrent build that finished first: a real failure
            raise
        shutil.rmtree(stage, ignore_errors=True)
    return out


def build_descriptors(
    store: Store,
    dataset_ref: str,
    spec: DescriptorSpec | str | dict,
    client: Any = None,
    partition_rows: int | None = None,
    progress: bool = True,
) -> Path:
    """Compute (or reuse) the descriptor table of a dataset version; returns its folder."""
    plan = plan_build(store, dataset_ref, spec, partition_rows)
    if plan.cached:
        return Path(plan.out_dir)
    try:
        run_batches(plan, client, progress)
        return finalize_build(plan)
    except BaseException:
        shutil.rmtree(plan.stage(), ignore_errors=True)
        raise


def run_batches(plan: BuildPlan, client: Any = None, progress: bool = True) -> list[dict[str, int]]:
    """Compute every batch: on the Dask client if given (one task per batch), else in this process."""
    label = f"{plan.spec['name']} {plan.dataset}@{plan.version[:8]}"
    with _progress(progress, label, plan.n_batches) as advance:
        if client is None:
            results = []
            for b in range(plan.n_batches):
                results.append(compute_batch(plan, b))
                advance()
            return results
        from distributed import as_completed

        futures = client.map(compute_batch, [plan] * plan.n_batches, range(plan.n_batches), pure=False)
        results = []
        for fut in as_completed(futures):
            results.append(fut.result())
            advance()
        return results


class _progress:
    """A rich progress bar over batches (silent when disabled)."""

    def __init__(self, enabled: bool, label: str, total: int):
        self.enabled, self.label, self.total = enabled and total > 0, label, total

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.bar.start()
        task = self.bar.add_task(self.label, total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.stop()


def load_descriptors(
    store: Store, dataset_ref: str, spec: DescriptorSpec | str | dict, drop_failed: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(record_ids, X float32) of a built table, sorted by record_id; failed rows dropped unless asked."""
    spec = DescriptorSpec.coerce(spec)
    ds = load_dataset(store, dataset_ref)
    path = table_dir(store, spec, ds.version)
    if not is_complete(path):
        raise MatlibError(
            f"descriptors {spec.name} of {ds.name}@{ds.version} are not built; run "
            f"`matlib descriptors build --dataset {ds.name}@{ds.version} --descriptor {spec.name}`"
        )
    ids, _, X = read_table(path)
    if drop_failed:
        good = np.isfinite(X).all(axis=1)
        ids, X = ids[good], X[good]
    return ids, np.ascontiguousarray(X)


def build_info(path: Path) -> dict[str, Any]:
    """The build.json of a table folder."""
    return read_json(path / BUILD_JSON)
