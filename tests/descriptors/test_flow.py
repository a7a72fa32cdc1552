"""The build_descriptors flow on a real ephemeral Prefect with the Dask task runner, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from matlib.datasets import commit_version
from matlib.descriptors import DescriptorSpec
from matlib.descriptors.build import build_info
from matlib.store import Store

REPO = Path(__file__).resolve().parents[2]

FLOW_SCRIPT = """
import asyncio, json, sys
from prefect.client.orchestration import get_client
from flows.build_descriptors import build_descriptors_flow
from tasks.runner import dask_task_runner

root, out = sys.argv[1], sys.argv[2]
flow = build_descriptors_flow.with_options(task_runner=dask_task_runner(n_workers=1, threads_per_worker=2))
path = flow("mp_e", "magpie", store_root=root)

async def names():
    async with get_client() as c:
        return [t.name for t in await c.read_task_runs()]

json.dump({"path": path, "tasks": asyncio.run(names())}, open(out, "w"))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MATLIB_"))}
    home = tmp_path / "prefect"
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",  # a busy 2-core machine can take over 20 s
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PYTHONPATH=str(REPO),
        MATLIB_HOME=str(tmp_path / "home"),
    )
    return env


def test_flow_runs_one_task_per_batch(tmp_path, mp_records):
    store = Store(tmp_path / "home")
    rec = mp_records.copy()
    rec.loc[0, "input"] = "Zz2O"  # cannot happen after the data room's validation; here it proves quarantine
    ds = commit_version(store, "mp_e", rec, "test")
    out = tmp_path / "out.json"
    cp = subprocess.run(
        [sys.executable, "-c", FLOW_SCRIPT, str(store.root), str(out)],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cp.returncode == 0, cp.stderr[-3000:]
    res = json.loads(out.read_text())
    path = Path(res["path"])
    assert path == store.descriptors() / DescriptorSpec("magpie").dirname / ds.version
    info = build_info(path)
    assert info["n_computed"] == 2000 and info["n_failed"] == 1 and info["n_batches"] == 1
    batch_tasks = [n for n in res["tasks"] if n.startswith("descriptors-batch")]
    assert len(batch_tasks) == info["n_batches"]  # one task per batch, not per row
    assert any(n.startswith("descriptors-plan") for n in res["tasks"])
    q = pd.read_parquet(path / "quarantine.parquet")
    assert q["reason"].tolist() == ["unknown element 'Zz' in 'Zz2O'"]


def test_cli_build_and_ls(tmp_path, mp_records):
    store = Store(tmp_path / "home")
    commit_version(store, "mp_e", mp_records.head(300), "test")
    env = _env(tmp_path)
    cmd = [sys.executable, "-c", "from matlib.cli import main; main()"]
    cp = subprocess.run(
        cmd + ["descriptors", "build", "--dataset", "mp_e", "--descriptor", "xenonpy"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cp.returncode == 0, cp.stderr
    assert "rows=300 computed=300 reused=0 failed=0" in cp.stdout
    again = subprocess.run(
        cmd + ["descriptors", "build", "--dataset", "mp_e", "--descriptor", "xenonpy"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.stdout == cp.stdout and "computed=300" in again.stdout  # cached: the same table
    assert "xenonpy mp_e@" in cp.stderr and "xenonpy mp_e@" not in again.stderr  # progress bar only when computing
    ls = subprocess.run(cmd + ["descriptors", "ls"], env=env, capture_output=True, text=True, timeout=300)
    assert ls.returncode == 0 and "rdkit2d" in ls.stdout and "mp_e@" in ls.stdout
    bad = subprocess.run(
        cmd + ["descriptors", "build", "--dataset", "mp_e", "--descriptor", "soap"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and bad.stderr.startswith("error: unknown descriptor 'soap'")
    assert len(bad.stderr.strip().splitlines()) == 1
