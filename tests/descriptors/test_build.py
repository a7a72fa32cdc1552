"""Dask -> Parquet descriptor tables: cache, incremental refresh, quarantine, real LocalCluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from matlib.datasets import commit_version
from matlib.descriptors import DescriptorSpec, build_descriptors, get_featurizer, load_descriptors
from matlib.descriptors.build import build_info, plan_build
from matlib.errors import MatlibError
from matlib.store import Store


@pytest.fixture()
def store(tmp_path) -> Store:
    return Store(tmp_path / "home")


def _with_bad_rows(records: pd.DataFrame) -> pd.DataFrame:
    rec = records.copy()
    rec.loc[3, "input"] = "AmO2"  # a valid formula whose element has no xenonpy data
    return rec


def test_build_load_and_quarantine(store, mp_records):
    ds = commit_version(store, "mp_e", _with_bad_rows(mp_records), "test")
    path = build_descriptors(store, "mp_e", "xenonpy", partition_rows=700, progress=False)
    spec = DescriptorSpec("xenonpy")
    assert path == store.descriptors() / spec.dirname / ds.version
    assert len(list(path.glob("part-*.parquet"))) == 3  # 2,000 rows in batches of 700
    info = build_info(path)
    assert (info["n_rows"], info["n_computed"], info["n_reused"], info["n_failed"]) == (2000, 2000, 0, 1)
    q = pd.read_parquet(path / "quarantine.parquet")
    assert q["record_id"].tolist() == ["mp-00003"] and "Am" in q["reason"].iloc[0] and q["value"].iloc[0] == "AmO2"
    ids, X = load_descriptors(store, "mp_e", "xenonpy")
    assert len(ids) == 1999 and "mp-00003" not in set(ids) and X.dtype == np.float32 and np.isfinite(X).all()
    ids_all, X_all = load_descriptors(store, f"mp_e@{ds.version}", spec, drop_failed=False)
    assert len(ids_all) == 2000 and np.isnan(X_all[list(ids_all).index("mp-00003")]).all()
    # the table equals featurising the same inputs directly
    order = ds.records.set_index("record_id").loc[ids, "input"].tolist()
    np.testing.assert_array_equal(X, get_featurizer(spec).featurize(order).X)
    assert (path / "spec.json").exists() and (path.parent / "spec.json").exists()
    assert info["feature_names"] == get_featurizer(spec).feature_names and info["n_features"] == X.shape[1]
    schema = pq.read_schema(next(path.glob("part-*.parquet")))
    assert schema.names == ["record_id", "input", "features"] and schema.field("features").type.list_size == 295


def test_second_build_computes_nothing(store, mp_records):
    commit_version(store, "mp_e", mp_records.head(500), "test")
    p1 = build_descriptors(store, "mp_e", "magpie", progress=False)
    mtimes = {p.name: p.stat().st_mtime_ns for p in p1.iterdir()}
    plan = plan_build(store, "mp_e", "magpie")
    assert plan.cached and plan.n_batches == 0 and plan.stage_dir is None
    p2 = build_descriptors(store, "mp_e", "magpie", progress=False)
    assert p1 == p2 and {p.name: p.stat().st_mtime_ns for p in p2.iterdir()} == mtimes
    assert not list(p1.parent.glob(".*staging*"))


def test_a_build_interrupted_after_some_batches_resumes_them(store, mp_records):
    """A crash mid-build leaves the staging folder: the next build keeps its finished batches and equals a
    build that was never interrupted."""
    from matlib.descriptors.build import compute_batch

    commit_version(store, "mp_e", _with_bad_rows(mp_records), "test")
    plan = plan_build(store, "mp_e", "magpie", partition_rows=700)
    compute_batch(plan, 0)
    half = plan.stage() / "part-c-00001.parquet.tmp"
    half.write_bytes(b"PAR1 cut short")  # a part the crash was writing
    first = plan.stage() / "part-c-00000.parquet"
    mtime = first.stat().st_mtime_ns
    again = plan_build(store, "mp_e", "magpie", partition_rows=700)
    assert again.stage_dir == plan.stage_dir and again.n_batches == 3
    path = build_descriptors(store, "mp_e", "magpie", partition_rows=700, progress=False)
    assert first.name in {p.name for p in path.iterdir()} and (path / first.name).stat().st_mtime_ns == mtime
    assert not list(path.glob("*.tmp")) and not list(path.parent.glob(".*staging*"))
    ids, X = load_descriptors(store, "mp_e", "magpie", drop_failed=False)
    fresh = Store(store.root.parent / "fresh")
    commit_version(fresh, "mp_e", _with_bad_rows(mp_records), "test")
    build_descriptors(fresh, "mp_e", "magpie", partition_rows=700, progress=False)
    ids2, X2 = load_descriptors(fresh, "mp_e", "magpie", drop_failed=False)
    assert list(ids) == list(ids2)
    np.testing.assert_array_equal(X, X2)
    assert build_info(path)["n_computed"] == 2000


def test_refresh_computes_only_changed_rows(store, mp_records):
    commit_version(store, "mp_e", _with_bad_rows(mp_records), "test")
    build_descriptors(store, "mp_e", "xenonpy", progress=False)
    rec = _with_bad_rows(mp_records)
    rec.loc[10, "input"] = "Fe2O3"  # changed input
    rec.loc[11, "e_form"] = 9.0  # changed property only: its features are reused
    rec = rec.drop(index=[20, 21])  # removed
    added = pd.DataFrame(
        {"record_id": ["new-1", "new-2"], "input": ["NaCl", "Bk2O3"], "kind": "composition", "e_form": [0.5, 0.1]}
    )
    ds2 = commit_version(store, "mp_e", pd.concat([rec, added], ignore_index=True), "test")
    assert ds2.diff == {"added": 2, "changed": 2, "removed": 2}
    path = build_descriptors(store, "mp_e", "xenonpy", progress=False)
    info = build_info(path)
    assert info["parent"] == ds2.manifest["parent"]
    assert (info["n_rows"], info["n_computed"], info["n_reused"], info["n_failed"]) == (2000, 3, 1997, 2)
    q = pd.read_parquet(path / "quarantine.parquet")
    assert sorted(q["record_id"]) == ["mp-00003", "new-2"]  # the parent's failed row keeps its reason
    ids, X = load_descriptors(store, "mp_e", "xenonpy")
    order = ds2.records.set_index("record_id").loc[ids, "input"].tolist()
    np.testing.assert_array_equal(X, get_featurizer("xenonpy").featurize(order).X)


def test_molecules_kind_mismatch_and_polymers(store, polymer_smiles):
    rec = pd.DataFrame(
        {
            "record_id": [f"p{i:03d}" for i in range(60)],
            "input": polymer_smiles[:60],
            "kind": "molecule",
            "y": np.arange(60, dtype="float64"),
        }
    )
    commit_version(store, "poly", rec, "test")
    path = build_descriptors(store, "poly", DescriptorSpec("morgan", {"n_bits": 256}), progress=False)
    assert build_info(path)["n_failed"] == 0
    ids, X = load_descriptors(store, "poly", {"name": "morgan", "params": {"n_bits": 256}})
    assert X.shape == (60, 256) and X.sum() > 0
    path2 = build_descriptors(store, "poly", "magpie", progress=False)  # molecules cannot use magpie
    q = pd.read_parquet(path2 / "quarantine.parquet")
    assert len(q) == 60 and q["reason"].iloc[0] == "kind 'molecule' cannot use composition descriptor 'magpie'"


def test_not_built_and_unknown_dataset_are_clear_errors(store, mp_records):
    with pytest.raises(MatlibError, match="not found"):
        build_descriptors(store, "nope", "magpie", progress=False)
    commit_version(store, "mp_e", mp_records.head(10), "test")
    with pytest.raises(MatlibError, match="are not built; run `matlib descriptors build"):
        load_descriptors(store, "mp_e", "magpie")


def test_build_on_a_real_dask_local_cluster(store, mp_records, qm9_smiles):
    from distributed import Client, LocalCluster

    commit_version(store, "mp_e", mp_records, "test")
    rec = pd.DataFrame(
        {
            "record_id": [f"q{i:03d}" for i in range(200)],
            "input": qm9_smiles[:200],
            "kind": "molecule",
            "y": np.zeros(200),
        }
    )
    commit_version(store, "qm9s", rec, "test")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        p = build_descriptors(store, "mp_e", "magpie", client=client, partition_rows=400, progress=False)
        pm = build_descriptors(store, "qm9s", "maccs", client=client, partition_rows=50, progress=False)
        workers = set(client.scheduler_info()["workers"])
    assert len(workers) == 2
    assert len(list(p.glob("part-c-*.parquet"))) == 5 and build_info(p)["n_failed"] == 0
    assert len(list(pm.glob("part-c-*.parquet"))) == 4
    ids, X = load_descriptors(store, "mp_e", "magpie")
    order = pd.Series(mp_records["input"].to_numpy(), index=mp_records["record_id"]).loc[ids].tolist()
    np.testing.assert_array_equal(X, get_featurizer("magpie").featurize(order).X)
