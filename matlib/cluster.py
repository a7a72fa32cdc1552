"""Choose the Dask cluster: an existing scheduler, one worker per GPU, or a CPU LocalCluster.

Resolution order (the same for `get_client` and `tasks.runner.dask_task_runner`):

1. an explicit ``address`` argument, else ``$MATLIB_DASK_ADDRESS`` -> connect to that scheduler;
2. ``torch.cuda.device_count() > 0`` -> ``dask_cuda.LocalCUDACluster`` (one worker per GPU;
   dask_cuda is imported only on this path);
3. otherwise a small CPU ``distributed.LocalCluster`` of worker processes (:func:`local_cluster`: Dask's
   periodic housekeeping slowed down, since the workers' computations keep every core busy).

``$MATLIB_DASK_WORKERS`` / ``$MATLIB_DASK_THREADS`` / ``$MATLIB_DASK_MEMORY`` override the
local CPU cluster's defaults; ``$MATLIB_DASK_TIMEOUT`` (default 30s) bounds connecting to a scheduler.
No Prefect import here: the Prefect task runner lives in
``tasks/runner.py`` and is built from :func:`cluster_spec`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from matlib.errors import MatlibError

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

ADDRESS_ENV = "MATLIB_DASK_ADDRESS"
WORKERS_ENV = "MATLIB_DASK_WORKERS"
THREADS_ENV = "MATLIB_DASK_THREADS"
MEMORY_ENV = "MATLIB_DASK_MEMORY"
TIMEOUT_ENV = "MATLIB_DASK_TIMEOUT"

KIND_ADDRESS = "address"
KIND_CUDA = "cuda"
KIND_LOCAL = "local"

# Dask settings of the local CPU cluster. Its defaults wake the scheduler, the nannies and every worker
# 50 times a second (event-loop latency probe), sample each worker's stacks every 10 ms (for a dashboard
# that this cluster does not serve) and poll memory every 100 ms: idle, that cost 8% of a core here, taken
# from workers that keep every core busy. Memory limits are still enforced, within half a second.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.admin.system-monitor.interval": "5s",
    # Dask sets MALLOC_TRIM_THRESHOLD_=65536 in its workers; that also fixes glibc's mmap threshold, so every tensor
    # above 128 KiB is mmap'ed and unmapped again: training spent more time in page faults than in arithmetic.
    # None unsets it (glibc's adaptive defaults); a value in the user's environment still wins.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}


@dataclass(frozen=True)
class ClusterSpec:
    """What cluster to use: its kind, a scheduler address or a cluster class path + kwargs."""

    kind: str
    address: str | None = None
    cluster_class: str | None = None
    cluster_kwargs: dict[str, Any] = field(default_factory=dict)


def _env_int(name: str) -> int | None:
    """An optional positive integer from the environment (clear error if malformed)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise MatlibError(f"${name} must be an integer, got {raw!r}") from None
    if value < 1:
        raise MatlibError(f"${name} must be >= 1, got {value}")
    return value


def resolve_address(address: str | None = None) -> str | None:
    """The scheduler address from the argument or $MATLIB_DASK_ADDRESS, or None."""
    addr = (address or os.environ.get(ADDRESS_ENV, "")).strip()
    if not addr:
        return None
    if "://" not in addr:
        addr = f"tcp://{addr}"
    return addr


