"""The two private torch APIs the hand-written training step uses, each looked up once here with a public fallback.

- ``torch._C._nn.silu(z, out=...)``: aten's SiLU kernel without the Python dispatch of ``torch.ops.aten.silu.out``
  (the public way to write SiLU into a preallocated buffer).
- ``torch._fused_adam_``: the fused Adam kernel of ``torch.optim.Adam(fused=True)``, called without the optimizer's
  per-step Python (see matlib.models.fused_adam; the public fallback is that optimizer).

Each is used only while ``benchmarks/private_torch.py`` shows it pays; ``tests/models/test_private_api.py`` fails
when either disappears or its signature or results change, so a torch upgrade cannot silently drop to the fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def _lookup(owner: Any, path: str) -> Any:
    """owner.<path> (dotted), None where any part is missing."""
    for name in path.split("."):
        owner = getattr(owner, name, None)
        if owner is None:
            return None
    return owner


PRIVATE_SILU: Callable[..., torch.Tensor] | None = _lookup(torch, "_C._nn.silu")
PRIVATE_FUSED_ADAM: Callable[..., None] | None = _lookup(torch, "_fused_adam_")


def public_silu_out(z: torch.Tensor, *, out: torch.Tensor) -> torch.Tensor:
    """out = silu(z) through the public operator registry."""
    return torch.ops.aten.silu.out(z, out=out)


silu_out: Callable[..., torch.Tensor] = PRIVATE_SILU if PRIVATE_SILU is not None else public_silu_out
