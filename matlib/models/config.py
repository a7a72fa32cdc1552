"""Training settings shared by the batched and the reference trainer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from matlib.errors import ValidationError


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (the same for every model of a shard)."""

    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    diverge_loss: float = 1e4  # standardised train MSE above this (or NaN) marks a model failed
    amp: bool = False  # bfloat16 autocast, CUDA only

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TrainConfig:
        """A config from a plain dict (unknown keys rejected with a one-line error)."""
        return checked_config(cls, d, "training config")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return asdict(self)


def checked_config(cls: Any, d: dict[str, Any] | None, where: str) -> Any:
    """A training-config dataclass from a plain dict: unknown keys and invalid values are one-line errors."""
    d = dict(d or {})
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValidationError(f"{where}: unknown keys {unknown} (known: {sorted(names)})")
    cfg = cls(**d)
    lr_factor = getattr(cfg, "lr_factor", 1.0)  # the GNN trainer's plateau schedule
    if cfg.epochs < 1 or cfg.batch_size < 2 or cfg.lr <= 0 or cfg.patience < 1 or not 0 < lr_factor <= 1:
        raise ValidationError(f"{where}: invalid values {cfg.to_dict()}")
    return cfg
