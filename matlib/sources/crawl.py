"""The one crawl mechanism: paging, per-page atomic checkpoint/resume, retries with backoff, rate limit."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from matlib.atomic import atomic_write_bytes, atomic_write_json, read_json
from matlib.errors import MatlibError
from matlib.hashing import spec_hash
from matlib.store import Store

log = logging.getLogger("matlib.sources")
CHECKPOINT = "checkpoint.json"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class Redactor:
    """Replaces secret values (API keys) in any text with '***'."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = [s for s in secrets if s]

    def __call__(self, text: str) -> str:
        """text with every secret replaced."""
        for s in self.secrets:
            text = text.replace(s, "***")
        return text


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

    def __init__(self, rate_per_second: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
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
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


@dataclass
class PageRequest:
    """One page to fetch: a URL and its query parameters (JSON-serialisable, never secrets)."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON form (for the checkpoint)."""
        return {"url": self.url, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict) -> "PageRequest":
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
        return {"requests": self.requests, "retries": self.retries, "waits": [round(w, 3) for w in self.waits],
                "rate_limited_s": round(self.rate_limited_s, 3), "pages_fetched": self.pages_fetched}


class Crawler:
    """Fetches pages for one source into raw/<source>/<snapshot>/, resuming an unfinished snapshot."""

    def __init__(self, store: Store, source: str, identity: dict, config: CrawlConfig | None = None,
                 headers: dict[str, str] | None = None, secrets: Iterable[str] = (),
                 transport: httpx.BaseTransport | None = None) -> None:
        self.store, self.source = store, source
        self.config = config or CrawlConfig()
        self.identity_hash = spec_hash({"source": source, **identity})
        self.identity = identity
        self.redact = Redactor(secrets)
        self._filter = _RedactFilter(self.redact)
        self.limiter = RateLimiter(self.config.rate_per_second)
        self.stats = CrawlStats()
        self._client = httpx.Client(timeout=self.config.timeout, headers=headers or {}, follow_redirects=True,
                                    transport=transport)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def __enter__(self) -> "Crawler":
        log.addFilter(self._filter)
        return self

    def __exit__(self, *exc: object) -> None:
        log.removeFilter(self._filter)
        self.close()

    # ---- snapshots -------------------------------------------------------------------------
    def _open_snapshot(self) -> tuple[Path, dict, bool]:
        """The unfinished snapshot of the same crawl (resume) or a new one."""
        base = self.store.raw(self.source)
        for cp in sorted(base.glob(f"*/{CHECKPOINT}"), reverse=True):
            state = read_json(cp)
            if state.get("identity_hash") == self.identity_hash and not state.get("done"):
                log.info("%s: resuming snapshot %s at page %d (%d records so far)", self.source,
                         cp.parent.name, state["page"], state["n_records"])
                return cp.parent, state, True
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        folder = base / f"{stamp}-{self.identity_hash[:8]}"
        state = {"source": self.source, "identity_hash": self.identity_hash, "identity": self.identity,
                 "snapshot": folder.name, "page": 0, "n_records": 0, "next": None, "done": False,
                 "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        return folder, state, False

    def _checkpoint(self, folder: Path, state: dict) -> None:
        """Write the checkpoint atomically."""
        state["updated_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
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

    def _attempt(self, method: str, url: str, params: dict | None) -> httpx.Response:
        """One request through the rate limiter; transient failures become RetryableError."""
        self.stats.rate_limited_s += self.limiter.acquire()
        self.stats.requests += 1
        try:
            resp = self._client.request(method, url, params=params or None)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise RetryableError(f"{type(exc).__name__} on {self.redact(url)}") from None
        shown = self.redact(str(resp.request.url))
        log.info("%s: GET %s -> %d", self.source, shown, resp.status_code)
        if resp.status_code in RETRY_STATUS or resp.status_code >= 500:
            raise RetryableError(f"HTTP {resp.status_code} from {shown}",
                                 parse_retry_after(resp.headers.get("Retry-After")))
        if resp.status_code >= 400:
            hint = " (check the API key)" if resp.status_code in (401, 403) else ""
            raise MatlibError(f"{self.source}: HTTP {resp.status_code} from {shown}{hint}")
        return resp

    def _retrying(self) -> Retrying:
        """The tenacity policy shared by every request."""
        return Retrying(stop=stop_after_attempt(self.config.max_attempts), wait=self._wait,
                        retry=retry_if_exception_type(RetryableError), reraise=True)

    def fetch_json(self, request: PageRequest) -> tuple[bytes, Any]:
        """GET one page; (raw bytes, parsed JSON); truncated/invalid JSON is retried like a 5xx."""
        def once() -> tuple[bytes, Any]:
            resp = self._attempt("GET", request.url, request.params)
            body = resp.content
            try:
                return body, json.loads(body)
            except ValueError:
                raise RetryableError(f"truncated or invalid JSON ({len(body)} bytes) from "
                                     f"{self.redact(str(resp.request.url))}") from None
        try:
            return self._retrying()(once)
        except RetryableError as exc:
            raise MatlibError(f"{self.source}: gave up after {self.config.max_attempts} attempts: {exc}") from None

    def download(self, url: str, dest: Path, chunk: int = 1 << 20) -> Path:
        """Stream url to dest atomically (retried as a whole); returns dest."""
        def once() -> Path:
            self.stats.rate_limited_s += self.limiter.acquire()
            self.stats.requests += 1
            tmp = dest.with_name(f".{dest.name}.part")
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with self._client.stream("GET", url) as resp:
                    log.info("%s: GET %s -> %d", self.source, self.redact(str(resp.request.url)), resp.status_code)
                    if resp.status_code in RETRY_STATUS or resp.status_code >= 500:
                        raise RetryableError(f"HTTP {resp.status_code} from {self.redact(url)}",
                                             parse_retry_after(resp.headers.get("Retry-After")))
                    if resp.status_code >= 400:
                        raise MatlibError(f"{self.source}: HTTP {resp.status_code} from {self.redact(url)}")
                    expected = resp.headers.get("Content-Length")
                    n = 0
                    with open(tmp, "wb") as f:
                        for block in resp.iter_bytes(chunk):
                            f.write(block)
                            n += len(block)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise RetryableError(f"{type(exc).__name__} while downloading {self.redact(url)}") from None
            if expected is not None and int(expected) != n:
                raise RetryableError(f"short download: {n} of {expected} bytes")
            tmp.replace(dest)
            return dest
        try:
            return self._retrying()(once)
        except RetryableError as exc:
            raise MatlibError(f"{self.source}: gave up after {self.config.max_attempts} attempts: {exc}") from None

    def crawl_file(self, url: str, filename: str) -> CrawlResult:
        """Download one file (e.g. a tarball) into a snapshot, with the same checkpoint/resume rules."""
        folder, state, resumed = self._open_snapshot()
        if not state["done"]:
            self.download(url, folder / filename)
            state.update(page=1, done=True, next=None, file=filename)
            self.stats.pages_fetched += 1
            self._checkpoint(folder, state)
        return CrawlResult(snapshot=folder, pages=[folder / filename], n_records=0, resumed=resumed,
                           stats=self.stats.as_dict())

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
            atomic_write_bytes(folder / f"page-{state['page']:06d}.json", body)
            nxt = paginator.next(request, payload, state["n_records"] + n) if n else None
            state.update(page=state["page"] + 1, n_records=state["n_records"] + n,
                         next=nxt.to_dict() if nxt else None)
            self.stats.pages_fetched += 1
            self._checkpoint(folder, state)
        pages = [folder / f"page-{i:06d}.json" for i in range(state["page"])]
        return CrawlResult(snapshot=folder, pages=pages, n_records=state["n_records"], resumed=resumed,
                           stats=self.stats.as_dict())


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
