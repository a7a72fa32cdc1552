"""Fixtures for the operations tests: a real Prefect server and a real Dask scheduler + workers.

Everything runs as separate processes on 127.0.0.1 with free ports and temporary homes;
nothing is mocked. Processes started here are stopped by their own pid.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures import TEST_DATA
from tests.ops.opsutil import (
    BIN,
    PYTHON,
    REPO,
    DaskCluster,
    PrefectServer,
    free_port,
    prefect_env,
    start_process,
    stop_process,
    tail,
    wait_port,
    write_library_config,
    write_slice,
)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real `prefect server start` on 127.0.0.1 (free port), temporary PREFECT_HOME and sqlite."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    server_env = prefect_env(home, None)
    log = home / "server.log"
    proc = start_process(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        server_env,
        log,
    )
    deadline = time.monotonic() + 180
    healthy = False
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(api_url + "/health", timeout=5).status_code == 200:
                healthy = True
                break
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    if not healthy:
        stop_process(proc)
        pytest.fail(f"prefect server did not become healthy on {api_url}:\n{tail(log)}")
    server = PrefectServer(api_url=api_url, home=home, env=prefect_env(home, api_url), log=log, proc=proc)
    try:
        yield server
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    """A real scheduler plus two single-threaded `dask worker` processes on 127.0.0.1."""
    tmp_path = tmp_path_factory.mktemp("dask-cluster")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    env["DASK_DISTRIBUTED__WORKER__DAEMON"] = "false"
    logs = [tmp_path / "scheduler.log"]
    sched = start_process(
        [
            PYTHON,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            ":0",
            "--no-show",
        ],
        env,
        logs[0],
    )
    workers: list[subprocess.Popen] = []
    names = ["ops-worker-a", "ops-worker-b"]
    try:
        wait_port("127.0.0.1", port, sched, logs[0])
        for name in names:
            log = tmp_path / f"{name}.log"
            logs.append(log)
            workers.append(
                start_process(
                    [
                        PYTHON,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--name",
                        name,
                        "--no-dashboard",
                        "--memory-limit",
                        "2GB",
                        "--local-directory",
                        str(tmp_path / name),
                    ],
                    env,
                    log,
                )
            )
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(len(names), timeout=120)
        yield DaskCluster(address=address, scheduler=sched, workers=workers, worker_names=names, logs=logs)
    finally:
        for w in workers:
            stop_process(w)
        stop_process(sched)


@pytest.fixture(scope="session")
def tiny_library(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small real model library (magpie models of MP formation energy) built with matlib, no Prefect."""
    from matlib.library import build_library
    from matlib.store import Store

    root = tmp_path_factory.mktemp("tiny-library")
    table = write_slice(TEST_DATA / "mp" / "matbench_mp_e_form.csv", root / "e_form.csv", 300, step=11)
    config = write_library_config(
        root / "library.yaml", "ops-tiny", table, "formula", "target", models=4, shard_size=2, epochs=5, max_rows=300
    )
    store = root / "store"
    lib = build_library(Store(store), config)
    return {"store": store, "library": lib, "config": config}
