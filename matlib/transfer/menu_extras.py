"""The composite options of the menu (issue #17, item 2): source predictions as features and multi-source stacks.

`extra_menu` cross-validates them on the run's folds and hands `select_model` one option per kind, each a set of
alternatives (candidate|learner -> out-of-fold predictions) chosen among with the nested choice; `composite_member`
refits the chosen alternative as a saved member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from matlib.transfer import source_features, stacks
from matlib.transfer.composite import CompositeItem
from matlib.transfer.cv import Folds, cv_scores
from matlib.transfer.model import Member
from matlib.transfer.target import TargetFeatures


@dataclass
class ExtraMenu:
    """Composite candidates by key, the menu options they form (option -> pool key -> oof) and their CV rows."""

    items: dict[str, CompositeItem] = field(default_factory=dict)
    alternatives: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    refined: list[pd.DataFrame] = field(default_factory=list)


def _source_option(
    menu: ExtraMenu, lib: Any, usable: pd.DataFrame, target: TargetFeatures, ctx: dict[str, Any]
) -> None:
    """Source-prediction candidates with the direct learners, cross-validated like the direct menu."""
    from matlib.transfer.fit import refine

    items = source_features.source_items(lib, usable, target, ctx["input_kind"], ctx["direct_learners"])
    if not items:
        return
    table, pool = refine([it.as_refine_item() for it in items], target.y_usable, ctx["folds"], ctx["seed"], ctx["sd"])
    ctx["pool"].update(pool)
    menu.items.update({it.key: it for it in items})
    menu.alternatives[source_features.OPTION] = {k: pool[k] for k in sorted(pool)}
    menu.refined.append(table)


def _stack_option(
    menu: ExtraMenu,
    lib: Any,
    usable: pd.DataFrame,
    target: TargetFeatures,
    ctx: dict[str, Any],
    feats: dict[str, np.ndarray],
    extractors: dict[str, Any],
) -> None:
    """The multi-source stack's heads, with nested out-of-fold predictions."""
    from matlib.transfer.fit import candidate_features

    need = stacks.stack_candidates(usable)
    missing = need[~need["candidate"].isin(list(feats))]
    if len(missing):
        more, ext = candidate_features(lib, missing, target)
        feats, extractors = {**feats, **more}, {**extractors, **ext}
    y, folds = target.y_usable, ctx["folds"]
    oof, sds = stacks.nested_stack_oof(usable, feats, y, folds, stacks.STACK_HEADS, ctx["seed"])
    item = stacks.stack_item(usable, feats, extractors, target.specs)
    if not oof or item is None:
        return
    item.learners = list(oof)
    full = {f"stack|{h}": np.broadcast_to(v, folds.fold.shape).copy() for h, v in oof.items()}
    ctx["pool"].update(full)
    ctx["sd"].update({f"stack|{h}": np.broadcast_to(v, folds.fold.shape).copy() for h, v in sds.items()})
    menu.items[item.key] = item
    menu.alternatives[stacks.OPTION] = full
    rows = []
    for key, v in full.items():
        res = cv_scores(v, y)
        rows.append(
            {"member": key, "candidate": "stack", "kind": "stack", "learner": key.rsplit("|", 1)[1]}
            | {"cv_mae": res.mae, "cv_rmse": res.rmse, "cv_mae_sd": res.mae_sd}
        )
    menu.refined.append(pd.DataFrame(rows))


def extra_menu(
    lib: Any,
    usable: pd.DataFrame,
    target: TargetFeatures,
    options: dict[str, Any],
    feats: dict[str, np.ndarray],
    extractors: dict[str, Any],
) -> ExtraMenu:
    """The composite options switched on in options (source_features, stacks: bools; input_kind, direct_learners,
    folds, seed; pool and sd: the run's out-of-fold pools, which receive the new predictions)."""
    menu = ExtraMenu()
    if options.get("source_features"):
        _source_option(menu, lib, usable, target, options)
    if options.get("stacks"):
        _stack_option(menu, lib, usable, target, options, feats, extractors)
    return menu


def composite_member(
    item: CompositeItem, key: str, weight: float, y: np.ndarray, folds: Folds, seed: int
) -> tuple[Member, list[dict[str, Any]]]:
    """(saved member, its learner fitted on all rows and on each outer fold's training rows) of a chosen
    composite alternative `candidate|learner`."""
    from matlib.transfer.learners import get_learner

    learner = key.rsplit("|", 1)[1]
    lr = get_learner(learner)
    fits = [lr.fit(item.X, y, seed)] + [lr.fit(item.X[train], y[train], seed) for train, _ in folds.first_repeat()]
    member = Member(
        key=key,
        kind=item.kind,
        descriptor_spec=item.blocks[0]["spec"],
        learner=learner,
        weight=weight,
        blocks=item.blocks,
    )
    return member, fits
