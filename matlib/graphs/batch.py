"""Packed graph sets and mini-batches: many graphs in flat arrays, batched with a normalised sparse adjacency.

A `GraphSet` keeps every graph of a dataset in five flat arrays (node features, edges with graph-local node
indices, edge features, and per-graph node / edge offsets), which is also how it is cached on disk. `batch(idx)`
gathers graphs into one `GraphBatch`: node features [N, d], the GCN adjacency with self loops, symmetrically
normalised (D^-1/2 (A + I) D^-1/2) as a sparse CSR matrix shared by every model trained on the batch, the edge
features aggregated to their destination node with the same weights, and each node's graph index for pooling.
`propagate_models` / `pool_models` apply the same products to M models' node states at once (model-major [M, N, k],
block-diagonal copies of the matrices built once per batch), so M models need no layout copies between products.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

from matlib.graphs.molecular import Graph
from matlib.graphs.sparse import block_diag, csr_pair, spmm

T = TypeVar("T")


@dataclass
class GraphBatch:
    """Graphs of one mini-batch, ready for message passing (all tensors on one device)."""

    x: torch.Tensor  # [N, d_node] float32
    adj: torch.Tensor  # [N, N] sparse CSR, normalised, with self loops
    edge_agg: torch.Tensor  # [N, d_edge] float32: sum over incoming edges of norm * edge features
    graph: torch.Tensor  # [N] int64: graph of each node (0..n_graphs-1)
    n_graphs: int
    counts: torch.Tensor  # [n_graphs] float32: nodes per graph
    adj_t: torch.Tensor  # [N, N] sparse CSR: adj transposed (for the backward pass)
    pool_sum: tuple[torch.Tensor, torch.Tensor]  # ([G, N], [N, G]) sparse CSR: sum over each graph's nodes, transposed
    pool_mean: tuple[torch.Tensor, torch.Tensor]  # the same with weights 1 / nodes of the graph

    _ax: torch.Tensor | None = None
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def ax(self) -> torch.Tensor:
        """Â @ x: the first convolution's aggregated input, the same for every model (computed once per batch)."""
        if self._ax is None:
            self._ax = torch.sparse.mm(self.adj, self.x)
        return self._ax

    def propagate(self, h: torch.Tensor) -> torch.Tensor:
        """Â @ h for node states h [N, k] (one sparse-dense product; backward with the stored transpose)."""
        return spmm(self.adj, self.adj_t, h)

    def pool(self, h: torch.Tensor, mean: bool = False) -> torch.Tensor:
        """Per-graph sum (or mean) of node states h [N, k] -> [G, k], one sparse-dense product."""
        a, a_t = self.pool_mean if mean else self.pool_sum
        return spmm(a, a_t, h)

    def cached(self, key: Any, make: Callable[[], T]) -> T:
        """make() computed once per batch and key (tensors derived from the batch that every step reuses)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def _blocks(self, name: str, copies: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The matrix pair called name (adj, sum, mean) with `copies` copies of each along the diagonal."""
        pair = {"adj": (self.adj, self.adj_t), "sum": self.pool_sum, "mean": self.pool_mean}[name]
        return self.cached(("blocks", name, copies), lambda: (block_diag(pair[0], copies), block_diag(pair[1], copies)))

    def propagate_models(self, h: torch.Tensor) -> torch.Tensor:
        """Â @ h[m] for each model's node states in h [M, N, k] -> [M, N, k] (one sparse-dense product)."""
        M, N, k = h.shape
        a, a_t = self._blocks("adj", M)
        return spmm(a, a_t, h.reshape(M * N, k)).view(M, N, k)

    def pool_models(self, h: torch.Tensor, mean: bool = False) -> torch.Tensor:
        """Per-graph sum (or mean) of each model's node states in h [M, N, k] -> [M, G, k] (one sparse product)."""
        M, N, k = h.shape
        a, a_t = self._blocks("mean" if mean else "sum", M)
        return spmm(a, a_t, h.reshape(M * N, k)).view(M, self.n_graphs, k)

    def to(self, device: torch.device | str) -> GraphBatch:
        """The same batch on another device."""
        return GraphBatch(
            self.x.to(device),
            self.adj.to(device),
            self.edge_agg.to(device),
            self.graph.to(device),
            self.n_graphs,
            self.counts.to(device),
            self.adj_t.to(device),
            (self.pool_sum[0].to(device), self.pool_sum[1].to(device)),
            (self.pool_mean[0].to(device), self.pool_mean[1].to(device)),
        )


