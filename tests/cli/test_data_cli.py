"""`matlib data import|refresh|ls` as a user runs them (real subprocesses, real fixture server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.http_server import FixtureServer

REPO = Path(__file__).resolve().parents[2]


def _matlib(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MATLIB_HOME": str(home)}
    env.pop("MP_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "matlib.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_import_ls_and_errors(real_data, tmp_path):
    home = tmp_path / "home"
    r = _matlib(
        "data",
        "import",
        "--name",
        "eform",
        "--file",
        str(real_data / "mp" / "matbench_mp_e_form.csv"),
        "--input-column",
        "formula",
        "--target-column",
        "target",
        "--duplicates",
        "mean",
        home=home,
    )
    assert r.returncode == 0, r.stderr
    assert "rows kept" in r.stdout and "quarantined" in r.stdout and "averaged into one record each" in r.stdout
    r = _matlib(
        "data",
        "import",
        "--name",
        "poly",
        "--file",
        str(real_data / "targets" / "polymer_o2_permeability.csv"),
        "--input-column",
        "SMILES",
        "--target-column",
        "o2",
        home=home,
    )
    assert r.returncode == 0 and "poly@" in r.stdout and "595 rows kept, 0 quarantined" in r.stdout
    r = _matlib("data", "ls", home=home)
    assert r.returncode == 0 and "* eform@" in r.stdout and "* poly@" in r.stdout and "molecule" in r.stdout
    r = _matlib(
        "data",
        "import",
        "--name",
        "x",
        "--file",
        str(tmp_path / "none.csv"),
        "--input-column",
        "formula",
        "--target-column",
        "y",
        home=home,
    )
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: file not found")
    r = _matlib("data", "refresh", "--source", "mp", home=home)
    assert r.returncode == 1 and "MP_API_KEY" in r.stderr and "Traceback" not in r.stderr
    r = _matlib("data", "refresh", "--source", "nosuch", home=home)
    assert r.returncode == 1 and "unknown source 'nosuch'" in r.stderr


def test_refresh_optimade_from_cli(tmp_path):
    with FixtureServer() as srv:
        r = _matlib(
            "data",
            "refresh",
            "--source",
            "optimade",
            "--url",
            srv.url,
            "--limit",
            "12",
            "--page-size",
            "5",
            "--rate",
            "0",
            "--name",
            "demo",
            home=tmp_path / "home",
        )
    assert r.returncode == 0, r.stderr
    assert "demo@" in r.stdout and "12 rows kept, 0 quarantined" in r.stdout and "+12 added" in r.stdout


def test_refresh_from_a_mirror_and_credentials_never_printed(tmp_path):
    """--mirror DIR answers instead of the service; a --url with credentials is never echoed (issue 15, item 10)."""
    import importlib.util

    from tests.fixtures import TEST_DATA

    spec = importlib.util.spec_from_file_location("build_mirror", REPO / "scripts" / "build_mirror.py")
    bm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bm)
    bm.build_from_shared(TEST_DATA, tmp_path / "mirror", rows=20, sources=("aflow",))
    r = _matlib(
        "data",
        "refresh",
        "--source",
        "aflow",
        "--mirror",
        str(tmp_path / "mirror"),
        "--rate",
        "0",
        home=tmp_path / "home",
    )
    assert r.returncode == 0, r.stderr
    assert "aflow@" in r.stdout and "60 rows kept, 0 quarantined" in r.stdout
    with FixtureServer() as srv:
        srv.fail("oqmd", "403key")
        url = srv.url.replace("http://", "http://bob:hunter2-SECRET@") + "?token=tk-SECRET-0042"
        r = _matlib("data", "refresh", "--source", "oqmd", "--url", url, "--rate", "0", home=tmp_path / "home")
    assert r.returncode == 1 and "HTTP 403" in r.stderr and "check the API key" in r.stderr
    everything = (
        r.stdout + r.stderr + "".join(p.read_text(errors="replace") for p in (tmp_path / "home").rglob("*.json"))
    )
    assert "hunter2-SECRET" not in everything and "tk-SECRET-0042" not in everything
