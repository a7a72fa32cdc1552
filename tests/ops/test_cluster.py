"""matlib.cluster and tasks.runner: existing scheduler, local CPU cluster, no GPU imports."""

from __future__ import annotations

import json
import subprocess

import pytest

from matlib import cluster
from matlib.errors import MatlibError
from tests.ops.opsutil import PYTHON, REPO, DaskCluster, free_port, prefect_env


def test_kind_and_spec_follow_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cluster.ADDRESS_ENV, raising=False)
    assert cluster.cluster_kind() == "local"  # this machine has no GPU
    spec = cluster.cluster_spec(n_workers=2, threads_per_worker=1)
    assert (spec.cluster_class, spec.cluster_kwargs["n_workers"], spec.cluster_kwargs["processes"]) == (
        "matlib.cluster.local_cluster",
        2,
        True,
    )
    monkeypatch.setenv(cluster.ADDRESS_ENV, "10.1.2.3:8786")
    assert cluster.cluster_kind() == "address"
    assert cluster.cluster_spec().address == "tcp://10.1.2.3:8786"
    # an explicit argument wins over the environment
    assert cluster.resolve_address("tls://sched:8786") == "tls://sched:8786"


def test_bad_worker_count_is_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cluster.ADDRESS_ENV, raising=False)
    monkeypatch.setenv(cluster.WORKERS_ENV, "many")
    with pytest.raises(MatlibError, match=r"\$MATLIB_DASK_WORKERS must be an integer"):
        cluster.cluster_spec()


def test_unreachable_scheduler_is_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cluster.TIMEOUT_ENV, "2s")
    port = free_port()  # nothing listens there
    with pytest.raises(MatlibError, match=f"cannot reach Dask scheduler at tcp://127.0.0.1:{port}"):
        cluster.get_client(f"127.0.0.1:{port}")


def test_local_cluster_without_gpu_imports_nothing_gpu_specific(tmp_path) -> None:
    code = (
        "import sys\n"
        "from matlib.cluster import dask_client, cluster_kind\n"
        "from tasks.runner import dask_task_runner\n"
        "r = dask_task_runner()\n"
        "with dask_client(n_workers=1, threads_per_worker=1) as c:\n"
        "    assert c.submit(sum, [1, 2, 3]).result() == 6\n"
        "    n = len(c.scheduler_info()['workers'])\n"
        "print(cluster_kind(), n, type(r).__name__, r.cluster_class,\n"
        "      'dask_cuda' in sys.modules, 'cupy' in sys.modules)\n"
    )
    env = prefect_env(tmp_path, None)
    cp = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert cp.returncode == 0, cp.stderr[-3000:]
    assert cp.stdout.split()[-6:] == ["local", "1", "DaskTaskRunner", "matlib.cluster.local_cluster", "False", "False"]


def test_local_cluster_runs_with_its_housekeeping_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal
    import time

    import dask
    import distributed  # noqa: F401 - loads distributed's settings into dask.config

    def periodic(server) -> dict:  # noqa: ANN001 - a scheduler, nanny or worker
        return {k: v.callback_time for k, v in server.periodic_callbacks.items()}

    def worker_settings(client) -> tuple[int, tuple[dict, bool]]:  # noqa: ANN001 - a distributed.Client
        ((pid, settings),) = client.run(
            lambda dask_worker: (
                os.getpid(),
                (periodic(dask_worker), dask.config.get("distributed.worker.profile.enabled")),
            )
        ).values()
        return pid, settings

    monkeypatch.delenv(cluster.ADDRESS_ENV, raising=False)
    before = dask.config.get("distributed.admin.tick.interval")
    with cluster.dask_client(n_workers=1, threads_per_worker=1) as client:
        pid, (worker, profiling) = worker_settings(client)
        scheduler = client.run_on_scheduler(lambda dask_scheduler: periodic(dask_scheduler))
        (nanny,) = (periodic(n) for n in client.cluster.workers.values())
        os.kill(pid, signal.SIGKILL)  # the nanny starts a new worker process: it gets the same settings
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if client.scheduler_info()["workers"]:
                new_pid, (restarted, restarted_profiling) = worker_settings(client)
                if new_pid != pid:
                    break
        assert new_pid != pid
        assert client.submit(sum, [1, 2]).result() == 3
    assert (worker["tick"], worker["memory_monitor"], worker["monitor"], profiling) == (1000, 500, 5000, False)
    assert (restarted["tick"], restarted["memory_monitor"], restarted_profiling) == (1000, 500, False)
    assert (scheduler["tick"], nanny["tick"], nanny["memory_monitor"]) == (1000, 1000, 500)
    # this process's own settings are untouched, distributed's defaults included
    assert dask.config.get("distributed.admin.tick.interval") == before
    assert dask.config.get("distributed.comm.timeouts.connect")


def test_get_client_uses_existing_scheduler(dask_cluster: DaskCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cluster.ADDRESS_ENV, dask_cluster.address)
    with cluster.dask_client() as client:
        names = sorted(str(w["name"]) for w in client.scheduler_info()["workers"].values())
        assert names == dask_cluster.worker_names
        # real work runs on the separately started worker processes
        ran_on = set(client.run(lambda dask_worker: str(dask_worker.name)).values())
    assert ran_on == set(dask_cluster.worker_names)
    assert all(w.poll() is None for w in dask_cluster.workers), "closing the client must not stop the cluster"


def test_prefect_flow_fans_out_on_existing_cluster(dask_cluster: DaskCluster, prefect_server, tmp_path) -> None:
    out = tmp_path / "where.json"
    env = dict(prefect_server.env, MATLIB_DASK_ADDRESS=dask_cluster.address)
    cp = subprocess.run(
        [PYTHON, str(REPO / "tests/ops/ops_flows.py"), "6", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["kind"] == "address"
    assert [r["square"] for r in sorted(result["rows"], key=lambda r: r["i"])] == [i * i for i in range(6)]
    assert {r["worker"] for r in result["rows"]} <= set(dask_cluster.worker_names)
    addresses = {r["address"] for r in result["rows"]}
    assert all(a.startswith("tcp://127.0.0.1:") for a in addresses)
