"""A saved transfer run is served only when it is complete, untouched and read from inside its own folder.

Probes of issue #15 (defects 3, 4, 7 and the `--out` part of 13): failed and killed fits, tampered model.json
paths, flipped bytes, non-finite weights, a user's folder that looks like a run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from matlib.errors import IntegrityError, MatlibError
from matlib.hashing import sha256_file
from matlib.transfer import fit_transfer, predict_transfer
from matlib.transfer.run_manifest import MANIFEST, staging_dir
from tests.transfer.conftest import FAST, REPO, esol_rows

RIDGE = {**FAST, "learners": ("ridge",), "direct_learners": ("ridge",), "include_direct": False, "report": False}


def _fit(library: Path, out: Path, seed: int = 0, **extra):
    df = esol_rows(200).sample(30, random_state=seed)
    return fit_transfer(
        library,
        df["smiles"].tolist(),
        df["logSolubility"].tolist(),
        out,
        target_column="logSolubility",
        input_column="smiles",
        seed=seed,
        **{**RIDGE, **extra},
    )


@pytest.fixture(scope="module")
def run(small_library, tmp_path_factory) -> Path:
    """A complete run (transfer members only, ridge learners)."""
    return _fit(small_library, tmp_path_factory.mktemp("runs") / "run").out_dir


@pytest.fixture()
def copy(run, tmp_path) -> Path:
    """A private copy of the run to tamper with."""
    return Path(shutil.copytree(run, tmp_path / "run", symlinks=True))


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text
    return text


def _reseal(run: Path) -> None:
    """What a careful attacker does after editing files: recompute every hash in the manifest (if there is one)."""
    if not (run / MANIFEST).exists():
        return
    m = json.loads((run / MANIFEST).read_text())
    for rel in m["files"]:
        m["files"][rel]["sha256"] = sha256_file(run / rel)
    (run / MANIFEST).write_text(json.dumps(m))


def _matlib(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from matlib.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def test_complete_run_has_a_manifest_covering_every_file(run):
    m = json.loads((run / MANIFEST).read_text())
    assert m["format"] == "matlib-transfer-run/1" and m["written_by"] == "matlib" and m["complete"] is True
    files = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file() and p.name != MANIFEST)
    assert sorted(m["files"]) == files
    assert all(m["files"][f]["sha256"] == sha256_file(run / f) for f in files)
    assert not staging_dir(run).exists()
    assert np.isfinite(predict_transfer(run, ["CCO", "c1ccccc1"])["prediction"]).all()


def test_failed_fit_leaves_no_servable_model(small_library, tmp_path, monkeypatch):
    """A fit that fails after its model is written (here: the report step) leaves nothing predict will serve."""
    import matlib.transfer.report as report

    def broken(*_a, **_k):
        raise RuntimeError("report failed")

    monkeypatch.setattr(report, "write_report", broken)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        _fit(small_library, out, report=True)
    with pytest.raises(MatlibError) as err:
        predict_transfer(out, ["CCO"])
    assert "no transfer model" in _one_line(err.value) and "did not finish" in str(err.value)


def test_fit_of_extreme_targets_fails_and_leaves_no_model(small_library, tmp_path):
    """Probe: every target +-1e308; whatever the fit says, predict must not serve a model afterwards."""
    df = esol_rows(40)
    train = tmp_path / "t.csv"
    df.assign(y=[1e308 if i % 2 else -1e308 for i in range(len(df))]).to_csv(train, index=False)
    out = tmp_path / "run"
    r = _matlib(
        "transfer",
        "fit",
        "--library",
        str(small_library),
        "--train",
        str(train),
        "--input-column",
        "smiles",
        "--target-column",
        "y",
        "--out",
        str(out),
        "--top-k",
        "1",
        "--repeats",
        "1",
        "--folds",
        "4",
        "--max-overlap",
        "1",
    )
    if r.returncode == 0:  # accepted: then the run is complete and sealed
        assert (out / MANIFEST).exists()
        return
    src = tmp_path / "x.csv"
    df.head(3).to_csv(src, index=False)
    p = _matlib("transfer", "predict", "--model", str(out), "--input", str(src), "--output", str(tmp_path / "p.csv"))
    assert p.returncode == 1 and p.stderr.strip().count("\n") == 0, p.stderr
    assert not (tmp_path / "p.csv").exists()


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import pandas as pd
    import matlib.transfer.fit as fit
    library, train, out, where = sys.argv[1:5]

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(fit, where, die)
    df = pd.read_csv(train)
    fit.fit_transfer(library, df["smiles"].tolist(), df["logSolubility"].tolist(), out, target_column="logSolubility",
                     input_column="smiles", seed=1, top_k=2, repeats=1, folds=4, max_overlap=1.0,
                     learners=("ridge",), direct_learners=("ridge",), include_direct=False, report=False)
""")


