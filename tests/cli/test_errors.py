"""Bad input to `matlib` gives a one-line error, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run_matlib(*args: str, home: Path) -> subprocess.CompletedProcess:
    """Run the matlib CLI in a subprocess with its store under home."""
    env = {"MATLIB_HOME": str(home), "PATH": "/usr/bin:/bin", "PREFECT_HOME": str(home / "prefect")}
    return subprocess.run(
        [sys.executable, "-m", "matlib.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """The process failed with exactly one non-empty stderr line containing every needle."""
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), lines[0]


def test_unknown_command(tmp_path: Path) -> None:
    proc = run_matlib("frobnicate", home=tmp_path)
    assert proc.returncode == 2
    assert_one_line_error(proc, "frobnicate")


def test_unknown_option(tmp_path: Path) -> None:
    proc = run_matlib("data", "ls", "--bogus", home=tmp_path)
    assert_one_line_error(proc, "--bogus")


def test_import_missing_file(tmp_path: Path) -> None:
    proc = run_matlib(
        "data",
        "import",
        "--name",
        "x",
        "--file",
        str(tmp_path / "nope.csv"),
        "--input-column",
        "formula",
        "--target-column",
        "target",
        home=tmp_path,
    )
    assert_one_line_error(proc, "nope.csv")


def test_import_wrong_column(tmp_path: Path, samples_dir: Path) -> None:
    proc = run_matlib(
        "data",
        "import",
        "--name",
        "x",
        "--file",
        str(samples_dir / "mp_gap_sample.csv"),
        "--input-column",
        "formula",
        "--target-column",
        "no_such_column",
        home=tmp_path,
    )
    assert_one_line_error(proc, "no_such_column")


@pytest.mark.parametrize("column", ["input", "target"])
def test_transfer_fit_wrong_column(tmp_path: Path, samples_dir: Path, column: str) -> None:
    cols = {"input": "smiles", "target": "logSolubility"}
    cols[column] = "missing_col"
    proc = run_matlib(
        "transfer",
        "fit",
        "--library",
        str(tmp_path / "lib"),
        "--train",
        str(samples_dir / "esol_sample.csv"),
        "--input-column",
        cols["input"],
        "--target-column",
        cols["target"],
        "--out",
        str(tmp_path / "run"),
        home=tmp_path,
    )
    assert_one_line_error(proc, "esol_sample.csv", "no column 'missing_col'", "'smiles', 'logSolubility'")


def test_transfer_fit_missing_library(tmp_path: Path, samples_dir: Path) -> None:
    proc = run_matlib(
        "transfer",
        "fit",
        "--library",
        str(tmp_path / "no-lib"),
        "--train",
        str(samples_dir / "esol_sample.csv"),
        "--input-column",
        "smiles",
        "--target-column",
        "logSolubility",
        "--out",
        str(tmp_path / "run"),
        home=tmp_path,
    )
    assert_one_line_error(proc, f"no library '{tmp_path / 'no-lib'}'", "not a library folder")
    assert not (tmp_path / "run").exists()


def test_transfer_predict_missing_model(tmp_path: Path, samples_dir: Path) -> None:
    proc = run_matlib(
        "transfer",
        "predict",
        "--model",
        str(tmp_path / "no-run"),
        "--input",
        str(samples_dir / "esol_sample.csv"),
        "--output",
        str(tmp_path / "p.csv"),
        home=tmp_path,
    )
    assert_one_line_error(proc, "no-run")
