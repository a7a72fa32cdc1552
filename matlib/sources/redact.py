"""Redaction of credentials: URL userinfo, key-like query parameters and known secret values."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

# query parameter names whose values are credentials (matched case-insensitively, as a whole name or a suffix)
KEY_PARAM = re.compile(
    r"(?i)(?:^|[_-])(?:api[_-]?key|apikey|key|token|access[_-]?token|secret|password|passwd|pwd|"
    r"auth|authorization|signature|sig|credentials?)$"
)
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#@\s]+)@")
_QUERY_PARAM = re.compile(r"(?P<pre>[?&;])(?P<name>[^=&;#\s?]+)=(?P<value>[^&;#\s]*)")


def redact_url(text: str) -> str:
    """text with every URL's userinfo and key-like query values replaced by '***'."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}***@", text)
    return _QUERY_PARAM.sub(lambda m: f"{m['pre']}{m['name']}=***" if KEY_PARAM.search(m["name"]) else m[0], text)


class Redactor:
    """Replaces known secret values (API keys) and URL credentials in any text with '***'."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """text with every secret and URL credential replaced."""
        for s in self.secrets:
            text = text.replace(s, "***")
        return redact_url(text)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None, dict[str, str]]:
    """(URL without credentials, (user, password) from its userinfo or None, its key-like query parameters).

    The crawler sends the credentials with every request (basic auth, query parameters) but keeps only the clean
    URL in checkpoints, manifests and logs."""
    parts = urlsplit(url)
    auth = None
    if parts.username is not None or parts.password is not None:
        auth = (unquote(parts.username or ""), unquote(parts.password or ""))
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secret = {k: v for k, v in pairs if KEY_PARAM.search(k)}
    return clean_url(url), auth, secret


def clean_url(url: str) -> str:
    """The URL without userinfo and without key-like query parameters."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query and "=" in query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not KEY_PARAM.search(k)]
        if len(kept) != len(pairs):
            query = urlencode(kept, safe=",:()$'*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
