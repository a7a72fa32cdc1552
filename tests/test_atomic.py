"""Atomic writes leave either the old file or the new one, never a partial one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from matlib.atomic import atomic_write_json, atomic_write_parquet, atomic_write_text, read_json, read_parquet


def test_json_round_trip_and_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "m.json"
    atomic_write_json(target, {"b": 2, "a": [1, 2]})
    assert read_json(target) == {"a": [1, 2], "b": 2}
    assert [p.name for p in target.parent.iterdir()] == ["m.json"]


def test_failed_write_keeps_previous_content(tmp_path: Path) -> None:
    target = tmp_path / "t.parquet"
    atomic_write_parquet(target, pd.DataFrame({"x": [1, 2, 3]}))

    class Unwritable:
        def to_parquet(self, *args: object, **kwargs: object) -> None:
            raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write_parquet(target, Unwritable())  # type: ignore[arg-type]
    assert pd.read_parquet(target)["x"].tolist() == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_text_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "r.md"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"


def test_read_parquet_equals_pandas(tmp_path: Path) -> None:
    """Arrow's own file reader gives what pd.read_parquet gives, pandas index metadata included."""
    ours = tmp_path / "ours.parquet"
    atomic_write_parquet(ours, pd.DataFrame({"id": ["a", "b"], "y": [1.5, None], "n": [1, 2]}))
    pd.testing.assert_frame_equal(read_parquet(ours), pd.read_parquet(ours))
    theirs = tmp_path / "theirs.parquet"  # a user's file written with its index
    pd.DataFrame({"y": [3.0, 4.0]}, index=pd.Index(["p", "q"], name="key")).to_parquet(theirs)
    pd.testing.assert_frame_equal(read_parquet(theirs), pd.read_parquet(theirs))


def test_full_disk_is_a_one_line_storage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC while writing: one-line StorageError naming the file (a MatlibError and still an OSError), the old
    content kept, no temporary left."""
    import errno

    import matlib.atomic as atomic
    from matlib.errors import MatlibError

    target = tmp_path / "m.json"
    atomic_write_json(target, {"v": 1})

    class Full:
        def __init__(self, path: str) -> None:
            self.f = open(path, "wb")

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "open_for_write", Full)
    with pytest.raises(atomic.StorageError) as err:
        atomic_write_json(target, {"v": 2})
    assert isinstance(err.value, MatlibError) and isinstance(err.value, OSError)
    assert err.value.errno == errno.ENOSPC
    text = str(err.value)
    assert "\n" not in text and str(target) in text and "no space left on device" in text
    with pytest.raises(atomic.StorageError):
        atomic_write_parquet(tmp_path / "t.parquet", pd.DataFrame({"x": [1]}))
    assert read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
