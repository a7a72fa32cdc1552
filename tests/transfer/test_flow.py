"""The shotgun_transfer flow on a real ephemeral Prefect with a real Dask LocalCluster."""

import pytest


@pytest.fixture(scope="module")
def prefect_env():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_flow_runs_and_publishes_summary(prefect_env, small_library, esol_table, tmp_path, monkeypatch):
    monkeypatch.setenv("MATLIB_DASK_WORKERS", "1")
    monkeypatch.setenv("MATLIB_DASK_THREADS", "1")
    from prefect.client.orchestration import get_client

    from flows.shotgun_transfer import shotgun_transfer

    out = tmp_path / "flow-run"
    state = shotgun_transfer(
        library=str(small_library),
        train=str(esol_table),
        input_column="smiles",
        target_column="logSolubility",
        out=str(out),
        top_k=1,
        seed=0,
        return_state=True,
    )
    assert state.is_completed(), state
    assert (out / "model" / "model.json").exists() and (out / "report.md").exists()
    assert list((out / "stage").glob("screen-*.parquet"))  # one screening part per shard batch

    import asyncio

    async def read():
        async with get_client() as client:
            from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["shotgun-transfer-flow-run"]))
            )

    arts = asyncio.run(read())
    assert arts and "Shotgun transfer" in arts[0].data and "report.md" in arts[0].data
