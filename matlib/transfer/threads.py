"""Thread counts: torch's intra-op threads set to 1 for a while (small batched matrices contend on shared cores),
and the CPUs a thread pool or a tree ensemble may use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def single_thread_torch(active: bool = True) -> Iterator[None]:
    """Temporarily set torch's intra-op threads to 1 (restored afterwards)."""
    if not active:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_threads() -> int:
    """The CPUs this process may run on (its affinity mask where the platform has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return max(1, len(affinity(0)) if affinity else (os.cpu_count() or 1))
