"""`matlib descriptors ...` sub-commands: build a table, list descriptors and built tables."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from matlib.store import Store

app = typer.Typer(no_args_is_help=True)


@app.command("build")
def build(
    dataset: str = typer.Option(..., "--dataset", help="NAME or NAME@VERSION"),
    descriptor: str = typer.Option(..., "--descriptor", help="a registered descriptor name (see `ls`)"),
    cluster: str | None = typer.Option(None, "--cluster", help="Dask scheduler address (default: in-process)"),
) -> None:
    """Compute (or reuse) the descriptor table of a dataset version."""
    from matlib.descriptors.build import build_descriptors, build_info

    store = Store.default()
    client = None
    if cluster:
        from matlib.cluster import get_client

        client = get_client(cluster)
    try:
        path = build_descriptors(store, dataset, descriptor, client=client)
    finally:
        if client is not None:
            client.close()
    info = build_info(path)
    typer.echo(
        f"{path}  rows={info['n_rows']} computed={info['n_computed']} reused={info['n_reused']} "
        f"failed={info['n_failed']}"
    )


@app.command("ls")
def ls() -> None:
    """List registered descriptors and the tables built in the store."""
    from matlib.atomic import read_json
    from matlib.descriptors import list_descriptors

    console = Console()
    t = Table("name", "input", "default parameters", "description")
    for d in list_descriptors():
        t.add_row(d["name"], d["input_kind"], ", ".join(f"{k}={v}" for k, v in d["defaults"].items()), d["doc"])
    console.print(t)
    built = sorted(Store.default().descriptors().glob("*/*/build.json"))
    b = Table("table", "dataset", "rows", "computed", "reused", "failed")
    for p in built:
        info = read_json(p)
        b.add_row(
            p.parent.parent.name,
            f"{info['dataset']}@{info['version']}",
            str(info["n_rows"]),
            str(info["n_computed"]),
            str(info["n_reused"]),
            str(info["n_failed"]),
        )
    console.print(b if built else "no descriptor tables built yet")
