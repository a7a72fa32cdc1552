"""The Tanimoto-kernel GP on real count fingerprints: the kernel, calibrated sd, menu only for counts, safe save."""

import numpy as np
import pandas as pd

from matlib.transfer.cv import repeated_kfold
from matlib.transfer.direct import raw_features, standard_specs
from matlib.transfer.learners import get_learner
from matlib.transfer.learners.tanimoto_gp import tanimoto
from tests.fixtures import TEST_DATA
from tests.transfer.conftest import POLYMER, esol_rows


def test_kernel_is_the_minmax_similarity_of_counts():
    A = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    B = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    K = tanimoto(A, B)
    np.testing.assert_allclose(K, [[(1 + 0 + 1) / (1 + 1 + 2), 0.0], [0.0, 1.0]])
    X, _ = raw_features(esol_rows(30)["smiles"].tolist(), standard_specs("molecule")[1])  # morgan counts
    S = tanimoto(X.astype(float), X.astype(float))
    np.testing.assert_allclose(np.diag(S), 1.0)
    assert np.linalg.eigvalsh(S).min() > -1e-8  # a valid covariance


def test_on_the_menu_for_count_fingerprints_only():
    """Morgan counts suit it; RDKit 2D, the concatenation and Magpie (real values, some negative) do not."""
    lr = get_learner("gp-tanimoto")
    smiles = esol_rows(40)["smiles"].tolist()
    rdkit2d, morgan, concat = (raw_features(smiles, s)[0] for s in standard_specs("molecule"))
    formulas = pd.read_csv(TEST_DATA / "aflow" / "ael_debye_temperature.csv").head(40)["formula"].tolist()
    magpie = raw_features(formulas, standard_specs("composition")[0])[0]
    assert lr.suits(morgan)
    assert not lr.suits(rdkit2d) and not lr.suits(concat) and not lr.suits(magpie)
    assert get_learner("rf").suits(morgan) and get_learner("rf").suits(rdkit2d)  # the default: by shape alone


def test_sd_covers_about_90_percent_of_out_of_fold_residuals_on_polymers():
    """On real polymer repeat units (log10 O2 permeability, Morgan counts), the 90% interval mean +- 1.645 sd from
    the marginal-likelihood fit alone holds about 90% of the out-of-fold targets, and beats the training mean."""
    df = pd.read_csv(POLYMER).sample(150, random_state=0)
    X, ok = raw_features(df["SMILES"].tolist(), standard_specs("molecule")[1])
    X, y = X[ok].astype(float), np.log10(df["o2"].to_numpy(float))[ok]
    lr = get_learner("gp-tanimoto")
    mu, sd = np.full(len(y), np.nan), np.full(len(y), np.nan)
    for train, test in repeated_kfold(len(y), 5, 1, seed=0).first_repeat():
        state = lr.fit(X[train], y[train], 0)
        mu[test], sd[test] = lr.predict(state, X[test]), lr.predict_sd(state, X[test])
    resid = np.abs(mu - y)
    assert 0.8 <= float((resid <= 1.645 * sd).mean()) <= 0.97
    assert resid.mean() < np.abs(y - y.mean()).mean() * 0.8


def test_state_round_trips_through_safetensors(tmp_path):
    df = esol_rows(60)
    X, _ = raw_features(df["smiles"].tolist(), standard_specs("molecule")[1])
    y = df["logSolubility"].to_numpy(float)
    lr = get_learner("gp-tanimoto")
    state = lr.fit(X[:45], y[:45], 0)
    lr.save(state, tmp_path / "gp")
    assert [p.suffix for p in (tmp_path / "gp").iterdir()] == [".safetensors"]
    back = lr.load(tmp_path / "gp")
    np.testing.assert_allclose(lr.predict(back, X[45:]), lr.predict(state, X[45:]), rtol=1e-10)
    np.testing.assert_allclose(lr.predict_sd(back, X[45:]), lr.predict_sd(state, X[45:]), rtol=1e-10)
    # a training row is predicted close to its target (noise fitted small on real solubilities), new rows less so
    assert np.abs(lr.predict(state, X[:45]) - y[:45]).mean() < np.abs(lr.predict(state, X[45:]) - y[45:]).mean()
