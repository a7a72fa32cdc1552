"""A small real library (MP refractive index, Magpie descriptors) built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import TEST_DATA


def small_config(name: str, models: int = 24, sample_rows: int = 400, **extra) -> dict:
    """A build config on real data: a seeded slice of matbench_dielectric, Magpie features, tiny models."""
    cfg = {
        "name": name,
        "seed": 0,
        "shard_size": 8,
        "family_size": 8,
        "architecture": {"n_layers": [1, 3], "max_width": 24},
        "training": {"epochs": 3, "batch_size": 64, "patience": 3},
        "groups": [
            {
                "dataset": "mp_dielectric",
                "import": {
                    "file": str(TEST_DATA / "mp" / "matbench_dielectric.csv"),
                    "input_column": "formula",
                    "target_columns": ["target"],
                    "kind": "composition",
                    "sample_rows": sample_rows,
                },
                "descriptors": ["magpie"],
                "properties": ["target"],
                "property_names": {"target": "refractive_index"},
                "models_per_property": models,
            }
        ],
    }
    cfg.update(extra)
    return cfg


@pytest.fixture(scope="session")
def built_library(tmp_path_factory) -> tuple[Path, Path]:
    """(store root, library folder) of a 24-model library."""
    from matlib.library import build_library
    from matlib.store import Store

    root = tmp_path_factory.mktemp("store")
    return root, build_library(Store(root), small_config("small"))


@pytest.fixture(scope="session")
def make_config():
    """The small_config factory, for tests that need variants."""
    return small_config
