"""A library trained on a `max_rows` slice records the inputs of that slice only: the leakage guard flags a target
drawn from the rows its models trained on, and not one drawn from rows of the same table they never saw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matlib.library import Library, build_library
from matlib.library.fingerprints import read_source_fingerprints
from matlib.store import Store
from matlib.transfer.leakage import leakage_flags


@pytest.fixture(scope="module")
def sliced(tmp_path_factory, make_config):
    """(library, the 400-row table it was built from) with the models trained on a 120-row slice."""
    cfg = make_config("sliced", models=8)
    cfg["groups"][0]["max_rows"] = 120
    store = Store(tmp_path_factory.mktemp("store"))
    lib = Library(build_library(store, cfg))
    return lib, store


def _trained_and_unseen(lib: Library, store: Store) -> tuple[list[str], list[str]]:
    """Formulas of the slice the models trained on, and of the table's other rows."""
    ref, record = next(iter(lib.manifest["sources"].items()))
    fp = read_source_fingerprints(lib.path, record, ref)
    assert fp["refractive_index"].notna().sum() == 120 and len(fp) > 120  # values on the slice only
    from matlib.datasets import load_dataset
    from matlib.transfer.leakage import canonical_inputs, key_hashes

    rec = load_dataset(store, ref).records
    keys = key_hashes(canonical_inputs(rec["input"].astype(str).tolist(), "composition"))
    trained = set(fp.loc[fp["refractive_index"].notna(), "key"])
    seen = np.isin(keys, list(trained))
    inputs = rec["input"].astype(str).to_numpy()
    return inputs[seen].tolist(), inputs[~seen].tolist()


def _flags(lib: Library, inputs: list[str]) -> pd.DataFrame:
    y = np.linspace(1.0, 2.0, len(inputs))
    flags, _ = leakage_flags(lib.catalog, inputs, y, "composition", "some_target", None, library=lib)
    return flags


def test_only_the_training_slice_counts_as_seen(sliced):
    lib, store = sliced
    trained, unseen = _trained_and_unseen(lib, store)
    assert len(trained) >= 100 and len(unseen) >= 200
    hit = _flags(lib, trained[:20])
    assert hit["leak"].all() and hit["leak_reason"].str.match(r"trained on (\d+) of the target's \1 inputs").all()
    clean = _flags(lib, unseen[:20])
    assert not clean["leak"].any() and (clean["overlap"] == 0).all()


def test_the_slice_is_the_one_the_models_trained_on(sliced):
    """The recorded ids are the training table's rows, in order: their values are the table's y."""
    from matlib.datasets import load_dataset
    from matlib.library.plan import load_training_table, trained_ids_path

    lib, store = sliced
    (table,) = [p for p in (lib.path / "data").glob("*.safetensors")]
    ids = pd.read_parquet(trained_ids_path(table))["record_id"]
    _, y = load_training_table(table)
    ref = next(iter(lib.manifest["sources"]))
    values = load_dataset(store, ref).records.set_index("record_id").loc[ids, "target"].to_numpy(np.float32)
    assert len(ids) == 120 and ids.is_unique
    np.testing.assert_array_equal(values, y)
