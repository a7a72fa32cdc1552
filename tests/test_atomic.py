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