@pytest.mark.parametrize("where", ["screen_library", "_write_outputs"])
def test_kill_9_of_a_rerun_never_serves_the_old_model_silently(run, small_library, esol_table, tmp_path, where):
    """kill -9 of a rerun over a complete run, during screening or after the new model is written."""
    out = Path(shutil.copytree(run, tmp_path / "run"))
    old = (out / "model" / "model.json").read_bytes()
    r = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(small_library), str(esol_table), str(out), where],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert r.returncode == -9, r.stderr[-2000:]
    assert (out / "model" / "model.json").read_bytes() == old  # the old run is untouched ...
    with pytest.raises(MatlibError) as err:  # ... and not served as if the rerun had not happened
        predict_transfer(out, ["CCO"])
    assert "did not finish" in _one_line(err.value)
    # a new fit clears the leftover and completes
    res = _fit(small_library, out, seed=1)
    assert not staging_dir(out).exists() and (out / MANIFEST).exists()
    assert np.isfinite(predict_transfer(res.out_dir, ["CCO"])["prediction"]).all()


def test_rerun_replaces_a_complete_run(run, small_library, tmp_path):
    out = Path(shutil.copytree(run, tmp_path / "run"))
    before = json.loads((out / MANIFEST).read_text())["sealed_at"]
    _fit(small_library, out, seed=2)
    assert json.loads((out / MANIFEST).read_text())["sealed_at"] > before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging or previous folder left


def test_predict_refuses_a_run_without_manifest(copy):
    """An unfinished run (or one written before manifests existed) is not served."""
    (copy / MANIFEST).unlink()
    with pytest.raises(MatlibError) as err:
        predict_transfer(copy, ["CCO"])
    assert "not a complete transfer run" in _one_line(err.value)


@pytest.mark.parametrize(
    "rel", ["model/extractors/m0.safetensors", "model/model.json", "model/members/m0/fit0/learner.safetensors"]
)
def test_flipped_bytes_are_refused_naming_the_file(copy, rel):
    path = copy / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as err:
        predict_transfer(copy, ["CCO"])
    assert rel in _one_line(err.value) and "sha256" in str(err.value)


def test_file_added_under_model_is_refused(copy):
    (copy / "model" / "members" / "m0" / "fit0" / "extra.safetensors").write_bytes(b"x")
    with pytest.raises(IntegrityError) as err:
        predict_transfer(copy, ["CCO"])
    assert "extra.safetensors" in _one_line(err.value) and "not covered" in str(err.value)


@pytest.mark.parametrize(
    "field,value",
    [
        ("extractor", "../../../etc/passwd"),
        ("extractor", "/etc/passwd"),
        ("fits", ["../../model/members/m0/fit0"]),
        ("fits", ["/tmp"]),
    ],
)
def test_model_json_paths_stay_inside_the_run(copy, field, value):
    spec = json.loads((copy / "model" / "model.json").read_text())
    spec["members"][0][field] = value
    (copy / "model" / "model.json").write_text(json.dumps(spec))
    _reseal(copy)
    with pytest.raises(IntegrityError) as err:
        predict_transfer(copy, ["CCO"])
    assert "not a plain relative path" in _one_line(err.value)


def test_symlink_out_of_the_run_is_refused(copy, tmp_path):
    ext = copy / "model" / "extractors" / "m0.safetensors"
    outside = tmp_path / "outside.safetensors"
    shutil.copy(ext, outside)  # same bytes: the hash alone would not notice
    ext.unlink()
    ext.symlink_to(outside)
    with pytest.raises(IntegrityError) as err:
        predict_transfer(copy, ["CCO"])
    assert "symbolic link" in _one_line(err.value)


