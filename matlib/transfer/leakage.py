"""Leakage guard: flag source models trained on the target's own data, property or inputs (by input fingerprints)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from matlib.atomic import atomic_write_parquet, read_parquet
from matlib.errors import MatlibError
from matlib.library.fingerprints import (
    canonical_input,
    canonical_inputs,
    key_hashes,
    read_source_fingerprints,
    record_fingerprints,
)
from matlib.store import Store

__all__ = ["canonical_input", "canonical_inputs", "leakage_flags", "source_table"]

MIN_MATCHES = 3  # overlapping rows needed before a value match counts as "same data"


def _norm(name: str) -> str:
    """A property/column name reduced to lowercase alphanumerics."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _store_fingerprints(
    store: Store, dataset: str, version: str, properties: list[str], kind: str, cache_dir: Path | None
) -> pd.DataFrame:
    """Fingerprints of a source dataset read from the store (for a library built before they were recorded)."""
    from matlib.datasets import load_dataset

    ds = load_dataset(store, f"{dataset}@{version}")
    cache = cache_dir / f"{dataset}-{version}-fp.parquet" if cache_dir else None
    if cache is not None and cache.exists():
        return read_parquet(cache)
    table = record_fingerprints(ds.records, {p: p for p in properties}, kind)
    if cache is not None:
        atomic_write_parquet(cache, table)
    return table


def source_table(
    library,
    store: Store | None,
    dataset: str,
    version: str,
    properties: list[str],
    kind: str,
    cache_dir: Path | None = None,
) -> tuple[pd.DataFrame | None, str]:
    """(fingerprints + property values, where they came from) of a source dataset version: the library's own
    record first, then the store; (None, why not) when neither has it."""
    ref = f"{dataset}@{version}"
    record = (getattr(library, "manifest", None) or {}).get("sources", {}).get(ref) if library is not None else None
    if record is not None:
        return read_source_fingerprints(library.path, record, ref), "library"
    if store is None:
        return None, f"the library records no fingerprints of {ref} and no store was given"
    try:
        return _store_fingerprints(store, dataset, version, properties, kind, cache_dir), "store"
    except (MatlibError, FileNotFoundError, KeyError) as exc:
        return None, (
            f"the library records no fingerprints of {ref} and the store {store.root} cannot give them "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        )


def _overlap_reasons(
    src: pd.DataFrame, prop: str, target: pd.DataFrame, tkeys: set, max_overlap: float, why: list[str]
) -> int:
    """How many of the target's inputs the source dataset's models of prop trained on (the records with a value of
    prop; every record when the fingerprints lack it); appends to why when too many, or the target's own values."""
    hit = src[src["key"].isin(tkeys)]
    if prop in hit.columns:  # only the records the property's models trained on (those with its value)
        hit = hit[hit[prop].notna()]
    overlap = int(hit["key"].nunique())
    if overlap and prop in hit.columns:
        m = target.merge(hit[["key", prop]].dropna(), on="key")
        if len(m) >= MIN_MATCHES:
            scale = max(1e-9, float(np.abs(m["y"]).max()))
            if (np.abs(m["y"] - m[prop]) <= 1e-6 * scale).mean() >= 0.9:
                why.append(f"trained on the target's own values ({len(m)} matching rows)")
    if overlap > max_overlap * max(1, len(tkeys)):
        why.append(f"trained on {overlap} of the target's {len(tkeys)} inputs")
    return overlap


def leakage_flags(
    catalog: pd.DataFrame,
    inputs: Sequence[str],
    y: np.ndarray,
    kind: str,
    target_column: str,
    store: Store | None,
    target_dataset: str | Sequence[str] | None = None,
    max_overlap: float = 0.0,
    cache_dir: Path | None = None,
    library=None,
) -> tuple[pd.DataFrame, list[str]]:
    """(model_id, leak, leak_reason, overlap) per catalog model, and notes.

    Input overlap is checked against the fingerprints the library records of its source datasets (else the store's
    datasets). A source whose inputs cannot be checked is never silently passed: its models are flagged as
    unverifiable (left out unless leakage is allowed) and a note says why. target_dataset: the library dataset(s)
    that hold the target's own property (one name or several, e.g. the same property from two codes): left out.
    """
    notes: list[str] = []
    own = {_norm(d) for d in ([target_dataset] if isinstance(target_dataset, str) else target_dataset or ())}
    keys = key_hashes(canonical_inputs(list(inputs), kind))
    target = pd.DataFrame({"key": keys, "y": np.asarray(y, dtype=np.float64)})
    target = target[target["key"] != 0]
    tkeys = set(target["key"])
    reasons: dict[tuple, tuple[str, int]] = {}
    props_of = catalog.groupby(["dataset", "dataset_version"])["property"].agg(lambda s: sorted(set(map(str, s))))
    props: dict[Any, list[str]] = props_of.to_dict()
    sources: dict[tuple, pd.DataFrame | None] = {}
    for group_key, _ in catalog.groupby(["dataset", "dataset_version", "property"], sort=True):
        dataset, version, prop = cast(tuple[str, str, str], group_key)
        if (dataset, version) not in sources:
            table, origin = source_table(library, store, dataset, version, props[(dataset, version)], kind, cache_dir)
            sources[(dataset, version)] = table
            if table is None:
                notes.append(
                    f"leakage guard: input overlap with {dataset}@{version} cannot be checked ({origin}); "
                    "its models are flagged as unverifiable"
                )
        why = [f"same dataset {dataset!r}"] if _norm(dataset) in own else []
        if _norm(prop) == _norm(target_column):
            why.append(f"same property {prop!r}")
        src = sources[(dataset, version)]
        if src is None:
            why.append(f"input overlap with {dataset}@{version} unverifiable")
            overlap = 0
        else:
            overlap = _overlap_reasons(src, prop, target, tkeys, max_overlap, why)
        reasons[(dataset, version, prop)] = ("; ".join(why), overlap)
    rows = []
    for rec in catalog[["model_id", "dataset", "dataset_version", "property"]].itertuples(index=False):
        reason, overlap = reasons[(rec.dataset, rec.dataset_version, rec.property)]
        rows.append((rec.model_id, bool(reason), reason, overlap))
    return pd.DataFrame(rows, columns=["model_id", "leak", "leak_reason", "overlap"]), notes
