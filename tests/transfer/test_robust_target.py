"""Robust-target learner variants (`<base>-asinh`): the transform, safe round trips, and what they buy on a real
heavy-tailed table."""

import numpy as np
import pandas as pd
import pytest

from matlib.transfer.cv import cross_validate, repeated_kfold
from matlib.transfer.direct import raw_features, standard_specs
from matlib.transfer.learners import LEARNERS, get_learner
from matlib.transfer.learners.robust_target import BASES, SUFFIX, from_robust, target_scale, to_robust
from tests.fixtures import TEST_DATA


def magpie_rows(path: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Magpie features and targets of the first n rows of a real composition table in the fixtures."""
    df = pd.read_csv(TEST_DATA / path).head(n)
    X, _ = raw_features(df["formula"].tolist(), standard_specs("composition")[0])
    return np.nan_to_num(X.astype(np.float64)), df["target"].to_numpy(np.float64)


def test_every_base_learner_has_a_variant():
    assert all(base + SUFFIX in LEARNERS for base in BASES)


def test_the_transform_is_fixed_by_the_training_rows_and_inverts():
    y = np.array([-40.0, 0.5, 1.0, 1.5, 2.0, 2.5, 900.0])
    center, scale = target_scale(y)
    assert center == 1.5 and scale == pytest.approx(1.4826 * 1.0)
    np.testing.assert_allclose(from_robust(to_robust(y, center, scale), center, scale), y, rtol=1e-12)
    assert target_scale(np.full(5, 3.0)) == (3.0, 1.0)  # a constant target: no division by zero


@pytest.mark.parametrize("base", BASES)
def test_variant_round_trips_through_its_files(base, tmp_path):
    X, y = magpie_rows("mp/matbench_dielectric.csv", 70)
    lr = get_learner(base + SUFFIX)
    state = lr.fit(X[:50], y[:50], 0)
    lr.save(state, tmp_path / base)
    back = lr.load(tmp_path / base)
    np.testing.assert_allclose(lr.predict(back, X[50:]), lr.predict(state, X[50:]), rtol=1e-9)
    assert (tmp_path / base / "target_transform.json").exists() and not list(tmp_path.rglob("*.pkl"))


@pytest.mark.parametrize("base", ["ridge", "gp"])
def test_a_head_far_outside_the_training_range_stays_within_one_span_of_it(base):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.exp(3 * X[:, 0])
    lr = get_learner(base + SUFFIX)
    pred = lr.predict(lr.fit(X, y, 0), np.vstack([1e6 * np.ones((2, 3)), -1e6 * np.ones((2, 3)), 8 * X[:5]]))
    span = y.max() - y.min()  # one span on the target's scale, not one in asinh units (exponential in y)
    assert np.isfinite(pred).all()
    assert (pred <= y.max() + span * (1 + 1e-9)).all() and (pred >= y.min() - span * (1 + 1e-9)).all()


def test_on_a_real_heavy_tailed_table_no_prediction_leaves_the_bounds():
    X, y = magpie_rows("mp/mp_mu_b.csv", 150)
    lr = get_learner("gp" + SUFFIX)
    pred = lr.predict(lr.fit(X[:50], y[:50], 0), X[50:])
    span = y[:50].max() - y[:50].min()
    assert y[:50].min() - span <= pred.min() and pred.max() <= y[:50].max() + span


@pytest.mark.parametrize("path", ["mp/mp_elastic_anisotropy.csv", "mp/mp_mu_b.csv"])
def test_on_a_heavy_tailed_real_table_the_variant_has_the_lower_cv_error(path):
    X, y = magpie_rows(path, 100)
    folds = repeated_kfold(len(y), 5, 2, seed=0)
    for base in ("extratrees", "gp"):
        plain, robust = cross_validate(X, y, folds, base).mae, cross_validate(X, y, folds, base + SUFFIX).mae
        assert robust < 0.9 * plain, (base, plain, robust)
