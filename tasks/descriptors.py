"""Prefect tasks of a descriptor build: plan, one task per batch of rows, finalize."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from matlib.descriptors.build import compute_batch, finalize_build, plan_build
from matlib.store import Store


@task(name="descriptors-plan")
def plan_descriptors(store_root: str | None, dataset: str, descriptor: str) -> dict:
    """Check the cache and stage the rows to compute; returns the plan as a dict."""
    store = Store(store_root) if store_root else Store.default()
    return plan_build(store, dataset, descriptor).to_dict()


@task(name="descriptors-batch")
def compute_descriptor_batch(plan: dict, batch: int) -> dict:
    """Featurise one staged batch (thousands of rows) into one Parquet part."""
    return compute_batch(plan, batch)


@task(name="descriptors-finalize")
def finalize_descriptors(plan: dict, batch_results: list[dict]) -> str:
    """Write quarantine + metadata and move the table into place; returns its folder."""
    return str(finalize_build(plan))


def descriptors_markdown(table_dir: str) -> str:
    """Summary of a descriptor build as Markdown: rows featurised, reused and quarantined."""
    from matlib.descriptors.build import build_info
    from tasks.artifacts import summary_markdown

    info = build_info(Path(table_dir))
    keys = ["dataset", "version", "n_rows", "n_computed", "n_reused", "n_failed", "n_features"]
    return summary_markdown(
        f"Descriptors {info['spec']['name']}", {k: info.get(k) for k in keys}, links={"table": table_dir}
    )
