"""Benchmark: batched multi-model training vs one model at a time (the usual PyTorch way), same models.

All trainers get the same real data (Magpie descriptors of MP formation energies), the same
architectures and seeds, the same epochs and batch size (early stopping off so they do the same
work). Prints models/hour, the ratio to one-at-a-time training, and the achieved FLOP/s (useful
matmul FLOPs of each model's own architecture) as a fraction of a large matmul's FLOP/s measured in
the same run with all of this process's threads.

The batched trainer runs two ways: in this process with torch's threads, and as `matlib library
build` deploys it on a CPU machine: shards of models spread over a Dask LocalCluster of one
single-threaded worker per core (shards placed largest first; workers started and warmed before
timing, as in a long-running build). The one-at-a-time baseline uses torch's threads in this process.

    .venv/bin/python benchmarks/training.py            # CPU (or CUDA when available)
    .venv/bin/python benchmarks/training.py --quick    # a short smoke run
    (--data-root DIR: the public tables; default ../shared/data next to the repository)
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from data_root import add_data_root, data_root

from matlib.models import TrainConfig, bucket_key, sample_architecture, train_batched, train_single
from matlib.models.data import split_indices


def real_data(root: Path, n_rows: int, descriptor: str = "magpie") -> tuple[np.ndarray, np.ndarray]:
    """Compositional features (a registered descriptor) and formation energies of n_rows real MP compositions."""
    from matlib.descriptors import get_featurizer

    df = pd.read_csv(root / "mp" / "matbench_mp_e_form.csv").sample(n=n_rows, random_state=0)
    res = get_featurizer(descriptor).featurize(df["formula"].tolist())
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


def _train_shard(X: np.ndarray, y: np.ndarray, archs: list[dict], seeds: list[int], cfg: dict) -> list[float]:
    """A Dask task: train one shard with one torch thread (as the library build does); its test MAEs."""
    torch.set_num_threads(1)
    return [m["mae"] for m in train_batched(X, y, archs, seeds, cfg, device="cpu").metrics]


class FanOut:
    """Shards trained on a CPU LocalCluster of single-threaded workers: how `matlib library build` runs them."""

    def __init__(self, workers: int, X: np.ndarray, y: np.ndarray) -> None:
        from matlib.cluster import get_client

        self.client = get_client(n_workers=workers, threads_per_worker=1)
        self.X, self.y = self.client.scatter([X, y], broadcast=True)
        warm = [sample_architecture(X.shape[1], 0)]
        self.client.gather(
            [
                self.client.submit(_train_shard, self.X, self.y, warm, [0], {"epochs": 1}, pure=False, workers=[w])
                for w in self.client.scheduler_info()["workers"]
            ]
        )

    def run(
        self, shards: list[list[int]], archs: list[dict], seeds: list[int], cfg: dict, costs: list[float]
    ) -> dict[int, float]:
        """Train every shard, placed on the workers by estimated cost (largest first); test MAE by model index."""
        workers = list(self.client.scheduler_info()["workers"])
        load = dict.fromkeys(workers, 0.0)
        futures = []
        for k in sorted(range(len(shards)), key=lambda k: -costs[k]):
            w = min(workers, key=load.__getitem__)
            load[w] += costs[k]
            idx = shards[k]
            futures.append(
                (
                    idx,
                    self.client.submit(
                        _train_shard,
                        self.X,
                        self.y,
                        [archs[i] for i in idx],
                        [seeds[i] for i in idx],
                        cfg,
                        pure=False,
                        workers=[w],
                    ),
                )
            )
        return {i: mae for idx, f in futures for i, mae in zip(idx, f.result())}

    def close(self) -> None:
        """Stop the cluster."""
        from matlib.cluster import close_client

        close_client(self.client)


def _timed(fn, device: torch.device) -> tuple[float, object]:  # noqa: ANN001 - any callable
    """(seconds, result) of fn()."""
    _sync(device)
    t = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t, out


def main() -> None:
    """Run the trainers on the same models and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=64)
    ap.add_argument("--family", type=int, default=32, help="models per shape bucket")
    ap.add_argument("--shard-size", type=int, default=16, help="models per shard in the fanned-out run")
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument(
        "--descriptor",
        default="magpie",
        choices=["magpie", "xenonpy"],
        help="compositional descriptor of the inputs: magpie (132 features) or xenonpy (290)",
    )
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument(
        "--baseline-models",
        type=int,
        default=None,
        help="time the one-at-a-time baseline on this many of the models (default: all)",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads in this process (default: torch's)")
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="single-threaded Dask workers of the fanned-out run (default: one per core; 0: skip it)",
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true")
    add_data_root(ap)
    args = ap.parse_args()
    if args.quick:
        args.models, args.family, args.rows, args.epochs, args.repeats = 16, 8, 1500, 2, 1
    dev = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    workers = 0 if dev.type == "cuda" else (os.cpu_count() or 1) if args.workers is None else args.workers
    X, y = real_data(data_root(args.data_root), args.rows, args.descriptor)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=args.epochs + 1)
    space = {"n_layers": [1, 3], "dropout": [0.0], "batchnorm": [False]}
    seeds = list(range(args.models))
    archs = [sample_architecture(X.shape[1], s, space, family_seed=1000 + s // args.family) for s in seeds]
    sp = split_indices(len(y), 0, cfg.val_fraction, cfg.test_fraction)
    flops = sum(
        model_flops(a, len(sp.train), len(sp.val), min(cfg.batch_size, len(sp.train)), cfg.epochs) for a in archs
    )
    print(
        f"device={dev} torch_threads={torch.get_num_threads()} rows={len(y)} {args.descriptor} d_in={X.shape[1]} "
        f"models={len(archs)} epochs={cfg.epochs} batch={cfg.batch_size} fan-out workers={workers}"
    )

    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, a in enumerate(archs):
        buckets[bucket_key(a)].append(i)
    shards = [idx[k : k + args.shard_size] for idx in buckets.values() for k in range(0, len(idx), args.shard_size)]
    costs = [
        sum(model_flops(archs[i], len(sp.train), len(sp.val), cfg.batch_size, cfg.epochs) for i in idx)
        for idx in shards
    ]
    fan = FanOut(workers, X, y) if workers else None

    def batched() -> dict[int, float]:
        maes = {}
        for idx in buckets.values():
            res = train_batched(X, y, [archs[i] for i in idx], [seeds[i] for i in idx], cfg, device=dev)
            maes.update({i: m["mae"] for i, m in zip(idx, res.metrics)})
        return maes

    nb = args.baseline_models or len(archs)

    def single() -> dict[int, float]:
        return {i: train_single(X, y, archs[i], seeds[i], cfg, device=dev)[1]["mae"] for i in range(nb)}

    train_batched(X, y, archs[:2], seeds[:2], TrainConfig(epochs=1, batch_size=cfg.batch_size), device=dev)  # warm-up
    peak = matmul_flops_per_s(dev)
    times: dict[str, float] = defaultdict(lambda: float("inf"))
    maes: dict[str, dict[int, float]] = {}
    try:
        for _ in range(args.repeats):  # interleaved repeats, best of each: the machine may be shared
            runs = [("batched", batched), ("single", single)]
            if fan is not None:
                runs.append(("fan-out", lambda: fan.run(shards, archs, seeds, cfg.to_dict(), costs)))
            for name, fn in runs:
                t, maes[name] = _timed(fn, dev)
                times[name] = min(times[name], t * (len(archs) / nb if name == "single" else 1))
            peak = max(peak, matmul_flops_per_s(dev))  # best of all: the machine may be shared
    finally:
        if fan is not None:
            fan.close()

    print(
        f"shape buckets: {len(buckets)}  useful GFLOP: {flops / 1e9:.1f}  "
        f"large matmul ({torch.get_num_threads()} threads): {peak / 1e9:.1f} GFLOP/s"
    )
    t_single = times["single"]
    print(
        f"{'one-at-a-time (nn.Sequential + DataLoader)':58s} {t_single:7.2f} s {len(archs) / t_single * 3600:10.0f} "
        f"models/hour"
    )
    labels = {
        "batched": f"batched, one process ({torch.get_num_threads()} torch threads)",
        "fan-out": f"batched, {len(shards)} shards over {workers} 1-thread Dask workers",
    }
    for name, label in labels.items():
        if name in times:
            t = times[name]
            print(
                f"{label:58s} {t:7.2f} s {len(archs) / t * 3600:10.0f} models/hour  ratio {t_single / t:5.1f}x  "
                f"{flops / t / 1e9:6.1f} GFLOP/s = {flops / t / peak:4.0%} of the large matmul"
            )
    for name in labels:
        if name in maes:
            diffs = np.array([abs(maes[name][i] - maes["single"][i]) / maes["single"][i] for i in range(nb)])
            print(
                f"same models, same seeds ({name} vs one-at-a-time): max relative test-MAE difference {diffs.max():.2e}"
            )


if __name__ == "__main__":
    main()