@dataclass
class GraphSet:
    """Many graphs packed in flat arrays (graph g owns nodes node_ptr[g]:node_ptr[g+1], edges likewise)."""

    x: np.ndarray  # [N, d_node]
    edge_index: np.ndarray  # [2, E] graph-local node indices
    edge_attr: np.ndarray  # [E, d_edge]
    node_ptr: np.ndarray  # [G + 1] int64
    edge_ptr: np.ndarray  # [G + 1] int64
    meta: dict = field(default_factory=dict)  # e.g. {"kind": "molecule", "gaussian": {...}}

    def __len__(self) -> int:
        return int(len(self.node_ptr) - 1)

    @property
    def n_node_features(self) -> int:
        """Node feature width."""
        return int(self.x.shape[1])

    @property
    def n_edge_features(self) -> int:
        """Edge feature width after any expansion (crystal distances -> Gaussians)."""
        g = self.meta.get("gaussian")
        return int(g["n"]) if g else int(self.edge_attr.shape[1])

    @classmethod
    def from_graphs(cls, graphs: Sequence[Graph], n_node: int, n_edge: int, meta: dict | None = None) -> GraphSet:
        """Pack a list of graphs."""
        nn = np.array([0] + [g.n_nodes for g in graphs], dtype=np.int64)
        ne = np.array([0] + [g.n_edges for g in graphs], dtype=np.int64)
        x = np.concatenate([g.x for g in graphs]) if graphs else np.zeros((0, n_node), np.float32)
        ei = np.concatenate([g.edge_index for g in graphs], axis=1) if graphs else np.zeros((2, 0), np.int64)
        ea = np.concatenate([g.edge_attr for g in graphs]) if graphs else np.zeros((0, n_edge), np.float32)
        return cls(
            x.astype(np.float32).reshape(-1, n_node),
            ei.astype(np.int64).reshape(2, -1),
            ea.astype(np.float32).reshape(-1, n_edge),
            np.cumsum(nn),
            np.cumsum(ne),
            dict(meta or {}),
        )

    def subset(self, idx: Sequence[int] | np.ndarray) -> GraphSet:
        """The graphs idx (in that order) as a new set."""
        idx = np.asarray(idx, dtype=np.int64)
        nodes, node_ptr = _ranges(self.node_ptr, idx)
        edges, edge_ptr = _ranges(self.edge_ptr, idx)
        return GraphSet(
            self.x[nodes], self.edge_index[:, edges], self.edge_attr[edges], node_ptr, edge_ptr, dict(self.meta)
        )

    def graph(self, g: int) -> Graph:
        """Graph g."""
        a, b = self.node_ptr[g], self.node_ptr[g + 1]
        c, d = self.edge_ptr[g], self.edge_ptr[g + 1]
        return Graph(self.x[a:b], self.edge_index[:, c:d], self.edge_attr[c:d])

    def batch(self, idx: Sequence[int] | np.ndarray, device: torch.device | str | None = None) -> GraphBatch:
        """Graphs idx as one GraphBatch (nodes renumbered, adjacency normalised)."""
        idx = np.asarray(idx, dtype=np.int64)
        nodes, node_ptr = _ranges(self.node_ptr, idx)
        edges, _ = _ranges(self.edge_ptr, idx)
        n_nodes = np.diff(node_ptr)
        n_edges = self.edge_ptr[idx + 1] - self.edge_ptr[idx]
        offset = np.repeat(node_ptr[:-1], n_edges)
        src = self.edge_index[0, edges] + offset
        dst = self.edge_index[1, edges] + offset
        N = int(node_ptr[-1])
        deg = 1.0 + np.bincount(dst, minlength=N).astype(np.float64)
        inv = 1.0 / np.sqrt(deg)
        w_edge = inv[src] * inv[dst]
        rows = np.concatenate([dst, np.arange(N)])
        cols = np.concatenate([src, np.arange(N)])
        vals = np.concatenate([w_edge, inv * inv]).astype(np.float32)
        order = np.lexsort((cols, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        key = rows * max(N, 1) + cols
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        if len(first) < len(key):  # repeated pairs (a crystal site seeing several images of one neighbour): summed
            vals = np.add.reduceat(vals, first)
            rows, cols = rows[first], cols[first]
        adj, adj_t = csr_pair(rows, cols, vals, (N, N))
        ea = expand_edges(self.edge_attr[edges], self.meta)
        edge_agg = np.zeros((N, ea.shape[1]), dtype=np.float32)
        np.add.at(edge_agg, dst, ea * w_edge[:, None].astype(np.float32))
        graph = np.repeat(np.arange(len(idx), dtype=np.int64), n_nodes)
        G, node = len(idx), np.arange(N, dtype=np.int64)
        inv_count = (1.0 / np.maximum(n_nodes, 1))[graph]
        b = GraphBatch(
            torch.from_numpy(np.ascontiguousarray(self.x[nodes], dtype=np.float32)),
            adj,
            torch.from_numpy(edge_agg),
            torch.from_numpy(graph),
            int(G),
            torch.from_numpy(n_nodes.astype(np.float32)),
            adj_t,
            csr_pair(graph, node, np.ones(N, np.float32), (G, N)),
            csr_pair(graph, node, inv_count.astype(np.float32), (G, N)),
        )
        return b.to(device) if device is not None else b


def expand_edges(edge_attr: np.ndarray, meta: dict) -> np.ndarray:
    """Edge features as models see them: a distance column expanded on Gaussians when meta says so."""
    g = meta.get("gaussian")
    if not g:
        return edge_attr.astype(np.float32, copy=False)
    centers = np.linspace(float(g["start"]), float(g["stop"]), int(g["n"]), dtype=np.float32)
    width = float(g["width"])
    return np.exp(-((edge_attr[:, :1] - centers[None, :]) ** 2) / width**2).astype(np.float32)


def _ranges(ptr: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(concatenated index ranges ptr[i]:ptr[i+1] for i in idx, the new offsets)."""
    starts, lengths = ptr[idx], ptr[idx + 1] - ptr[idx]
    new_ptr = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_ptr[1:])
    flat = np.arange(int(new_ptr[-1]), dtype=np.int64) - np.repeat(new_ptr[:-1] - starts, lengths)
    return flat, new_ptr
