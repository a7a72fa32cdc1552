"""A transfer run folder's life cycle: staged beside its final place, sealed by a manifest written last, swapped in.

A fit writes into a hidden sibling, `.<name>.matlib-staging/`, whose `manifest.json` says from the first moment
that matlib wrote it (`complete: false`). When every file is written, the manifest is rewritten (atomically, last)
with every file's sha256 and `complete: true`, and the folder takes the run's place. So `out/` only ever holds a
complete run or the previous one; predict serves a run only when its manifest covers every file it reads, the
hashes match, and no newer fit into the same folder is pending. Only a folder whose manifest says matlib wrote it,
and that holds nothing else, is ever replaced or deleted.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from matlib import __version__
from matlib.atomic import atomic_write_json, read_json
from matlib.errors import IntegrityError, MatlibError
from matlib.hashing import sha256_file
from matlib.paths import confined

RUN_FORMAT = "matlib-transfer-run/1"
MANIFEST = "manifest.json"
WRITER = "matlib"


def _absolute(out: str | Path) -> Path:
    """out as an absolute, normalised path (`run/..` and `.` resolved lexically; links are not followed)."""
    path = Path(os.path.abspath(out))
    if not path.name:
        raise MatlibError(f"output folder {out}: choose a named folder, not the file system root")
    return path


def staging_dir(out: str | Path) -> Path:
    """The hidden sibling folder a fit into out writes before it is complete."""
    out = _absolute(out)
    return out.parent / f".{out.name}.matlib-staging"


def _retired_dir(out: Path) -> Path:
    """Where the previous run goes for the instant of the swap."""
    return out.parent / f".{out.name}.matlib-previous"


def _manifest(folder: Path) -> dict | None:
    """The folder's run manifest if it is one matlib wrote, else None."""
    path = folder / MANIFEST
    if not path.is_file() or path.is_symlink():
        return None
    try:
        m = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("format") != RUN_FORMAT or m.get("written_by") != WRITER:
        return None
    return m


def _all_files(folder: Path) -> list[str]:
    """Every file or link under folder, as POSIX paths relative to it (sorted)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        for name in filenames + [d for d in dirnames if (base / d).is_symlink()]:
            out.append((base / name).relative_to(folder).as_posix())
    return sorted(out)


def _foreign_files(folder: Path, manifest: dict) -> list[str]:
    """Files under folder that its manifest does not list (matlib did not write them)."""
    listed = set(manifest.get("files", {})) | {MANIFEST}
    return [f for f in _all_files(folder) if f not in listed]


def check_replaceable(out: Path) -> None:
    """Refuse (one line) to write a run into out unless it is new, empty, or a run matlib wrote and nobody added to."""
    out = _absolute(out)
    if out.is_symlink():
        raise MatlibError(f"output folder {out} is a symbolic link; choose a plain folder")
    if not out.exists():
        for parent in out.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise MatlibError(f"output folder {out}: {parent} is a file, not a folder")
                break
        return
    if not out.is_dir():
        raise MatlibError(f"output folder {out} is a file, not a folder; choose a new folder for the run")
    if not any(out.iterdir()):
        return
    manifest = _manifest(out)
    if manifest is None:
        raise MatlibError(
            f"output folder {out} exists and is not a transfer run written by matlib (no matlib "
            f"{MANIFEST}); nothing was changed: choose an empty or new folder"
        )
    foreign = _foreign_files(out, manifest)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise MatlibError(
            f"output folder {out} holds files matlib did not write ({foreign[0]}{more}); nothing was "
            "changed: move them away or choose another folder"
        )


def _clear_leftover(folder: Path) -> None:
    """Delete an earlier unfinished staging folder, but only one that matlib's manifest marks as its own."""
    if not folder.exists() and not folder.is_symlink():
        return
    if folder.is_symlink() or not folder.is_dir() or _manifest(folder) is None:
        raise MatlibError(
            f"{folder} is in the way of the run's staging folder and was not written by matlib; move it away"
        )
    shutil.rmtree(folder)


