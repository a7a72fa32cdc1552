"""The Prefect Dask task runner, built at run time from matlib's cluster configuration."""

from __future__ import annotations

from typing import Any

from prefect_dask import DaskTaskRunner

from matlib.cluster import KIND_ADDRESS, cluster_spec
from matlib.errors import MatlibError


def dask_task_runner(
    address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
) -> DaskTaskRunner:
    """A DaskTaskRunner on $MATLIB_DASK_ADDRESS / address, one worker per GPU, or a CPU LocalCluster.

    Nothing GPU-specific is imported here: the cluster class is passed by its dotted name
    and only imported by prefect-dask when the runner starts on a machine with GPUs.
    Use it at run time: ``my_flow.with_options(task_runner=dask_task_runner())(...)``.
    """
    spec = cluster_spec(address, n_workers, threads_per_worker)
    if spec.kind == KIND_ADDRESS:
        return DaskTaskRunner(address=spec.address)
    return DaskTaskRunner(cluster_class=spec.cluster_class, cluster_kwargs=dict(spec.cluster_kwargs))


def retry_unless_user_error(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry lost workers, dropped connections and timeouts, never a MatlibError.

    A MatlibError (bad input, failed integrity check, bad config) fails the same way on every attempt.
    """
    return not isinstance(getattr(state, "data", None), MatlibError)
