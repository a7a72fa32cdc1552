"""prefect.yaml: three deployments sharing anchored settings on a process work pool."""

from __future__ import annotations

import yaml

from tests.ops.opsutil import REPO


def _load() -> dict:
    return yaml.safe_load((REPO / "prefect.yaml").read_text())


def test_deployments_schedules_and_entrypoints() -> None:
    deps = {d["name"]: d for d in _load()["deployments"]}
    assert set(deps) == {"data-refresh", "library-build", "shotgun-transfer"}
    assert deps["data-refresh"]["entrypoint"] == "flows/refresh_data.py:refresh_data"
    assert deps["library-build"]["entrypoint"] == "flows/build_library.py:build_library_flow"
    assert deps["shotgun-transfer"]["entrypoint"] == "flows/shotgun_transfer.py:shotgun_transfer"
    nightly = deps["data-refresh"]["schedules"][0]["cron"].split()
    weekly = deps["library-build"]["schedules"][0]["cron"].split()
    assert nightly[2:] == ["*", "*", "*"]  # every day
    assert weekly[2:4] == ["*", "*"] and weekly[4] != "*"  # one day a week
    assert deps["shotgun-transfer"]["schedules"] == []


def test_shared_settings_come_from_anchors() -> None:
    text = (REPO / "prefect.yaml").read_text()
    assert "&process_pool" in text and text.count("*process_pool") == 3
    data = _load()
    pools = [d["work_pool"] for d in data["deployments"]]
    assert all(p == data["definitions"]["work_pools"]["process"] for p in pools)
    assert all(d["tags"] == ["matlib"] for d in data["deployments"])


def test_pull_step_sets_working_directory_to_repo() -> None:
    data = _load()
    step = data["pull"][0]["prefect.deployments.steps.set_working_directory"]
    build = data["build"][0]["prefect.deployments.steps.run_shell_script"]
    assert step["directory"] == "{{ " + build["id"] + ".stdout }}" and build["script"] == "pwd"


def test_weekly_build_trains_on_what_the_nightly_refresh_fetches() -> None:
    from matlib.library.config import load_config

    deps = {d["name"]: d for d in _load()["deployments"]}
    cfg = load_config(REPO / deps["library-build"]["parameters"]["config"])
    refreshed = set(deps["data-refresh"]["parameters"]["sources"])
    assert cfg.groups and all(g.import_ is None for g in cfg.groups)  # no local tables
    assert {g.dataset.split("@")[0] for g in cfg.groups} <= refreshed
