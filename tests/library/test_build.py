"""Build from config: planning, skip-finished reruns (the sealed library left in place), rebuild of one lost shard,
config errors."""

import os
from pathlib import Path

import pandas as pd
import pytest

from matlib.errors import ValidationError
from matlib.library import Library, build_library
from matlib.library.build import prepare_and_plan
from matlib.library.config import GNNGroup, MLPGroup, load_config
from matlib.store import Store


def test_rerun_skips_finished_and_rebuilds_only_a_lost_shard(built_library, make_config):
    root, path = built_library
    store = Store(root)
    cfg = make_config("small")
    before = {p.name: p.stat().st_mtime_ns for p in (path / "shards").glob("*.safetensors")}
    files = ("manifest.json", "catalog.parquet")
    sealed = {f: ((path / f).stat().st_ino, (path / f).stat().st_mtime_ns) for f in files}
    _, jobs = prepare_and_plan(store, cfg)
    assert len(jobs) == 3 and sum(len(j.models) for j in jobs) == 24
    build_library(store, cfg)
    assert {p.name: p.stat().st_mtime_ns for p in (path / "shards").glob("*.safetensors")} == before
    # nothing new: the manifest and catalog are left in place, so a fit reading the library never sees it unsealed
    assert {f: ((path / f).stat().st_ino, (path / f).stat().st_mtime_ns) for f in sealed} == sealed
    lost = sorted(before)[0]
    os.remove(path / "shards" / lost)
    cat_before = Library(path).catalog
    build_library(store, cfg)
    after = {p.name: p.stat().st_mtime_ns for p in (path / "shards").glob("*.safetensors")}
    assert set(after) == set(before)
    assert [n for n in after if after[n] != before[n]] == [lost]
    pd.testing.assert_frame_equal(Library(path).catalog, cat_before)  # deterministic retraining


def test_shards_run_largest_first_by_estimated_work(built_library, make_config):
    from matlib.library.plan import largest_first

    _, jobs = prepare_and_plan(Store(built_library[0]), make_config("small"))
    assert all(j.n_rows > 0 for j in jobs)
    for j in jobs:  # rows x the weights of every model (n_in -> hidden -> 1)
        weights = [
            sum(a * b for a, b in zip(w[:-1], w[1:]))
            for w in ([m.arch["n_in"], *m.arch["hidden"], 1] for m in j.models)
        ]
        assert j.cost() == j.n_rows * sum(weights)
    ordered = largest_first(jobs)
    assert sorted(jobs, key=lambda j: j.shard) == sorted(ordered, key=lambda j: j.shard)
    costs = [j.cost() for j in ordered]
    assert costs == sorted(costs, reverse=True) and costs[0] > costs[-1]


def test_families_share_a_bucket(built_library):
    lib = Library(built_library[1])
    for shard in lib.iter_shards():
        archs = [__import__("json").loads(a) for a in shard.rows["arch"]]
        assert len({(len(a["hidden"]), a["activation"], a["dropout"], a["batchnorm"]) for a in archs}) == 1


def test_config_errors_are_one_line(tmp_path, make_config):
    with pytest.raises(ValidationError, match="unknown keys \\['colour'\\]"):
        load_config(
            {"name": "x", "groups": [{"dataset": "d", "descriptors": "magpie", "properties": "p"}], "colour": 1}
        )
    with pytest.raises(ValidationError, match="missing required key 'properties'"):
        load_config({"name": "x", "groups": [{"dataset": "d", "descriptors": "magpie"}]})
    with pytest.raises(ValidationError, match="training config: unknown keys \\['epoch'\\]"):
        load_config(
            {
                "name": "x",
                "training": {"epoch": 3},
                "groups": [{"dataset": "d", "descriptors": "magpie", "properties": "p"}],
            }
        )
    group = {"dataset": "d", "descriptors": "magpie", "properties": "p"}
    with pytest.raises(ValidationError, match=r"groups\[0\]: models_per_property must be an integer, got 'many'"):
        load_config({"name": "x", "groups": [{**group, "models_per_property": "many"}]})
    with pytest.raises(ValidationError, match=r"groups\[0\]\.import: missing required key 'input_column'"):
        load_config({"name": "x", "groups": [{**group, "import": {"file": "t.csv"}}]})
    table = {"file": "t.csv", "input_column": "f", "target_columns": ["p"], "sample_rows": "lots"}
    with pytest.raises(ValidationError, match=r"groups\[0\]\.import: sample_rows: Input should be a valid integer"):
        load_config({"name": "x", "groups": [{**group, "import": table}]})
    bad = make_config("bad")
    bad["groups"][0]["properties"] = ["band_gap"]
    with pytest.raises(ValidationError, match="has no property 'band_gap'"):
        build_library(Store(tmp_path), bad)


def test_shipped_configs_are_valid(repo_root):
    small = load_config(repo_root / "configs" / "library-small.yaml")
    full = load_config(repo_root / "configs" / "library-full.yaml")
    n_small = sum(n_models(g) for g in small.groups)
    n_full = sum(n_models(g) for g in full.groups)
    assert 500 <= n_small <= 5000 and n_full >= 50000
    assert 20 <= sum(n_models(g) for g in small.groups if g.model == "gnn") <= 100  # a few dozen GNNs
    for g in small.groups:  # the small config builds from the repository's own files
        if g.import_:  # a group without one uses a dataset an earlier group imported
            assert Path(g.import_.file).is_relative_to(repo_root / "data" / "samples"), g.import_.file
    crawled = {"qm9", "mp", "oqmd", "aflow"}
    for name in ("library-full.yaml", "library-weekly.yaml"):  # crawled datasets only, no local files
        groups = load_config(repo_root / "configs" / name).groups
        assert all(g.import_ is None and g.dataset in crawled for g in groups), name


def n_models(group: MLPGroup | GNNGroup) -> int:
    """Models a normalised config group trains (a multi-task GNN covers all its properties at once)."""
    if isinstance(group, GNNGroup):
        return group.models_per_property * (1 if group.multi_task else len(group.properties))
    return group.models_per_property * len(group.properties) * len(group.descriptors)
