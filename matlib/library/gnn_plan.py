"""GNN groups of a library build: config entry, graph training tables, shard jobs and the shard job itself.

A group with `model: gnn` trains graph networks on a dataset's graphs (cached per dataset version, see
`matlib.graphs.cache`) instead of MLPs on a descriptor. Keys: `dataset` / `import` / `properties` /
`property_names` / `models_per_property` / `max_rows` / `refresh` as for MLP groups, plus `graph` (a graph spec, default
`molgraph`), `architecture` (overrides of `matlib.models.gnn.GNN_SPACE`), `training` (`GNNTrainConfig`),
`family_size` (models sharing one sampled architecture; default the config's), and `multi_task` (true: each
model predicts every property of the group at once, missing labels masked; default false: one set per property).
Catalog rows get `model_type` "gnn", `descriptor*` = the graph spec, and `tasks` (JSON list of properties).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from matlib.atomic import atomic_write_bytes
from matlib.errors import ValidationError
from matlib.graphs.batch import GraphSet
from matlib.graphs.cache import graphset_bytes, graphset_from_bytes, load_graphs
from matlib.graphs.spec import GraphSpec
from matlib.hashing import canonical_json, spec_hash
from matlib.library.config import GNNGroup, LibraryConfig
from matlib.library.plan import (
    MIN_ROWS,
    PlannedModel,
    ShardJob,
    TrainingUnit,
    _slug,
    cap_rows,
    catalog_rows,
    derive_seed,
    finish_shard,
    group_dataset,
    library_dir,
    part_paths,
)
from matlib.library.shard import write_shard
from matlib.models.gnn import sample_gnn_architecture
from matlib.models.gnn_batched import train_gnn_batched
from matlib.store import Store

MODEL_TYPE = "gnn"


def prepare_gnn_group(store: Store, cfg: LibraryConfig, gi: int) -> list[TrainingUnit]:
    """Graphs (cached per dataset version) + one training table per property (or one for all, multi-task)."""
    group = cfg.groups[gi]
    assert isinstance(group, GNNGroup)
    lib = library_dir(store, cfg)
    ds, ref = group_dataset(store, cfg, gi)
    spec = GraphSpec.coerce(group.graph)
    ids, gs = load_graphs(store, ref, spec)
    y_all = ds.records.set_index("record_id")
    task_sets = [group.properties] if group.multi_task else [[p] for p in group.properties]
    units = []
    for props in task_sets:
        Y = np.stack([y_all[p].reindex(ids).to_numpy(dtype=np.float64) for p in props], axis=1)
        keep = cap_rows(np.flatnonzero(np.isfinite(Y).any(axis=1)), group.max_rows, cfg.seed, ds.version, props)
        if len(keep) < MIN_ROWS:
            raise ValidationError(
                f"library config groups[{gi}]: properties {props} of {ref} have only {len(keep)} "
                f"rows with a graph and a label (need {MIN_ROWS})"
            )
        names = [group.property_names.get(p, p) for p in props]
        key = spec_hash([ds.version, spec.hash, props, group.max_rows, cfg.seed])
        path = lib / "data" / f"{_slug('-'.join(names))}-{spec.name}-{key}.safetensors"
        if not path.exists():
            write_graph_table(path, gs.subset(keep), Y[keep], {"dataset": ref, "properties": names})
        units.append(
            TrainingUnit(
                data_file=str(path),
                n_rows=int(len(keep)),
                group=gi,
                tasks=names,
                n_node=gs.n_node_features,
                n_edge=gs.n_edge_features,
                property="|".join(names),
                dataset=ds.name,
                dataset_version=ds.version,
                descriptor=spec.name,
                descriptor_hash=spec.hash,
                descriptor_spec=canonical_json(spec.to_dict()),
            )
        )
    return units


def write_graph_table(path: Path, gs: GraphSet, Y: np.ndarray, meta: dict) -> None:
    """A GNN training table: the packed graphs and their targets [n, T] (NaN: missing) in one safetensors file."""
    graphs = graphset_bytes(gs)
    atomic_write_bytes(
        path,
        st_save(
            {
                "graphs": torch.frombuffer(bytearray(graphs), dtype=torch.uint8),
                "y": torch.from_numpy(np.ascontiguousarray(Y, dtype=np.float64)),
            },
            metadata={k: canonical_json(v) for k, v in meta.items()},
        ),
    )


def load_graph_table(path: str | Path) -> tuple[GraphSet, np.ndarray]:
    """(graphs, targets [n, T]) of a GNN training table."""
    t = st_load(Path(path).read_bytes())
    return graphset_from_bytes(t["graphs"].numpy().tobytes()), t["y"].numpy()


def plan_gnn_shards(store: Store, cfg: LibraryConfig, units: list[TrainingUnit]) -> list[ShardJob]:
    """Shard jobs: per unit, models in families (one sampled architecture each), chunked by shard_size."""
    lib = library_dir(store, cfg)
    jobs = []
    for u in units:
        group = cfg.groups[u.group]
        assert isinstance(group, GNNGroup) and u.tasks is not None
        train, fam_size = group.training, group.family_size
        n = group.models_per_property
        for fam in range((n + fam_size - 1) // fam_size):
            fam_seed = derive_seed(cfg.seed, u.dataset_version, u.descriptor_hash, u.property, "gnn", fam)
            arch = sample_gnn_architecture(u.n_node, u.n_edge, fam_seed, group.architecture, n_out=len(u.tasks))
            models = []
            for i in range(fam * fam_size, min(n, (fam + 1) * fam_size)):
                seed = derive_seed(cfg.seed, u.dataset_version, u.descriptor_hash, u.property, "gnn", i)
                mid = spec_hash([u.dataset_version, u.descriptor_hash, u.property, u.n_rows, arch, seed, train])
                models.append(PlannedModel(model_id=mid, seed=seed))
            for start in range(0, len(models), cfg.shard_size):
                chunk = models[start : start + cfg.shard_size]
                name = f"{_slug(u.property)}-gnn-{spec_hash([m.model_id for m in chunk], 12)}"
                jobs.append(
                    ShardJob(
                        model_type=MODEL_TYPE,
                        shard=name,
                        library_dir=str(lib),
                        data_file=u.data_file,
                        train=train,
                        arch=arch,
                        models=chunk,
                        tasks=u.tasks,
                        split_seed=fam_seed,
                        base=u.base(),
                        n_rows=u.n_rows,
                    )
                )
    return jobs


def run_gnn_shard_job(job: ShardJob) -> dict:
    """Train one GNN shard's models together; write the shard (good models), its catalog part and done record."""
    shard_file = part_paths(Path(job.library_dir), job.shard)[0]
    gs, Y = load_graph_table(job.data_file)
    models, arch = job.models, job.arch or {}
    res = train_gnn_batched(gs, Y, arch, [m.seed for m in models], job.train, split_seed=job.split_seed)
    ok = [i for i, met in enumerate(res.metrics) if met["status"] == "ok"]
    rows = catalog_rows(job, [arch] * len(models), res.metrics)
    for row, met in zip(rows, res.metrics):
        row.update(
            model_type=MODEL_TYPE, tasks=canonical_json(job.tasks), task_metrics=canonical_json(met.get("tasks", []))
        )
    sha = None
    if ok:
        idx = torch.tensor(ok)
        tensors = {k: v.index_select(0, idx).contiguous() for k, v in res.tensors.items()}
        meta = {
            "model_type": MODEL_TYPE,
            "model_ids": [models[i].model_id for i in ok],
            **job.base,
            "train_config": job.train,
            "tasks": job.tasks,
        }
        sha = write_shard(shard_file, arch, tensors, meta)
    return finish_shard(job, rows, sha, arch)
