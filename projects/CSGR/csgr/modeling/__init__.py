from . import backbone  # noqa: F401  registers the mobile FPN backbones
from . import losses  # noqa: F401  registers the distillation losses
from .losses.base import DISTILL_LOSS_REGISTRY, DistillBatch, DistillLoss, DistillMethod
from .meta_arch.distiller import Distiller, build_distill_losses
from .build import build_detector
from .teacher import build_teacher

__all__ = [
    "DISTILL_LOSS_REGISTRY",
    "DistillBatch",
    "DistillLoss",
    "DistillMethod",
    "Distiller",
    "build_detector",
    "build_distill_losses",
    "build_teacher",
]
