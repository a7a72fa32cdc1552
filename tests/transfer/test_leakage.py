"""Leakage guard: models trained on the target's own data / property / inputs are flagged and left out."""

import pandas as pd

from matlib.library import Library
from matlib.transfer import fit_transfer
from matlib.transfer.fit import StagedRun
from matlib.transfer.leakage import canonical_input
from tests.fixtures import TEST_DATA


def test_canonical_keys():
    assert canonical_input("OC", "molecule") == canonical_input("CO", "molecule")
    assert canonical_input("Fe2O3", "composition") == canonical_input("O3Fe2", "composition")
    assert canonical_input("Fe4O6", "composition") == canonical_input("Fe2O3", "composition")
    assert canonical_input("C1CC((", "molecule") is None


def _trained_rows(library) -> pd.DataFrame:
    """The QM9 sample's rows (smiles + properties) that every QM9 model of the library trained on."""
    from matlib.datasets import load_dataset
    from matlib.library.plan import trained_ids_path
    from matlib.store import Store

    ids = None
    for table in sorted((library / "data").glob("*maccs*.safetensors")):
        these = set(pd.read_parquet(trained_ids_path(table))["record_id"])
        ids = these if ids is None else ids & these
    records = load_dataset(Store(library.parent.parent), "qm9_sample").records
    rows = records[records["record_id"].astype(str).isin(ids)].rename(columns={"input": "smiles"})
    assert len(rows) >= 30
    return rows.sort_values("record_id")


def test_same_data_and_overlap_flagged(small_library, tmp_path):
    # target = rows the QM9 models were trained on (in both properties' 400-row slices), with their own HOMO-LUMO
    # gap values, renamed column
    qm9 = _trained_rows(small_library).head(30)
    res = fit_transfer(
        small_library,
        qm9["smiles"].tolist(),
        qm9["HOMO_LUMO_gap_au"].tolist(),
        tmp_path / "leak",
        target_column="gap",
        top_k=2,
        repeats=1,
        folds=4,
        learners=("ridge",),
        direct_learners=("ridge",),
    )
    tr = res.ranking[res.ranking["kind"] == "transfer"]
    assert tr["leak"].all()
    lib = Library(small_library).catalog.set_index("model_id")
    gap = tr[tr["model_id"].map(lib["property"]) == "HOMO_LUMO_gap_au"]
    assert gap["leak_reason"].str.contains("own values").all()
    assert tr["leak_reason"].str.contains("trained on 30 of the target's 30 inputs").all()
    assert (res.refined["kind"] == "direct").all()  # nothing flagged reaches refinement
    assert any("leakage guard" in n for n in res.notes)
    # explicitly allowing leakage keeps them
    res2 = fit_transfer(
        small_library,
        qm9["smiles"].tolist(),
        qm9["HOMO_LUMO_gap_au"].tolist(),
        tmp_path / "allow",
        target_column="gap",
        top_k=2,
        repeats=1,
        folds=4,
        allow_leakage=True,
        learners=("ridge",),
        direct_learners=("ridge",),
    )
    assert (res2.refined["kind"] == "transfer").any()


def _esol_transfer_rows(library, out, **extra) -> pd.DataFrame:
    """The transfer rows of the ranking of a fit on 30 real ESOL molecules (input overlap allowed)."""
    esol = pd.read_csv(TEST_DATA / "targets" / "esol.csv").head(30)
    res = fit_transfer(
        library,
        esol["smiles"].tolist(),
        esol["logSolubility"].tolist(),
        out,
        top_k=1,
        repeats=1,
        folds=4,
        max_overlap=1.0,
        learners=("ridge",),
        direct_learners=("ridge",),
        **extra,
    )
    return res.ranking[res.ranking["kind"] == "transfer"]


def test_same_property_name_flagged(small_library, tmp_path):
    tr = _esol_transfer_rows(small_library, tmp_path / "p", target_column="Polarizability_bohr3")
    lib = Library(small_library).catalog.set_index("model_id")
    pol = tr["model_id"].map(lib["property"]) == "Polarizability_bohr3"
    assert tr.loc[pol, "leak"].all() and not tr.loc[~pol, "leak"].any()
    assert tr.loc[pol, "leak_reason"].str.contains("same property").all()


def test_every_named_target_dataset_is_left_out(small_library, tmp_path):
    """Several library datasets can hold the target's property (the same property from two codes): all are left out."""
    both = _esol_transfer_rows(small_library, tmp_path / "both", target_dataset=["mp_gap_sample", "qm9_sample"])
    assert both["leak"].all() and both["leak_reason"].str.contains("same dataset 'qm9_sample'").all()
    assert StagedRun.load(tmp_path / "both" / "stage").cfg.target_dataset == ("mp_gap_sample", "qm9_sample")
    other = _esol_transfer_rows(small_library, tmp_path / "other", target_dataset="mp_gap_sample")
    assert len(other) == len(both) and not other["leak"].any()  # the QM9 models of another dataset stay


