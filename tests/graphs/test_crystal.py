"""Crystal graphs: neighbour counts and distances of known structures, OPTIMADE and pymatgen JSON alike."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matlib.graphs.crystal import N_ELEMENTS, parse_structure, structure_graph, structure_to_graph
from matlib.graphs.spec import GraphSpec


@pytest.fixture(scope="module")
def nacl():
    """Rock salt NaCl, conventional cell (a = 5.64 angstrom, 8 sites)."""
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_rock_salt_has_six_nearest_neighbours_of_the_other_element(nacl):
    assert len(nacl) == 8
    g = structure_graph(nacl, cutoff=3.5, max_neighbors=12)  # first shell a/2 = 2.82; second a/sqrt2 = 3.99
    assert g.x.shape == (8, N_ELEMENTS)
    z = g.x.argmax(axis=1) + 1
    assert sorted(z.tolist()) == [11] * 4 + [17] * 4
    counts = np.bincount(g.edge_index[1], minlength=8)
    assert counts.tolist() == [6] * 8
    np.testing.assert_allclose(g.edge_attr[:, 0], 2.82, atol=1e-6)
    src, dst = g.edge_index
    assert np.all(z[src] != z[dst])  # Na only touches Cl and vice versa


def test_max_neighbors_and_second_shell(nacl):
    g = structure_graph(nacl, cutoff=4.2, max_neighbors=100)
    counts = np.bincount(g.edge_index[1], minlength=8)
    assert counts.tolist() == [18] * 8  # 6 unlike ions at 2.82 + 12 like ions at 3.99
    g12 = structure_graph(nacl, cutoff=4.2, max_neighbors=12)
    assert np.bincount(g12.edge_index[1], minlength=8).tolist() == [12] * 8
    d = g12.edge_attr[g12.edge_index[1] == 0, 0]
    np.testing.assert_allclose(np.sort(d), [2.82] * 6 + [5.64 / np.sqrt(2)] * 6, atol=1e-6)


def test_optimade_and_pymatgen_json_give_the_same_graph(nacl):
    optimade = {
        "lattice_vectors": nacl.lattice.matrix.tolist(),
        "cartesian_site_positions": nacl.cart_coords.tolist(),
        "species_at_sites": [s.specie.symbol for s in nacl],
        "species": [{"name": e, "chemical_symbols": [e], "concentration": [1.0]} for e in ("Na", "Cl")],
        "dimension_types": [1, 1, 1],
    }
    a = structure_to_graph(json.dumps(optimade), 3.5)
    b = structure_to_graph(json.dumps(nacl.as_dict()), 3.5)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.edge_index, b.edge_index)
    np.testing.assert_allclose(a.edge_attr, b.edge_attr, atol=1e-6)
    bad = dict(optimade, dimension_types=[1, 1, 0])
    with pytest.raises(ValueError, match="not periodic"):
        parse_structure(bad)
    with pytest.raises(ValueError, match="no 'lattice_vectors'"):
        parse_structure({"species_at_sites": ["Na"]})


def test_crystalgraph_spec_expands_distances_on_gaussians(nacl):
    spec = GraphSpec("crystalgraph", {"cutoff": 3.5})
    gs, ok, reasons = spec.featurize([json.dumps(nacl.as_dict()), "", '{"x": 1}'])
    assert ok.tolist() == [True, False, False] and reasons[1] == "no structure"
    assert gs.n_node_features == N_ELEMENTS and gs.n_edge_features == 18  # 0..3.5 every 0.2 -> 18 centres
    b = gs.batch([0])
    assert b.edge_agg.shape == (8, 18)
    # each site: 6 edges at 2.82 -> the Gaussian nearest 2.82 (2.8) dominates its aggregate
    assert int(b.edge_agg[0].argmax()) == 14
    A = b.adj.to_dense().numpy()
    np.testing.assert_allclose(A.sum(axis=1), 1 / 7 + 6 / 7, rtol=1e-5)  # degree 7 everywhere (6 + self)


def test_optimade_fixture_structures(real_data):
    """Every structure of the OPTIMADE fixture (the attributes the OPTIMADE crawl stores) becomes a graph whose
    nodes are its sites with their elements, with at most max_neighbors incoming edges within the cutoff."""
    from pymatgen.core import Element

    docs = json.loads((real_data / "optimade" / "test_structures.json").read_text())
    spec = GraphSpec("crystalgraph", {"cutoff": 6.0, "max_neighbors": 8})
    gs, ok, reasons = spec.featurize([json.dumps(d) for d in docs])
    assert ok.all(), reasons
    for i, d in enumerate(docs):
        g = gs.graph(i)
        assert g.n_nodes == d["nsites"]
        symbols = {s["name"]: s["chemical_symbols"][0] for s in d["species"]}
        z = [Element(symbols[s]).Z for s in d["species_at_sites"]]
        assert (g.x.argmax(axis=1) + 1).tolist() == z and g.x.sum() == g.n_nodes
        indeg = np.bincount(g.edge_index[1], minlength=g.n_nodes)
        assert indeg.max() <= 8 and (g.edge_attr[:, 0] <= 6.0).all() and (g.edge_attr[:, 0] > 0).all()
