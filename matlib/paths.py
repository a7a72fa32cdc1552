"""Reading an artefact only from inside its own folder: relative paths confined to a root, no symbolic links."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from matlib.errors import IntegrityError


def confined(root: Path, rel: object, what: str) -> Path:
    """root/rel for a relative path that stays inside root and crosses no symbolic link (one-line error else)."""
    text = str(rel) if isinstance(rel, (str, os.PathLike)) else None
    parts = PurePosixPath(text).parts if text else ()
    if not text or "\\" in text or PurePosixPath(text).is_absolute() or any(p in ("..", ".", "") for p in parts):
        raise IntegrityError(
            f"{what}: path {rel!r} is not a plain relative path inside its folder; refusing to read it"
        )
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise IntegrityError(
                f"{what}: {Path(*parts).as_posix()} is a symbolic link; an artefact is read only from "
                "inside its own folder"
            )
    return path
