"""Choose the final model by CV only, from a short menu: the transfer ensemble, the best direct learner, or both.

The transfer ensemble averages the top `size` screened candidates (screening rank = exact LOO over the whole
library), each with its own CV-best learner. It does not pick the ensemble size or the members one by one by CV:
after screening thousands of candidates on the same few rows, the best CV scores are the luckiest ones, and a
fixed-size average of the top of the ranking has less selection noise than the greedy CV-best subset.
For the same reason the transfer option's own CV is optimistic; when the caller gives `transfer_oof`, out-of-fold
predictions of the whole search re-run inside each outer fold (see `fit.nested_transfer_oof`), the menu compares
those instead.

The direct option picks one (descriptor, learner) out of a menu of dozens by the same CV, so its own CV score is
optimistic too. When the caller gives the folds, each option is scored by `fold_select_oof`: for every held-out
fold, the choice among the option's alternatives is made on the other folds' out-of-fold predictions only, and
the chosen alternative's predictions on the held-out fold are scored. The same is done for the final choice among
the options (`Selection.nested["chosen"]`), so a user sees the CV of the whole procedure, of its best direct
option and of its best transfer option.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from matlib.transfer.candidate import candidate_of
from matlib.transfer.choice import (
    CHOICE_SE,
    DIRECT_MEAN,
    DIRECT_MEAN_OPTION,
    ENSEMBLE_OPTION,
    ENSEMBLE_OPTIONS,
    Chooser,
    chooser,
    ensemble_oof,
    lowest_mae,
    merge_members,
    paired_gap,
    reference_option,
    top_options,
)
from matlib.transfer.cv import CVResult, Folds, cv_scores


@dataclass
class Selection:
    """The chosen option, its members (keys into the pool), their weights (sum 1) and its CV score."""

    option: str
    members: list[str]
    weights: list[float]
    cv: CVResult
    table: pd.DataFrame  # option, k, cv_mae, cv_rmse, members: every option scored
    nested: dict[str, float] = field(default_factory=dict)  # chosen / direct / transfer: MAE with the choice nested
    choice: dict[str, Any] = field(default_factory=dict)  # why: the rule, and each option's paired gap to direct
    options_oof: dict[str, np.ndarray] = field(default_factory=dict)  # every option's out-of-fold predictions [r, n]


def fold_select_oof(oofs: dict[str, np.ndarray], y: np.ndarray, folds: Folds, rule: Chooser = lowest_mae) -> np.ndarray:
    """Out-of-fold predictions [r, n] of "take the alternative the rule picks on the other folds" (by default the
    lowest MAE; ties go to the earlier key).

    oofs: each alternative's out-of-fold predictions [r, n] (or [1, n], used for every repeat) on these folds.
    No held-out row takes part in choosing the alternative that predicts it.
    """
    keys = list(oofs)
    out = np.full(folds.fold.shape, np.nan)
    for r, train, test in folds.splits():
        rows = {k: np.asarray(oofs[k])[min(r, np.asarray(oofs[k]).shape[0] - 1)] for k in keys}
        best = rule({k: v[train] for k, v in rows.items()}, y[train])
        out[r, test] = rows[best][test]
    return out


def _lowest_cv(pool: dict[str, np.ndarray], y: np.ndarray, candidates: set[str]) -> str | None:
    """The pool key `candidate|learner` of any of candidates with the lowest CV MAE (ties: key order), or None."""
    keys = sorted(k for k in pool if candidate_of(k) in candidates)
    return min(keys, key=lambda k: cv_scores(pool[k], y).mae) if keys else None


def best_learner_key(pool: dict[str, np.ndarray], y: np.ndarray, candidate: str) -> str | None:
    """The pool key `candidate|learner` with the lowest CV MAE (ties: key order), or None if it has none."""
    return _lowest_cv(pool, y, {candidate})


@dataclass
class MenuOption:
    """One scored entry of the final-model menu."""

    option: str
    members: list[str]  # member keys into the pool
    weights: list[float]
    cv: CVResult  # of its out-of-fold predictions [repeats, n]
    cv_mae_members: float | None = None  # the members' own CV MAE where it differs from cv (for the report)

    def row(self) -> dict[str, object]:
        """Its row of the options table (members joined by ", ")."""
        row: dict[str, object] = {
            "option": self.option,
            "k": len(self.members),
            "cv_mae": self.cv.mae,
            "cv_rmse": self.cv.rmse,
            "members": ", ".join(self.members),
        }
        if self.cv_mae_members is not None:
            row["cv_mae_members"] = self.cv_mae_members
        return row


def _option(
    name: str,
    oof: np.ndarray,
    y: np.ndarray,
    members: list[str],
    weights: list[float],
    members_mae: float | None = None,
) -> MenuOption:
    """One scored menu entry (oof: its out-of-fold predictions [repeats, n])."""
    return MenuOption(name, members, weights, cv_scores(oof, y), members_mae)


def _alternatives_option(name: str, alts: dict[str, np.ndarray], y: np.ndarray, folds: Folds | None) -> MenuOption:
    """A menu option made of alternatives: its member is the CV-best; with folds, its score is nested."""
    best = min(alts, key=lambda k: cv_scores(alts[k], y).mae)
    oof = alts[best] if folds is None else fold_select_oof(alts, y, folds)
    return _option(name, oof, y, [best], [1.0], cv_scores(alts[best], y).mae)


def _nested_scores(options: list[MenuOption], y: np.ndarray, folds: Folds, rule: Chooser) -> dict[str, float]:
    """Nested MAE of the chosen option (the final choice by `rule` re-made without the held-out fold), of each
    option, and of "transfer": the choice among the transfer options (names "transfer: ...") re-made likewise."""
    nested = {"chosen": cv_scores(fold_select_oof({o.option: o.cv.oof for o in options}, y, folds, rule), y).mae}
    transfer = {o.option: o.cv.oof for o in options if o.option.startswith("transfer:")}
    if transfer:
        nested["transfer"] = cv_scores(fold_select_oof(transfer, y, folds), y).mae
    for o in options:
        nested.setdefault(o.option, o.cv.mae)
    return nested


def _average(pool: dict[str, np.ndarray], members: list[str], weights: list[float]) -> np.ndarray:
    """Weighted average of the members' out-of-fold predictions."""
    return np.tensordot(np.asarray(weights), np.stack([pool[m] for m in members]), axes=1)


