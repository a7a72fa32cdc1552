"""Library build config (YAML): sources x properties x descriptors x models x architecture space x training.

`load_config` reads the YAML (or a dict) into a typed `LibraryConfig` (pydantic): unknown keys, missing keys and
values of the wrong type are one-line `ValidationError`s naming where (`library config groups[1]: ...`). Groups are
`MLPGroup`s, or `GNNGroup`s (`model: gnn`, keys checked by `_gnn_group`; what they mean: `matlib.library.gnn_plan`).
`to_dict()` is the normalised plain form the library manifest records (and hashes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from matlib.errors import ValidationError
from matlib.graphs.spec import GraphSpec
from matlib.models.arch import resolve_space
from matlib.models.config import TrainConfig
from matlib.models.gnn import resolve_gnn_space
from matlib.models.gnn_batched import GNNTrainConfig

SECRET_KEYS = {"api_key", "token", "password"}


class _Record(BaseModel):
    """A checked config record: unknown keys refused, fields immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TableImport(_Record):
    """A group's local table (`import:`), its path made absolute against the config's folder."""

    file: str
    input_column: str
    target_columns: list[str] | str
    kind: str | None = None
    id_column: str | None = None
    duplicates: str | None = None
    sample_rows: int | None = None

    def options(self) -> dict[str, Any]:
        """The keyword options given for `import_table` (kind, id_column, duplicates), as written."""
        return {
            k: v for k, v in self.model_dump(exclude_unset=True).items() if k in ("kind", "id_column", "duplicates")
        }


class _Group(_Record):
    """What every group has: the dataset (from the store, an `import:` table or a crawl) and its properties."""

    dataset: str
    properties: list[str]
    models_per_property: int
    max_rows: int | None = None
    architecture: dict[str, Any]
    training: dict[str, Any]
    import_: TableImport | None = Field(default=None, alias="import")
    refresh: dict[str, Any] | None = None
    property_names: dict[str, str] = {}

    @field_serializer("import_")
    def _import_as_written(self, imp: TableImport | None) -> dict[str, Any] | None:
        return imp.model_dump(exclude_unset=True) if imp is not None else None


class MLPGroup(_Group):
    """A group of MLPs: one training table per (descriptor, property), `models_per_property` models on each."""

    model: Literal["mlp"] = Field(default="mlp", exclude=True)
    descriptors: list[dict[str, Any]]


class GNNGroup(_Group):
    """A group of graph networks on the dataset's graphs (see `matlib.library.gnn_plan`)."""

    model: Literal["gnn"] = "gnn"
    graph: dict[str, Any]
    family_size: int
    multi_task: bool = False


Group = MLPGroup | GNNGroup


class LibraryConfig(_Record):
    """A whole build config, checked and normalised (group paths absolute, defaults filled in)."""

    name: str
    seed: int = 0
    shard_size: int = Field(default=64, ge=1)
    family_size: int = Field(default=64, ge=1)
    architecture: dict[str, Any] = {}
    training: dict[str, Any]
    groups: list[Group] = Field(min_length=1)

    def to_dict(self) -> dict[str, Any]:
        """The normalised plain form (JSON types, `import` under its YAML name)."""
        return self.model_dump(by_alias=True)


def load_config(config: str | Path | dict[str, Any] | LibraryConfig) -> LibraryConfig:
    """A validated, normalised build config from a YAML path, a dict, or a config (paths made absolute)."""
    if isinstance(config, LibraryConfig):
        return config
    raw, base = _read(config)
    if not isinstance(raw, dict):
        raise ValidationError("library config: top level must be a mapping")
    _check_keys(raw, set(LibraryConfig.model_fields), ("name", "groups"), "library config")
    top: dict[str, Any] = {
        "name": str(raw["name"]),
        "seed": _int(raw.get("seed", 0), "library config: seed"),
        "shard_size": _int(raw.get("shard_size", 64), "library config: shard_size"),
        "family_size": _int(raw.get("family_size", raw.get("shard_size", 64)), "library config: family_size"),
        "architecture": dict(raw.get("architecture") or {}),
        "training": TrainConfig.from_dict(raw.get("training")).to_dict(),
    }
    if top["shard_size"] < 1 or top["family_size"] < 1:
        raise ValidationError("library config: shard_size and family_size must be >= 1")
    resolve_space(top["architecture"])
    if not isinstance(raw["groups"], list) or not raw["groups"]:
        raise ValidationError("library config: 'groups' must be a non-empty list")
    groups = [_group(g, i, base, top) for i, g in enumerate(raw["groups"])]
    return _checked(LibraryConfig, {**top, "groups": groups}, "library config")


