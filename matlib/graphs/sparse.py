"""Sparse-dense products for message passing and pooling, with the transpose kept for the backward pass.

`torch.sparse.mm` on a CSR matrix transposes (and re-sorts) it on every backward pass; a mini-batch's adjacency
and pooling matrices are built once and used by every model and layer, so their transposes are built with them
(in numpy, from the same sorted coordinates) and `spmm` hands the stored transpose to the backward pass.
`block_diag` repeats a CSR matrix along the diagonal (I_M kron A), so M stacked copies of a product are one product.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch


def csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """A float32 CSR tensor from COO coordinates (any order; no repeated pairs)."""
    order = np.lexsort((cols, rows))
    crow = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=crow[1:])
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(crow),
            torch.from_numpy(np.ascontiguousarray(cols[order], dtype=np.int64)),
            torch.from_numpy(np.ascontiguousarray(vals[order], dtype=np.float32)),
            size=shape,
            check_invariants=False,
        )


def csr_pair(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, A^T) as CSR tensors from A's COO coordinates."""
    return csr(rows, cols, vals, shape), csr(cols, rows, vals, (shape[1], shape[0]))


def block_diag(a: torch.Tensor, copies: int) -> torch.Tensor:
    """The CSR matrix with `copies` copies of CSR a [n, m] along its diagonal: [copies * n, copies * m]."""
    crow, col, val = a.crow_indices(), a.col_indices(), a.values()
    n, m = a.shape
    nnz = col.numel()
    shift = torch.arange(copies, dtype=crow.dtype, device=crow.device).unsqueeze(1)
    big_crow = torch.cat([(crow[:-1].unsqueeze(0) + shift * nnz).reshape(-1), crow.new_full((1,), copies * nnz)])
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            big_crow,
            (col.unsqueeze(0) + shift * m).reshape(-1),
            val.repeat(copies),
            size=(copies * n, copies * m),
            check_invariants=False,
        )


class _SpMM(torch.autograd.Function):
    """A @ X for a constant sparse A; the gradient w.r.t. X is A^T @ grad with the stored A^T."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a_t = a_t
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, None, torch.Tensor | None]:
        return None, None, torch.sparse.mm(ctx.a_t, grad.contiguous()) if ctx.needs_input_grad[2] else None


def spmm(a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """a @ x (a sparse [n, m], x dense [m, k]) whose backward uses a_t, a's stored transpose."""
    if not x.requires_grad:
        return torch.sparse.mm(a, x)
    out: torch.Tensor = _SpMM.apply(a, a_t, x)
    return out
