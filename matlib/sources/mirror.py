"""Offline mirrors: the files a service serves (JSON pages, the QM9 tarball), read from a folder or an HTTP host.

Layout (format ``matlib-mirror/1``): a request ``GET scheme://host[:port]/path?query`` is stored at

    <mirror>/<host>[_<port>]/<path>/<name>

where ``<path>`` is the URL path (percent-decoded segments, no ``.``/``..``) and ``<name>`` is ``index`` for a
request without a query, else ``q-`` + the first 32 hex digits of the sha256 of the canonical query: the query's
``name=value`` pairs sorted and percent-encoded (RFC 3986 unreserved characters kept), or, for a query without
``=`` (AFLUX), the query text itself. Credentials (userinfo, key-like parameters) are never part of the key.
``<mirror>/mirror.json`` is written last and lists every file: its request URL, sha256, size and content type;
a reader trusts only files listed there with a matching sha256. An HTTP mirror is the same folder served as
static files (``python -m http.server`` in the folder is enough).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import httpx

from matlib.atomic import atomic_write_bytes, atomic_write_json, read_json
from matlib.errors import MatlibError
from matlib.sources.crawl import file_sha256
from matlib.sources.redact import KEY_PARAM, redact_url

FORMAT = "matlib-mirror/1"
MANIFEST = "mirror.json"
ENV = "MATLIB_MIRROR"
_SEGMENT = re.compile(r"^[A-Za-z0-9._~()$,;=:@'+!*-]+$")


def canonical_query(query: str) -> str:
    """The canonical form of a query string (see the module docstring); key-like parameters dropped."""
    if not query:
        return ""
    if "=" not in query:
        return unquote(query)
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not KEY_PARAM.search(k)]
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(pairs))


def mirror_key(url: str) -> str:
    """The mirror-relative file path of a request URL."""
    parts = urlsplit(str(url))
    host = (parts.hostname or "").lower()
    if not host:
        raise MatlibError(f"cannot mirror a URL without a host: {redact_url(str(url))}")
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    folder = host if parts.port in (None, default_port) else f"{host}_{parts.port}"
    segments = []
    for seg in parts.path.split("/"):
        seg = unquote(seg)
        if not seg:
            continue
        if seg in (".", "..") or not _SEGMENT.match(seg):
            raise MatlibError(f"cannot mirror the path segment {seg!r} of {redact_url(str(url))}")
        segments.append(seg)
    query = canonical_query(parts.query)
    name = "index" if not query else "q-" + hashlib.sha256(query.encode()).hexdigest()[:32]
    return "/".join([folder, *segments, name])


def resolve_mirror(mirror: str | os.PathLike | None) -> str | None:
    """The mirror to use: the argument, else $MATLIB_MIRROR, else None (the real services)."""
    value = mirror if mirror not in (None, "") else os.environ.get(ENV) or None
    return None if value is None else str(value)


def _is_url(location: str) -> bool:
    """Whether a mirror location is an HTTP(S) URL (else a folder)."""
    return location.startswith(("http://", "https://"))


class _FileStream(httpx.SyncByteStream):
    """A response body streamed from a mirror file."""

    def __init__(self, path: Path, chunk: int = 1 << 20) -> None:
        self.path, self.chunk = path, chunk

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            while block := f.read(self.chunk):
                yield block


class MirrorTransport(httpx.BaseTransport):
    """Answers every request from a mirror (a folder or an HTTP host) instead of the real service."""

    def __init__(self, location: str, timeout: float = 60.0) -> None:
        self.location = location.rstrip("/") if _is_url(location) else location
        self._http = httpx.Client(timeout=timeout, follow_redirects=True) if _is_url(location) else None
        if self._http is None and not (Path(location) / MANIFEST).is_file():
            raise MatlibError(f"mirror {location}: no {MANIFEST} there (not a mirror, or its build did not finish)")
        self.manifest = self._read_manifest()
        if self.manifest.get("format") != FORMAT:
            raise MatlibError(f"mirror {self.shown}: {MANIFEST} is not format {FORMAT}")
        self.files: dict = self.manifest.get("files") or {}
        self.origin: str = self.manifest.get("origin", "")

    @property
    def is_local(self) -> bool:
        """True for a mirror folder (a local copy), False for one served over HTTP."""
        return self._http is None

    @property
    def shown(self) -> str:
        """The mirror location without credentials."""
        return redact_url(self.location)

    def _read_manifest(self) -> dict:
        """mirror.json from the folder or the host."""
        if self._http is None:
            return read_json(Path(self.location) / MANIFEST)
        resp = self._http.get(f"{self.location}/{MANIFEST}")
        if resp.status_code != 200:
            raise MatlibError(f"mirror {self.shown}: HTTP {resp.status_code} for {MANIFEST}")
        try:
            return resp.json()
        except ValueError:
            raise MatlibError(f"mirror {self.shown}: {MANIFEST} is not JSON") from None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """The mirrored body of this request (checked against its sha256), or a one-line error."""
        key = mirror_key(str(request.url))
        entry = self.files.get(key)
        if entry is None:
            raise MatlibError(
                f"mirror {self.shown} has no copy of GET {redact_url(str(request.url))} (file {key}); "
                f"was it built with other options (page size, fields, filter)?"
            )
        headers = {
            "Content-Type": entry.get("content_type") or "application/octet-stream",
            "Content-Length": str(entry["size"]),
        }
        if self._http is not None:
            resp = self._http.get(f"{self.location}/{key}")
            if resp.status_code != 200:
                raise MatlibError(f"mirror {self.shown}: HTTP {resp.status_code} for {key}")
            body = resp.content
            if hashlib.sha256(body).hexdigest() != entry["sha256"]:
                raise MatlibError(f"mirror {self.shown}: {key} does not match its sha256 in {MANIFEST} (corrupt)")
            return httpx.Response(200, headers=headers, content=body, request=request)
        path = Path(self.location) / key
        if not path.is_file() or file_sha256(path) != entry["sha256"]:
            raise MatlibError(f"mirror {self.shown}: {key} is missing or does not match its sha256 in {MANIFEST}")
        return httpx.Response(200, headers=headers, stream=_FileStream(path), request=request)

    def close(self) -> None:
        """Close the HTTP client of an HTTP mirror."""
        if self._http is not None:
            self._http.close()


class RecordingTransport(httpx.BaseTransport):
    """Forwards requests to another transport and records every HTTP 200 body into a mirror folder."""

    def __init__(self, folder: Path, inner: httpx.BaseTransport | None = None, origin: str = "service") -> None:
        self.folder = Path(folder)
        self.inner = inner or httpx.HTTPTransport()
        self.origin = origin
        self._lock = threading.Lock()
        old = self.folder / MANIFEST
        self.files: dict = dict(read_json(old).get("files") or {}) if old.is_file() else {}
        self._redirected: dict[str, tuple[str, str]] = {}  # key of a redirect target -> (key, URL) first asked

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Forward; keep a copy of a 200 body under the mirror key of the URL the crawler asked for (a redirect,
        e.g. figshare to its signed storage URL, is followed by the client: the final body is filed under the
        first URL of the chain, so the mirror never holds the signed URL)."""
        resp = self.inner.handle_request(request)
        key = mirror_key(str(request.url))
        with self._lock:
            asked = self._redirected.pop(key, (key, str(request.url)))
        if 300 <= resp.status_code < 400 and resp.headers.get("Location"):
            target = request.url.join(resp.headers["Location"])
            with self._lock:
                self._redirected[mirror_key(str(target))] = asked
            return resp
        if resp.status_code != 200:
            return resp
        body = resp.read()
        key, url = asked
        atomic_write_bytes(self.folder / key, body)
        with self._lock:
            self.files[key] = {
                "url": redact_url(url),
                "sha256": hashlib.sha256(body).hexdigest(),
                "size": len(body),
                "content_type": resp.headers.get("Content-Type", ""),
            }
        headers = {
            k: v
            for k, v in resp.headers.items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        }
        return httpx.Response(200, headers=headers, content=body, request=request)

    def finish(self, note: str = "") -> Path:
        """Write mirror.json (last: a mirror is complete only when it exists) and return its path."""
        path = self.folder / MANIFEST
        atomic_write_json(
            path,
            {
                "format": FORMAT,
                "origin": self.origin,
                "note": note,
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "files": dict(sorted(self.files.items())),
            },
        )
        return path

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()
