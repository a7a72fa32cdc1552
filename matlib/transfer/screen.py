"""Screening: score every (model, hidden layer) of a library by exact LOO ridge, one shard at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from matlib.transfer.candidate import CandidateId
from matlib.transfer.ridge import DEFAULT_GRID, FALLBACKS, screen_features
from matlib.transfer.target import TargetFeatures

GRAPH_CODES = {"molgraph"}  # descriptors that encode graphs for GNN sources (matlib.graphs.code)
CHUNK = 512  # candidates scored at once (bounds memory: CHUNK x n x h floats)

RANK_COLUMNS = [
    "candidate",
    "kind",
    "model_id",
    "layer",
    "clip",
    "width",
    "property",
    "dataset",
    "dataset_version",
    "descriptor",
    "descriptor_hash",
    "loo_mae",
    "loo_rmse",
    "gcv",
    "alpha",
    "fallback",
]


def _score_block(
    F: torch.Tensor, y: torch.Tensor, grid: Sequence[float], folds: Sequence[tuple[torch.Tensor, torch.Tensor]] = ()
) -> dict[str, np.ndarray]:
    """screen_features over F [C,n,h] in chunks, as numpy arrays; plus `loo_mae_f{i}`: the LOO MAE on the
    training rows of outer fold i alone (what a screening that never saw fold i's held-out rows would score).
    folds: (training rows, their targets) of each outer fold, as tensors on F's device."""
    parts: list[dict[str, torch.Tensor]] = []
    for start in range(0, F.shape[0], CHUNK):
        block = F[start : start + CHUNK]
        part = screen_features(block, y, grid)
        for i, (rows, y_rows) in enumerate(folds):
            part[fold_column(i)] = screen_features(block[:, rows], y_rows, grid)["loo_mae"]
        parts.append(part)
    return {k: torch.cat([p[k] for p in parts]).double().cpu().numpy() for k in parts[0]}


def fold_column(i: int) -> str:
    """Ranking column of the LOO MAE screened on outer fold i's training rows."""
    return f"loo_mae_f{i}"


def fold_columns(df: pd.DataFrame) -> list[str]:
    """The fold-wise screening columns present in a ranking, in fold order."""
    cols, i = [], 0
    while fold_column(i) in df:
        cols.append(fold_column(i))
        i += 1
    return cols


def candidate_id(model_id: str, layer: int, clip: float | None = None) -> str:
    """The ranking key of one (model, layer, input clamp) candidate."""
    return CandidateId(model_id, layer, clip).format()


def clip_value(value: Any) -> float | None:
    """A ranking row's `clip` as the value feature extraction takes (NaN: no clamp)."""
    return None if value is None or pd.isna(value) else float(value)


def shard_candidates(
    shard, rows: pd.DataFrame, target: TargetFeatures, device: str | None = None, clip: float | None = None
) -> Iterator[tuple[str, int, torch.Tensor, pd.DataFrame]]:
    """(descriptor hash, layer, features [m,n,h], catalog rows) for a shard's usable models, per descriptor."""
    from matlib.library import shard_hidden_features

    for key, group in rows.groupby("descriptor_hash", sort=True):
        h = str(key)
        if h not in target.features:
            continue
        X = torch.as_tensor(target.features[h], dtype=torch.float32, device=device)
        with torch.no_grad():
            hidden = shard_hidden_features(shard, X, device=device, clip=clip)
        take = torch.as_tensor(group["row"].to_numpy(np.int64), device=hidden[0].device if hidden else None)
        for layer, H in enumerate(hidden):
            yield h, layer, H.index_select(0, take) if len(take) != H.shape[0] else H, group


def screen_shard(
    shard,
    catalog: pd.DataFrame,
    target: TargetFeatures,
    grid: Sequence[float] = DEFAULT_GRID,
    layers: str = "all",
    device: str | None = None,
    clips: Sequence[float | None] = (None,),
    fold_train: Sequence[np.ndarray] = (),
) -> pd.DataFrame:
    """Ranking rows for every (model, layer, clip) of one shard (models whose descriptor the target lacks are left out).

    Each clip in clips is one way of feeding the target to the frozen layers (None: as is; c: standardised inputs
    clamped to +-c source standard deviations); which works best depends on the source descriptor, so it is
    screened like the ridge penalty. fold_train: training rows of outer CV folds, each also screened on its own
    (columns loo_mae_f0, ...), so the whole transfer search can be cross-validated without seeing held-out rows.
    """
    rows = catalog[(catalog["shard"] == shard.name) & (catalog["status"] == "ok")].sort_values("row")
    if shard.arch.get("model") == "gnn":
        clips = (None,)  # a GNN reads graphs, not standardised descriptors: nothing to clamp
    y = torch.as_tensor(target.y_usable, dtype=torch.float32, device=device)
    folds = [(r, y[r]) for r in (torch.as_tensor(train, device=device) for train in fold_train)]  # once per shard
    out = [df for clip in clips for df in _screen_clip(shard, rows, target, y, grid, layers, device, clip, folds)]
    columns = RANK_COLUMNS + [fold_column(i) for i in range(len(fold_train))]
    if not out:
        return pd.DataFrame(columns=columns)
    return pd.concat(out, ignore_index=True)[columns]


def _screen_clip(
    shard,
    rows: pd.DataFrame,
    target: TargetFeatures,
    y: torch.Tensor,
    grid: Sequence[float],
    layers: str,
    device: str | None,
    clip: float | None,
    folds: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
) -> list[pd.DataFrame]:
    """Ranking rows of one shard with one input clamp."""
    out = []
    for h, layer, F, group in shard_candidates(shard, rows, target, device, clip):
        archs = group["arch"].map(_n_hidden)
        keep = (archs > layer).to_numpy()
        if layers == "last":
            keep &= (archs - 1 == layer).to_numpy()
        if not keep.any():
            continue
        g = group[keep]
        scores = _score_block(F[torch.as_tensor(np.flatnonzero(keep), device=F.device)], y, grid, folds)
        df = pd.DataFrame(
            {
                "candidate": [candidate_id(m, layer, clip) for m in g["model_id"]],
                "kind": "transfer",
                "model_id": g["model_id"].to_numpy(),
                "layer": layer,
                "clip": np.nan if clip is None else float(clip),
                "width": np.array([_width(a, layer) for a in g["arch"]]),
                "property": g["property"].to_numpy(),
                "dataset": g["dataset"].to_numpy(),
                "dataset_version": g["dataset_version"].to_numpy(),
                "descriptor": g["descriptor"].to_numpy(),
                "descriptor_hash": h,
                **scores,
            }
        )
        out.append(df)
    return out


def screen_direct(target: TargetFeatures, grid: Sequence[float] = DEFAULT_GRID) -> pd.DataFrame:
    """Direct-learning ridge on each raw descriptor, scored with the same LOO engine."""
    y = torch.as_tensor(target.y_usable, dtype=torch.float64)
    rows = []
    for h, X in target.features.items():
        if target.specs[h].get("name") in GRAPH_CODES:
            continue  # a graph code is an input to GNN sources, not a feature vector to learn from directly
        s = screen_features(torch.as_tensor(X, dtype=torch.float64).unsqueeze(0), y, grid)
        name = target.specs[h].get("name")
        rows.append(
            {
                "candidate": CandidateId.direct(str(name), h).format(),
                "kind": "direct",
                "model_id": "",
                "layer": -1,
                "clip": np.nan,
                "width": X.shape[1],
                "property": "",
                "dataset": "",
                "dataset_version": "",
                "descriptor": name,
                "descriptor_hash": h,
                **{k: float(v[0]) for k, v in s.items()},
            }
        )
    return pd.DataFrame(rows, columns=RANK_COLUMNS + ["score"])


def _n_hidden(arch) -> int:
    """Number of feature layers of an arch (JSON text or dict): hidden layers; a GNN's pooled + decoder layers."""
    import json

    from matlib.library.features import n_feature_layers

    return n_feature_layers(json.loads(arch) if isinstance(arch, str) else arch)


def _width(arch, layer: int) -> int:
    """Real width of one hidden layer of an arch."""
    import json

    a = json.loads(arch) if isinstance(arch, str) else arch
    if a.get("model") == "gnn":
        return int(([a["width"]] + list(a["decoder"]))[layer])
    return int(a["hidden"][layer])


def screening_notes(ranking: pd.DataFrame) -> list[str]:
    """Notes on candidates whose eigendecomposition needed a fallback (float64, jitter, SVD) or failed (dropped)."""
    if "fallback" not in ranking or not len(ranking):
        return []
    codes = ranking["fallback"].fillna(0).astype(int)
    notes = []
    for code in range(1, len(FALLBACKS)):
        hit = ranking.loc[codes == code, "candidate"].astype(str).tolist()
        if not hit:
            continue
        shown = ", ".join(hit[:3]) + (f" and {len(hit) - 3} more" if len(hit) > 3 else "")
        if FALLBACKS[code] == "dropped":
            notes.append(
                f"screening: {len(hit)} candidate(s) dropped: no finite LOO score (their features' "
                f"eigendecomposition failed in float32, float64, with jitter and by SVD, or gave non-finite "
                f"values): {shown}"
            )
        else:
            notes.append(
                f"screening: batched eigh did not converge; {len(hit)} candidate(s) scored with the "
                f"{FALLBACKS[code]} fallback: {shown}"
            )
    return notes


def rank(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate screening rows and sort by LOO MAE (ties broken by candidate id: deterministic)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=RANK_COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    df = df.sort_values(["loo_mae", "candidate"], kind="mergesort").reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df
