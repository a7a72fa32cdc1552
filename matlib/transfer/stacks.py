"""Multi-source stacks (issue #17, item 2b): the frozen features of the best candidates of different source
properties, side by side, with a head that copes with width (ridge, Gaussian process, gradient boosting).

The stack's sources are picked by screening (the best-ranked candidate of each of the STACK_SOURCES best source
properties), so the stack's own CV would be optimistic. Its out-of-fold predictions are nested instead: inside each
outer fold the sources are re-picked from that fold's training rows alone (ranking columns loo_mae_f*), the head is
fitted on them and predicts the held-out rows. The heads are alternatives of one menu option, chosen among with the
same nested choice as the direct menu's; the saved stack uses the sources picked on all rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from matlib.transfer.candidate import CandidateId
from matlib.transfer.composite import CompositeItem
from matlib.transfer.cv import Folds
from matlib.transfer.screen import clip_value, fold_columns
from matlib.transfer.source_models import preferred_clip_rows

STACK_SOURCES = 4  # source properties in a stack
STACK_HEADS = ("ridge", "gp", "lightgbm")
OPTION = "transfer: multi-source stack"


def stack_picks(usable: pd.DataFrame, column: str, sources: int = STACK_SOURCES) -> pd.DataFrame:
    """The best candidate (by `column`) of each of the `sources` best source properties (fewer than 2: none)."""

    finite = np.isfinite(usable[column].astype(float).to_numpy())
    rows = usable[preferred_clip_rows(usable, column) & finite]
    best = rows.sort_values([column, "candidate"], kind="mergesort").drop_duplicates("property").head(sources)
    return best if len(best) >= 2 else best.iloc[:0]


def _columns(feats: dict[str, np.ndarray], picks: pd.DataFrame) -> np.ndarray:
    """The picked candidates' frozen features side by side."""
    return np.concatenate([feats[c] for c in picks["candidate"]], axis=1)


def nested_stack_oof(
    usable: pd.DataFrame,
    feats: dict[str, np.ndarray],
    y: np.ndarray,
    folds: Folds,
    heads: Sequence[str],
    seed: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(out-of-fold predictions [1, n] per head, predictive sds [1, n] of heads that have them), the stack's sources
    re-picked inside each outer fold of repeat 0. A head that does not apply to some fold's width is left out."""
    from matlib.transfer.learners import get_learner

    cols, splits = fold_columns(usable), folds.first_repeat()
    if not cols or len(cols) != len(splits):
        return {}, {}
    oof = {h: np.full(len(y), np.nan) for h in heads}
    sd = {h: np.full(len(y), np.nan) for h in heads if get_learner(h).has_sd}
    for (train, test), col in zip(splits, cols):
        picks = stack_picks(usable, col)
        if picks.empty:
            return {}, {}
        X = _columns(feats, picks)
        X_train = X[train]
        for h in [h for h in oof if get_learner(h).suits(X_train)]:
            lr = get_learner(h)
            state = lr.fit(X_train, y[train], seed)
            oof[h][test] = lr.predict(state, X[test])
            if h in sd:
                sd[h][test] = lr.predict_sd(state, X[test])
    done = {h: v[None, :] for h, v in oof.items() if np.isfinite(v).all()}
    return done, {h: v[None, :] for h, v in sd.items() if h in done}


def stack_candidates(usable: pd.DataFrame) -> pd.DataFrame:
    """Every candidate any fold's stack, or the full stack, picks (the ones whose features are needed)."""
    picks = [stack_picks(usable, c) for c in ["loo_mae", *fold_columns(usable)]]
    return pd.concat(picks).drop_duplicates("candidate") if picks else usable.iloc[:0]


def stack_item(
    usable: pd.DataFrame, feats: dict[str, np.ndarray], extractors: dict[str, Any], specs: dict[str, dict]
) -> CompositeItem | None:
    """The stack refitted on all rows: sources picked by the full screening (None: fewer than 2 properties)."""
    picks = stack_picks(usable, "loo_mae")
    if picks.empty:
        return None
    records = picks.to_dict("records")
    blocks = [
        {
            "type": "hidden",
            "spec": specs[str(p["descriptor_hash"])],
            "model": str(p["model_id"]),
            "layer": int(p["layer"]),
            "clip": clip_value(p["clip"]),
            "label": f"{p['property']}/{p['descriptor']}",
        }
        for p in records
    ]
    shards = {str(p["model_id"]): extractors[str(p["candidate"])] for p in records}
    return CompositeItem(CandidateId.of_composite("stack").format(), "stack", blocks, _columns(feats, picks), shards)
