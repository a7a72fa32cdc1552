"""The final choice among the menu's options (issue #17): the steadiest option unless another beats it clearly.

At 25-100 rows the option with the lowest CV MAE often wins by less than the CV noise, and a transfer option that
won by noise alone is the one that then loses on new data. So every other option is compared with the reference
(the steadiest option, below) on the same rows (paired): per row, its absolute out-of-fold error minus the
reference's; the mean of those differences is its gain over the reference (sign flipped) and sd / sqrt(n) its
standard error (SE). Its lower bound is gain - z SE (z = CHOICE_SE). The option with the highest positive lower
bound is chosen ("clear"), else the reference: a one-SE rule that favours the reference, and among the options
that beat it the one surest to (an average that contains the reference has errors close to its, so a small SE, and
often wins on the bound over a riskier option with a slightly larger mean gain). With z = 0 the rule is "the lowest
MAE if it beats the reference".

The reference (`reference_option`) is the ensemble option, "ensemble: top 3 options", where the menu has it, else
the averaged direct option, "direct: mean of top 3", else the single CV-best direct (descriptor, learner) pair,
"direct". Picking one entry out of many by CV at 25-100 rows keeps much of the CV noise, and averaging the few best
sheds it. On the 120 training sets of the issue's random panel (n = 25-100, nested CV only, no test row):
- the averaged direct option's nested MAE was lower than the single pick's in 63% of them (median ratio 0.98);
- the ensemble option's nested MAE was lower than that of the choice made with the averaged direct option as the
  reference in 72 of them (mean ratio 0.981 / 0.994 / 0.983 at n = 25 / 50 / 100; lower in 17 of the 24 (target, n)
  cells) and at most 2.5% above the averaged direct option's in any cell. In the extrapolation panel it was neutral
  (lower in 62 of 120, mean ratio 0.996 / 1.002 / 0.992).
The option a fit falls back on should be the steadiest one; an option still wins if it beats it clearly.

The ensemble option (`ensemble_option`) averages the top k options of the menu; its out-of-fold predictions pick
the k options inside each outer fold from the other folds' out-of-fold predictions only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from matlib.transfer.cv import Folds

CHOICE_SE = 1.0  # standard errors by which an option must beat the reference to be chosen
ENSEMBLE_OPTIONS = 3  # the ensemble option averages this many of the menu's best options (0: no ensemble option)
DIRECT_MEAN = 3  # the menu's averaged direct option: the mean of this many CV-best direct (descriptor, learner) pairs
REFERENCE = "direct"  # the single CV-best direct (descriptor, learner) pair
DIRECT_MEAN_OPTION = "direct: mean of top"  # the averaged direct option's name, before its k
ENSEMBLE_OPTION = "ensemble: top"  # the ensemble option's name, before "{k} options"

Chooser = Callable[[dict[str, np.ndarray], np.ndarray], str]


def row_errors(oof: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Absolute out-of-fold error per row [n], averaged over repeats (oof: [n] or [repeats, n])."""
    return np.abs(np.atleast_2d(oof) - y[None, :]).mean(axis=0)


@dataclass(frozen=True)
class PairedGap:
    """An option against the reference on the same rows: mean per-row |error| difference and its standard error."""

    diff: float  # mean over rows of |error of the option| - |error of the reference| (negative: option better)
    se: float  # standard error of that mean (sd of the per-row differences / sqrt(n))
    z: float  # standard errors the bound takes off the gain

    @property
    def bound(self) -> float:
        """Lower bound of the gain over the reference: -diff - z * se."""
        return -self.diff - self.z * self.se

    @property
    def clear(self) -> bool:
        """Better than the reference by more than z standard errors."""
        return self.bound > 0

    def as_dict(self) -> dict[str, float | bool]:
        """JSON-ready fields."""
        return {"paired_diff": self.diff, "paired_se": self.se, "gain_bound": self.bound, "clear": self.clear}


def paired_gap(oof: np.ndarray, ref_oof: np.ndarray, y: np.ndarray, z: float = CHOICE_SE) -> PairedGap:
    """The paired comparison of out-of-fold predictions oof against ref_oof (both [n] or [repeats, n])."""
    d = row_errors(oof, y) - row_errors(ref_oof, y)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("inf")
    return PairedGap(float(d.mean()), se, float(z))


def _mae(oof: np.ndarray, y: np.ndarray) -> float:
    """MAE of out-of-fold predictions [n] or [repeats, n]."""
    return float(row_errors(oof, y).mean())


def choose(oofs: dict[str, np.ndarray], y: np.ndarray, reference: str | None = REFERENCE, z: float = CHOICE_SE) -> str:
    """The option whose gain over the reference has the highest lower bound (gain - z SE), if positive, else the
    reference (ties: the earlier key); with no reference among oofs, the lowest MAE."""
    if reference not in oofs:
        return lowest_mae(oofs, y)
    ref = oofs[str(reference)]
    bounds = {k: paired_gap(v, ref, y, z).bound for k, v in oofs.items() if k != reference}
    best = max(bounds, key=lambda k: bounds[k], default=None)  # max keeps the first of equals
    return best if best is not None and bounds[best] > 0 else str(reference)


def chooser(reference: str | None = REFERENCE, z: float = CHOICE_SE) -> Chooser:
    """`choose` with a fixed reference and z, for `select.fold_select_oof`."""
    return lambda oofs, y: choose(oofs, y, reference, z)


def reference_option(names: list[str]) -> str | None:
    """The option the others must beat clearly: the ensemble option, else the averaged direct option, else the single
    direct pair, else none."""
    for prefix in (ENSEMBLE_OPTION, DIRECT_MEAN_OPTION):
        named = [n for n in names if n.startswith(prefix)]
        if named:
            return named[0]
    return REFERENCE if REFERENCE in names else None


def lowest_mae(oofs: dict[str, np.ndarray], y: np.ndarray) -> str:
    """The option with the lowest MAE (ties: the earlier key)."""
    return min(oofs, key=lambda k: _mae(oofs[k], y))


def top_options(oofs: dict[str, np.ndarray], y: np.ndarray, k: int) -> list[str]:
    """The k options with the lowest MAE, best first (ties: the earlier key)."""
    maes = {key: _mae(v, y) for key, v in oofs.items()}
    return sorted(oofs, key=lambda key: maes[key])[:k]  # sorted is stable: ties keep the earlier key


def ensemble_oof(oofs: dict[str, np.ndarray], y: np.ndarray, k: int, folds: Folds | None = None) -> np.ndarray:
    """Out-of-fold predictions [repeats, n] of "average the k best options": with folds, the k are re-picked for
    every held-out fold from the other folds' rows alone; without, the k best on all rows (optimistic)."""
    stack = {key: np.atleast_2d(np.asarray(v, dtype=float)) for key, v in oofs.items()}
    if folds is None:
        return np.mean([stack[key] for key in top_options(stack, y, k)], axis=0)
    out = np.full(folds.fold.shape, np.nan)
    for r, train, test in folds.splits():
        rows = {key: v[min(r, v.shape[0] - 1)] for key, v in stack.items()}
        picked = top_options({key: v[train] for key, v in rows.items()}, y[train], k)
        out[r, test] = np.mean([rows[key][test] for key in picked], axis=0)
    return out


def merge_members(groups: list[tuple[list[str], list[float]]], share: float) -> tuple[list[str], list[float]]:
    """The members of several options, each option's weights times share, a member in two options summed."""
    weights: dict[str, float] = {}
    for members, ws in groups:
        for m, w in zip(members, ws):
            weights[m] = weights.get(m, 0.0) + share * float(w)
    return list(weights), list(weights.values())
