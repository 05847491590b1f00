"""Distillation methods, one file each; importing this package registers them.

The import order below is the order of the methods in tables and benchmarks
(``DISTILL_LOSS_REGISTRY`` keeps registration order): CSGR, then the feature methods, then the
response-based ones.
"""

# isort: off
from . import csgr, fgd, mse, pkd, cwd, mgd, pcd, dkd, ikd  # noqa: F401  (registers them)

# isort: on
from .base import DISTILL_LOSS_REGISTRY, DistillBatch, DistillLoss, DistillMethod
from .base import get_method, method_names
from .csgr import CSGRLoss
from .levels import ChannelAdapters, select_levels

__all__ = [
    "DISTILL_LOSS_REGISTRY",
    "DistillBatch",
    "DistillLoss",
    "DistillMethod",
    "get_method",
    "method_names",
    "ChannelAdapters",
    "select_levels",
    "CSGRLoss",
]
