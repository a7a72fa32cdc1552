"""fit_transfer: screen a library against a small target, refine the top K, choose by CV, save, report."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from matlib import __version__
from matlib.atomic import atomic_write_json, atomic_write_parquet
from matlib.errors import MatlibError
from matlib.store import Store
from matlib.transfer.cv import Folds, cross_validate, repeated_kfold
from matlib.transfer.learners import get_learner
from matlib.transfer.leakage import leakage_flags
from matlib.transfer.model import Member, member_features, save_model, slice_shard
from matlib.transfer.ridge import DEFAULT_GRID
from matlib.transfer.screen import rank, screen_direct, screen_shard
from matlib.transfer.select import Selection, select_ensemble
from matlib.transfer.target import TargetFeatures, prepare_target, spec_json

DEFAULT_LEARNERS = ("ridge", "lightgbm", "rf", "finetune")
TRANSFER_LEARNERS = DEFAULT_LEARNERS
DIRECT_LEARNERS = ("ridge", "lightgbm", "rf")


@dataclass
class TransferResult:
    """Everything a fit produced (also written under out_dir)."""

    out_dir: Path
    ranking: pd.DataFrame  # screening: every (model, layer) + direct ridge, by LOO MAE
    refined: pd.DataFrame  # top-K candidates and direct baselines x learners, repeated K-fold CV
    selection: Selection
    members: list[Member]
    target: TargetFeatures
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def baselines(self) -> pd.DataFrame:
        """The direct-learning rows of the refinement table."""
        return self.refined[self.refined["kind"] == "direct"]


def open_library(library_dir: str | Path):
    """The library at library_dir (one-line error if it is not one)."""
    from matlib.library import Library

    path = Path(library_dir)
    if not path.exists():
        raise MatlibError(f"library not found: {path}")
    return Library(path)


def library_specs(catalog: pd.DataFrame) -> dict[str, dict]:
    """descriptor_hash -> spec dict for every descriptor used by an ok model."""
    ok = catalog[catalog["status"] == "ok"].drop_duplicates("descriptor_hash")
    return {str(r.descriptor_hash): spec_json(r.descriptor_spec) for r in ok.itertuples(index=False)}


def stream_shards(lib, names: Sequence[str] | None = None) -> Iterator[Any]:
    """Load shards one at a time without caching them (a library larger than memory streams)."""
    from matlib.library import read_shard

    records = lib.manifest.get("shards", {})
    catalog = lib.catalog
    for name in sorted(records) if names is None else names:
        yield read_shard(lib.shard_path(name), records[name]["sha256"], catalog[catalog["shard"] == name])


def screen_library(lib, target: TargetFeatures, grid: Sequence[float] = DEFAULT_GRID,
                   shards: Sequence[str] | None = None) -> pd.DataFrame:
    """Screening rows of every usable (model, layer) of the library, shard by shard."""
    return pd.concat([screen_shard(sh, lib.catalog, target, grid) for sh in stream_shards(lib, shards)] or [pd.DataFrame()],
                     ignore_index=True)


def candidate_features(lib, picks: pd.DataFrame, target: TargetFeatures) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(features [n,h], one-model extractor shard) of each picked transfer candidate."""
    from matlib.library import shard_hidden_features

    cat = lib.catalog.set_index("model_id")
    feats, extractors = {}, {}
    picks = picks.assign(shard=picks["model_id"].map(cat["shard"]), row=picks["model_id"].map(cat["row"]))
    for shard in stream_shards(lib, sorted(picks["shard"].unique())):
        for p in picks[picks["shard"] == shard.name].itertuples(index=False):
            ext = slice_shard(shard, int(p.row))
            X = torch.as_tensor(target.features[p.descriptor_hash], dtype=torch.float32)
            feats[p.candidate] = shard_hidden_features(ext, X)[int(p.layer)][0].double().numpy()
            extractors[p.candidate] = ext
    return feats, extractors


