"""Atomic file writes: write to a temporary sibling, then rename over the target."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

from matlib.errors import MatlibError

# errno values that mean "the disk (or its quota) cannot take this write": reported as one line, not a traceback
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


class StorageError(MatlibError, OSError):
    """A write failed because the file system is full, over quota or read-only (one line; still an OSError)."""

    def __str__(self) -> str:
        return str(self.strerror)


def open_for_write(path: str | Path) -> IO[bytes]:
    """The one place matlib opens a file for an atomic write (fault-injection tests replace it)."""
    return open(path, "wb")


@contextlib.contextmanager
def _temporary_sibling(path: Path) -> Iterator[str]:
    """Yield a temporary path beside path; rename it onto path on success, remove it on failure."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        _raise_storage(exc, path)
        raise
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            _raise_storage(exc, path)
        raise


def _raise_storage(exc: OSError, path: Path) -> None:
    """Re-raise a full-disk / quota / read-only error as a one-line StorageError naming the file."""
    if exc.errno in STORAGE_ERRNOS and not isinstance(exc, StorageError):
        raise StorageError(
            exc.errno,
            f"cannot write {path}: {os.strerror(exc.errno).lower()} "
            "(nothing was left half-written; free space and run the command again)",
        ) from None


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write bytes to path atomically (readers never see a partial file)."""
    path = Path(path)
    with _temporary_sibling(path) as tmp:
        with open_for_write(tmp) as f:
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
    buf = io.BytesIO()  # serialised first, then written through the one opener (Arrow would bypass it)
    df.to_parquet(buf, index=False)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_write_arrow(path: str | Path, table: Any) -> Path:
    """Write a pyarrow Table to Parquet atomically (serialised first, then written through the one opener)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    return atomic_write_bytes(path, buf.getvalue().to_pybytes())
