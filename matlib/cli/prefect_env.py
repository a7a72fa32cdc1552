"""Environment for CLI commands that run Prefect flows (set before Prefect is imported; no Prefect import here)."""

from __future__ import annotations

import os


def prepare_prefect_env() -> None:
    """Ephemeral mode unless a server is named; no telemetry; patience with slow machines; quiet Dask logs."""
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.pop("PREFECT_API_URL", None)  # an empty URL is not "no server": let Prefect start its own
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # Prefect's task lines are the progress shown
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry calls (and no errors offline)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # slow, busy machines
