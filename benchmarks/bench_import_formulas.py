"""Formula validation/normalisation speed of `matlib data import` vs pymatgen per row (same run, same rows).

Usage: .venv/bin/python benchmarks/bench_import_formulas.py [N] [--data-root DIR]  (default: ../shared/data)
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from data_root import add_data_root, data_root
from pymatgen.core import Composition

from matlib.datasets.validate import normalise_inputs, reduced_formula


def main(n: int = 20000, root: Path = Path(".")) -> None:
    """Time both on the first n OQMD formulas and print the ratio."""
    formulas = pd.read_csv(root / "oqmd" / "oqmd_bandgap.csv", nrows=n)["formula"]
    t0 = time.perf_counter()
    base = [Composition(f).reduced_formula for f in formulas]
    t_base = time.perf_counter() - t0
    reduced_formula.cache_clear()
    t0 = time.perf_counter()
    norm, reason = normalise_inputs(formulas, "composition")
    t_ours = time.perf_counter() - t0
    assert reason.isna().all() and len(base) == len(norm)
    print(
        f"rows={len(formulas)} pymatgen_per_row={t_base:.2f}s matlib_cached={t_ours:.2f}s "
        f"speedup={t_base / t_ours:.1f}x"
    )


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, nargs="?", default=20000)
    add_data_root(ap)
    args = ap.parse_args()
    main(args.n, data_root(args.data_root))
