import json

import pytest

from matlib.errors import ValidationError
from matlib.models import bucket_key, padded_arch, sample_architecture


def test_sample_is_reproducible_plain_json_and_in_space():
    a = sample_architecture(132, seed=7)
    assert a == sample_architecture(132, seed=7)
    assert json.loads(json.dumps(a)) == a
    assert 1 <= len(a["hidden"]) <= 5 and a["n_out"] == 1 and a["n_in"] == 132
    assert all(4 <= w <= 132 for w in a["hidden"])


def test_samples_vary_and_are_usually_decreasing():
    archs = [sample_architecture(200, s) for s in range(300)]
    assert len({json.dumps(a, sort_keys=True) for a in archs}) > 250
    assert {len(a["hidden"]) for a in archs} == {1, 2, 3, 4, 5}
    assert len({a["activation"] for a in archs}) >= 4
    multi = [a for a in archs if len(a["hidden"]) > 1]
    decreasing = sum(a["hidden"] == sorted(a["hidden"], reverse=True) for a in multi)
    assert decreasing / len(multi) > 0.8
    fractions = [w / 200 for a in archs for w in a["hidden"]]
    assert 0.18 <= min(fractions) and max(fractions) <= 1.02


def canonical(arch: dict) -> str:
    return json.dumps(arch, sort_keys=True)


def test_family_shares_one_shape_by_default():
    fam = [sample_architecture(100, s, family_seed=3) for s in range(20)]
    assert len({canonical(a) for a in fam}) == 1  # identical shapes: a bucket with no padding


def test_family_with_jitter_shares_everything_but_widths():
    fam = [sample_architecture(100, s, {"family_jitter": 0.15}, family_seed=3) for s in range(20)]
    assert len({bucket_key(a) for a in fam}) == 1
    assert len({tuple(a["hidden"]) for a in fam}) > 5
    assert padded_arch(fam)["hidden"] == [max(w) for w in zip(*(a["hidden"] for a in fam))]
    assert all(h % 16 == 0 for h in padded_arch(fam, align=16)["hidden"])


def test_space_overrides_and_bad_keys():
    a = sample_architecture(50, 1, {"n_layers": [2, 2], "activation": ["tanh"], "batchnorm": [True]})
    assert len(a["hidden"]) == 2 and a["activation"] == "tanh" and a["batchnorm"] is True
    with pytest.raises(ValidationError, match="unknown key 'widths'"):
        sample_architecture(50, 1, {"widths": [3]})
    with pytest.raises(ValidationError, match="unknown activation"):
        sample_architecture(50, 1, {"activation": ["swishy"]})
