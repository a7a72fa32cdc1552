"""Helpers for the operations tests: start/stop real processes, free ports, Prefect environments."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop a process we started (its own process group): SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def start_process(args: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> subprocess.Popen:
    """Start a background process in its own process group, output to a log file."""
    fh = open(log, "wb")
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def tail(path: Path, n: int = 4000) -> str:
    """The last n characters of a log file (for assertion messages)."""
    try:
        return path.read_text(errors="replace")[-n:]
    except FileNotFoundError:
        return "(no log)"


@dataclass
class PrefectServer:
    """A running Prefect server: its API URL and the environment that points clients at it."""

    api_url: str
    home: Path
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen
    repo: Path = REPO
    logs: list[Path] = field(default_factory=list)

    def cli(
        self, *args: str, timeout: float = 240, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        """Run `prefect <args>` from the repo root against this server."""
        cp = subprocess.run(
            [str(BIN / "prefect"), *args],
            cwd=REPO,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and cp.returncode != 0:
            raise AssertionError(
                f"prefect {' '.join(args)} failed ({cp.returncode}):\n{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}"
            )
        return cp

    def get(self, path: str) -> httpx.Response:
        """GET an API path."""
        return httpx.get(self.api_url + path, timeout=30)

    def post(self, path: str, json: dict | None = None) -> httpx.Response:
        """POST to an API path."""
        return httpx.post(self.api_url + path, json=json or {}, timeout=30)


def prefect_env(home: Path, api_url: str | None) -> dict[str, str]:
    """An environment with an isolated PREFECT_HOME (sqlite under it) and, if given, the API URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",  # a busy 2-core machine can take over 20 s
        PREFECT_LOGGING_LEVEL="INFO",
        PREFECT_CLI_PROMPT="false",
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""),
        MATLIB_DASK_WORKERS="1",
        MATLIB_DASK_THREADS="1",
    )
    env.pop("MATLIB_DASK_ADDRESS", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


@dataclass
class DaskCluster:
    """A separately started `dask scheduler` with worker processes."""

    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]
    worker_names: list[str]
    logs: list[Path]


def wait_port(host: str, port: int, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Wait until host:port accepts TCP connections (or the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early:\n{tail(log)}")
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"{host}:{port} not listening after {timeout}s:\n{tail(log)}")


def write_slice(src: Path, dst: Path, n: int, step: int = 1) -> Path:
    """Copy the header and every step-th of the first n*step data rows of a real CSV (gz ok) to dst."""
    import pandas as pd

    df = pd.read_csv(src)
    df.iloc[: n * step : step].to_csv(dst, index=False)
    return dst


def write_library_config(
    path: Path,
    name: str,
    table: Path,
    input_column: str,
    target: str,
    models: int = 4,
    shard_size: int = 2,
    epochs: int = 3,
    max_rows: int = 200,
) -> Path:
    """A small real library-build config (one group: magpie on a composition table) written to path."""
    import yaml

    cfg = {
        "name": name,
        "seed": 0,
        "shard_size": shard_size,
        "family_size": shard_size,
        "architecture": {"n_layers": [1, 2]},
        "training": {"epochs": epochs, "batch_size": 32, "patience": 2},
        "groups": [
            {
                "dataset": f"{name}-data",
                "import": {"file": str(table), "input_column": input_column, "target_columns": [target]},
                "descriptors": ["magpie"],
                "properties": [target],
                "models_per_property": models,
                "max_rows": max_rows,
            }
        ],
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
