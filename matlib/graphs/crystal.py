"""Crystal graphs (CGCNN-style): a periodic structure -> neighbour graph within a cutoff.

Nodes are sites with a one-hot element code over Z = 1..100 (the first graph convolution's weights act as a
learned element embedding); each site receives an edge from each of its `max_neighbors` nearest neighbours
(periodic images included) within `cutoff` angstrom. Edges store the distance; models see it expanded on
Gaussians (centres 0..cutoff every `gaussian_step`, width `gaussian_width`; `matlib.graphs.batch.expand_edges`).
Structures come as JSON: a pymatgen `Structure.as_dict()` (Materials Project crawl) or OPTIMADE structure
attributes (`lattice_vectors`, `cartesian_site_positions`, `species_at_sites`, `species`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from matlib.graphs.molecular import Graph

N_ELEMENTS = 100


def parse_structure(text: str | dict) -> Any:
    """A pymatgen Structure from pymatgen-dict or OPTIMADE JSON; ValueError with a reason."""
    from pymatgen.core import Lattice, Structure

    d = json.loads(text) if isinstance(text, str) else dict(text)
    if not isinstance(d, dict):
        raise ValueError("structure JSON is not an object")
    if "lattice" in d and "sites" in d:
        return Structure.from_dict(d)
    for key in ("lattice_vectors", "cartesian_site_positions", "species_at_sites"):
        if not d.get(key):
            raise ValueError(f"structure JSON has no {key!r}")
    if any(int(t) != 1 for t in d.get("dimension_types") or [1, 1, 1]):
        raise ValueError(f"structure is not periodic in 3 dimensions (dimension_types {d.get('dimension_types')})")
    symbols = {}
    for sp in d.get("species") or []:
        if len(sp.get("chemical_symbols", [])) != 1 or float(sp.get("concentration", [1.0])[0]) != 1.0:
            raise ValueError(
                f"species {sp.get('name')!r} is disordered or a vacancy; crystal graphs need ordered sites"
            )
        symbols[sp["name"]] = sp["chemical_symbols"][0]
    species = [symbols.get(s, s) for s in d["species_at_sites"]]
    return Structure(Lattice(d["lattice_vectors"]), species, d["cartesian_site_positions"], coords_are_cartesian=True)


def structure_graph(structure: Any, cutoff: float = 8.0, max_neighbors: int = 12) -> Graph:
    """The neighbour graph of a pymatgen Structure (edges: neighbour -> site, distance as the edge feature)."""
    n = len(structure)
    x = np.zeros((n, N_ELEMENTS), dtype=np.float32)
    for i, site in enumerate(structure):
        if not site.is_ordered:
            raise ValueError(f"site {i} is disordered; crystal graphs need ordered sites")
        z = int(site.specie.Z)
        if not 1 <= z <= N_ELEMENTS:
            raise ValueError(f"site {i}: element Z={z} is outside 1..{N_ELEMENTS}")
        x[i, z - 1] = 1.0
    centers, neighbors, _, dist = structure.get_neighbor_list(r=float(cutoff))
    src, dst, d = [], [], []
    for i in range(n):
        mine = np.flatnonzero((centers == i) & (dist > 1e-8))
        mine = mine[np.argsort(dist[mine], kind="stable")][: int(max_neighbors)]
        src.append(neighbors[mine])
        dst.append(np.full(len(mine), i))
        d.append(dist[mine])
    edge_index = np.stack([np.concatenate(src), np.concatenate(dst)]).astype(np.int64)
    return Graph(x=x, edge_index=edge_index, edge_attr=np.concatenate(d).astype(np.float32).reshape(-1, 1))


def structure_to_graph(text: str | dict, cutoff: float = 8.0, max_neighbors: int = 12) -> Graph:
    """The neighbour graph of a structure given as JSON."""
    if not text:
        raise ValueError("no structure")
    return structure_graph(parse_structure(text), cutoff, max_neighbors)


def gaussian_meta(params: dict) -> dict:
    """The Gaussian expansion of distances for a crystalgraph spec's parameters."""
    step = float(params["gaussian_step"])
    n = int(np.floor(float(params["cutoff"]) / step + 1e-9)) + 1  # centres 0, step, ... up to the cutoff
    return {"start": 0.0, "stop": (n - 1) * step, "n": n, "width": float(params["gaussian_width"])}
