"""MGD: Masked Generative Distillation (Yang et al., ECCV 2022, arXiv:2205.01529)."""

from typing import Dict, Optional, Sequence

import torch
from torch import nn

from .base import DISTILL_LOSS_REGISTRY, DistillMethod
from .feature_pairs import LevelwiseFeatureLoss, build_levels_and_channels

__all__ = ["MGDLoss", "MGD", "random_position_mask"]


def random_position_mask(
    n: int,
    h: int,
    w: int,
    ratio: float,
    device: torch.device,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """A random keep-mask of positions, shared by the channels of an image.

    Args:
        n, h, w: batch size and map size.
        ratio: probability that a position is masked (set to 0).
        device: where to draw it.
        generator: torch generator to draw from; None uses torch's default one of ``device``
            (seeded by ``torch.manual_seed``, i.e. by Detectron2's ``SEED``).

    Returns:
        (N, 1, H, W) float tensor of 0 (masked, where ``u > 1 - ratio``, u ~ U[0, 1)) and 1.
    """
    u = torch.rand((n, 1, h, w), generator=generator, device=device)
    return (u <= 1 - ratio).float()


class MGDLoss(LevelwiseFeatureLoss):
    """Masked generative distillation, summed over levels.

    Per level, random positions of the adapted student map are zeroed (:func:`
    random_position_mask`, drawn from torch's default RNG of the device, seeded by ``SEED``), a
    generation block ``G`` (3x3 conv, ReLU, 3x3 conv, C_t channels) rebuilds the teacher map from what is left, and ``loss_mgd = alpha * sum_levels
    sum((G(M * F_s) - F_t)^2) / N`` (as in the official code). Unlike the others this loss does
    not vanish at ``F_s == F_t``: G must learn to generate the teacher map.

    Args:
        in_features, student_channels, teacher_channels, adapter_mode: see
            :class:`LevelwiseFeatureLoss`.
        alpha: weight of the term.
        mask_ratio: lambda, the fraction of positions masked, in [0, 1).
    """

    NAME = "MGD"

    def __init__(
        self,
        in_features: Sequence[str],
        student_channels: Dict[str, int],
        teacher_channels: Dict[str, int],
        alpha: float,
        mask_ratio: float,
        adapter_mode: str = "auto",
    ):
        super().__init__(in_features, student_channels, teacher_channels, alpha, adapter_mode)
        if not 0 <= mask_ratio < 1:
            raise ValueError(f"MGD: mask_ratio must be in [0, 1), got {mask_ratio}")
        self.mask_ratio = mask_ratio
        self.generation = nn.ModuleDict(
            {
                k: nn.Sequential(
                    nn.Conv2d(teacher_channels[k], teacher_channels[k], 3, padding=1),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(teacher_channels[k], teacher_channels[k], 3, padding=1),
                )
                for k in self.in_features
            }
        )

    def level_loss(self, level: str, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        n, _, h, w = student.shape
        mask = random_position_mask(n, h, w, self.mask_ratio, student.device)
        generated = self.generation[level](student * mask)
        return (generated - teacher).pow(2).sum() / n


@DISTILL_LOSS_REGISTRY.register()
class MGD(DistillMethod):
    """MGD: Masked Generative Distillation (Yang et al., ECCV 2022, arXiv:2205.01529); builds
    :class:`MGDLoss` from ``MODEL.DISTILL.MGD``.

    Published (github.com/yzd-v/MGD det/configs retina_rx101_64x4d_distill_retina_r50_fpn_2x_coco.py
    and cascade_mask_rcnn_rx101_32x4d_distill_faster_rcnn_r50_fpn_2x_coco.py): one-stage
    alpha=2e-5, mask ratio 0.65; two-stage alpha=5e-7, mask ratio 0.45.
    """

    PUBLISHED = {
        "RetinaNet": {
            "ALPHA": 2e-5,
            "MASK_RATIO": 0.65,
            "IN_FEATURES": ["p3", "p4", "p5", "p6", "p7"],
        },
        "GeneralizedRCNN": {
            "ALPHA": 5e-7,
            "MASK_RATIO": 0.45,
            "IN_FEATURES": ["p2", "p3", "p4", "p5"],
        },
    }

    @staticmethod
    def add_config(_C):
        # FPN levels to distil, by name. [] means the published levels for the student type
        # (RetinaNet: p3-p7; GeneralizedRCNN: p2-p5), restricted to those both sides have.
        _C.IN_FEATURES = []
        # Weight alpha of loss_mgd = alpha * sum over levels of
        # sum((G(mask * adapted F_s) - F_t)^2) / N. -1: published (RetinaNet 2e-5,
        # GeneralizedRCNN 5e-7).
        _C.ALPHA = -1.0
        # Fraction lambda of spatial positions of the (adapted) student map zeroed before the
        # generation block, drawn per image and step from torch's RNG (seeded by SEED).
        # -1: published (RetinaNet 0.65, GeneralizedRCNN 0.45).
        _C.MASK_RATIO = -1.0

    @classmethod
    def build(cls, cfg, student_shapes, teacher_shapes) -> MGDLoss:
        levels, student_channels, teacher_channels = build_levels_and_channels(
            cls.levels(cfg, student_shapes, teacher_shapes),
            student_shapes,
            teacher_shapes,
            "MGD",
        )
        return MGDLoss(
            levels,
            student_channels,
            teacher_channels,
            alpha=cls.published(cfg, "ALPHA"),
            mask_ratio=cls.published(cfg, "MASK_RATIO"),
            adapter_mode=cfg.MODEL.DISTILL.ADAPTER,
        )
