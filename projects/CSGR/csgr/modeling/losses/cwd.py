"""CWD: channel-wise distillation (Shu et al., ICCV 2021, arXiv:2011.13256)."""

from typing import Dict, Sequence

import torch

from ...config.methods_feature import published_value
from .base import DISTILL_LOSS_REGISTRY
from .feature_pairs import LevelwiseFeatureLoss, build_levels_and_channels

__all__ = ["CWDLoss", "CWD"]


class CWDLoss(LevelwiseFeatureLoss):
    """Channel-wise distribution distillation, summed over levels.

    Per level, each channel's map becomes a distribution over the H*W positions,
    ``p = softmax_HW(F / tau)``, and ``loss_cwd = weight * sum_levels tau^2 *
    sum_{n,c} KL(p_t || p_s) / (N * C)`` (as the reference implementation, mmrazor
    ``ChannelWiseDivergence``).

    Args:
        in_features, student_channels, teacher_channels, weight, adapter_mode: see
            :class:`LevelwiseFeatureLoss`.
        tau: temperature (> 0).
    """

    NAME = "CWD"

    def __init__(
        self,
        in_features: Sequence[str],
        student_channels: Dict[str, int],
        teacher_channels: Dict[str, int],
        weight: float,
        tau: float = 1.0,
        adapter_mode: str = "auto",
    ):
        super().__init__(in_features, student_channels, teacher_channels, weight, adapter_mode)
        if tau <= 0:
            raise ValueError(f"CWD: tau must be > 0, got {tau}")
        self.tau = tau

    def level_loss(self, level: str, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        n, c = teacher.shape[:2]
        log_p_t = (teacher.flatten(2) / self.tau).log_softmax(dim=2)  # (N, C, HW)
        log_p_s = (student.flatten(2) / self.tau).log_softmax(dim=2)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
        return kl * self.tau**2 / (n * c)


@DISTILL_LOSS_REGISTRY.register()
def CWD(cfg, student_shapes, teacher_shapes) -> CWDLoss:  # noqa: N802 (the method's name)
    """Build :class:`CWDLoss` from ``MODEL.DISTILL.CWD`` (registered as "CWD"); ``WEIGHT`` -1
    takes the published value for the student type (RetinaNet 5, GeneralizedRCNN 10)."""
    levels, student_channels, teacher_channels = build_levels_and_channels(
        cfg.MODEL.DISTILL.CWD.IN_FEATURES, student_shapes, teacher_shapes, "CWD"
    )
    return CWDLoss(
        levels,
        student_channels,
        teacher_channels,
        weight=published_value(cfg, "CWD", "WEIGHT"),
        tau=cfg.MODEL.DISTILL.CWD.TAU,
        adapter_mode=cfg.MODEL.DISTILL.ADAPTER,
    )