def _read(config: str | Path | dict[str, Any]) -> tuple[Any, Path]:
    """(raw config, folder relative paths are resolved against) of a YAML path or a dict."""
    if not isinstance(config, (str, Path)):
        return config, Path.cwd()
    path = Path(config)
    if not path.exists():
        raise ValidationError(f"library config {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValidationError(f"library config {path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    return raw, path.resolve().parent


def _checked(model: type[_Record], values: dict[str, Any], where: str) -> Any:
    """model(**values), a pydantic error turned into one line naming the field."""
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(part) for part in err["loc"])
        raise ValidationError(f"{where}: {field}: {err['msg']}") from None


def _int(value: Any, where: str) -> int:
    """An integer setting (a one-line error for anything else)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{where} must be an integer, got {value!r}") from None


def _known(d: dict[str, Any], keys: set[str], where: str) -> None:
    """Reject unknown keys with a one-line error."""
    unknown = sorted(set(d) - keys)
    if unknown:
        raise ValidationError(f"{where}: unknown keys {unknown} (known: {sorted(keys)})")


def _check_keys(d: dict[str, Any], known: set[str], required: tuple[str, ...], where: str) -> None:
    """Unknown keys, then the first missing required key, as one-line errors."""
    _known(d, known, where)
    for key in required:
        if key not in d:
            raise ValidationError(f"{where}: missing required key {key!r}")


MLP_KEYS = {"model", "dataset", "import", "refresh", "descriptors", "properties", "property_names"}
MLP_KEYS |= {"models_per_property", "max_rows", "architecture", "training"}


def _group(g: Any, i: int, base: Path, top: dict[str, Any]) -> Group:
    """One normalised group entry."""
    where = f"library config groups[{i}]"
    if not isinstance(g, dict):
        raise ValidationError(f"{where}: must be a mapping")
    if g.get("model", "mlp") not in ("mlp", "gnn"):
        raise ValidationError(f"{where}: unknown model {g['model']!r} (known: mlp, gnn)")
    if g.get("model") == "gnn":
        return _checked(GNNGroup, _gnn_group(g, i, base, top), where)
    _check_keys(g, MLP_KEYS, ("dataset", "descriptors", "properties"), where)
    descs = g["descriptors"] if isinstance(g["descriptors"], list) else [g["descriptors"]]
    props = g["properties"] if isinstance(g["properties"], list) else [g["properties"]]
    out = {
        "dataset": str(g["dataset"]),
        "descriptors": [d if isinstance(d, dict) else {"name": str(d)} for d in descs],
        "properties": [str(p) for p in props],
        "models_per_property": _int(g.get("models_per_property", 10), f"{where}: models_per_property"),
        "max_rows": _int(g["max_rows"], f"{where}: max_rows") if g.get("max_rows") else None,
        "architecture": {**top["architecture"], **(g.get("architecture") or {})},
        "training": TrainConfig.from_dict({**top["training"], **(g.get("training") or {})}).to_dict(),
        **dataset_source(g, where, base),
        "property_names": {str(k): str(v) for k, v in (g.get("property_names") or {}).items()},
    }
    resolve_space(out["architecture"])
    if out["models_per_property"] < 1:
        raise ValidationError(f"{where}: models_per_property must be >= 1")
    return _checked(MLPGroup, out, where)


GNN_GROUP_KEYS = {
    "model",
    "dataset",
    "import",
    "refresh",
    "graph",
    "properties",
    "property_names",
    "models_per_property",
    "max_rows",
    "architecture",
    "training",
    "family_size",
    "multi_task",
}


def _gnn_group(g: dict, i: int, base: Path, top: dict) -> dict[str, Any]:
    """One normalised `model: gnn` group entry (one-line errors for bad keys and values); see gnn_plan."""
    where = f"library config groups[{i}]"
    _known(g, GNN_GROUP_KEYS, where)
    for key in ("dataset", "properties"):
        if key not in g:
            raise ValidationError(f"{where}: missing required key {key!r}")
    props = g["properties"] if isinstance(g["properties"], list) else [g["properties"]]
    try:
        graph = GraphSpec.coerce(g.get("graph") or "molgraph")
    except (KeyError, TypeError) as exc:
        raise ValidationError(f"{where}: invalid graph spec ({exc})") from None
    out = {
        "model": "gnn",
        "dataset": str(g["dataset"]),
        "graph": graph.to_dict(),
        "properties": [str(p) for p in props],
        "property_names": {str(k): str(v) for k, v in (g.get("property_names") or {}).items()},
        "models_per_property": int(g.get("models_per_property", 8)),
        "max_rows": int(g["max_rows"]) if g.get("max_rows") else None,
        "architecture": dict(g.get("architecture") or {}),
        "training": GNNTrainConfig.from_dict(g.get("training")).to_dict(),
        "family_size": int(g.get("family_size", top["family_size"])),
        "multi_task": bool(g.get("multi_task", False)),
        **dataset_source(g, where, base),
    }
    resolve_gnn_space(out["architecture"])
    if out["models_per_property"] < 1 or out["family_size"] < 1:
        raise ValidationError(f"{where}: models_per_property and family_size must be >= 1")
    return out


def dataset_source(g: dict[str, Any], where: str, base: Path) -> dict[str, Any]:
    """A group's `import` (local table, path made absolute) and `refresh` (crawler options), checked."""
    if g.get("import") and g.get("refresh"):
        raise ValidationError(f"{where}: give either `import` (a local table) or `refresh` (crawler options), not both")
    out: dict[str, Any] = {"import": None, "refresh": _refresh_options(g.get("refresh"), where)}
    if g.get("import"):
        imp = dict(g["import"])
        _check_keys(imp, set(TableImport.model_fields), ("file", "input_column", "target_columns"), f"{where}.import")
        f = Path(imp["file"]).expanduser()
        imp["file"] = str(f if f.is_absolute() else (base / f).resolve())
        out["import"] = _checked(TableImport, imp, f"{where}.import")
    return out


def _refresh_options(raw: Any, where: str) -> dict[str, Any] | None:
    """A group's crawler options (`refresh:`), checked to be a mapping without secrets written in the config."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValidationError(f"{where}.refresh: must be a mapping of crawler options (source, url, limit, ...)")
    secret = sorted(k for k in raw if k in SECRET_KEYS)
    if secret:
        raise ValidationError(
            f"{where}.refresh: {secret[0]!r} does not belong in a config file; set it in the "
            f"environment (MP_API_KEY) instead"
        )
    return {str(k): v for k, v in raw.items()}
