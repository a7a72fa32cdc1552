"""Package layout that pyproject.toml cannot say on its own: the top-level data/ folder ships as matlib.shipped."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["matlib", "matlib.*", "flows", "tasks"]) + ["matlib.shipped"],
    package_dir={"matlib.shipped": "data"},
    package_data={"matlib.shipped": ["elements/*.csv", "elements/*.md", "samples/*.csv", "samples/*.md"]},
)
