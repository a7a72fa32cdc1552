"""Batched training against the one-at-a-time reference on real descriptors."""

import numpy as np
import pytest
import torch

import matlib.models.batched as batched
from matlib.errors import ValidationError
from matlib.models import TrainConfig, sample_architecture, train_batched, train_single
from matlib.models.arch import padded_arch

CFG = TrainConfig(epochs=8, batch_size=64, patience=3, lr=2e-3)


def _archs(n_in, n, **space):
    return [
        sample_architecture(n_in, 100 + s, {"n_layers": [1, 3], "max_width": 64, **space}, family_seed=1)
        for s in range(n)
    ]


def test_batched_matches_reference_within_seed_noise(dielectric_xy):
    """Same seeds: batched vs reference differ far less than models with different seeds do."""
    X, y = dielectric_xy
    archs = _archs(X.shape[1], 6, dropout=[0.0], batchnorm=[False])
    seeds = list(range(6))
    batched = train_batched(X, y, archs, seeds, CFG, device="cpu").metrics
    ref = [train_single(X, y, a, s, CFG)[1] for a, s in zip(archs, seeds)]
    other = [train_single(X, y, a, s + 1000, CFG)[1] for a, s in zip(archs, seeds)]  # seed-to-seed noise
    d_same = np.array([abs(b["mae"] - r["mae"]) / r["mae"] for b, r in zip(batched, ref)])
    d_seed = np.array([abs(o["mae"] - r["mae"]) / r["mae"] for o, r in zip(other, ref)])
    print("relative MAE diff, same seed:", d_same.round(5), "different seed:", d_seed.round(4))
    assert all(b["status"] == r["status"] == "ok" for b, r in zip(batched, ref))
    # same seed => same split, init, shuffling: only float summation order differs (measured ~1e-7)
    assert d_same.max() < 1e-3
    assert d_seed.mean() > 0.005  # the noise between seeds that "same metrics" is judged against
    assert d_same.mean() < 0.05 * d_seed.mean()
    assert [b["best_epoch"] for b in batched] == [r["best_epoch"] for r in ref]


def test_batched_matches_reference_statistically_with_dropout_and_batchnorm(dielectric_xy):
    """Dropout masks differ between trainers, so compare test MAE distributions over seeds."""
    X, y = dielectric_xy
    archs = _archs(X.shape[1], 6, dropout=[0.1], batchnorm=[True])
    seeds = list(range(6))
    b = np.array([m["mae"] for m in train_batched(X, y, archs, seeds, CFG, device="cpu").metrics])
    r = np.array([train_single(X, y, a, s, CFG)[1]["mae"] for a, s in zip(archs, seeds)])
    diff = b - r  # paired by seed (same split and init)
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    print(f"mean paired MAE diff {diff.mean():.4f} +- {se:.4f} (mean MAE {r.mean():.4f})")
    assert abs(diff.mean()) < 3 * se + 0.02 * r.mean()
    assert np.all(np.isfinite(b))


@pytest.mark.parametrize("activation", ["tanh", "softplus"])  # softplus(0) != 0: the masked path
@pytest.mark.parametrize("batchnorm", [True, False])  # autograd path / hand-written step
def test_padding_is_exact(dielectric_xy, activation, batchnorm):
    """A model trained in a padded bucket equals the same model trained alone."""
    X, y = dielectric_xy
    archs = _archs(X.shape[1], 4, dropout=[0.0], batchnorm=[batchnorm], activation=[activation], family_jitter=0.15)
    assert len({tuple(a["hidden"]) for a in archs}) > 1
    cfg = TrainConfig(epochs=3, batch_size=64, patience=3)
    together = train_batched(X, y, archs, [0, 1, 2, 3], cfg, device="cpu")
    for m, a in enumerate(archs):
        alone = train_batched(X, y, [a], [m], cfg, device="cpu")
        assert together.metrics[m]["mae"] == pytest.approx(alone.metrics[0]["mae"], rel=2e-3)
        w = alone.tensors["l0.weight"][0]
        assert torch.allclose(together.tensors["l0.weight"][m][: w.shape[0]], w, atol=1e-3)
        assert torch.all(together.tensors["l0.weight"][m][w.shape[0] :] == 0)


