"""Shards, catalog, load by id, frozen features and integrity on a small real library."""

import json
import shutil

import numpy as np
import pytest
import torch

from matlib.errors import IntegrityError, MatlibError, ValidationError
from matlib.library import COLUMNS, Library, shard_hidden_features, shard_predict
from matlib.library.plan import load_training_table


def test_catalog_has_the_contract_columns(built_library):
    _, path = built_library
    lib = Library(path)
    cat = lib.catalog
    assert set(COLUMNS) <= set(cat.columns)
    assert len(cat) == 24 and cat["model_id"].is_unique
    assert set(cat["property"]) == {"refractive_index"} and set(cat["descriptor"]) == {"magpie"}
    ok = cat[cat["status"] == "ok"]
    assert len(ok) == lib.manifest["n_ok"] > 0
    assert np.isfinite(ok[["mae", "rmse", "r2"]].to_numpy()).all()
    arch = json.loads(ok["arch"].iloc[0])
    assert arch["n_in"] == 132 and 1 <= len(arch["hidden"]) <= 3
    assert sorted(lib.manifest["shards"]) == sorted(ok["shard"].unique())


def test_query_filters(built_library):
    lib = Library(built_library[1])
    assert len(lib.query(property="refractive_index", status="ok")) == lib.manifest["n_ok"]
    best = lib.query(r2__gt=lib.catalog["r2"].median())
    assert 0 < len(best) < len(lib.catalog) and (best["r2"] > lib.catalog["r2"].median()).all()
    assert len(lib.query(property=["refractive_index", "nope"])) == 24
    assert lib.query(property="nope").empty
    with pytest.raises(ValidationError, match="unknown column 'colour'"):
        lib.query(colour="red")


def test_load_model_matches_stacked_shard_and_hidden_features(built_library):
    lib = Library(built_library[1])
    shards = list(lib.iter_shards())
    assert sum(len(s) for s in shards) == lib.manifest["n_ok"]
    X, y = load_training_table(next(iter(shards)).meta and sorted((built_library[1] / "data").glob("*.safetensors"))[0])
    x = torch.from_numpy(X[:50])
    for shard in shards:
        feats = shard_hidden_features(shard, X[:50])
        assert len(feats) == len(shard.arch["hidden"])
        preds = shard_predict(shard, X[:50])
        for m, mid in enumerate(shard.model_ids):
            model = lib.load_model(mid)
            assert isinstance(model, torch.nn.Module)
            with torch.no_grad():
                assert torch.allclose(model(x), preds[m], atol=1e-4)
                for layer, f in enumerate(model.hidden_features(x)):
                    assert feats[layer].shape[:2] == (len(shard), 50)
                    assert torch.allclose(f, feats[layer][m, :, : f.shape[1]], atol=1e-5)
                    assert torch.all(feats[layer][m, :, f.shape[1] :] == 0)  # padding is exactly zero


def test_loaded_model_reproduces_catalog_metrics(built_library):
    """The stored best checkpoint gives the catalog's test MAE on its own test split."""
    from matlib.models.data import split_indices

    lib = Library(built_library[1])
    X, y = load_training_table(sorted((built_library[1] / "data").glob("*.safetensors"))[0])
    row = lib.query(status="ok").iloc[0]
    tc = json.loads(row["train_config"])
    sp = split_indices(len(y), int(row["seed"]), tc["val_fraction"], tc["test_fraction"])
    with torch.no_grad():
        pred = lib.load_model(row["model_id"])(torch.from_numpy(X[sp.test])).numpy()
    assert np.mean(np.abs(pred - y[sp.test])) == pytest.approx(row["mae"], rel=1e-4)


def test_tampered_shard_fails_with_integrity_error(built_library, tmp_path):
    copy = tmp_path / "lib"
    shutil.copytree(built_library[1], copy)
    lib = Library(copy)
    victim = sorted(lib.manifest["shards"])[0]
    path = lib.shard_path(victim)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # flip one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=f"shard {victim}: sha256 mismatch"):
        list(Library(copy).iter_shards())
    mid = lib.catalog.loc[lib.catalog["shard"] == victim, "model_id"].iloc[0]
    with pytest.raises(IntegrityError, match=victim):
        Library(copy).load_model(mid)
    with pytest.raises(IntegrityError):
        Library(copy).verify()


def test_missing_things_are_one_line_errors(built_library, tmp_path):
    with pytest.raises(MatlibError, match="not a matlib library"):
        Library(tmp_path)
    with pytest.raises(MatlibError, match="not in library"):
        Library(built_library[1]).load_model("0000")


def test_no_pickle_in_library(built_library):
    for p in built_library[1].rglob("*"):
        if p.is_file():
            assert p.suffix in {".safetensors", ".parquet", ".json", ".csv"}, p
