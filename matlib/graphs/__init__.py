"""Molecular and crystal graphs: featurisation, packed sets and batches, per-dataset-version cache."""

from matlib.graphs.batch import GraphBatch, GraphSet
from matlib.graphs.cache import build_graphs, load_graphs
from matlib.graphs.molecular import Graph, smiles_to_graph
from matlib.graphs.spec import GraphSpec

__all__ = ["Graph", "GraphBatch", "GraphSet", "GraphSpec", "build_graphs", "load_graphs", "smiles_to_graph"]
