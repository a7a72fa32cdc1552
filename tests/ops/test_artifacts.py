"""tasks.artifacts: keys, secret refusal, and real artifacts on a real Prefect server."""

from __future__ import annotations

import subprocess

import pytest

from matlib.errors import MatlibError
from tasks import artifacts
from tests.ops.opsutil import PYTHON, REPO


def test_artifact_key_is_valid_for_prefect() -> None:
    assert artifacts.artifact_key("Shotgun", "ESOL_run/01") == "shotgun-esol-run-01"
    with pytest.raises(MatlibError, match="cannot build an artifact key"):
        artifacts.artifact_key("__", "")


def test_invalid_key_and_secret_are_refused_before_any_api_call() -> None:
    with pytest.raises(MatlibError, match="lowercase letters, digits and dashes"):
        artifacts.publish_markdown("Bad_Key", "# x")
    with pytest.raises(MatlibError, match="looks like it contains a secret"):
        artifacts.publish_markdown("ok-key", "MP_API_KEY=abcdef123456")


def _rows(markdown: str) -> list[list[str]]:
    """The cells of every Markdown table row."""
    return [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in markdown.splitlines() if "|" in line]


def test_counts_markdown_lists_counts_table_and_links() -> None:
    md = artifacts.counts_markdown(
        "refresh qm9",
        {"rows fetched": 120, "rows quarantined": 3},
        [{"model": "m-1", "r2": 0.91234}],
        {"report": "/tmp/r/report.md"},
    )
    assert "- **rows fetched**: 120" in md and "- **rows quarantined**: 3" in md
    assert ["m-1", "0.9123"] in _rows(md) and "- report: `/tmp/r/report.md`" in md


def test_markdown_table_escapes_pipes_and_newlines_in_cells() -> None:
    md = artifacts.markdown_table([{"input": "a|b", "reason": "line 1\nline 2"}, {"input": "Fe2O3", "reason": 1.23456}])
    lines = md.splitlines()
    assert len(lines) == 4  # header, rule, two rows: no cell broke a row
    assert ["a\\|b", "line 1 line 2"] in _rows(md) and ["Fe2O3", "1.235"] in _rows(md)
    assert artifacts.markdown_table([]) == "_(none)_\n"


FLOW = """
import sys
from pathlib import Path
from prefect import flow
from tasks.artifacts import publish_link, publish_markdown, counts_markdown

@flow
def report_flow(report: str) -> None:
    publish_markdown("ops-summary", counts_markdown("ops", {"rows": 5}), description="ops test")
    publish_link("ops-report", report, description="report file")

report_flow(sys.argv[1])
"""


def test_flow_publishes_markdown_and_link(prefect_server, tmp_path) -> None:
    report = tmp_path / "report.md"
    report.write_text("# report\n")
    cp = subprocess.run(
        [PYTHON, "-c", FLOW, str(report)], cwd=REPO, env=prefect_server.env, capture_output=True, text=True, timeout=180
    )
    assert cp.returncode == 0, cp.stderr[-3000:]
    found = prefect_server.post("/artifacts/filter", {"artifacts": {"key": {"any_": ["ops-summary", "ops-report"]}}})
    found.raise_for_status()
    by_key = {a["key"]: a for a in found.json()}
    assert by_key["ops-summary"]["type"] == "markdown" and "- **rows**: 5" in by_key["ops-summary"]["data"]
    # Prefect stores a link artifact as Markdown "[text](link)"
    assert f"[report.md]({report.resolve().as_uri()})" in by_key["ops-report"]["data"]
    assert by_key["ops-summary"]["flow_run_id"] == by_key["ops-report"]["flow_run_id"] is not None
