"""The Distiller meta-architecture: a trainable student, a frozen teacher, distillation losses."""

import logging
from typing import Dict, List

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from ..losses.base import DistillBatch, DistillLoss, get_method
from ..student_outputs import StudentHeadCapture
from ...config import num_classes
from ..build import build_detector
from ..teacher import build_teacher
from ..teacher_outputs import check_head_requirements, teacher_head_outputs

logger = logging.getLogger(__name__)

__all__ = ["Distiller", "build_distill_losses"]


def build_distill_losses(
    cfg, student_shapes: Dict[str, ShapeSpec], teacher_shapes: Dict[str, ShapeSpec]
) -> Dict[str, DistillLoss]:
    """Build the losses named in ``MODEL.DISTILL.METHODS``, in order.

    Raises:
        KeyError: a method is not registered.
        ValueError: a method is listed twice or does not apply to the student type.
    """
    methods = list(cfg.MODEL.DISTILL.METHODS)
    if len(set(methods)) != len(methods):
        raise ValueError(f"MODEL.DISTILL.METHODS lists a method twice: {methods}")
    losses = {}
    for name in methods:
        method = get_method(name)
        method.check_applies(cfg)
        losses[name] = method.build(cfg, student_shapes, teacher_shapes)
    return losses


@META_ARCH_REGISTRY.register()
class Distiller(nn.Module):
    """Trains a student detector with distillation losses against a frozen teacher.

    The teacher is deliberately *not* a registered submodule: its weights stay out of
    ``state_dict()`` (so out of every checkpoint), out of ``parameters()`` (so out of the optimizer
    and of DDP's gradient sync) and out of ``train()``. ``to()``/``half()``-style calls still reach
    it through :meth:`_apply`. Checkpoint keys are ``student.*`` and ``distill_losses.*``; a plain
    detector checkpoint (``backbone.*``, ...) loads into the student.

    Response-based losses (``REQUIRES`` "dense_head" / "roi_head") get the student's head outputs
    captured by hooks during its own forward (:mod:`..student_outputs`) and the teacher's heads
    run under ``torch.no_grad()`` only as far as needed (:mod:`..teacher_outputs`); a student or
    teacher lacking the needed head is an error when the Distiller is built.

    In eval mode (inference, ``--eval-only``) only the student runs.
    """

    @configurable
    def __init__(self, *, student: nn.Module, teacher: nn.Module, losses: Dict[str, DistillLoss]):
        """
        Args:
            student: a detector (GeneralizedRCNN, RetinaNet) to train.
            teacher: a frozen detector with an ``input_format`` attribute ("BGR" or "RGB").
            losses: distillation loss modules by method name.
        """
        super().__init__()
        self.student = student
        self._teacher = [teacher]
        self.distill_losses = nn.ModuleDict(losses)
        self.requires = set().union(*(m.REQUIRES for m in losses.values())) if losses else set()
        check_head_requirements({k: m.REQUIRES for k, m in losses.items()}, student, teacher)
        self.flip_teacher_channels = teacher.input_format != student.input_format
        self._captured: Dict[str, object] = {}
        self.student.backbone.register_forward_hook(self._capture_student_features)
        # head outputs for response-based losses ("dense_head", "roi_head"), through hooks
        self._head_capture = StudentHeadCapture(student, self.requires)
        self._register_load_state_dict_pre_hook(self._prefix_plain_detector_keys)

    @classmethod
    def from_config(cls, cfg):
        student = build_detector(cfg)
        student.input_format = cfg.INPUT.FORMAT
        teacher = build_teacher(cfg, num_classes(cfg))
        for name, model in (("student", student), ("teacher", teacher)):
            if model.input_format not in ("BGR", "RGB"):
                raise ValueError(f"the {name}'s INPUT.FORMAT must be BGR or RGB")
        losses = build_distill_losses(
            cfg, student.backbone.output_shape(), teacher.backbone.output_shape()
        )
        return {"student": student, "teacher": teacher, "losses": losses}

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    @property
    def device(self) -> torch.device:
        return self.student.device

    def _apply(self, fn, *args, **kwargs):
        self.teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def _capture_student_features(self, module, inputs, output):
        if self.training:
            self._captured["features"] = output
            self._captured["image_shape"] = tuple(inputs[0].shape[-2:])

    def _prefix_plain_detector_keys(self, state_dict, prefix, *args, **kwargs):
        """Let a plain detector checkpoint (keys ``backbone.*``, ...) initialise the student."""
        own = (prefix + "student.", prefix + "distill_losses.")
        keys = [k for k in state_dict if k.startswith(prefix)]
        if keys and not any(k.startswith(own) for k in keys):
            for k in keys:
                state_dict[prefix + "student." + k[len(prefix) :]] = state_dict.pop(k)

    @torch.no_grad()
    def _teacher_features(self, batched_inputs: List[dict]) -> Dict[str, torch.Tensor]:
        """Teacher backbone+FPN features of the batch, with the teacher's own preprocessing.

        Returns:
            dict of (N, C_t, H_l, W_l) tensors by level name.
        """
        teacher = self.teacher
        if self.flip_teacher_channels:
            batched_inputs = [{"image": x["image"].flip(0)} for x in batched_inputs]
        images = teacher.preprocess_image(batched_inputs)
        return teacher.backbone(images.tensor)

    def _check_shapes(self, student_features, teacher_features):
        for k, s in student_features.items():
            t = teacher_features.get(k)
            if t is not None and s.shape[-2:] != t.shape[-2:]:
                raise ValueError(
                    f"level {k}: student features {tuple(s.shape)} and teacher features "
                    f"{tuple(t.shape)} differ in size; give both backbones the same "
                    "size_divisibility (FPN: 32) so that their padded inputs agree"
                )

    def forward(self, batched_inputs: List[dict]):
        """
        Args:
            batched_inputs: a list of dicts from Detectron2's ``DatasetMapper``.

        Returns:
            Training: flat dict of the student's losses and the ``loss_<method>_*`` terms.
            Eval: the student's outputs.
        """
        if not self.training:
            return self.student(batched_inputs)
        self._captured.clear()
        self._head_capture.clear()
        losses = self.student(batched_inputs)
        if not self.distill_losses:
            return losses
        student_features = self._captured.pop("features")
        teacher_features = self._teacher_features(batched_inputs)
        self._check_shapes(student_features, teacher_features)
        student_outputs = self._head_capture.collect()
        teacher_outputs = teacher_head_outputs(
            self.teacher, teacher_features, student_outputs, self.requires
        )
        batch = DistillBatch(
            student_features=student_features,
            teacher_features=teacher_features,
            gt_instances=[x["instances"].to(self.device) for x in batched_inputs],
            image_shape=self._captured.pop("image_shape"),
            student_outputs=student_outputs,
            teacher_outputs=teacher_outputs,
        )
        for name, module in self.distill_losses.items():
            for k, v in module(batch).items():
                if k in losses:
                    raise KeyError(f"distillation method {name} returned {k!r}, already a loss")
                losses[k] = v
        return losses
