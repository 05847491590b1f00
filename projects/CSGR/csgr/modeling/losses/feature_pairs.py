"""Pairs of (adapted student, teacher) FPN maps of a batch, and the base of the single-term
feature losses."""

from typing import Dict, Iterator, Sequence, Tuple

import torch
from detectron2.layers import ShapeSpec

from .base import DistillBatch, DistillLoss, at_least_float32
from .levels import ChannelAdapters, select_levels

__all__ = [
    "feature_pairs",
    "level_channels",
    "build_levels_and_channels",
    "LevelwiseFeatureLoss",
]


def feature_pairs(
    batch: DistillBatch, levels: Sequence[str], adapters: ChannelAdapters, method: str
) -> Iterator[Tuple[str, torch.Tensor, torch.Tensor]]:
    """Yield, per level, the adapted student map and the teacher map in at least float32.

    Half-precision maps (float16, bfloat16) are upcast to float32; float32 and float64 maps keep
    their dtype, so a loss run on float64 inputs (and a float64 module) computes in float64.
    Call under ``torch.autocast(..., enabled=False)`` so that the adapters run in that dtype.

    Args:
        batch: the step's features.
        levels: level names to yield, in order.
        adapters: 1x1 student -> teacher adapters.
        method: the method's name, for error messages.

    Yields:
        (level, student (N, C_t, H, W) with gradient, teacher (N, C_t, H, W) detached).

    Raises:
        KeyError: a level is missing from the batch.
        ValueError: the adapted student and the teacher maps differ in shape.
    """
    missing = [
        k for k in levels if k not in batch.student_features or k not in batch.teacher_features
    ]
    if missing:
        raise KeyError(
            f"{method}: levels {missing} are missing from the batch (student has "
            f"{sorted(batch.student_features)}, teacher has {sorted(batch.teacher_features)})"
        )
    for k in levels:
        student = adapters(k, at_least_float32(batch.student_features[k]))
        teacher = at_least_float32(batch.teacher_features[k]).detach()
        if student.shape != teacher.shape:
            raise ValueError(
                f"{method}: level {k} is {tuple(student.shape)} in the (adapted) student but "
                f"{tuple(teacher.shape)} in the teacher"
            )
        yield k, student, teacher


def level_channels(shapes: Dict[str, ShapeSpec], levels: Sequence[str]) -> Dict[str, int]:
    """Channels by level name."""
    return {k: shapes[k].channels for k in levels}


def build_levels_and_channels(
    requested: Sequence[str],
    student_shapes: Dict[str, ShapeSpec],
    teacher_shapes: Dict[str, ShapeSpec],
    method: str,
) -> Tuple[list, Dict[str, int], Dict[str, int]]:
    """Levels a builder distils and both sides' channels on them.

    Returns:
        (levels ordered by stride, student channels by level, teacher channels by level).
    """
    levels = select_levels(requested, student_shapes, teacher_shapes, method)
    return (
        levels,
        level_channels(student_shapes, levels),
        level_channels(teacher_shapes, levels),
    )


class LevelwiseFeatureLoss(DistillLoss):
    """Base of the single-term feature losses: ``loss_<name> = weight * sum_levels level_loss``.

    Subclasses set ``NAME`` (the method's registered name) and implement :meth:`level_loss`.
    The student map passes through a 1x1 adapter where its width differs from the teacher's.
    Computed in float32 (float64 for float64 inputs) with autocast disabled.

    Args:
        in_features: FPN level names to distil.
        student_channels / teacher_channels: channels by level name.
        weight: weight of the summed term.
        adapter_mode: "auto", "always" or "never" (see :class:`ChannelAdapters`).
    """

    NAME = ""
    REQUIRES = frozenset({"features"})

    def __init__(
        self,
        in_features: Sequence[str],
        student_channels: Dict[str, int],
        teacher_channels: Dict[str, int],
        weight: float,
        adapter_mode: str = "auto",
    ):
        super().__init__()
        if not in_features:
            raise ValueError(f"{self.NAME}: in_features is empty")
        self.in_features = list(in_features)
        self.weight = weight
        self.adapters = ChannelAdapters(
            self.in_features, student_channels, teacher_channels, adapter_mode
        )

    def level_loss(self, level: str, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The unweighted loss of one level.

        Args:
            level: level name.
            student: (N, C, H, W) adapted student map, at least float32.
            teacher: (N, C, H, W) teacher map, at least float32, detached.

        Returns:
            A scalar.
        """
        raise NotImplementedError

    def forward(self, batch: DistillBatch) -> Dict[str, torch.Tensor]:
        """
        Args:
            batch: uses ``student_features`` / ``teacher_features`` of ``in_features``.

        Returns:
            {"loss_<name>": weighted float32 scalar}.
        """
        device = batch.student_features[self.in_features[0]].device
        total = torch.zeros((), device=device)
        with torch.autocast(device_type=device.type, enabled=False):
            for k, student, teacher in feature_pairs(
                batch, self.in_features, self.adapters, self.NAME
            ):
                total = total + self.level_loss(k, student, teacher)
        return {f"loss_{self.NAME.lower()}": self.weight * total}
