"""confined(): paths read from an artefact's own JSON stay inside its folder and cross no symbolic link."""

from __future__ import annotations

from pathlib import Path

import pytest

from matlib.errors import IntegrityError
from matlib.paths import confined


def test_plain_relative_paths_resolve_inside(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert confined(tmp_path, "a/b/c.json", "x") == tmp_path / "a" / "b" / "c.json"


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/etc/passwd", "", None, 3, "a\\..\\x", ".."])
def test_escaping_or_malformed_paths_are_refused(tmp_path: Path, rel: object) -> None:
    with pytest.raises(IntegrityError) as err:
        confined(tmp_path, rel, "thing")
    assert str(err.value).startswith("thing: path") and "\n" not in str(err.value)


def test_symbolic_links_on_the_way_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "d").mkdir(parents=True)
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    (root / "f").symlink_to(outside / "d")
    for rel in ("link/d", "f"):
        with pytest.raises(IntegrityError, match="symbolic link"):
            confined(root, rel, "thing")
