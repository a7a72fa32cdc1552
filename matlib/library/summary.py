"""A Markdown summary of a library build (for the flow's artifact)."""

from __future__ import annotations

from pathlib import Path

from matlib.atomic import read_parquet


def build_summary(library: str | Path, results: list[dict]) -> str:
    """Models built / failed per property and descriptor, and shards trained / skipped."""
    cat = read_parquet(Path(library) / "catalog.parquet")
    ok = cat[cat["status"] == "ok"]
    skipped = sum(bool(r.get("skipped", False)) for r in results)
    lines = [
        f"# Library `{library}`",
        "",
        f"- models: **{len(cat)}** ({len(ok)} ok, **{len(cat) - len(ok)} failed**)",
        f"- shards: {len(results)} ({skipped} skipped as already built)",
        "",
        "| property | dataset | descriptor | models | failed | median test MAE | best R2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for (prop, ds, desc), g in cat.groupby(["property", "dataset", "descriptor"]):
        good = g[g["status"] == "ok"]
        lines.append(
            f"| {prop} | {ds} | {desc} | {len(g)} | {len(g) - len(good)} | {good['mae'].median():.4g} | "
            f"{good['r2'].max():.3f} |"
        )
    return "\n".join(lines) + "\n"
