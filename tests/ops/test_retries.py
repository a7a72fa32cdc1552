"""Compute tasks retry what another attempt can fix (a lost worker, a dropped connection), never bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from prefect import flow, task
from matlib.errors import ValidationError
from tasks.runner import retry_unless_user_error

attempts = {"transient": 0, "user": 0}

@task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_unless_user_error)
def flaky(kind: str) -> int:
    attempts[kind] += 1
    if kind == "transient" and attempts[kind] < 3:
        raise ConnectionResetError("worker connection lost")
    if kind == "user":
        raise ValidationError("row 3: column 'target' is not numeric")
    return attempts[kind]

@flow
def both() -> dict:
    out = {"transient": flaky("transient")}
    try:
        flaky("user")
    except ValidationError as exc:
        out["user_error"] = str(exc)
    return out

result = both()
print(json.dumps({"result": result, "attempts": attempts}))
"""


def test_lost_connection_is_retried_and_user_error_is_not(tmp_path: Path) -> None:
    """Real ephemeral Prefect: the transient failure succeeds on attempt 3; the ValidationError runs once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MATLIB_"))}
    env.update(
        PREFECT_HOME=str(tmp_path),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",  # a busy 2-core machine can take over 20 s
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
        PYTHONPATH=str(REPO),
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["attempts"] == {"transient": 3, "user": 1}
    assert out["result"]["transient"] == 3
    assert "not numeric" in out["result"]["user_error"]
