"""Learners: CV on shared folds, safe save/load round trip giving identical predictions."""

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

from matlib.transfer.cv import cross_validate, repeated_kfold
from matlib.transfer.learners import ET_PARAMS, RF_PARAMS, get_learner


@pytest.mark.parametrize("name", ["ridge", "lightgbm", "rf"])
def test_learner_roundtrip_and_cv(name, tmp_path, esol_morgan):
    X, y = esol_morgan(80)
    lr = get_learner(name)
    state = lr.fit(X[:60], y[:60], 0)
    lr.save(state, tmp_path / name)
    back = lr.load(tmp_path / name)
    np.testing.assert_allclose(lr.predict(back, X[60:]), lr.predict(state, X[60:]), rtol=1e-6)
    assert not list(tmp_path.rglob("*.pkl"))
    folds = repeated_kfold(len(y), 5, 2, seed=0)
    res = cross_validate(X, y, folds, name)
    assert np.isfinite(res.oof).all() and res.mae < np.abs(y - y.mean()).mean()


@pytest.mark.parametrize("name", ["rf", "extratrees"])
def test_exported_forest_matches_sklearn(name, esol_morgan):
    X, y = esol_morgan(60)
    state = get_learner(name).fit(X, y, 3)
    varying = np.flatnonzero(X.max(axis=0) > X.min(axis=0))  # constant fingerprint bits are left out of the fit
    assert len(varying) < X.shape[1]
    cls, params = (RandomForestRegressor, RF_PARAMS) if name == "rf" else (ExtraTreesRegressor, ET_PARAMS)
    forest = cls(random_state=3, **params).fit(X[:, varying].astype(np.float32), y)  # scikit-learn's own trees
    thresholds = np.concatenate([t.tree_.threshold for t in forest.estimators_])
    np.testing.assert_array_equal(state["threshold"], thresholds)  # the same trees, node for node
    np.testing.assert_allclose(get_learner(name).predict(state, X[:20]), forest.predict(X[:20, varying]), rtol=1e-10)


def test_folds_deterministic_and_cover_every_row():
    a, b = repeated_kfold(37, 5, 3, seed=4), repeated_kfold(37, 5, 3, seed=4)
    assert (a.fold == b.fold).all()
    assert not (a.fold == repeated_kfold(37, 5, 3, seed=5).fold).all()
    for r in range(3):
        assert sorted(np.bincount(a.fold[r]).tolist()) == [7, 7, 7, 8, 8]


def test_finetune_starts_from_source_and_roundtrips(small_library, tmp_path, esol_morgan):
    import torch

    from matlib.library import Library, shard_hidden_features
    from matlib.transfer.fit import library_specs
    from matlib.transfer.source_models import slice_shard
    from matlib.transfer.target import featurize_inputs
    from tests.transfer.conftest import esol_rows

    lib = Library(small_library)
    shard = next(s for s in lib.iter_shards() if s.arch["n_in"] == 167)  # a maccs shard
    ext = slice_shard(shard, 0)
    spec = next(s for s in library_specs(lib.catalog).values() if s["name"] == "maccs")
    df = esol_rows(50)
    X, ok, _, _ = featurize_inputs(df["smiles"].tolist(), spec)
    H = shard_hidden_features(ext, torch.as_tensor(X))[0][0].double().numpy()
    y = df["logSolubility"].to_numpy()
    lr = get_learner("finetune")
    ctx = {"arch": ext.arch, "tensors": ext.tensors, "layer": 0}
    state = lr.fit(H[:40], y[:40], 0, ctx)
    lr.save(state, tmp_path / "ft")
    back = lr.load(tmp_path / "ft")
    np.testing.assert_allclose(lr.predict(back, H[40:]), lr.predict(state, H[40:]), rtol=1e-6)
    assert np.abs(lr.predict(state, H[:40]) - y[:40]).mean() < np.abs(y[:40] - y[:40].mean()).mean()
    # the later layers start from the source weights (L2-SP keeps them close)
    np.testing.assert_allclose(state["l1.weight"].shape, ext.tensors["l1.weight"][0].shape)
