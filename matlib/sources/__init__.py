"""Data sources on one crawl mechanism: Materials Project, OQMD (REST, OPTIMADE), AFLOW (AFLUX), QM9, any OPTIMADE,
local tables; any of them can be read from an offline mirror (matlib.sources.mirror)."""

from __future__ import annotations

from typing import Any

from matlib.datasets.versions import Dataset
from matlib.errors import MatlibError
from matlib.sources.aflow import Aflow
from matlib.sources.base import PagedSource, refresh_source
from matlib.sources.local import refresh_local
from matlib.sources.mirror import resolve_mirror
from matlib.sources.mp import MaterialsProject
from matlib.sources.optimade import Optimade
from matlib.sources.oqmd import OqmdOptimade, OqmdRest
from matlib.sources.qm9 import Qm9
from matlib.store import Store

SOURCES: dict[str, PagedSource] = {
    s.name: s for s in (MaterialsProject(), OqmdRest(), OqmdOptimade(), Aflow(), Qm9(), Optimade())
}
NAMES = ("mp", "oqmd", "aflow", "qm9", "optimade", "local")


def get_source(name: str, options: dict | None = None) -> PagedSource:
    """The registered source for a name ('oqmd' with api='optimade' is the OQMD OPTIMADE endpoint)."""
    options = options or {}
    if name == "oqmd" and options.get("api") == "optimade":
        name = "oqmd-optimade"
    if name not in SOURCES:
        raise MatlibError(f"unknown source {name!r}; choose one of {', '.join(NAMES)}")
    return SOURCES[name]


def refresh(
    store: Store,
    source: str,
    url: str | None = None,
    limit: int | None = None,
    mirror: str | None = None,
    **options: Any,
) -> Dataset:
    """Fetch a source (resuming an interrupted crawl), validate, and commit a new dataset version with its diff.

    mirror: a mirror folder or URL (default $MATLIB_MIRROR) answering instead of the real service."""
    if source == "local":
        return refresh_local(store, url, limit, options)
    return refresh_source(store, get_source(source, options), url, limit, options, resolve_mirror(mirror))


__all__ = ["NAMES", "SOURCES", "get_source", "refresh"]
