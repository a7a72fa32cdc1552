"""Benchmark: batched multi-model training vs one model at a time (the usual PyTorch way), same models.

Both trainers get the same real data (Magpie descriptors of MP formation energies), the same
architectures and seeds, the same epochs and batch size (early stopping off so both do the same
work). Prints models/hour for both, the ratio, and the batched trainer's achieved FLOP/s as a
fraction of a large matmul's FLOP/s measured in the same run on the same device.

    .venv/bin/python benchmarks/training.py            # CPU (or CUDA when available)
    .venv/bin/python benchmarks/training.py --quick    # a short smoke run
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from matlib.models import TrainConfig, bucket_key, sample_architecture, train_batched, train_single
from matlib.models.data import split_indices

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def real_data(n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Magpie features and formation energies of n_rows real MP compositions."""
    from matlib.descriptors import get_featurizer

    df = pd.read_csv(SHARED / "mp" / "matbench_mp_e_form.csv").sample(n=n_rows, random_state=0)
    res = get_featurizer("magpie").featurize(df["formula"].tolist())
    return res.X[res.ok].astype(np.float32), df["target"].to_numpy(np.float32)[res.ok]


def model_flops(arch: dict, n_train: int, n_val: int, batch: int, epochs: int) -> float:
    """Useful FLOPs of training one model: matmuls only (fwd 2, bwd 4 per MAC; no input grad at layer 0)."""
    dims = [arch["n_in"], *arch["hidden"], 1]
    macs = [a * b for a, b in zip(dims[:-1], dims[1:])]
    per_row_train = 2 * sum(macs) + 4 * sum(macs[1:]) + 2 * macs[0]
    steps = n_train // batch
    return epochs * (steps * batch * per_row_train + n_val * 2 * sum(macs))


def matmul_flops_per_s(device: torch.device, n: int = 4096, reps: int = 5) -> float:
    """FLOP/s of a large float32 matmul on device (best of reps)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(reps + 1):
        _sync(device)
        t = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    """Run both trainers on the same models and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=64)
    ap.add_argument("--family", type=int, default=32, help="models per shape bucket")
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--baseline-models", type=int, default=None,
                    help="time the one-at-a-time baseline on this many of the models (default: all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.models, args.family, args.rows, args.epochs, args.repeats = 16, 8, 1500, 2, 1
    dev = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    X, y = real_data(args.rows)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=args.epochs + 1)
    space = {"n_layers": [1, 3], "dropout": [0.0], "batchnorm": [False]}
    seeds = list(range(args.models))
    archs = [sample_architecture(X.shape[1], s, space, family_seed=1000 + s // args.family) for s in seeds]
    sp = split_indices(len(y), 0, cfg.val_fraction, cfg.test_fraction)
    flops = sum(model_flops(a, len(sp.train), len(sp.val), min(cfg.batch_size, len(sp.train)), cfg.epochs)
                for a in archs)
    print(f"device={dev} torch_threads={torch.get_num_threads()} rows={len(y)} d_in={X.shape[1]} "
          f"models={len(archs)} epochs={cfg.epochs} batch={cfg.batch_size}")

    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, a in enumerate(archs):
        buckets[bucket_key(a)].append(i)
    train_batched(X, y, archs[:2], seeds[:2], TrainConfig(epochs=1, batch_size=cfg.batch_size), device=dev)  # warm-up
    peak_before = matmul_flops_per_s(dev)
    nb = args.baseline_models or len(archs)
    t_batched, t_single = float("inf"), float("inf")
    batched_mae, single_mae = {}, {}
    for _ in range(args.repeats):  # interleaved repeats, best of each: the machine may be shared
        _sync(dev)
        t = time.perf_counter()
        for idx in buckets.values():
            res = train_batched(X, y, [archs[i] for i in idx], [seeds[i] for i in idx], cfg, device=dev)
            batched_mae.update({i: m["mae"] for i, m in zip(idx, res.metrics)})
        _sync(dev)
        t_batched = min(t_batched, time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(nb):
            single_mae[i] = train_single(X, y, archs[i], seeds[i], cfg, device=dev)[1]["mae"]
        _sync(dev)
        t_single = min(t_single, (time.perf_counter() - t) * len(archs) / nb)

    peak = max(peak_before, matmul_flops_per_s(dev))  # best of before/after: the machine may be shared
    achieved = flops / t_batched
    rate_b, rate_s = len(archs) / t_batched * 3600, len(archs) / t_single * 3600
    diffs = np.array([abs(batched_mae[i] - single_mae[i]) / single_mae[i] for i in range(nb)])
    print(f"shape buckets: {len(buckets)}  useful GFLOP: {flops / 1e9:.1f}")
    print(f"one-at-a-time (nn.Sequential + DataLoader): {t_single:8.2f} s  {rate_s:12.0f} models/hour")
    print(f"batched (stacked bmm, manual bwd, Adam/ES):{t_batched:8.2f} s  {rate_b:12.0f} models/hour")
    print(f"speed-up ratio: {t_single / t_batched:.1f}x")
    print(f"batched achieved {achieved / 1e9:.1f} GFLOP/s; large matmul {peak / 1e9:.1f} GFLOP/s; "
          f"fraction {achieved / peak:.0%}")
    print(f"same models, same seeds: max relative test-MAE difference {diffs.max():.2e}")


if __name__ == "__main__":
    main()
