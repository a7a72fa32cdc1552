"""Prefect tasks of a descriptor build: plan, one task per batch of rows, finalize."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from matlib.descriptors.build import BuildPlan, compute_batch, finalize_build, plan_build
from matlib.store import Store


@task(name="descriptors-plan")
def plan_descriptors(store_root: str | None, dataset: str, descriptor: str) -> BuildPlan:
    """Check the cache and stage the rows to compute; returns the plan."""
    return plan_build(Store.at(store_root), dataset, descriptor)


@task(name="descriptors-batch")
def compute_descriptor_batch(plan: BuildPlan, batch: int) -> dict[str, int]:
    """Featurise one staged batch (thousands of rows) into one Parquet part."""
    return compute_batch(plan, batch)


@task(name="descriptors-finalize")
def finalize_descriptors(plan: BuildPlan) -> str:
    """Write quarantine + metadata, move the table into place (run after the batches: `wait_for=`); its folder."""
    return str(finalize_build(plan))


def descriptors_markdown(table_dir: str) -> str:
    """Summary of a descriptor build as Markdown: rows featurised, reused and quarantined."""
    from matlib.descriptors.build import build_info
    from tasks.artifacts import counts_markdown

    info = build_info(Path(table_dir))
    keys = ["dataset", "version", "n_rows", "n_computed", "n_reused", "n_failed", "n_features"]
    return counts_markdown(
        f"Descriptors {info['spec']['name']}", {k: info.get(k) for k in keys}, links={"table": table_dir}
    )
