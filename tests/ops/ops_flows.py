"""A small real flow used by the ops tests: which Dask worker ran each task.

Run as a script: ``python tests/ops/ops_flows.py N OUT.json`` (optionally with
MATLIB_DASK_ADDRESS set); it runs the flow with the run-time Dask task runner and writes
``{"workers": [...], "kind": ...}`` to OUT.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prefect import flow, task

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from matlib.cluster import cluster_kind  # noqa: E402
from tasks.runner import dask_task_runner  # noqa: E402


@task
def where(i: int) -> dict:
    """Report the Dask worker (name, address) that ran this task, and a real computed value."""
    from distributed import get_worker

    w = get_worker()
    return {"i": i, "square": i * i, "worker": str(w.name), "address": w.address}


@flow
def where_flow(n: int = 4) -> list[dict]:
    """Fan n tasks out over the task runner and gather their worker reports."""
    futures = where.map(list(range(n)))
    return [f.result() for f in futures]


def main(n: int, out: str) -> None:
    """Run where_flow with the run-time Dask task runner and write its result to out."""
    rows = where_flow.with_options(task_runner=dask_task_runner())(n)
    Path(out).write_text(json.dumps({"kind": cluster_kind(), "rows": rows}))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
