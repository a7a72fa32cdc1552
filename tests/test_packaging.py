"""A non-editable install (a built wheel) carries the element tables and samples as package data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
from matlib.resources import shipped_path
from matlib.descriptors import get_featurizer
from matlib.quickstart import samples_dir
print(shipped_path("elements", "magpie.csv"))
print(samples_dir())
res = get_featurizer("magpie").featurize(["NaCl", "Fe2O3"])
assert res.ok.all(), res.reasons
"""


def test_wheel_ships_data_and_works_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wheel = next(wheels.glob("matlib-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("elements/magpie.csv", "elements/xenonpy.csv", "samples/esol_sample.csv", "samples/qm9_sample.csv"):
        assert f"matlib/shipped/{f}" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    run = tmp_path / "elsewhere"
    run.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=run,
        env={"PYTHONPATH": str(target), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    elements, samples = out.stdout.split()
    assert Path(elements).is_relative_to(target) and Path(samples).is_relative_to(target)
