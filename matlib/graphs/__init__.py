"""Molecular and crystal graphs: featurisation, packed sets and batches, per-dataset-version cache."""

# the built-in graph featurisations register themselves on import
from matlib.graphs import featurize  # noqa: F401
from matlib.graphs.batch import GraphBatch, GraphSet
from matlib.graphs.cache import build_graphs, load_graphs
from matlib.graphs.molecular import Graph, smiles_to_graph
from matlib.graphs.spec import GraphSpec

__all__ = ["Graph", "GraphBatch", "GraphSet", "GraphSpec", "build_graphs", "load_graphs", "smiles_to_graph"]
