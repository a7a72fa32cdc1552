"""Repeated K-fold splits shared by every candidate and baseline, and out-of-fold evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matlib.transfer.learners import SourceContext, get_learner


@dataclass(frozen=True)
class Folds:
    """fold[r, i] = the test fold of row i in repeat r (same splits for every candidate)."""

    fold: np.ndarray  # [repeats, n] int
    k: int

    @property
    def repeats(self) -> int:
        """Number of repeats."""
        return int(self.fold.shape[0])

    def splits(self):
        """Yield (repeat, train_idx, test_idx) for every fold of every repeat."""
        for r in range(self.repeats):
            for f in range(self.k):
                test = np.flatnonzero(self.fold[r] == f)
                if len(test):
                    yield r, np.flatnonzero(self.fold[r] != f), test

    def first_repeat(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train_idx, test_idx) of every fold of repeat 0: the outer folds of nested CV and of the saved fold fits."""
        return [(train, test) for r, train, test in self.splits() if r == 0]


def repeated_kfold(n: int, k: int = 5, repeats: int = 3, seed: int = 0) -> Folds:
    """Random K-fold assignments for n rows, repeated, reproducible from seed."""
    k = max(2, min(int(k), n))
    rng = np.random.default_rng([int(seed), 0xF01D])
    fold = np.empty((repeats, n), dtype=np.int64)
    for r in range(repeats):
        fold[r, rng.permutation(n)] = np.arange(n) % k
    return Folds(fold, k)


CV_SCHEMES = ("random", "extrapolation")


def sorted_kfold(y: np.ndarray, k: int = 5) -> Folds:
    """Extrapolation folds: the rows sorted by target and cut into k contiguous blocks (one repeat).

    Holding out the top (bottom) block asks a learner to predict above (below) every target it was trained on,
    which a random split never does; learners that cannot leave the training range score badly there.
    """
    n = len(y)
    k = max(2, min(int(k), n))
    fold = np.empty((1, n), dtype=np.int64)
    fold[0, np.argsort(np.asarray(y, dtype=float), kind="mergesort")] = (np.arange(n) * k) // n
    return Folds(fold, k)


def make_folds(y: np.ndarray, k: int = 5, repeats: int = 3, seed: int = 0, scheme: str = "random") -> Folds:
    """The run's CV folds: repeated random K-fold, or sorted-target blocks (scheme "extrapolation")."""
    if scheme == "random":
        return repeated_kfold(len(y), k, repeats, seed)
    if scheme == "extrapolation":
        return sorted_kfold(y, k)
    from matlib.errors import MatlibError

    raise MatlibError(f"unknown CV scheme {scheme!r}; known: {', '.join(CV_SCHEMES)}")


@dataclass
class CVResult:
    """Out-of-fold predictions [repeats, n] and their errors."""

    oof: np.ndarray
    mae: float
    rmse: float
    mae_sd: float  # spread of the MAE across repeats
    oof_sd: np.ndarray | None = None  # out-of-fold predictive sd [repeats, n] of learners that give one


def cv_scores(oof: np.ndarray, y: np.ndarray) -> CVResult:
    """MAE / RMSE of out-of-fold predictions [repeats, n] against y."""
    err = oof - y[None, :]
    per_rep = np.abs(err).mean(axis=1)
    return CVResult(oof, float(per_rep.mean()), float(np.sqrt((err**2).mean())), float(per_rep.std()))


def cross_validate(
    X: np.ndarray, y: np.ndarray, folds: Folds, learner: str, seed: int = 0, context: SourceContext | None = None
) -> CVResult:
    """Out-of-fold predictions of a registered learner on the shared folds."""
    lr = get_learner(learner)
    oof = np.full(folds.fold.shape, np.nan)
    sd = np.full(folds.fold.shape, np.nan) if lr.has_sd else None
    for r, train, test in folds.splits():
        state = lr.fit(X[train], y[train], seed + r, context)
        oof[r, test] = lr.predict(state, X[test])
        if sd is not None:
            sd[r, test] = lr.predict_sd(state, X[test])
    res = cv_scores(oof, y)
    res.oof_sd = sd
    return res
