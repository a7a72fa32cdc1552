"""The click exception classes the `matlib` command catches, imported in this one place.

typer >= 0.16 vendors its own click as the private module `typer._click` and raises that copy's exceptions (the
public `click` package's classes do not match them); typer's public API exports only `Abort` and `Exit`. So the
usage-error classes come from `typer._click` when it exists, else from `click` (older typer, built on plain click).
tests/cli/test_click_api.py fails loudly if typer stops raising these classes.
"""

from __future__ import annotations

try:
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer on plain click
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # type: ignore[assignment]

__all__ = ["ClickException", "NoArgsIsHelpError", "UsageError"]
