"""GNNs: the stacked forward equals each model alone; batched training equals one at a time; masked multi-task loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import matlib.models.private_api as private_api
from matlib.graphs.spec import GraphSpec
from matlib.models.gnn import GNNRegressor, init_gnn_params, sample_gnn_architecture, stack_gnn_params
from matlib.models.gnn_batched import GNNTrainConfig, StackedAdam, eval_rows, masked_mse, train_gnn_batched
from matlib.models.gnn_reference import train_gnn_single
from matlib.models.gnn_stacked import stacked_gnn_forward


@pytest.fixture(scope="module")
def qm9_graphs(samples_dir):
    """Graphs and three real QM9 properties of 300 shipped molecules."""
    df = pd.read_csv(samples_dir / "qm9_sample.csv").head(300)
    gs, ok, _ = GraphSpec("molgraph").featurize(df["smiles"].tolist())
    assert ok.all()
    return gs, df[["Heatcapacity_Cv_cal_mol_K", "Polarizability_bohr3", "HOMO_LUMO_gap_au"]].to_numpy()


def arch_for(pooling: str, edge: bool = True, depth: int = 2) -> dict:
    """A small fixed GNN arch."""
    return {
        "model": "gnn",
        "n_node": 74,
        "n_edge": 12,
        "depth": depth,
        "width": 16,
        "pooling": pooling,
        "decoder": [16, 8],
        "activation": "silu",
        "edge_features": edge,
        "n_out": 1,
    }


@pytest.mark.parametrize("pooling", ["mean", "sum", "attention"])
def test_stacked_forward_equals_each_model(qm9_graphs, pooling):
    gs, _ = qm9_graphs
    arch = arch_for(pooling, edge=pooling != "mean", depth=3)
    params = [init_gnn_params(arch, s) for s in (1, 2, 3, 4)]
    b = gs.batch(np.arange(0, 60, 2))
    out, feats = stacked_gnn_forward(stack_gnn_params(params), arch, b, collect=True)
    assert out.shape == (4, 30, 1) and [f.shape for f in feats] == [(4, 30, 16), (4, 30, 16), (4, 30, 8)]
    for m, p in enumerate(params):
        model = GNNRegressor(arch, p)
        torch.testing.assert_close(out[m], model.forward_scaled(b), rtol=1e-5, atol=1e-5)
        for f, g in zip(feats, model.embed(b)):
            torch.testing.assert_close(f[m], g, rtol=1e-5, atol=1e-5)


def test_stacked_forward_on_graphs_without_edges_equals_each_model():
    """Single atoms: no edges, so the aggregated edge features have no nonzero column at all."""
    gs, ok, _ = GraphSpec("molgraph").featurize(["N", "O", "C"])
    assert ok.all() and len(gs.edge_attr) == 0
    arch = arch_for("sum", edge=True, depth=2)
    params = [init_gnn_params(arch, s) for s in (1, 2)]
    b = gs.batch([0, 1, 2])
    out, _ = stacked_gnn_forward(stack_gnn_params(params), arch, b)
    for m, p in enumerate(params):
        torch.testing.assert_close(out[m], GNNRegressor(arch, p).forward_scaled(b), rtol=1e-5, atol=1e-5)


def test_eval_chunks_shrink_as_models_grow():
    assert eval_rows(1, {"width": 128}) == 512 and eval_rows(32, {"width": 32}) == 64
    assert eval_rows(1, {"width": 8}) == 1024 and eval_rows(256, {"width": 128}) == 16  # bounded both ways


def test_batched_training_equals_one_at_a_time(qm9_graphs):
    gs, Y = qm9_graphs
    arch = arch_for("attention")
    cfg = GNNTrainConfig(epochs=6, batch_size=32, lr=3e-3, patience=3, lr_patience=2)
    seeds = [11, 12, 13, 14]
    batched = train_gnn_batched(gs, Y[:, 0], arch, seeds, cfg, split_seed=5)
    single = train_gnn_single(gs, Y[:, 0], arch, seeds, cfg, split_seed=5)
    np.testing.assert_array_equal(batched.split.test, single.split.test)
    for a, b in zip(batched.metrics, single.metrics):
        assert a["status"] == b["status"] == "ok"
        assert a["best_epoch"] == b["best_epoch"]
        assert a["r2"] == pytest.approx(b["r2"], abs=2e-3)
        assert a["mae"] == pytest.approx(b["mae"], rel=1e-2)
    for k, v in batched.tensors.items():
        torch.testing.assert_close(v, single.tensors[k], rtol=1e-2, atol=2e-3)
    # the models differ from each other (different seeds), so the agreement above is not trivial
    assert not torch.allclose(batched.tensors["conv0.weight"][0], batched.tensors["conv0.weight"][1])


def _stacked_adam_run(lr: torch.Tensor, wd: float) -> torch.Tensor:
    """Three models' [3, 5, 4] parameters after 6 StackedAdam steps on seeded gradients."""
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(3, 5, 4, generator=gen)
    opt = StackedAdam([p], lr, wd)
    for _ in range(6):
        p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    return p