def select_model(
    pool: dict[str, np.ndarray],
    y: np.ndarray,
    transfer: list[str],
    direct: list[str],
    size: int = 10,
    transfer_oof: np.ndarray | None = None,
    folds: Folds | None = None,
    alternatives: dict[str, dict[str, np.ndarray]] | None = None,
    z: float = CHOICE_SE,
    ensemble: int = ENSEMBLE_OPTIONS,
    direct_mean: int = DIRECT_MEAN,
) -> Selection:
    """The final model among: the average of the top `size` transfer candidates (rank order,
    each with its CV-best learner), the CV-best direct (candidate, learner), and the two averaged half and half.

    transfer: transfer candidates in screening-rank order; direct: direct candidates. Ties go to the earlier option.
    transfer_oof: out-of-fold predictions [r, n] that score the transfer ensemble in place of its members' own.
    folds: the folds of the pool's predictions; given, the direct option is scored with its choice nested
    (`fold_select_oof`) and `nested` holds the nested MAE of the chosen, the direct and the transfer option.
    alternatives: further options (name -> alternative key -> its out-of-fold predictions), each scored like the
    direct option (its choice among its alternatives nested when folds are given); names starting "transfer:" count
    as transfer options.
    The choice (`matlib.transfer.choice`): the reference (`reference_option`: the ensemble option where the menu
    has it, else the averaged direct option, else the single direct pair) unless another beats it by more than z
    paired standard errors; then the one whose gain has the highest lower bound (gain - z SE).
    ensemble: the menu also offers the average of its best `ensemble` options (when it has more than that many;
    0: never), scored nested with folds.
    direct_mean: the menu also offers the average of the `direct_mean` CV-best direct (descriptor, learner) pairs
    (when there are more than that many; 0: never), its CV re-picking them inside each outer fold.
    """
    options = _menu_options(pool, y, transfer, direct, size, transfer_oof, folds, alternatives, direct_mean)
    if not options:
        raise ValueError("empty selection pool")
    if 2 <= ensemble < len(options):
        options.append(_ensemble_option(options, y, folds, ensemble))
    reference = reference_option([o.option for o in options])
    rule = chooser(reference, z)
    oofs = {o.option: o.cv.oof for o in options}
    best = next(o for o in options if o.option == rule(oofs, y))
    record = _choice_record(options, y, best, z, reference)
    table = pd.DataFrame([o.row() | record["gaps"].get(o.option, {}) for o in options])
    nested: dict[str, float] = {}
    if folds is not None:
        nested = _nested_scores(options, y, folds, rule)
    return Selection(best.option, best.members, best.weights, best.cv, table, nested, record, oofs)


def options_oof_frame(selection: Selection, y: np.ndarray, folds: Folds) -> pd.DataFrame:
    """Every menu option's out-of-fold predictions, long: one row per (repeat, usable row) with its fold and target,
    one column per option; enough to re-make the choice and its nested score without the run."""
    r, n = folds.fold.shape
    frame = pd.DataFrame({"repeat": np.repeat(np.arange(r), n), "row": np.tile(np.arange(n), r)})
    frame["fold"] = folds.fold.reshape(-1)
    frame["y"] = np.tile(np.asarray(y, dtype=float), r)
    for name, oof in selection.options_oof.items():
        frame[name] = np.broadcast_to(np.asarray(oof, dtype=float).reshape(-1, n), (r, n)).reshape(-1)
    return frame


