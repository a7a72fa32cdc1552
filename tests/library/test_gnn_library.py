"""GNN models in the library: built from a `model: gnn` group next to MLPs, one catalog, loaded by id."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from matlib.errors import ValidationError


def gnn_config(samples_dir, name: str = "g", multi_task: bool = False) -> dict:
    """A tiny library: MLPs on rdkit2d and GNNs on graphs of 300 shipped QM9 molecules."""
    imp = {
        "file": str(samples_dir / "qm9_sample.csv"),
        "input_column": "smiles",
        "target_columns": ["Heatcapacity_Cv_cal_mol_K", "Polarizability_bohr3"],
        "kind": "molecule",
        "sample_rows": 300,
    }
    return {
        "name": name,
        "seed": 0,
        "shard_size": 4,
        "family_size": 4,
        "architecture": {"n_layers": [1, 2], "max_width": 16},
        "training": {"epochs": 2, "batch_size": 64, "patience": 2},
        "groups": [
            {
                "dataset": "qm9s",
                "import": imp,
                "descriptors": ["rdkit2d"],
                "properties": ["Polarizability_bohr3"],
                "models_per_property": 4,
            },
            {
                "model": "gnn",
                "dataset": "qm9s",
                "import": imp,
                "properties": ["Heatcapacity_Cv_cal_mol_K", "Polarizability_bohr3"],
                "multi_task": multi_task,
                "models_per_property": 6,
                "family_size": 3,
                "architecture": {"depth": [1, 3], "width": [16], "decoder_width": [8, 16]},
                "training": {"epochs": 3, "batch_size": 32, "patience": 3},
            },
        ],
    }


@pytest.fixture(scope="module")
def gnn_library(tmp_path_factory, samples_dir):
    """(store, library) of the tiny mixed library."""
    from matlib.library import Library, build_library
    from matlib.store import Store

    store = Store(tmp_path_factory.mktemp("gstore"))
    return store, Library(build_library(store, gnn_config(samples_dir)))


def test_catalog_holds_both_model_types(gnn_library):
    _, lib = gnn_library
    cat = lib.catalog
    assert set(cat["model_type"]) == {"mlp", "gnn"}
    gnn = lib.query(model_type="gnn")
    assert len(gnn) == 12 and set(gnn["property"]) == {"Heatcapacity_Cv_cal_mol_K", "Polarizability_bohr3"}
    assert set(gnn["descriptor"]) == {"molgraph"} and (gnn["status"] == "ok").all()
    archs = [json.loads(a) for a in gnn["arch"]]
    assert all(a["model"] == "gnn" and 1 <= a["depth"] <= 3 for a in archs)
    # families of 3 share their architecture: 2 families per property
    assert gnn.groupby("property")["arch"].nunique().tolist() == [2, 2]
    assert lib.verify() == len(lib.manifest["shards"])


def test_gnn_loaded_by_id_predicts_like_its_shard(gnn_library, samples_dir):
    import pandas as pd

    from matlib.graphs.spec import GraphSpec
    from matlib.library.gnn_shard import gnn_shard_predict
    from matlib.models.gnn import GNNRegressor

    _, lib = gnn_library
    row = lib.query(model_type="gnn", property="Heatcapacity_Cv_cal_mol_K").iloc[0]
    model = lib.load_model(row["model_id"])
    assert isinstance(model, GNNRegressor) and not model.training
    smiles = pd.read_csv(samples_dir / "qm9_sample.csv")["smiles"].iloc[-20:].tolist()
    gs, ok, _ = GraphSpec.coerce(json.loads(row["descriptor_spec"])).featurize(smiles)
    with torch.no_grad():
        pred = model(gs.batch(np.arange(len(gs))))
    assert pred.shape == (20, 1) and torch.isfinite(pred).all()
    shard = lib.shard(row["shard"])
    torch.testing.assert_close(pred[:, 0], gnn_shard_predict(shard, gs)[int(row["row"]), :, 0], rtol=1e-5, atol=1e-4)
    # in the property's units: near the QM9 Cv scale (cal/mol/K), not standardised
    assert 5 < float(pred.mean()) < 60


def test_multi_task_group_and_config_errors(tmp_path, samples_dir):
    from matlib.library import Library, build_library
    from matlib.library.config import load_config
    from matlib.store import Store

    cfg = gnn_config(samples_dir, "mt", multi_task=True)
    cfg["groups"] = cfg["groups"][1:]
    lib = Library(build_library(Store(tmp_path / "s"), cfg))
    cat = lib.catalog
    assert len(cat) == 6 and set(cat["property"]) == {"Heatcapacity_Cv_cal_mol_K|Polarizability_bohr3"}
    assert json.loads(cat["tasks"].iloc[0]) == ["Heatcapacity_Cv_cal_mol_K", "Polarizability_bohr3"]
    assert len(json.loads(cat["task_metrics"].iloc[0])) == 2
    shard = lib.shard(cat["shard"].iloc[0])
    assert shard.tensors["out.weight"].shape[-1] == 2
    bad = gnn_config(samples_dir)
    bad["groups"][1]["architecture"] = {"pooling": ["max"]}
    with pytest.raises(ValidationError, match="unknown pooling"):
        load_config(bad)
    bad["groups"][1]["architecture"] = {}
    bad["groups"][1]["training"] = {"epoch": 3}
    with pytest.raises(ValidationError, match="unknown keys"):
        load_config(bad)
    bad["groups"][1]["model"] = "transformer"
    with pytest.raises(ValidationError, match="unknown model"):
        load_config(bad)


def test_shard_predict_reads_graph_codes(gnn_library, samples_dir):
    import pandas as pd

    from matlib.descriptors import get_featurizer
    from matlib.library import shard_predict

    _, lib = gnn_library
    row = lib.query(model_type="gnn").iloc[0]
    shard = lib.shard(row["shard"])
    smiles = pd.read_csv(samples_dir / "qm9_sample.csv")["smiles"].iloc[-10:].tolist()
    codes = get_featurizer("molgraph").featurize(smiles).X
    pred = shard_predict(shard, codes)
    assert pred.shape == (len(shard), 10)
    model = lib.load_model(row["model_id"])
    from matlib.graphs.code import decode_codes

    with torch.no_grad():
        one = model(decode_codes(codes).batch(np.arange(10)))[:, 0]
    torch.testing.assert_close(pred[int(row["row"])], one, rtol=1e-5, atol=1e-4)
