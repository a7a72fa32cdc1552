"""Materials Project: REST API v2 /materials/summary/ with the X-API-KEY header."""

from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd

from matlib.datasets.schema import empty_quarantine
from matlib.errors import MatlibError
from matlib.sources.base import PagedSource, Rows, as_float, reject
from matlib.sources.crawl import CrawlConfig
from matlib.sources.paging import SkipLimitPager

DEFAULT_FIELDS = ["material_id", "formula_pretty", "structure", "formation_energy_per_atom", "band_gap",
                  "energy_above_hull", "density", "total_magnetization", "bulk_modulus", "shear_modulus"]
META_FIELDS = {"material_id", "formula_pretty", "structure"}
MODULUS_FIELDS = {"bulk_modulus", "shear_modulus"}  # {"voigt", "reuss", "vrh"} objects in GPa


def api_key(options: dict) -> str:
    """The MP key from options['api_key'] or $MP_API_KEY; a one-line error if neither is set."""
    key = options.get("api_key") or os.environ.get("MP_API_KEY")
    if not key:
        raise MatlibError("Materials Project needs an API key: set MP_API_KEY (or the 'mp-api-key' Prefect Secret)")
    return key


def _flatten(name: str, value: Any) -> dict[str, Any]:
    """A field as property columns: dicts with 'vrh' (moduli) become <name>_vrh."""
    if name in MODULUS_FIELDS or isinstance(value, dict):
        return {f"{name}_vrh": as_float(value.get("vrh") if isinstance(value, dict) else value)}
    return {name: as_float(value)}


class MaterialsProject(PagedSource):
    """Materials Project summary documents -> composition records with MP properties."""

    name = "mp"
    kind = "composition"
    default_url = "https://api.materialsproject.org"

    def fields(self, options: dict) -> list[str]:
        """Fields to request (configurable: options['fields'] as a list or comma-separated text)."""
        f = options.get("fields") or DEFAULT_FIELDS
        f = [x.strip() for x in f.split(",")] if isinstance(f, str) else list(f)
        return list(dict.fromkeys(["material_id", "formula_pretty", *f]))

    def headers(self, options: dict) -> tuple[dict[str, str], list[str]]:
        """X-API-KEY (redacted everywhere)."""
        key = api_key(options)
        return {"X-API-KEY": key}, [key]

    def paginator(self, url: str, options: dict, config: CrawlConfig) -> SkipLimitPager:
        """/materials/summary/ with _fields, _limit, _skip."""
        endpoint = url if url.endswith("/materials/summary") else f"{url}/materials/summary"
        return SkipLimitPager(endpoint + "/", {"_fields": ",".join(self.fields(options))}, config.page_size)

    def to_rows(self, records: list[dict], options: dict) -> Rows:
        """One row per summary document."""
        props = [f for f in self.fields(options) if f not in META_FIELDS]
        rows, rejected = [], []
        for i, doc in enumerate(records):
            if not isinstance(doc, dict) or not doc.get("material_id"):
                rejected.append(reject(i, (doc or {}).get("material_id", f"#{i}") if isinstance(doc, dict) else f"#{i}",
                                       "material_id", "document without material_id", doc))
                continue
            row = {"_row": i, "record_id": str(doc["material_id"]), "input": doc.get("formula_pretty"),
                   "structure_json": json.dumps(doc["structure"], sort_keys=True) if doc.get("structure") else None}
            for p in props:
                row.update(_flatten(p, doc.get(p)))
            rows.append(row)
        frame = pd.DataFrame(rows)
        prop_cols = [c for c in frame.columns if c not in ("_row", "record_id", "input", "structure_json")]
        if frame.empty:
            frame = pd.DataFrame(columns=["_row", "record_id", "input", "structure_json"])
        return Rows(frame, prop_cols, ["structure_json"],
                    pd.DataFrame(rejected) if rejected else empty_quarantine())
