"""Any OPTIMADE provider: /v1/structures paged by page_limit and links.next, explicit response_fields."""

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
RESPONSE_FIELDS = ("chemical_formula_reduced", "chemical_formula_descriptive", "nsites", *STRUCTURE_KEYS)


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


def property_map(value: Any) -> dict[str, str]:
    """options['properties'] as {provider field: column}: a mapping, a list, or one comma-separated string
    (a column is the field without its leading _<prefix>_)."""
    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    names = value.split(",") if isinstance(value, str) else list(value)
    return {n.strip(): re.sub(r"^_[a-z0-9]+_", "", n.strip()) for n in names if n.strip()}


class Optimade(PagedSource):
    """Structures from an OPTIMADE provider -> composition records (+ structure_json).

    Properties are only the fields asked for (options['properties']); they are requested explicitly with
    `response_fields`, so the columns never depend on what a page happens to contain. Every other provider
    field (`_<prefix>_...`, e.g. `_oqmd_entry_id`, `_oqmd_icsd_id`) is kept as metadata in `provider_json`."""

    name = "optimade"
    kind = "composition"
    default_url = ""
    default_properties: dict[str, str] = {}
    metadata_fields: tuple[str, ...] = ()
    more_key: str | None = "more_data_available"  # the specification's meta fields
    total_key: str | None = "data_returned"

    def dataset_name(self, url: str, options: dict) -> str:
        """optimade-<host>[-<port>] unless options['name'] is given."""
        if options.get("name"):
            return options["name"]
        p = urlparse(url)
        host = re.sub(r"[^a-z0-9]+", "-", (p.hostname or "provider").lower()).strip("-")
        return f"{self.name}-{host}" + (f"-{p.port}" if p.port else "")

    def properties(self, options: dict) -> dict[str, str]:
        """{provider field: property column} to request and keep."""
        return property_map(options.get("properties")) or dict(self.default_properties)

    def paginator(self, url: str, options: dict, config: CrawlConfig) -> NextLinkPager:
        """page_limit, response_fields (structure + formula + the asked-for properties), optional filter."""
        fields = [*RESPONSE_FIELDS, *self.metadata_fields, *self.properties(options)]
        params: dict[str, Any] = {"page_limit": config.page_size, "response_fields": ",".join(dict.fromkeys(fields))}
        if options.get("filter"):
            params["filter"] = options["filter"]
        return NextLinkPager(
            structures_endpoint(url), params, more_key=self.more_key, total_key=self.total_key, source=self.name
        )

    def record_key(self, record: Any) -> str | None:
        """The entry's id."""
        return str(record.get("id")) if isinstance(record, dict) and record.get("id") is not None else None

    def to_rows(self, records: list[dict], options: dict) -> Rows:
        """One row per structure: the asked-for properties as columns, other provider fields as metadata."""
        mapping = self.properties(options)
        rows, rejected = [], []
        for i, entry in enumerate(records):
            attrs = entry.get("attributes") if isinstance(entry, dict) else None
            rid = entry.get("id") if isinstance(entry, dict) else None
            if not rid or not isinstance(attrs, dict):
                rejected.append(
                    reject(i, rid or f"#{i}", "attributes" if rid else "id", "entry without id or attributes", entry)
                )
                continue
            row = {
                "_row": i,
                "record_id": str(rid),
                "input": formula_of(attrs),
                "structure_json": json.dumps({k: attrs.get(k) for k in STRUCTURE_KEYS if k in attrs}, sort_keys=True),
                "nsites": attrs.get("nsites"),
            }
            provider = {k: v for k, v in attrs.items() if k.startswith("_") and k not in mapping}
            row["provider_json"] = json.dumps(provider, sort_keys=True, default=str) if provider else None
            for field_name, column in mapping.items():
                row[column] = attrs.get(field_name)
            rows.append(row)
        base = ["_row", "record_id", "input", "structure_json", "nsites", "provider_json"]
        frame = pd.DataFrame(rows, columns=[*base, *mapping.values()])
        frame["nsites"] = pd.to_numeric(frame["nsites"], errors="coerce").astype("Int64")
        return Rows(
            frame,
            list(mapping.values()),
            ["structure_json", "nsites", "provider_json"],
            pd.DataFrame(rejected) if rejected else empty_quarantine(),
        )
