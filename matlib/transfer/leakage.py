"""Leakage guard: flag source models trained on the target's own data, property or inputs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from matlib.atomic import atomic_write_parquet, read_parquet
from matlib.errors import MatlibError
from matlib.store import Store

MIN_MATCHES = 3  # overlapping rows needed before a value match counts as "same data"


def canonical_input(text: str, kind: str) -> str | None:
    """A canonical key for an input: RDKit canonical SMILES, or a sorted fractional composition."""
    text = (text or "").strip()
    if not text:
        return None
    if kind == "molecule":
        from rdkit import Chem, RDLogger

        RDLogger.DisableLog("rdApp.*")
        mol = Chem.MolFromSmiles(text)
        return Chem.MolToSmiles(mol) if mol is not None else None
    from matlib.descriptors import parse_formula

    try:
        amounts = parse_formula(text)
    except ValueError:
        return None
    total = sum(amounts.values())
    return "".join(f"{el}{amounts[el] / total:.6f}" for el in sorted(amounts))


def canonical_inputs(values: Sequence[str], kind: str) -> list[str | None]:
    """canonical_input for many values, computed once per distinct value."""
    table = {v: canonical_input(v, kind) for v in set(values)}
    return [table[v] for v in values]


def _norm(name: str) -> str:
    """A property/column name reduced to lowercase alphanumerics."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _source_keys(store: Store, dataset: str, version: str, kind: str, cache_dir: Path | None) -> pd.DataFrame:
    """Canonical keys of a source dataset's records (cached per dataset version) with its property columns."""
    from matlib.datasets import load_dataset

    ds = load_dataset(store, f"{dataset}@{version}")
    cache = cache_dir / f"{dataset}-{version}-{kind}.parquet" if cache_dir else None
    if cache is not None and cache.exists():
        keys = read_parquet(cache)["key"]
    else:
        keys = pd.Series(canonical_inputs(ds.records["input"].astype(str).tolist(), kind), name="key")
        if cache is not None:
            atomic_write_parquet(cache, keys.to_frame())
    props = [p for p in ds.manifest.get("properties", []) if p in ds.records.columns]
    out = ds.records[props].reset_index(drop=True).copy()
    out["key"] = keys.to_numpy()
    return out


def leakage_flags(catalog: pd.DataFrame, inputs: Sequence[str], y: np.ndarray, kind: str, target_column: str,
                  store: Store | None, target_dataset: str | None = None, max_overlap: float = 0.0,
                  cache_dir: Path | None = None) -> tuple[pd.DataFrame, list[str]]:
    """(model_id, leak, leak_reason, overlap) per catalog model, and notes on what could not be checked."""
    notes: list[str] = []
    keys = canonical_inputs(list(inputs), kind)
    target = pd.DataFrame({"key": keys, "y": np.asarray(y, dtype=np.float64)}).dropna(subset=["key"])
    tkeys = set(target["key"])
    reasons: dict[tuple, tuple[str, int]] = {}
    groups = catalog.groupby(["dataset", "dataset_version", "property"], sort=True)
    sources: dict[tuple, pd.DataFrame | None] = {}
    for (dataset, version, prop), _ in groups:
        why: list[str] = []
        if target_dataset and _norm(dataset) == _norm(target_dataset):
            why.append(f"same dataset {dataset!r}")
        if _norm(prop) == _norm(target_column):
            why.append(f"same property {prop!r}")
        overlap = 0
        if store is not None and (dataset, version) not in sources:
            try:
                sources[(dataset, version)] = _source_keys(store, dataset, version, kind, cache_dir)
            except (MatlibError, FileNotFoundError, KeyError) as exc:
                sources[(dataset, version)] = None
                notes.append(f"leakage: cannot read source dataset {dataset}@{version} ({exc}); input overlap unchecked")
        src = sources.get((dataset, version))
        if src is not None:
            hit = src[src["key"].isin(tkeys)]
            overlap = int(hit["key"].nunique())
            if overlap and prop in hit.columns:
                m = target.merge(hit[["key", prop]].dropna(), on="key")
                if len(m) >= MIN_MATCHES:
                    scale = max(1e-9, float(np.abs(m["y"]).max()))
                    if (np.abs(m["y"] - m[prop]) <= 1e-6 * scale).mean() >= 0.9:
                        why.append(f"trained on the target's own values ({len(m)} matching rows)")
            if overlap > max_overlap * max(1, len(tkeys)):
                why.append(f"trained on {overlap} of the target's {len(tkeys)} inputs")
        reasons[(dataset, version, prop)] = ("; ".join(why), overlap)
    rows = []
    for rec in catalog[["model_id", "dataset", "dataset_version", "property"]].itertuples(index=False):
        why, overlap = reasons[(rec.dataset, rec.dataset_version, rec.property)]
        rows.append((rec.model_id, bool(why), why, overlap))
    return pd.DataFrame(rows, columns=["model_id", "leak", "leak_reason", "overlap"]), notes
