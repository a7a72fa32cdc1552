"""Versioned, validated datasets: schema, quarantine, versions with diffs, local table import."""

from matlib.datasets.importer import import_table, read_table
from matlib.datasets.schema import KINDS, normalise_records
from matlib.datasets.versions import Dataset, commit_version, list_datasets, load_dataset

__all__ = [
    "KINDS",
    "Dataset",
    "commit_version",
    "import_table",
    "list_datasets",
    "load_dataset",
    "normalise_records",
    "read_table",
]
