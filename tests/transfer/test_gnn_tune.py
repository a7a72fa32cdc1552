"""Fine-tuning one GNN end to end: decoder only or all layers (smaller lr for message passing), CV-chosen;
the tuned model saves, loads and predicts in input order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from matlib.errors import IntegrityError, ValidationError
from matlib.graphs.spec import GraphSpec
from matlib.models.gnn import GNNRegressor, param_shapes
from matlib.models.gnn_batched import train_gnn_batched
from matlib.transfer.gnn_tune import MODES, TunedGNN, finetune_gnn

REPO_SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
ARCH = {
    "model": "gnn",
    "n_node": 74,
    "n_edge": 12,
    "depth": 2,
    "width": 16,
    "pooling": "mean",
    "decoder": [16],
    "activation": "relu",
    "edge_features": True,
    "n_out": 2,
}


@pytest.fixture(scope="module")
def source() -> GNNRegressor:
    """A two-property GNN pretrained briefly on 200 shipped QM9 molecules."""
    df = pd.read_csv(REPO_SAMPLES / "qm9_sample.csv").head(200)
    gs, ok, _ = GraphSpec("molgraph").featurize(df["smiles"].tolist())
    assert ok.all()
    y = df[["Polarizability_bohr3", "Heatcapacity_Cv_cal_mol_K"]].to_numpy()
    res = train_gnn_batched(gs, y, ARCH, [7], {"epochs": 3, "batch_size": 32})
    t = res.tensors
    return GNNRegressor(ARCH, {k: t[k][0] for k in param_shapes(ARCH)}, t["y_mean"][0], t["y_std"][0])


@pytest.fixture(scope="module")
def esol() -> pd.DataFrame:
    """40 training molecules of the shipped ESOL sample."""
    return pd.read_csv(REPO_SAMPLES / "esol_sample.csv").head(40)


def _moved(tuned: TunedGNN, source: GNNRegressor, prefix: str) -> bool:
    """Whether any parameter starting with prefix differs from the source's."""
    return any(
        not torch.equal(v, source.p(k)) for k, v in tuned.params.items() if k.startswith(prefix) and "out" not in k
    )


def test_all_layers_tuned_saves_loads_and_predicts_in_input_order(source, esol, tmp_path):
    tuned = finetune_gnn(source, esol["smiles"].tolist(), esol["logSolubility"].to_numpy(), layers="all", seed=1)
    assert tuned.meta["layers"] == "all" and tuned.arch["n_out"] == 1
    assert _moved(tuned, source, "conv") and _moved(tuned, source, "dec")  # message passing trained too
    assert set(k.split("|")[0] for k in tuned.meta["cv_mae"]) == {"all"}
    smiles = esol["smiles"].tolist() + ["not a smiles", "*CC(*)c1ccccc1"]
    first = tuned.predict(smiles)
    assert len(first) == len(smiles) and first["input"].tolist() == smiles
    assert np.isnan(first["prediction"].iloc[40]) and first["reason"].iloc[40]
    assert np.isfinite(first["prediction"].drop(index=40)).all()
    assert -12 < float(first["prediction"].iloc[:40].mean()) < 2  # the target's units (log mol/L)
    loaded = TunedGNN.load(tuned.save(tmp_path / "tuned"))
    assert loaded.meta == tuned.meta
    again = loaded.predict(smiles)
    np.testing.assert_array_equal(again["prediction"].to_numpy(), first["prediction"].to_numpy())
    perm = np.random.default_rng(0).permutation(len(smiles))
    shuffled = loaded.predict([smiles[i] for i in perm])
    np.testing.assert_allclose(
        shuffled["prediction"].to_numpy(), first["prediction"].to_numpy()[perm], rtol=1e-5, equal_nan=True
    )


def test_decoder_only_keeps_message_passing_and_auto_compares_both(source, esol):
    smiles, y = esol["smiles"].tolist(), esol["logSolubility"].to_numpy()
    dec = finetune_gnn(source, smiles, y, layers="decoder", seed=1)
    assert dec.meta["layers"] == "decoder" and not _moved(dec, source, "conv") and _moved(dec, source, "dec")
    auto = finetune_gnn(source, smiles, y, layers="auto", seed=1)
    cv = auto.meta["cv_mae"]
    assert {k.split("|")[0] for k in cv} == set(MODES)
    assert auto.meta["layers"] in MODES
    assert cv[f"{auto.meta['layers']}|{auto.meta['lr']:g}|{auto.meta['epochs']}"] == min(cv.values())


def test_bad_inputs_and_tampered_weights_give_one_line_errors(source, esol, tmp_path):
    smiles, y = esol["smiles"].tolist()[:10], esol["logSolubility"].to_numpy()[:10]
    with pytest.raises(ValidationError, match="row 3: input 'C1CC' has no graph"):
        finetune_gnn(source, smiles[:3] + ["C1CC"] + smiles[4:], y, layers="decoder")
    with pytest.raises(ValidationError, match="row 2: target"):
        finetune_gnn(source, smiles, np.r_[y[:2], np.nan, y[3:]], layers="decoder")
    with pytest.raises(ValidationError, match="layers must be one of"):
        finetune_gnn(source, smiles, y, layers="encoder")
    params = {k.replace("_", ".", 1): v.detach() for k, v in source.params.items()}
    params["out.weight"], params["out.bias"] = params["out.weight"][:, :1], params["out.bias"][:1]
    one = TunedGNN({**ARCH, "n_out": 1}, params, 0.0, 1.0, {"name": "molgraph", "params": {}})
    folder = one.save(tmp_path / "t")
    assert len(TunedGNN.load(folder).predict(smiles[:3])) == 3
    data = bytearray((folder / "tuned.safetensors").read_bytes())
    data[-1] ^= 1
    (folder / "tuned.safetensors").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum"):
        TunedGNN.load(folder)
