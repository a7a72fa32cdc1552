"""Packed graph sets, normalised batches and the per-dataset-version graph cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from matlib.errors import IntegrityError, ValidationError
from matlib.graphs.cache import build_graphs, graphs_dir, load_graphs
from matlib.graphs.spec import GraphSpec
from matlib.store import Store


def test_batch_renumbers_nodes_and_normalises_adjacency():
    gs, ok, _ = GraphSpec("molgraph").featurize(["CC", "O", "CCO"])
    assert ok.all() and len(gs) == 3 and gs.node_ptr.tolist() == [0, 2, 3, 6]
    b = gs.batch([2, 0])  # ethanol then ethane
    assert b.n_graphs == 2 and b.graph.tolist() == [0, 0, 0, 1, 1] and b.counts.tolist() == [3, 2]
    A = b.adj.to_dense().numpy()
    # ethanol C-C-O: degrees with self loops 2, 3, 2 -> A_ij = 1/sqrt(d_i d_j)
    expect = np.array([[1 / 2, 1 / np.sqrt(6), 0], [1 / np.sqrt(6), 1 / 3, 1 / np.sqrt(6)], [0, 1 / np.sqrt(6), 1 / 2]])
    np.testing.assert_allclose(A[:3, :3], expect, rtol=1e-6)
    np.testing.assert_allclose(A[3:, 3:], np.full((2, 2), 0.5), rtol=1e-6)  # ethane: degree 2 each
    assert np.all(A[:3, 3:] == 0) and np.all(A[3:, :3] == 0)  # no edge between graphs
    # edge features reach their destination with the same weights: the middle C gets 2 single bonds
    single = b.edge_agg[1, 0].item()
    assert single == pytest.approx(2 / np.sqrt(6), rel=1e-6)


@pytest.mark.parametrize("mean", [False, True])
def test_products_for_stacked_models_equal_each_model(mean):
    """propagate_models / pool_models on [M, N, k] equal propagate / pool of each model's [N, k], gradients too."""
    gs, ok, _ = GraphSpec("molgraph").featurize(["CCO", "c1ccccc1", "CC(=O)[O-]", "N"])
    assert ok.all()
    b = gs.batch([1, 3, 0, 2])
    N = b.x.shape[0]
    h = torch.randn(3, N, 5, requires_grad=True)
    prop, pooled = b.propagate_models(h), b.pool_models(h, mean=mean)
    assert prop.shape == (3, N, 5) and pooled.shape == (3, 4, 5)
    (prop.square().sum() + pooled.square().sum()).backward()
    assert b.propagate_models(h) is not prop and len(b._memo) == 2  # the block matrices are built once per batch
    for m in range(3):
        hm = h[m].detach().clone().requires_grad_(True)
        one_prop, one_pool = b.propagate(hm), b.pool(hm, mean=mean)
        (one_prop.square().sum() + one_pool.square().sum()).backward()
        torch.testing.assert_close(prop[m], one_prop, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(pooled[m], one_pool, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(h.grad[m], hm.grad, rtol=1e-5, atol=1e-6)


def test_subset_and_failed_rows():
    gs, ok, reasons = GraphSpec("molgraph").featurize(["CCO", "not-a-smiles", "c1ccccc1", "CCO"])
    assert ok.tolist() == [True, False, True, True]
    assert reasons[1] and "unparseable" in reasons[1] and reasons[0] is None
    assert gs.node_ptr.tolist() == [0, 3, 3, 9, 12]  # the failed row is an empty graph, in place
    sub = gs.subset([2, 0])
    np.testing.assert_array_equal(sub.graph(0).x, gs.graph(2).x)
    np.testing.assert_array_equal(sub.graph(1).edge_index, gs.graph(0).edge_index)


def test_spec_rejects_unknown_names_and_params():
    with pytest.raises(ValidationError, match="unknown graph featurisation"):
        GraphSpec("nope")
    with pytest.raises(ValidationError, match="unknown parameters"):
        GraphSpec("molgraph", {"cutof": 3})
    assert GraphSpec("molgraph").hash != GraphSpec("molgraph", {"polymer_ends": "dummy"}).hash


def test_cache_per_dataset_version_roundtrip_and_checksum(tmp_path, samples_dir):
    from matlib.datasets import import_table

    store = Store(tmp_path / "store")
    table = pd.read_csv(samples_dir / "qm9_sample.csv").head(40)
    table.loc[5, "smiles"] = "C1CC"  # unparseable: kept out with its reason
    csv = tmp_path / "t.csv"
    table.to_csv(csv, index=False)
    ds = import_table(store, "q", csv, "smiles", ["Heatcapacity_Cv_cal_mol_K"], kind="molecule")
    spec = GraphSpec("molgraph")
    out = build_graphs(store, "q", spec)
    assert out == graphs_dir(store, spec, ds.version) and (out / "manifest.json").exists()
    ids, gs = load_graphs(store, "q", spec)
    fresh, ok, _ = spec.featurize(ds.records["input"].tolist())
    keep = np.flatnonzero(ok)
    assert len(gs) == len(ids) == len(keep)
    assert list(ids) == ds.records["record_id"].to_numpy()[keep].tolist()
    for g in (0, 7, len(gs) - 1):
        np.testing.assert_array_equal(gs.graph(g).x, fresh.graph(int(keep[g])).x)
        np.testing.assert_array_equal(gs.graph(g).edge_attr, fresh.graph(int(keep[g])).edge_attr)
    assert not list(out.glob("*.pkl"))
    data = bytearray((out / "graphs.safetensors").read_bytes())
    data[-1] ^= 1
    (out / "graphs.safetensors").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        load_graphs(store, "q", spec)
