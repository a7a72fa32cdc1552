"""Materials Project: REST API /materials/summary/ with the X-API-KEY header, sorted by material_id."""

from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd

from matlib.datasets.schema import empty_quarantine
from matlib.errors import MatlibError
from matlib.sources.base import PagedSource, Rows, as_float, field_list, reject
from matlib.sources.crawl import CrawlConfig
from matlib.sources.paging import SkipLimitPager

DEFAULT_FIELDS = [
    "material_id",
    "formula_pretty",
    "structure",
    "formation_energy_per_atom",
    "band_gap",
    "energy_above_hull",
    "density",
    "total_magnetization",
    "bulk_modulus",
    "shear_modulus",
    "universal_anisotropy",
    "n",
]
META_FIELDS = {"material_id", "formula_pretty", "structure"}
MODULUS_FIELDS = {"bulk_modulus", "shear_modulus"}  # {"voigt", "reuss", "vrh"} objects in GPa
SORT_FIELD = "material_id"  # offset paging needs a fixed order (maggma SortQuery: `_sort_fields`)

# The documented fields of a summary document (emmet-core SummaryDoc and its PropertyDoc base). The server
# ignores unknown names in `_fields` silently (they would come back as all-NaN columns), so they are refused here.
SUMMARY_FIELDS = frozenset(
    """
material_id formula_pretty formula_anonymous chemsys composition composition_reduced elements nelements nsites
volume density density_atomic symmetry structure deprecated deprecation_reasons last_updated origins warnings
task_ids builder_meta property_name theoretical database_IDs has_props possible_species
uncorrected_energy_per_atom energy_per_atom formation_energy_per_atom energy_above_hull is_stable
equilibrium_reaction_energy_per_atom decomposes_to xas grain_boundaries band_gap cbm vbm efermi is_gap_direct
is_metal es_source_calc_id bandstructure dos dos_energy_up dos_energy_down is_magnetic ordering
total_magnetization total_magnetization_normalized_vol total_magnetization_normalized_formula_units
num_magnetic_sites num_unique_magnetic_sites types_of_magnetic_species bulk_modulus shear_modulus
universal_anisotropy homogeneous_poisson e_total e_ionic e_electronic n e_ij_max weighted_surface_energy
weighted_surface_energy_EV_PER_ANG2 weighted_work_function surface_anisotropy shape_factor has_reconstructed
""".split()
)


def api_key(options: dict) -> str | None:
    """The MP key from options['api_key'] or $MP_API_KEY; a one-line error if neither is set (not needed when
    reading a mirror)."""
    key = options.get("api_key") or os.environ.get("MP_API_KEY")
    if not key and not options.get("mirror"):
        raise MatlibError("Materials Project needs an API key: set MP_API_KEY (or the 'mp-api-key' Prefect Secret)")
    return key or None


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
        """Fields to request (options['fields'] as a list or one comma-separated string)."""
        return list(
            dict.fromkeys(["material_id", "formula_pretty", *field_list(options.get("fields"), DEFAULT_FIELDS)])
        )

    def check_options(self, options: dict) -> None:
        """Unknown summary fields are refused before crawling (the server would ignore them silently)."""
        unknown = [f for f in self.fields(options) if f not in SUMMARY_FIELDS]
        if unknown:
            raise MatlibError(
                f"mp: unknown summary field(s) {', '.join(map(repr, unknown))}; the MP API would ignore "
                f"them and return empty columns (see the summary document's fields)"
            )

    def headers(self, options: dict) -> tuple[dict[str, str], list[str]]:
        """X-API-KEY (redacted everywhere)."""
        key = api_key(options)
        return ({"X-API-KEY": key}, [key]) if key else ({}, [])

    def paginator(self, url: str, options: dict, config: CrawlConfig) -> SkipLimitPager:
        """/materials/summary/ with _fields, _sort_fields=material_id, _limit, _skip."""
        endpoint = url if url.endswith("/materials/summary") else f"{url}/materials/summary"
        return SkipLimitPager(
            endpoint + "/", {"_fields": ",".join(self.fields(options)), "_sort_fields": SORT_FIELD}, config.page_size
        )

    def record_key(self, record: Any) -> str | None:
        """material_id."""
        return str(record.get("material_id")) if isinstance(record, dict) and record.get("material_id") else None

    def to_rows(self, records: list[dict], options: dict) -> Rows:
        """One row per summary document."""
        props = [f for f in self.fields(options) if f not in META_FIELDS]
        rows, rejected = [], []
        for i, doc in enumerate(records):
            if not isinstance(doc, dict) or not doc.get("material_id"):
                rejected.append(
                    reject(
                        i,
                        (doc or {}).get("material_id", f"#{i}") if isinstance(doc, dict) else f"#{i}",
                        "material_id",
                        "document without material_id",
                        doc,
                    )
                )
                continue
            row = {
                "_row": i,
                "record_id": str(doc["material_id"]),
                "input": doc.get("formula_pretty"),
                "structure_json": json.dumps(doc["structure"], sort_keys=True) if doc.get("structure") else None,
            }
            for p in props:
                row.update(_flatten(p, doc.get(p)))
            rows.append(row)
        frame = pd.DataFrame(rows)
        prop_cols = [c for c in frame.columns if c not in ("_row", "record_id", "input", "structure_json")]
        if frame.empty:
            frame = pd.DataFrame(columns=["_row", "record_id", "input", "structure_json"])
        return Rows(frame, prop_cols, ["structure_json"], pd.DataFrame(rejected) if rejected else empty_quarantine())
