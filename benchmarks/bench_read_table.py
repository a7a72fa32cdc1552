"""Speed of the row-wise CSV reader (`matlib.datasets.textfile.read_text_table`, which sets bad rows aside with
their line numbers) against `pandas.read_csv` (which refuses the whole file on one bad row), same file, same run;
and of the exact formula factorisation in `amount_matrix` against `pandas.factorize`.

Usage: .venv/bin/python benchmarks/bench_read_table.py [--rows N] [--data-root DIR]  (default: ../shared/data)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from data_root import add_data_root, data_root

from matlib.datasets.textfile import read_text_table
from matlib.descriptors.composition import amount_matrix
from matlib.text import factorize


def _best(fn, repeat: int = 3) -> float:
    """Best wall time of repeat calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(rows: int, root: Path) -> None:
    """Print both timings and their ratio."""
    src = root / "oqmd" / "oqmd_bandgap.csv"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        pd.read_csv(src, nrows=rows, dtype=str, keep_default_na=False).to_csv(path, index=False)
        t_pd = _best(lambda: pd.read_csv(path, keep_default_na=False, na_values=[""]))
        t_ours = _best(lambda: read_text_table(path))
        n = len(read_text_table(path).frame)
        formulas = pd.read_csv(path, usecols=["formula"])["formula"].tolist()
    print(f"rows={n} pandas_read_csv={t_pd:.3f}s read_text_table={t_ours:.3f}s ratio={t_ours / t_pd:.1f}x")
    t_pdf = _best(lambda: pd.factorize(pd.Series(formulas, dtype=object)))
    t_fac = _best(lambda: factorize(formulas))
    t_am = _best(lambda: amount_matrix(formulas), repeat=1)
    print(
        f"formulas={len(formulas)} pandas_factorize={t_pdf:.3f}s exact_factorize={t_fac:.3f}s "
        f"ratio={t_fac / t_pdf:.1f}x; amount_matrix total={t_am:.3f}s"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    add_data_root(ap)
    args = ap.parse_args()
    main(args.rows, data_root(args.data_root))
