"""Final-choice rules judged on training rows only (issue #17): nested CV MAE of variant rules on saved runs.

Every transfer run folder keeps `options_oof.parquet`: each menu option's out-of-fold predictions with the folds.
From it, a choice rule is re-made without each held-out fold (`select.fold_select_oof`, the nested score the run
itself reports for its rule), so rules can be compared on many runs without any test row. Run folders are, for
example, those of `benchmarks/transfer_accuracy.py` (out/benchmarks/transfer_accuracy/runs/<tag>/<target>-<mode>-
<n>-<repeat>/); the printed ratio is each rule's nested MAE over the current rule's, per run, averaged by (mode, n)
and by cell.

    .venv/bin/python benchmarks/choice_rules.py out/benchmarks/transfer_accuracy/runs/<tag> [--z 0 0.5 1 1.5 2]
        [--ensemble-sizes 2 3 4 5]

Variants: the run's reference at each z; the reference always; the lowest CV MAE; the averaged direct option as
the reference; and the ensemble option rebuilt from the k CV-best other options for each k (k = 3 re-makes the
run's own, a check), as the reference at the current z.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from matlib.transfer.choice import CHOICE_SE, DIRECT_MEAN_OPTION, ENSEMBLE_OPTION, chooser, ensemble_oof, lowest_mae
from matlib.transfer.cv import Folds, cv_scores
from matlib.transfer.select import fold_select_oof, read_options_oof

Rule = Callable[[dict[str, np.ndarray], np.ndarray], str]


def load_options(run: Path) -> tuple[dict[str, np.ndarray], np.ndarray, Folds, dict]:
    """Every option's out-of-fold predictions [r, n], the target, the folds and run.json of one run folder."""
    oofs, y, folds = read_options_oof(pd.read_parquet(run / "options_oof.parquet"))
    return oofs, y, folds, json.loads((run / "run.json").read_text())


def rules(reference: str | None, names: list[str], zs: list[float]) -> dict[str, Rule]:
    """The rule variants: the run's reference at each z, the reference always, the lowest CV MAE, and the averaged
    direct option as the reference (where the menu has it)."""
    out: dict[str, Rule] = {f"z={z:g}": chooser(reference, z) for z in zs}
    out["reference always"] = lambda oofs, y: reference if reference in oofs else lowest_mae(oofs, y)
    out["lowest CV MAE"] = lowest_mae
    direct_mean = next((o for o in names if o.startswith(DIRECT_MEAN_OPTION)), None)
    if direct_mean is not None:
        out["averaged direct as reference"] = chooser(direct_mean, CHOICE_SE)
    return out


def ensemble_menus(oofs: dict[str, np.ndarray], y: np.ndarray, folds: Folds, sizes: list[int]) -> dict[str, tuple]:
    """Menus whose ensemble option averages the k CV-best other options (re-picked inside each fold), for each k in
    sizes, each with its rule: that ensemble as the reference at the current z."""
    base = {o: v for o, v in oofs.items() if not o.startswith(ENSEMBLE_OPTION)}
    out = {}
    for k in sizes:
        if 2 <= k < len(base):
            name = f"{ENSEMBLE_OPTION} {k} options"
            out[f"ensemble of {k}"] = (base | {name: ensemble_oof(base, y, k, folds)}, chooser(name, CHOICE_SE))
    return out


def score_run(run: Path, zs: list[float], sizes: list[int]) -> dict[str, float | str | int]:
    """Nested MAE of every rule on one run folder, with the folder's (target, mode, n, repeat)."""
    oofs, y, folds, record = load_options(run)
    target, mode, size, rep = run.name.rsplit("-", 3)
    row: dict[str, float | str | int] = {"target": target, "mode": mode, "size": int(size), "repeat": int(rep)}
    row["current"] = record["nested_cv_mae"]["chosen"]
    for name, rule in rules(record["choice"].get("reference"), list(oofs), zs).items():
        row[name] = cv_scores(fold_select_oof(oofs, y, folds, rule), y).mae
    for name, (menu, rule) in ensemble_menus(oofs, y, folds, sizes).items():
        row[name] = cv_scores(fold_select_oof(menu, y, folds, rule), y).mae
    return row


def main() -> None:
    """Score every run folder under the given directories and print the ratios to the current rule."""
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path, help="directories of run folders (or run folders)")
    ap.add_argument("--z", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5, 2.0])
    ap.add_argument("--ensemble-sizes", type=int, nargs="+", default=[2, 3, 4, 5], help="ensemble options rebuilt")
    args = ap.parse_args()
    folders = [p for d in args.runs for p in ([d] if (d / "run.json").exists() else sorted(d.iterdir()))]
    folders = [p for p in folders if (p / "options_oof.parquet").exists()]
    if not folders:
        raise SystemExit("no run folder with options_oof.parquet under the given paths")
    table = pd.DataFrame([score_run(p, args.z, args.ensemble_sizes) for p in folders])
    variants = [c for c in table.columns if c not in ("target", "mode", "size", "repeat", "current")]
    ratios = table[variants].div(table["current"], axis=0)
    ratios[["target", "mode", "size"]] = table[["target", "mode", "size"]]
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", None)
    print(f"{len(table)} runs; nested MAE of each rule / the current rule's (per run, then averaged)")
    print(ratios.groupby(["mode", "size"])[variants].mean().round(4).to_string())
    print("\nruns where the rule's nested MAE is lower / higher than the current rule's")
    print(pd.DataFrame({v: [(ratios[v] < 1).sum(), (ratios[v] > 1).sum()] for v in variants}, ["lower", "higher"]))
    print("\nper cell (mean over repeats)")
    print(ratios.groupby(["mode", "target", "size"])[variants].mean().round(3).to_string())


if __name__ == "__main__":
    main()