def _qm9_fit(library, out, source=None, **extra):
    qm9 = _trained_rows(source or library).head(30)
    return fit_transfer(
        library,
        qm9["smiles"].tolist(),
        qm9["HOMO_LUMO_gap_au"].tolist(),
        out,
        target_column="gap",
        top_k=2,
        repeats=1,
        folds=4,
        learners=("ridge",),
        direct_learners=("ridge",),
        report=False,
        **extra,
    )


def _pulled(small_library, tmp_path, keep_sources: bool = True):
    """A copy of the library far from its store (as after `scp` or a download), optionally without fingerprints."""
    import json
    import shutil

    lib = shutil.copytree(small_library, tmp_path / "downloads" / "lib")
    if not keep_sources:
        m = json.loads((lib / "manifest.json").read_text())
        m.pop("sources", None)
        (lib / "manifest.json").write_text(json.dumps(m))
    return lib


def test_pulled_library_is_checked_with_its_own_fingerprints(small_library, tmp_path, monkeypatch):
    """Probe: the guard looked for the store at the library's grandparent and noted 'unchecked' for a pulled one."""
    monkeypatch.setenv("MATLIB_HOME", str(tmp_path / "empty-store"))
    lib = _pulled(small_library, tmp_path)
    res = _qm9_fit(lib, tmp_path / "run", small_library)
    tr = res.ranking[res.ranking["kind"] == "transfer"]
    qm9 = tr["model_id"].map(Library(lib).catalog.set_index("model_id")["dataset"]) == "qm9_sample"
    assert tr.loc[qm9, "leak_reason"].str.contains("trained on 30 of the target's 30 inputs").all()
    assert tr.loc[qm9, "leak_reason"].str.contains("own values").any()
    assert not any("unchecked" in n or "cannot be checked" in n for n in res.notes)
    assert not (tmp_path / "empty-store").exists()  # the guard did not need (or create) the store
    assert Library(lib).manifest["sources"]  # the fingerprints travel inside the library


def test_source_that_cannot_be_checked_is_flagged_never_silently_passed(small_library, tmp_path, monkeypatch):
    monkeypatch.setenv("MATLIB_HOME", str(tmp_path / "empty-store"))
    lib = _pulled(small_library, tmp_path, keep_sources=False)
    res = _qm9_fit(lib, tmp_path / "run", small_library, max_overlap=1.0)
    tr = res.ranking[res.ranking["kind"] == "transfer"]
    assert tr["leak"].all() and tr["leak_reason"].str.contains("unverifiable").all()
    assert any("cannot be checked" in n and str(tmp_path / "empty-store") in n for n in res.notes)


def test_library_without_fingerprints_uses_the_store_of_matlib_home(small_library, tmp_path, monkeypatch):
    monkeypatch.setenv("MATLIB_HOME", str(small_library.parents[1]))  # the store the library was built in
    lib = _pulled(small_library, tmp_path, keep_sources=False)
    res = _qm9_fit(lib, tmp_path / "run", small_library)
    tr = res.ranking[res.ranking["kind"] == "transfer"]
    qm9 = tr["model_id"].map(Library(lib).catalog.set_index("model_id")["dataset"]) == "qm9_sample"
    assert tr.loc[qm9, "leak_reason"].str.contains("trained on 30 of the target's 30 inputs").all()
    assert not any("cannot be checked" in n for n in res.notes)


def test_library_pulled_from_a_bundle_is_checked_in_a_fresh_store(small_library, tmp_path, monkeypatch):
    """Pack on one machine, pull into an empty store elsewhere: the guard still sees the overlap."""
    from matlib.library.bundle import pack_library, pull_library
    from matlib.store import Store

    bundle = pack_library(small_library, tmp_path / "bundles")
    fresh = Store(tmp_path / "elsewhere")
    monkeypatch.setenv("MATLIB_HOME", str(fresh.root))
    lib = pull_library(fresh, str(bundle))
    assert not fresh.datasets().exists()  # no source dataset travels with it, only fingerprints
    res = _qm9_fit(lib, tmp_path / "run", small_library)
    tr = res.ranking[res.ranking["kind"] == "transfer"]
    qm9 = tr["model_id"].map(Library(lib).catalog.set_index("model_id")["dataset"]) == "qm9_sample"
    assert qm9.any() and tr.loc[qm9, "leak_reason"].str.contains("trained on 30 of the target's 30 inputs").all()
    assert not any("cannot be checked" in n for n in res.notes)
