"""Model library: safetensors shards, catalog, query, load by id, integrity, build from config."""

from matlib.library.build import build_library
from matlib.library.catalog import COLUMNS, filter_catalog
from matlib.library.features import shard_hidden_features, shard_predict
from matlib.library.library import Library
from matlib.library.shard import Shard, read_shard, write_shard
from matlib.library.summary import build_summary

__all__ = [
    "COLUMNS",
    "Library",
    "Shard",
    "build_library",
    "build_summary",
    "filter_catalog",
    "read_shard",
    "shard_hidden_features",
    "shard_predict",
    "write_shard",
]
