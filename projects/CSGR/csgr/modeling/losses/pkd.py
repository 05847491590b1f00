"""PKD: feature imitation with the Pearson correlation coefficient (Cao et al., NeurIPS 2022,
arXiv:2207.02039)."""

import torch

from .base import DISTILL_LOSS_REGISTRY, DistillMethod
from .feature_pairs import LevelwiseFeatureLoss, build_levels_and_channels

__all__ = ["PKDLoss", "PKD", "standardize_per_channel"]


def standardize_per_channel(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Zero mean, unit (population) standard deviation per channel over (N, H, W).

    Args:
        x: (N, C, H, W) features.
        eps: added to the standard deviation (a constant channel maps to zeros).

    Returns:
        (N, C, H, W) ``(x - mean) / (std + eps)``.
    """
    std, mean = torch.std_mean(x, dim=(0, 2, 3), correction=0, keepdim=True)
    return (x - mean) / (std + eps)


class PKDLoss(LevelwiseFeatureLoss):
    """``loss_pkd = weight * sum_levels mean((z(F_s) - z(F_t))^2) / 2``, with ``z`` the
    per-channel standardisation of :func:`standardize_per_channel` and the mean over
    (N, C, H, W). Per level this equals the mean over channels of ``1 - r_c``, ``r_c`` the Pearson
    correlation of student and teacher channel ``c`` over (N, H, W), so it is 0 when the student
    is any positive affine function of the teacher per channel.

    As in the reference implementation (mmrazor ``PKDLoss``) except that the standard deviation
    is the population one (mmrazor: unbiased), which makes the ``1 - r`` identity exact.

    Args: see :class:`LevelwiseFeatureLoss`.
    """

    NAME = "PKD"

    def level_loss(self, level: str, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        diff = standardize_per_channel(student) - standardize_per_channel(teacher)
        return diff.pow(2).mean() / 2


@DISTILL_LOSS_REGISTRY.register()
class PKD(DistillMethod):
    """PKD: Pearson correlation distillation (Cao et al., NeurIPS 2022, arXiv:2207.02039);
    builds :class:`PKDLoss` from ``MODEL.DISTILL.PKD``.

    Published weights and levels: open-mmlab/mmrazor configs/distill/mmdet/pkd/
    pkd_fpn_retina_x101_retina_r50_2x_coco.py (10 on p3-p6) and
    pkd_fpn_frcnn_r101_frcnn_r50_2x_coco.py (6 on p2-p5).
    """

    PUBLISHED = {
        "RetinaNet": {"WEIGHT": 10.0, "IN_FEATURES": ["p3", "p4", "p5", "p6"]},
        "GeneralizedRCNN": {"WEIGHT": 6.0, "IN_FEATURES": ["p2", "p3", "p4", "p5"]},
    }

    @staticmethod
    def add_config(_C):
        # FPN levels to distil, by name. [] means the published levels for the student type
        # (RetinaNet: p3-p6; GeneralizedRCNN: p2-p5), restricted to those both sides have.
        _C.IN_FEATURES = []
        # Weight of loss_pkd = WEIGHT * sum over levels of MSE(norm F_s, norm F_t) / 2, i.e. of
        # the mean over channels of 1 - Pearson r. -1: published (RetinaNet 10,
        # GeneralizedRCNN 6).
        _C.WEIGHT = -1.0

    @classmethod
    def build(cls, cfg, student_shapes, teacher_shapes) -> PKDLoss:
        levels, student_channels, teacher_channels = build_levels_and_channels(
            cls.levels(cfg, student_shapes, teacher_shapes),
            student_shapes,
            teacher_shapes,
            "PKD",
        )
        return PKDLoss(
            levels,
            student_channels,
            teacher_channels,
            weight=cls.published(cfg, "WEIGHT"),
            adapter_mode=cfg.MODEL.DISTILL.ADAPTER,
        )