@pytest.mark.parametrize("activation", ["silu", "softplus"])  # softplus: masks sliced per chunk too
def test_chunked_step_equals_one_chunk(dielectric_xy, monkeypatch, activation):
    """Chunks of 2 models (the last one short) train exactly as one chunk of all 5 does."""
    X, y = dielectric_xy
    archs = _archs(X.shape[1], 5, dropout=[0.0], batchnorm=[False], activation=[activation], family_jitter=0.15)
    cfg = TrainConfig(epochs=3, batch_size=64, patience=3)
    whole = train_batched(X, y, archs, list(range(5)), cfg, device="cpu")
    padded = padded_arch(archs, align=batched.KERNEL_ALIGN)
    per_model = 4 * cfg.batch_size * (padded["n_in"] + 3 * sum(padded["hidden"]) + 3)  # bytes of its step buffers
    monkeypatch.setattr(batched, "CPU_CHUNK_BYTES", 2 * per_model)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the budget is per thread
    try:
        assert batched.cpu_chunk(padded, cfg.batch_size, torch.get_num_threads()) == 2
        chunked = train_batched(X, y, archs, list(range(5)), cfg, device="cpu")
    finally:
        torch.set_num_threads(threads)
    for k, t in whole.tensors.items():
        assert torch.allclose(chunked.tensors[k], t, rtol=1e-5, atol=1e-6), k
    assert [m["mae"] for m in chunked.metrics] == pytest.approx([m["mae"] for m in whole.metrics], rel=1e-5)


def test_cpu_chunk_fits_the_byte_budget():
    """One thread: as many models per chunk as fit CPU_CHUNK_BYTES of step buffers (at least one)."""
    arch = {"n_in": 132, "hidden": [120, 64]}
    per_model = 4 * 256 * (132 + 3 * 184 + 3)
    assert batched.cpu_chunk(arch, 256) == batched.CPU_CHUNK_BYTES // per_model
    assert batched.cpu_chunk(arch, 256, threads=2) is None  # several threads share whole tensors
    assert batched.cpu_chunk({"n_in": 4096, "hidden": [4096, 4096]}, 1024) == 1  # never zero


def test_diverging_models_are_marked_failed(dielectric_xy):
    X, y = dielectric_xy
    archs = _archs(X.shape[1], 3, dropout=[0.0], batchnorm=[False], activation=["relu"])
    yb = y.copy()
    res = train_batched(
        X, yb, archs, [0, 1, 2], TrainConfig(epochs=3, batch_size=64, lr=1e6, diverge_loss=10.0), device="cpu"
    )
    assert all(m["status"] == "failed" and "diverged" in m["reason"] for m in res.metrics)
    ok = train_batched(X, yb, archs, [0, 1, 2], TrainConfig(epochs=3, batch_size=64), device="cpu")
    assert all(m["status"] == "ok" for m in ok.metrics)


def test_per_model_scaling_and_constant_features(dielectric_xy):
    X, y = dielectric_xy
    X = X.copy()
    X[:, 5] = 3.0  # a zero-variance feature
    res = train_batched(X, y, _archs(X.shape[1], 2), [0, 1], TrainConfig(epochs=2), device="cpu")
    assert torch.all(res.tensors["x_std"][:, 5] == 1.0)
    assert not torch.equal(res.tensors["x_mean"][0], res.tensors["x_mean"][1])  # own training splits
    assert all(np.isfinite(m["mae"]) for m in res.metrics)


def test_bad_rows_are_named(dielectric_xy):
    X, y = dielectric_xy
    X = X.copy()
    X[17, 3] = np.nan
    with pytest.raises(ValidationError, match="row 17"):
        train_batched(X, y, _archs(X.shape[1], 1), [0], CFG)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(dielectric_xy):
    X, y = dielectric_xy
    archs = _archs(X.shape[1], 4, dropout=[0.0], batchnorm=[False])
    cpu = train_batched(X, y, archs, [0, 1, 2, 3], CFG, device="cpu").metrics
    gpu = train_batched(X, y, archs, [0, 1, 2, 3], CFG, device="cuda").metrics
    for c, g in zip(cpu, gpu):
        assert g["mae"] == pytest.approx(c["mae"], rel=0.05)
