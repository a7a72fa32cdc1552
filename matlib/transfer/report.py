"""report.md with a parity plot, CV-score distribution by source property and the baseline comparison."""

from __future__ import annotations

import html
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from matlib.atomic import atomic_write_text
from matlib.text import shorten

if TYPE_CHECKING:
    from matlib.transfer.fit import TransferResult


INPUT_CHARS = 60  # an input (formula, SMILES) is cut to this many characters in a report table
TEXT_CHARS = 200  # any other text cell (reasons, candidate ids)
NOTE_CHARS = 1000  # one note
_MARKDOWN = re.compile(r"([\\`*_\[\]!|~#])")  # what makes Markdown emphasis, code, links, images or cells


def md_text(value: object, limit: int = TEXT_CHARS) -> str:
    """User-provided text made inert in Markdown and HTML: cut to limit characters, control characters shown as
    escapes (a line break cannot end a table row), Markdown punctuation backslash-escaped, and & < > " ' as
    entities, so no tag, link, image or table cell survives as written."""
    text = shorten(str(value), limit)
    text = "".join(c if c == " " or unicodedata.category(c)[0] != "C" else repr(c)[1:-1] for c in text)
    return html.escape(_MARKDOWN.sub(r"\\\1", text), quote=True)


def _table(df: pd.DataFrame, cols: list[str], limits: dict[str, int] | None = None) -> str:
    """A small Markdown table; every text cell goes through md_text (inputs cut to INPUT_CHARS), floats to 4
    significant digits."""
    if df.empty:
        return "_(none)_\n"
    limits = {"input": INPUT_CHARS, **(limits or {})}
    cells = pd.DataFrame(
        {
            c: [f"{v:.4g}" if isinstance(v, float) else md_text(v, limits.get(c, TEXT_CHARS)) for v in df[c]]
            for c in cols
        },
        columns=cols,
    )
    return cells.to_markdown(index=False, tablefmt="pipe", disable_numparse=True) + "\n"


def _save(fig: Figure, path: Path) -> Path:
    """Write a figure as PNG (no pyplot: nothing global is switched or kept)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def parity_plot(y: np.ndarray, pred: np.ndarray, path: Path, title: str) -> Path:
    """Out-of-fold prediction vs truth."""
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    ax.scatter(y, pred, s=12, alpha=0.7)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("measured")
    ax.set_ylabel("cross-validated prediction")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def score_distribution_plot(ranking: pd.DataFrame, baseline: float, path: Path) -> Path:
    """LOO MAE of every screened candidate, grouped by source property, with the direct ridge line."""
    tr = ranking[(ranking["kind"] == "transfer") & np.isfinite(ranking["loo_mae"].astype(float))]
    groups = sorted(tr["property"].unique()) if len(tr) else []
    fig = Figure(figsize=(max(4.5, 0.8 * len(groups) + 2), 4))
    ax = fig.subplots()
    if groups:
        ax.boxplot([tr.loc[tr["property"] == g, "loo_mae"].astype(float) for g in groups], showfliers=False)
        ax.set_xticks(range(1, len(groups) + 1), groups, rotation=30, ha="right", fontsize=8)
    if np.isfinite(baseline):
        ax.axhline(baseline, color="r", ls="--", lw=1, label="best direct ridge (LOO)")
        ax.legend(fontsize=8)
    ax.set_ylabel("LOO MAE of ridge on frozen features")
    ax.set_title("screening scores by source property", fontsize=9)
    return _save(fig, path)


def _honest_lines(res: TransferResult) -> list[str]:
    """The nested CV MAE of the chosen, best direct and best transfer option, and the interval's coverage."""
    nested = res.selection.nested
    lines = []
    if nested:
        parts = [f"{k} {nested[k]:.4g}" for k in ("chosen", "direct", "transfer", "transfer + direct") if k in nested]
        lines.append("- nested CV MAE (every choice re-made without the rows it is scored on): " + ", ".join(parts))
    if res.selection.choice.get("reason"):
        lines.append(f"- why: {md_text(res.selection.choice['reason'], NOTE_CHARS)}")
    interval = _interval(res)
    if interval:
        lines.append(
            f"- {100 * interval['level']:g}% interval ({interval['method']}): out-of-fold coverage "
            f"{100 * interval['oof_coverage']:.0f}% of {interval['n_calibration']} rows"
            + (f", half-width {interval['halfwidth']:.4g}" if "scale" not in interval else "")
        )
    return lines


def _interval(res: TransferResult) -> dict:
    """The saved model's interval settings (empty if none)."""
    from matlib.atomic import read_json

    path = res.out_dir / "model" / "model.json"
    return dict(read_json(path).get("interval") or {}) if path.exists() else {}


