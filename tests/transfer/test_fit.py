"""fit_transfer end to end on a real small library and real ESOL rows: determinism, safe saving, predict."""

import json

import numpy as np
import pandas as pd
import pytest

from matlib.transfer import fit_transfer, predict_transfer
from matlib.transfer.candidate import MemberKey
from matlib.transfer.fit import INPUT_CLIP
from matlib.transfer.model import load_model
from tests.transfer.conftest import FAST, esol_rows


@pytest.fixture(scope="module")
def two_runs(small_library, tmp_path_factory):
    df = esol_rows(200).sample(40, random_state=3)
    runs = []
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp("runs") / name
        runs.append(
            fit_transfer(
                small_library,
                df["smiles"].tolist(),
                df["logSolubility"].tolist(),
                out,
                target_column="logSolubility",
                input_column="smiles",
                seed=7,
                **FAST,
            )
        )
    return df, runs


def test_ranking_and_choice_deterministic_for_a_seed(two_runs):
    _, (a, b) = two_runs
    pd.testing.assert_frame_equal(a.ranking, b.ranking)
    pd.testing.assert_frame_equal(a.refined, b.refined)
    assert a.selection.members == b.selection.members
    # direct: the library's MACCS and the standard rdkit2d, Morgan and both (matlib.transfer.direct)
    assert (a.ranking["kind"] == "transfer").sum() > 0 and (a.ranking["kind"] == "direct").sum() == 4
    # the refinement covers transfer candidates and the direct baselines on the same folds
    # (and the composite options: source predictions beside descriptors, multi-source stacks)
    assert {"transfer", "direct", "source"} <= set(a.refined["kind"]) <= {"transfer", "direct", "source", "stack"}
    assert {"ridge", "lightgbm", "rf", "finetune"} <= set(a.refined["learner"])


def test_outputs_written_and_safe(two_runs):
    _, (a, _) = two_runs
    d = a.out_dir
    for name in (
        "ranking.parquet",
        "refined.parquet",
        "report.md",
        "parity.png",
        "scores_by_property.png",
        "model/model.json",
        "run.json",
    ):
        assert (d / name).exists(), name
    files = [p.suffix for p in (d / "model").rglob("*") if p.is_file()]
    assert set(files) <= {".json", ".safetensors", ".txt"}
    assert pd.read_parquet(d / "ranking.parquet").shape[0] == len(a.ranking)
    report = (d / "report.md").read_text()
    assert "Transfer vs direct learning" in report and "parity.png" in report
    header = report.split("## Final model options")[1].split("\n")[2]  # every row has the header's cell count
    table = report.split("## Final model options")[1].split("\n\n")[1].splitlines()
    assert all(row.replace("\\|", "").count("|") == header.count("|") for row in table)
    assert "|ridge" in report.replace("\\|", "|")
    spec = json.loads((d / "model" / "model.json").read_text())
    assert spec["n_train"] == 40 and spec["members"]
    ranking = pd.read_parquet(d / "ranking.parquet")  # every (model, layer) screened as is and clamped
    transfer = ranking[ranking["kind"] == "transfer"]
    assert set(transfer["clip"].fillna(0)) == {0, INPUT_CLIP}
    assert (transfer["clip"] == INPUT_CLIP).sum() == transfer["clip"].isna().sum()
    for m in spec["members"]:  # prediction feeds each member its inputs exactly as the fit did
        assert m["clip"] == MemberKey.parse(m["key"]).candidate_id.clip


def test_saved_transfer_members_keep_their_candidates_clip(transfer_only_run):
    """model.json of a transfer model: each member's layer and clip are those its candidate id names."""
    _, a = transfer_only_run
    spec = json.loads((a.out_dir / "model" / "model.json").read_text())
    assert spec["members"] and all(m["kind"] == "transfer" for m in spec["members"])
    for m in spec["members"]:
        cand = MemberKey.parse(m["key"]).candidate_id
        assert (m["model_id"], m["layer"], m["clip"]) == (cand.model_id, cand.layer, cand.clip)
        assert m["clip"] in (None, INPUT_CLIP)


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
    assert (
        np.abs(train["prediction"] - df["logSolubility"].to_numpy()).mean()
        < np.abs(df["logSolubility"] - df["logSolubility"].mean()).mean()
    )


