"""`matlib data import` with hostile names and files, as a user runs it (issue 15, defects 9, 11, 13)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _matlib(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MATLIB_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "matlib.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_bad_names_are_one_line_errors_and_write_nothing(real_data, tmp_path):
    home = tmp_path / "home"
    esol = str(real_data / "targets" / "esol.csv")
    for name in ("..", ".", "two\nlines", "n" * 300, "a/b"):
        r = _matlib(
            "data",
            "import",
            "--name",
            name,
            "--file",
            esol,
            "--input-column",
            "smiles",
            "--target-column",
            "logSolubility",
            home=home,
        )
        assert r.returncode == 1, (name, r.stdout)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: invalid dataset name"), r.stderr
        assert "OSError" not in r.stderr and "Traceback" not in r.stderr
    assert not home.exists() or not any(home.rglob("*.parquet"))
    r = _matlib("data", "ls", home=home)
    assert r.returncode == 0 and "no datasets yet" in r.stdout


def test_one_bad_row_is_quarantined_not_the_file(real_data, tmp_path):
    lines = (real_data / "targets" / "esol.csv").read_bytes().splitlines(keepends=True)[:41]
    lines[3] = lines[3][:1] + b"\xff" + lines[3][1:]  # not UTF-8
    lines[6] = lines[6].rstrip(b"\r\n") + b",extra\n"  # an extra field
    path = tmp_path / "esol40.csv"
    path.write_bytes(b"".join(lines))
    r = _matlib(
        "data",
        "import",
        "--name",
        "esol40",
        "--file",
        str(path),
        "--input-column",
        "smiles",
        "--target-column",
        "logSolubility",
        home=tmp_path / "home",
    )
    assert r.returncode == 0, r.stderr
    assert "38 rows kept, 2 quarantined" in r.stdout
    assert "quarantined 1: line 4: not valid UTF-8" in r.stdout and "quarantined 1: line 7: 3 fields" in r.stdout
    assert "unreadable rows: 2 of 40" in r.stdout
