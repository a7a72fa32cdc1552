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


BAD_NAMES = [
    "",
    ".",
    "..",
    "a/b",
    "../x",
    "a\\b",
    "new\nline",
    "tab\tname",
    "bell\x07",
    "x" * 101,
    " padded",
    "padded ",
    "ds@v1",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_one_name_rule_for_every_artefact(tmp_path: Path, name: str) -> None:
    """Issue 15, defect 9: '..', '.', control characters, separators and long names are refused in one line by
    every artefact kind, before anything touches the disk."""
    from matlib.errors import ValidationError

    s = Store(tmp_path)
    for folder in (s.datasets, s.quarantine, s.library, s.transfer, s.raw):
        with pytest.raises(ValidationError) as err:
            folder(name)
        text = str(err.value)
        assert text.startswith("invalid ") and "\n" not in text and len(text) < 200
    assert list(tmp_path.iterdir()) == []


def test_good_names_pass(tmp_path: Path) -> None:
    s = Store(tmp_path)
    for name in ("qm9", "mp-gap_2024.v2", "x" * 100, "Ölbaum", "esol (clean)"):
        assert s.datasets(name) == tmp_path / "datasets" / name
        assert s.library(name).name == name and s.transfer(name).name == name


def test_bad_dataset_names_never_write(tmp_path: Path) -> None:
    """import_table with '..' used to write into the store root; a 300-character name failed with a raw OSError."""
    from matlib.datasets import import_table
    from matlib.errors import ValidationError
    from tests.fixtures import TEST_DATA

    store = Store(tmp_path / "store")
    for name in ("..", ".", "a\nb", "n" * 300):
        with pytest.raises(ValidationError) as err:
            import_table(store, name, TEST_DATA / "targets" / "esol.csv", "smiles", "logSolubility")
        assert "\n" not in str(err.value) and str(err.value).startswith("invalid dataset name")
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.parquet"))
