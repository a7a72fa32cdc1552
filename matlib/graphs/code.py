"""Molecular graphs as fixed-width codes, so a graph travels wherever a descriptor row does.

Transfer keeps each target's features as one float matrix per descriptor spec (featurised once, saved with the
run, recomputed for new inputs at predict time). The `molgraph` descriptor gives each molecule a lossless code
of its graph: atom and bond count, then per atom the index of the hot entry of each one-hot group (or -1) with
formal charge, radicals and aromaticity, then per bond its two atoms and its feature indices; `decode_codes`
rebuilds exactly the 74 / 12 canonical features. A GNN source model reads these codes like an MLP reads its
descriptor (`matlib.library.features.shard_hidden_features` branches on GNN shards). Molecules larger than
MAX_ATOMS heavy atoms or MAX_BONDS bonds fail to featurise with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matlib.descriptors.base import FeatureResult, Featurizer
from matlib.descriptors.spec import DescriptorSpec, register
from matlib.graphs.batch import GraphSet
from matlib.graphs.molecular import (
    ATOM_SYMBOLS,
    DEGREES,
    HYBRIDIZATIONS,
    IMPLICIT_VALENCES,
    N_ATOM_FEATURES,
    N_BOND_FEATURES,
    TOTAL_HS,
    Graph,
)

MAX_ATOMS = 128
MAX_BONDS = 192
# atom code: type, degree, implicit valence, charge, radicals, hybridization, aromatic, total H
ATOM_GROUPS = [
    (0, len(ATOM_SYMBOLS)),
    (43, len(DEGREES)),
    (54, len(IMPLICIT_VALENCES)),
    None,
    None,
    (63, len(HYBRIDIZATIONS)),
    None,
    (69, len(TOTAL_HS)),
]
SCALAR_COLUMNS = {3: 61, 4: 62, 6: 68}  # code slot -> feature column holding the value itself
ATOM_CODE = len(ATOM_GROUPS)
BOND_GROUPS = [(0, 4), None, None, (6, 6)]  # bond type, conjugated, in ring, stereo
BOND_SCALARS = {1: 4, 2: 5}
BOND_CODE = 2 + len(BOND_GROUPS)  # src, dst, then the bond's features
CODE_WIDTH = 2 + MAX_ATOMS * ATOM_CODE + MAX_BONDS * BOND_CODE


def _encode_rows(F: np.ndarray, groups: list, scalars: dict[int, int]) -> np.ndarray:
    """Per row, each one-hot group's hot index (-1: none) and the scalar columns, as [n, len(groups)]."""
    out = np.zeros((F.shape[0], len(groups)), dtype=np.float32)
    for slot, g in enumerate(groups):
        if g is None:
            out[:, slot] = F[:, scalars[slot]]
            continue
        block = F[:, g[0] : g[0] + g[1]]
        out[:, slot] = np.where(block.any(axis=1), block.argmax(axis=1), -1)
    return out


def _decode_rows(C: np.ndarray, groups: list, scalars: dict[int, int], width: int) -> np.ndarray:
    """Inverse of _encode_rows: canonical feature rows [n, width]."""
    F = np.zeros((C.shape[0], width), dtype=np.float32)
    rows = np.arange(C.shape[0])
    for slot, g in enumerate(groups):
        if g is None:
            F[:, scalars[slot]] = C[:, slot]
            continue
        idx = C[:, slot].astype(np.int64)
        hot = idx >= 0
        F[rows[hot], g[0] + idx[hot]] = 1.0
    return F


def encode_graph(g: Graph) -> np.ndarray:
    """The fixed-width code of one molecular graph (ValueError if it is too large)."""
    n_atoms, n_dir = g.n_nodes, g.n_edges
    n_bonds = n_dir // 2
    if n_atoms > MAX_ATOMS or n_bonds > MAX_BONDS:
        raise ValueError(
            f"molecule has {n_atoms} heavy atoms and {n_bonds} bonds; molgraph codes hold at most "
            f"{MAX_ATOMS} atoms and {MAX_BONDS} bonds"
        )
    code = np.zeros(CODE_WIDTH, dtype=np.float32)
    code[0], code[1] = n_atoms, n_bonds
    code[2 : 2 + n_atoms * ATOM_CODE] = _encode_rows(g.x, ATOM_GROUPS, SCALAR_COLUMNS).ravel()
    first = np.arange(0, n_dir, 2)  # edges come in pairs (i->j, j->i) with the same features
    bonds = np.concatenate(
        [g.edge_index[:, first].T.astype(np.float32), _encode_rows(g.edge_attr[first], BOND_GROUPS, BOND_SCALARS)],
        axis=1,
    )
    start = 2 + MAX_ATOMS * ATOM_CODE
    code[start : start + n_bonds * BOND_CODE] = bonds.ravel()
    return code


def decode_codes(X: np.ndarray) -> GraphSet:
    """The GraphSet of code rows X [n, CODE_WIDTH] (the canonical 74 / 12 features, both edge directions)."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != CODE_WIDTH:
        raise ValueError(f"molgraph codes have shape {X.shape}, expected [n, {CODE_WIDTH}]")
    graphs = []
    start = 2 + MAX_ATOMS * ATOM_CODE
    for row in X:
        n_atoms, n_bonds = int(row[0]), int(row[1])
        atoms = row[2 : 2 + n_atoms * ATOM_CODE].reshape(n_atoms, ATOM_CODE)
        bonds = row[start : start + n_bonds * BOND_CODE].reshape(n_bonds, BOND_CODE)
        ef = _decode_rows(bonds[:, 2:], BOND_GROUPS, BOND_SCALARS, N_BOND_FEATURES)
        src, dst = bonds[:, 0].astype(np.int64), bonds[:, 1].astype(np.int64)
        ei = np.stack([np.stack([src, dst], 1), np.stack([dst, src], 1)], 1).reshape(-1, 2).T
        graphs.append(
            Graph(_decode_rows(atoms, ATOM_GROUPS, SCALAR_COLUMNS, N_ATOM_FEATURES), ei, np.repeat(ef, 2, axis=0))
        )
    return GraphSet.from_graphs(graphs, N_ATOM_FEATURES, N_BOND_FEATURES, {"kind": "molecule"})


@register(
    "molgraph",
    "molecule",
    {"polymer_ends": "hydrogen"},
    doc="molecular graph (74 atom / 12 bond canonical features) as a fixed-width code, for GNN source models",
)
def molgraph(spec: DescriptorSpec) -> Featurizer:
    """Graph codes of SMILES (polymer `*` as for the fingerprints)."""
    from matlib.graphs.molecular import smiles_to_graph

    ends = spec.params.get("polymer_ends", "hydrogen")

    def compute(inputs: Sequence[str]) -> FeatureResult:
        X = np.full((len(inputs), CODE_WIDTH), np.nan, dtype=np.float32)
        ok = np.zeros(len(inputs), dtype=bool)
        reasons: list[str | None] = [None] * len(inputs)
        for i, s in enumerate(inputs):
            try:
                X[i] = encode_graph(smiles_to_graph(s, ends))
                ok[i] = True
            except Exception as exc:  # RDKit raises several types; the reason stays with the row
                reasons[i] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return FeatureResult(X, ok, reasons)

    return Featurizer(spec, "molecule", [f"molgraph_{i}" for i in range(CODE_WIDTH)], compute)
