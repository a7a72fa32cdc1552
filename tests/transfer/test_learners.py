"""Learners: CV on shared folds, safe save/load round trip giving identical predictions."""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from matlib.transfer.cv import cross_validate, repeated_kfold
from matlib.transfer.learners import RF_PARAMS, get_learner


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


def test_exported_forest_matches_sklearn(esol_morgan):
    X, y = esol_morgan(60)
    state = get_learner("rf").fit(X, y, 3)
    rf = RandomForestRegressor(random_state=3, **RF_PARAMS).fit(X, y)
    np.testing.assert_allclose(get_learner("rf").predict(state, X[:20]), rf.predict(X[:20]), rtol=1e-10)


def test_folds_deterministic_and_cover_every_row():
    a, b = repeated_kfold(37, 5, 3, seed=4), repeated_kfold(37, 5, 3, seed=4)
    assert (a.fold == b.fold).all()
    assert not (a.fold == repeated_kfold(37, 5, 3, seed=5).fold).all()
    for r in range(3):
        assert sorted(np.bincount(a.fold[r]).tolist()) == [7, 7, 7, 8, 8]
