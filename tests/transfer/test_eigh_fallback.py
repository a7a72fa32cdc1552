"""One ill-conditioned candidate must not end the search (issue 15, defect 15).

LAPACK and cuSOLVER reject a whole batched `eigh` when one matrix fails to converge ("Batch element 12: ... ill-
conditioned or has too many repeated eigenvalues"); the screening must fall back (float64, jitter, SVD) for that
batch, or drop only the candidate that cannot be decomposed, with a note.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matlib.transfer import fit_transfer, ridge
from matlib.transfer.ridge import ridge_loo, screen_features
from tests.transfer.conftest import FAST, esol_morgan, esol_rows

REAL_EIGH = torch.linalg.eigh


def _candidates(n: int = 40, h: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Five real candidates (column slices of ESOL Morgan counts) + one whose features are identical columns."""
    X, y = esol_morgan(n, bits=128)
    X = torch.as_tensor(X, dtype=torch.float32)
    cands = [X[:, i * h : (i + 1) * h] for i in range(5)]
    cands.insert(2, X[:, :1].repeat(1, h))  # every column the same: a rank-1, highly repeated spectrum
    return torch.stack(cands), torch.as_tensor(y, dtype=torch.float32)


def _identical_columns(G: torch.Tensor) -> torch.Tensor:
    """[C] bool: Gram matrices whose entries are all equal (the identical-columns candidate)."""
    flat = G.reshape(G.shape[0], -1)
    return (flat - flat[:, :1]).abs().amax(dim=1) <= 1e-6 * flat[:, :1].abs().squeeze(1).clamp_min(1)


def _flaky_eigh(fail_dtypes: tuple[torch.dtype, ...]):
    """eigh that fails, as LAPACK does, for any batch holding an identical-columns Gram matrix in fail_dtypes."""

    def eigh(G, *args, **kwargs):
        if G.dtype in fail_dtypes:
            batch = G if G.dim() == 3 else G.unsqueeze(0)
            bad = torch.nonzero(_identical_columns(batch)).flatten()
            if len(bad):
                raise torch.linalg.LinAlgError(
                    f"linalg.eigh: (Batch element {int(bad[0])}): The algorithm failed to converge because the input "
                    "matrix is ill-conditioned or has too many repeated eigenvalues (error code: 7)."
                )
        return REAL_EIGH(G, *args, **kwargs)

    return eigh


def test_identical_columns_candidate_is_scored(monkeypatch):
    F, y = _candidates()
    ref = screen_features(F, y)
    assert torch.isfinite(ref["loo_mae"]).all() and (ref["fallback"] == 0).all()
    # float32 batched eigh fails on that candidate: the batch is redone in float64, nothing is lost
    monkeypatch.setattr(torch.linalg, "eigh", _flaky_eigh((torch.float32,)))
    got = screen_features(F, y)
    assert torch.isfinite(got["loo_mae"]).all()
    assert [ridge.FALLBACKS[int(c)] for c in got["fallback"]] == ["float64"] * 6
    assert torch.allclose(got["loo_mae"], ref["loo_mae"], rtol=1e-3)


def test_candidate_failing_in_every_precision_falls_back_to_svd(monkeypatch):
    F, y = _candidates()
    ref = screen_features(F.double(), y.double())
    monkeypatch.setattr(torch.linalg, "eigh", _flaky_eigh((torch.float32, torch.float64)))
    got = screen_features(F, y)
    codes = [ridge.FALLBACKS[int(c)] for c in got["fallback"]]
    assert codes == ["none", "none", "svd", "none", "none", "none"]  # only that candidate takes the long way
    assert torch.isfinite(got["loo_mae"]).all()
    assert torch.allclose(got["loo_mae"].double(), ref["loo_mae"], rtol=1e-3)


def test_undecomposable_candidate_is_dropped_alone():
    """A real failure: a Gram matrix holding NaN makes LAPACK's eigh reject the whole batch; the others keep the
    scores they get alone and only that one is dropped (and named in a note)."""
    F, y = _candidates()
    F[4, 3, 5] = float("nan")  # ridge_loo takes features as they are (screen_features would zero non-finite ones)
    lam = torch.tensor([1.0, 10.0])
    with pytest.raises(torch.linalg.LinAlgError):
        REAL_EIGH(F.transpose(1, 2) @ F)
    res = ridge_loo(F, y, lam)
    assert [ridge.FALLBACKS[int(c)] for c in res.fallback] == ["none"] * 4 + ["dropped", "none"]
    assert not torch.isfinite(res.loo_mae[4]).any()
    for c in (0, 1, 2, 3, 5):
        alone = ridge_loo(F[c : c + 1], y, lam)
        assert torch.allclose(res.loo_mae[c], alone.loo_mae[0], rtol=1e-4)
    s, V, code = ridge.gram_eigh(F.transpose(1, 2) @ F)
    assert code.tolist() == [0, 0, 0, 0, 4, 0] and torch.isnan(s[4]).all() and torch.isfinite(s[[0, 1, 2, 3, 5]]).all()
    import pandas as pd

    ranking = pd.DataFrame({"candidate": [f"m{i}/h0" for i in range(6)], "fallback": res.fallback.numpy()})
    from matlib.transfer.screen import screening_notes

    notes = screening_notes(ranking)
    assert len(notes) == 1 and "1 candidate(s) dropped" in notes[0] and "m4/h0" in notes[0]


def test_fit_survives_failing_batched_eigh(small_library, esol_table, tmp_path, monkeypatch):
    """The issue's failure at fit level: every float32 batched eigh with more than one matrix fails (as one
    ill-conditioned Gram matrix makes it fail); `transfer fit` still screens every candidate and says so."""

    def eigh(G, *args, **kwargs):
        if G.dtype == torch.float32 and G.dim() == 3 and G.shape[0] > 1:
            raise torch.linalg.LinAlgError(
                "linalg.eigh: (Batch element 1): The algorithm failed to converge "
                "because the input matrix is ill-conditioned (error code: 3)."
            )
        return REAL_EIGH(G, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, "eigh", eigh)
    df = esol_rows(200).sample(40, random_state=1)
    res = fit_transfer(small_library, df["smiles"].tolist(), df["logSolubility"].tolist(), tmp_path / "run", **FAST)
    tr = res.ranking[res.ranking["kind"] == "transfer"]
    assert len(tr) > 0 and np.isfinite(tr["loo_mae"].astype(float)).all()
    assert (tr["fallback"] == ridge.FALLBACKS.index("float64")).all()
    assert any("float64 fallback" in n for n in res.notes)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "float64 fallback" in report
    assert (tmp_path / "run" / "model" / "model.json").exists()