def read_options_oof(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray, Folds]:
    """Every option's out-of-fold predictions [r, n], the target [n] and the folds from an `options_oof_frame`."""
    frame = frame.sort_values(["repeat", "row"])
    r = int(frame["repeat"].max()) + 1
    n = len(frame) // r
    options = [c for c in frame.columns if c not in ("repeat", "row", "fold", "y")]
    oofs = {o: frame[o].to_numpy(float).reshape(r, n) for o in options}
    folds = Folds(frame["fold"].to_numpy().reshape(r, n), int(frame["fold"].max()) + 1)
    return oofs, frame["y"].to_numpy(float)[:n], folds


def _menu_options(
    pool: dict[str, np.ndarray],
    y: np.ndarray,
    transfer: list[str],
    direct: list[str],
    size: int,
    transfer_oof: np.ndarray | None,
    folds: Folds | None,
    alternatives: dict[str, dict[str, np.ndarray]] | None,
    direct_mean: int = 0,
) -> list[MenuOption]:
    """The scored options of the menu before the ensemble (see select_model)."""
    keys = [k for k in (best_learner_key(pool, y, c) for c in transfer) if k is not None][: max(1, size)]
    best_direct = _lowest_cv(pool, y, set(direct))
    options: list[MenuOption] = []
    t_oof = d_oof = None
    if keys:
        t_weights = [1.0 / len(keys)] * len(keys)
        t_oof = _average(pool, keys, t_weights)
        members_mae = cv_scores(t_oof, y).mae  # the members' own CV: optimistic, for the report
        if transfer_oof is not None:
            t_oof = np.broadcast_to(np.asarray(transfer_oof, dtype=float).reshape(-1, len(y))[:1], t_oof.shape)
        options.append(_option(f"transfer: mean of top {len(keys)}", t_oof, y, keys, t_weights, members_mae))
    if best_direct is not None:
        d_alts = {k: pool[k] for k in sorted(k for k in pool if candidate_of(k) in set(direct))}
        d_oof = pool[best_direct] if folds is None else fold_select_oof(d_alts, y, folds)
        options.append(_option("direct", d_oof, y, [best_direct], [1.0], cv_scores(pool[best_direct], y).mae))
        if 2 <= direct_mean < len(d_alts):
            options.append(_mean_option(f"{DIRECT_MEAN_OPTION} {direct_mean}", d_alts, y, folds, direct_mean))
    for name, alts in (alternatives or {}).items():
        if alts:
            options.append(_alternatives_option(name, alts, y, folds))
    if t_oof is not None and d_oof is not None and best_direct is not None:
        weights = [0.5 / len(keys)] * len(keys) + [0.5]
        options.append(_option("transfer + direct", 0.5 * t_oof + 0.5 * d_oof, y, keys + [best_direct], weights))
    return options


def _mean_option(name: str, alts: dict[str, np.ndarray], y: np.ndarray, folds: Folds | None, k: int) -> MenuOption:
    """The average of the k alternatives with the lowest CV MAE; with folds, its CV re-picks the k inside each
    outer fold from the other folds' rows alone."""
    plain = ensemble_oof(alts, y, k)  # the k picked on every row: optimistic, for the report
    oof = plain if folds is None else ensemble_oof(alts, y, k, folds)
    return _option(name, oof, y, top_options(alts, y, k), [1.0 / k] * k, cv_scores(plain, y).mae)


def _ensemble_option(options: list[MenuOption], y: np.ndarray, folds: Folds | None, k: int) -> MenuOption:
    """The average of the k options with the lowest CV MAE; its CV re-picks the k inside each outer fold."""
    mean = _mean_option(f"{ENSEMBLE_OPTION} {k} options", {o.option: o.cv.oof for o in options}, y, folds, k)
    top = [o for name in mean.members for o in options if o.option == name]
    members, weights = merge_members([(o.members, o.weights) for o in top], 1.0 / k)
    return MenuOption(mean.option, members, weights, mean.cv, mean.cv_mae_members)


def _choice_record(
    options: list[MenuOption], y: np.ndarray, chosen: MenuOption, z: float, reference: str | None
) -> dict[str, Any]:
    """Why the chosen option won: the rule, each option's paired gap to the reference option, and a one-line reason."""
    ref = next((o for o in options if o.option == reference), None)
    record: dict[str, Any] = {"rule": "paired gain bound", "reference": reference, "z": z, "gaps": {}}
    if ref is None:
        record["reason"] = f"{chosen.option}: lowest CV MAE (no direct option on the menu)"
        return record
    gaps = {o.option: paired_gap(o.cv.oof, ref.cv.oof, y, z) for o in options if o is not ref}
    record["gaps"] = {name: g.as_dict() for name, g in gaps.items()}
    if chosen is ref:
        runner = max(gaps, key=lambda n: gaps[n].bound, default=None)
        record["reason"] = f"{ref.option}: no option beats it by more than {z:g} paired SE" + (
            f" (closest: {runner}, {gaps[runner].diff:+.4g} per row, SE {gaps[runner].se:.4g})" if runner else ""
        )
    else:
        g = gaps[chosen.option]
        record["reason"] = (
            f"{chosen.option}: beats {ref.option} by {-g.diff:.4g} per row (SE {g.se:.4g}); the highest lower bound "
            f"(gain - {z:g} SE = {g.bound:.4g}) of the options"
        )
    return record
