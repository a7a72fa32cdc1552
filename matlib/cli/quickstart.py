"""`matlib quickstart`: the whole pipeline on the shipped samples, with no server to start."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from matlib.atomic import read_json


def register(app: typer.Typer) -> None:
    """Add the quickstart command to the root app."""
    app.command("quickstart")(quickstart)


def quickstart(
    home: Path = typer.Option(None, "--home", help="store root (default: $MATLIB_HOME or ./matlib-data)"),
    models_per_property: int = typer.Option(8, "--models-per-property", min=1, help="random architectures per property"),
    epochs: int = typer.Option(60, "--epochs", min=1, help="maximum training epochs per model"),
    seed: int = typer.Option(0, "--seed", help="seed of architectures, splits and CV folds"),
) -> None:
    """Import real samples, build descriptors, train a small library, run shotgun transfer and report."""
    from matlib.store import default_home

    console = Console()
    root = (home or default_home()).resolve()
    os.environ.setdefault("MATLIB_HOME", str(root))
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # Prefect's task lines are the progress shown
    console.rule("[bold]matlib quickstart")
    console.print(f"store: {root}  (Prefect runs in ephemeral mode: no server to start)")
    t0 = time.perf_counter()
    from flows.quickstart import quickstart as quickstart_flow

    result = quickstart_flow(store_root=str(root), models_per_property=models_per_property, epochs=epochs, seed=seed)
    console.rule("[bold]shotgun transfer on 100 ESOL molecules")
    print_run_summary(Path(result["run_dir"]), console)
    h = result["holdout"]
    console.print(
        f"held-out ESOL molecules ({h['n']}): MAE {h['holdout_mae']:.3f} log(mol/L) "
        f"(predicting the training mean: {h['mean_predictor_mae']:.3f}); predictions: {h['predictions']}"
    )
    console.print(f"report: [bold]{Path(result['run_dir']) / 'report.md'}[/bold]")
    console.print(f"done in {time.perf_counter() - t0:.0f} s")


def _rich_table(title: str, df: pd.DataFrame, cols: list[str]) -> Table:
    """A rich table of df's cols, floats to 4 significant digits."""
    table = Table(title=title)
    for c in cols:
        table.add_column(c)
    for row in df[cols].itertuples(index=False):
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    return table


def print_run_summary(run_dir: Path, console: Console) -> None:
    """Print a finished transfer run: the source-model ranking and transfer vs direct learning."""
    ranking = pd.read_parquet(run_dir / "ranking.parquet")
    refined = pd.read_parquet(run_dir / "refined.parquet")
    info = read_json(run_dir / "run.json")
    cols = [c for c in ["rank", "kind", "property", "dataset", "descriptor", "layer", "loo_mae"] if c in ranking]
    console.print(_rich_table(f"Ranking of {info['n_candidates']} (source model, layer) candidates "
                              "(leave-one-out ridge MAE on frozen features)", ranking.head(12), cols))
    best = pd.concat([refined[refined["kind"] == "transfer"].head(3), refined[refined["kind"] == "direct"].head(3)])
    console.print(_rich_table("Transfer vs direct learning (repeated K-fold CV, same folds)", best,
                              [c for c in ["member", "kind", "learner", "cv_mae", "cv_rmse"] if c in best]))
    console.print(f"chosen: {', '.join(info['chosen'])}  (CV MAE {info['cv_mae']:.4g})")
    for note in info.get("notes", []):
        console.print(f"note: {note}")