@pytest.mark.parametrize("fused", [True, False])
def test_stacked_adam_equals_torch_adam_per_model(monkeypatch, fused):
    """Each model's slice moves as torch.optim.Adam moves it alone at that model's rate (fused kernel and fallback)."""
    if not fused:
        monkeypatch.setattr(private_api, "PRIVATE_FUSED_ADAM", None)
    lr = torch.tensor([1e-2, 3e-3, 0.0])  # a stopped model (rate 0) does not move
    stacked = _stacked_adam_run(lr, 1e-4)
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(3, 5, 4, generator=gen)
    start = p.clone()
    singles = [torch.nn.Parameter(p[m].clone()) for m in range(3)]
    opts = [torch.optim.Adam([q], lr=float(r), weight_decay=1e-4, foreach=False) for q, r in zip(singles, lr)]
    for _ in range(6):
        g = torch.randn(p.shape, generator=gen)
        for m, (q, opt) in enumerate(zip(singles, opts)):
            q.grad = g[m].clone()
            opt.step()
    torch.testing.assert_close(stacked, torch.stack([q.detach() for q in singles]), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(stacked[2], start[2], rtol=0, atol=0)
    assert not torch.allclose(stacked[0], start[0])


def test_masked_loss_ignores_missing_labels():
    torch.manual_seed(0)
    pred = torch.randn(3, 5, 2, requires_grad=True)
    y = torch.randn(5, 2)
    y[1, 0] = y[4, 1] = float("nan")
    mask = torch.isfinite(y)
    loss = masked_mse(pred, y, mask)
    expect = torch.stack([((pred[m] - y)[mask] ** 2).mean() for m in range(3)])
    torch.testing.assert_close(loss, expect)
    loss.sum().backward()
    assert torch.all(pred.grad[:, 1, 0] == 0) and torch.all(pred.grad[:, 4, 1] == 0)
    assert torch.all(pred.grad[:, 0, 0] != 0)
    # any value in place of the missing labels gives the same loss
    y2 = torch.nan_to_num(y, nan=1e6)
    torch.testing.assert_close(masked_mse(pred.detach(), y2, mask), loss.detach())


def test_multi_task_training_with_missing_labels(qm9_graphs):
    gs, Y = qm9_graphs
    Y = Y.copy()
    rng = np.random.default_rng(0)
    Y[rng.random(Y.shape) < 0.3] = np.nan  # 30% of the labels missing, differently per property
    arch = {**arch_for("sum"), "n_out": 3}
    res = train_gnn_batched(gs, Y, arch, [1, 2], GNNTrainConfig(epochs=4, batch_size=32, lr=3e-3))
    assert res.tensors["out.weight"].shape == (2, 8, 3) and res.tensors["y_mean"].shape == (2, 3)
    np.testing.assert_allclose(res.tensors["y_mean"][0].numpy(), np.nanmean(Y[res.split.train], axis=0), rtol=1e-5)
    for met in res.metrics:
        assert met["status"] == "ok" and len(met["tasks"]) == 3
        assert all(np.isfinite(t["r2"]) for t in met["tasks"])


def test_sampled_architectures_cover_the_space():
    archs = [sample_gnn_architecture(74, 12, s) for s in range(200)]
    assert {a["depth"] for a in archs} == set(range(1, 9))
    assert {a["pooling"] for a in archs} == {"mean", "sum", "attention"}
    assert {len(a["decoder"]) for a in archs} == {1, 2, 3}
    assert sample_gnn_architecture(74, 12, 7) == sample_gnn_architecture(74, 12, 7)


def test_crystal_graphs_train_batched_like_one_at_a_time(real_data):
    """Crystal graphs (Gaussian-expanded distances as edge features) go through the same trainer."""
    import json

    docs = json.loads((real_data / "optimade" / "test_structures.json").read_text())
    gs, ok, _ = GraphSpec("crystalgraph", {"cutoff": 6.0, "max_neighbors": 8}).featurize([json.dumps(d) for d in docs])
    assert ok.all()
    y = np.array([d["nsites"] for d in docs], dtype=np.float64)  # a property of the structure itself
    arch = {
        "model": "gnn",
        "n_node": gs.n_node_features,
        "n_edge": gs.n_edge_features,
        "depth": 2,
        "width": 8,
        "pooling": "sum",
        "decoder": [8],
        "activation": "softplus",
        "edge_features": True,
        "n_out": 1,
    }
    cfg = GNNTrainConfig(epochs=5, batch_size=4, lr=1e-2, patience=5, val_fraction=0.2, test_fraction=0.2)
    a = train_gnn_batched(gs, y, arch, [1, 2, 3], cfg, split_seed=0)
    b = train_gnn_single(gs, y, arch, [1, 2, 3], cfg, split_seed=0)
    for ma, mb in zip(a.metrics, b.metrics):
        assert ma["status"] == mb["status"] == "ok" and ma["mae"] == pytest.approx(mb["mae"], rel=1e-3)
    assert a.tensors["conv0.edge_weight"].shape == (3, gs.n_edge_features, 8)
