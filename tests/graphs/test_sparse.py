"""Sparse helpers: block-diagonal copies of a CSR matrix, products whose backward uses the stored transpose."""

from __future__ import annotations

import numpy as np
import torch

from matlib.graphs.sparse import block_diag, csr_pair, spmm


def test_block_diag_repeats_the_matrix_along_the_diagonal():
    rows, cols = np.array([0, 0, 1, 2, 2]), np.array([1, 3, 0, 2, 3])
    vals = np.array([0.5, -1.0, 2.0, 3.0, 0.25], dtype=np.float32)
    a, _ = csr_pair(rows, cols, vals, (3, 4))
    big = block_diag(a, 3)
    assert big.layout == torch.sparse_csr and big.shape == (9, 12) and big.values().numel() == 15
    dense = a.to_dense()
    torch.testing.assert_close(big.to_dense(), torch.block_diag(dense, dense, dense), rtol=0, atol=0)


def test_spmm_on_block_diagonal_copies_equals_each_copy_with_gradients():
    rng = np.random.default_rng(0)
    n = 5
    rows, cols = np.nonzero(rng.random((n, n)) < 0.4)
    a, a_t = csr_pair(rows, cols, rng.normal(size=len(rows)).astype(np.float32), (n, n))
    x = torch.randn(3, n, 4, requires_grad=True)  # three models' states [M, n, k]
    out = spmm(block_diag(a, 3), block_diag(a_t, 3), x.reshape(3 * n, 4)).view(3, n, 4)
    w = torch.randn(3, n, 4)
    (out * w).sum().backward()
    dense = a.to_dense()
    torch.testing.assert_close(out, torch.stack([dense @ x[m] for m in range(3)]), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(x.grad, torch.stack([dense.t() @ w[m] for m in range(3)]), rtol=1e-6, atol=1e-6)
