"""Benchmark: catalog queries over 100,000 models (Parquet + pandas), vs a plain Python scan baseline.

.venv/bin/python benchmarks/library_query.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from matlib.atomic import atomic_write_parquet
from matlib.library import Library
from matlib.library.build import seal_library


def synthetic_catalog(n: int, seed: int = 0) -> pd.DataFrame:
    """n catalog rows with the real columns and realistic value spreads (synthetic: only for timing)."""
    rng = np.random.default_rng(seed)
    props = np.array([f"property_{i}" for i in range(40)])
    descs = np.array(["magpie", "xenonpy", "morgan", "maccs", "rdkit2d"])
    arch = json.dumps(
        {"n_in": 132, "hidden": [64, 32], "activation": "relu", "dropout": 0.0, "batchnorm": False, "n_out": 1}
    )
    return pd.DataFrame(
        {
            "model_id": [f"{i:016x}" for i in rng.permutation(n)],
            "property": props[rng.integers(0, len(props), n)],
            "dataset": "ds",
            "dataset_version": "0123456789abcdef",
            "descriptor": descs[rng.integers(0, len(descs), n)],
            "descriptor_hash": "fedcba9876543210",
            "descriptor_spec": "{}",
            "arch": arch,
            "seed": rng.integers(0, 2**31, n),
            "train_config": "{}",
            "n_train": 4000,
            "mae": rng.gamma(2.0, 0.1, n),
            "rmse": rng.gamma(2.0, 0.15, n),
            "r2": rng.uniform(-0.2, 1, n),
            "status": np.where(rng.random(n) < 0.02, "failed", "ok"),
        }
    ).pipe(_place_in_shards)


def _place_in_shards(cat: pd.DataFrame, size: int = 256) -> pd.DataFrame:
    """ok models in shards of `size` at rows 0..size-1 (the catalog contract); failed ones: shard None, row -1."""
    ok = (cat["status"] == "ok").to_numpy()
    k = np.cumsum(ok) - 1
    cat["shard"] = np.where(ok, [f"shard-{i // size}" for i in k], None)
    cat["row"] = np.where(ok, k % size, -1)
    return cat


def main() -> None:
    """Time catalog load and typical queries; print the ratio against a Python row scan."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lib"
        cat = synthetic_catalog(args.rows)
        atomic_write_parquet(path / "catalog.parquet", cat)
        sizes = cat.loc[cat["status"] == "ok"].groupby("shard").size()
        seal_library(
            path, {"name": "bench", "shards": {k: {"sha256": "", "n_models": int(v)} for k, v in sizes.items()}}
        )
        t = time.perf_counter()
        lib = Library(path)
        n = len(lib.catalog)
        t_load = time.perf_counter() - t
        queries = [
            {"property": "property_7", "status": "ok"},
            {"property": ["property_1", "property_2"], "descriptor": "magpie", "r2__gt": 0.8},
            {"model_id": cat["model_id"].iloc[n // 2]},
            {"status": "ok", "mae__lt": 0.05},
        ]
        records = cat.to_dict("records")
        for q in queries:
            t = time.perf_counter()
            reps = 20
            for _ in range(reps):
                hits = lib.query(**q)
            t_q = (time.perf_counter() - t) / reps
            t = time.perf_counter()
            scan = [r for r in records if _match(r, q)]
            t_scan = time.perf_counter() - t
            assert len(scan) == len(hits)
            print(
                f"query {q}: {len(hits)} hits in {t_q * 1e3:.2f} ms "
                f"(python scan {t_scan * 1e3:.1f} ms, ratio {t_scan / t_q:.0f}x)"
            )
        print(f"catalog of {n} rows opened in {t_load * 1e3:.0f} ms")


def _match(r: dict, q: dict) -> bool:
    """The baseline: a plain Python test of one record against a query."""
    for k, v in q.items():
        col, _, op = k.partition("__")
        x = r[col]
        if op == "gt" and not x > v or op == "lt" and not x < v:
            return False
        if not op and (x not in v if isinstance(v, list) else x != v):
            return False
    return True


if __name__ == "__main__":
    main()
