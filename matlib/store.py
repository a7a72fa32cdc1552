"""The on-disk store: one root ($MATLIB_HOME, default ./matlib-data) and its folders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_home() -> Path:
    """The store root from $MATLIB_HOME, else ./matlib-data."""
    return Path(os.environ.get("MATLIB_HOME", "matlib-data")).expanduser()


@dataclass(frozen=True)
class Store:
    """Paths of every artefact kind under one root."""

    root: Path

    @classmethod
    def default(cls) -> "Store":
        """The store at $MATLIB_HOME (or ./matlib-data)."""
        return cls(default_home())

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def raw(self, source: str) -> Path:
        """raw/<source>/: fetched pages and checkpoints, one folder per snapshot."""
        return self.root / "raw" / source

    def datasets(self, name: str | None = None) -> Path:
        """datasets/[<name>/]: versions of a dataset."""
        base = self.root / "datasets"
        return base / name if name else base

    def quarantine(self, name: str) -> Path:
        """quarantine/<name>/: rejected rows with reasons, one file per version."""
        return self.root / "quarantine" / name

    def descriptors(self) -> Path:
        """descriptors/: computed feature tables."""
        return self.root / "descriptors"

    def library(self, name: str | None = None) -> Path:
        """library/[<name>/]: model libraries."""
        base = self.root / "library"
        return base / name if name else base

    def transfer(self, run_id: str | None = None) -> Path:
        """transfer/[<run-id>/]: shotgun transfer runs."""
        base = self.root / "transfer"
        return base / run_id if run_id else base
