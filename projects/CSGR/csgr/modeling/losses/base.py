"""What every distillation loss module sees, what describes a method, and their registry."""

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Type

import torch
from detectron2.config import CfgNode
from detectron2.structures import Instances
from detectron2.utils.registry import Registry
from torch import nn

__all__ = [
    "DISTILL_LOSS_REGISTRY",
    "DistillBatch",
    "DistillLoss",
    "DistillMethod",
    "get_method",
    "method_names",
]

DISTILL_LOSS_REGISTRY = Registry("DISTILL_LOSS")
DISTILL_LOSS_REGISTRY.__doc__ = """
Registry of distillation methods: :class:`DistillMethod` subclasses, registered under their class
name, which is the name listed in ``MODEL.DISTILL.METHODS`` and the config node
``MODEL.DISTILL.<NAME>``. Iteration follows registration order, which is the order of the
methods in tables and benchmarks (``csgr.modeling.losses`` imports the built-in ones in it).
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


class DistillMethod:
    """Everything the toolkit knows about one distillation method, next to its loss module.

    A method is one file: its :class:`DistillLoss` module and a subclass of this class,
    registered with ``@DISTILL_LOSS_REGISTRY.register()``. Config registration
    (``add_csgr_config``), the applicability check, the benchmarks' method lists and their order
    all derive from the registry. The loss module's ``REQUIRES`` says what the Distiller computes
    for it.

    Class attributes:
        APPLIES_TO: the student meta-architectures (``MODEL.DISTILL.STUDENT_META_ARCHITECTURE``)
            the method applies to; None: any.
        NOT_APPLICABLE_REASON: why it does not apply to the others (errors, benchmark notes).
        PUBLISHED: ``{student meta-architecture: {KEY: value}}``, the values that a key set to
            -1 takes (see :meth:`published`).
        HEAD_HINT: added to the error when student or teacher lacks a head the loss needs.
    """

    APPLIES_TO: Optional[Tuple[str, ...]] = None
    NOT_APPLICABLE_REASON = ""
    HEAD_HINT = ""
    PUBLISHED: Dict[str, Dict[str, Any]] = {}

    @staticmethod
    def add_config(node: CfgNode) -> None:
        """Add the method's keys, each with a comment, to ``node`` (``MODEL.DISTILL.<NAME>``)."""
        raise NotImplementedError

    @classmethod
    def build(cls, cfg: CfgNode, student_shapes: dict, teacher_shapes: dict) -> DistillLoss:
        """The loss module of a config.

        Args:
            cfg: the Distiller's config.
            student_shapes / teacher_shapes (dict[str, ShapeSpec]): backbone outputs by level.
        """
        raise NotImplementedError

    @classmethod
    def student_init_parts(cls, cfg: CfgNode) -> Tuple[str, ...]:
        """Parts of the student ("neck", "head") the method's settings initialise from the
        teacher where names and shapes agree, beside ``MODEL.DISTILL.STUDENT_INIT_FROM_TEACHER``;
        none by default."""
        return ()

    @classmethod
    def resolved_defaults(cls, arch: str, defaults: Dict[str, Any]) -> Dict[str, Any]:
        """What the loss built for an ``arch`` student uses of its keys at their defaults
        (``defaults``: the node's keys, -1 replaced by the published value): ``defaults`` itself,
        unless one key sets others (CSGR's ``FORMULATION``)."""
        return defaults

    @classmethod
    def node(cls, cfg: CfgNode) -> CfgNode:
        """``MODEL.DISTILL.<NAME>`` of a config."""
        return cfg.MODEL.DISTILL[cls.__name__]

    @classmethod
    def applies_to(cls, arch: str) -> bool:
        """Whether the method applies to a student of meta-architecture ``arch``."""
        return cls.APPLIES_TO is None or arch in cls.APPLIES_TO

    @classmethod
    def check_applies(cls, cfg: CfgNode) -> None:
        """Raise ValueError, saying why, if the config's student type is not one the method
        applies to."""
        arch = cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE
        if not cls.applies_to(arch):
            raise ValueError(
                f"{cls.__name__} does not apply to the student (MODEL.DISTILL."
                f"STUDENT_META_ARCHITECTURE), a {arch}: {cls.NOT_APPLICABLE_REASON}; use a "
                f"{' or '.join(cls.APPLIES_TO)} student and teacher"
            )

    @classmethod
    def levels(cls, cfg: CfgNode, student_shapes: dict, teacher_shapes: dict) -> List[str]:
        """``IN_FEATURES``; when empty, the published levels of the student type (``PUBLISHED``
        key ``IN_FEATURES``) that both sides have, or [] (every common level) if there are none.

        Raises:
            ValueError: none of the published levels is in both student and teacher.
        """
        requested = list(cls.node(cfg).IN_FEATURES)
        if requested:
            return requested
        arch = cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE
        published = list(cls.PUBLISHED.get(arch, {}).get("IN_FEATURES", []))
        requested = [k for k in published if k in student_shapes and k in teacher_shapes]
        name = cls.__name__
        if published and not requested:
            raise ValueError(
                f"{name}: none of the published levels {published} is in both the student "
                f"{sorted(student_shapes)} and the teacher {sorted(teacher_shapes)}; set "
                f"MODEL.DISTILL.{name}.IN_FEATURES"
            )
        if len(requested) < len(published):
            logging.getLogger(__name__).warning(
                f"{name}: distilling {requested} of the published levels {published}"
            )
        return requested

    @classmethod
    def published(cls, cfg: CfgNode, key: str) -> float:
        """``MODEL.DISTILL.<NAME>.<key>``, or its published value for the student type if -1.

        Raises:
            ValueError: naming the full key, when the value is negative but not -1, or is -1
                and the method has no published value of the key for the student type.
        """
        full_key = f"MODEL.DISTILL.{cls.__name__}.{key}"
        value = float(cls.node(cfg)[key])
        if value >= 0:
            return value
        if value != -1:
            raise ValueError(
                f"{full_key} is {value}: use -1 for the published default or a value >= 0"
            )
        arch = cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE
        table = {a: v for a, v in cls.PUBLISHED.items() if key in v}
        if arch not in table:
            raise ValueError(
                f"{full_key} is -1 (published), but {cls.__name__} has published values only for "
                f"students {sorted(table)}, not {arch!r}; set the key explicitly"
            )
        return float(table[arch][key])


def method_names() -> List[str]:
    """The registered methods, in registration (table) order."""
    return [name for name, _ in DISTILL_LOSS_REGISTRY]


def get_method(name: str) -> Type[DistillMethod]:
    """The registered method ``name``.

    Raises:
        KeyError: naming the method and the known ones.
    """
    if name not in DISTILL_LOSS_REGISTRY:
        raise KeyError(f"MODEL.DISTILL.METHODS: unknown method {name!r}; known: {method_names()}")
    return DISTILL_LOSS_REGISTRY.get(name)


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` upcast to float32 if it has a lower floating precision (float16, bfloat16), else
    ``x`` itself: losses compute in float32 under AMP and stay float64 on float64 inputs."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
