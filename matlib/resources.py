"""Files shipped with matlib: the repository's data/ folder, installed as the package data ``matlib.shipped``."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from matlib.errors import MatlibError


def shipped_root() -> Path:
    """The folder of the shipped data: the installed package data, else data/ of a source checkout."""
    try:
        return Path(str(files("matlib.shipped")))
    except ModuleNotFoundError:  # run from a checkout (PYTHONPATH=.) or an install older than the package data
        return Path(__file__).resolve().parents[1] / "data"


def shipped_path(*parts: str) -> Path:
    """The path of a shipped file or folder, e.g. shipped_path("elements", "magpie.csv")."""
    path = shipped_root().joinpath(*parts)
    if not path.exists():
        raise MatlibError(f"shipped file {'/'.join(parts)} is missing from the matlib installation ({path})")
    return path
