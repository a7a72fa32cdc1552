"""Package layout that pyproject.toml cannot say on its own.

The top-level data/ folder ships as matlib.shipped; the Prefect flows/ and tasks/ folders ship inside it
(matlib/shipped/flows, matlib/shipped/tasks), never as top-level `flows` / `tasks` packages: the CLI loads them
by path (matlib/cli/entrypoints.py).
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["matlib", "matlib.*"])
    + ["matlib.shipped", "matlib.shipped.flows", "matlib.shipped.tasks"],
    package_dir={"matlib.shipped": "data", "matlib.shipped.flows": "flows", "matlib.shipped.tasks": "tasks"},
    package_data={"matlib.shipped": ["elements/*.csv", "elements/*.md", "samples/*.csv", "samples/*.md"]},
)
