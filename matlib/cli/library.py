"""`matlib library ...` sub-commands: build from a config, list models, show one model."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from matlib.errors import MatlibError
from matlib.store import Store

app = typer.Typer(no_args_is_help=True)


def _libraries(store: Store, name: str | None) -> list[Path]:
    """Library folders in the store (or the one named / given as a path)."""
    if name:
        p = Path(name)
        path = p if (p / "manifest.json").exists() else store.library(name)
        if not (path / "manifest.json").exists():
            raise MatlibError(f"no library {name!r} in {store.library()}")
        return [path]
    return sorted(p.parent for p in store.library().glob("*/manifest.json"))


@app.command("build")
def build(
    config: Path = typer.Option(..., "--config", help="library build config (YAML)"),
    cluster: str | None = typer.Option(None, "--cluster", help="Dask scheduler address (default: GPUs or local CPU)"),
    no_prefect: bool = typer.Option(False, "--no-prefect", help="run without the Prefect flow (plain Dask)"),
    mirror: str | None = typer.Option(
        None,
        "--mirror",
        help="offline mirror (folder or URL) for datasets the "
        "store lacks and the build crawls (default: $MATLIB_MIRROR)",
    ),
) -> None:
    """Build (or resume) a model library: one Prefect task per shard, shards trained on Dask."""
    import os

    from matlib.library import Library
    from matlib.library.config import load_config

    load_config(config)  # fail fast, one line, before any cluster starts
    if mirror:  # the crawlers read it, in this process and in the flow's
        os.environ["MATLIB_MIRROR"] = mirror
    store = Store.default()
    if no_prefect:
        from matlib.cluster import dask_client
        from matlib.library.build import build_library

        with dask_client(cluster) as client:
            path = build_library(store, config, client)
    else:
        from matlib.cli.entrypoints import load_flow
        from matlib.cli.prefect_env import prepare_prefect_env

        prepare_prefect_env()
        build_library_flow = load_flow("flows/build_library.py:build_library_flow")
        path = build_library_flow(str(config.resolve()), cluster, str(store.root.resolve()))
    m = Library(path).manifest
    typer.echo(f"{path}  models={m['n_models']} ok={m['n_ok']} failed={m['n_failed']} shards={len(m['shards'])}")


@app.command("pack")
def pack(
    name: str = typer.Argument(..., help="library name in the store, or a library folder"),
    out: Path = typer.Option(..., "--out", help="folder to write the bundle <name>-<version>/ into"),
) -> None:
    """Pack a library into a versioned, content-addressed bundle (every file's sha256; bundle.json last)."""
    from matlib.library.bundle import pack_library

    path = pack_library(_libraries(Store.default(), name)[0], out)
    typer.echo(f"{path}")


@app.command("pull")
def pull(
    source: str = typer.Argument(..., help="a bundle folder, http(s):// URL or s3:// URL"),
) -> None:
    """Pull a library bundle into the store, verifying every file; an interrupted pull resumes when rerun."""
    from matlib.library import Library
    from matlib.library.bundle import pull_library

    path = pull_library(Store.default(), source)
    m = Library(path).manifest
    typer.echo(f"{path}  models={m['n_models']} ok={m['n_ok']} shards={len(m['shards'])}")


@app.command("subset")
def subset(
    name: str = typer.Argument(..., help="library name in the store, or a library folder"),
    models: int = typer.Option(..., "--models", help="about how many models to keep (whole shards)"),
    out: str = typer.Option(..., "--out", help="name of the new library in the store"),
    seed: int = typer.Option(0, "--seed", help="seed of the shards' draw"),
) -> None:
    """Draw a smaller library from a built one: whole shards, spread evenly over its properties and descriptors."""
    from matlib.library.subset import subset_library

    store = Store.default()
    path = subset_library(_libraries(store, name)[0], store.library(out), models, seed)
    m = json.loads((path / "manifest.json").read_text())
    typer.echo(f"{path}  models={m['n_models']} shards={len(m['shards'])} (from {m['subset_of']['name']})")


@app.command("ls")
def ls(
    prop: str | None = typer.Option(None, "--property", help="only models of this property"),
    library: str | None = typer.Option(None, "--library", help="library name or folder (default: all in the store)"),
    limit: int = typer.Option(20, "--limit", help="models shown per library (best test R2 first)"),
) -> None:
    """List libraries and their models (per-property summary, then the best models)."""
    from matlib.library import Library

    console = Console()
    libs = _libraries(Store.default(), library)
    if not libs:
        console.print("no libraries built yet; run `matlib library build --config library.yaml`")
        return
    for path in libs:
        lib = Library(path)
        cat = lib.query(property=prop)
        console.print(
            f"[bold]{lib.name}[/bold]  {path}  models={len(cat)} "
            f"ok={int((cat['status'] == 'ok').sum())} shards={len(lib.manifest.get('shards', {}))}"
        )
        if cat.empty:
            continue
        summary = Table("property", "dataset", "descriptor", "models", "failed", "median MAE", "best R2")
        for (p, d, desc), g in cat.groupby(["property", "dataset", "descriptor"]):
            good = g[g["status"] == "ok"]
            summary.add_row(
                str(p),
                str(d),
                str(desc),
                str(len(g)),
                str(len(g) - len(good)),
                f"{good['mae'].median():.4g}",
                f"{good['r2'].max():.3f}",
            )
        console.print(summary)
        top = Table("model_id", "property", "descriptor", "hidden", "activation", "MAE", "R2", "status")
        for _, r in cat.sort_values("r2", ascending=False).head(limit).iterrows():
            a = json.loads(r["arch"])
            layers = (
                f"gnn {a['depth']}x{a['width']} {a['pooling']} -> {a['decoder']}"
                if a.get("model") == "gnn"
                else str(a["hidden"])
            )
            top.add_row(
                r["model_id"],
                r["property"],
                r["descriptor"],
                layers,
                a["activation"],
                f"{r['mae']:.4g}",
                f"{r['r2']:.3f}",
                r["status"],
            )
        console.print(top)


@app.command("show")
def show(
    model_id: str = typer.Argument(..., help="a model id from `matlib library ls`"),
    library: str | None = typer.Option(None, "--library", help="library name or folder (default: search all)"),
) -> None:
    """Show one model: provenance, architecture, training config, test metrics, shard (sha256 checked)."""
    from matlib.library import Library

    for path in _libraries(Store.default(), library):
        lib = Library(path)
        rows = lib.query(model_id=model_id)
        if rows.empty:
            continue
        r = rows.iloc[0].to_dict()
        out = {
            k: (json.loads(v) if k in ("arch", "train_config", "descriptor_spec") and isinstance(v, str) else v)
            for k, v in r.items()
        }
        out["library"] = str(path)
        if r["status"] == "ok":
            model = lib.load_model(model_id)  # verifies the shard's sha256
            out["parameters"] = int(sum(p.numel() for p in model.parameters()))
            out["shard_sha256"] = lib.manifest["shards"][r["shard"]]["sha256"]
        typer.echo(json.dumps(out, indent=2, default=lambda v: None if v != v else str(v)))
        return
    raise MatlibError(f"model {model_id} is not in any library under {Store.default().library()}")
