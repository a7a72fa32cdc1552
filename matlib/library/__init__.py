"""Model library: safetensors shards, catalog, query, load by id, integrity, build from config."""

from matlib.library.catalog import COLUMNS, filter_catalog
from matlib.library.features import shard_hidden_features, shard_predict
from matlib.library.library import Library
from matlib.library.shard import Shard, read_shard, write_shard


def build_library(store, config):  # noqa: ANN001, ANN201 - re-exported lazily to keep imports light
    """Build (or resume) the library described by config in store; returns its directory."""
    from matlib.library.build import build_library as _build

    return _build(store, config)


__all__ = ["COLUMNS", "Library", "Shard", "build_library", "filter_catalog", "read_shard", "shard_hidden_features",
           "shard_predict", "write_shard"]
