"""`matlib transfer fit` / `predict` through the real CLI entry point (one-line errors, files written)."""

import subprocess
import sys

import pandas as pd

from matlib.transfer.fit import StagedRun
from tests.transfer.conftest import esol_rows


def _matlib(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from matlib.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_fit_and_predict(small_library, esol_table, tmp_path):
    out = tmp_path / "run"
    r = _matlib(
        "transfer",
        "fit",
        "--library",
        str(small_library),
        "--train",
        str(esol_table),
        "--input-column",
        "smiles",
        "--target-column",
        "logSolubility",
        "--out",
        str(out),
        "--top-k",
        "2",
        "--seed",
        "1",
        "--repeats",
        "1",
        "--max-overlap",
        "1",
        "--exclude-dataset",
        "mp_gap_sample",
    )
    assert r.returncode == 0, r.stderr
    assert StagedRun.load(out / "stage").cfg.target_dataset == ("mp_gap_sample",)
    assert "candidates screened" in r.stdout and "Transfer vs direct" in r.stdout
    assert (out / "model" / "model.json").exists() and (out / "report.md").exists()
    new = esol_rows(300).tail(6).copy()
    new.loc[new.index[2], "smiles"] = "C1CC(("
    src = tmp_path / "new.csv"
    new.to_csv(src, index=False)
    r = _matlib("transfer", "predict", "--model", str(out), "--input", str(src), "--output", str(tmp_path / "p.csv"))
    assert r.returncode == 0, r.stderr
    p = pd.read_csv(tmp_path / "p.csv")
    assert p["smiles"].tolist() == new["smiles"].tolist()
    assert p["prediction"].isna().tolist() == [False, False, True, False, False, False]
    assert "1 not parseable" in r.stdout


def test_cli_bad_input_is_one_line(small_library, tmp_path):
    bad = tmp_path / "bad.csv"
    esol_rows(20).assign(y="abc").to_csv(bad, index=False)
    r = _matlib(
        "transfer",
        "fit",
        "--library",
        str(small_library),
        "--train",
        str(bad),
        "--input-column",
        "smiles",
        "--target-column",
        "y",
        "--out",
        str(tmp_path / "o"),
    )
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "not numeric" in r.stderr and "Traceback" not in r.stderr
    r = _matlib(
        "transfer",
        "predict",
        "--model",
        str(tmp_path / "nothing"),
        "--input",
        str(bad),
        "--output",
        str(tmp_path / "p.csv"),
    )
    assert r.returncode == 1 and "no transfer model" in r.stderr and r.stderr.strip().count("\n") == 0
