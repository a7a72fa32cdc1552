"""The private torch APIs of the hand-written step: present, same signature, same results as their public fallbacks.

A torch upgrade that removes or changes one fails here (instead of silently training through the fallback, or
breaking at the first training step); `benchmarks/private_torch.py` tells whether the private one still pays.
"""

import numpy as np
import pytest
import torch

from matlib.models import TrainConfig, fused_adam, manual, private_api, sample_architecture, train_batched


def test_private_silu_is_there_and_writes_the_public_result():
    assert private_api.PRIVATE_SILU is not None, "torch._C._nn.silu is gone: see matlib/models/private_api.py"
    assert private_api.silu_out is private_api.PRIVATE_SILU
    z = torch.randn(3, 64, 24)
    out, ref = torch.empty_like(z), torch.empty_like(z)
    ret = private_api.PRIVATE_SILU(z, out=out)
    private_api.public_silu_out(z, out=ref)
    assert ret.data_ptr() == out.data_ptr()  # wrote into the buffer given
    assert torch.equal(out, ref) and torch.equal(out, torch.nn.functional.silu(z))


def _adam_run(make, steps=5):
    """Parameters after `steps` updates with fixed gradients by the optimizer make(params)."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(4, 8, 3, generator=gen), torch.randn(4, 3, generator=gen)]
    for p in params:
        p.grad = torch.zeros_like(p)
    opt = make(params)
    for _ in range(steps):
        for p in params:
            p.grad.copy_(torch.randn(p.shape, generator=gen))
        opt.step()
    return params


def test_private_fused_adam_is_there_and_matches_torch_adam(monkeypatch):
    assert private_api.PRIVATE_FUSED_ADAM is not None, "torch._fused_adam_ is gone: see matlib/models/private_api.py"
    private = _adam_run(lambda ps: fused_adam.FusedAdam(ps, 1e-2, 1e-4))
    public = _adam_run(lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=1e-4, fused=True))
    for a, b in zip(private, public):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    monkeypatch.setattr(private_api, "PRIVATE_FUSED_ADAM", None)  # the fallback: the same updates
    fallback = _adam_run(lambda ps: fused_adam.FusedAdam(ps, 1e-2, 1e-4))
    for a, b in zip(fallback, public):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_training_through_the_fallbacks_gives_the_same_models(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 10)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] ** 2).astype(np.float32)
    space = {"n_layers": [2, 2], "activation": ["silu"], "dropout": [0.0], "batchnorm": [False]}
    archs = [sample_architecture(10, s, space, family_seed=3) for s in range(3)]
    cfg = TrainConfig(epochs=3, batch_size=32)
    assert manual.supports(archs[0], amp=False)  # the hand-written step trains these
    private = train_batched(X, y, archs, [0, 1, 2], cfg, device="cpu")
    monkeypatch.setattr(private_api, "silu_out", private_api.public_silu_out)
    monkeypatch.setattr(private_api, "PRIVATE_FUSED_ADAM", None)
    public = train_batched(X, y, archs, [0, 1, 2], cfg, device="cpu")
    for k, v in private.tensors.items():
        torch.testing.assert_close(v, public.tensors[k], rtol=0, atol=0, msg=k)
    assert [m["mae"] for m in private.metrics] == pytest.approx([m["mae"] for m in public.metrics], abs=0)
