"""Initialise parts of the student from the teacher, as FGD's published recipe does.

FGD's configs start the student's neck (FPN) and detection head from the teacher's weights
(``init_student=True`` in yzd-v/FGD), which only works where the shapes agree: same FPN width,
same head layout and class count. :func:`init_student_from_teacher` copies every parameter and
buffer of the chosen parts whose name and shape match, and reports what it left out.
"""

import logging
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

from .losses.base import get_method

__all__ = [
    "STUDENT_INIT_PARTS",
    "part_prefixes",
    "init_student_from_teacher",
    "init_from_method_settings",
]

logger = logging.getLogger(__name__)

# part -> prefixes of Detectron2 state-dict keys (GeneralizedRCNN and RetinaNet with FPN)
STUDENT_INIT_PARTS: Dict[str, Tuple[str, ...]] = {
    "neck": ("backbone.fpn_", "backbone.top_block."),
    "head": ("proposal_generator.", "roi_heads.", "head."),
}


def part_prefixes(parts: Sequence[str]) -> Tuple[str, ...]:
    """The key prefixes of ``parts`` ("neck", "head").

    Raises:
        ValueError: naming an unknown part.
    """
    unknown = [p for p in parts if p not in STUDENT_INIT_PARTS]
    if unknown:
        raise ValueError(
            f"MODEL.DISTILL.STUDENT_INIT_FROM_TEACHER: unknown parts {unknown}; "
            f"known: {sorted(STUDENT_INIT_PARTS)}"
        )
    return tuple(prefix for p in parts for prefix in STUDENT_INIT_PARTS[p])


@torch.no_grad()
def init_student_from_teacher(
    student: nn.Module, teacher: nn.Module, parts: Sequence[str]
) -> Tuple[List[str], List[str]]:
    """Copy the teacher's weights of ``parts`` into the student where names and shapes match.

    Args:
        student: the detector to initialise (changed in place).
        teacher: a detector of the same meta-architecture.
        parts: any of "neck" (FPN lateral/output convs and extra levels) and "head" (RPN and
            ROI heads, or the RetinaNet head).

    Returns:
        (copied keys, student keys of those parts left as they were: missing in the teacher or
        of another shape).

    Raises:
        ValueError: an unknown part, or none of the parts' weights could be copied.
    """
    prefixes = part_prefixes(parts)
    if not prefixes:
        return [], []
    source = teacher.state_dict()
    target = student.state_dict()
    copied, skipped = [], []
    for key, value in target.items():
        if not key.startswith(prefixes):
            continue
        theirs = source.get(key)
        if theirs is None or theirs.shape != value.shape:
            skipped.append(key)
            continue
        value.copy_(theirs.to(value.device, value.dtype))
        copied.append(key)
    if not copied:
        raise ValueError(
            f"MODEL.DISTILL.STUDENT_INIT_FROM_TEACHER {list(parts)}: no weight of these parts "
            f"has the same name and shape in teacher and student (e.g. {skipped[:3]}); the "
            "teacher's FPN width and heads must match the student's"
        )
    logger.info(
        f"student initialised from the teacher ({', '.join(parts)}): {len(copied)} tensors"
        + (f"; {len(skipped)} left as they were (no match): {skipped[:5]}" if skipped else "")
    )
    return copied, skipped


def init_from_method_settings(
    cfg, student: nn.Module, teacher: nn.Module, done: Sequence[str]
) -> List[str]:
    """Initialise the student parts that a distillation method's settings ask for
    (``DistillMethod.student_init_parts``, e.g. CSGR's ``FORMULATION``) and ``done`` (what
    ``STUDENT_INIT_FROM_TEACHER`` named) does not, where names and shapes agree. Where none
    agrees, a warning, not an error: the settings chose the init, not the user.

    Returns:
        the copied keys.
    """
    copied, done = [], list(done)
    for name in cfg.MODEL.DISTILL.METHODS:
        parts = [p for p in get_method(name).student_init_parts(cfg) if p not in done]
        if not parts:
            continue
        done += parts
        try:
            copied += init_student_from_teacher(student, teacher, parts)[0]
        except ValueError as e:
            logger.warning(f"{name}: the student's {parts} stay as they were: {e}")
    return copied
