"""Rich console summaries of a transfer fit and a prediction run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from matlib.atomic import read_parquet
from matlib.text import shorten

if TYPE_CHECKING:
    from matlib.transfer.fit import TransferResult


def _table(title: str, df: pd.DataFrame, cols: list[str]) -> Table:
    """A rich table of df's cols (floats to 4 significant digits)."""
    t = Table(title=title)
    for c in cols:
        t.add_column(c)
    for r in df[cols].itertuples(index=False):
        t.add_row(*[f"{v:.4g}" if isinstance(v, float) else escape(shorten(str(v), 80)) for v in r])
    return t


def print_fit_summary(res: TransferResult, console: Console | None = None) -> None:
    """Ranking of source models, transfer vs direct learning, chosen model, skipped rows and notes."""
    c = console or Console()
    tr = res.ranking[res.ranking["kind"] == "transfer"]
    c.print(
        f"[bold]{len(tr)}[/] (model, layer) candidates screened; "
        f"{int(res.target.usable.sum())} usable rows, {len(res.target.skipped_rows)} skipped"
    )
    for r in res.target.skipped_rows.head(10).itertuples(index=False):
        c.print(f"  skipped row {r.row}: {escape(shorten(repr(r.input)))}: {escape(str(r.reason))}", soft_wrap=True)
    if len(res.target.skipped_rows) > 10:
        c.print(f"  ... and {len(res.target.skipped_rows) - 10} more (skipped_rows.parquet)")
    c.print(
        _table(
            "Screening ranking (LOO ridge on frozen features)",
            res.ranking.head(15),
            ["rank", "candidate", "kind", "property", "dataset", "descriptor", "loo_mae", "leak"],
        )
    )
    best = pd.concat([res.refined[res.refined["kind"] == "transfer"].head(3), res.baselines.head(3)])
    c.print(
        _table(
            "Transfer vs direct learning (repeated K-fold CV, same splits)",
            best,
            ["member", "kind", "learner", "cv_mae", "cv_rmse"],
        )
    )
    c.print(_table("Final model options (chosen by CV)", res.selection.table, ["option", "k", "cv_mae", "cv_rmse"]))
    c.print(f"chosen: {escape(res.selection.option)}  CV MAE {res.selection.cv.mae:.4g}", soft_wrap=True)
    if res.selection.choice.get("reason"):
        c.print(f"why: {escape(res.selection.choice['reason'])}", soft_wrap=True)
    print_nested(res.selection.nested, c)
    for n in res.notes:
        c.print(f"[yellow]note:[/] {escape(n)}", soft_wrap=True)
    c.print(
        f"report: {escape(str(res.out_dir / 'report.md'))}  model: {escape(str(res.out_dir / 'model'))}", soft_wrap=True
    )


def print_nested(nested: dict, console: Console) -> None:
    """One line: nested CV MAE of the chosen option, the best direct and the best transfer option."""
    if nested:
        console.print("nested CV MAE: " + ", ".join(f"{escape(k)} {v:.4g}" for k, v in nested.items()), soft_wrap=True)


def print_run_summary(run_dir: Path, console: Console | None = None) -> None:
    """A finished run read back from its folder: the source-model ranking and transfer vs direct learning."""
    from matlib.atomic import read_json

    c = console or Console()
    ranking = read_parquet(run_dir / "ranking.parquet")
    refined = read_parquet(run_dir / "refined.parquet")
    info = read_json(run_dir / "run.json")
    cols = [k for k in ["rank", "kind", "property", "dataset", "descriptor", "layer", "loo_mae"] if k in ranking]
    c.print(
        _table(
            f"Ranking of {info['n_candidates']} (source model, layer) candidates "
            "(leave-one-out ridge MAE on frozen features)",
            ranking.head(12),
            cols,
        )
    )
    best = pd.concat([refined[refined["kind"] == "transfer"].head(3), refined[refined["kind"] == "direct"].head(3)])
    c.print(
        _table(
            "Transfer vs direct learning (repeated K-fold CV, same folds)",
            best,
            ["member", "kind", "learner", "cv_mae", "cv_rmse"],
        )
    )
    c.print(
        f"chosen: {escape(str(info.get('chosen_option', ', '.join(info['chosen']))))}  (CV MAE {info['cv_mae']:.4g})",
        soft_wrap=True,
    )
    print_nested(info.get("nested_cv_mae") or {}, c)
    for note in info.get("notes", []):
        c.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)


def print_predict_summary(df: pd.DataFrame, output: Path, console: Console | None = None) -> None:
    """Counts of predicted and unparseable rows."""
    c = console or Console()
    bad = df["reason"].notna()
    c.print(
        f"{len(df)} rows -> {escape(str(output))}: {int((~bad).sum())} predicted, {int(bad.sum())} not parseable",
        soft_wrap=True,
    )  # one line per message, whatever the terminal width (scripts grep these)
    for r in df[bad].head(10).itertuples():
        c.print(f"  row {cast(int, r.Index) + 1}: {escape(str(r.reason))}", soft_wrap=True)
    noted = df["note"].notna() if "note" in df.columns else pd.Series(False, index=df.index)
    if noted.any():
        c.print(f"{int(noted.sum())} predicted row(s) carry a note (see the note column), e.g.")
        for r in df[noted].head(3).itertuples():
            c.print(f"  row {cast(int, r.Index) + 1}: {escape(str(r.note))}", soft_wrap=True)
