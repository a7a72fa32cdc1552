"""Prefect artifacts for flow runs: a Markdown summary and links to report files.

Call these from inside a flow (or task) run. Never pass secrets (tokens, API keys,
credentials) in the markdown or the link: artifacts are stored in the Prefect database
and shown in the UI to everyone with access.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd
from prefect.artifacts import create_link_artifact, create_markdown_artifact

from matlib.errors import MatlibError

_KEY_OK = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SECRET_HINT = re.compile(r"(api[_-]?key|token|secret|password)\s*[=:]\s*\S{6,}", re.IGNORECASE)


def artifact_key(*parts: str) -> str:
    """A valid artifact key (lowercase letters, digits, dashes) built from free-form parts."""
    raw = "-".join(p for p in parts if p)
    key = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
    key = re.sub(r"-{2,}", "-", key)
    if not key:
        raise MatlibError(f"cannot build an artifact key from {parts!r}")
    return key[:100]


def _check_key(key: str) -> str:
    """Validate an artifact key (Prefect allows only lowercase letters, digits and dashes)."""
    if not _KEY_OK.match(key):
        raise MatlibError(f"artifact key {key!r} must contain only lowercase letters, digits and dashes")
    return key


def _check_no_secret(text: str, where: str) -> None:
    """Refuse text that looks like it carries a credential."""
    if _SECRET_HINT.search(text):
        raise MatlibError(f"{where} looks like it contains a secret (key/token/password); refusing to publish it")


def publish_markdown(key: str, markdown: str, description: str | None = None) -> UUID:
    """Publish a Markdown artifact under key for the current flow run."""
    _check_key(key)
    _check_no_secret(markdown, f"artifact {key!r}")
    return create_markdown_artifact(markdown=markdown, key=key, description=description)


def publish_link(key: str, path: str | Path, description: str | None = None) -> UUID:
    """Publish a link artifact to a report file (a local path becomes a file:// URI)."""
    _check_key(key)
    text = str(path)
    if "://" in text:
        link = text
        label = text.rsplit("/", 1)[-1] or text
    else:
        p = Path(text).expanduser().resolve()
        link = p.as_uri()
        label = p.name
    _check_no_secret(link, f"link {key!r}")
    return create_link_artifact(link=link, link_text=label, key=key, description=description)


def _cell(value: Any) -> str:
    """Format one table cell for Markdown: floats to 4 significant digits, `|` escaped, one line."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None = None) -> str:
    """Render rows (dicts) as a Markdown table (`DataFrame.to_markdown`, cells formatted by `_cell`)."""
    if not rows:
        return "_(none)_\n"
    cols = list(columns) if columns is not None else list(rows[0].keys())
    frame = pd.DataFrame([{c: _cell(r.get(c, "")) for c in cols} for r in rows], columns=cols)
    return frame.to_markdown(index=False, disable_numparse=True) + "\n"


def counts_markdown(
    title: str,
    counts: Mapping[str, Any],
    table: Sequence[Mapping[str, Any]] | None = None,
    links: Mapping[str, str | Path] | None = None,
) -> str:
    """A run summary: a title, a key/value list of counts, an optional table and report files."""
    out = [f"# {title}", ""]
    for k, v in counts.items():
        out.append(f"- **{k}**: {_cell(v)}")
    out.append("")
    if table:
        out.append(markdown_table(table))
    if links:
        out.append("## Report files")
        for label, path in links.items():
            out.append(f"- {label}: `{path}`")
        out.append("")
    return "\n".join(out)
