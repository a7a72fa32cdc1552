"""Benchmark: a GCN on QM9 heat capacity (accuracy), and M GNNs of one family batched vs one at a time (speed).

Part 1 (accuracy). 5,000 random QM9 molecules: 4,000 to train on (10% of them held out inside for early stopping
and the learning-rate schedule), 1,000 others to test. A GCN with the canonical 74-dimension atom features (two
graph convolutions, sum pooling, three fully connected layers, ReLU, Adam at 1e-3, halved after `--lr-patience`
epochs without a better validation loss) is trained on Cv until early stopping; prints the test R2, the epochs and
the wall time, next to an MLP on rdkit2d descriptors trained on the same 4,000 molecules and tested on the same
1,000 (the published figure for this GCN setup: R2 0.964 after 5,000 epochs).

Part 2 (speed). M GNNs of one family (same architecture, M seeds) trained for a fixed number of epochs (early
stopping off, so both do the same work) on the same split, one after the other: batched (`train_gnn_batched`: one sparse
product per message-passing step for all models, per-model weights one batched matmul) and one at a time
(`train_gnn_single`: a plain module, torch.optim.Adam). Prints both wall times, the ratio, and how far their test
metrics are apart; wall times and this process's CPU times (on cores shared with other work, the wall-time ratio
swings with their load; the CPU-time ratio much less). Both run with `--threads` torch threads (default 1: as
`matlib library build` runs shards, one single-threaded worker per core).

Measured (2 shared CPU cores, load average 3-9 from other sessions, torch 2.13 CPU):
- GCN 2 x 128, sum pooling, FC 128-64-1: test R2 0.9867 (MAE 0.361 cal/mol/K) after 138 epochs (best 108; early
  stopping, lr halved on plateaus), 62 s wall (190 s under heavier load); MLP on rdkit2d: R2 0.9904, 7-37 s.
  After the model-major stacked forward: R2 0.9866 (MAE 0.357) after 155 epochs (best 125), 101 s at load 6.
- 32 models, 3 conv x 32, 1 thread, load average 5-7 from other sessions; node states model-major [M, N, w] with
  block-diagonal sparse products (no layout copies), first-layer input over its nonzero columns, fused Adam kernel,
  evaluation chunks sized by M. 2 epochs: batched vs one at a time 8.3x wall / 7.9x CPU time, 7.8x / 7.9x,
  8.2x / 7.8x (batched 1.3-2.2 s/epoch, one at a time 11-18 s/epoch); 6 epochs: 9.2x / 8.8x, 7.5x / 7.8x,
  11.3x / 9.7x (batched 1.5-2.3 s/epoch, one at a time 14-18 s/epoch). Test R2 batched 0.7644 vs one at a time
  0.7648 after 2 epochs (per model |difference| median 2e-8, max 1.8e-2: one model of 32 that is sensitive to
  rounding; with the multi-tensor Adam fallback instead of the fused kernel, whose updates differ by float rounding
  only, all 32 agree within 1e-4); after 6 epochs 0.8208 vs 0.8207, max |difference| 2.0e-3.
  Before (node states [N, M, w], a transpose copy around every batched matmul): 4.8x, 5.0x, 4.2x, 5.0x, 4.3x
  (2 epochs), 5.3x, 5.0x (6 epochs); with 2 threads 9.3x / 8.7x, but both several times slower in absolute terms.

    .venv/bin/python benchmarks/gnn.py [--data-root ../shared/data]   # data root default: ../shared/data
    .venv/bin/python benchmarks/gnn.py --quick                         # a short smoke run
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from data_root import add_data_root, data_root

from matlib.graphs.spec import GraphSpec
from matlib.models.data import Split, regression_metrics
from matlib.models.gnn_batched import GNNTrainConfig, train_gnn_batched
from matlib.models.gnn_reference import train_gnn_single

TARGET = "Heatcapacity_Cv_cal_mol_K"

GCN = {
    "model": "gnn",
    "n_node": 74,
    "n_edge": 12,
    "depth": 2,
    "width": 128,
    "pooling": "sum",
    "decoder": [128, 64],
    "activation": "relu",
    "edge_features": False,
    "n_out": 1,
}
FAMILY = {
    "model": "gnn",
    "n_node": 74,
    "n_edge": 12,
    "depth": 3,
    "width": 32,
    "pooling": "sum",
    "decoder": [32, 32],
    "activation": "relu",
    "edge_features": True,
    "n_out": 1,
}


def load_qm9(root: Path, n: int, seed: int) -> pd.DataFrame:
    """n random QM9 molecules (SMILES and Cv)."""
    path = root / "qm9" / "qm9.csv.gz"
    if not path.exists():
        raise SystemExit(f"{path} not found; pass --data-root (the folder holding qm9/qm9.csv.gz)")
    df = pd.read_csv(path, usecols=["smiles", TARGET])
    return df.sample(n=n, random_state=seed).reset_index(drop=True)


def make_split(n_train: int, n_test: int, seed: int) -> Split:
    """First n_train rows train (10% of them validation), the next n_test test."""
    rng = np.random.default_rng(seed)
    train = rng.permutation(n_train)
    n_val = n_train // 10
    return Split(np.sort(train[n_val:]), np.sort(train[:n_val]), np.arange(n_train, n_train + n_test))


def mlp_rdkit2d(df: pd.DataFrame, sp: Split, epochs: int) -> tuple[dict, float, int]:
    """(test metrics, seconds, epochs) of an MLP on rdkit2d trained on the same training rows."""
    from matlib.descriptors import get_featurizer
    from matlib.models.reference import train_single

    res = get_featurizer("rdkit2d").featurize(df["smiles"].tolist())
    X = np.nan_to_num(res.X, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    y = df[TARGET].to_numpy(np.float32)
    fit = np.concatenate([sp.train, sp.val])
    arch = {
        "n_in": X.shape[1],
        "hidden": [256, 128, 64],
        "activation": "relu",
        "dropout": 0.0,
        "batchnorm": False,
        "n_out": 1,
    }
    cfg = {"epochs": epochs, "batch_size": 64, "lr": 1e-3, "patience": 30, "val_fraction": 0.1, "test_fraction": 0.01}
    t0 = time.perf_counter()
    model, met = train_single(X[fit], y[fit], arch, seed=0, config=cfg)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        pred = model(torch.as_tensor(X[sp.test])).numpy()
    return regression_metrics(y[sp.test], pred), seconds, int(met.get("epochs", met.get("best_epoch", 0)))


def part_accuracy(gs, df: pd.DataFrame, sp: Split, args: argparse.Namespace) -> None:
    """The GCN on Cv vs the MLP on rdkit2d."""
    cfg = GNNTrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=1e-3,
        patience=args.patience,
        lr_patience=args.lr_patience,
        lr_factor=0.5,
        min_lr=1e-5,
    )
    t0 = time.perf_counter()
    res = train_gnn_batched(gs, df[TARGET].to_numpy(), GCN, [0], cfg, split=sp)
    seconds = time.perf_counter() - t0
    met = res.metrics[0]
    print(
        f"GCN (2 conv x {GCN['width']}, sum pooling, FC {GCN['decoder']}+1, ReLU, Adam 1e-3) on {len(sp.train)}+"
        f"{len(sp.val)} molecules, tested on {len(sp.test)}:"
    )
    print(
        f"  test R2 {met['r2']:.4f}  MAE {met['mae']:.4f} cal/mol/K  epochs {res.epochs_run} (best {met['best_epoch']})"
        f"  wall {seconds:.1f} s"
    )
    mlp, mlp_s, mlp_epochs = mlp_rdkit2d(df, sp, args.epochs)
    print(
        f"MLP on rdkit2d, same training and test molecules:\n  test R2 {mlp['r2']:.4f}  MAE {mlp['mae']:.4f}"
        f"  epochs {mlp_epochs}  wall {mlp_s:.1f} s"
    )


def part_speed(gs, df: pd.DataFrame, sp: Split, args: argparse.Namespace) -> None:
    """M models of one family, batched vs one at a time, same epochs."""
    seeds = list(range(100, 100 + args.models))
    cfg = GNNTrainConfig(epochs=args.speed_epochs, batch_size=32, lr=1e-3, patience=10_000)
    y = df[TARGET].to_numpy()
    t0, c0 = time.perf_counter(), time.process_time()
    b = train_gnn_batched(gs, y, FAMILY, seeds, cfg, split=sp)
    tb, cb = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    s = train_gnn_single(gs, y, FAMILY, seeds, cfg, split=sp)
    ts, cs = time.perf_counter() - t0, time.process_time() - c0
    rb = np.array([m["r2"] for m in b.metrics])
    rs = np.array([m["r2"] for m in s.metrics])
    print(
        f"{args.models} models of one family ({FAMILY['depth']} conv x {FAMILY['width']}, {FAMILY['pooling']}, "
        f"FC {FAMILY['decoder']}), {args.speed_epochs} epochs, batch 32, {torch.get_num_threads()} torch thread(s):"
    )
    e = args.speed_epochs
    print(
        f"  wall: batched {tb:.1f} s ({tb / e:.2f} s/epoch)   one at a time {ts:.1f} s ({ts / e:.2f} s/epoch)   "
        f"ratio {ts / tb:.1f}x"
    )
    print(
        f"  CPU time of this process (less sensitive to other load on shared cores): batched {cb:.1f} s   "
        f"one at a time {cs:.1f} s   ratio {cs / cb:.1f}x"
    )
    print(
        f"  test R2 batched mean {rb.mean():.4f}, one at a time mean {rs.mean():.4f}, "
        f"|difference| per model max {np.abs(rb - rs).max():.2e}, median {np.median(np.abs(rb - rs)):.2e}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_root(ap)
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=400, help="upper bound; early stopping ends the run")
    ap.add_argument("--patience", type=int, default=30)
    ap.add_argument("--lr-patience", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--models", type=int, default=32)
    ap.add_argument("--speed-epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip", choices=["accuracy", "speed"], default=None)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.models, args.speed_epochs = 600, 200, 5, 8, 1
    torch.set_num_threads(args.threads)
    df = load_qm9(data_root(args.data_root), args.n_train + args.n_test, seed=0)
    t0 = time.perf_counter()
    gs, ok, reasons = GraphSpec("molgraph").featurize(df["smiles"].tolist())
    if not ok.all():
        raise SystemExit(f"{int((~ok).sum())} QM9 SMILES did not featurise (first: {next(r for r in reasons if r)})")
    print(f"featurised {len(df)} QM9 molecules into graphs in {time.perf_counter() - t0:.1f} s")
    sp = make_split(args.n_train, args.n_test, seed=0)
    if args.skip != "accuracy":
        part_accuracy(gs, df, sp, args)
    if args.skip != "speed":
        part_speed(gs, df, sp, args)


if __name__ == "__main__":
    main()
