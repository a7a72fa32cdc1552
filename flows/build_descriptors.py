"""Flow: compute a dataset version's descriptor table (cached; incremental after a refresh)."""

from __future__ import annotations

from prefect import flow, unmapped

from tasks.descriptors import compute_descriptor_batch, descriptors_markdown, finalize_descriptors, plan_descriptors


@flow(name="build-descriptors")
def build_descriptors_flow(dataset: str, descriptor: str, store_root: str | None = None) -> str:
    """Plan, fan out one task per batch, finalize; returns the table folder."""
    plan = plan_descriptors(store_root, dataset, descriptor)
    futures = compute_descriptor_batch.map(unmapped(plan), list(range(plan.n_batches)))
    for f in futures:  # in order: a failed batch raises its own error here
        f.result()
    table = finalize_descriptors(plan, wait_for=futures)
    from tasks.artifacts import artifact_key, publish_markdown

    publish_markdown(
        artifact_key("descriptors", plan.spec["name"], plan.dataset),
        descriptors_markdown(table),
        description="rows featurised, reused and quarantined",
    )
    return table
