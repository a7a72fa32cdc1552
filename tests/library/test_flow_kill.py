"""The build-library flow on a real Prefect and a real Dask LocalCluster, with a worker killed mid-build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from matlib.library import Library
from matlib.library.build import prepare_and_plan
from matlib.store import Store
from tests.fixtures import TEST_DATA

REPO = Path(__file__).resolve().parents[2]

FLOW_SCRIPT = """
import asyncio, json, sys
from prefect.client.orchestration import get_client
from flows.build_library import build_library_flow

config, cluster, root, out = sys.argv[1:5]
path = build_library_flow(config, cluster, root)

async def names():
    async with get_client() as c:
        return [t.name for t in await c.read_task_runs(limit=200)]

json.dump({"path": path, "tasks": asyncio.run(names())}, open(out, "w"))
"""


def _config(tmp_path: Path) -> Path:
    """2,000 tiny models: 1,000 each on real MP refractive indices and AFLOW Debye temperatures (Magpie)."""
    tiny = {"architecture": {"n_layers": [1, 2], "max_width": 8, "width_fraction": [0.02, 0.06]}}
    cfg = {
        "name": "kill-test",
        "seed": 1,
        "shard_size": 50,
        "family_size": 50,
        "training": {"epochs": 12, "batch_size": 64, "patience": 12},
        "groups": [
            {
                "dataset": "mp_dielectric",
                "descriptors": ["magpie"],
                "properties": ["target"],
                "property_names": {"target": "refractive_index"},
                "models_per_property": 1000,
                **tiny,
                "import": {
                    "file": str(TEST_DATA / "mp" / "matbench_dielectric.csv"),
                    "input_column": "formula",
                    "target_columns": ["target"],
                    "kind": "composition",
                    "sample_rows": 400,
                },
            },
            {
                "dataset": "aflow_debye",
                "descriptors": ["magpie"],
                "properties": ["target"],
                "property_names": {"target": "debye_temperature"},
                "models_per_property": 1000,
                **tiny,
                "import": {
                    "file": str(TEST_DATA / "aflow" / "ael_debye_temperature.csv"),
                    "input_column": "formula",
                    "target_columns": ["target"],
                    "kind": "composition",
                    "sample_rows": 400,
                },
            },
        ],
    }
    path = tmp_path / "library.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MATLIB_"))}
    home = tmp_path / "prefect"
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PYTHONPATH=str(REPO),
        MATLIB_HOME=str(tmp_path / "store"),
    )
    return env


def _kill_a_busy_worker(client, parts: Path, proc: subprocess.Popen, timeout: float = 300) -> dict:
    """Once some shards are done, SIGKILL a worker process that is training a shard right now."""
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        done = len(list(parts.glob("*.json"))) if parts.exists() else 0
        busy = {w: [k for k in keys if str(k).startswith("shard-")] for w, keys in client.processing().items()}
        busy = {w: ks for w, ks in busy.items() if ks}
        if done >= 3 and busy:
            worker, keys = next(iter(busy.items()))
            pid = client.run(os.getpid, workers=[worker])[worker]
            os.kill(pid, signal.SIGKILL)
            return {"worker": worker, "pid": pid, "shards": keys, "done_before": done}
        time.sleep(0.05)
    pytest.fail("no shard was running to kill (the build finished or never started)")


def test_flow_survives_a_killed_worker_and_stores_every_model_once(tmp_path):
    from distributed import Client, LocalCluster

    config = _config(tmp_path)
    out = tmp_path / "out.json"
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        pids_before = set(client.run(os.getpid).values())
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                FLOW_SCRIPT,
                str(config),
                cluster.scheduler_address,
                str(tmp_path / "store"),
                str(out),
            ],
            cwd=REPO,
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        killed = _kill_a_busy_worker(client, tmp_path / "store" / "library" / "kill-test" / "parts", proc)
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, log[-4000:]
        assert killed["pid"] in pids_before and killed["pid"] not in set(client.run(os.getpid).values())

    res = json.loads(out.read_text())
    lib = Library(res["path"])
    _, jobs = prepare_and_plan(Store(tmp_path / "store"), str(config))
    planned = [m.model_id for j in jobs for m in j.models]
    assert len(planned) == 2000 and len(set(planned)) == 2000
    cat = lib.catalog
    assert sorted(cat["model_id"]) == sorted(planned)  # every model exactly once
    ok = cat[cat["status"] == "ok"]
    stored = [mid for s in lib.iter_shards() for mid in s.model_ids]  # sha256 of every shard checked here
    assert sorted(stored) == sorted(ok["model_id"]) and len(stored) == len(set(stored))
    assert len(ok) >= 1900
    assert (ok.groupby("property").size() >= 950).all()
    shard_tasks = [n for n in res["tasks"] if n.startswith("library-shard")]
    assert len(shard_tasks) == len(jobs) == 40  # one Prefect task per shard of 50 models, never per model
    print(f"killed {killed}; {len(ok)} ok / {len(cat)} models in {len(jobs)} shards")

    # a rerun through the flow skips every finished shard and changes nothing
    before = {p.name: p.stat().st_mtime_ns for p in (lib.path / "shards").glob("*")}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        cp = subprocess.run(
            [
                sys.executable,
                "-c",
                FLOW_SCRIPT,
                str(config),
                cluster.scheduler_address,
                str(tmp_path / "store"),
                str(out),
            ],
            cwd=REPO,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert cp.returncode == 0, cp.stderr[-4000:]
    assert {p.name: p.stat().st_mtime_ns for p in (lib.path / "shards").glob("*")} == before
    pd.testing.assert_frame_equal(Library(res["path"]).catalog, cat)
