"""`matlib quickstart`: the whole pipeline on the shipped samples."""

import typer


def register(app: typer.Typer) -> None:
    """Add the quickstart command to the root app."""