def begin_run(out: str | Path) -> Path:
    """Check out may be (re)placed and open a fresh staging folder for it; returns the staging folder."""
    out = _absolute(out)
    check_replaceable(out)
    stage = staging_dir(out)
    _clear_leftover(stage)
    _clear_leftover(_retired_dir(out))
    stage.mkdir(parents=True)
    atomic_write_json(
        stage / MANIFEST,
        {
            "format": RUN_FORMAT,
            "written_by": WRITER,
            "version": __version__,
            "complete": False,
            "started_at": time.time(),
            "files": {},
        },
    )
    return stage


def work_dir(out: str | Path) -> Path:
    """The staging folder of the fit in progress into out (one-line error if none is open)."""
    stage = staging_dir(out)
    m = _manifest(stage)
    if m is None or m.get("complete"):
        raise MatlibError(
            f"no fit in progress into {out} (no staging folder {stage}); start it again with `matlib transfer fit`"
        )
    return stage


def seal_run(out: str | Path) -> Path:
    """Write the staged run's manifest last (every file's sha256) and swap the run into out; returns out."""
    given, out = Path(out), _absolute(out)
    stage = work_dir(out)
    files = {}
    for rel in _all_files(stage):
        if rel == MANIFEST:
            continue
        path = stage / rel
        if path.is_symlink():
            raise IntegrityError(f"staged run {stage}: {rel} is a symbolic link; runs hold only their own files")
        files[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    started = read_json(stage / MANIFEST).get("started_at")
    atomic_write_json(
        stage / MANIFEST,
        {
            "format": RUN_FORMAT,
            "written_by": WRITER,
            "version": __version__,
            "complete": True,
            "started_at": started,
            "sealed_at": time.time(),
            "files": files,
        },
    )
    check_replaceable(out)  # again: someone may have written into out while the fit ran
    retired = _retired_dir(out)
    if out.exists():
        if any(out.iterdir()):
            os.replace(out, retired)
        else:
            out.rmdir()
    os.replace(stage, out)
    if retired.exists():
        shutil.rmtree(retired)
    return given


def verify_run(run_dir: str | Path) -> Path:
    """The run folder, checked before serving: complete manifest written by matlib, every file present with its
    sha256, nothing unlisted under model/, no newer fit pending. One-line error naming the problem otherwise."""
    run = Path(run_dir)
    if not (run / MANIFEST).exists() and run.name == "model" and (run.parent / MANIFEST).exists():
        run = run.parent  # the model folder itself was given
    stage = staging_dir(run)
    if not run.is_dir():
        pending = f"; a fit into it did not finish ({stage} is left)" if stage.exists() else ""
        raise MatlibError(f"no transfer model at {run} (no such run folder{pending}); run `matlib transfer fit` first")
    manifest = _manifest(run)
    if manifest is None:
        raise MatlibError(
            f"{run} is not a complete transfer run (no matlib {MANIFEST}: the fit did not finish, or "
            "the folder was written by an older matlib); run `matlib transfer fit` again"
        )
    if not manifest.get("complete"):
        raise MatlibError(
            f"{run} is an unfinished transfer run (its fit did not complete); run `matlib transfer fit` again"
        )
    if stage.exists():
        raise MatlibError(
            f"a later fit into {run} did not finish or is still running ({stage}); refusing to serve "
            f"the earlier model silently: run the fit again, or delete {stage} to use the earlier one"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or "model/model.json" not in files:
        raise IntegrityError(f"{run}/{MANIFEST} lists no model/model.json; the run is damaged")
    for rel, rec in sorted(files.items()):
        path = confined(run, rel, f"run {run}")
        if not path.is_file():
            raise IntegrityError(f"run {run}: {rel} is missing")
        if not isinstance(rec, dict) or sha256_file(path) != rec.get("sha256"):
            raise IntegrityError(f"run {run}: {rel} was modified or corrupted (sha256 differs from {MANIFEST})")
    model = confined(run, "model", f"run {run}")
    extra = [f"model/{f}" for f in _all_files(model) if f"model/{f}" not in files]
    if extra:
        raise IntegrityError(
            f"run {run}: {extra[0]} is not covered by {MANIFEST} (added after the fit); refusing to serve the run"
        )
    return run
