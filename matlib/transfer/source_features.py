"""Source predictions as features (issue #17, item 2a): what the library's models predict for the target's inputs,
appended to the standard descriptors, for the direct learners.

One column per (source property, descriptor): the mean prediction of up to MODELS_PER_GROUP of the library's
usable (non-leaking) models of that property fed that descriptor, taken in model-id order, so no target value takes
part in building the columns. The menu then holds "source" (the prediction columns alone) and "source+<standard
descriptor>" (the descriptor with the prediction columns beside it), each with the direct learners; the choice among
them is nested like the direct menu's (`select.fold_select_oof`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from matlib.transfer.candidate import CandidateId
from matlib.transfer.composite import CompositeItem, block_features, block_models, load_models
from matlib.transfer.direct import standard_specs
from matlib.transfer.impute import spec_key
from matlib.transfer.screen import GRAPH_CODES
from matlib.transfer.target import TargetFeatures

MODELS_PER_GROUP = 4  # source models averaged into one prediction column
# The prediction columns are offered as given and with each source model's inputs clamped to +-PREDICTION_CLIP
# standard deviations of its training data ("source-c5", "source-c5+rdkit2d", ...): a target far outside a
# source's domain (ESOL molecules vs QM9's) otherwise gets wild predictions from it. The choice is nested.
PREDICTION_CLIP = 5.0
OPTION = "transfer: source predictions + descriptors"


def prediction_blocks(usable: pd.DataFrame, specs: dict[str, dict], clip: float | None = None) -> list[dict[str, Any]]:
    """One prediction block per (source property, descriptor) of the usable MLP sources (GNNs left out), their
    inputs clamped to +-clip training standard deviations when clip is given."""
    rows = usable[~usable["descriptor"].isin(list(GRAPH_CODES))].drop_duplicates("model_id")
    blocks = []
    for (prop, h), g in rows.groupby(["property", "descriptor_hash"], sort=True):
        if h not in specs:
            continue
        ids = sorted(g["model_id"].astype(str))[:MODELS_PER_GROUP]
        label = f"{prop}/{g['descriptor'].iloc[0]}"
        block = {"type": "prediction", "spec": specs[h], "models": ids, "label": label}
        blocks.append(block if clip is None else {**block, "clip": float(clip)})
    return blocks


def source_name(clip: float | None) -> str:
    """The recipe name of the prediction columns alone: "source", or "source-c5" with inputs clamped at 5 sd."""
    return "source" if clip is None else f"source-c{clip:g}"


def source_items(
    lib: Any, usable: pd.DataFrame, target: TargetFeatures, input_kind: str, learners: Sequence[str]
) -> list[CompositeItem]:
    """The "source" and "source+<standard descriptor>" candidates, as given and with clamped inputs (none when the
    library has no usable source)."""
    from matlib.transfer.learners import get_learner

    raw = {spec_key(target.specs[h]): X for h, X in target.features.items()}
    recipes: list[tuple[str, list[dict[str, Any]], np.ndarray]] = []
    shards: dict[str, Any] = {}
    for clip in (None, PREDICTION_CLIP):
        blocks = prediction_blocks(usable, target.specs, clip)
        if not blocks:
            return []
        shards = shards or load_models(lib, block_models(blocks))
        P = block_features(blocks, raw, shards)
        recipes.append((source_name(clip), blocks, P))
        for spec in standard_specs(input_kind):
            h = spec["hash"]
            if h in target.features:
                desc = {"type": "descriptor", "spec": target.specs[h]}
                X = np.concatenate([target.features[h].astype(np.float64), P], axis=1)
                recipes.append((f"{source_name(clip)}+{spec['name']}", [desc, *blocks], X))
    return [
        CompositeItem(
            CandidateId.of_composite(name).format(),
            "source",
            recipe,
            X,
            shards,
            [n for n in learners if get_learner(n).suits(X)],
        )
        for name, recipe, X in recipes
    ]
