"""Do the private torch APIs of the hand-written training step pay? Same models trained with each and without.

`matlib.models.private_api` wraps `torch._C._nn.silu` (SiLU into a preallocated buffer without torch.ops' Python
dispatch) and `torch._fused_adam_` (the fused Adam kernel without torch.optim.Adam's per-step Python), each with a
public fallback that gives bitwise the same models (tests/models/test_private_api.py). This times
`train_batched` on real data (Magpie descriptors of MP formation energies) with SiLU models small enough that
per-call overhead matters, four ways interleaved (best of --repeats): private both, public SiLU, public Adam,
public both; and prints each as a ratio to "private both".

    .venv/bin/python benchmarks/private_torch.py [--models 16] [--rows 1500] [--epochs 3] [--repeats 3]
        [--data-root DIR]   (default ../shared/data next to the repository)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import contextmanager

import torch
from data_root import add_data_root, data_root
from training import real_data

from matlib.models import TrainConfig, fused_adam, private_api, sample_architecture, train_batched

VARIANTS: dict[str, tuple[bool, bool]] = {  # name: (private SiLU, private Adam)
    "private SiLU + private Adam (matlib)": (True, True),
    "public SiLU (torch.ops.aten.silu.out)": (False, True),
    "public Adam (torch.optim.Adam fused)": (True, False),
    "public both": (False, False),
}


@contextmanager
def variant(private_silu: bool, private_adam: bool):  # noqa: ANN201 - a context manager
    """Train with the private APIs switched on or off."""
    saved = private_api.silu_out, private_api.PRIVATE_FUSED_ADAM
    if not private_silu:
        private_api.silu_out = private_api.public_silu_out
    if not private_adam:
        private_api.PRIVATE_FUSED_ADAM = None
    try:
        yield
    finally:
        private_api.silu_out, private_api.PRIVATE_FUSED_ADAM = saved


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def per_call_us(fn: Callable[[], object], calls: int, repeats: int) -> float:
    """Best-of-repeats microseconds per call of fn."""
    fn()
    return min(timed(lambda: [fn() for _ in range(calls)]) for _ in range(repeats)) / calls * 1e6


def kernel_calls(models: int, repeats: int) -> None:
    """Per-call cost of each private API and its public fallback, on a shard's shapes."""
    assert private_api.PRIVATE_SILU is not None
    silu, public = private_api.PRIVATE_SILU, private_api.public_silu_out
    for shape in ((2, 64, 32), (2, 256, 96), (models, 256, 96)):  # a cache-sized chunk of models ... a whole shard
        z = torch.randn(shape)
        out = torch.empty_like(z)
        print(f"SiLU into a buffer {list(shape)}, us per call:")
        for name, fn in (("torch._C._nn.silu", silu), ("torch.ops.aten.silu.out", public)):
            print(f"  {name:26s} {per_call_us(lambda f=fn, z=z, o=out: f(z, out=o), 2000, repeats):8.2f}")
    shapes = [(models, 32, 132), (models, 32), (models, 16, 32), (models, 16), (models, 1, 16), (models, 1)]
    print(f"Adam step over a stack of {models} small models (132-32-16-1), us per step:")
    for name, flags in (("torch._fused_adam_ (FusedAdam)", True), ("torch.optim.Adam(fused=True)", False)):
        with variant(True, flags):
            params = [torch.randn(s) for s in shapes]
            for p in params:
                p.grad = torch.randn(p.shape) * 1e-3
            opt = fused_adam.FusedAdam(params, 1e-3)
            print(f"  {name:26s} {per_call_us(opt.step, 500, repeats):8.2f}")


def main() -> None:
    """Time each variant and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument("--rows", type=int, default=1500)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a library build: 1 per worker)")
    add_data_root(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    X, y = real_data(data_root(args.data_root), args.rows)
    space = {"n_layers": [1, 3], "activation": ["silu"], "dropout": [0.0], "batchnorm": [False]}
    archs = [sample_architecture(X.shape[1], s, space, family_seed=7) for s in range(args.models)]
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=args.epochs + 1)
    seeds = list(range(args.models))
    print(
        f"torch {torch.__version__} threads={args.threads} rows={len(y)} d_in={X.shape[1]} models={args.models} "
        f"(SiLU, one shape bucket) epochs={args.epochs} batch={args.batch_size}"
    )
    kernel_calls(args.models, args.repeats)
    train_batched(X, y, archs[:2], seeds[:2], TrainConfig(epochs=1), device="cpu")  # warm-up
    best = dict.fromkeys(VARIANTS, float("inf"))
    for _ in range(args.repeats):  # interleaved: the machine may be shared
        for name, flags in VARIANTS.items():
            with variant(*flags):
                best[name] = min(best[name], timed(lambda: train_batched(X, y, archs, seeds, cfg, device="cpu")))
    base = best[next(iter(VARIANTS))]
    for name, t in best.items():
        print(f"{name:42s} {t:7.3f} s   x{t / base:5.2f} of matlib's time")


if __name__ == "__main__":
    main()
