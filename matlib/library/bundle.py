"""Shipping a library: pack it into a versioned, content-addressed bundle; pull one from a folder, HTTP(S) or S3.

A bundle is a folder `<name>-<version>/` holding the library's files as they are (manifest.json, catalog.parquet,
shards/*.safetensors, ...) and `bundle.json`, written last: the format version, the code version, every file's
sha256 and size, the build config, the dataset versions and the source data's licences. `version` is a hash of
the file list, so the same library always packs to the same name. A pull verifies every file, resumes an
interrupted transfer (finished files are kept, a partial file continues with an HTTP Range request), and only a
fully verified copy is renamed into place: nothing half-pulled ever looks like a library.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from matlib.atomic import atomic_write_json, read_json
from matlib.errors import IntegrityError, MatlibError
from matlib.hashing import sha256_file, spec_hash
from matlib.store import Store, is_valid_name

FORMAT = "matlib-library-bundle"
FORMAT_VERSION = "1.0"
BUNDLE_FILE = "bundle.json"
SKIPPED_DIRS = {"parts", "data", "imports"}  # build-time working files, not needed to use the library
CHUNK = 1 << 20
BUNDLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")
LICENCES = {  # the licence of each crawled source's data (imported tables keep their owner's terms)
    "qm9": "CC BY 4.0 (Ramakrishnan et al., Sci. Data 1, 140022, 2014)",
    "mp": "CC BY 4.0 (Materials Project)",
    "oqmd": "CC BY 4.0 (OQMD)",
    "oqmd-optimade": "CC BY 4.0 (OQMD)",
    "aflow": "AFLOW terms of use (cite Curtarolo et al., Comput. Mater. Sci. 58, 218, 2012)",
}


@dataclass(frozen=True)
class BundleFile:
    """One file of a bundle: its path inside the library, sha256 and size in bytes."""

    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


def _library_files(lib: Path) -> Iterator[Path]:
    """The files a library reader trusts: top-level files and every folder but the build's working ones."""
    for p in sorted(lib.rglob("*")):
        rel = p.relative_to(lib)
        if p.is_file() and not p.is_symlink() and rel.parts[0] not in SKIPPED_DIRS and not p.name.startswith("."):
            yield p


def _licences(datasets: dict[str, str]) -> dict[str, str]:
    """The licence of each dataset the library was trained on."""
    return {name: LICENCES.get(name, "imported table: the terms of its owner") for name in sorted(datasets)}


def pack_library(lib: Path, out: Path) -> Path:
    """Write the bundle of the library at lib into out/<name>-<version>/ (bundle.json last); returns its folder."""
    from matlib import __version__
    from matlib.library.library import Library

    library = Library(lib)
    library.verify()
    files = [
        BundleFile(str(p.relative_to(lib).as_posix()), sha256_file(p), p.stat().st_size) for p in _library_files(lib)
    ]
    version = spec_hash([f.to_dict() for f in files])
    target = out / f"{library.name}-{version}"
    if (target / BUNDLE_FILE).exists():
        return target  # content-addressed: the same library is already packed here
    for f in files:
        dst = target / f.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lib / f.path, dst)
    datasets = dict(library.manifest.get("datasets") or {})
    atomic_write_json(
        target / BUNDLE_FILE,
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": library.name,
            "version": version,
            "created_by": f"matlib {__version__}",
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "n_models": int(library.manifest.get("n_ok", 0)),
            "files": [f.to_dict() for f in files],
            "catalog": "catalog.parquet",
            "config": library.manifest.get("config"),
            "datasets": datasets,
            "licences": _licences(datasets),
        },
    )
    return target


