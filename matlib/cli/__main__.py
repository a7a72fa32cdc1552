"""`python -m matlib.cli` runs the `matlib` command."""

from matlib.cli import main

main()
