"""The benchmarks' real data: the workshop's public tables, found through an explicit --data-root option.

The default is `../shared/data` next to the repository (the workshop's copy of QM9, Materials Project, OQMD,
AFLOW and the small targets); a user's clone has no such folder, so pass --data-root to a folder with the same
layout (or build one: scripts/build_mirror.py documents where each table comes from).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"


def add_data_root(ap: argparse.ArgumentParser) -> None:
    """Add --data-root (default ../shared/data next to the repository) to a benchmark's arguments."""
    ap.add_argument(
        "--data-root",
        type=Path,
        default=DEFAULT_DATA_ROOT,
        help=f"folder of the public tables (default: {DEFAULT_DATA_ROOT})",
    )


def data_root(path: Path) -> Path:
    """The data root, or a one-line exit when it is missing."""
    if not path.is_dir():
        sys.exit(f"error: data root {path} not found; pass --data-root DIR (a folder laid out like ../shared/data)")
    return path
