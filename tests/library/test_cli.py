"""`matlib library build|ls|show` as a user runs them (real subprocess, real Prefect, real Dask)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
CMD = [sys.executable, "-c", "from matlib.cli import main; main()"]


def _env(home: Path, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MATLIB_"))}
    p = tmp / "prefect"
    env.update(
        MATLIB_HOME=str(home),
        PREFECT_HOME=str(p),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{p / 'db.sqlite'}",
        PYTHONPATH=str(REPO),
        MATLIB_DASK_WORKERS="1",
        COLUMNS="200",
    )
    return env


def test_ls_and_show(built_library, tmp_path):
    root, path = built_library
    env = _env(root, tmp_path)
    cp = subprocess.run(
        CMD + ["library", "ls", "--property", "refractive_index", "--limit", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cp.returncode == 0, cp.stderr
    assert "small" in cp.stdout and "models=24" in cp.stdout and "refractive_index" in cp.stdout
    mid = pd.read_parquet(path / "catalog.parquet").query("status == 'ok'")["model_id"].iloc[0]
    cp = subprocess.run(CMD + ["library", "show", mid], env=env, capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    shown = json.loads(cp.stdout)
    assert shown["model_id"] == mid and shown["arch"]["n_in"] == 132 and shown["parameters"] > 0
    assert len(shown["shard_sha256"]) == 64
    bad = subprocess.run(CMD + ["library", "show", "nope"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("error: model nope is not in")
    assert "Traceback" not in bad.stderr


def test_build_through_the_flow_and_bad_config(tmp_path, make_config):
    cfg = tmp_path / "lib.yaml"
    cfg.write_text(yaml.safe_dump(make_config("cli", models=8, sample_rows=300)))
    env = _env(tmp_path / "home", tmp_path)
    env["PREFECT_API_URL"] = ""  # set but empty (as some shells leave it): still ephemeral mode
    cp = subprocess.run(
        CMD + ["library", "build", "--config", str(cfg)], env=env, capture_output=True, text=True, timeout=600
    )
    assert cp.returncode == 0, cp.stderr[-3000:]
    assert "models=8" in cp.stdout and "shards=" in cp.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngroups: []\n")
    cp = subprocess.run(
        CMD + ["library", "build", "--config", str(bad)], env=env, capture_output=True, text=True, timeout=120
    )
    assert cp.returncode == 1 and cp.stderr.strip() == "error: library config: 'groups' must be a non-empty list"