def test_symlinked_model_folder_is_refused(copy, tmp_path):
    shutil.move(copy / "model", tmp_path / "elsewhere")
    (copy / "model").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(IntegrityError) as err:
        predict_transfer(copy, ["CCO"])
    assert "symbolic link" in _one_line(err.value)


def test_non_finite_learner_weight_is_refused(copy):
    path = copy / "model" / "members" / "m0" / "fit0" / "learner.safetensors"
    state = load_file(str(path))
    key = next(k for k, v in state.items() if v.dtype.kind == "f" and v.size)
    state[key] = state[key].copy()
    state[key].flat[0] = np.nan
    save_file(state, str(path))
    _reseal(copy)
    with pytest.raises(IntegrityError) as err:
        predict_transfer(copy, ["CCO"])
    assert "non-finite weight" in _one_line(err.value) and "fit0" in str(err.value)


def test_non_finite_extractor_weight_is_refused(copy):
    import torch

    from matlib.library import read_shard, write_shard

    path = copy / "model" / "extractors" / "m0.safetensors"
    shard = read_shard(path, None)
    tensors = dict(shard.tensors)
    key = next(k for k in tensors if k.endswith("weight"))
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("inf")
    write_shard(
        path,
        shard.arch,
        {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in tensors.items()},
        {"model_ids": shard.model_ids},
    )
    _reseal(copy)
    with pytest.raises(IntegrityError) as err:
        predict_transfer(copy, ["CCO"])
    assert "non-finite weight" in _one_line(err.value) and "m0.safetensors" in str(err.value)


def test_layer_out_of_range_is_one_line(copy):
    spec = json.loads((copy / "model" / "model.json").read_text())
    spec["members"][0]["layer"] = 7
    (copy / "model" / "model.json").write_text(json.dumps(spec))
    _reseal(copy)
    with pytest.raises(IntegrityError) as err:
        predict_transfer(copy, ["CCO"])
    assert "layer 7 does not exist" in _one_line(err.value)


def test_users_folder_with_run_json_is_never_deleted(small_library, tmp_path):
    """Probe: a folder holding run.json and model/keep.txt is not an earlier run; nothing in it is touched."""
    out = tmp_path / "mine"
    (out / "model").mkdir(parents=True)
    (out / "run.json").write_text("{}")
    (out / "model" / "keep.txt").write_text("precious")
    with pytest.raises(MatlibError) as err:
        _fit(small_library, out)
    assert "not a transfer run written by matlib" in _one_line(err.value)
    assert (out / "model" / "keep.txt").read_text() == "precious" and (out / "run.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_users_file_inside_a_matlib_run_blocks_the_rerun(copy, small_library):
    (copy / "model" / "keep.txt").write_text("precious")
    with pytest.raises(MatlibError) as err:
        _fit(small_library, copy)
    assert "model/keep.txt" in _one_line(err.value)
    assert (copy / "model" / "keep.txt").read_text() == "precious"


def test_forged_manifest_from_someone_else_is_not_matlibs(tmp_path, small_library):
    out = tmp_path / "forged"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"format": "matlib-transfer-run/1", "written_by": "someone", "files": {}}))
    (out / "notes.txt").write_text("mine")
    with pytest.raises(MatlibError):
        _fit(small_library, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_out_pointing_at_a_file_is_one_line(small_library, esol_table, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("not a folder")
    r = _matlib(
        "transfer",
        "fit",
        "--library",
        str(small_library),
        "--train",
        str(esol_table),
        "--input-column",
        "smiles",
        "--target-column",
        "logSolubility",
        "--out",
        str(target),
        "--top-k",
        "1",
    )
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "is a file, not a folder" in r.stderr and "NotADirectoryError" not in r.stderr
    assert target.read_text() == "not a folder"
    r = _matlib(
        "transfer",
        "fit",
        "--library",
        str(small_library),
        "--train",
        str(esol_table),
        "--input-column",
        "smiles",
        "--target-column",
        "logSolubility",
        "--out",
        str(target / "sub"),
        "--top-k",
        "1",
    )
    assert r.returncode == 1 and "is a file, not a folder" in r.stderr and r.stderr.strip().count("\n") == 0


def test_model_folder_given_to_predict_is_the_run(run):
    a = predict_transfer(run / "model", ["CCO"])["prediction"]
    b = predict_transfer(run, ["CCO"])["prediction"]
    np.testing.assert_allclose(a, b)
