"""AFLOW through its search API AFLUX: `?auid,compound,<keywords>,$paging(n,k),$format(json)`.

AFLUX sorts by the first keyword of the matchbook, so it starts with the unique `auid`: offset paging then has a
fixed order. The keywords are AFLOW's own names (band gap `Egap` eV, `energy_atom` eV/atom, AEL bulk/shear modulus
`ael_bulk_modulus_vrh`/`ael_shear_modulus_vrh` GPa, `ael_debye_temperature` K, `agl_thermal_conductivity_300K`
W/(m K)) and are the dataset's property columns."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from matlib.datasets.schema import empty_quarantine
from matlib.errors import MatlibError
from matlib.sources.base import PagedSource, Rows, as_float, field_list, reject
from matlib.sources.crawl import CrawlConfig
from matlib.sources.paging import AfluxPager

DEFAULT_KEYWORDS = [
    "Egap",
    "energy_atom",
    "ael_bulk_modulus_vrh",
    "ael_shear_modulus_vrh",
    "ael_debye_temperature",
    "agl_thermal_conductivity_300K",
]
META_KEYWORDS = ["auid", "compound"]
_KEYWORD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class Aflow(PagedSource):
    """AFLOW entries (AFLUX) -> composition records keyed by auid."""

    name = "aflow"
    kind = "composition"
    default_url = "https://aflow.org/API/aflux/v1.0"

    def keywords(self, options: dict) -> list[str]:
        """Property keywords (options['fields'] as a list or one comma-separated string)."""
        return [k for k in field_list(options.get("fields"), DEFAULT_KEYWORDS) if k not in META_KEYWORDS]

    def check_options(self, options: dict) -> None:
        """Keywords are plain names (AFLUX operators belong in options['filter'])."""
        bad = [k for k in self.keywords(options) if not _KEYWORD.match(k)]
        if bad:
            raise MatlibError(f"aflow: {bad[0]!r} is not an AFLUX keyword name (put AFLUX conditions in --filter)")

    def paginator(self, url: str, options: dict, config: CrawlConfig) -> AfluxPager:
        """auid first (the sort key), then compound and the keywords, then an optional AFLUX filter."""
        parts = [*META_KEYWORDS, *self.keywords(options)]
        if options.get("filter"):
            parts.append(str(options["filter"]))
        return AfluxPager(url.rstrip("/") + "/", ",".join(parts), config.page_size)

    def record_key(self, record: Any) -> str | None:
        """auid."""
        return str(record.get("auid")) if isinstance(record, dict) and record.get("auid") else None

    def to_rows(self, records: list[dict], options: dict) -> Rows:
        """One row per entry: record_id = auid, input = compound (e.g. 'Ba1I2O6')."""
        props = self.keywords(options)
        rows, rejected = [], []
        for i, e in enumerate(records):
            if not isinstance(e, dict) or not e.get("auid"):
                rejected.append(reject(i, f"#{i}", "auid", "entry without auid", e))
                continue
            row = {
                "_row": i,
                "record_id": str(e["auid"]),
                "input": e.get("compound"),
                "aurl": None if e.get("aurl") is None else str(e["aurl"]),
            }
            for p in props:
                row[p] = as_float(e.get(p))
            rows.append(row)
        frame = pd.DataFrame(rows, columns=["_row", "record_id", "input", "aurl", *props])
        return Rows(frame, props, ["aurl"], pd.DataFrame(rejected) if rejected else empty_quarantine())
