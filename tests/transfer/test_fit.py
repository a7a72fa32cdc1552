"""fit_transfer end to end on a real small library and real ESOL rows: determinism, safe saving, predict."""

import json

import numpy as np
import pandas as pd
import pytest

from matlib.transfer import fit_transfer, predict_transfer
from matlib.transfer.fit import INPUT_CLIP
from matlib.transfer.model import load_model
from tests.transfer.conftest import FAST, esol_rows


@pytest.fixture(scope="module")
def two_runs(small_library, tmp_path_factory):
    df = esol_rows(200).sample(40, random_state=3)
    runs = []
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp("runs") / name
        runs.append(fit_transfer(small_library, df["smiles"].tolist(), df["logSolubility"].tolist(), out,
                                 target_column="logSolubility", input_column="smiles", seed=7, **FAST))
    return df, runs


def test_ranking_and_choice_deterministic_for_a_seed(two_runs):
    _, (a, b) = two_runs
    pd.testing.assert_frame_equal(a.ranking, b.ranking)
    pd.testing.assert_frame_equal(a.refined, b.refined)
    assert a.selection.members == b.selection.members
    assert (a.ranking["kind"] == "transfer").sum() > 0 and (a.ranking["kind"] == "direct").sum() == 1
    # the refinement covers transfer candidates and the direct baselines on the same folds
    assert set(a.refined["kind"]) == {"transfer", "direct"}
    assert {"ridge", "lightgbm", "rf", "finetune"} <= set(a.refined["learner"])


def test_outputs_written_and_safe(two_runs):
    _, (a, _) = two_runs
    d = a.out_dir
    for name in ("ranking.parquet", "refined.parquet", "report.md", "parity.png", "scores_by_property.png",
                 "model/model.json", "run.json"):
        assert (d / name).exists(), name
    files = [p.suffix for p in (d / "model").rglob("*") if p.is_file()]
    assert set(files) <= {".json", ".safetensors", ".txt"}
    assert pd.read_parquet(d / "ranking.parquet").shape[0] == len(a.ranking)
    report = (d / "report.md").read_text()
    assert "Transfer vs direct learning" in report and "parity.png" in report
    spec = json.loads((d / "model" / "model.json").read_text())
    assert spec["n_train"] == 40 and spec["members"]
    assert spec["input_clip"] == INPUT_CLIP  # prediction clamps target inputs exactly as the fit did


def test_predict_keeps_order_and_count_with_bad_rows(two_runs):
    df, (a, _) = two_runs
    smiles = esol_rows(200)["smiles"].tolist()[100:110]
    inputs = smiles[:3] + ["not a smiles", ""] + smiles[3:]
    p = predict_transfer(a.out_dir, inputs)
    assert len(p) == len(inputs) and p["input"].tolist() == [s.strip() for s in inputs]
    assert p["prediction"].isna().tolist() == [False] * 3 + [True, True] + [False] * 7
    assert p.loc[3, "reason"] and p.loc[4, "reason"] == "empty input"
    assert (p["uncertainty"].dropna() >= 0).all()
    # order-independent: each row's prediction does not depend on its neighbours
    rev = predict_transfer(a.out_dir, inputs[::-1])
    np.testing.assert_allclose(rev["prediction"].to_numpy()[::-1], p["prediction"].to_numpy(), rtol=1e-6)
    # the saved model reproduces its training predictions' scale
    train = predict_transfer(a.out_dir, df["smiles"].tolist())
    assert np.abs(train["prediction"] - df["logSolubility"].to_numpy()).mean() < np.abs(
        df["logSolubility"] - df["logSolubility"].mean()).mean()


def test_predict_uses_the_saved_input_clip(two_runs):
    df, (a, _) = two_runs
    if not any(m.kind == "transfer" for m in a.members):
        pytest.skip("the chosen model has no transfer member")
    spec = load_model(a.out_dir)
    inputs = df["smiles"].tolist()
    clipped = predict_transfer(spec, inputs)["prediction"].to_numpy()
    np.testing.assert_allclose(clipped, predict_transfer(a.out_dir, inputs)["prediction"].to_numpy(), rtol=1e-9)
    spec["input_clip"] = None
    assert not np.allclose(predict_transfer(spec, inputs)["prediction"].to_numpy(), clipped)
