"""Built-in graph featurisations: `molgraph` (SMILES, polymers included) and `crystalgraph` (structures)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matlib.graphs.batch import GraphSet
from matlib.graphs.molecular import (
    ATOM_FEATURE_NAMES,
    BOND_FEATURE_NAMES,
    N_ATOM_FEATURES,
    N_BOND_FEATURES,
    Graph,
    smiles_to_graph,
)
from matlib.graphs.spec import empty_reasons, register_graphs
from matlib.hashing import spec_hash


def _empty(n_node: int, n_edge: int) -> Graph:
    """A graph with no nodes (a row that failed)."""
    return Graph(np.zeros((0, n_node), np.float32), np.zeros((2, 0), np.int64), np.zeros((0, n_edge), np.float32))


def featurize_each(inputs: Sequence[str], one, n_node: int, n_edge: int, meta: dict):
    """Apply one(input) -> Graph to each distinct input; failures become empty graphs with their reason."""
    ok, reasons = empty_reasons(len(inputs))
    graphs: list[Graph] = []
    seen: dict[str, int] = {}
    for i, s in enumerate(inputs):
        j = seen.get(s)
        if j is not None:
            graphs.append(graphs[j])
            ok[i], reasons[i] = ok[j], reasons[j]
            continue
        seen[s] = i
        try:
            g = one(s)
            if g.n_nodes == 0:
                raise ValueError("no atoms")
            graphs.append(g)
            ok[i] = True
        except Exception as exc:  # RDKit / pymatgen raise many types; the reason is kept per row
            graphs.append(_empty(n_node, n_edge))
            reasons[i] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return GraphSet.from_graphs(graphs, n_node, n_edge, meta), ok, reasons


def _molgraph(inputs: Sequence[str], params: dict):
    """SMILES -> molecular graphs (74 atom, 12 bond features)."""
    meta = {"kind": "molecule", "node_features": ATOM_FEATURE_NAMES, "edge_features": BOND_FEATURE_NAMES}
    return featurize_each(
        inputs, lambda s: smiles_to_graph(s, params["polymer_ends"]), N_ATOM_FEATURES, N_BOND_FEATURES, meta
    )


def _rdkit_fingerprint() -> str:
    """RDKit's version and the feature layout (a new RDKit may perceive atoms differently)."""
    import rdkit

    return spec_hash([rdkit.__version__, ATOM_FEATURE_NAMES, BOND_FEATURE_NAMES])


def _crystalgraph(inputs: Sequence[str], params: dict):
    """Structure JSON (pymatgen dict or OPTIMADE attributes) -> neighbour graphs."""
    from matlib.graphs.crystal import N_ELEMENTS, gaussian_meta, structure_to_graph

    meta = {"kind": "structure", "gaussian": gaussian_meta(params)}
    return featurize_each(
        inputs, lambda s: structure_to_graph(s, params["cutoff"], params["max_neighbors"]), N_ELEMENTS, 1, meta
    )


def _crystal_fingerprint() -> str:
    """pymatgen's major version (neighbour search)."""
    try:
        from importlib.metadata import version

        return version("pymatgen").split(".")[0]
    except Exception:  # pragma: no cover
        return "unknown"


register_graphs("molgraph", "molecule", _molgraph, {"polymer_ends": "hydrogen"}, _rdkit_fingerprint)
register_graphs(
    "crystalgraph",
    "structure",
    _crystalgraph,
    {"cutoff": 8.0, "max_neighbors": 12, "gaussian_step": 0.2, "gaussian_width": 0.2},
    _crystal_fingerprint,
)
