"""A library-build flow killed mid-run and rerun reuses the finished shards instead of retraining them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tests.fixtures import TEST_DATA
from tests.ops.opsutil import PYTHON, REPO, start_process, tail, write_library_config, write_slice

BUILD = (
    "import sys\n"
    "from flows.build_library import build_library_flow\n"
    "print('LIBRARY', build_library_flow(sys.argv[1], store_root=sys.argv[2]))\n"
)


def _done_records(lib: Path) -> dict[str, tuple[int, str]]:
    """Finished shards: name -> (mtime_ns of the done record, its content)."""
    parts = lib / "parts"
    if not parts.exists():
        return {}
    return {p.stem: (p.stat().st_mtime_ns, p.read_text()) for p in parts.glob("*.json")}


def test_rerun_after_crash_reuses_finished_shards(prefect_server, tmp_path) -> None:
    table = write_slice(TEST_DATA / "mp" / "matbench_mp_gap.csv", tmp_path / "gap.csv", 300, step=7)
    config = write_library_config(
        tmp_path / "library.yaml",
        "ops-crash",
        table,
        "formula",
        "target",
        models=8,
        shard_size=1,
        epochs=40,
        max_rows=300,
    )
    store = tmp_path / "store"
    lib = store / "library" / "ops-crash"
    env = dict(prefect_server.env, MATLIB_HOME=str(store), MATLIB_DASK_WORKERS="1", MATLIB_DASK_THREADS="1")

    # 1st run: kill the whole flow process group (SIGKILL) as soon as the first shard is finished
    log = tmp_path / "crashed-run.log"
    proc = start_process([PYTHON, "-c", BUILD, str(config), str(store)], env, log)
    deadline = time.monotonic() + 300
    while not _done_records(lib):
        assert proc.poll() is None, f"build ended before any shard finished:\n{tail(log)}"
        assert time.monotonic() < deadline, f"no shard finished in time:\n{tail(log)}"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the flow process and its local Dask workers die at once: a crash
    proc.wait(timeout=30)
    time.sleep(0.5)
    finished = _done_records(lib)
    assert 0 < len(finished) < 8, f"the crash must leave some shards unfinished: {sorted(finished)}"
    assert not (lib / "catalog.parquet").exists()
    descriptors = sorted((store / "descriptors").rglob("*.parquet"))
    desc_mtimes = {p: p.stat().st_mtime_ns for p in descriptors}

    # 2nd run: completes, and the shards finished before the crash are not recomputed
    cp = subprocess.run(
        [PYTHON, "-c", BUILD, str(config), str(store)], cwd=REPO, env=env, capture_output=True, text=True, timeout=400
    )
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-4000:]
    after = _done_records(lib)
    assert len(after) == 8
    for shard, (mtime, content) in finished.items():
        assert after[shard] == (mtime, content), f"shard {shard} was recomputed"
    assert all(p.stat().st_mtime_ns == m for p, m in desc_mtimes.items()), "descriptors were recomputed"
    catalog = pd.read_parquet(lib / "catalog.parquet")
    assert len(catalog) == 8 and catalog["model_id"].is_unique
    manifest = json.loads((lib / "manifest.json").read_text())
    assert manifest["n_models"] == 8
    # the rerun's own summary artifact says the same: the finished shards were skipped
    arts = prefect_server.post(
        "/artifacts/filter", {"artifacts": {"key": {"any_": ["library-ops-crash"]}}, "sort": "CREATED_DESC"}
    ).json()
    assert arts, "the library build published no summary artifact"
    assert f"shards: 8 ({len(finished)} skipped as already built)" in arts[0]["data"], arts[0]["data"]
    print(f"reused {len(finished)} of 8 shards after the crash", file=sys.stderr)
