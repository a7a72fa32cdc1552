"""The refresh_data flow on a real ephemeral Prefect: one task per source, task retries, artifact, no key leak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.http_server import FAST, MP_KEY

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, json, sys
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter
from flows.refresh_data import refresh_data

url, root, out, opts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
res = refresh_data(["mp", "oqmd", "optimade"], url=url, store_root=root, options=opts, retry_delay_s=0.2)
from prefect.logging.handlers import APILogHandler
APILogHandler().flush()  # logs go to the API in background batches: send what is queued before reading them

async def collect():
    async with get_client() as c:
        arts = await c.read_artifacts()
        runs = await c.read_task_runs()
        logs = await c.read_logs()
        return {"artifacts": [{"key": a.key, "data": a.data} for a in arts],
                "tasks": [{"name": t.name, "runs": t.run_count, "params": str(t.task_inputs)} for t in runs],
                "logs": [l.message for l in logs]}

json.dump({"results": res, **asyncio.run(collect())}, open(out, "w"))
"""


def test_refresh_data_flow(server, tmp_path):
    server.fail("oqmd", "500", "500", "500")  # outlasts the crawler's 2 attempts: a Prefect task retry follows
    server.fail("mp", "429:0")  # a warning line with the MP URL and its params goes to Prefect's logs
    home = tmp_path / "prefect"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MATLIB_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_LOGGING_LEVEL="DEBUG",
        PREFECT_LOGGING_EXTRA_LOGGERS="matlib",
        PYTHONPATH=str(REPO),
        MP_API_KEY=MP_KEY,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
    )  # a loaded CI machine starts it slowly
    out = tmp_path / "out.json"
    root = tmp_path / "store"
    opts = {**FAST, "max_attempts": 2, "page_size": 10}
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT, server.url, str(root), str(out), json.dumps(opts)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(out.read_text())
    by_source = {r["source"]: r for r in got["results"]}
    assert by_source["mp"]["n_rows"] == len(server.mp) and by_source["oqmd"]["added"] == len(server.oqmd)
    assert by_source["optimade"]["n_rows"] == len(server.optimade)
    names = sorted(t["name"] for t in got["tasks"])
    assert len(names) == 3 and all(n.startswith("refresh-source") for n in names)
    assert max(t["runs"] for t in got["tasks"]) == 2  # the oqmd task was retried by Prefect once
    art = [a for a in got["artifacts"] if a["key"] == "data-refresh"]
    assert art and "n_quarantined" in art[0]["data"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in art[0]["data"].splitlines() if "|" in line]
    oqmd_row = next(r for r in rows if r[0] == "oqmd")
    assert str(len(server.oqmd)) in oqmd_row  # its rows added, in a cell of the oqmd row
    everything = p.stdout + p.stderr + json.dumps(got)
    assert any("materials/summary/?_fields=" in line for line in got["logs"])  # URL-with-params log line
    assert MP_KEY not in everything
    for f in [*root.rglob("*"), *home.rglob("*")]:
        if f.is_file():
            assert MP_KEY.encode() not in f.read_bytes(), f