def _context(extractor, layer: int) -> dict | None:
    """Fine-tuning context: the source model's arch and its (one-model) stacked tensors."""
    if extractor is None:
        return None
    return {"arch": extractor.arch, "tensors": extractor.tensors, "layer": int(layer)}


def refine(items: list[dict], y: np.ndarray, folds: Folds, seed: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Repeated K-fold CV of every (item, learner); items have key/kind/X/learners/context."""
    rows, pool = [], {}
    for it in items:
        for name in it["learners"]:
            res = cross_validate(it["X"], y, folds, name, seed, it.get("context"))
            key = f"{it['key']}|{name}"
            pool[key] = res.oof
            rows.append({"member": key, "candidate": it["key"], "kind": it["kind"], "learner": name,
                         "cv_mae": res.mae, "cv_rmse": res.rmse, "cv_mae_sd": res.mae_sd})
    table = pd.DataFrame(rows).sort_values(["cv_mae", "member"], kind="mergesort").reset_index(drop=True)
    return table, pool


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to overwrite a folder that is not a previous transfer run."""
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "run.json").exists():
        raise MatlibError(f"output folder {out_dir} exists and is not a transfer run; choose an empty or new folder")


def fit_transfer(library_dir: str | Path, inputs: Sequence[str], y: Sequence[Any], out_dir: str | Path, *,
                 target_column: str = "target", top_k: int = 10, seed: int = 0, folds: int = 5, repeats: int = 3,
                 max_ensemble: int = 5, learners: Sequence[str] = DEFAULT_LEARNERS,
                 direct_learners: Sequence[str] = DIRECT_LEARNERS, include_direct: bool = True,
                 allow_leakage: bool = False, target_dataset: str | None = None, max_overlap: float = 0.05,
                 store: Store | None = None, report: bool = True) -> TransferResult:
    """Screen every (model, layer) of the library, refine the top K, choose by CV, save the model and report."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    lib = open_library(library_dir)
    catalog = lib.catalog
    target = prepare_target(inputs, y, library_specs(catalog), target_column)
    notes = list(target.notes)
    timings["featurise"] = time.perf_counter() - t0

    t = time.perf_counter()
    kind = next(iter(target.specs.values()))
    from matlib.descriptors import DescriptorSpec

    input_kind = DescriptorSpec.from_dict(kind).input_kind
    if store is None:
        store = Store(Path(library_dir).resolve().parent.parent)
    leaks, leak_notes = leakage_flags(catalog[catalog["status"] == "ok"], [target.inputs[i] for i in np.flatnonzero(target.usable)],
                                      target.y_usable, input_kind, target_column, store, target_dataset, max_overlap,
                                      cache_dir=store.transfer("_canonical"))
    notes += leak_notes
    timings["leakage"] = time.perf_counter() - t

    t = time.perf_counter()
    screened = screen_library(lib, target)
    timings["screen"] = time.perf_counter() - t
    if len(screened):
        screened = screened.merge(leaks, on="model_id", how="left")
    ranking = rank([screened, screen_direct(target)])
    ranking["leak"] = ranking.get("leak", pd.Series(False, index=ranking.index)).fillna(False).astype(bool)
    ranking["leak_reason"] = ranking.get("leak_reason", pd.Series("", index=ranking.index)).fillna("")
    n_leak = int(ranking.loc[ranking["kind"] == "transfer", "leak"].sum())
    if n_leak:
        notes.append(f"leakage guard: {n_leak} candidates flagged"
                     + (" (kept: --allow-leakage)" if allow_leakage else " and left out of refinement"))

    t = time.perf_counter()
    yv = target.y_usable
    cv_folds = repeated_kfold(len(yv), folds, repeats, seed)
    eligible = ranking[(ranking["kind"] == "transfer") & (allow_leakage | ~ranking["leak"])
                       & np.isfinite(ranking["loo_mae"].astype(float))]
    picks = eligible.head(top_k)
    feats, extractors = candidate_features(lib, picks, target) if len(picks) else ({}, {})
    items = [{"key": p.candidate, "kind": "transfer", "X": feats[p.candidate], "learners": list(learners),
              "context": _context(extractors[p.candidate], p.layer)} for p in picks.itertuples(index=False)]
    direct = ranking[ranking["kind"] == "direct"]
    for d in direct.itertuples(index=False):
        items.append({"key": d.candidate, "kind": "direct", "X": target.features[d.descriptor_hash].astype(np.float64),
                      "learners": list(direct_learners)})
    refined, pool = refine(items, yv, cv_folds, seed)
    timings["refine"] = time.perf_counter() - t

    allowed = set(refined["member"]) if include_direct else set(refined.loc[refined["kind"] == "transfer", "member"])
    if not allowed:
        allowed = set(refined["member"])
        notes.append("no usable transfer candidate: the chosen model uses direct learning only")
    selection = select_ensemble({k: v for k, v in pool.items() if k in allowed}, yv, max_ensemble)

    t = time.perf_counter()
    by_key = {it["key"]: it for it in items}
    rank_by_cand = ranking.set_index("candidate")
    members, states = [], {}
    for key in selection.members:
        cand, learner = key.rsplit("|", 1)
        row = rank_by_cand.loc[cand]
        m = Member(key=key, kind=str(row["kind"]), descriptor_spec=target.specs[row["descriptor_hash"]], learner=learner,
                   model_id=str(row["model_id"]), layer=int(row["layer"]))
        it, lr = by_key[cand], get_learner(learner)
        fits = [lr.fit(it["X"], yv, seed, it.get("context"))]
        for r, train, _ in cv_folds.splits():
            if r == 0:
                fits.append(lr.fit(it["X"][train], yv[train], seed, it.get("context")))
        members.append(m)
        states[key] = fits
    info = {"target_column": target_column, "input_kind": input_kind, "n_train": int(len(yv)), "seed": seed,
            "cv_mae": selection.cv.mae, "cv_rmse": selection.cv.rmse, "library": str(Path(library_dir).resolve()),
            "library_name": lib.name, "created_by": f"matlib {__version__}"}
    save_model(out_dir / "model", members, {m.key: extractors[m.key.rsplit('|', 1)[0]] for m in members if m.kind == "transfer"},
               states, info)
    timings["save"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    result = TransferResult(out_dir, ranking, refined, selection, members, target, notes, timings)
    _write_outputs(result, cv_folds, pool, top_k, seed)
    if report:
        from matlib.transfer.report import write_report

        write_report(result, pool)
    return result


def _write_outputs(res: TransferResult, folds: Folds, pool: dict[str, np.ndarray], top_k: int, seed: int) -> None:
    """ranking/refined/skipped Parquet, out-of-fold predictions, and run.json."""
    d = res.out_dir
    atomic_write_parquet(d / "ranking.parquet", res.ranking)
    atomic_write_parquet(d / "refined.parquet", res.refined)
    atomic_write_parquet(d / "skipped_rows.parquet", res.target.skipped_rows.astype({"input": str, "reason": str}))
    atomic_write_parquet(d / "ensembles.parquet", res.selection.table)
    oof = pd.DataFrame({k: v.mean(axis=0) for k, v in pool.items() if k in res.selection.members})
    oof.insert(0, "y", res.target.y_usable)
    oof["ensemble"] = res.selection.cv.oof.mean(axis=0)
    atomic_write_parquet(d / "oof.parquet", oof)
    atomic_write_json(d / "run.json", {
        "n_rows": len(res.target.inputs), "n_usable": int(res.target.usable.sum()),
        "n_skipped": int(len(res.target.skipped_rows)), "n_candidates": int((res.ranking["kind"] == "transfer").sum()),
        "top_k": top_k, "seed": seed, "folds": folds.k, "repeats": folds.repeats,
        "chosen": res.selection.members, "cv_mae": res.selection.cv.mae, "notes": res.notes, "timings": res.timings,
        "descriptors": {h: s.get("name") for h, s in res.target.specs.items()}})
