"""A non-editable install (a built wheel) carries the element tables, samples and flows as package data.

The Prefect `flows` and `tasks` folders ship inside matlib (matlib/shipped/), never as top-level packages, and the
`matlib` command still loads them by path from the installed copy.
"""

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
from matlib.cli.entrypoints import flows_root, load_flow
print(flows_root())
print(load_flow("flows/quickstart.py:quickstart").name)
"""

HELP = "import sys; from matlib.cli import main; main(['quickstart', '--help'])"


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
    for f in ("flows/quickstart.py", "flows/build_library.py", "tasks/library.py", "tasks/runner.py"):
        assert f"matlib/shipped/{f}" in names
    top_level = {n.split("/")[0] for n in names}
    assert not top_level & {"flows", "tasks"}, sorted(top_level)
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
    elements, samples, flows, flow_name = out.stdout.split()
    assert Path(elements).is_relative_to(target) and Path(samples).is_relative_to(target)
    assert Path(flows) == target / "matlib" / "shipped" and flow_name == "quickstart"
    assert not (target / "flows").exists() and not (target / "tasks").exists()
    cli = subprocess.run(
        [sys.executable, "-c", HELP],
        cwd=run,
        env={"PYTHONPATH": str(target), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "Import real samples" in cli.stdout and "--models-per-property" in cli.stdout
