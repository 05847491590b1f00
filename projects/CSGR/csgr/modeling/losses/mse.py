"""MSE: FitNet-style feature imitation (Romero et al., ICLR 2015, arXiv:1412.6550)."""

import torch

from .base import DISTILL_LOSS_REGISTRY, DistillMethod
from .feature_pairs import LevelwiseFeatureLoss, build_levels_and_channels

__all__ = ["MSELoss", "MSE"]


class MSELoss(LevelwiseFeatureLoss):
    """``loss_mse = weight * sum_levels mean((F_s - F_t)^2)``, the mean over (N, C, H, W), with
    ``F_s`` through a learnable 1x1 adapter where its width differs from the teacher's.

    Args: see :class:`LevelwiseFeatureLoss`.
    """

    NAME = "MSE"

    def level_loss(self, level: str, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return (student - teacher).pow(2).mean()


@DISTILL_LOSS_REGISTRY.register()
class MSE(DistillMethod):
    """MSE: FitNet-style hint loss (Romero et al., ICLR 2015, arXiv:1412.6550); builds
    :class:`MSELoss` from ``MODEL.DISTILL.MSE``."""

    @staticmethod
    def add_config(_C):
        # FPN levels to distil, by name; [] means every level teacher and student both have.
        _C.IN_FEATURES = []
        # Weight of loss_mse = WEIGHT * sum over levels of mean((adapted F_s - F_t)^2) (no
        # published detection default).
        _C.WEIGHT = 1.0

    @classmethod
    def build(cls, cfg, student_shapes, teacher_shapes) -> MSELoss:
        levels, student_channels, teacher_channels = build_levels_and_channels(
            cls.node(cfg).IN_FEATURES, student_shapes, teacher_shapes, "MSE"
        )
        return MSELoss(
            levels,
            student_channels,
            teacher_channels,
            weight=cls.published(cfg, "WEIGHT"),
            adapter_mode=cfg.MODEL.DISTILL.ADAPTER,
        )
