"""The on-disk store: one root ($MATLIB_HOME, default ./matlib-data) and its folders."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from matlib.errors import ValidationError

MAX_NAME_LENGTH = 100
FORBIDDEN_NAME_CHARS = "/\\@"  # path separators (any OS) and the name@version separator


def check_name(kind: str, name: str) -> str:
    """name if it may name a store artefact (dataset, library, run, ...); else a one-line ValidationError.

    One rule for every artefact name: 1..100 characters, no control characters, no path separators or '@',
    no leading or trailing whitespace, and not '.' or '..' (a name is always one folder inside its kind's folder).
    """
    if not isinstance(name, str) or not name:
        raise ValidationError(f"invalid {kind} name {name!r}: it is empty")
    shown = repr(name if len(name) <= 40 else name[:40] + "…")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"invalid {kind} name {shown}: {len(name)} characters (at most {MAX_NAME_LENGTH})")
    if name in (".", ".."):
        raise ValidationError(f"invalid {kind} name {shown}: '.' and '..' are not names")
    bad = next((c for c in name if c in FORBIDDEN_NAME_CHARS or unicodedata.category(c)[0] == "C"), None)
    if bad is not None:
        what = "a control character" if unicodedata.category(bad)[0] == "C" else "a path separator or '@'"
        raise ValidationError(f"invalid {kind} name {shown}: it holds {what} ({bad!r})")
    if name != name.strip():
        raise ValidationError(f"invalid {kind} name {shown}: leading or trailing whitespace")
    return name


def default_home() -> Path:
    """The store root from $MATLIB_HOME, else ./matlib-data."""
    return Path(os.environ.get("MATLIB_HOME", "matlib-data")).expanduser()


def is_valid_name(name: str) -> bool:
    """True if name follows the artefact name rule (see check_name)."""
    try:
        check_name("artefact", name)
    except ValidationError:
        return False
    return True


@dataclass(frozen=True)
class Store:
    """Paths of every artefact kind under one root."""

    root: Path

    @classmethod
    def default(cls) -> Store:
        """The store at $MATLIB_HOME (or ./matlib-data)."""
        return cls(default_home())

    @classmethod
    def at(cls, root: str | Path | None) -> Store:
        """The store at root, else the default one ($MATLIB_HOME)."""
        return cls(Path(root)) if root else cls.default()

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def raw(self, source: str) -> Path:
        """raw/<source>/: fetched pages and checkpoints, one folder per snapshot."""
        return self.root / "raw" / check_name("source", source)

    def datasets(self, name: str | None = None) -> Path:
        """datasets/[<name>/]: versions of a dataset."""
        base = self.root / "datasets"
        return base / check_name("dataset", name) if name is not None else base

    def quarantine(self, name: str) -> Path:
        """quarantine/<name>/: rejected rows with reasons, one file per version."""
        return self.root / "quarantine" / check_name("dataset", name)

    def descriptors(self) -> Path:
        """descriptors/: computed feature tables."""
        return self.root / "descriptors"

    def library(self, name: str | None = None) -> Path:
        """library/[<name>/]: model libraries."""
        base = self.root / "library"
        return base / check_name("library", name) if name is not None else base

    def transfer(self, run_id: str | None = None) -> Path:
        """transfer/[<run-id>/]: shotgun transfer runs."""
        base = self.root / "transfer"
        return base / check_name("run", run_id) if run_id is not None else base
