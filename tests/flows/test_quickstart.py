"""The quickstart flow end to end on the shipped samples (ephemeral Prefect, real data)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd


def test_quickstart_end_to_end(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)  # ephemeral mode, as on a fresh machine
    env.update(
        {"MATLIB_HOME": str(tmp_path / "store"), "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONUNBUFFERED": "1"}
    )
    proc = subprocess.run(
        [sys.executable, "-m", "matlib.cli", "quickstart", "--models-per-property", "3", "--epochs", "15"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Traceback" not in out

    store = tmp_path / "store"
    # 1. three datasets imported as content-hashed versions
    manifests = sorted(store.glob("datasets/*/*/manifest.json"))
    assert {p.parts[-3] for p in manifests} == {"qm9_sample", "mp_e_form_sample", "mp_gap_sample"}
    # 2. one molecular and one compositional descriptor table in Parquet
    tables = {p.parent.parent.name.split("-")[0] for p in store.glob("descriptors/*/*/part-*.parquet")}
    assert {"morgan", "magpie"} <= tables
    # 3. the library: 6 properties x 3 MLPs, and 4 QM9 properties x 1 GNN, in safetensors shards with a catalog
    lib = store / "library" / "quickstart"
    catalog = pd.read_parquet(lib / "catalog.parquet")
    assert len(catalog) == 22 and catalog["model_id"].is_unique
    gnns = catalog[catalog["model_type"] == "gnn"]
    assert len(gnns) == 4 and set(gnns["dataset"]) == {"qm9_sample"} and (gnns["status"] == "ok").all()
    assert set(catalog["property"]) == {
        "HOMO_LUMO_gap_au",
        "Polarizability_bohr3",
        "Heatcapacity_Cv_cal_mol_K",
        "Dipole_debye",
        "e_form_eV_per_atom",
        "band_gap_eV",
    }
    assert list(lib.glob("shards/*.safetensors"))
    assert not list(store.rglob("*.pkl")) and not list(store.rglob("*.pickle"))
    # 4. ranking printed next to the direct baselines, ranking table written
    run = store / "transfer" / "quickstart-esol"
    ranking = pd.read_parquet(run / "ranking.parquet")
    assert {"transfer", "direct"} <= set(ranking["kind"])
    assert set(gnns["model_id"]) <= set(ranking["model_id"])  # the graph networks are screened like the MLPs
    assert "direct" in out.lower() and "ranking" in out.lower()
    # 5. report with a parity plot, and its path printed; held-out predictions in input order
    report = run / "report.md"
    assert report.exists() and str(report) in out.replace("\n", "")
    assert list(run.glob("*.png"))
    preds = pd.read_csv(store / "transfer" / "quickstart-esol-inputs" / "holdout_predictions.csv")
    held = pd.read_csv(Path(__file__).resolve().parents[2] / "data" / "samples" / "esol_sample.csv").iloc[100:]
    assert len(preds) == len(held) == 50
    assert preds["smiles"].tolist() == held["smiles"].tolist()
    assert preds["prediction"].notna().all()
    # 6. the summary prints matlib's held-out MAE beside a plain RDKit-2D random forest's on the same split
    flat = " ".join(out.split())  # the console wraps long lines
    assert "plain random forest (300 trees) on RDKit 2D" in flat
    assert "nested CV MAE" in flat
    assert {"lower_90", "upper_90"} <= set(preds.columns)
