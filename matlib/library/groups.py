"""Every group kind of a build behind one entry: MLP groups (`plan`) and graph-network groups (`gnn_plan`).

`plan.py` holds the records and the MLP steps, `gnn_plan.py` builds on it for GNNs; this module, above both,
dispatches a config group or a shard job to its kind, so neither planner imports the other.
"""

from __future__ import annotations

from typing import Any

from matlib.library.config import LibraryConfig
from matlib.library.gnn_plan import plan_gnn_shards, prepare_gnn_group
from matlib.library.plan import ShardJob, TrainingUnit, plan_mlp_shards, prepare_mlp_group
from matlib.store import Store


def prepare_group(store: Store, cfg: LibraryConfig, gi: int, client: Any = None) -> list[TrainingUnit]:
    """Features (descriptors or graphs) + training tables of group gi; returns its prepared units."""
    if cfg.groups[gi].model == "gnn":
        return prepare_gnn_group(store, cfg, gi)
    return prepare_mlp_group(store, cfg, gi, client)


def plan_shards(store: Store, cfg: LibraryConfig, units: list[TrainingUnit]) -> list[ShardJob]:
    """Shard jobs of every unit, GNN and MLP (finished shards included; their tasks skip them)."""
    return plan_gnn_shards(store, cfg, [u for u in units if u.is_gnn()]) + plan_mlp_shards(store, cfg, units)
