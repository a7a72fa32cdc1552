"""Undefined descriptor values at predict time are imputed from the model's training medians, with a note.

Probe of issue #15, defect 14: Ebselen (Se; RDKit has no Gasteiger parameters for it) was refused by predict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from matlib.transfer import fit_transfer, predict_transfer
from matlib.transfer.impute import featurize_imputed, spec_key
from matlib.transfer.model import load_model
from tests.transfer.conftest import REPO, esol_rows

EBSELEN = "O=C1N([Se]c2ccccc12)c3ccccc3"

RDKIT_LIBRARY = {
    "name": "rdkit2d-test",
    "seed": 0,
    "shard_size": 4,
    "training": {"epochs": 4, "batch_size": 64, "patience": 4},
    "groups": [
        {
            "dataset": "qm9_sample",
            "descriptors": ["rdkit2d"],
            "properties": ["HOMO_LUMO_gap_au"],
            "models_per_property": 2,
            "max_rows": 300,
            "import": {
                "file": str(REPO / "data" / "samples" / "qm9_sample.csv"),
                "input_column": "smiles",
                "target_columns": ["HOMO_LUMO_gap_au"],
                "kind": "molecule",
            },
        },
    ],
}


@pytest.fixture(scope="module")
def rdkit_run(tmp_path_factory) -> Path:
    """A run on a real rdkit2d library (QM9 slice), fitted on 40 real ESOL rows."""
    from matlib.library import build_library
    from matlib.store import Store

    lib = build_library(Store(tmp_path_factory.mktemp("store")), RDKIT_LIBRARY)
    df = esol_rows(200).sample(40, random_state=5)
    res = fit_transfer(
        lib,
        df["smiles"].tolist(),
        df["logSolubility"].tolist(),
        tmp_path_factory.mktemp("r") / "run",
        target_column="logSolubility",
        input_column="smiles",
        top_k=2,
        repeats=1,
        folds=4,
        max_overlap=1.0,
        learners=("ridge",),
        direct_learners=("ridge",),
        report=False,
    )
    return res.out_dir


def test_ebselen_gets_a_prediction_with_a_note(rdkit_run):
    p = predict_transfer(rdkit_run, [EBSELEN, "CCO", "C1CC(("])
    assert np.isfinite(p.loc[0, "prediction"]) and np.isfinite(p.loc[0, "uncertainty"])
    assert p.loc[0, "reason"] is None
    assert "imputed from the training medians" in p.loc[0, "note"] and "MaxPartialCharge" in p.loc[0, "note"]
    assert "12 undefined" in p.loc[0, "note"]
    assert np.isfinite(p.loc[1, "prediction"]) and p.loc[1, "note"] is None  # a normal molecule: no note
    assert np.isnan(p.loc[2, "prediction"]) and "unparseable" in p.loc[2, "reason"]  # unusable input: refused


def test_imputed_values_are_the_training_medians(rdkit_run):
    spec = load_model(rdkit_run)
    member = spec["members"][0]
    key = spec_key(member["descriptor_spec"])
    medians = spec["medians"][key]
    X, ok, _, notes = featurize_imputed([EBSELEN], member["descriptor_spec"], medians)
    plain, plain_ok, *_ = featurize_imputed([EBSELEN], member["descriptor_spec"], None)
    assert ok[0] and not plain_ok[0] and notes[0]
    from matlib.descriptors import get_featurizer
    from matlib.descriptors.spec import DescriptorSpec

    raw = get_featurizer(DescriptorSpec.from_dict(member["descriptor_spec"])).compute([EBSELEN]).X[0]
    undefined = ~np.isfinite(raw)
    assert undefined.sum() == 12
    np.testing.assert_array_equal(X[0, undefined], medians[undefined])
    np.testing.assert_array_equal(X[0, ~undefined], raw[~undefined].astype(np.float32))


def test_ebselen_through_the_cli_keeps_the_note_column(rdkit_run, tmp_path):
    import subprocess
    import sys

    import pandas as pd

    src = tmp_path / "x.csv"
    pd.DataFrame({"smiles": ["CCO", EBSELEN]}).to_csv(src, index=False)
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from matlib.cli import main; main()",
            "transfer",
            "predict",
            "--model",
            str(rdkit_run),
            "--input",
            str(src),
            "--output",
            str(tmp_path / "p.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    out = pd.read_csv(tmp_path / "p.csv")
    stdout = " ".join(r.stdout.split())  # rich wraps long lines
    assert out["prediction"].notna().all() and "2 predicted, 0 not parseable" in stdout
    assert pd.isna(out.loc[0, "note"]) and "imputed" in out.loc[1, "note"]
    assert "carry a note" in stdout
