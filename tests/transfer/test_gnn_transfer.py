"""Transfer with GNN sources: frozen pooled / decoder features screened, decoder fine-tuned, saved, predicted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

REPO_SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def gnn_only_config() -> dict:
    """GNNs (two families per property) on graphs of 300 shipped QM9 molecules."""
    imp = {
        "file": str(REPO_SAMPLES / "qm9_sample.csv"),
        "input_column": "smiles",
        "target_columns": ["Polarizability_bohr3", "HOMO_LUMO_gap_au"],
        "kind": "molecule",
        "sample_rows": 300,
    }
    return {
        "name": "gnn-transfer",
        "seed": 0,
        "shard_size": 4,
        "family_size": 2,
        "groups": [
            {
                "model": "gnn",
                "dataset": "qm9g",
                "import": imp,
                "properties": ["Polarizability_bohr3", "HOMO_LUMO_gap_au"],
                "models_per_property": 4,
                "architecture": {"depth": [1, 3], "width": [16], "decoder_width": [16]},
                "training": {"epochs": 4, "batch_size": 32, "patience": 4},
            }
        ],
    }


@pytest.fixture(scope="module")
def gnn_run(tmp_path_factory):
    """(library, run folder, ESOL rows) of a transfer fit on 60 ESOL molecules with a GNN-only library."""
    from matlib.library import build_library
    from matlib.store import Store
    from matlib.transfer.fit import fit_transfer

    root = tmp_path_factory.mktemp("gnnt")
    store = Store(root / "store")
    lib = build_library(store, gnn_only_config())
    esol = pd.read_csv(REPO_SAMPLES / "esol_sample.csv").head(60)
    out = root / "run"
    res = fit_transfer(
        lib,
        esol["smiles"].tolist(),
        esol["logSolubility"].tolist(),
        out,
        store=store,
        learners=("ridge", "finetune"),
        finetune_top=2,
        top_k=3,
        ensemble_size=3,
        folds=3,
        repeats=1,
        include_direct=False,
        report=False,
    )
    return lib, out, esol, res


def test_screening_ranks_pooled_and_decoder_layers(gnn_run):
    from matlib.library import Library

    lib, _, _, res = gnn_run
    cat = Library(lib).catalog
    transfer = res.ranking[res.ranking["kind"] == "transfer"]
    assert set(transfer["model_id"]) == set(cat["model_id"])  # every GNN screened
    n_layers = cat["arch"].map(lambda a: 1 + len(json.loads(a)["decoder"]))
    assert len(transfer) == int(n_layers.sum())  # pooled embedding + each decoder layer, no clamp duplicates
    assert transfer["clip"].isna().all() and np.isfinite(transfer["loo_mae"]).all()
    widths = transfer.set_index("candidate")["width"]
    assert set(widths) == {16}


def test_decoder_is_fine_tuned_with_cv_chosen_schedule(gnn_run):
    from matlib.transfer.gnn_finetune import EPOCH_GRID, LR_GRID

    _, out, _, res = gnn_run
    tuned = res.refined[res.refined["learner"] == "finetune"]
    assert len(tuned) == 2 and np.isfinite(tuned["cv_mae"]).all()
    metas = []
    for f in sorted((out / "model").rglob("*.safetensors")):
        from safetensors.numpy import load_file

        state = load_file(str(f))
        if "meta" in state:
            metas.append(json.loads(bytes(state["meta"].astype(np.uint8)).decode()))
    gnn_metas = [m for m in metas if m.get("source") == "gnn-decoder"]
    for m in gnn_metas:
        assert m["lr"] in LR_GRID and m["epochs"] in EPOCH_GRID
    model = json.loads((out / "model" / "model.json").read_text())
    if any(m["learner"] == "finetune" for m in model["members"]):
        assert gnn_metas


def test_saved_model_loads_and_predicts_in_input_order(gnn_run):
    from matlib.transfer.model import predict_transfer

    _, out, esol, _ = gnn_run
    smiles = esol["smiles"].tolist()[:40] + ["not a smiles", "*CC(*)c1ccccc1"]
    first = predict_transfer(out, smiles)
    assert len(first) == len(smiles)
    assert np.isnan(first["prediction"].iloc[40]) and first["reason"].iloc[40]
    assert np.isfinite(first["prediction"].iloc[:40]).all() and np.isfinite(first["prediction"].iloc[41])
    perm = np.random.default_rng(0).permutation(len(smiles))
    shuffled = predict_transfer(out, [smiles[i] for i in perm])
    # float32 graph batches of another composition sum in another order: equal to rounding
    np.testing.assert_allclose(
        shuffled["prediction"].to_numpy(), first["prediction"].to_numpy()[perm], rtol=1e-5, equal_nan=True
    )
    # predictions are on the target's scale (ESOL log mol/L), not on a source property's
    assert -12 < float(np.nanmean(first["prediction"])) < 2
    torch.testing.assert_close(
        torch.tensor(predict_transfer(out, smiles[:5])["prediction"].to_numpy()),
        torch.tensor(first["prediction"].to_numpy()[:5]),
        rtol=1e-5,
        atol=1e-5,
    )
