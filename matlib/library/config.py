"""Library build config (YAML): sources x properties x descriptors x models x architecture space x training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from matlib.errors import ValidationError
from matlib.models.arch import resolve_space
from matlib.models.config import TrainConfig

TOP_KEYS = {"name", "seed", "shard_size", "family_size", "architecture", "training", "groups"}
GROUP_KEYS = {
    "model",
    "dataset",
    "import",
    "refresh",
    "descriptors",
    "properties",
    "property_names",
    "models_per_property",
    "max_rows",
    "architecture",
    "training",
}
IMPORT_KEYS = {"file", "input_column", "target_columns", "kind", "id_column", "duplicates", "sample_rows"}


def load_config(config: str | Path | dict) -> dict[str, Any]:
    """A validated, normalised build config from a YAML path or a dict (paths made absolute)."""
    base = Path.cwd()
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.exists():
            raise ValidationError(f"library config {path} does not exist")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ValidationError(f"library config {path}: invalid YAML ({str(exc).splitlines()[0]})") from None
        base = path.resolve().parent
    else:
        raw = config
    if not isinstance(raw, dict):
        raise ValidationError("library config: top level must be a mapping")
    _known(raw, TOP_KEYS, "library config")
    for key in ("name", "groups"):
        if key not in raw:
            raise ValidationError(f"library config: missing required key {key!r}")
    cfg = {
        "name": str(raw["name"]),
        "seed": int(raw.get("seed", 0)),
        "shard_size": int(raw.get("shard_size", 64)),
        "family_size": int(raw.get("family_size", raw.get("shard_size", 64))),
        "architecture": dict(raw.get("architecture") or {}),
        "training": TrainConfig.from_dict(raw.get("training")).to_dict(),
        "groups": [],
    }
    if cfg["shard_size"] < 1 or cfg["family_size"] < 1:
        raise ValidationError("library config: shard_size and family_size must be >= 1")
    resolve_space(cfg["architecture"])
    if not isinstance(raw["groups"], list) or not raw["groups"]:
        raise ValidationError("library config: 'groups' must be a non-empty list")
    for i, g in enumerate(raw["groups"]):
        cfg["groups"].append(_group(g, i, base, cfg))
    return cfg


def _known(d: dict, keys: set[str], where: str) -> None:
    """Reject unknown keys with a one-line error."""
    unknown = sorted(set(d) - keys)
    if unknown:
        raise ValidationError(f"{where}: unknown keys {unknown} (known: {sorted(keys)})")


def _group(g: Any, i: int, base: Path, top: dict) -> dict[str, Any]:
    """One normalised group entry."""
    where = f"library config groups[{i}]"
    if not isinstance(g, dict):
        raise ValidationError(f"{where}: must be a mapping")
    if g.get("model", "mlp") not in ("mlp", "gnn"):
        raise ValidationError(f"{where}: unknown model {g['model']!r} (known: mlp, gnn)")
    if g.get("model") == "gnn":
        from matlib.library.gnn_plan import gnn_group

        return gnn_group(g, i, base, top)
    _known(g, GROUP_KEYS, where)
    for key in ("dataset", "descriptors", "properties"):
        if key not in g:
            raise ValidationError(f"{where}: missing required key {key!r}")
    descs = g["descriptors"] if isinstance(g["descriptors"], list) else [g["descriptors"]]
    props = g["properties"] if isinstance(g["properties"], list) else [g["properties"]]
    out = {
        "dataset": str(g["dataset"]),
        "descriptors": [d if isinstance(d, dict) else {"name": str(d)} for d in descs],
        "properties": [str(p) for p in props],
        "models_per_property": int(g.get("models_per_property", 10)),
        "max_rows": int(g["max_rows"]) if g.get("max_rows") else None,
        "architecture": {**top["architecture"], **(g.get("architecture") or {})},
        "training": TrainConfig.from_dict({**top["training"], **(g.get("training") or {})}).to_dict(),
        **dataset_source(g, where, base),
        "property_names": {str(k): str(v) for k, v in (g.get("property_names") or {}).items()},
    }
    resolve_space(out["architecture"])
    if out["models_per_property"] < 1:
        raise ValidationError(f"{where}: models_per_property must be >= 1")
    return out


def dataset_source(g: dict, where: str, base: Path) -> dict[str, Any]:
    """A group's `import` (local table, path made absolute) and `refresh` (crawler options), checked."""
    if g.get("import") and g.get("refresh"):
        raise ValidationError(f"{where}: give either `import` (a local table) or `refresh` (crawler options), not both")
    out: dict[str, Any] = {"import": None, "refresh": _refresh_options(g.get("refresh"), where)}
    if g.get("import"):
        imp = dict(g["import"])
        _known(imp, IMPORT_KEYS, f"{where}.import")
        for key in ("file", "input_column", "target_columns"):
            if key not in imp:
                raise ValidationError(f"{where}.import: missing required key {key!r}")
        f = Path(imp["file"]).expanduser()
        imp["file"] = str(f if f.is_absolute() else (base / f).resolve())
        out["import"] = imp
    return out


def _refresh_options(raw: Any, where: str) -> dict[str, Any] | None:
    """A group's crawler options (`refresh:`), checked to be a mapping without secrets written in the config."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValidationError(f"{where}.refresh: must be a mapping of crawler options (source, url, limit, ...)")
    secret = sorted(k for k in raw if k in {"api_key", "token", "password"})
    if secret:
        raise ValidationError(
            f"{where}.refresh: {secret[0]!r} does not belong in a config file; set it in the "
            f"environment (MP_API_KEY) instead"
        )
    return {str(k): v for k, v in raw.items()}
