"""How user-provided text is shown in messages: cut to a readable length (one mechanism for every reason)."""

from __future__ import annotations

SHOW_CHARS = 60  # user text quoted in a reason or a report cell is cut to this many characters


def shorten(text: str, limit: int = SHOW_CHARS) -> str:
    """text cut to limit characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[:limit] + "…"
