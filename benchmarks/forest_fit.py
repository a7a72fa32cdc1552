"""Forest fits of the transfer menu: matlib's rf / extratrees learners vs scikit-learn's own forests, same trees.

A transfer fit at n <= 200 spends most of its time in the refinement's forests (hundreds of 200-tree fits on a few
dozen rows), where scikit-learn's per-tree cloning, not the tree building, dominates. matlib's learners clone a tree
class whose parameter names are read once (matlib/transfer/learners/forest.py). Real rows: the ESOL sample shipped
in data/samples (matlib's Morgan counts), at several training sizes.

    .venv/bin/python benchmarks/forest_fit.py [--sizes 25 50 100 150] [--fits 10]

Prints, per learner and size, CPU seconds per fit of scikit-learn's forest and of matlib's learner, measured
interleaved in the same run, and their ratio (below 1: matlib faster); checks that both grow the same trees.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def esol_morgan() -> tuple[np.ndarray, np.ndarray]:
    """Morgan counts (matlib's registered "morgan" descriptor) and logSolubility of the shipped ESOL sample."""
    from matlib.descriptors import get_featurizer

    df = pd.read_csv(REPO / "data" / "samples" / "esol_sample.csv")
    res = get_featurizer("morgan").featurize(df["smiles"])
    return res.X[res.ok].astype(np.float64), df["logSolubility"].to_numpy(np.float64)[res.ok]


def main() -> None:
    """Time both forests per (learner, size) and print the ratios."""
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

    from matlib.transfer.learners import ET_PARAMS, RF_PARAMS, get_learner

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 150])
    ap.add_argument("--fits", type=int, default=10, help="fits of each per (learner, size)")
    args = ap.parse_args()
    X_all, y_all = esol_morgan()
    plain = {"rf": (RandomForestRegressor, RF_PARAMS), "extratrees": (ExtraTreesRegressor, ET_PARAMS)}
    print(f"{'learner':11s} {'n':>4s} {'sklearn s/fit':>14s} {'matlib s/fit':>13s} {'ratio':>6s}")
    for name, (cls, params) in plain.items():
        learner = get_learner(name)
        for n in args.sizes:
            X, y = X_all[:n], y_all[:n]
            varying = np.flatnonzero(X.max(axis=0) > X.min(axis=0))
            Xv = X[:, varying].astype(np.float32)
            ours = theirs = 0.0
            for seed in range(args.fits):  # interleaved: both see the same machine load
                t = time.process_time()
                forest = cls(random_state=seed, **params).fit(Xv, y)
                theirs += time.process_time() - t
                t = time.process_time()
                state = learner.fit(X, y, seed)
                ours += time.process_time() - t
                same = np.concatenate([e.tree_.threshold for e in forest.estimators_])
                if not np.array_equal(state["threshold"], same):
                    raise SystemExit(f"{name} n={n} seed={seed}: matlib's trees differ from scikit-learn's")
            print(f"{name:11s} {n:4d} {theirs / args.fits:14.4f} {ours / args.fits:13.4f} {ours / theirs:6.3f}")


if __name__ == "__main__":
    main()
