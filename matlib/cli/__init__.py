"""The `matlib` command: one Typer app; each room registers its sub-commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer
from typer import Abort, Exit

from matlib.cli.click_api import ClickException, NoArgsIsHelpError, UsageError
from matlib.errors import MatlibError

app = typer.Typer(
    name="matlib",
    help="matlib: build a library of pretrained property models and run shotgun transfer learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    """Attach every room's sub-commands to the root app."""
    from matlib.cli import data, descriptors, library, quickstart, transfer

    app.add_typer(data.app, name="data", help="Crawl, import and list versioned datasets.")
    app.add_typer(descriptors.app, name="descriptors", help="Compute descriptor tables.")
    app.add_typer(library.app, name="library", help="Build, list and inspect model libraries.")
    app.add_typer(transfer.app, name="transfer", help="Shotgun transfer: fit and predict.")
    quickstart.register(app)


def _fail(message: str, code: int) -> None:
    """Print one line to stderr and exit with code."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    sys.stderr.write(f"error: {first}\n")
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI, turning every error into a one-line message."""
    _register()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = app(args=args, prog_name="matlib", standalone_mode=False)
    except NoArgsIsHelpError:
        raise SystemExit(0) from None
    except UsageError as exc:
        _fail(exc.format_message(), 2)
    except ClickException as exc:
        _fail(exc.format_message(), 1)
    except Abort:
        _fail("aborted", 130)
    except Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except MatlibError as exc:
        _fail(str(exc), 1)
    except FileNotFoundError as exc:
        _fail(f"file not found: {exc.filename or exc}", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("MATLIB_DEBUG"):
            raise
        _fail(f"{type(exc).__name__}: {exc} (set MATLIB_DEBUG=1 for the traceback)", 1)
    raise SystemExit(rv if isinstance(rv, int) else 0)
