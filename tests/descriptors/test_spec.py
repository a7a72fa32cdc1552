"""Descriptor specs: hashing, round trip, registry errors."""

from __future__ import annotations

import pytest

from matlib.descriptors import DescriptorSpec, get_featurizer, list_descriptors
from matlib.errors import MatlibError


def test_registered_names():
    names = {d["name"] for d in list_descriptors()}
    assert {"magpie", "xenonpy", "morgan", "maccs", "rdkit2d"} <= names
    kinds = {d["name"]: d["input_kind"] for d in list_descriptors()}
    assert kinds["magpie"] == kinds["xenonpy"] == "composition" and kinds["morgan"] == "molecule"


def test_hash_depends_on_full_params_not_spelling():
    a = DescriptorSpec("morgan")
    b = DescriptorSpec("morgan", {"radius": 2, "n_bits": 2048})  # the defaults, spelled out
    c = DescriptorSpec("morgan", {"radius": 3})
    assert a.hash == b.hash != c.hash and len(a.hash) == 16
    assert a.dirname == f"morgan-{a.hash}"
    assert len({a, b, c}) == 2  # usable as dict keys / in sets


def test_round_trip_and_coercion():
    spec = DescriptorSpec("xenonpy", {"stats": ["ave", "max"]})
    d = spec.to_dict()
    assert d["version"] >= 1 and d["hash"] == spec.hash
    assert DescriptorSpec.from_dict(d) == spec
    assert DescriptorSpec.coerce("magpie") == DescriptorSpec("magpie")
    assert get_featurizer(d).spec == spec and get_featurizer(spec).input_kind == "composition"


def test_stale_hash_is_refused():
    d = DescriptorSpec("magpie").to_dict()
    d["hash"] = "0" * 16
    with pytest.raises(MatlibError, match="stored hash"):
        DescriptorSpec.from_dict(d)


def test_unknown_name_and_param_are_one_line_errors():
    with pytest.raises(MatlibError, match="unknown descriptor 'soap'; known: concat, maccs, magpie"):
        DescriptorSpec("soap")
    with pytest.raises(MatlibError, match=r"unknown parameter\(s\) \['radios'\]"):
        DescriptorSpec("morgan", {"radios": 3})
    with pytest.raises(MatlibError, match="polymer_ends"):
        get_featurizer({"name": "morgan", "params": {"polymer_ends": "silicon"}})


def test_hash_follows_the_element_table(monkeypatch):
    from matlib.descriptors import compositional

    before = DescriptorSpec("magpie").hash
    monkeypatch.setattr(compositional, "table_sha256", lambda name: "another table")
    assert DescriptorSpec("magpie").hash != before  # regenerated tables never reuse stale cached features
