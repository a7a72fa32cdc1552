"""Conformal interval settings and the extrapolation fold scheme."""

import numpy as np
import pytest

from matlib.errors import MatlibError
from matlib.transfer.cv import make_folds, sorted_kfold
from matlib.transfer.intervals import calibrate, column_names, conformal_quantile, interval_frame
from tests.transfer.conftest import esol_rows


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1, 20, dtype=float)  # 19 scores: rank ceil(20 * 0.9) = 18
    assert conformal_quantile(scores, 0.9) == 18.0
    assert conformal_quantile(np.array([1.0, 2.0]), 0.9) == 2.0  # fewer rows than the level needs: the largest


def test_calibration_on_real_residuals_covers_the_level():
    y = esol_rows(200)["logSolubility"].to_numpy(float)
    rng = np.random.default_rng(0)
    oof = y[None, :] + rng.standard_normal((2, len(y))) * 0.7
    sd = np.full_like(oof, 0.7)
    plain, scaled = calibrate(y, oof), calibrate(y, oof, sd)
    assert 0.9 <= plain["oof_coverage"] <= 0.93 and plain["halfwidth"] > 0
    assert scaled["scale"] == pytest.approx(plain["halfwidth"] / 0.7)
    frame = interval_frame(np.array([0.0, np.nan]), scaled, sd=np.array([1.0, 1.0]))
    assert list(frame.columns) == list(column_names(0.9)) == ["lower_90", "upper_90"]
    assert frame.iloc[0, 1] == pytest.approx(scaled["scale"]) and frame.iloc[1].isna().all()
    assert interval_frame(np.array([1.0]), plain).iloc[0, 0] == pytest.approx(1.0 - plain["halfwidth"])


def test_extrapolation_folds_are_blocks_of_the_sorted_target():
    y = esol_rows(53)["logSolubility"].to_numpy(float)
    folds = sorted_kfold(y, 5)
    assert folds.repeats == 1 and sorted(np.bincount(folds.fold[0]).tolist()) == [10, 10, 11, 11, 11]
    splits = folds.first_repeat()
    for (_, a), (_, b) in zip(splits, splits[1:]):
        assert y[a].max() <= y[b].min()
    assert (make_folds(y, 5, 3, 0, "extrapolation").fold == folds.fold).all()
    assert make_folds(y, 5, 3, 0).repeats == 3
    with pytest.raises(MatlibError, match="unknown CV scheme"):
        make_folds(y, 5, 3, 0, "sideways")
