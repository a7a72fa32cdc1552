"""`import_table` on every shared CSV (and qm9.csv.gz): rows kept + quarantined == rows read; duplicates."""

from __future__ import annotations

import pandas as pd
import pytest

from matlib.datasets import import_table, list_datasets, load_dataset, read_table
from matlib.errors import MatlibError, ValidationError
from matlib.store import Store

QM9_TARGETS = ["HOMO_au", "LUMO_au", "HOMO_LUMO_gap_au", "Dipole_debye"]


def _tables(shared):
    """(name, path, input column, target columns) for every shared table a user would import."""
    out = []
    for folder in ("mp", "oqmd", "aflow"):
        for p in sorted((shared / folder).glob("*.csv")):
            out.append((f"{folder}-{p.stem}", p, "formula", ["target"]))
    out.append(("esol", shared / "targets" / "esol.csv", "smiles", ["logSolubility"]))
    out.append(("polymer-o2", shared / "targets" / "polymer_o2_permeability.csv", "SMILES", ["o2"]))
    out.append(("qm9", shared / "qm9" / "qm9.csv.gz", "smiles", QM9_TARGETS))
    return out


@pytest.mark.slow
def test_every_shared_table_imports_without_silent_loss(real_data, tmp_path):
    store = Store(tmp_path)
    tables = _tables(real_data)
    assert len(tables) == 21
    for name, path, col, targets in tables:
        ds = import_table(store, name, path, col, targets)
        n_read = len(read_table(path))
        m = ds.manifest
        assert m["n_input_rows"] == n_read
        assert m["n_rows"] + m["n_quarantined"] == n_read, name  # kept + quarantined = read
        assert ds.records["record_id"].is_unique
        assert set(ds.records["kind"]) == {"molecule" if "smiles" in col.lower() else "composition"}
        assert m["properties"] == targets and m["n_rows"] > 0.99 * n_read
    listing = list_datasets(store)
    assert len(listing) == len(tables) and listing["latest"].all()
    qm9 = load_dataset(store, "qm9")
    assert qm9.manifest["n_rows"] == len(read_table(real_data / "qm9" / "qm9.csv.gz"))
    assert "HOMO_au" in qm9.records  # Hartree stays in a named column
    # 'NaN' is sodium nitride in mp_mu_b.csv, not a missing value
    assert "NaN" in set(load_dataset(store, "mp-mp_mu_b").records["input"])


def test_duplicates_kept_or_averaged(real_data, tmp_path):
    store = Store(tmp_path)
    path = real_data / "mp" / "matbench_dielectric.csv"
    kept = import_table(store, "diel", path, "formula", "target")
    mean = import_table(store, "diel-mean", path, "formula", "target", duplicates="mean")
    raw = pd.read_csv(path)
    assert kept.manifest["n_rows"] == len(raw) and kept.manifest["n_duplicate_inputs"] > 0
    groups = kept.records.groupby("input")["target"]
    assert mean.manifest["n_rows"] == groups.ngroups
    assert mean.records["n_merged"].sum() == len(kept.records)  # every row went into one average
    rec = mean.records.set_index("input")
    dup = groups.size().idxmax()
    assert rec.at[dup, "target"] == pytest.approx(groups.mean()[dup])
    assert rec.at[dup, "n_merged"] == groups.size().max() > 1


def test_bad_rows_quarantined_with_row_field_reason(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("formula,y\nFe2O3,1.0\nQq2,2.0\nNaCl,nan\nMgO,inf\nZnO,abc\n,3\nGaN,4\n")
    ds = import_table(Store(tmp_path / "s"), "t", csv, "formula", "y")
    assert list(ds.records.sort_values("source_row")["input"]) == ["Fe2O3", "GaN"]
    q = ds.quarantine(Store(tmp_path / "s")).set_index("row")
    assert list(q.index) == [1, 2, 3, 4, 5]
    assert q.at[1, "field"] == "input" and "unknown element 'Qq'" in q.at[1, "reason"]
    assert q.at[2, "reason"].startswith("no finite target")
    assert q.at[3, "reason"].startswith("infinite value") and q.at[4, "value"] == "abc"
    assert q.at[5, "reason"] == "missing input"


def test_parquet_ids_and_conflicting_duplicate_ids(tmp_path):
    df = pd.DataFrame(
        {"id": ["a", "b", "b", "c", "c"], "smiles": ["CCO", "CC", "CCC", "C", "C"], "y": [1.0, 2.0, 3.0, 4.0, 4.0]}
    )
    df.to_parquet(tmp_path / "t.parquet")
    store = Store(tmp_path / "s")
    ds = import_table(store, "t", tmp_path / "t.parquet", "smiles", ["y"], id_column="id")
    assert sorted(ds.records["record_id"]) == ["a", "c"]
    q = ds.quarantine(store)
    assert sorted(q["reason"]) == ["duplicate record_id with different content"] * 2 + [
        "exact duplicate of an earlier row (kept once)"
    ]


def test_clear_errors(tmp_path, real_data):
    store = Store(tmp_path)
    with pytest.raises(ValidationError, match="column 'nope' not in esol.csv"):
        import_table(store, "e", real_data / "targets" / "esol.csv", "smiles", "nope")
    with pytest.raises(ValidationError, match="cannot infer the kind"):
        import_table(store, "e", real_data / "targets" / "esol.csv", "logSolubility", "logSolubility")
    with pytest.raises(MatlibError, match="file not found"):
        import_table(store, "e", tmp_path / "missing.csv", "smiles", "y")
