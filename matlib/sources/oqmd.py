"""OQMD: the REST API (oqmdapi/formationenergy, limit/offset, links.next) or its OPTIMADE endpoint.

The REST API offers no order by entry id (qmpy's `sort_by` knows only stability and delta_e, applied with its own
`sort_offset`), so offset paging cannot be pinned to an order there: the crawl instead refuses a listing whose
total moved or whose ids repeat across pages (see base.check_listing)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from matlib.datasets.schema import empty_quarantine
from matlib.sources.base import PagedSource, Rows, as_float, field_list, reject
from matlib.sources.crawl import CrawlConfig
from matlib.sources.optimade import Optimade
from matlib.sources.paging import NextLinkPager

DEFAULT_FIELDS = ["name", "entry_id", "delta_e", "band_gap", "stability", "volume", "natoms", "spacegroup"]
NUMERIC_FIELDS = ("delta_e", "band_gap", "stability", "volume")
OPTIMADE_URL = "https://oqmd.org/optimade"


class OqmdRest(PagedSource):
    """OQMD formation-energy entries -> composition records (delta_e, band_gap, stability, volume)."""

    name = "oqmd"
    kind = "composition"
    default_url = "https://oqmd.org"

    def paginator(self, url: str, options: dict, config: CrawlConfig) -> NextLinkPager:
        """/oqmdapi/formationenergy?fields=...&limit=N&offset=0 then links.next."""
        endpoint = url if url.endswith("/formationenergy") else f"{url}/oqmdapi/formationenergy"
        fields = field_list(options.get("fields"), DEFAULT_FIELDS)
        fields = list(dict.fromkeys(["name", "entry_id", *fields]))
        params = {"fields": ",".join(fields), "limit": config.page_size, "offset": 0}
        if options.get("filter"):
            params["filter"] = options["filter"]
        # qmpy sets meta.more_data_available whenever a previous link exists, so only data_available is used
        return NextLinkPager(endpoint, params, more_key=None, total_key="data_available", source=self.name)

    def record_key(self, record: Any) -> str | None:
        """entry_id."""
        return str(record.get("entry_id")) if isinstance(record, dict) and record.get("entry_id") is not None else None

    def to_rows(self, records: list[dict], options: dict) -> Rows:
        """One row per entry; record_id oqmd-<entry_id>."""
        rows, rejected = [], []
        for i, e in enumerate(records):
            if not isinstance(e, dict) or e.get("entry_id") is None:
                rejected.append(reject(i, f"#{i}", "entry_id", "entry without entry_id", e))
                continue
            row = {
                "_row": i,
                "record_id": f"oqmd-{e['entry_id']}",
                "input": e.get("name"),
                "spacegroup": None if e.get("spacegroup") is None else str(e.get("spacegroup")),
            }
            for f in NUMERIC_FIELDS:
                if f in e:
                    row[f] = as_float(e.get(f))
            rows.append(row)
        frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["_row", "record_id", "input", "spacegroup"])
        props = [f for f in NUMERIC_FIELDS if f in frame.columns]
        return Rows(frame, props, ["spacegroup"], pd.DataFrame(rejected) if rejected else empty_quarantine())


class OqmdOptimade(Optimade):
    """OQMD through its OPTIMADE endpoint (dataset 'oqmd-optimade')."""

    name = "oqmd-optimade"
    default_url = OPTIMADE_URL
    # OQMD's provider fields (prefix _oqmd_): these three are properties; ids stay metadata (provider_json)
    default_properties = {"_oqmd_delta_e": "delta_e", "_oqmd_band_gap": "band_gap", "_oqmd_stability": "stability"}
    metadata_fields = ("_oqmd_entry_id", "_oqmd_icsd_id", "_oqmd_prototype", "_oqmd_spacegroup")
    # qmpy's envelope: data_returned is the page's count, data_available the query's, and more_data_available is
    # true whenever a previous link exists (so also on the last page): only data_available is trusted
    more_key = None
    total_key = "data_available"

    def dataset_name(self, url: str, options: dict) -> str:
        """'oqmd-optimade' unless options['name'] is given."""
        return options.get("name") or self.name
