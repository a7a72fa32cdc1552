"""torch's intra-op threads, set to 1 for a while: small batched matrices contend on shared cores."""

from __future__ import annotations

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
