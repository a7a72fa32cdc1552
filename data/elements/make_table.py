"""Generate the shipped element property tables from data installed with matminer and pymatgen.

Run from the repository root:  .venv/bin/python data/elements/make_table.py
Writes data/elements/magpie.csv (raw Magpie values, Z = 1..118, empty where Magpie has no value)
and data/elements/xenonpy.csv (58 properties, Z = 1..94, every gap filled; see README.md).
Nothing is downloaded: every value comes from files inside the installed packages.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
N_ELEMENTS = 118
XENONPY_MAX_Z = 94  # XenonPy's element table covers H..Pu
MIN_COVERAGE = 0.7  # a xenonpy column must have a raw value for >= 70 % of H..Pu

# The 22 properties of matminer's ElementProperty.from_preset("magpie").
MAGPIE_PRESET = [
    "Number",
    "MendeleevNumber",
    "AtomicWeight",
    "MeltingT",
    "Column",
    "Row",
    "CovalentRadius",
    "Electronegativity",
    "NsValence",
    "NpValence",
    "NdValence",
    "NfValence",
    "NValence",
    "NsUnfilled",
    "NpUnfilled",
    "NdUnfilled",
    "NfUnfilled",
    "NUnfilled",
    "GSvolume_pa",
    "GSbandgap",
    "GSmagmom",
    "SpaceGroupNumber",
]
# Magpie tables that are not scalar or are 0/1 flags: not used in the xenonpy table.
MAGPIE_SKIP_FOR_XENONPY = {
    "OxidationStates",
    "IonizationEnergies",
    "IsAlkali",
    "IsDBlock",
    "IsFBlock",
    "IsMetal",
    "IsMetalloid",
    "IsNonmetal",
}
# Extra pymatgen Element attributes (pymatgen/core/periodic_table.json) for the xenonpy table.
PYMATGEN_EXTRA = {
    "pmg_atomic_radius_calculated": "atomic_radius_calculated",
    "pmg_van_der_waals_radius": "van_der_waals_radius",
    "pmg_youngs_modulus": "youngs_modulus",
    "pmg_poissons_ratio": "poissons_ratio",
    "pmg_thermal_expansion": "coefficient_of_linear_thermal_expansion",
    "pmg_mineral_hardness": "mineral_hardness",
    "pmg_electrical_resistivity": "electrical_resistivity",
    "pmg_velocity_of_sound": "velocity_of_sound",
    "pmg_rigidity_modulus": "rigidity_modulus",
    "pmg_average_ionic_radius": "average_ionic_radius",
    "pmg_metallic_radius": "metallic_radius",
}


def _magpie_dir() -> Path:
    """Folder of matminer's shipped Magpie element tables."""
    import matminer

    return Path(matminer.__file__).parent / "utils" / "data_files" / "magpie_elementdata"


def read_magpie_table(name: str) -> np.ndarray:
    """One Magpie .table file as float values for Z = 1..118 (NaN where missing), as matminer reads it."""
    lines = (_magpie_dir() / f"{name}.table").read_text().splitlines()
    out = np.full(N_ELEMENTS, np.nan)
    for z in range(1, N_ELEMENTS + 1):
        try:
            out[z - 1] = float(lines[z - 1])
        except (ValueError, IndexError):
            pass
    return out


def element_frame() -> pd.DataFrame:
    """Z, symbol, group (column) and period (row) of the 118 elements, from pymatgen."""
    from pymatgen.core import Element

    rows = []
    for z in range(1, N_ELEMENTS + 1):
        el = Element.from_Z(z)
        rows.append({"Z": z, "symbol": el.symbol, "group": el.group, "period": el.row})
    return pd.DataFrame(rows)


def pymatgen_column(attr: str) -> np.ndarray:
    """A numeric pymatgen Element attribute for Z = 1..118 (NaN where pymatgen has none)."""
    from pymatgen.core import Element

    out = np.full(N_ELEMENTS, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for z in range(1, N_ELEMENTS + 1):
            try:
                v = getattr(Element.from_Z(z), attr)
                out[z - 1] = float(v) if v is not None else np.nan
            except (ValueError, TypeError, AttributeError, KeyError):
                pass
    return out


def fill_gaps(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Fill NaN with the mean of the same periodic-table group, else the column median."""
    out = values.copy()
    median = np.nanmedian(values)
    for i in np.flatnonzero(np.isnan(values)):
        same = (groups == groups[i]) & ~np.isnan(values)
        out[i] = values[same].mean() if same.any() else median
    return out


def make_magpie(elements: pd.DataFrame) -> pd.DataFrame:
    """Raw Magpie values of the preset's 22 properties (no imputation: done at load time)."""
    df = elements[["Z", "symbol"]].copy()
    for name in MAGPIE_PRESET:
        df[name] = read_magpie_table(name)
    return df


def make_xenonpy(elements: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """The completed ~58-property table for H..Pu, plus one provenance row per column."""
    n = XENONPY_MAX_Z
    groups = elements["group"].to_numpy()[:n]
    raw: dict[str, tuple[np.ndarray, str]] = {}
    names = sorted(p.stem for p in _magpie_dir().glob("*.table"))
    for name in names:
        if name not in MAGPIE_SKIP_FOR_XENONPY:
            raw[f"magpie_{name}"] = (read_magpie_table(name)[:n], f"matminer Magpie table {name}.table")
    for col, attr in PYMATGEN_EXTRA.items():
        raw[col] = (pymatgen_column(attr)[:n], f"pymatgen Element.{attr}")
    df = elements[["Z", "symbol"]].iloc[:n].copy()
    prov = []
    for col, (values, source) in raw.items():
        coverage = float(np.mean(~np.isnan(values)))
        if coverage < MIN_COVERAGE or np.nanstd(values) == 0:
            prov.append({"column": col, "source": source, "coverage": round(coverage, 3), "kept": False, "n_filled": 0})
            continue
        if col in ("pmg_electrical_resistivity",):  # spans 20 orders of magnitude: keep its log10
            values = np.log10(values)
            source += " (log10)"
        filled = fill_gaps(values, groups)
        df[col] = filled
        prov.append(
            {
                "column": col,
                "source": source,
                "coverage": round(coverage, 3),
                "kept": True,
                "n_filled": int(np.isnan(values).sum()),
            }
        )
    return df, prov


def main() -> None:
    """Write magpie.csv, xenonpy.csv and xenonpy_provenance.csv next to this script."""
    elements = element_frame()
    make_magpie(elements).to_csv(HERE / "magpie.csv", index=False)
    xen, prov = make_xenonpy(elements)
    xen.to_csv(HERE / "xenonpy.csv", index=False)
    pd.DataFrame(prov).to_csv(HERE / "xenonpy_provenance.csv", index=False)
    print(
        f"magpie.csv: {len(MAGPIE_PRESET)} properties; xenonpy.csv: {xen.shape[1] - 2} properties, {len(xen)} elements"
    )


if __name__ == "__main__":
    main()
