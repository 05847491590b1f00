"""What every distillation loss module sees, and the registry that builds them from a config."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

import torch
from detectron2.structures import Instances
from detectron2.utils.registry import Registry
from torch import nn

DISTILL_LOSS_REGISTRY = Registry("DISTILL_LOSS")
DISTILL_LOSS_REGISTRY.__doc__ = """
Registry of distillation methods. Each entry is a builder function
``fn(cfg, student_shapes, teacher_shapes) -> DistillLoss``; the name listed in
``MODEL.DISTILL.METHODS`` selects it. ``*_shapes`` map FPN level names to ``ShapeSpec``.
The builder reads the config; the module it returns never does.
"""


@dataclass
class DistillBatch:
    """The tensors of one training step that distillation losses may use.

    Attributes:
        student_features: student backbone (FPN) outputs by level name, each (N, C_s, H_l, W_l).
        teacher_features: teacher backbone (FPN) outputs by level name, each (N, C_t, H_l, W_l),
            computed under ``torch.no_grad()``.
        gt_instances: per image, the ground truth ``Instances`` (``gt_boxes`` in XYXY absolute
            pixels of the padded batch tensor's coordinate frame, ``gt_classes`` in [0, K)).
        image_shape: (H, W) of the padded batch tensor.
        student_outputs / teacher_outputs: head outputs captured for response-based methods
            (keys documented by the methods that ask for them through ``REQUIRES``).
    """

    student_features: Dict[str, torch.Tensor]
    teacher_features: Dict[str, torch.Tensor]
    gt_instances: List[Instances] = field(default_factory=list)
    image_shape: Tuple[int, int] = (0, 0)
    student_outputs: Dict[str, Any] = field(default_factory=dict)
    teacher_outputs: Dict[str, Any] = field(default_factory=dict)


class DistillLoss(nn.Module):
    """Base class of distillation loss modules.

    Subclasses are plain ``nn.Module``s constructed from explicit arguments (never a config),
    hold their own learnable parts (adapters, attention blocks, ...), and return a flat dict of
    weighted loss terms named ``loss_<method>_<term>``.

    Class attributes:
        REQUIRES: what the Distiller must compute for this loss: "features" (backbone+FPN of
            teacher and student), "dense_head" (RetinaNet head outputs of both) or "roi_head"
            (box classifier logits of both on the student's sampled proposals).
    """

    REQUIRES = frozenset({"features"})

    def forward(self, batch: DistillBatch) -> Dict[str, torch.Tensor]:
        raise NotImplementedError


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` upcast to float32 if it has a lower floating precision (float16, bfloat16), else
    ``x`` itself: losses compute in float32 under AMP and stay float64 on float64 inputs."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
