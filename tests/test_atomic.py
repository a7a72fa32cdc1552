"""Atomic writes leave either the old file or the new one, never a partial one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from matlib.atomic import atomic_write_json, atomic_write_parquet, atomic_write_text, read_json


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
