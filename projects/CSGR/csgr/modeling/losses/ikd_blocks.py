"""Learnable blocks of IKD: feature resampling + generation, one-to-many alignment."""

import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GenerationBlock", "OneToManyAlignment", "neighbour_targets"]


class GenerationBlock(nn.Module):
    """MGD's generation block (Yang et al., "Masked Generative Distillation", ECCV 2022):
    ``conv3x3 -> ReLU -> conv3x3``, C -> C, rebuilding the teacher map from masked features.

    Args:
        channels: C.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        return self.block(x)


def neighbour_targets(levels: Sequence[str], span: int) -> Dict[str, List[str]]:
    """For each level, the levels at most ``span`` steps away in the given (stride) order."""
    return {
        k: [levels[j] for j in range(max(0, i - span), min(len(levels), i + span + 1))]
        for i, k in enumerate(levels)
    }


class OneToManyAlignment(nn.Module):
    """Aligns each student level to several teacher levels and mixes the squared errors.

    For student level i and each teacher level j of ``targets[i]``: a 1x1 conv
    ``C_s,i -> C_t,j`` then bilinear resizing to level j's size. The errors
    ``e_ij = ||align_ij(F_s,i) - F_t,j||^2 / N`` are mixed with ``w_i = softmax(theta_i)``;
    ``theta`` starts at the log of the fixed weights (1 for the same level, ``neighbour_weight``
    for the others) and is learned only if ``learn_weights``.

    Args:
        targets: teacher levels per student level.
        student_channels / teacher_channels: channels by level name.
        neighbour_weight: relative fixed weight (> 0) of a teacher level other than the same one.
        learn_weights: make ``theta`` a parameter.
    """

    def __init__(
        self,
        targets: Dict[str, List[str]],
        student_channels: Dict[str, int],
        teacher_channels: Dict[str, int],
        neighbour_weight: float = 0.5,
        learn_weights: bool = False,
    ):
        super().__init__()
        if neighbour_weight <= 0:
            raise ValueError(f"IKD: neighbour weight must be > 0, got {neighbour_weight}")
        self.targets = {k: list(v) for k, v in targets.items()}
        self.aligners = nn.ModuleDict()
        for i, js in self.targets.items():
            for j in js:
                self.aligners[f"{i}_to_{j}"] = nn.Conv2d(
                    student_channels[i], teacher_channels[j], kernel_size=1
                )
            theta = torch.tensor([0.0 if j == i else math.log(neighbour_weight) for j in js])
            if learn_weights:
                self.register_parameter(f"theta_{i}", nn.Parameter(theta))
            else:
                self.register_buffer(f"theta_{i}", theta, persistent=False)

    def mixing_weights(self, level: str) -> torch.Tensor:
        """(len(targets[level]),) softmax weights of a student level."""
        return getattr(self, f"theta_{level}").softmax(dim=0)

    def forward(
        self, student: Dict[str, torch.Tensor], teacher: Dict[str, torch.Tensor]
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """
        Args:
            student / teacher: (N, C, H, W) maps by level name; teacher maps are constants.

        Returns:
            (loss, per-level losses): the sum over student levels of the mixed errors.
        """
        per_level = {}
        for i, js in self.targets.items():
            s = student[i]
            errors = []
            for j in js:
                t = teacher[j]
                aligned = self.aligners[f"{i}_to_{j}"](s)
                if aligned.shape[-2:] != t.shape[-2:]:
                    aligned = F.interpolate(
                        aligned, size=t.shape[-2:], mode="bilinear", align_corners=False
                    )
                errors.append((aligned - t).pow(2).sum() / s.shape[0])
            per_level[i] = (self.mixing_weights(i) * torch.stack(errors)).sum()
        return sum(per_level.values()), per_level
