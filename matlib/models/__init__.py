"""Source models: architecture sampler, batched multi-model trainer, one-at-a-time reference trainer."""

from matlib.models.arch import DEFAULT_SPACE, bucket_key, padded_arch, sample_architecture
from matlib.models.batched import TrainResult, default_device, train_batched
from matlib.models.config import TrainConfig
from matlib.models.mlp import MLPRegressor, build_module, build_sequential, init_params
from matlib.models.reference import train_single
from matlib.models.stacked import stacked_forward

__all__ = [
    "DEFAULT_SPACE",
    "MLPRegressor",
    "TrainConfig",
    "TrainResult",
    "bucket_key",
    "build_module",
    "build_sequential",
    "default_device",
    "init_params",
    "padded_arch",
    "sample_architecture",
    "stacked_forward",
    "train_batched",
    "train_single",
]
