"""Dataset versions: content hash, manifest keys, parent and diff, loading by ref, integrity check."""

from __future__ import annotations

import pandas as pd
import pytest

from matlib.datasets import commit_version, list_datasets, load_dataset
from matlib.datasets.schema import normalise_records
from matlib.errors import IntegrityError, MatlibError
from matlib.store import Store


def _records(real_data, n=50):
    raw = pd.read_csv(real_data / "aflow" / "Egap.csv").head(n)
    raw = raw.assign(record_id=[f"af-{i}" for i in range(n)], input=raw["formula"])
    return normalise_records(raw, "composition", ["target"])


def test_commit_load_and_manifest(real_data, tmp_path):
    store = Store(tmp_path)
    rec, q = _records(real_data)
    ds = commit_version(store, "egap", rec, "aflow", q)
    assert len(ds.version) == 16 and ds.path == store.datasets("egap") / ds.version
    for key in (
        "name",
        "version",
        "parent",
        "source",
        "fetched_at",
        "kind",
        "n_rows",
        "n_quarantined",
        "properties",
        "sha256",
        "diff",
        "created_by",
    ):
        assert key in ds.manifest
    assert ds.manifest["properties"] == ["target"] and ds.manifest["parent"] is None
    assert list(ds.records.columns[:3]) == ["record_id", "input", "kind"]
    assert ds.records["target"].dtype == "float64"
    # same content in another order -> same version; a change -> a child version with a diff
    again = commit_version(store, "egap", rec.sample(frac=1, random_state=0), "aflow", q)
    assert again.version == ds.version
    rec2 = rec.copy()
    rec2.loc[0, "target"] += 1
    child = commit_version(store, "egap", rec2.iloc[:-2], "aflow", q)
    assert child.manifest["parent"] == ds.version and child.diff == {"added": 0, "changed": 1, "removed": 2}
    assert load_dataset(store, "egap").version == child.version
    assert load_dataset(store, f"egap@{ds.version[:6]}").version == ds.version
    assert len(list_datasets(store)) == 2


def test_errors_and_integrity(real_data, tmp_path):
    store = Store(tmp_path)
    rec, q = _records(real_data, 10)
    ds = commit_version(store, "egap", rec, "aflow", q)
    with pytest.raises(MatlibError, match="dataset 'nope' not found"):
        load_dataset(store, "nope")
    with pytest.raises(MatlibError, match="no version 'ffff'"):
        load_dataset(store, "egap@ffff")
    pd.DataFrame({"x": [1]}).to_parquet(ds.path / "records.parquet")
    with pytest.raises(IntegrityError, match="does not match its manifest"):
        load_dataset(store, "egap")
