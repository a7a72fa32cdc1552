"""The Prefect flows the CLI runs, loaded by entrypoint path (`flows/<file>.py:<flow>`, as prefect.yaml names them).

matlib never imports Prefect, `flows` or `tasks`: they sit above it (flows -> tasks -> matlib). A CLI command that runs
a flow resolves its entrypoint here at run time, in the folder that holds `flows/` and `tasks/`: the source checkout
matlib runs from, else the copy a wheel ships as `matlib/shipped/{flows,tasks}` (nothing named `flows` or `tasks` is
installed into site-packages). That folder goes first on `sys.path` and `PYTHONPATH`, so Dask workers started by the
flow import the same tasks.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matlib.errors import MatlibError
from matlib.resources import shipped_root

FLOW_PACKAGES = ("flows", "tasks")


def _holds_flows(root: Path) -> bool:
    """True if root holds the flows/ and tasks/ packages."""
    return all((root / name / "__init__.py").is_file() for name in FLOW_PACKAGES)


def flows_root() -> Path:
    """The folder holding flows/ and tasks/: the source checkout of this matlib, else the copy shipped with it."""
    checkout = Path(__file__).resolve().parents[2]  # the repository root when run from a checkout
    if (checkout / "prefect.yaml").is_file() and _holds_flows(checkout):
        return checkout
    if _holds_flows(shipped_root()):
        return shipped_root()
    raise MatlibError("the Prefect flows (flows/, tasks/) are missing from this matlib installation")


def load_flow(entrypoint: str) -> Callable[..., Any]:
    """The flow named by 'flows/<file>.py:<name>', imported from `flows_root()`."""
    path, _, name = entrypoint.partition(":")
    root = str(flows_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if root not in paths:  # Dask worker processes import the tasks by module name too
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *filter(None, paths)])
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    where = Path(module.__file__ or "").resolve()
    if not where.is_relative_to(Path(root).resolve()):
        raise MatlibError(f"flow module {module.__name__} was imported from {where}, not from {root}")
    flow: Callable[..., Any] = getattr(module, name)
    return flow
