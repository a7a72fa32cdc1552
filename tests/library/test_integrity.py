"""The library manifest covers the catalog; every shard names its models; a remapped catalog is refused.

Probes of issue #15, defect 2 and the catalog-row part of 13.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from matlib.atomic import read_parquet
from matlib.errors import IntegrityError
from matlib.hashing import sha256_file
from matlib.library import Library, read_shard


@pytest.fixture()
def copy(built_library, tmp_path) -> Path:
    """A private copy of the built library."""
    return Path(shutil.copytree(built_library[1], tmp_path / "lib"))


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text
    return text


def _matlib(*args: str) -> subprocess.CompletedProcess:
    """The real CLI entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-c", "from matlib.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _swap_rows(lib: Path) -> tuple[str, str, str]:
    """Swap the `row` of two models of one shard in catalog.parquet (shard, model a, model b)."""
    cat = read_parquet(lib / "catalog.parquet")
    ok = cat[cat["status"] == "ok"]
    shard = ok.groupby("shard").size().idxmax()
    i, j = ok.index[ok["shard"] == shard][:2]
    cat.loc[i, "row"], cat.loc[j, "row"] = cat.loc[j, "row"], cat.loc[i, "row"]
    cat.to_parquet(lib / "catalog.parquet", index=False)
    return shard, cat.loc[i, "model_id"], cat.loc[j, "model_id"]


def _fix_manifest(lib: Path) -> None:
    """What a careful attacker does: make the manifest's catalog hash match the edited catalog."""
    m = json.loads((lib / "manifest.json").read_text())
    m.setdefault("catalog", {})["sha256"] = sha256_file(lib / "catalog.parquet")
    (lib / "manifest.json").write_text(json.dumps(m))


def test_manifest_covers_catalog_and_shards_carry_their_model_ids(built_library):
    lib = Library(built_library[1])
    assert lib.manifest["catalog"]["sha256"] == sha256_file(lib.path / "catalog.parquet")
    ok = lib.catalog[lib.catalog["status"] == "ok"]
    for name in lib.manifest["shards"]:
        bare = read_shard(lib.shard_path(name), lib.manifest["shards"][name]["sha256"])  # ids from its own metadata
        rows = ok[ok["shard"] == name].sort_values("row")
        assert bare.model_ids == rows["model_id"].tolist()


def test_remapped_catalog_row_is_refused(copy):
    """Probe: remapping `row` in catalog.parquet made fit use another model's weights with exit 0."""
    _swap_rows(copy)
    with pytest.raises(IntegrityError) as err:
        _ = Library(copy).catalog
    assert "catalog.parquet was modified or corrupted" in _one_line(err.value)


def test_remapped_catalog_with_rehashed_manifest_is_refused_by_the_shard(copy):
    shard, a, _ = _swap_rows(copy)
    _fix_manifest(copy)
    lib = Library(copy)
    with pytest.raises(IntegrityError) as err:
        lib.shard(shard)
    assert "the catalog and the shard disagree" in _one_line(err.value) and shard in str(err.value)
    with pytest.raises(IntegrityError):
        lib.load_model(a)


def test_remapped_catalog_fails_transfer_fit_in_one_line(built_library, tmp_path):
    lib = Path(shutil.copytree(built_library[1], tmp_path / "lib"))
    _swap_rows(lib)
    train = tmp_path / "t.csv"
    pd.DataFrame(
        {
            "formula": ["NaCl", "MgO", "Al2O3", "SiO2", "TiO2", "ZnO", "GaAs", "CdS", "KCl", "LiF"],
            "n": [1.54, 1.74, 1.77, 1.46, 2.6, 2.0, 3.9, 2.5, 1.49, 1.39],
        }
    ).to_csv(train, index=False)
    r = _matlib(
        "transfer",
        "fit",
        "--library",
        str(lib),
        "--train",
        str(train),
        "--input-column",
        "formula",
        "--target-column",
        "n",
        "--out",
        str(tmp_path / "run"),
        "--top-k",
        "1",
        "--repeats",
        "1",
        "--folds",
        "2",
        "--max-overlap",
        "1",
    )
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "catalog.parquet" in r.stderr


@pytest.mark.parametrize("row", [99, -3])
def test_catalog_row_outside_the_shard_is_one_line(copy, row):
    """Probe (13): a bad catalog row gave IndexError."""
    cat = read_parquet(copy / "catalog.parquet")
    i = cat.index[cat["status"] == "ok"][0]
    cat.loc[i, "row"] = row
    cat.to_parquet(copy / "catalog.parquet", index=False)
    _fix_manifest(copy)
    with pytest.raises(IntegrityError) as err:
        _ = Library(copy).catalog
    assert f"row {row} is outside" in _one_line(err.value)


def test_shard_whose_metadata_lost_its_ids_is_refused(copy):
    from matlib.library.shard import shard_bytes

    lib = Library(copy)
    name = sorted(lib.manifest["shards"])[0]
    shard = lib.shard(name)
    data = shard_bytes(shard.arch, shard.tensors, {**shard.meta, "model_ids": shard.model_ids[:-1]})
    lib.shard_path(name).write_bytes(data)
    m = json.loads((copy / "manifest.json").read_text())
    m["shards"][name]["sha256"] = sha256_file(lib.shard_path(name))
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IntegrityError) as err:
        Library(copy).shard(name)
    assert "model ids for" in _one_line(err.value)


def test_library_of_an_older_matlib_is_refused_in_one_line(copy):
    m = json.loads((copy / "manifest.json").read_text())
    del m["catalog"]
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IntegrityError) as err:
        _ = Library(copy).catalog
    assert "does not cover catalog.parquet" in _one_line(err.value) and "rebuild" in str(err.value)


def test_shards_are_read_only_from_inside_the_library(copy, tmp_path):
    lib = Library(copy)
    name = sorted(lib.manifest["shards"])[0]
    path = lib.shard_path(name)
    outside = tmp_path / "outside.safetensors"
    shutil.move(path, outside)
    path.symlink_to(outside)  # same bytes, same sha256: only the link gives it away
    with pytest.raises(IntegrityError) as err:
        Library(copy).shard(name)
    assert "symbolic link" in _one_line(err.value)
    for bad in ("../../escape", "x/../../../escape"):  # a shard name from a hand-edited manifest
        with pytest.raises(IntegrityError) as err:
            Library(copy).shard_path(bad)
        assert "not a plain relative path" in _one_line(err.value)
