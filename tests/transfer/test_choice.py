"""The final choice (issue #17): the reference (the ensemble of the best options, else the averaged direct option,
else direct) unless another option beats it clearly."""

import numpy as np
import pytest

from matlib.transfer.choice import choose, ensemble_oof, merge_members, paired_gap
from matlib.transfer.cv import cv_scores, repeated_kfold
from matlib.transfer.select import select_model

N = 60


def _truth() -> np.ndarray:
    return np.random.default_rng(11).normal(size=N)


def _noisy(y: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """Out-of-fold predictions [1, n]: y plus Gaussian noise of the given size."""
    return (y + scale * np.random.default_rng(seed).normal(size=len(y)))[None, :]


def _lucky(y: np.ndarray, direct: np.ndarray) -> np.ndarray:
    """Direct's predictions plus a little noise, drawn until the CV MAE is slightly lower: a win by noise alone."""
    for seed in range(200):
        cand = direct + 0.2 * np.random.default_rng(100 + seed).normal(size=direct.shape)
        gap = paired_gap(cand, direct, y, 1.0)
        half = paired_gap(0.5 * (cand + direct), direct, y, 1.0)
        if -gap.se < gap.diff < -0.3 * gap.se and not half.clear:  # lower MAE than direct, by less than one SE
            return cand
    raise AssertionError("no lucky draw")


def test_a_transfer_option_that_wins_by_noise_only_is_not_chosen():
    y = _truth()
    folds = repeated_kfold(N, 5, 1, 0)
    direct = _noisy(y, 0.5, 1)
    lucky = _lucky(y, direct)
    pool = {"t0|ridge": lucky, "direct:x:h|ridge": direct}
    assert cv_scores(lucky, y).mae < cv_scores(direct, y).mae  # "lowest CV MAE" would take the transfer option
    old = select_model(pool, y, ["t0"], ["direct:x:h"], folds=folds, z=0.0, ensemble=0)
    assert old.option.startswith("transfer")
    sel = select_model(pool, y, ["t0"], ["direct:x:h"], folds=folds, ensemble=0)
    assert sel.option == "direct" and sel.members == ["direct:x:h|ridge"]
    gap = sel.choice["gaps"]["transfer: mean of top 1"]
    assert gap["paired_diff"] < 0 and not gap["clear"] and -gap["paired_diff"] < gap["paired_se"]
    assert sel.choice["reason"].startswith("direct: no option beats it")
    table = sel.table.set_index("option")
    assert table.loc["transfer: mean of top 1", "paired_diff"] == pytest.approx(gap["paired_diff"])


def test_a_transfer_option_that_wins_clearly_is_chosen_and_the_reason_is_recorded():
    y = _truth()
    folds = repeated_kfold(N, 5, 1, 0)
    direct, good = _noisy(y, 0.5, 1), _noisy(y, 0.2, 2)
    pool = {"t0|ridge": good, "direct:x:h|ridge": direct}
    sel = select_model(pool, y, ["t0"], ["direct:x:h"], folds=folds, ensemble=0)
    assert sel.option == "transfer: mean of top 1" and sel.members == ["t0|ridge"]
    gap = sel.choice["gaps"][sel.option]
    assert gap["clear"] and -gap["paired_diff"] > gap["paired_se"] > 0
    assert "beats direct by" in sel.choice["reason"]
    # the nested score of the whole procedure re-makes this choice without each held-out fold: never direct
    assert sel.nested["chosen"] < 0.6 * sel.nested["direct"]


def test_among_clear_winners_the_surest_gain_is_chosen():
    """An option a little better on every row gains less than a riskier one, but with far less spread."""
    y = _truth()
    direct = _noisy(y, 0.5, 1)
    err = direct - y
    rows = np.arange(N) % 2 == 0
    risky = y + np.where(rows, 0.0, 1.6 * err)  # perfect on half of the rows, 60% worse on the others
    steady = y + 0.85 * err  # 15% better on every row
    oofs = {"direct": direct, "risky": risky, "steady": steady}
    g_risky, g_steady = (paired_gap(oofs[k], direct, y) for k in ("risky", "steady"))
    assert g_risky.diff < g_steady.diff < 0 and g_risky.se > g_steady.se
    assert g_steady.bound > g_risky.bound > 0
    assert choose(oofs, y) == "steady"
    assert choose(oofs, y, z=0.0) == "risky"  # the lowest MAE
    assert choose({"risky": risky, "steady": steady}, y, reference="direct") == "risky"  # no reference: lowest MAE


def test_ensemble_picks_its_options_without_the_held_out_rows():
    """An option that is perfect on fold 0's held-out rows and poor elsewhere ranks second on all rows: an ensemble
    picked on all rows averages it; the nested one never does where fold 0 is scored."""
    y = _truth()
    folds = repeated_kfold(N, 4, 1, 0)
    a, b = _noisy(y, 0.3, 1), _noisy(y, 0.35, 2)
    leaky = _noisy(y, 0.42, 3)
    held0 = folds.fold[0] == 0
    leaky[0, held0] = y[held0]
    oofs = {"a": a, "b": b, "leaky": leaky}
    plain = ensemble_oof(oofs, y, 2)
    np.testing.assert_allclose(plain, 0.5 * (a + leaky))  # picked on every row, fold 0's included
    out = ensemble_oof(oofs, y, 2, folds)
    np.testing.assert_allclose(out[0, held0], 0.5 * (a + b)[0, held0])
    assert cv_scores(out, y).mae > cv_scores(plain, y).mae  # seeing every row: optimistic


def test_ensemble_of_the_best_options_is_on_the_menu_and_wins_with_independent_errors():
    y = _truth()
    folds = repeated_kfold(N, 5, 1, 0)
    pool = {"direct:x:h|ridge": _noisy(y, 0.5, 1), "t0|ridge": _noisy(y, 0.5, 2), "t1|ridge": _noisy(y, 0.5, 3)}
    alts = {"transfer: source": {"s|ridge": _noisy(y, 0.5, 4)}, "transfer: stack": {"st|gp": _noisy(y, 3.0, 5)}}
    sel = select_model(pool, y, ["t0", "t1"], ["direct:x:h"], size=1, folds=folds, alternatives=alts)
    assert sel.option == "ensemble: top 3 options" and sel.choice["reference"] == sel.option
    assert "st|gp" not in sel.members and sum(sel.weights) == pytest.approx(1.0)
    row = sel.table.set_index("option").loc[sel.option]
    assert row["cv_mae"] >= row["cv_mae_members"]  # nested vs the options picked on every row
    gap = sel.choice["gaps"]["direct"]  # direct against the ensemble: worse by more than one paired SE
    assert not gap["clear"] and gap["paired_diff"] > gap["paired_se"]
    assert sel.nested["chosen"] < sel.nested["direct"]


def test_an_option_far_better_than_the_others_beats_the_ensemble_reference():
    """A transfer option with a fifth of the others' noise: the ensemble averages it with two worse options, so it
    beats the ensemble (the reference) by many paired SEs and is chosen; the reason names the ensemble."""
    y = _truth()
    folds = repeated_kfold(N, 5, 1, 0)
    pool = {"direct:x:h|ridge": _noisy(y, 0.5, 1), "t0|ridge": _noisy(y, 0.1, 2), "t1|ridge": _noisy(y, 0.5, 3)}
    alts = {"transfer: source": {"s|ridge": _noisy(y, 0.5, 4)}}
    sel = select_model(pool, y, ["t0", "t1"], ["direct:x:h"], size=1, folds=folds, alternatives=alts)
    assert sel.choice["reference"] == "ensemble: top 3 options"
    assert sel.option == "transfer: mean of top 1" and sel.members == ["t0|ridge"]
    assert sel.choice["gaps"][sel.option]["clear"]
    assert sel.choice["reason"].startswith("transfer: mean of top 1: beats ensemble: top 3 options by")


def test_merge_members_sums_a_member_shared_by_two_options():
    members, weights = merge_members([(["a", "d"], [0.5, 0.5]), (["d"], [1.0])], 0.5)
    assert members == ["a", "d"] and weights == pytest.approx([0.25, 0.75])


def test_mean_of_the_best_direct_learners_is_picked_by_cv_without_the_held_out_rows():
    """Four direct (descriptor, learner) pairs with independent errors, one of them perfect exactly on fold 0's
    held-out rows: the averaged direct option re-picks its three inside each fold, so that leak never predicts
    fold 0; it is the reference of the final choice, and the single best pair does not beat it."""
    y = _truth()
    folds = repeated_kfold(N, 4, 1, 0)
    leaky = _noisy(y, 0.6, 4)
    held0 = folds.fold[0] == 0
    leaky[0, held0] = y[held0]
    pool = {"d:a|ridge": _noisy(y, 0.5, 1), "d:a|rf": _noisy(y, 0.5, 2), "d:b|gp": _noisy(y, 0.55, 3)}
    pool["d:b|ridge"] = leaky
    sel = select_model(pool, y, [], ["d:a", "d:b"], folds=folds, ensemble=0)
    name = "direct: mean of top 3"
    assert sel.option == name and sel.choice["reference"] == name and name not in sel.choice["gaps"]
    assert not sel.choice["gaps"]["direct"]["clear"] and sel.choice["gaps"]["direct"]["paired_diff"] > 0
    assert sel.choice["reason"].startswith(f"{name}: no option beats it")
    assert len(sel.members) == 3 and sum(sel.weights) == pytest.approx(1.0)
    row = sel.table.set_index("option").loc[name]
    oof = ensemble_oof(pool, y, 3, folds)
    assert row["cv_mae"] == pytest.approx(cv_scores(oof, y).mae)
    fair = np.mean([pool[k] for k in ("d:a|ridge", "d:a|rf", "d:b|gp")], axis=0)
    np.testing.assert_allclose(oof[0, held0], fair[0, held0])  # the leak is not among fold 0's three
    assert row["cv_mae"] > row["cv_mae_members"]  # picked on every row (leak included): optimistic
    assert sel.nested["chosen"] < sel.nested["direct"]
    off = select_model(pool, y, [], ["d:a", "d:b"], folds=folds, ensemble=0, direct_mean=0)
    assert name not in set(off.table["option"])


def test_a_single_direct_pair_far_better_than_the_rest_beats_the_averaged_reference():
    """One direct pair with a third of the others' noise: the average of the best three is worse than it by many
    paired SEs, so the single pair is chosen over the reference, and the reason names the reference."""
    y = _truth()
    folds = repeated_kfold(N, 5, 1, 0)
    pool = {"d:a|ridge": _noisy(y, 0.15, 1), "d:a|rf": _noisy(y, 0.6, 2), "d:b|gp": _noisy(y, 0.6, 3)}
    pool["d:b|ridge"] = _noisy(y, 0.6, 4)
    sel = select_model(pool, y, [], ["d:a", "d:b"], folds=folds, ensemble=0)
    assert sel.choice["reference"] == "direct: mean of top 3"
    assert sel.option == "direct" and sel.members == ["d:a|ridge"]
    assert sel.choice["gaps"]["direct"]["clear"]
    assert sel.choice["reason"].startswith("direct: beats direct: mean of top 3 by")
    few = select_model({k: pool[k] for k in ("d:a|ridge", "d:a|rf")}, y, [], ["d:a"], folds=folds, ensemble=0)
    assert few.choice["reference"] == "direct" and few.option == "direct"  # no averaged option: the single pair
