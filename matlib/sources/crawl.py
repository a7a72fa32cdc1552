"""The one crawl mechanism: paging, per-page atomic checkpoint/resume, retries with backoff, rate limit."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

import matlib
from matlib.atomic import atomic_write_bytes, atomic_write_json, read_json
from matlib.errors import MatlibError
from matlib.hashing import spec_hash
from matlib.sources.forbidden import explain_refusal
from matlib.sources.redact import Redactor, clean_url
from matlib.store import Store

log = logging.getLogger("matlib.sources")
REDACTED_LOGGERS = ("matlib.sources", "httpx")  # httpx logs every request URL at INFO
CHECKPOINT = "checkpoint.json"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = f"matlib/{matlib.__version__} (materials data crawler; python-httpx/{httpx.__version__})"


class _RedactFilter(logging.Filter):
    """A logging filter that redacts a crawler's secrets from every record it sees."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = ()
        return True


@dataclass
class CrawlConfig:
    """Network behaviour of a crawl (all sources share it)."""

    timeout: float = 60.0
    max_attempts: int = 8
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    max_retry_after: float = 600.0
    rate_per_second: float | None = 5.0
    page_size: int = 100


class RateLimiter:
    """Client-side rate limit: at most rate_per_second request starts (minimum spacing, thread-safe)."""

    def __init__(
        self,
        rate_per_second: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate_per_second if rate_per_second else 0.0
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until the next request may start; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            wait = max(0.0, self._next - now)
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            self.sleep(wait)
        return wait


class RetryableError(Exception):
    """A transient failure (timeout, 429, 5xx, truncated body): retried with backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


@dataclass
class PageRequest:
    """One page to fetch: a URL and its query parameters (JSON-serialisable, never secrets)."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON form (for the checkpoint)."""
        return {"url": self.url, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict) -> PageRequest:
        """Inverse of to_dict."""
        return cls(url=d["url"], params=dict(d.get("params") or {}))


class Paginator(Protocol):
    """How one API pages: the first request, the next one from a response, the records of a response."""

    def first(self) -> PageRequest: ...

    def next(self, request: PageRequest, payload: Any, n_records: int) -> PageRequest | None: ...

    def records(self, payload: Any) -> list[dict]: ...


@dataclass
class CrawlResult:
    """A finished crawl snapshot."""

    snapshot: Path
    pages: list[Path]
    n_records: int
    resumed: bool
    stats: dict


@dataclass
class CrawlStats:
    """Counters of one crawl run (for logs, tests and reports)."""

    requests: int = 0
    retries: int = 0
    waits: list[float] = field(default_factory=list)
    rate_limited_s: float = 0.0
    pages_fetched: int = 0

    def as_dict(self) -> dict:
        """Plain dict."""
        return {
            "requests": self.requests,
            "retries": self.retries,
            "waits": [round(w, 3) for w in self.waits],
            "rate_limited_s": round(self.rate_limited_s, 3),
            "pages_fetched": self.pages_fetched,
        }


@dataclass
class FileRequest:
    """One file to download: its URL, the snapshot file name, an optional sha256 and a body check."""

    url: str
    filename: str
    sha256: str | None = None
    check: Callable[[bytes], str | None] | None = None


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: Path, sha256: str) -> bool:
    """Whether path exists and has this sha256."""
    return path.is_file() and file_sha256(path) == sha256


