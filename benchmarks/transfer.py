"""Screening speed: shotgun transfer over >= 1,000 library models vs a plain scikit-learn RidgeCV loop.

The library is written through the library room's shard writer with *synthetic* (untrained, nn.Linear-init)
weights: timing does not depend on the weight values, and training 1,000 real models does not fit the time
budget here. Everything else is real: the target is 100 real ESOL molecules, featurised with the real rdkit2d
/ maccs descriptors, and the input scaling of every model comes from real QM9 descriptors.

    .venv/bin/python benchmarks/transfer.py [--models 1024] [--rows 100] [--subset 150] [--device cpu|cuda]
        [--data-root DIR]

Prints candidates/s of the batched screen (streaming every shard from disk, frozen-feature forward passes and
exact LOO ridge over 13 penalties) and of the plain loop (per candidate: StandardScaler + RidgeCV with the
same 13 penalties, LOO) on a subset measured in the same run, and their ratio. Also times the screen with the
fold-wise re-screens a fit adds when direct learning is on its final-model menu (--folds, default 5).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from data_root import add_data_root, data_root

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "out" / "benchmarks" / "transfer"


def build_synthetic_library(path: Path, n_models: int, shard_size: int = 64, seed: int = 0) -> Path:
    """A library of n_models random-weight MLPs (real descriptor specs and input scaling), via write_shard."""
    from matlib.atomic import atomic_write_parquet
    from matlib.descriptors import get_featurizer
    from matlib.hashing import canonical_json
    from matlib.library import write_shard
    from matlib.library.build import seal_library
    from matlib.models.arch import bucket_key, sample_architecture
    from matlib.models.mlp import init_params
    from matlib.models.stacked import stack_params

    if (path / "manifest.json").exists():
        return path
    qm9 = pd.read_csv(REPO / "data" / "samples" / "qm9_sample.csv").head(500)
    rows, shards = [], {}
    rng = np.random.default_rng(seed)
    for d_i, name in enumerate(("rdkit2d", "maccs")):
        feat = get_featurizer(name)
        res = feat.featurize(qm9["smiles"].tolist())
        Xq = res.X[res.ok]
        x_mean, x_std = Xq.mean(0), np.where(Xq.std(0) > 0, Xq.std(0), 1.0)
        spec = feat.spec.to_dict()
        n_here = n_models // 2 + (n_models % 2 if d_i == 0 else 0)
        # families of shard_size models share depth/activation (as the library room's planner does)
        fams = [int(rng.integers(1 << 31)) for _ in range((n_here + shard_size - 1) // shard_size)]
        archs = [
            sample_architecture(len(feat.feature_names), int(rng.integers(1 << 31)), family_seed=fams[i // shard_size])
            for i in range(n_here)
        ]
        buckets: dict[tuple, list[dict]] = {}
        for a in archs:
            buckets.setdefault(bucket_key(a), []).append(a)
        for _key, group in sorted(buckets.items(), key=lambda kv: str(kv[0])):
            for start in range(0, len(group), shard_size):
                part = group[start : start + shard_size]
                padded = dict(part[0])
                padded["hidden"] = [max(int(a["hidden"][i]) for a in part) for i in range(len(part[0]["hidden"]))]
                seeds = [int(rng.integers(1 << 31)) for _ in part]
                tensors = stack_params(padded, [init_params(a, s) for a, s in zip(part, seeds)])
                M = len(part)
                for i in range(len(padded["hidden"])):
                    tensors[f"width{i}"] = torch.tensor([int(a["hidden"][i]) for a in part])
                tensors["x_mean"] = torch.tensor(np.tile(x_mean, (M, 1)), dtype=torch.float32)
                tensors["x_std"] = torch.tensor(np.tile(x_std, (M, 1)), dtype=torch.float32)
                tensors["y_mean"], tensors["y_std"] = torch.zeros(M), torch.ones(M)
                shard = f"synthetic-{name}-{len(shards):04d}"
                ids = [f"{name}-{len(rows) + m:06d}" for m in range(M)]
                sha = write_shard(path / "shards" / f"{shard}.safetensors", padded, tensors, {"model_ids": ids})
                shards[shard] = {"sha256": sha, "n_models": M}
                for m, (a, s) in enumerate(zip(part, seeds)):
                    rows.append(
                        {
                            "model_id": ids[m],
                            "property": f"synthetic_{m % 8}",
                            "dataset": "synthetic",
                            "dataset_version": "0" * 16,
                            "descriptor": name,
                            "descriptor_hash": spec["hash"],
                            "descriptor_spec": canonical_json(spec),
                            "arch": canonical_json(a),
                            "seed": s,
                            "train_config": "{}",
                            "n_train": 0,
                            "mae": np.nan,
                            "rmse": np.nan,
                            "r2": np.nan,
                            "shard": shard,
                            "row": m,
                            "status": "ok",
                        }
                    )
    atomic_write_parquet(path / "catalog.parquet", pd.DataFrame(rows))
    return seal_library(
        path,
        {
            "name": path.name,
            "synthetic": True,
            "n_models": len(rows),
            "n_ok": len(rows),
            "n_failed": 0,
            "shards": shards,
        },
    )


def plain_loop(lib, target, model_ids: list[str], grid) -> tuple[int, float, float]:
    """(candidates, seconds of RidgeCV fits only, seconds including per-model forward passes)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import StandardScaler

    y = target.y_usable
    cat = lib.catalog.set_index("model_id")
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(1)  # the plain loop's best setting here (BLAS threads collapse on shared cores)
    n_cand, t_fit, t0 = 0, 0.0, time.perf_counter()
    for mid in model_ids:
        module = lib.load_model(mid)
        X = torch.as_tensor(target.features[cat.loc[mid, "descriptor_hash"]])
        with torch.no_grad():
            hidden = module.hidden_features(X)
        for H in hidden:
            t = time.perf_counter()
            Z = StandardScaler().fit_transform(H.numpy().astype(np.float64))
            scale = max(1e-12, float((Z * Z).sum()) / max(1, min(Z.shape[0] - 1, Z.shape[1])))
            RidgeCV(alphas=np.asarray(grid) * scale).fit(Z, y)
            t_fit += time.perf_counter() - t
            n_cand += 1
    limits.restore_original_limits()
    return n_cand, t_fit, time.perf_counter() - t0


