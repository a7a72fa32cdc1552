"""The final-model menu: a fixed-size average of the top screened candidates, the best direct learner, or both."""

import numpy as np
import pytest

from matlib.transfer.cv import cv_scores
from matlib.transfer.select import best_learner_key, select_model


def _pool(y: np.ndarray, noise: dict[str, float], seed: int = 0) -> dict[str, np.ndarray]:
    """Out-of-fold predictions [repeats=2, n] per key: y plus noise of the given size."""
    rng = np.random.default_rng(seed)
    return {k: y[None, :] + s * rng.standard_normal((2, len(y))) for k, s in noise.items()}


def test_transfer_ensemble_is_the_top_of_the_ranking_each_with_its_best_learner():
    y = np.linspace(-2, 2, 40)
    # rank order t0, t1, t2, t3; t3 has the best CV but is fourth in the ranking: not in a size-3 ensemble
    pool = _pool(y, {"t0|ridge": 0.5, "t0|rf": 0.3, "t1|ridge": 0.4, "t2|ridge": 0.6, "t2|rf": 0.9, "t3|ridge": 0.1})
    assert best_learner_key(pool, y, "t0") == "t0|rf"
    sel = select_model(pool, y, ["t0", "t1", "t2", "t3"], [], size=3)
    assert sel.members == ["t0|rf", "t1|ridge", "t2|ridge"]
    np.testing.assert_allclose(sel.weights, [1 / 3] * 3)
    want = cv_scores(np.mean([pool[k] for k in sel.members], axis=0), y)
    assert sel.cv.mae == pytest.approx(want.mae)
    assert list(sel.table["option"]) == ["transfer: mean of top 3"] and sel.option == "transfer: mean of top 3"


def test_menu_picks_the_lowest_cv_option_and_weights_sum_to_one():
    y = np.linspace(-2, 2, 40)
    pool = _pool(y, {"t0|ridge": 2.0, "t1|ridge": 2.0, "d:rdkit2d|ridge": 0.1, "d:rdkit2d|rf": 0.5})
    sel = select_model(pool, y, ["t0", "t1"], ["d:rdkit2d"], size=10)
    assert sel.option == "direct" and sel.members == ["d:rdkit2d|ridge"] and sel.weights == [1.0]
    assert list(sel.table["option"]) == ["transfer: mean of top 2", "direct", "transfer + direct"]
    # two equally good, independent sources: their half-and-half average beats either
    pool = _pool(y, {"t0|ridge": 0.5, "d:rdkit2d|ridge": 0.5}, seed=1)
    sel = select_model(pool, y, ["t0"], ["d:rdkit2d"], size=10)
    assert sel.members == ["t0|ridge", "d:rdkit2d|ridge"] and sel.weights == [0.5, 0.5]
    assert sel.cv.mae < min(cv_scores(v, y).mae for v in pool.values())
    assert sum(sel.weights) == pytest.approx(1.0)


def test_empty_pool_is_an_error():
    with pytest.raises(ValueError, match="empty selection pool"):
        select_model({}, np.zeros(3), [], [])


def test_nested_transfer_predictions_replace_the_members_own_cv():
    """Members that look perfect by their own CV lose to direct learning once scored by the nested search."""
    y = np.linspace(-2, 2, 40)
    pool = _pool(y, {"t0|ridge": 0.05, "t1|ridge": 0.05, "d:rdkit2d|ridge": 0.5})
    honest = y[None, :] + 2.0 * np.random.default_rng(3).standard_normal((1, len(y)))
    assert select_model(pool, y, ["t0", "t1"], ["d:rdkit2d"]).option.startswith("transfer")
    sel = select_model(pool, y, ["t0", "t1"], ["d:rdkit2d"], transfer_oof=honest)
    assert sel.option == "direct"
    row = sel.table.set_index("option").loc["transfer: mean of top 2"]
    assert row["cv_mae"] == pytest.approx(cv_scores(honest, y).mae)
    assert row["cv_mae_members"] < 0.1


def test_fold_select_never_lets_a_held_out_row_pick_its_predictor():
    """An alternative that is perfect on fold 0's held-out rows but poor elsewhere: a choice that saw those rows
    would take it for fold 0; the nested choice does not, and its score shows the honest error."""
    from matlib.transfer.cv import repeated_kfold
    from matlib.transfer.select import fold_select_oof

    y = np.linspace(-2, 2, 40)
    folds = repeated_kfold(len(y), 4, 1, seed=0)
    rng = np.random.default_rng(0)
    steady = y[None, :] + 0.3 * rng.standard_normal((1, 40))
    leaky = y[None, :] + 1.5 * rng.standard_normal((1, 40))
    held0 = folds.fold[0] == 0
    leaky[0, held0] = y[held0]  # perfect exactly where fold 0 is scored
    out = fold_select_oof({"leaky": leaky, "steady": steady}, y, folds)
    np.testing.assert_array_equal(out, steady)  # every fold, fold 0 included, goes to the steady alternative
    # the direct option is scored with that nested choice, its members' own (optimistic) CV kept beside it
    pool = {"d:a|ridge": steady, "d:b|ridge": leaky}
    sel = select_model(pool, y, [], ["d:a", "d:b"], folds=folds)
    row = sel.table.set_index("option").loc["direct"]
    assert row["cv_mae"] == pytest.approx(cv_scores(steady, y).mae)
    assert sel.nested["direct"] == pytest.approx(row["cv_mae"]) and sel.nested["chosen"] == pytest.approx(row["cv_mae"])
