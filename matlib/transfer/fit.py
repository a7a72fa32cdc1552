"""fit_transfer: screen a library against a small target, refine the top K, choose by CV, save, report."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from matlib import __version__
from matlib.atomic import atomic_write_json, atomic_write_parquet, read_json, read_parquet
from matlib.errors import MatlibError
from matlib.store import Store, check_name
from matlib.transfer.candidate import MemberKey
from matlib.transfer.choice import CHOICE_SE, DIRECT_MEAN, ENSEMBLE_OPTIONS
from matlib.transfer.composite import CompositeItem
from matlib.transfer.cv import CV_SCHEMES, Folds, make_folds
from matlib.transfer.direct import add_standard_descriptors
from matlib.transfer.impute import training_medians
from matlib.transfer.intervals import calibrate
from matlib.transfer.leakage import leakage_flags
from matlib.transfer.learners import get_learner
from matlib.transfer.menu_extras import composite_member, extra_menu
from matlib.transfer.model import Member, save_model
from matlib.transfer.ridge import DEFAULT_GRID
from matlib.transfer.run_manifest import begin_run, check_replaceable, seal_run, work_dir
from matlib.transfer.screen import clip_value, fold_columns, rank, screen_direct, screen_shard, screening_notes
from matlib.transfer.select import Selection, options_oof_frame, select_model
from matlib.transfer.source_models import (
    RefineItem,
    candidate_features,
    open_library,
    preferred_clip_rows,
    refine,
    source_context,
    stream_shards,
)
from matlib.transfer.target import TargetFeatures, load_target, prepare_target, save_target, spec_json
from matlib.transfer.threads import single_thread_torch

DEFAULT_LEARNERS = ("ridge", "gp", "lightgbm", "rf", "finetune")
# the robust-target variants (learners/robust_target.py) of the two learners that gain most on heavy-tailed targets,
# and the Tanimoto-kernel GP (on the menu for count fingerprints only: learners/tanimoto_gp.py)
DIRECT_LEARNERS = ("ridge", "gp", "lightgbm", "rf", "extratrees", "extratrees-asinh", "gp-asinh", "gp-tanimoto")
# Each (model, layer) is screened twice: on the target as is, and with the target's inputs clamped to +-INPUT_CLIP
# standard deviations of the source model's training data. A target far outside the source domain (ESOL molecules vs
# QM9's <= 9 heavy atoms) drives near-constant rdkit2d/MACCS inputs to z-scores in the hundreds, and the hidden
# features then carry only that: the clamp fixes it. For count fingerprints (Morgan) the clamp erases rare
# substructures and the unclamped features are better. Which one a candidate uses is chosen by the screening.
INPUT_CLIP = 5.0
INPUT_CLIPS = (None, INPUT_CLIP)


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


def library_specs(catalog: pd.DataFrame) -> dict[str, dict]:
    """descriptor_hash -> spec dict for every descriptor used by an ok model."""
    ok = catalog[catalog["status"] == "ok"].drop_duplicates("descriptor_hash")
    return {str(r.descriptor_hash): spec_json(r.descriptor_spec) for r in ok.itertuples(index=False)}


def screen_library(
    lib,
    target: TargetFeatures,
    grid: Sequence[float] = DEFAULT_GRID,
    shards: Sequence[str] | None = None,
    device: str | None = None,
    workers: int | None = None,
    clips: Sequence[float | None] = (None,),
    fold_train: Sequence[np.ndarray] = (),
) -> pd.DataFrame:
    """Screening rows of every usable (model, layer, input clamp in clips), shard by shard (on device if given).

    On CPU, shards are screened by `workers` threads (default: the CPU count) with torch's intra-op
    threads set to 1: batched eigh with several OpenMP threads collapses when the cores are shared,
    while one shard per thread scales. At most 2 x workers shards are in memory at once.
    """
    names = sorted(lib.manifest.get("shards", {})) if shards is None else list(shards)
    cpu = device is None or str(device) == "cpu"
    n_workers = max(1, int(workers or os.cpu_count() or 1)) if cpu else 1
    loader = stream_shards(lib, names)
    frames: list[pd.DataFrame] = []
    with single_thread_torch(cpu), ThreadPoolExecutor(max_workers=n_workers) as pool:
        pending: deque = deque()
        for shard in loader:
            pending.append(
                pool.submit(
                    screen_shard, shard, lib.catalog, target, grid, device=device, clips=clips, fold_train=fold_train
                )
            )
            while len(pending) >= 2 * n_workers:
                frames.append(pending.popleft().result())
        while pending:
            frames.append(pending.popleft().result())
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass
class RunConfig:
    """Settings of one fit (stored in the run folder so the flow's steps agree)."""

    library_dir: str
    target_column: str = "target"
    input_column: str = "input"
    top_k: int = 10
    seed: int = 0
    folds: int = 5
    repeats: int = 3
    ensemble_size: int = 10  # the transfer model averages the top ensemble_size screened candidates (<= top_k)
    learners: tuple[str, ...] = DEFAULT_LEARNERS
    direct_learners: tuple[str, ...] = DIRECT_LEARNERS
    finetune_top: int = 3  # fine-tuning, the costly learner, refines only the best few screened candidates
    gp_top: int = 3  # the Gaussian process on frozen features: only the best few screened candidates
    cv: str = "random"  # CV scheme of the choice: "random" (repeated K-fold) or "extrapolation" (sorted-target blocks)
    standard_descriptors: bool = True  # direct learners also see matlib.transfer.direct's standard descriptors
    include_direct: bool = True
    allow_leakage: bool = False
    target_dataset: str | tuple[str, ...] | None = None  # the library dataset(s) of the target's property: left out
    max_overlap: float = 0.0
    report: bool = True
    input_clips: tuple[float | None, ...] = INPUT_CLIPS  # ways of feeding the target to frozen layers (see INPUT_CLIPS)
    source_features: bool = True  # menu: source predictions beside the descriptors (matlib.transfer.source_features)
    stacks: bool = True  # menu: multi-source stacks of frozen features (matlib.transfer.stacks)
    choice_se: float = CHOICE_SE  # another option must beat the reference (see choice.py) by this many paired SEs
    ensemble_options: int = ENSEMBLE_OPTIONS  # menu: the average of this many of its best options (0: off)
    direct_mean: int = DIRECT_MEAN  # menu: the average of this many CV-best direct (descriptor, learner) pairs (0: off)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunConfig:
        """The settings as stored in config.json (JSON lists back to tuples)."""
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return cls(**kwargs)


@dataclass
class StagedRun:
    """What prepare_run leaves in the run's stage/config.json for the later steps: settings, input kind, timings."""

    cfg: RunConfig
    input_kind: str
    timings: dict[str, float] = field(default_factory=dict)

    def save(self, stage: Path) -> Path:
        """Write stage/config.json (the RunConfig fields plus input_kind and timings)."""
        return atomic_write_json(
            stage / "config.json", {**asdict(self.cfg), "input_kind": self.input_kind, "timings": self.timings}
        )

    @classmethod
    def load(cls, stage: Path) -> StagedRun:
        """Read stage/config.json."""
        raw = read_json(stage / "config.json")
        timings = raw.pop("timings", {})
        input_kind = raw.pop("input_kind")
        return cls(RunConfig.from_json(raw), input_kind, timings)


def run_folds(cfg: RunConfig, y: np.ndarray) -> Folds:
    """The run's CV folds (scheme cfg.cv)."""
    return make_folds(y, cfg.folds, cfg.repeats, cfg.seed, cfg.cv)


def outer_fold_train(cfg: RunConfig, y: np.ndarray) -> list[np.ndarray]:
    """Training rows of each outer CV fold (repeat 0 of the run's folds)."""
    return [train for train, _ in run_folds(cfg, y).first_repeat()]


def nested_transfer_oof(
    lib,
    usable: pd.DataFrame,
    target: TargetFeatures,
    folds: Folds,
    size: int,
    seed: int,
    known: dict[str, np.ndarray] | None = None,
) -> np.ndarray | None:
    """Out-of-fold predictions [1, n] of the whole transfer search, re-run inside each outer fold of repeat 0.

    Per fold: the clamp choice and the top `size` candidates come from the screening of that fold's training rows
    alone (ranking columns loo_mae_f*), ridge on each candidate's frozen features is fitted on those rows, and the
    average predicts the held-out rows. Unlike the CV of the chosen candidates, no held-out row has helped pick them.
    known: frozen features already computed, by candidate (only the others are read from the library).
    None when the ranking has no fold-wise screening.
    """
    cols = fold_columns(usable)
    splits = folds.first_repeat()
    if not cols or len(cols) != len(splits):
        return None
    picks = []
    for col in cols:
        rows = usable[preferred_clip_rows(usable, col) & np.isfinite(usable[col].astype(float).to_numpy())]
        picks.append(rows.sort_values([col, "candidate"], kind="mergesort").head(max(1, size)))
    feats = dict(known or {})
    missing = pd.concat(picks).drop_duplicates("candidate")
    missing = missing[~missing["candidate"].isin(list(feats))]
    if len(missing):
        feats.update(candidate_features(lib, missing, target)[0])
    ridge = get_learner("ridge")
    y = target.y_usable
    oof = np.full(len(y), np.nan)
    for (train, test), fold_picks in zip(splits, picks):
        preds = [
            ridge.predict(ridge.fit(feats[c][train], y[train], seed), feats[c][test]) for c in fold_picks["candidate"]
        ]
        oof[test] = np.mean(preds, axis=0)
    return oof[None, :]


def member_interval(
    selection: Selection, pool: dict[str, np.ndarray], sd_pool: dict[str, np.ndarray], y: np.ndarray
) -> dict:
    """Interval settings of the chosen model: conformal on its (nested) out-of-fold residuals, and on its members'
    own out-of-fold predictive sds when every member has one (then the width follows each row's sd)."""
    out = calibrate(y, selection.cv.oof)
    if selection.members and all(m in sd_pool for m in selection.members):
        w = np.asarray(selection.weights, dtype=float)
        oof = np.tensordot(w, np.stack([pool[m] for m in selection.members]), axes=1)
        sd = np.tensordot(w, np.stack([sd_pool[m] for m in selection.members]), axes=1)
        gp = calibrate(y, oof, sd)
        out.update({k: gp[k] for k in ("method", "scale", "oof_coverage") if k in gp})
    return out


def prepare_run(
    library_dir: str | Path,
    inputs: Sequence[str],
    y: Iterable[Any],
    out_dir: str | Path,
    store: Store | None = None,
    **options: Any,
) -> Path:
    """Validate + featurise the target and flag leaking sources; writes out_dir/stage/ and returns out_dir."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    check_name("run", out_dir.resolve().name)
    cfg = RunConfig(library_dir=str(Path(library_dir).resolve()), **options)
    if cfg.cv not in CV_SCHEMES:
        raise MatlibError(f"unknown CV scheme {cfg.cv!r} (--cv); known: {', '.join(CV_SCHEMES)}")
    lib = open_library(library_dir)
    check_replaceable(out_dir)
    catalog = lib.catalog
    target = prepare_target(inputs, y, library_specs(catalog), cfg.target_column)
    from matlib.descriptors import DescriptorSpec

    input_kind = DescriptorSpec.from_dict(next(iter(target.specs.values()))).input_kind
    if cfg.standard_descriptors and cfg.include_direct:
        add_standard_descriptors(target, input_kind)
    t_feat = time.perf_counter() - t0
    store = store if store is not None else Store.default()  # $MATLIB_HOME, never a guess from the library's path
    ok = catalog[catalog["status"] == "ok"]
    leaks, leak_notes = leakage_flags(
        ok,
        [target.inputs[i] for i in np.flatnonzero(target.usable)],
        target.y_usable,
        input_kind,
        cfg.target_column,
        store,
        cfg.target_dataset,
        cfg.max_overlap,
        cache_dir=store.transfer("_canonical"),
        library=lib,
    )
    target.notes += leak_notes
    work = begin_run(out_dir)  # everything is written into a staging sibling until the run is sealed
    save_target(work / "stage", target)
    atomic_write_parquet(work / "stage" / "leaks.parquet", leaks)
    StagedRun(cfg, input_kind, {"featurise": t_feat, "leakage": time.perf_counter() - t0 - t_feat}).save(work / "stage")
    return out_dir


def screen_step(out_dir: str | Path, shards: Sequence[str] | None = None, part: str = "all") -> Path:
    """Screen some shards (all by default) of the run's library; writes stage/screen-<part>.parquet."""
    stage = work_dir(out_dir) / "stage"
    cfg = StagedRun.load(stage).cfg
    target = load_target(stage)
    df = screen_library(
        open_library(cfg.library_dir),
        target,
        shards=shards,
        clips=cfg.input_clips,
        fold_train=outer_fold_train(cfg, target.y_usable) if cfg.include_direct else (),
    )
    return atomic_write_parquet(stage / f"screen-{part}.parquet", df)


def library_shard_names(library_dir: str | Path) -> list[str]:
    """Names of every shard of a library (sorted)."""
    return sorted(open_library(library_dir).manifest.get("shards", {}))


def rank_screened(
    stage: Path, target: TargetFeatures, screened: Sequence[str | Path] | None, allow_leakage: bool
) -> tuple[pd.DataFrame, list[str]]:
    """Step "rank": the screened shards and direct ridge in one ranking, leakage flags joined; and its notes."""
    paths = screened if screened is not None else sorted(stage.glob("screen-*.parquet"))
    frames = [f for f in (read_parquet(p) for p in paths) if len(f)]
    screened_df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(screened_df):
        screened_df = screened_df.merge(read_parquet(stage / "leaks.parquet"), on="model_id", how="left")
    ranking = rank([screened_df, screen_direct(target)])
    for col, default in (("leak", False), ("leak_reason", ""), ("overlap", 0)):
        values = ranking[col].tolist() if col in ranking else [default] * len(ranking)
        ranking[col] = pd.Series(
            [default if v is None or v != v else v for v in values], index=ranking.index, dtype=type(default)
        )
    notes = screening_notes(ranking)
    n_leak = int(ranking.loc[ranking["kind"] == "transfer", "leak"].sum())
    if n_leak:
        notes.append(
            f"leakage guard: {n_leak} candidates flagged"
            + (" (kept: allow_leakage)" if allow_leakage else " and left out of refinement")
        )
    return ranking, notes


def usable_transfer(ranking: pd.DataFrame, allow_leakage: bool) -> pd.DataFrame:
    """Step "pick", part 1: the transfer rows with a finite screening score (leaking ones only if allowed)."""
    return ranking[
        (ranking["kind"] == "transfer")
        & (allow_leakage | ~ranking["leak"])
        & np.isfinite(ranking["loo_mae"].astype(float))
    ]


@dataclass
class RefineMenu:
    """Step "pick": the refinement items (transfer picks in rank order, then direct) and the picks' extractors."""

    items: list[RefineItem]
    extractors: dict[str, Any]  # candidate id -> one-model shard of a transfer pick
    features: dict[str, np.ndarray]  # candidate id -> frozen features of a transfer pick

    def keys(self, kind: str) -> list[str]:
        """Candidate ids of one kind, in menu order."""
        return [it.key for it in self.items if it.kind == kind]

    def item(self, key: str) -> RefineItem:
        """The item of one candidate id."""
        return next(it for it in self.items if it.key == key)


def pick_candidates(
    lib: Any, usable: pd.DataFrame, ranking: pd.DataFrame, target: TargetFeatures, cfg: RunConfig
) -> RefineMenu:
    """Step "pick": the top K transfer candidates (each descriptor's preferred clamp) and every direct one, each with
    the learners on its menu (the costly ones only for the best few transfer picks)."""
    limits = {"finetune": cfg.finetune_top, "gp": cfg.gp_top}
    picks = usable[preferred_clip_rows(usable)].head(cfg.top_k)
    feats, extractors = candidate_features(lib, picks, target) if len(picks) else ({}, {})
    items = []
    for i, (key, layer) in enumerate(zip(picks["candidate"].astype(str), picks["layer"].astype(int))):
        X = feats[key]
        names = [n for n in cfg.learners if i < limits.get(n, i + 1) and get_learner(n).suits(X)]
        items.append(RefineItem(key, "transfer", X, names, source_context(extractors[key], layer)))
    direct = ranking[ranking["kind"] == "direct"]
    for key, h in zip(direct["candidate"].astype(str), direct["descriptor_hash"].astype(str)):
        names = [n for n in cfg.direct_learners if get_learner(n).suits(target.features[h])]
        items.append(RefineItem(key, "direct", target.features[h].astype(np.float64), names))
    return RefineMenu(items, extractors, feats)


@dataclass
class Refinement:
    """Step "refine": the refinement table and every member's out-of-fold predictions (and sds, where it has them)."""

    table: pd.DataFrame
    pool: dict[str, np.ndarray]
    sd_pool: dict[str, np.ndarray]


def refine_menu(menu: RefineMenu, y: np.ndarray, folds: Folds, seed: int) -> Refinement:
    """Step "refine": repeated K-fold CV of every (candidate, learner) on the menu."""
    sd_pool: dict[str, np.ndarray] = {}
    table, pool = refine(menu.items, y, folds, seed, sd_pool)
    return Refinement(table, pool, sd_pool)


def choose_model(
    lib: Any,
    usable: pd.DataFrame,
    menu: RefineMenu,
    ref: Refinement,
    target: TargetFeatures,
    folds: Folds,
    cfg: RunConfig,
    alternatives: dict[str, dict[str, np.ndarray]] | None = None,
) -> Selection:
    """Step "select": the final model by CV among the transfer ensemble, the best direct learner, and both (the
    transfer option scored by the nested search when direct learning is on the menu), the composite options
    (alternatives: option -> member key -> out-of-fold predictions, see matlib.transfer.menu_extras) and the
    ensemble of the best options; direct unless another option beats it clearly (matlib.transfer.choice)."""
    transfer, direct = menu.keys("transfer"), menu.keys("direct")
    nested = (
        nested_transfer_oof(lib, usable, target, folds, min(cfg.top_k, cfg.ensemble_size), cfg.seed, menu.features)
        if cfg.include_direct and transfer
        else None
    )
    return select_model(
        ref.pool,
        target.y_usable,
        transfer,
        direct if cfg.include_direct or not transfer else [],
        cfg.ensemble_size,
        transfer_oof=nested,
        folds=folds,
        alternatives=alternatives,
        z=cfg.choice_se,
        ensemble=cfg.ensemble_options,
        direct_mean=cfg.direct_mean,
    )


def fit_members(
    selection: Selection,
    menu: RefineMenu,
    ranking: pd.DataFrame,
    target: TargetFeatures,
    folds: Folds,
    seed: int,
    composites: dict[str, CompositeItem] | None = None,
) -> tuple[list[Member], dict[str, list[dict]]]:
    """Step "fit": each chosen member's learner on all rows and on each outer fold's training rows (repeat 0)
    (composites: the composite candidates of the menu by id, see matlib.transfer.menu_extras)."""
    yv = target.y_usable
    rank_by_cand = ranking.set_index("candidate")
    members, states = [], {}
    for key, weight in zip(selection.members, selection.weights):
        mk = MemberKey.parse(key)
        if composites and mk.candidate in composites:
            member, states[key] = composite_member(composites[mk.candidate], key, weight, yv, folds, seed)
            members.append(member)
            continue
        row = cast(pd.Series, rank_by_cand.loc[mk.candidate])  # candidate ids are unique
        members.append(
            Member(
                key=key,
                kind=str(row["kind"]),
                descriptor_spec=target.specs[str(row["descriptor_hash"])],
                learner=mk.learner,
                model_id=str(row["model_id"]),
                layer=int(row["layer"]),
                clip=clip_value(row["clip"]),
                weight=weight,
            )
        )
        it, lr = menu.item(mk.candidate), get_learner(mk.learner)
        fits = [lr.fit(it.X, yv, seed, it.context)]
        fits += [lr.fit(it.X[train], yv[train], seed, it.context) for train, _ in folds.first_repeat()]
        states[key] = fits
    return members, states


def model_info(run: StagedRun, lib: Any, selection: Selection, interval: dict, n_train: int) -> dict[str, Any]:
    """The run-level fields of model.json."""
    cfg = run.cfg
    return {
        "target_column": cfg.target_column,
        "input_column": cfg.input_column,
        "input_kind": run.input_kind,
        "n_train": int(n_train),
        "seed": cfg.seed,
        "cv_mae": selection.cv.mae,
        "cv_rmse": selection.cv.rmse,
        "library": cfg.library_dir,
        "library_name": lib.name,
        "created_by": f"matlib {__version__}",
        "interval": interval,
        "nested_cv_mae": selection.nested,
        "cv_scheme": cfg.cv,
    }


def finish_run(
    out_dir: str | Path,
    screened: Sequence[str | Path] | None = None,
    timings: dict[str, float] | None = None,
    started: float | None = None,
) -> TransferResult:
    """Rank, pick the top K, refine them with repeated K-fold CV, select by CV, fit and save the model, write the
    report, and seal the run (manifest last, then swapped into out_dir). timings/started: the caller's step times
    and start time."""
    out_dir = Path(out_dir)
    work = work_dir(out_dir)
    run = StagedRun.load(work / "stage")
    cfg, timings = run.cfg, {**run.timings, **(timings or {})}
    target = load_target(work / "stage")
    lib = open_library(cfg.library_dir)
    ranking, screen_notes = rank_screened(work / "stage", target, screened, cfg.allow_leakage)
    notes = list(target.notes) + screen_notes

    t = time.perf_counter()
    yv = target.y_usable
    folds = run_folds(cfg, yv)
    usable = usable_transfer(ranking, cfg.allow_leakage)
    menu = pick_candidates(lib, usable, ranking, target, cfg)
    ref = refine_menu(menu, yv, folds, cfg.seed)
    extra = extra_menu(lib, usable if cfg.include_direct else usable.iloc[:0], target, run, folds, ref, menu)
    timings["refine"] = time.perf_counter() - t
    if not menu.keys("transfer"):
        notes.append("no usable transfer candidate: the chosen model uses direct learning only")
    selection = choose_model(lib, usable, menu, ref, target, folds, cfg, extra.alternatives)
    interval = member_interval(selection, ref.pool, ref.sd_pool, yv)

    t = time.perf_counter()
    members, states = fit_members(selection, menu, ranking, target, folds, cfg.seed, extra.items)
    save_model(
        work / "model",
        members,
        {m.key: extra.extractors(m.key, menu.extractors) for m in members if m.kind != "direct"},
        states,
        model_info(run, lib, selection, interval, len(yv)),
        medians=training_medians(target.features, target.specs),
    )
    timings["save"] = time.perf_counter() - t
    if started is not None:
        timings["total"] = time.perf_counter() - started

    result = TransferResult(work, ranking, ref.table, selection, members, target, notes, timings)
    _write_outputs(result, folds, ref.pool, cfg.top_k, cfg.seed)
    if cfg.report:
        from matlib.transfer.report import write_report

        write_report(result, ref.pool)
    result.out_dir = seal_run(out_dir)
    return result


def fit_transfer(
    library_dir: str | Path,
    inputs: Sequence[str],
    y: Iterable[Any],
    out_dir: str | Path,
    *,
    store: Store | None = None,
    **options: Any,
) -> TransferResult:
    """Screen every (model, layer) of the library, refine the top K, choose by CV, save the model and report.

    options: see RunConfig (target_column, input_column, top_k, seed, folds, repeats, learners,
    direct_learners, include_direct, allow_leakage, ensemble_size, target_dataset, max_overlap, report, input_clips).
    """
    t0 = time.perf_counter()
    prepare_run(library_dir, inputs, y, out_dir, store=store, **options)
    t = time.perf_counter()
    screen_step(out_dir)
    return finish_run(out_dir, timings={"screen": time.perf_counter() - t}, started=t0)


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
    atomic_write_parquet(d / "options_oof.parquet", options_oof_frame(res.selection, res.target.y_usable, folds))
    atomic_write_json(
        d / "run.json",
        {
            "n_rows": len(res.target.inputs),
            "n_usable": int(res.target.usable.sum()),
            "n_skipped": int(len(res.target.skipped_rows)),
            "n_candidates": int((res.ranking["kind"] == "transfer").sum()),
            "top_k": top_k,
            "seed": seed,
            "folds": folds.k,
            "repeats": folds.repeats,
            "chosen": res.selection.members,
            "chosen_option": res.selection.option,
            "cv_mae": res.selection.cv.mae,
            "nested_cv_mae": res.selection.nested,
            "choice": res.selection.choice,
            "notes": res.notes,
            "timings": res.timings,
            "descriptors": {h: s.get("name") for h, s in res.target.specs.items()},
        },
    )
