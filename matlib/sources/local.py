"""Local tables as a source: `refresh(store, 'local', url=PATH, input_column=..., target_columns=...)`."""

from __future__ import annotations

from matlib.datasets.importer import import_table
from matlib.datasets.versions import Dataset
from matlib.errors import MatlibError
from matlib.store import Store


def refresh_local(store: Store, url: str | None, limit: int | None, options: dict) -> Dataset:
    """Import the table at url (a path) through matlib.datasets.import_table."""
    if not url:
        raise MatlibError("source 'local' needs --url PATH to a CSV or Parquet file")
    for key in ("name", "input_column", "target_columns"):
        if not options.get(key):
            raise MatlibError(f"source 'local' needs the {key!r} option")
    return import_table(
        store,
        options["name"],
        url,
        options["input_column"],
        options["target_columns"],
        kind=options.get("kind"),
        id_column=options.get("id_column"),
        duplicates=options.get("duplicates", "keep"),
    )
