"""The composite options of the menu (issue #17, item 2): source predictions as features and multi-source stacks.

`extra_menu` cross-validates them on the run's folds and hands `select_model` one option per kind, each a set of
alternatives (candidate|learner -> out-of-fold predictions) chosen among with the nested choice; `composite_member`
refits the chosen alternative as a saved member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from matlib.transfer import source_features, stacks
from matlib.transfer.candidate import MemberKey
from matlib.transfer.composite import CompositeItem
from matlib.transfer.cv import Folds, cv_scores
from matlib.transfer.learners import get_learner
from matlib.transfer.model import Member
from matlib.transfer.source_models import candidate_features, refine
from matlib.transfer.target import TargetFeatures

if TYPE_CHECKING:
    from matlib.transfer.fit import Refinement, RefineMenu, StagedRun


@dataclass
class ExtraMenu:
    """Composite candidates by id and the menu options they form (option -> member key -> out-of-fold predictions)."""

    items: dict[str, CompositeItem] = field(default_factory=dict)
    alternatives: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def extractors(self, member_key: str, transfer: dict[str, Any]) -> Any:
        """What save_model stores for a member: a composite's library models (id -> shard), else the transfer
        pick's one-model shard (transfer: candidate id -> shard)."""
        cand = MemberKey.parse(member_key).candidate
        return self.items[cand].shards if cand in self.items else transfer[cand]


def _add_rows(ref: Refinement, table: pd.DataFrame) -> None:
    """Append rows to the refinement table, keeping its order (CV MAE, then member key)."""
    both = pd.concat([ref.table, table], ignore_index=True)
    ref.table = both.sort_values(["cv_mae", "member"], kind="mergesort").reset_index(drop=True)


def _source_option(
    menu: ExtraMenu,
    lib: Any,
    usable: pd.DataFrame,
    target: TargetFeatures,
    run: StagedRun,
    folds: Folds,
    ref: Refinement,
) -> None:
    """Source-prediction candidates with the direct learners, cross-validated like the direct menu."""

    items = source_features.source_items(lib, usable, target, run.input_kind, run.cfg.direct_learners)
    if not items:
        return
    table, pool = refine([it.refine_item() for it in items], target.y_usable, folds, run.cfg.seed, ref.sd_pool)
    ref.pool.update(pool)
    _add_rows(ref, table)
    menu.items.update({it.key: it for it in items})
    menu.alternatives[source_features.OPTION] = {k: pool[k] for k in sorted(pool)}


def _stack_option(
    menu: ExtraMenu,
    lib: Any,
    usable: pd.DataFrame,
    target: TargetFeatures,
    seed: int,
    folds: Folds,
    ref: Refinement,
    picks: RefineMenu,
) -> None:
    """The multi-source stack's heads, with nested out-of-fold predictions."""

    feats, extractors = dict(picks.features), dict(picks.extractors)
    need = stacks.stack_candidates(usable)
    missing = need[~need["candidate"].isin(list(feats))]
    if len(missing):
        more, ext = candidate_features(lib, missing, target)
        feats.update(more)
        extractors.update(ext)
    y = target.y_usable
    oof, sds = stacks.nested_stack_oof(usable, feats, y, folds, stacks.STACK_HEADS, seed)
    item = stacks.stack_item(usable, feats, extractors, target.specs)
    if not oof or item is None:
        return
    item.learners = list(oof)
    full = {MemberKey(item.key, h).format(): np.broadcast_to(v, folds.fold.shape).copy() for h, v in oof.items()}
    ref.pool.update(full)
    ref.sd_pool.update(
        {MemberKey(item.key, h).format(): np.broadcast_to(v, folds.fold.shape).copy() for h, v in sds.items()}
    )
    menu.items[item.key] = item
    menu.alternatives[stacks.OPTION] = full
    rows = []
    for key, v in full.items():
        res = cv_scores(v, y)
        rows.append(
            {"member": key, "candidate": item.key, "kind": "stack", "learner": MemberKey.parse(key).learner}
            | {"cv_mae": res.mae, "cv_rmse": res.rmse, "cv_mae_sd": res.mae_sd}
        )
    _add_rows(ref, pd.DataFrame(rows))


def extra_menu(
    lib: Any,
    usable: pd.DataFrame,
    target: TargetFeatures,
    run: StagedRun,
    folds: Folds,
    ref: Refinement,
    picks: RefineMenu,
) -> ExtraMenu:
    """The composite options the run's settings switch on (source_features, stacks), cross-validated on its folds;
    their rows and out-of-fold predictions are added to the refinement ref (table, pool, sd_pool)."""
    menu = ExtraMenu()
    if run.cfg.source_features:
        _source_option(menu, lib, usable, target, run, folds, ref)
    if run.cfg.stacks:
        _stack_option(menu, lib, usable, target, run.cfg.seed, folds, ref, picks)
    return menu


def composite_member(
    item: CompositeItem, key: str, weight: float, y: np.ndarray, folds: Folds, seed: int
) -> tuple[Member, list[dict[str, Any]]]:
    """(saved member, its learner fitted on all rows and on each outer fold's training rows) of a chosen
    composite alternative `candidate|learner`."""

    learner = MemberKey.parse(key).learner
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