def gpu_count() -> int:
    """Number of visible CUDA devices (0 if torch or CUDA is unavailable)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return 0
    try:
        return int(torch.cuda.device_count())
    except Exception:  # a broken driver must not stop CPU runs
        return 0


def cluster_kind(address: str | None = None) -> str:
    """'address' (existing scheduler), 'cuda' (one worker per GPU) or 'local' (CPU)."""
    if resolve_address(address):
        return KIND_ADDRESS
    if gpu_count() > 0:
        return KIND_CUDA
    return KIND_LOCAL


def cluster_spec(
    address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
) -> ClusterSpec:
    """The cluster to use under the current configuration, as plain data (nothing started)."""
    addr = resolve_address(address)
    if addr:
        return ClusterSpec(kind=KIND_ADDRESS, address=addr)
    n_gpu = gpu_count()
    if n_gpu > 0:
        kwargs: dict[str, Any] = {"n_workers": n_workers or n_gpu}
        if threads_per_worker:
            kwargs["threads_per_worker"] = threads_per_worker
        return ClusterSpec(kind=KIND_CUDA, cluster_class="dask_cuda.LocalCUDACluster", cluster_kwargs=kwargs)
    cpus = os.cpu_count() or 1
    workers = n_workers or _env_int(WORKERS_ENV) or max(1, min(4, cpus))
    threads = threads_per_worker or _env_int(THREADS_ENV) or 1
    memory = os.environ.get(MEMORY_ENV, "").strip() or "auto"
    return ClusterSpec(
        kind=KIND_LOCAL,
        cluster_class="matlib.cluster.local_cluster",
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": threads,
            "processes": True,
            "memory_limit": memory,
            "dashboard_address": None,
        },
    )


def local_cluster(**kwargs: Any) -> Any:
    """A ``distributed.LocalCluster(**kwargs)`` whose scheduler, nannies and workers run with LOCAL_CLUSTER_CONFIG."""
    import dask
    from distributed import LocalCluster  # before config.set: distributed's defaults must outlive the context

    if kwargs.get("processes") is not False:
        # Each nanny passes these to its worker process, also when it restarts one: its copy of the
        # settings in force when it was made shares nested dicts that config.set restores on exit.
        kwargs.setdefault("config", LOCAL_CLUSTER_CONFIG)
    with dask.config.set(LOCAL_CLUSTER_CONFIG):  # the scheduler and the nannies read theirs when made
        return LocalCluster(**kwargs)


def make_cluster(spec: ClusterSpec) -> Any:
    """Start the local cluster described by spec (not for kind 'address')."""
    if spec.kind == KIND_CUDA:
        from dask_cuda import LocalCUDACluster  # lazy: only on machines with GPUs

        return LocalCUDACluster(**spec.cluster_kwargs)
    if spec.kind == KIND_LOCAL:
        return local_cluster(**spec.cluster_kwargs)
    raise MatlibError(f"cluster kind {spec.kind!r} is not started locally")


def get_client(
    address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
) -> Client:
    """A Dask client: on an existing scheduler, a one-worker-per-GPU cluster or a CPU LocalCluster.

    Close it with :func:`close_client` (or use :func:`dask_client`): that also stops a local
    cluster started here, which ``client.close()`` alone would leave running until exit.
    """
    from distributed import Client

    spec = cluster_spec(address, n_workers, threads_per_worker)
    if spec.kind == KIND_ADDRESS:
        try:
            return Client(spec.address, timeout=os.environ.get(TIMEOUT_ENV, "").strip() or "30s")
        except OSError as exc:
            raise MatlibError(f"cannot reach Dask scheduler at {spec.address}: {exc}") from None
    cluster = make_cluster(spec)
    try:
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    client._matlib_owned_cluster = cluster  # type: ignore[attr-defined]  # closed with the client (close_client)
    return client


def close_client(client: Any) -> None:
    """Close a client from get_client, and the local cluster it started, if any."""
    cluster = getattr(client, "_matlib_owned_cluster", None)
    if cluster is not None:
        retire_workers(client, cluster)
    client.close()
    if cluster is not None:
        cluster.close()


def retire_workers(client: Any, cluster: Any, timeout: float = 20.0) -> None:
    """Stop a local cluster's workers while its scheduler still answers, so no worker's heartbeat meets a closed
    scheduler (on a loaded machine that race printed a traceback at the end of a successful command)."""
    import time

    try:
        cluster.scale(0)
        deadline = time.monotonic() + timeout
        while client.scheduler_info().get("workers") and time.monotonic() < deadline:
            time.sleep(0.05)
    except Exception:  # noqa: BLE001 - best effort: the cluster is closed next in any case
        return


@contextlib.contextmanager
def dask_client(
    address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
) -> Iterator[Client]:
    """Context-manager form of get_client: closes the client (and any cluster it started)."""
    client = get_client(address, n_workers, threads_per_worker)
    try:
        yield client
    finally:
        close_client(client)
