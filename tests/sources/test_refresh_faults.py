"""Incremental refresh (exact diff counts) and a real process kill mid-crawl followed by a resume."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from matlib.datasets import list_datasets, load_dataset
from matlib.datasets.versions import load_diff
from matlib.sources import refresh
from tests.fixtures.http_server import FAST

REPO = Path(__file__).resolve().parents[2]


def test_second_refresh_reports_exact_diff(server, store):
    first = refresh(store, "oqmd", url=server.url, page_size=10, **FAST)
    assert first.diff == {"added": 40, "changed": 0, "removed": 0}
    removed = [server.oqmd.pop(i) for i in (30, 20, 10)]  # 3 removed
    server.oqmd[0]["band_gap"] += 0.5  # 2 changed
    server.oqmd[1]["name"] = "Fe2O3"
    server.oqmd.extend(
        {"name": n, "entry_id": 90000 + i, "band_gap": 1.0 + i, "spacegroup": None}
        for i, n in enumerate(["NaCl", "KBr", "MgO", "GaN"])
    )  # 4 added
    second = refresh(store, "oqmd", url=server.url, page_size=10, **FAST)
    assert second.diff == {"added": 4, "changed": 2, "removed": 3}
    assert second.manifest["parent"] == first.version and second.manifest["diff"] == second.diff
    d = load_diff(store, f"oqmd@{second.version}")
    assert set(d.loc[d.status == "removed", "record_id"]) == {f"oqmd-{e['entry_id']}" for e in removed}
    assert set(d.loc[d.status == "changed", "record_id"]) == {f"oqmd-{server.oqmd[i]['entry_id']}" for i in (0, 1)}
    # an unchanged third refresh gives the same version and an empty diff
    third = refresh(store, "oqmd", url=server.url, page_size=10, **FAST)
    assert third.version == second.version and third.diff == {"added": 0, "changed": 0, "removed": 0}
    assert load_dataset(store, "oqmd").version == second.version
    assert len(list_datasets(store)) == 2


def _checkpoint(store) -> dict | None:
    cps = list(store.raw("oqmd").glob("*/checkpoint.json"))
    return json.loads(cps[0].read_text()) if cps else None


def test_killed_crawl_resumes_without_loss_or_duplicates(server, store):
    server.delay = 0.15
    cmd = [
        sys.executable,
        "-m",
        "matlib.cli",
        "data",
        "refresh",
        "--source",
        "oqmd",
        "--url",
        server.url,
        "--page-size",
        "4",
        "--rate",
        "0",
        "--home",
        str(store.root),
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        cp = _checkpoint(store)
        if cp and cp["page"] >= 3:
            break
        time.sleep(0.02)
    proc.kill()  # SIGKILL: no cleanup handlers run
    proc.wait()
    cp = _checkpoint(store)
    assert proc.returncode != 0 and not cp["done"] and 3 <= cp["page"] < 10
    pages_before = cp["page"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "40 rows kept, 0 quarantined" in out.stdout
    ds = load_dataset(store, "oqmd")
    assert sorted(ds.records["record_id"]) == sorted(f"oqmd-{e['entry_id']}" for e in server.oqmd)
    assert ds.manifest["crawl"]["resumed"] is True
    assert len(list(store.raw("oqmd").glob("*/checkpoint.json"))) == 1  # the same snapshot was continued
    offsets = Counter(h["query"]["offset"] for h in server.hits("oqmd"))
    # pages before the checkpoint were not fetched again; at most the page in flight at the kill repeats
    assert all(offsets[str(4 * i)] == 1 for i in range(pages_before))
    assert sum(offsets.values()) <= 10 + 1
