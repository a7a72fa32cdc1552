"""Registered learners for refinement and direct baselines: one module per variant, each registering itself.

Adding a learner is one module with a `Learner` subclass under `@LEARNERS.register(name)`, imported here.
`robust_target` is imported after the learners it wraps (its `<base>-asinh` variants).
"""

from __future__ import annotations

import matlib.transfer.finetune as finetune
import matlib.transfer.gnn_finetune as gnn_finetune
from matlib.transfer.clamp import clip_to_training_range
from matlib.transfer.learner import LEARNERS, Learner, SourceContext
from matlib.transfer.learners import boosting, forest, gaussian_process, ridge, robust_target, tanimoto_gp
from matlib.transfer.learners.forest import ET_PARAMS, RF_PARAMS

finetune.SOURCE_FINETUNERS.add("gnn", gnn_finetune.fit_decoder)  # a GNN source: its decoder after the frozen layer


def get_learner(name: str) -> Learner:
    """The registered learner called name (one-line MatlibError naming the known ones otherwise)."""
    return LEARNERS.get(name)()


__all__ = [
    "ET_PARAMS",
    "LEARNERS",
    "RF_PARAMS",
    "Learner",
    "SourceContext",
    "boosting",
    "clip_to_training_range",
    "finetune",
    "forest",
    "gaussian_process",
    "get_learner",
    "gnn_finetune",
    "ridge",
    "robust_target",
    "tanimoto_gp",
]
