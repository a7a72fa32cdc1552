"""One-line wording of a refused request (4xx) by what the response itself says: key, bot block, page size."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

_BOT = re.compile(
    r"(?i)captcha|challenge|bot[ -]?(?:protection|detection|block)|are you (?:a )?human|"
    r"access denied|request (?:was )?blocked|web application firewall|\bwaf\b|cloudflare|"
    r"akamai|incapsula|unusual traffic"
)
_KEY = re.compile(
    r"(?i)api[ _-]?key|x-api-key|invalid key|token|credential|unauthori[sz]ed|not authenticated|"
    r"authenticat"
)
_LIMIT = re.compile(r"(?i)page[_ ]?limit|_limit|per[_ ]page|page[_ ]size|\blimit\b|too (?:many|large)|maximum|max[_ ]")
_WAF_HEADERS = ("cf-mitigated", "x-amzn-waf-action", "x-datadome", "x-sucuri-block", "x-iinfo")


def server_message(body: bytes, limit: int = 200) -> str:
    """The server's own words: a JSON error's detail/message/errors text, else the body's first line."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for key in ("detail", "message", "error", "errors", "title"):
            if payload.get(key):
                value = payload[key]
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    value = "; ".join(str(v.get("detail") or v.get("title") or v) for v in value)
                text = str(value)
                break
    text = re.sub(r"<[^>]+>", " ", text)  # an HTML page: its words only
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def explain_refusal(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """Why a 401/403/4xx happened, judged from the response: a bad key, a bot block, or a refused page size."""
    said = server_message(body)
    lower = {k.lower(): v for k, v in headers.items()}
    is_html = "html" in lower.get("content-type", "")
    if any(h in lower for h in _WAF_HEADERS) or _BOT.search(said) or (status == 403 and is_html and not said):
        why = (
            "blocked as a bot by the service's firewall, not a key problem: wait and retry, lower --rate, "
            "or use --mirror"
        )
    elif _LIMIT.search(said) and status in (400, 403, 413, 422):
        why = "the server refused the page size: lower --page-size"
    elif status == 401 or _KEY.search(said):
        why = "check the API key"
    else:
        why = "the server refused the request"
    return f"{why} (server said: {said!r})" if said else why
