"""The store's folders follow the documented layout under $MATLIB_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

from matlib.store import Store


def test_layout(tmp_path: Path) -> None:
    s = Store(tmp_path)
    assert s.datasets("qm9") == tmp_path / "datasets" / "qm9"
    assert s.raw("mp") == tmp_path / "raw" / "mp"
    assert s.quarantine("mp") == tmp_path / "quarantine" / "mp"
    assert s.descriptors() == tmp_path / "descriptors"
    assert s.library("lib") == tmp_path / "library" / "lib"
    assert s.transfer("run1") == tmp_path / "transfer" / "run1"


def test_default_reads_matlib_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATLIB_HOME", str(tmp_path / "home"))
    assert Store.default().root == tmp_path / "home"
