"""The Gaussian-process learner on real tables: calibrated predictive sd, a linear part that extrapolates, safe save."""

import numpy as np
import pandas as pd
import pytest

from matlib.transfer.cv import repeated_kfold, sorted_kfold
from matlib.transfer.direct import raw_features, standard_specs
from matlib.transfer.learners import get_learner
from tests.fixtures import TEST_DATA
from tests.transfer.conftest import esol_rows


def _oof(X: np.ndarray, y: np.ndarray, folds) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold GP means and predictive sds (repeat 0)."""
    gp = get_learner("gp")
    mu, sd = np.full(len(y), np.nan), np.full(len(y), np.nan)
    for train, test in folds.first_repeat():
        state = gp.fit(X[train], y[train], 0)
        mu[test], sd[test] = gp.predict(state, X[test]), gp.predict_sd(state, X[test])
    return mu, sd


@pytest.mark.parametrize("table", ["esol", "debye"])
def test_gp_sd_covers_about_90_percent_of_out_of_fold_residuals(table):
    """The 90% interval mean +- 1.645 sd, from hyperparameters fitted by marginal likelihood alone (no
    calibration on residuals), holds about 90% of the out-of-fold targets of a real table."""
    if table == "esol":
        df = esol_rows(160)
        X, _ = raw_features(df["smiles"].tolist(), standard_specs("molecule")[0])  # rdkit2d
        y = df["logSolubility"].to_numpy(float)
    else:
        df = pd.read_csv(TEST_DATA / "aflow" / "ael_debye_temperature.csv").sample(160, random_state=0)
        X, _ = raw_features(df["formula"].tolist(), standard_specs("composition")[0])  # magpie
        y = df["target"].to_numpy(float)
    mu, sd = _oof(X.astype(float), y, repeated_kfold(len(y), 5, 1, seed=0))
    resid = np.abs(mu - y)
    coverage = float((resid <= 1.645 * sd).mean())
    assert 0.8 <= coverage <= 0.97, coverage
    # and the sd means something: the rows it calls uncertain have the larger errors
    high = sd > np.median(sd)
    assert resid[high].mean() > resid[~high].mean()
    assert np.abs(mu - y).mean() < np.abs(y - y.mean()).mean() * 0.8  # far better than the mean


def test_gp_linear_part_leaves_the_training_range():
    """Trained on the lowest 80% of a real target, the GP predicts above its training maximum for rows that are
    above it (a forest cannot: its predictions are averages of training targets)."""
    df = esol_rows(200)
    X, _ = raw_features(df["smiles"].tolist(), standard_specs("molecule")[0])
    y = -df["logSolubility"].to_numpy(float)  # largest = least soluble
    folds = sorted_kfold(y, 5)
    train, test = folds.first_repeat()[-1]  # the top block held out
    assert y[test].min() >= y[train].max()
    gp, rf = get_learner("gp"), get_learner("rf")
    pred_gp = gp.predict(gp.fit(X[train], y[train], 0), X[test])
    pred_rf = rf.predict(rf.fit(X[train], y[train], 0), X[test])
    assert pred_rf.max() <= y[train].max() + 1e-9
    assert (pred_gp > y[train].max()).any()
    assert np.abs(pred_gp - y[test]).mean() < np.abs(pred_rf - y[test]).mean()


def test_gp_state_round_trips_through_safetensors_and_fills_missing_values(tmp_path):
    df = esol_rows(60)
    X, _ = raw_features(df["smiles"].tolist(), standard_specs("molecule")[0])
    y = df["logSolubility"].to_numpy(float)
    X = X.astype(float)
    X[3, :5] = np.nan  # an undefined descriptor value (RDKit leaves some undefined for unusual elements)
    gp = get_learner("gp")
    state = gp.fit(X, y, 0)
    gp.save(state, tmp_path / "gp")
    assert [p.suffix for p in (tmp_path / "gp").iterdir()] == [".safetensors"]
    back = gp.load(tmp_path / "gp")
    np.testing.assert_allclose(gp.predict(back, X), gp.predict(state, X))
    np.testing.assert_allclose(gp.predict_sd(back, X), gp.predict_sd(state, X))
    assert np.isfinite(gp.predict(back, X)).all() and (gp.predict_sd(back, X) > 0).all()
    assert gp.applies(200, 217) and not gp.applies(201, 217) and not gp.applies(100, 2048)
