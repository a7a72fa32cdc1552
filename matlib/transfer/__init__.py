"""Shotgun transfer: screen a model library against a small target, refine, choose by CV, predict."""

from matlib.transfer.fit import TransferResult, fit_transfer
from matlib.transfer.model import predict_transfer

__all__ = ["TransferResult", "fit_transfer", "predict_transfer"]
