"""Atomic file writes: write to a temporary sibling, then rename over the target."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd


@contextlib.contextmanager
def _temporary_sibling(path: Path) -> Iterator[str]:
    """Yield a temporary path beside path; rename it onto path on success, remove it on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write bytes to path atomically (readers never see a partial file)."""
    path = Path(path)
    with _temporary_sibling(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text to path atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write obj as indented, key-sorted JSON to path atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_parquet(path: str | Path) -> pd.DataFrame:
    """Read a Parquet file as a DataFrame, Arrow opening the file itself.

    `pd.read_parquet` hands Arrow a Python file object for local paths. Arrow's reader threads can drop the last
    reference to it after the call returns; when that happens during interpreter shutdown the thread cannot take
    the GIL and the process aborts after a successful run ("terminate called without an active exception").
    """
    import pyarrow.parquet as pq

    return pq.read_table(str(path), use_pandas_metadata=True).to_pandas()


def atomic_write_parquet(path: str | Path, df: pd.DataFrame) -> Path:
    """Write a DataFrame to Parquet atomically (no index)."""
    path = Path(path)
    with _temporary_sibling(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path