def main() -> None:
    """Build (or reuse) the library, run the batched screen and the plain loop, print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=1024)
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--subset", type=int, default=150, help="models in the plain-loop baseline")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5, help="outer folds of the fold-wise re-screen (0: skip it)")
    add_data_root(ap)
    args = ap.parse_args()

    from matlib.library import Library
    from matlib.transfer.cv import repeated_kfold
    from matlib.transfer.fit import library_specs, screen_library
    from matlib.transfer.ridge import DEFAULT_GRID
    from matlib.transfer.target import prepare_target

    lib_dir = build_synthetic_library(OUT / f"synthetic-{args.models}", args.models)
    lib = Library(lib_dir)
    esol = pd.read_csv(data_root(args.data_root) / "targets" / "esol.csv").sample(args.rows, random_state=0)
    t = time.perf_counter()
    target = prepare_target(esol["smiles"].tolist(), esol["logSolubility"].tolist(), library_specs(lib.catalog))
    t_feat = time.perf_counter() - t
    print(
        f"library: {len(lib.catalog)} models in {len(lib.manifest['shards'])} shards ({lib_dir}); "
        f"target: {int(target.usable.sum())} real ESOL rows; featurisation {t_feat:.2f}s (once per spec)"
    )
    print(f"device: {args.device}; torch threads: {torch.get_num_threads()}")
    screen_library(lib, target, device=args.device)  # warm-up (imports, allocator)

    def timed_screen(fold_train=()) -> tuple[float, pd.DataFrame]:
        best = float("inf")
        for _ in range(args.repeats):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            df = screen_library(lib, target, device=args.device, fold_train=fold_train)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
        return best, df

    best, df = timed_screen()
    n = len(df)
    fast = n / best
    ids = lib.catalog.sort_values("model_id")["model_id"].iloc[:: max(1, len(lib.catalog) // args.subset)]
    ids = ids.iloc[: args.subset].tolist()
    n_slow, t_fit, t_all = plain_loop(lib, target, ids, DEFAULT_GRID)
    slow_fit, slow_all = n_slow / t_fit, n_slow / t_all
    widths = df["width"].astype(int)
    print(f"candidates: {n} (model, layer) pairs; widths {widths.min()}-{widths.max()} (median {int(widths.median())})")
    print(
        f"batched screen (stream shards + forward passes + exact LOO, 13 penalties): {best:.2f}s = "
        f"{fast:,.0f} candidates/s"
    )
    print(
        f"plain loop, RidgeCV fits only ({n_slow} candidates): {slow_fit:,.0f} candidates/s; "
        f"with per-model load + forward: {slow_all:,.0f} candidates/s"
    )
    print(f"speed-up: {fast / slow_fit:.1f}x vs RidgeCV alone, {fast / slow_all:.1f}x vs the full plain loop")
    if args.folds:  # a fit with direct learning on its menu also screens each outer fold's training rows
        folds = [train for _, train, _ in repeated_kfold(len(target.y_usable), args.folds, 1, 0).splits()]
        t_folds, _ = timed_screen(folds)
        print(
            f"with {args.folds} fold-wise re-screens as well (nested CV of the transfer option): {t_folds:.2f}s = "
            f"{n / t_folds:,.0f} candidates/s ({t_folds / best:.1f}x the plain screen's time)"
        )
    print(
        json.dumps(
            {
                "device": args.device,
                "models": len(lib.catalog),
                "candidates": n,
                "rows": args.rows,
                "screen_s": best,
                "candidates_per_s": fast,
                "ridgecv_per_s": slow_fit,
                "plain_loop_per_s": slow_all,
                "ratio_vs_ridgecv": fast / slow_fit,
            }
        )
    )


if __name__ == "__main__":
    main()
