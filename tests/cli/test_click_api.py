"""The click exceptions `matlib` catches (matlib/cli/click_api.py) are the ones typer raises: fails if typer changes."""

from __future__ import annotations

import pytest
import typer

from matlib.cli import click_api


def _app() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("one")
    def one(n: int = typer.Option(1, "--n")) -> None:
        """A command with one integer option."""
        if n < 0:
            raise typer.Abort()

    @app.command("two")
    def two() -> None:
        """A second command, so the app has sub-commands."""

    return app


def test_typer_raises_the_usage_errors_matlib_catches() -> None:
    with pytest.raises(click_api.UsageError) as bad_option:
        _app()(args=["one", "--bogus"], standalone_mode=False)
    assert "--bogus" in bad_option.value.format_message()
    with pytest.raises(click_api.UsageError, match="valid integer"):
        _app()(args=["one", "--n", "x"], standalone_mode=False)
    with pytest.raises(click_api.NoArgsIsHelpError):
        _app()(args=[], standalone_mode=False)
    assert issubclass(click_api.UsageError, click_api.ClickException)


def test_typer_public_abort_is_what_it_raises() -> None:
    with pytest.raises(typer.Abort):
        _app()(args=["one", "--n", "-1"], standalone_mode=False)
