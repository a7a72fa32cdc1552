"""`matlib data ...` sub-commands: refresh (crawl a source), import (a local table), ls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from matlib.store import Store

app = typer.Typer(no_args_is_help=True)


def _store(home: Path | None) -> Store:
    """The store at --home or $MATLIB_HOME."""
    return Store(home) if home else Store.default()


def _report(ds) -> None:
    """Print one summary line for a committed version."""
    m = ds.manifest
    d = ds.diff or m.get("diff", {})
    typer.echo(
        f"{ds.name}@{ds.version}: {m['n_rows']} rows kept, {m['n_quarantined']} quarantined; "
        f"diff vs parent: +{d.get('added', 0)} added, ~{d.get('changed', 0)} changed, "
        f"-{d.get('removed', 0)} removed"
    )


@app.command("refresh")
def refresh_cmd(
    source: str = typer.Option(..., "--source", help="mp | oqmd | aflow | qm9 | optimade"),
    url: str | None = typer.Option(None, "--url", help="API base URL (required for optimade)"),
    mirror: str | None = typer.Option(
        None, "--mirror", help="offline mirror folder or URL (default $MATLIB_MIRROR; see README 'Offline mirrors')"
    ),
    fields: str | None = typer.Option(
        None,
        "--fields",
        help="comma-separated fields/keywords to fetch (mp, oqmd, aflow) or provider properties (optimade)",
    ),
    filter_: str | None = typer.Option(None, "--filter", help="the service's own filter expression"),
    limit: int | None = typer.Option(None, "--limit", help="stop after N records"),
    page_size: int | None = typer.Option(None, "--page-size", help="records per page"),
    rate: float | None = typer.Option(None, "--rate", help="max requests per second (0: no limit)"),
    api: str | None = typer.Option(None, "--api", help="oqmd: rest (default) or optimade"),
    name: str | None = typer.Option(None, "--name", help="dataset name (default: the source's)"),
    home: Path | None = typer.Option(None, "--home", help="store root (default $MATLIB_HOME)"),
) -> None:
    """Crawl a source (resuming an interrupted crawl) and commit a new dataset version."""
    from matlib.sources import refresh

    options: dict[str, Any] = {
        k: v for k, v in {"page_size": page_size, "api": api, "name": name, "filter": filter_}.items() if v is not None
    }
    if fields is not None:
        options["properties" if source == "optimade" or api == "optimade" else "fields"] = fields
    if rate is not None:
        options["rate_per_second"] = rate  # 0: no limit
    _report(refresh(_store(home), source, url=url, limit=limit, mirror=mirror, **options))


@app.command("import")
def import_cmd(
    name: str = typer.Option(..., "--name", help="dataset name"),
    file: Path = typer.Option(..., "--file", help="CSV (optionally .gz) or Parquet table"),
    input_column: str = typer.Option(..., "--input-column", help="formula or SMILES column"),
    target_column: list[str] = typer.Option(..., "--target-column", help="property column (repeatable)"),
    kind: str | None = typer.Option(None, "--kind", help="composition | molecule (default: from the column name)"),
    id_column: str | None = typer.Option(None, "--id-column", help="column with record ids"),
    duplicates: str = typer.Option("keep", "--duplicates", help="keep | mean (for repeated inputs)"),
    home: Path | None = typer.Option(None, "--home", help="store root (default $MATLIB_HOME)"),
) -> None:
    """Import a local table as a validated dataset version (bad rows are quarantined with reasons)."""
    from matlib.datasets import import_table

    store = _store(home)
    ds = import_table(
        store, name, file, input_column, target_column, kind=kind, id_column=id_column, duplicates=duplicates
    )
    _report(ds)
    q = ds.quarantine(store)
    if len(q):
        for reason, n in q["reason"].str.replace(r"'.*", "", regex=True).value_counts().head(5).items():
            typer.echo(f"  quarantined {n}: {str(reason).strip()}")
    if ds.manifest.get("n_unreadable_rows"):
        typer.echo(
            f"  unreadable rows: {ds.manifest['n_unreadable_rows']} of {ds.manifest['n_input_rows']} "
            "(not UTF-8, extra fields or unclosed quotes; quarantined with their line numbers)"
        )
    if ds.manifest.get("n_duplicate_inputs"):
        how = "kept as separate records" if duplicates == "keep" else "averaged into one record each"
        typer.echo(f"  repeated inputs: {ds.manifest['n_duplicate_inputs']} ({how})")


@app.command("ls")
def ls_cmd(home: Path | None = typer.Option(None, "--home", help="store root (default $MATLIB_HOME)")) -> None:
    """List dataset versions (latest marked with *)."""
    from matlib.datasets import list_datasets

    df = list_datasets(_store(home))
    if df.empty:
        typer.echo("no datasets yet (matlib data import / matlib data refresh)")
        return
    for r in df.itertuples():
        typer.echo(
            f"{'*' if r.latest else ' '} {r.name}@{r.version}  {r.kind:<11} rows={r.n_rows} "
            f"quarantined={r.n_quarantined} +{r.added}/~{r.changed}/-{r.removed}  {r.source}  "
            f"{r.fetched_at}  [{r.properties}]"
        )
