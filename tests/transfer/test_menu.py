"""The whole menu on a real library and real ESOL rows: chosen by CV only, intervals per row, honest report."""

import json

import numpy as np
import pandas as pd
import pytest

from matlib.transfer import fit_transfer, predict_transfer
from matlib.transfer.candidate import CandidateId
from matlib.transfer.choice import chooser
from matlib.transfer.cv import cv_scores
from matlib.transfer.direct import raw_features
from matlib.transfer.learners import get_learner
from matlib.transfer.select import fold_select_oof, read_options_oof
from tests.transfer.conftest import FAST, esol_rows


@pytest.fixture(scope="module")
def menu_run(small_library, tmp_path_factory):
    df = esol_rows(300).sample(frac=1.0, random_state=11)
    train, held = df.iloc[:60], df.iloc[60:100]
    out = tmp_path_factory.mktemp("menu") / "run"
    res = fit_transfer(
        small_library,
        train["smiles"].tolist(),
        train["logSolubility"].tolist(),
        out,
        target_column="logSolubility",
        input_column="smiles",
        seed=3,
        **{**FAST, "repeats": 2},
    )
    return res, train, held


def test_direct_menu_has_the_standard_learners_on_the_standard_descriptors(menu_run):
    res, _, _ = menu_run
    direct = res.refined[res.refined["kind"] == "direct"]
    names = {CandidateId.parse(c).descriptor for c in direct["candidate"]}
    assert {"maccs", "rdkit2d", "morgan", "concat"} <= names  # the library's MACCS + the standard three
    rd = set(direct.loc[direct["candidate"].str.startswith("direct:rdkit2d:"), "learner"])
    assert rd == {"ridge", "gp", "lightgbm", "rf", "extratrees", "extratrees-asinh", "gp-asinh"}
    wide = set(direct.loc[direct["candidate"].str.startswith("direct:morgan:"), "learner"])
    assert not {"gp", "gp-asinh"} & wide and {"ridge", "lightgbm", "rf", "extratrees", "extratrees-asinh"} <= wide
    assert "gp" in set(res.refined.loc[res.refined["kind"] == "transfer", "learner"])


def test_choice_is_made_by_cv_alone_not_by_a_test_score(menu_run):
    """Give the held-out rows labels that make the CV runner-up perfect on them: a choice that looked at a test
    score would switch to it; the fit never sees those rows, so the model and its choice are the CV ones."""
    res, train, held = menu_run
    direct = res.refined[res.refined["kind"] == "direct"].reset_index(drop=True)
    best, runner_up = direct.iloc[0], direct.iloc[1]
    feats = {
        row.member: (CandidateId.parse(row.candidate).descriptor_hash, row.learner)
        for row in direct.head(2).itertuples()
    }
    preds = {}
    for member, (h, name) in feats.items():
        lr = get_learner(name)
        X_held = raw_features(held["smiles"].tolist(), res.target.specs[h])[0]
        preds[member] = lr.predict(lr.fit(res.target.features[h].astype(float), res.target.y_usable, 3), X_held)
    leaked_labels = preds[runner_up["member"]]
    test_mae = {m: float(np.abs(p - leaked_labels).mean()) for m, p in preds.items()}
    assert min(test_mae, key=test_mae.get) == runner_up["member"] != best["member"]  # a test score picks the runner-up
    assert best["cv_mae"] <= runner_up["cv_mae"]
    # ... the menu's direct option is the CV-best, and the chosen model holds no other direct member
    table = res.selection.table.set_index("option")
    assert table.loc["direct", "members"] == best["member"]
    chosen_direct = [m for m in res.selection.members if m.startswith("direct:")]
    allowed = [[], [best["member"]]]
    if "direct: mean of top 3" in table.index:  # the CV-best three, runner-up included by its CV rank, not its test
        allowed.append(table.loc["direct: mean of top 3", "members"].split(", "))
        assert set(allowed[-1]) == set(direct.head(3)["member"])
    assert chosen_direct in allowed


def test_nested_scores_and_interval_coverage_are_reported(menu_run):
    res, _, _ = menu_run
    nested = res.selection.nested
    assert {"chosen", "direct", "transfer"} <= set(nested)
    assert all(np.isfinite(v) for v in nested.values())
    run = json.loads((res.out_dir / "run.json").read_text())
    assert run["nested_cv_mae"] == pytest.approx(nested)
    spec = json.loads((res.out_dir / "model" / "model.json").read_text())
    interval = spec["interval"]
    assert interval["level"] == 0.9 and interval["halfwidth"] > 0
    assert 0.85 <= interval["oof_coverage"] <= 1.0
    report = (res.out_dir / "report.md").read_text()
    assert "nested CV MAE" in report and "90% interval" in report and "out-of-fold coverage" in report


def test_saved_options_oof_remake_the_choice_and_its_nested_score(menu_run):
    """options_oof.parquet holds every option's out-of-fold predictions with the folds: from it alone the final
    choice and its nested MAE come out as the run recorded them (so other choice rules can be judged on it)."""
    res, train, _ = menu_run
    frame = pd.read_parquet(res.out_dir / "options_oof.parquet")
    table = res.selection.table
    options = list(table["option"])
    assert list(frame.columns) == ["repeat", "row", "fold", "y", *options]
    n = len(train)
    assert sorted(zip(frame["repeat"], frame["row"])) == [(r, i) for r in range(2) for i in range(n)]
    oofs, y, folds = read_options_oof(frame)
    assert y == pytest.approx(res.target.y_usable) and folds.fold.shape == (2, n) and list(oofs) == options
    assert [cv_scores(oofs[o], y).mae for o in options] == pytest.approx(list(table["cv_mae"]))
    record = json.loads((res.out_dir / "run.json").read_text())
    rule = chooser(record["choice"]["reference"], record["choice"]["z"])
    assert rule(oofs, y) == record["chosen_option"]
    nested = cv_scores(fold_select_oof(oofs, y, folds, rule), y).mae
    assert nested == pytest.approx(record["nested_cv_mae"]["chosen"])


def test_predict_gives_an_interval_per_row(menu_run):
    res, _, held = menu_run
    inputs = held["smiles"].tolist() + ["not a smiles"]
    pred = predict_transfer(res.out_dir, inputs)
    assert list(pred.columns[:5]) == ["input", "prediction", "uncertainty", "lower_90", "upper_90"]
    ok = pred["prediction"].notna()
    assert ok.sum() == len(held) and not ok.iloc[-1]
    assert (pred.loc[ok, "lower_90"] < pred.loc[ok, "prediction"]).all()
    assert (pred.loc[ok, "prediction"] < pred.loc[ok, "upper_90"]).all()
    assert pred.loc[~ok, ["lower_90", "upper_90"]].isna().all().all()
    y = held["logSolubility"].to_numpy(float)
    inside = (y >= pred.loc[ok, "lower_90"].to_numpy()) & (y <= pred.loc[ok, "upper_90"].to_numpy())
    assert inside.mean() >= 0.7  # 40 unseen rows: about 90% expected
