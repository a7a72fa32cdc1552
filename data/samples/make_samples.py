"""Regenerate the quickstart samples from ../shared/data (run from the repo root).

Every sample is a seeded random slice of a real table, rows copied unchanged. The QM9
slice is drawn only from molecules that are not in ESOL (canonical SMILES compared), so
the quickstart's source models never saw the target's molecules (the leakage guard of
shotgun transfer would otherwise leave them out).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pandas as pd

SHARED = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
OUT = Path(__file__).resolve().parent
SEED = 0

SLICES = [
    # (output file, source file, rows, columns kept, header renames)
    (
        "qm9_sample.csv",
        "qm9/qm9.csv.gz",
        3000,
        [
            "gdb_id",
            "smiles",
            "HOMO_LUMO_gap_au",
            "Polarizability_bohr3",
            "Heatcapacity_Cv_cal_mol_K",
            "Dipole_debye",
            "HOMO_au",
            "LUMO_au",
            "R2_bohr2",
            "ZPVE_au",
        ],
        {},
    ),
    (
        "mp_e_form_sample.csv",
        "mp/matbench_mp_e_form.csv",
        3000,
        ["formula", "target"],
        {"target": "e_form_eV_per_atom"},
    ),
    ("mp_gap_sample.csv", "mp/matbench_mp_gap.csv", 3000, ["formula", "target"], {"target": "band_gap_eV"}),
    ("esol_sample.csv", "targets/esol.csv", 150, ["smiles", "logSolubility"], {}),
    # the small library config's other sources (configs/library-small.yaml)
    ("mp_e_hull_sample.csv", "mp/mp_e_hull.csv", 3000, ["formula", "target"], {"target": "e_hull_eV_per_atom"}),
    ("oqmd_gap_sample.csv", "oqmd/oqmd_bandgap.csv", 3000, ["formula", "target"], {"target": "band_gap_eV"}),
    ("aflow_gap_sample.csv", "aflow/Egap.csv", 3000, ["formula", "target"], {"target": "Egap_eV"}),
    ("aflow_energy_sample.csv", "aflow/energy_atom.csv", 3000, ["formula", "target"], {"target": "energy_atom_eV"}),
    (
        "aflow_debye_sample.csv",
        "aflow/ael_debye_temperature.csv",
        3000,
        ["formula", "target"],
        {"target": "debye_temperature_K"},
    ),
]


def canonical(smiles: str) -> str | None:
    """RDKit canonical SMILES, or None when unparseable."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(str(smiles).strip())
    return Chem.MolToSmiles(mol) if mol is not None else None


def without_target_molecules(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of a SMILES table whose molecule is not in the ESOL target set."""
    esol = {canonical(s) for s in pd.read_csv(SHARED / "targets/esol.csv")["smiles"]}
    return df[[canonical(s) not in esol for s in df["smiles"]]]


def main() -> None:
    """Write each slice and print its provenance line."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    for out_name, src, n, cols, renames in SLICES:
        df = pd.read_csv(SHARED / src)
        if out_name.startswith("qm9"):
            df = without_target_molecules(df)
        part = df.sample(n=n, random_state=SEED).sort_index()[cols].rename(columns=renames)
        part.to_csv(OUT / out_name, index=False)
        digest = hashlib.sha256((OUT / out_name).read_bytes()).hexdigest()
        print(f"{out_name}: {n} of {len(df)} rows of shared/data/{src} (random_state={SEED}), sha256 {digest}")


if __name__ == "__main__":
    main()
