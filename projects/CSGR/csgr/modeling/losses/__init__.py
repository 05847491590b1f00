"""Distillation losses; importing this package registers them in DISTILL_LOSS_REGISTRY."""

from . import base, csgr, levels  # noqa: F401  (registers the losses)
from . import dkd, ikd, pcd  # noqa: F401  (registers DKD, IKD, PCD)
from . import cwd, fgd, mgd, mse, pkd  # noqa: F401  (registers FGD, MSE, PKD, CWD, MGD)
from .base import DISTILL_LOSS_REGISTRY, DistillBatch, DistillLoss
from .csgr import CSGRLoss
from .levels import ChannelAdapters, select_levels

__all__ = [
    "DISTILL_LOSS_REGISTRY",
    "DistillBatch",
    "DistillLoss",
    "ChannelAdapters",
    "select_levels",
    "CSGRLoss",
]