def check_format(bundle: dict, where: str) -> None:
    """Refuse a bundle this code cannot read: another format, or a newer major format version."""
    if bundle.get("format") != FORMAT:
        raise MatlibError(f"{where} is not a matlib library bundle (format {bundle.get('format')!r})")
    major = str(bundle.get("format_version", "")).split(".")[0]
    if not major.isdigit():
        raise MatlibError(f"{where}: bundle format version {bundle.get('format_version')!r} is not valid")
    if int(major) > int(FORMAT_VERSION.split(".")[0]):
        raise MatlibError(
            f"{where}: bundle format {bundle['format_version']} is newer than this matlib reads "
            f"({FORMAT_VERSION.split('.')[0]}.x); upgrade matlib to use it"
        )


def shown(source: str) -> str:
    """A source location safe to print: no credentials, no query string."""
    parts = urlsplit(source)
    if not parts.scheme or len(parts.scheme) == 1:  # a local path (or a Windows drive letter)
        return source
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _safe_relpath(path: str, where: str) -> str:
    """A bundle file path that stays inside the library folder."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts or "\\" in path:
        raise IntegrityError(f"{where}: file path {path!r} leaves the library folder; refusing the bundle")
    return str(pure)


class _Source:
    """Reads a bundle's files from a folder, an http(s):// URL or any fsspec URL (s3://...)."""

    def __init__(self, location: str) -> None:
        self.location = location.rstrip("/")
        scheme = urlsplit(self.location).scheme
        self.kind = (
            "http" if scheme in ("http", "https") else "local" if len(scheme) <= 1 or scheme == "file" else "fsspec"
        )

    def read_bytes(self, rel: str) -> bytes:
        """A small file (bundle.json) whole."""
        if self.kind == "local":
            path = Path(self.location.removeprefix("file://")) / rel
            if not path.exists():
                raise MatlibError(f"{shown(self.location)} is not a library bundle (no {rel})")
            return path.read_bytes()
        chunks: list[bytes] = []
        self.fetch(rel, 0, chunks.append)
        return b"".join(chunks)

    def fetch(self, rel: str, offset: int, write: Callable[[bytes], Any]) -> bool:
        """Stream rel from byte offset into write; returns False when the source restarted from byte 0."""
        if self.kind == "local":
            with open(Path(self.location.removeprefix("file://")) / rel, "rb") as f:
                f.seek(offset)
                while chunk := f.read(CHUNK):
                    write(chunk)
            return True
        if self.kind == "http":
            return self._fetch_http(rel, offset, write)
        return self._fetch_fsspec(rel, offset, write)

    def _fetch_http(self, rel: str, offset: int, write: Callable[[bytes], Any]) -> bool:
        """GET with a Range header when resuming; a server that ignores it sends the whole file (200)."""
        import httpx

        from matlib import __version__

        headers = {"User-Agent": f"matlib/{__version__}"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        url = f"{self.location}/{rel}"
        try:
            with httpx.stream("GET", url, headers=headers, timeout=60, follow_redirects=True) as resp:
                if resp.status_code == 404:
                    raise MatlibError(f"{shown(url)}: not found (404); is {shown(self.location)} a library bundle?")
                if resp.status_code not in (200, 206):
                    raise MatlibError(f"{shown(url)}: HTTP {resp.status_code}")
                for chunk in resp.iter_bytes():  # as received, so an interrupted pull keeps what arrived
                    write(chunk)
                return resp.status_code == 206 or not offset
        except httpx.HTTPError as exc:
            raise MatlibError(f"{shown(url)}: {type(exc).__name__}; rerun the pull to resume") from None

    def _fetch_fsspec(self, rel: str, offset: int, write: Callable[[bytes], Any]) -> bool:
        """Any fsspec URL (s3:// needs s3fs installed)."""
        try:
            import fsspec

            with fsspec.open(f"{self.location}/{rel}", "rb") as f:
                f.seek(offset)
                while chunk := f.read(CHUNK):
                    write(chunk)
        except ImportError as exc:
            raise MatlibError(
                f"{shown(self.location)}: {exc.name or 'a filesystem package'} is needed for this URL "
                f"(for s3:// install s3fs)"
            ) from None
        except FileNotFoundError:
            raise MatlibError(f"{shown(self.location)}/{rel}: not found; is it a library bundle?") from None
        return True


def pulled_root(store: Store) -> Path:
    """pulled/: libraries pulled from bundles, one folder <name>-<version> each."""
    return store.root / "pulled"


def pull_library(store: Store, source: str) -> Path:
    """Pull the bundle at source (folder, http(s)://, s3://) into the store, verified; returns the library folder."""
    src = _Source(source)
    where = shown(source)
    try:
        bundle = json.loads(src.read_bytes(BUNDLE_FILE))
    except ValueError:
        raise MatlibError(f"{where}: {BUNDLE_FILE} is not valid JSON") from None
    check_format(bundle, where)
    name, version = str(bundle.get("name", "")), str(bundle.get("version", ""))
    if not BUNDLE_NAME.fullmatch(f"{name}-{version}"):
        raise MatlibError(f"{where}: bundle name {name!r} / version {version!r} is not a valid folder name")
    final = pulled_root(store) / f"{name}-{version}"
    if (final / BUNDLE_FILE).exists():
        return final
    staging = pulled_root(store) / f".{name}-{version}.partial"
    files = [
        BundleFile(_safe_relpath(str(f["path"]), where), str(f["sha256"]), int(f["size"]))
        for f in bundle.get("files", [])
    ]
    if not any(f.path == "manifest.json" for f in files):
        raise IntegrityError(f"{where}: the bundle lists no manifest.json; refusing it")
    for f in files:
        _pull_file(src, staging, f, where)
    atomic_write_json(staging / BUNDLE_FILE, bundle)
    os.replace(staging, final)  # one rename: the library appears complete or not at all
    return final


def _pull_file(src: _Source, staging: Path, f: BundleFile, where: str) -> None:
    """Fetch one file into staging (resuming a partial one) and verify its size and sha256."""
    dst = staging / f.path
    if dst.exists() and dst.stat().st_size == f.size and sha256_file(dst) == f.sha256:
        return  # finished by an earlier, interrupted pull
    part = dst.with_name(dst.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() and part.stat().st_size < f.size else 0
    with open(part, "ab" if offset else "wb") as out:

        def write(chunk: bytes) -> None:
            out.write(chunk)
            out.flush()  # a killed pull leaves every received byte in the .part file

        if not src.fetch(f.path, offset, write):  # the source ignored the range: start the file again
            out.seek(0)
            out.truncate()
            src.fetch(f.path, 0, write)
    if part.stat().st_size != f.size or sha256_file(part) != f.sha256:
        part.unlink()
        raise IntegrityError(
            f"{where}: bundle file {f.path} does not match its sha256 in {BUNDLE_FILE} "
            f"(flipped or truncated bytes); refusing the bundle"
        )
    os.replace(part, dst)


def resolve_library(store: Store, ref: str | Path) -> Path:
    """A library folder from a path, a store library name, a pulled bundle's name, or a bundle URL / folder."""
    text = str(ref)
    path = Path(text).expanduser()
    if (path / "manifest.json").exists():
        return path
    if "://" in text or (path / BUNDLE_FILE).exists():
        return pull_library(store, text)
    if is_valid_name(text) and (store.library(text) / "manifest.json").exists():
        return store.library(text)
    pulled = (
        sorted(
            p
            for p in pulled_root(store).glob(f"{glob.escape(text)}*")
            if (p / BUNDLE_FILE).exists() and (p.name == text or read_json(p / BUNDLE_FILE).get("name") == text)
        )
        if is_valid_name(text)
        else []
    )
    if pulled:
        return max(pulled, key=lambda p: (p / BUNDLE_FILE).stat().st_mtime)
    raise MatlibError(
        f"no library {text!r}: not a library folder, a library in {store.library()}, a pulled bundle, or a bundle URL"
    )