@pytest.fixture(scope="module")
def transfer_only_run(small_library, tmp_path_factory):
    """A fit whose menu holds transfer options only, so its model has transfer members whatever CV prefers."""
    df = esol_rows(200).sample(40, random_state=3)
    out = tmp_path_factory.mktemp("runs") / "transfer-only"
    res = fit_transfer(
        small_library,
        df["smiles"].tolist(),
        df["logSolubility"].tolist(),
        out,
        target_column="logSolubility",
        input_column="smiles",
        seed=7,
        include_direct=False,
        **FAST,
    )
    return df, res


def test_predict_uses_each_members_saved_input_clip(transfer_only_run):
    df, a = transfer_only_run
    assert a.members and all(m.kind == "transfer" for m in a.members)
    spec = load_model(a.out_dir)
    inputs = df["smiles"].tolist()
    saved = predict_transfer(spec, inputs)["prediction"].to_numpy()
    np.testing.assert_allclose(saved, predict_transfer(a.out_dir, inputs)["prediction"].to_numpy(), rtol=1e-9)
    for m in spec["members"]:  # feed every (transfer) member the other way: predictions change
        m["clip"] = None if m["clip"] is not None else INPUT_CLIP
    assert not np.allclose(predict_transfer(spec, inputs)["prediction"].to_numpy(), saved)


def test_clamp_is_chosen_per_source_descriptor(two_runs, transfer_only_run):
    """Refinement sees each descriptor's candidates one way only: the way with the lower median LOO MAE."""
    from matlib.transfer.source_models import preferred_clip_rows

    _, (a, _) = two_runs
    r = a.ranking[a.ranking["kind"] == "transfer"]
    keep = preferred_clip_rows(r)
    chosen = r[keep]
    assert chosen.groupby("descriptor_hash")["clip"].apply(lambda c: c.isna().nunique()).eq(1).all()
    for h, g in r.groupby("descriptor_hash"):
        med = g.groupby(g["clip"].fillna(-1))["loo_mae"].median()
        want = med.idxmin()
        assert (chosen.loc[chosen["descriptor_hash"] == h, "clip"].fillna(-1) == want).all()
    _, t = transfer_only_run  # a model made of transfer members: each one's candidate was fed the chosen way
    r = t.ranking[t.ranking["kind"] == "transfer"]
    members = [MemberKey.parse(m.key).candidate for m in t.members]
    assert members and set(members) <= set(r[preferred_clip_rows(r)]["candidate"])


def test_saved_members_carry_the_selection_weights(transfer_only_run):
    """model.json keeps each member's weight; predict is the weighted average of the members' full fits."""
    df, a = transfer_only_run  # the mean of the top candidates: several members
    assert len(a.members) > 1
    spec = load_model(a.out_dir)
    assert [m["weight"] for m in spec["members"]] == pytest.approx(a.selection.weights)
    assert sum(m["weight"] for m in spec["members"]) == pytest.approx(1.0)
    inputs = df["smiles"].tolist()[:10]
    base = predict_transfer(spec, inputs)["prediction"].to_numpy()
    for m in spec["members"]:  # the same members, all of the weight on the first
        m["weight"] = 1.0 if m is spec["members"][0] else 0.0
    first = predict_transfer(spec, inputs)["prediction"].to_numpy()
    spec["members"] = spec["members"][:1]
    np.testing.assert_allclose(first, predict_transfer(spec, inputs)["prediction"].to_numpy(), rtol=1e-9)
    assert not np.allclose(first, base)


def test_transfer_option_is_scored_by_the_search_rerun_inside_each_fold(two_runs, small_library):
    """With direct learning on the menu, the transfer ensemble's CV comes from screening each outer fold's training
    rows alone; its members' own CV (which saw every row while being picked) is kept beside it, and is lower."""
    from matlib.transfer.cv import cv_scores, repeated_kfold
    from matlib.transfer.fit import nested_transfer_oof
    from matlib.transfer.source_models import open_library

    _, (a, _) = two_runs
    table = a.selection.table.set_index("option")
    row = table.loc[[o for o in table.index if o.startswith("transfer:")][0]]
    usable = a.ranking[(a.ranking["kind"] == "transfer") & ~a.ranking["leak"]]
    assert {"loo_mae_f0", "loo_mae_f3"} <= set(usable.columns)
    y = a.target.y_usable
    folds = repeated_kfold(len(y), FAST["folds"], FAST["repeats"], 7)
    oof = nested_transfer_oof(open_library(small_library), usable, a.target, folds, FAST["top_k"], 7)
    assert oof.shape == (1, len(y)) and np.isfinite(oof).all()
    assert row["cv_mae"] == pytest.approx(cv_scores(oof, y).mae)
    assert row["cv_mae"] > row["cv_mae_members"]
