"""Pairing student and teacher FPN levels: which levels to distil and the 1x1 channel adapters."""

from typing import Dict, List, Sequence

import torch
from detectron2.layers import ShapeSpec
from torch import nn

ADAPTER_MODES = ("auto", "always", "never")


def select_levels(
    requested: Sequence[str],
    student_shapes: Dict[str, ShapeSpec],
    teacher_shapes: Dict[str, ShapeSpec],
    method: str,
) -> List[str]:
    """Levels a feature loss distils, matched by name.

    Args:
        requested: level names from the config; empty means every level both sides have.
        student_shapes / teacher_shapes: backbone output shapes by level name.
        method: the method's name, for error messages.

    Returns:
        Level names, ordered by stride.

    Raises:
        ValueError: naming both sides' levels when a requested level is missing or none match.
    """
    sides = f"student levels {sorted(student_shapes)}, teacher levels {sorted(teacher_shapes)}"
    if not requested:
        common = [k for k in student_shapes if k in teacher_shapes]
        if not common:
            raise ValueError(f"{method}: teacher and student share no FPN level by name ({sides})")
        levels = common
    else:
        missing = [k for k in requested if k not in student_shapes or k not in teacher_shapes]
        if missing:
            raise ValueError(
                f"{method}: MODEL.DISTILL.{method}.IN_FEATURES names {missing}, which teacher "
                f"and student do not both have ({sides})"
            )
        levels = list(requested)
    for k in levels:
        if student_shapes[k].stride != teacher_shapes[k].stride:
            raise ValueError(
                f"{method}: level {k} has stride {student_shapes[k].stride} in the student but "
                f"{teacher_shapes[k].stride} in the teacher"
            )
    return sorted(levels, key=lambda k: student_shapes[k].stride)


class ChannelAdapters(nn.Module):
    """Per-level 1x1 convs mapping student channels to teacher channels.

    Levels without an adapter pass through unchanged.

    Args:
        levels: level names.
        student_channels / teacher_channels: channels by level name.
        mode: "auto" (adapt only where widths differ), "always", or "never" (error on mismatch).
    """

    def __init__(
        self,
        levels: Sequence[str],
        student_channels: Dict[str, int],
        teacher_channels: Dict[str, int],
        mode: str = "auto",
    ):
        super().__init__()
        if mode not in ADAPTER_MODES:
            raise ValueError(f"MODEL.DISTILL.ADAPTER must be one of {ADAPTER_MODES}, got {mode!r}")
        self.adapters = nn.ModuleDict()
        for k in levels:
            cs, ct = student_channels[k], teacher_channels[k]
            if cs != ct and mode == "never":
                raise ValueError(
                    f"level {k}: student has {cs} channels and teacher {ct}, and "
                    "MODEL.DISTILL.ADAPTER is 'never'; set it to 'auto' to add 1x1 adapters"
                )
            if cs != ct or mode == "always":
                self.adapters[k] = nn.Conv2d(cs, ct, kernel_size=1)

    def forward(self, level: str, x: torch.Tensor) -> torch.Tensor:
        """Adapt one level.

        Args:
            level: level name.
            x: (N, C_s, H, W) student features.

        Returns:
            (N, C_t, H, W) features.
        """
        return self.adapters[level](x) if level in self.adapters else x
