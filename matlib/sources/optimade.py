"""Any OPTIMADE provider: /v1/structures paged by page_limit and links.next."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any
from urllib.parse import urlparse

import pandas as pd

from matlib.datasets.schema import empty_quarantine
from matlib.sources.base import PagedSource, Rows, reject
from matlib.sources.crawl import CrawlConfig
from matlib.sources.paging import NextLinkPager

STRUCTURE_KEYS = ("lattice_vectors", "cartesian_site_positions", "species_at_sites", "species", "dimension_types")


def structures_endpoint(url: str) -> str:
    """The structures endpoint of a base URL (…/structures, …/v1 or a provider root)."""
    url = url.rstrip("/")
    if url.endswith("/structures"):
        return url
    return f"{url}/structures" if re.search(r"/v\d+(\.\d+)*$", url) else f"{url}/v1/structures"


def formula_of(attrs: dict) -> str | None:
    """chemical_formula_reduced, else descriptive, else built from species_at_sites."""
    for key in ("chemical_formula_reduced", "chemical_formula_descriptive"):
        if attrs.get(key):
            return str(attrs[key]).replace(" ", "")
    sites = attrs.get("species_at_sites")
    if sites:
        counts = Counter(sites)
        return "".join(f"{el}{n if n > 1 else ''}" for el, n in counts.items())
    return None


def _is_number(v: Any) -> bool:
    """A real number (not bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Optimade(PagedSource):
    """Structures from an OPTIMADE provider -> composition records (+ structure_json)."""

    name = "optimade"
    kind = "composition"
    default_url = ""

    def dataset_name(self, url: str, options: dict) -> str:
        """optimade-<host>[-<port>] unless options['name'] is given."""
        if options.get("name"):
            return options["name"]
        p = urlparse(url)
        host = re.sub(r"[^a-z0-9]+", "-", (p.hostname or "provider").lower()).strip("-")
        return f"{self.name}-{host}" + (f"-{p.port}" if p.port else "")

    def paginator(self, url: str, options: dict, config: CrawlConfig) -> NextLinkPager:
        """page_limit (+ optional filter / response_fields)."""
        params: dict[str, Any] = {"page_limit": config.page_size}
        for key in ("filter", "response_fields"):
            if options.get(key):
                params[key] = options[key]
        return NextLinkPager(structures_endpoint(url), params)

    def to_rows(self, records: list[dict], options: dict) -> Rows:
        """One row per structure; numeric provider fields (_prefix_name) become properties."""
        mapping: dict[str, str] = dict(options.get("properties") or {})
        rows, rejected = [], []
        for i, entry in enumerate(records):
            attrs = entry.get("attributes") if isinstance(entry, dict) else None
            rid = entry.get("id") if isinstance(entry, dict) else None
            if not rid or not isinstance(attrs, dict):
                rejected.append(reject(i, rid or f"#{i}", "attributes" if rid else "id",
                                       "entry without id or attributes", entry))
                continue
            row = {"_row": i, "record_id": str(rid), "input": formula_of(attrs),
                   "structure_json": json.dumps({k: attrs.get(k) for k in STRUCTURE_KEYS if k in attrs},
                                                sort_keys=True),
                   "nsites": attrs.get("nsites")}
            for key, value in attrs.items():
                if key in mapping:
                    row[mapping[key]] = value
                elif not mapping and key.startswith("_") and (_is_number(value) or value is None):
                    row[key.lstrip("_")] = value
            rows.append(row)
        frame = pd.DataFrame(rows)
        base = {"_row", "record_id", "input", "structure_json", "nsites"}
        props = [c for c in frame.columns if c not in base]
        # a provider column holding text is metadata, not a property (mapped columns are validated instead)
        props = [c for c in props if mapping or frame[c].map(lambda v: v is None or _is_number(v)).all()]
        if "nsites" in frame:
            frame["nsites"] = pd.to_numeric(frame["nsites"], errors="coerce").astype("Int64")
        if frame.empty:
            frame = pd.DataFrame(columns=sorted(base))
        return Rows(frame, props, ["structure_json", "nsites"],
                    pd.DataFrame(rejected) if rejected else empty_quarantine())
