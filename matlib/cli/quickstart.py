"""`matlib quickstart`: the whole pipeline on the shipped samples, with no server to start."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    """Add the quickstart command to the root app."""
    app.command("quickstart")(quickstart)


def quickstart(
    home: Path = typer.Option(None, "--home", help="store root (default: $MATLIB_HOME or ./matlib-data)"),
    models_per_property: int = typer.Option(
        8, "--models-per-property", min=1, help="random architectures per property"
    ),
    epochs: int = typer.Option(40, "--epochs", min=1, help="maximum training epochs per model"),
    seed: int = typer.Option(0, "--seed", help="seed of architectures, splits and CV folds"),
) -> None:
    """Import real samples, build descriptors, train a small library, run shotgun transfer and report."""
    from matlib.cli.entrypoints import load_flow
    from matlib.cli.prefect_env import prepare_prefect_env
    from matlib.store import default_home

    console = Console()
    root = (home or default_home()).resolve()
    os.environ.setdefault("MATLIB_HOME", str(root))
    prepare_prefect_env()
    console.rule("[bold]matlib quickstart")
    console.print(f"store: {root}  (Prefect runs in ephemeral mode: no server to start)")
    t0 = time.perf_counter()
    quickstart_flow = load_flow("flows/quickstart.py:quickstart")
    result = quickstart_flow(store_root=str(root), models_per_property=models_per_property, epochs=epochs, seed=seed)
    from matlib.transfer.console import print_run_summary

    console.rule("[bold]shotgun transfer on 100 ESOL molecules")
    print_run_summary(Path(result["run_dir"]), console)
    h = result["holdout"]
    console.print(
        f"held-out ESOL molecules ({h['n']}): MAE {h['holdout_mae']:.3f} log(mol/L) "
        f"(predicting the training mean: {h['mean_predictor_mae']:.3f}); predictions: {h['predictions']}"
    )
    if "rf_rdkit2d_mae" in h:
        console.print(
            f"the same 50 molecules, a plain random forest (300 trees) on RDKit 2D descriptors trained on the "
            f"same 100 rows: MAE {h['rf_rdkit2d_mae']:.3f}; matlib: {h['holdout_mae']:.3f}"
        )
    console.print(f"report: [bold]{Path(result['run_dir']) / 'report.md'}[/bold]")
    console.print(f"done in {time.perf_counter() - t0:.0f} s")
