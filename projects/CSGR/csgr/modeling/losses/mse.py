"""MSE: FitNet-style feature imitation (Romero et al., ICLR 2015, arXiv:1412.6550)."""

import torch

from .base import DISTILL_LOSS_REGISTRY
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
def MSE(cfg, student_shapes, teacher_shapes) -> MSELoss:  # noqa: N802 (the method's name)
    """Build :class:`MSELoss` from ``MODEL.DISTILL.MSE`` (registered as "MSE")."""
    levels, student_channels, teacher_channels = build_levels_and_channels(
        cfg.MODEL.DISTILL.MSE.IN_FEATURES, student_shapes, teacher_shapes, "MSE"
    )
    return MSELoss(
        levels,
        student_channels,
        teacher_channels,
        weight=cfg.MODEL.DISTILL.MSE.WEIGHT,
        adapter_mode=cfg.MODEL.DISTILL.ADAPTER,
    )