class Crawler:
    """Fetches pages for one source into raw/<source>/<snapshot>/, resuming an unfinished snapshot."""

    def __init__(
        self,
        store: Store,
        source: str,
        identity: dict,
        config: CrawlConfig | None = None,
        headers: dict[str, str] | None = None,
        secrets: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
        auth: tuple[str, str] | None = None,
        secret_params: dict[str, str] | None = None,
    ) -> None:
        self.store, self.source = store, source
        self.secret_params = dict(secret_params or {})
        secrets = [*secrets, *self.secret_params.values(), *(p for p in (auth or ()) if len(p) >= 6)]
        self.config = config or CrawlConfig()
        self.redact = Redactor(secrets)
        # checkpoints carry the identity: never a credential (URL userinfo, key-like query values, secrets)
        self.identity = json.loads(self.redact(json.dumps(identity, default=str)))
        self.identity_hash = spec_hash({"source": source, **self.identity})
        self._filter = _RedactFilter(self.redact)
        self.limiter = RateLimiter(self.config.rate_per_second)
        self.stats = CrawlStats()
        self._client = httpx.Client(
            timeout=self.config.timeout,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            follow_redirects=True,
            transport=transport,
            auth=auth,
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def __enter__(self) -> Crawler:
        for name in REDACTED_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in REDACTED_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)
        self.close()

    # ---- snapshots -------------------------------------------------------------------------
    def _open_snapshot(self) -> tuple[Path, dict, bool]:
        """The unfinished snapshot of the same crawl (resume) or a new one."""
        base = self.store.raw(self.source)
        for cp in sorted(base.glob(f"*/{CHECKPOINT}"), reverse=True):
            state = read_json(cp)
            if state.get("identity_hash") == self.identity_hash and not state.get("done"):
                log.info(
                    "%s: resuming snapshot %s at page %d (%d records so far)",
                    self.source,
                    cp.parent.name,
                    state["page"],
                    state["n_records"],
                )
                return cp.parent, state, True
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        folder = base / f"{stamp}-{self.identity_hash[:8]}"
        state = {
            "source": self.source,
            "identity_hash": self.identity_hash,
            "identity": self.identity,
            "snapshot": folder.name,
            "page": 0,
            "n_records": 0,
            "next": None,
            "done": False,
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        return folder, state, False

    def _checkpoint(self, folder: Path, state: dict) -> None:
        """Write the checkpoint atomically."""
        state["updated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        atomic_write_json(folder / CHECKPOINT, state)

    # ---- HTTP ------------------------------------------------------------------------------
    def _wait(self, rs: RetryCallState) -> float:
        """Retry-After when the server sent one, else exponential backoff with full jitter."""
        exc = rs.outcome.exception() if rs.outcome else None
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            w = min(exc.retry_after, self.config.max_retry_after)
        else:
            w = wait_random_exponential(multiplier=self.config.backoff_initial, max=self.config.backoff_max)(rs)
        self.stats.waits.append(w)
        self.stats.retries += 1
        log.warning("%s: %s; retry %d in %.2fs", self.source, self.redact(str(exc)), rs.attempt_number, w)
        return w

    def _scrub(self, body: bytes) -> bytes:
        """A page body as saved: secret values a server echoes (e.g. a key parameter in links.next) -> '***'."""
        for secret in self.redact.secrets:
            body = body.replace(secret.encode(), b"***")
        return body

    def _url(self, url: str, params: dict | None) -> httpx.URL:
        """url with params and the secret query parameters merged into its own query (httpx would replace it)."""
        merged = {**(params or {}), **self.secret_params}
        return httpx.URL(url).copy_merge_params(merged) if merged else httpx.URL(url)

    def _attempt(self, method: str, url: str, params: dict | None) -> httpx.Response:
        """One request through the rate limiter; transient failures become RetryableError."""
        self.stats.rate_limited_s += self.limiter.acquire()
        self.stats.requests += 1
        try:
            resp = self._client.request(method, self._url(url, params))
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise RetryableError(f"{type(exc).__name__} on {self.redact(url)}") from None
        shown = self.redact(str(resp.request.url))
        log.info("%s: GET %s -> %d", self.source, shown, resp.status_code)
        if resp.status_code in RETRY_STATUS or resp.status_code >= 500:
            raise RetryableError(
                f"HTTP {resp.status_code} from {shown}", parse_retry_after(resp.headers.get("Retry-After"))
            )
        if resp.status_code >= 400:
            raise self._refused(resp, shown)
        return resp

    def _refused(self, resp: httpx.Response, shown: str) -> MatlibError:
        """A one-line error for a 4xx, worded by what the response says (key, bot block, page size)."""
        resp.read()
        why = self.redact(explain_refusal(resp.status_code, resp.headers, resp.content))
        return MatlibError(f"{self.source}: HTTP {resp.status_code} from {shown}: {why}")

    def _retrying(self) -> Retrying:
        """The tenacity policy shared by every request."""
        return Retrying(
            stop=stop_after_attempt(self.config.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(RetryableError),
            reraise=True,
        )

    def fetch_json(self, request: PageRequest) -> tuple[bytes, Any]:
        """GET one page; (raw bytes, parsed JSON); truncated/invalid JSON is retried like a 5xx."""

        def once() -> tuple[bytes, Any]:
            resp = self._attempt("GET", request.url, request.params)
            body = resp.content
            try:
                return body, json.loads(body)
            except ValueError:
                raise RetryableError(
                    f"truncated or invalid JSON ({len(body)} bytes) from {self.redact(str(resp.request.url))}"
                ) from None

        try:
            return self._retrying()(once)
        except RetryableError as exc:
            raise MatlibError(f"{self.source}: gave up after {self.config.max_attempts} attempts: {exc}") from None

    def download(
        self, url: str, dest: Path, check: Callable[[bytes], str | None] | None = None, chunk: int = 1 << 20
    ) -> dict:
        """Stream url to dest atomically (retried as a whole); only HTTP 200 counts; {'sha256', 'size'}.

        check(first bytes) returns a reason when the body is not what was asked for (e.g. not bz2)."""
        shown = self.redact(url)

        def once() -> dict:
            self.stats.rate_limited_s += self.limiter.acquire()
            self.stats.requests += 1
            tmp = dest.with_name(f".{dest.name}.part")
            dest.parent.mkdir(parents=True, exist_ok=True)
            digest, n, head = hashlib.sha256(), 0, b""
            try:
                with self._client.stream("GET", self._url(url, None)) as resp:
                    log.info("%s: GET %s -> %d", self.source, self.redact(str(resp.request.url)), resp.status_code)
                    if resp.status_code in RETRY_STATUS or resp.status_code >= 500:
                        raise RetryableError(
                            f"HTTP {resp.status_code} from {shown}", parse_retry_after(resp.headers.get("Retry-After"))
                        )
                    if resp.status_code >= 400:
                        raise self._refused(resp, shown)
                    if resp.status_code != 200:
                        resp.read()
                        said = f", {len(resp.content)} bytes" if resp.content else ", empty body"
                        raise MatlibError(
                            f"{self.source}: HTTP {resp.status_code}{said} from {shown} instead of the "
                            f"file (a bot challenge or a redirect page, not the data); use the "
                            f"direct download URL or --mirror"
                        )
                    expected = resp.headers.get("Content-Length")
                    with open(tmp, "wb") as f:
                        for block in resp.iter_bytes(chunk):
                            if len(head) < 64:
                                head += block[: 64 - len(head)]
                            f.write(block)
                            digest.update(block)
                            n += len(block)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise RetryableError(f"{type(exc).__name__} while downloading {shown}") from None
            if expected is not None and int(expected) != n:
                raise RetryableError(f"short download: {n} of {expected} bytes")
            problem = "empty body" if n == 0 else (check(head) if check else None)
            if problem:
                tmp.unlink(missing_ok=True)
                raise MatlibError(f"{self.source}: HTTP 200 from {shown} but {problem}; not saved")
            tmp.replace(dest)
            return {"sha256": digest.hexdigest(), "size": n}

        try:
            return self._retrying()(once)
        except RetryableError as exc:
            raise MatlibError(f"{self.source}: gave up after {self.config.max_attempts} attempts: {exc}") from None

    def crawl_files(self, files: list[FileRequest]) -> CrawlResult:
        """Download files (e.g. a tarball and its exclusion list) into one snapshot, checkpointed per file;
        each file's sha256 is checked against the expected value (when known) and recorded in the checkpoint."""
        folder, state, resumed = self._open_snapshot()
        folder.mkdir(parents=True, exist_ok=True)
        got = state.setdefault("files", {})
        if not resumed:
            self._checkpoint(folder, state)
        for fr in files:
            if fr.filename in got and verify_file(folder / fr.filename, got[fr.filename]["sha256"]):
                continue
            info = self.download(fr.url, folder / fr.filename, fr.check)
            if fr.sha256 and info["sha256"] != fr.sha256:
                (folder / fr.filename).unlink(missing_ok=True)
                raise MatlibError(
                    f"{self.source}: {fr.filename} from {self.redact(fr.url)} has sha256 "
                    f"{info['sha256'][:16]}..., expected {fr.sha256[:16]}... (corrupt or changed "
                    f"file); not used"
                )
            got[fr.filename] = {**info, "expected_sha256": fr.sha256}
            state["page"] = len(got)
            self.stats.pages_fetched += 1
            self._checkpoint(folder, state)
        state.update(done=True, next=None)
        self._checkpoint(folder, state)
        return CrawlResult(
            snapshot=folder,
            pages=[folder / fr.filename for fr in files],
            n_records=0,
            resumed=resumed,
            stats=self.stats.as_dict(),
        )

    # ---- paging ------------------------------------------------------------------------------
    def crawl(self, paginator: Paginator, limit: int | None = None) -> CrawlResult:
        """Fetch every page (or until limit records), checkpointing after each; resumes a killed crawl."""
        folder, state, resumed = self._open_snapshot()
        folder.mkdir(parents=True, exist_ok=True)
        if state["page"] == 0 and state["next"] is None and not state["done"]:
            state["next"] = paginator.first().to_dict()
            self._checkpoint(folder, state)
        while not state["done"]:
            if state["next"] is None or (limit is not None and state["n_records"] >= limit):
                state["done"] = True
                self._checkpoint(folder, state)
                break
            request = PageRequest.from_dict(state["next"])
            body, payload = self.fetch_json(request)
            n = len(paginator.records(payload))
            atomic_write_bytes(folder / f"page-{state['page']:06d}.json", self._scrub(body))
            reached = limit is not None and state["n_records"] + n >= limit
            nxt = paginator.next(request, payload, state["n_records"] + n) if n and not reached else None
            state.update(
                page=state["page"] + 1,
                n_records=state["n_records"] + n,
                next=PageRequest(clean_url(nxt.url), nxt.params).to_dict() if nxt else None,
            )
            self.stats.pages_fetched += 1
            self._checkpoint(folder, state)
        pages = [folder / f"page-{i:06d}.json" for i in range(state["page"])]
        return CrawlResult(
            snapshot=folder, pages=pages, n_records=state["n_records"], resumed=resumed, stats=self.stats.as_dict()
        )


def iter_page_records(pages: Iterable[Path], paginator: Paginator, limit: int | None = None) -> Iterator[dict]:
    """Records of the saved pages in order, stopping after limit."""
    n = 0
    for p in pages:
        payload = json.loads(p.read_bytes())
        for rec in paginator.records(payload):
            if limit is not None and n >= limit:
                return
            n += 1
            yield rec
