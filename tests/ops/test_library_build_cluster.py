"""library-build on an existing Dask cluster: a separately started scheduler and two worker processes."""

from __future__ import annotations

import json
import subprocess

import pandas as pd

from tests.fixtures import TEST_DATA
from tests.ops.opsutil import PYTHON, REPO, DaskCluster, write_library_config, write_slice

BUILD = (
    "import json, sys\n"
    "from flows.build_library import build_library_flow\n"
    "out = build_library_flow(sys.argv[1], store_root=sys.argv[2])\n"
    "print('LIBRARY', json.dumps(str(out)))\n"
)


def _executed(address: str) -> dict[str, tuple[int, list[str]]]:
    """Per worker name: (tasks executed so far, keys in its transition log)."""
    from distributed import Client

    def probe(dask_worker) -> tuple[int, list[str]]:  # noqa: ANN001 - dask injects the worker
        keys = sorted({str(e[0]) for e in dask_worker.state.log if isinstance(e, tuple) and e})
        return int(dask_worker.state.executed_count), keys

    with Client(address, timeout="30s") as client:
        info = client.scheduler_info()["workers"]
        return {str(info[addr]["name"]): res for addr, res in client.run(probe).items()}


def test_library_build_runs_on_the_existing_cluster(dask_cluster: DaskCluster, prefect_server, tmp_path) -> None:
    table = write_slice(TEST_DATA / "mp" / "matbench_dielectric.csv", tmp_path / "dielectric.csv", 240)
    config = write_library_config(
        tmp_path / "library.yaml", "ops-cluster", table, "formula", "target", models=4, shard_size=1, epochs=2
    )
    store = tmp_path / "store"
    before = _executed(dask_cluster.address)
    env = dict(prefect_server.env, MATLIB_DASK_ADDRESS=dask_cluster.address, MATLIB_HOME=str(store))
    cp = subprocess.run(
        [PYTHON, "-c", BUILD, str(config), str(store)], cwd=REPO, env=env, capture_output=True, text=True, timeout=400
    )
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-4000:]
    lib = store / "library" / "ops-cluster"
    catalog = pd.read_parquet(lib / "catalog.parquet")
    assert len(catalog) == 4 and set(catalog["status"]) <= {"ok", "failed"}
    n_shards = len(json.loads((lib / "manifest.json").read_text())["shards"])
    assert n_shards == int((catalog["status"] == "ok").sum())

    after = _executed(dask_cluster.address)
    ran = {name: after[name][0] - before[name][0] for name in dask_cluster.worker_names}
    # every shard job (and the descriptor batches) executed on the two separately started workers
    assert sum(ran.values()) >= 4, (ran, cp.stdout[-2000:])
    assert all(n > 0 for n in ran.values()), f"work did not spread over both workers: {ran}"
    new_keys = [k for name in dask_cluster.worker_names for k in set(after[name][1]) - set(before[name][1])]
    assert sum("shard" in k for k in new_keys) >= 4, new_keys
    assert all(w.poll() is None for w in dask_cluster.workers), "the flow must not shut the external cluster down"
