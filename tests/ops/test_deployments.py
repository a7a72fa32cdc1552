"""prefect.yaml end to end: real server, deploy, trigger shotgun-transfer with parameters, real worker."""

from __future__ import annotations

import json
import re

from tests.fixtures import TEST_DATA
from tests.ops.opsutil import write_slice

POOL = "matlib-process"


def _deployments(server) -> dict[str, dict]:
    """Deployments on the server by name."""
    r = server.post("/deployments/filter", {})
    r.raise_for_status()
    return {d["name"]: d for d in r.json()}


def _run_logs(server, run_id: str) -> str:
    """The flow run's log messages from the API (for failure messages)."""
    r = server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200})
    return "\n".join(m["message"] for m in r.json())[-6000:]


def test_deploy_trigger_shotgun_transfer_and_run_it_on_a_worker(prefect_server, tiny_library, tmp_path) -> None:
    srv = prefect_server
    srv.cli("work-pool", "create", POOL, "--type", "process", "--overwrite")
    srv.cli("--no-prompt", "deploy", "--all")  # from the repo root, with prefect.yaml as written

    deps = _deployments(srv)
    assert {"data-refresh", "library-build", "shotgun-transfer"} <= set(deps)
    assert all(deps[n]["work_pool_name"] == POOL for n in ("data-refresh", "library-build", "shotgun-transfer"))
    crons = {n: [s["schedule"].get("cron") for s in deps[n]["schedules"]] for n in deps}
    assert crons["data-refresh"] == ["0 2 * * *"] and crons["library-build"] == ["0 4 * * 6"]
    assert crons["shotgun-transfer"] == []
    steps = deps["shotgun-transfer"]["pull_steps"]
    assert steps[0]["prefect.deployments.steps.set_working_directory"]["directory"] == str(srv.repo)

    # trigger the on-demand search with parameters, as a user would
    target = write_slice(TEST_DATA / "mp" / "matbench_dielectric.csv", tmp_path / "dielectric.csv", 80, step=13)
    out = tmp_path / "transfer-run"
    params = {
        "library": str(tiny_library["library"]),
        "train": str(target),
        "input_column": "formula",
        "target_column": "target",
        "out": str(out),
        "top_k": 2,
    }
    flow_name = srv.get(f"/flows/{deps['shotgun-transfer']['flow_id']}").json()["name"]
    cp = srv.cli("deployment", "run", f"{flow_name}/shotgun-transfer", "--params", json.dumps(params))
    run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", cp.stdout).group(1)
    assert srv.get(f"/flow_runs/{run_id}").json()["state_type"] == "SCHEDULED"

    # a real process worker picks it up and runs it to the end
    env = dict(srv.env, MATLIB_HOME=str(tiny_library["store"]))
    worker = srv.cli("worker", "start", "--pool", POOL, "--run-once", env=env, timeout=500)
    run = srv.get(f"/flow_runs/{run_id}").json()
    assert run["state_type"] == "COMPLETED", f"{run['state_name']}: {_run_logs(srv, run_id)}\n{worker.stderr[-3000:]}"
    assert run["parameters"]["target_column"] == "target"

    # its Markdown summary artifact, published during the run
    arts = srv.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}}).json()
    markdown = [a for a in arts if a["type"] == "markdown" and a["key"]]
    assert markdown, f"no markdown artifact for run {run_id}: {arts}"
    text = "\n".join(a["data"] for a in markdown)
    assert "candidates screened" in text  # the top of the transfer ranking, as a Markdown table
    assert re.search(r"^\|\s*rank\s*\|\s*candidate\s*\|", text, re.M), text[:500]
    assert out.exists() and any(out.iterdir())