def write_report(res: TransferResult, pool: dict[str, np.ndarray]) -> Path:
    """Write report.md and its PNG plots into the run folder."""
    d = res.out_dir
    parity_plot(
        res.target.y_usable,
        res.selection.cv.oof.mean(axis=0),
        d / "parity.png",
        f"chosen model, CV MAE {res.selection.cv.mae:.4g}",
    )
    direct = res.ranking[res.ranking["kind"] == "direct"]
    score_distribution_plot(
        res.ranking, float(direct["loo_mae"].min()) if len(direct) else float("nan"), d / "scores_by_property.png"
    )
    lines = _overview_lines(res) + _table_sections(res) + _plot_lines()
    if len(res.target.skipped_rows):
        lines += ["## Skipped rows", "", _table(res.target.skipped_rows.head(50), ["row", "input", "reason"])]
    if res.notes:
        lines += ["## Notes", ""] + [f"- {md_text(n, NOTE_CHARS)}" for n in res.notes] + [""]
    lines += ["## Timings (s)", "", ", ".join(f"{k}: {v:.2f}" for k, v in res.timings.items()), ""]
    return atomic_write_text(d / "report.md", "\n".join(lines))


def _overview_lines(res: TransferResult) -> list[str]:
    """The report's title and its list of headline figures."""
    tr = res.ranking[res.ranking["kind"] == "transfer"]
    return [
        "# Shotgun transfer report",
        "",
        f"- training rows: {len(res.target.inputs)} given, {int(res.target.usable.sum())} usable, "
        f"{len(res.target.skipped_rows)} skipped",
        f"- descriptors used: {md_text(', '.join(s.get('name', '?') for s in res.target.specs.values()))}",
        f"- candidates screened: {len(tr)} (model, layer) pairs; flagged by the leakage guard: {int(tr['leak'].sum())}",
        f"- chosen model: {md_text(res.selection.option)}, {len(res.selection.members)} member(s), "
        f"CV MAE {res.selection.cv.mae:.4g} "
        f"(RMSE {res.selection.cv.rmse:.4g}); members: {md_text(', '.join(res.selection.members), NOTE_CHARS)}",
        *_honest_lines(res),
        "",
    ]


def _table_sections(res: TransferResult) -> list[str]:
    """Transfer vs direct, the top of the screening ranking, the refinement, and the final-model menu."""
    cv_cols = ["member", "kind", "learner", "cv_mae", "cv_rmse", "cv_mae_sd"]
    best_direct = res.baselines.head(1)
    best_transfer = res.refined[res.refined["kind"] == "transfer"].head(1)
    rank_cols = ["rank", "candidate", "kind", "property", "dataset", "descriptor", "loo_mae", "loo_rmse", "leak"]
    option_cols = ("option", "k", "cv_mae", "cv_rmse", "cv_mae_members", "paired_diff", "paired_se", "members")
    return [
        "## Transfer vs direct learning (same repeated K-fold splits)",
        "",
        _table(pd.concat([best_transfer, best_direct]), cv_cols),
        "## Screening ranking (top 20, LOO ridge)",
        "",
        _table(res.ranking.head(20), rank_cols),
        "## Refinement (repeated K-fold CV)",
        "",
        _table(res.refined.head(30), cv_cols),
        "## Final model options (chosen by CV)",
        "",
        _table(res.selection.table, [c for c in option_cols if c in res.selection.table]),
        "cv_mae of the transfer option is nested (the search re-run inside each outer fold) when direct learning is "
        "on the menu; cv_mae_members is its members' own CV, optimistic after screening the whole library. "
        "paired_diff: mean per-row |error| minus the reference's (the ensemble option, else the averaged direct "
        "option, else the single direct pair; SE paired_se); the option with the highest positive gain bound "
        "(-paired_diff - z SE) is chosen, else the reference.",
        "",
    ]


def _plot_lines() -> list[str]:
    """The plots section."""
    return ["## Plots", "", "![parity](parity.png)", "", "![scores by source property](scores_by_property.png)", ""]


def run_summary_markdown(res: TransferResult, top: int = 10) -> str:
    """A short Markdown summary (top of the ranking, chosen model, report path) for a flow artifact."""
    cols = ["rank", "candidate", "kind", "property", "dataset", "loo_mae", "leak"]
    return "\n".join(
        [
            "# Shotgun transfer",
            "",
            f"- usable rows: {int(res.target.usable.sum())}, skipped: {len(res.target.skipped_rows)}",
            f"- candidates screened: {int((res.ranking['kind'] == 'transfer').sum())}",
            f"- chosen: {md_text(res.selection.option)}: {md_text(', '.join(res.selection.members), NOTE_CHARS)} "
            f"(CV MAE {res.selection.cv.mae:.4g})",
            f"- report: {md_text(res.out_dir / 'report.md', NOTE_CHARS)}",
            *[f"- note: {md_text(n, NOTE_CHARS)}" for n in res.notes],
            "",
            _table(res.ranking.head(top), cols),
        ]
    )
