"""The Distiller meta-architecture: a trainable student, a frozen teacher, distillation losses."""

import logging
from typing import Dict, List, Optional, Tuple

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.utils.events import get_event_storage
from torch import nn

from ...config import num_classes
from ..build import build_detector
from ..distill_schedule import DistillSchedule
from ..loss_scale import SCALAR_PREFIX, LossScale
from ..losses.base import DistillBatch, DistillLoss, get_method
from ..recorders import StudentRecorder, TeacherRecorder, check_head_requirements
from ..student_init import init_from_method_settings, init_student_from_teacher
from ..teacher import build_teacher
from ..teacher_missing import require_teacher_weights

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

    The recorders (:mod:`..recorders`) gather what the losses read: the student's features and
    head outputs, captured by hooks during its own forward, and the teacher's, computed under
    ``torch.no_grad()`` only as far as the losses' ``REQUIRES`` need; a student or teacher lacking
    a needed head is an error when the Distiller is built.

    Public seam (what benchmarks and pictures use): :meth:`teacher_features`,
    :meth:`student_features`, :meth:`distill_batch` and :meth:`distill_loss_terms`; a training
    :meth:`forward` is ``distill_batch`` followed by ``distill_loss_terms``.

    In eval mode (inference, ``--eval-only``) only the student runs.
    """

    @configurable
    def __init__(
        self,
        *,
        student: nn.Module,
        teacher: Optional[nn.Module],
        losses: Dict[str, DistillLoss],
        head_hints: Optional[Dict[str, str]] = None,
        loss_scale: Optional[LossScale] = None,
        schedule: Optional[DistillSchedule] = None,
    ):
        """
        Args:
            student: a detector (GeneralizedRCNN, RetinaNet) to train, with an ``input_format``
                attribute ("BGR" or "RGB").
            teacher: a frozen detector with an ``input_format`` attribute, or ``None`` without
                losses (``MODEL.DISTILL.METHODS`` empty: the student trains alone).
            losses: distillation loss modules by method name.
            head_hints: per method, text added to the error when a needed head is missing.
            loss_scale: per-method factors of a calibrated loss scale (None: the terms as the
                methods weight them); its state is saved in checkpoints as ``loss_scale.*``.
            schedule: the factor on the terms by training iteration (None: 1 throughout); it reads
                the trainer's ``EventStorage.iter``.
        """
        super().__init__()
        self.student = student
        self._teacher = [teacher]
        self.distill_losses = nn.ModuleDict(losses)
        self.loss_scale = loss_scale
        self.schedule = schedule
        requires = set().union(*(m.REQUIRES for m in losses.values())) if losses else set()
        check_head_requirements(
            {k: m.REQUIRES for k, m in losses.items()}, student, teacher, head_hints
        )
        self.student_recorder = StudentRecorder(student, requires)
        self.teacher_recorder = None
        if teacher is not None:
            self.teacher_recorder = TeacherRecorder(teacher, student.input_format, requires)
        self._register_load_state_dict_pre_hook(self._prefix_plain_detector_keys)

    @classmethod
    def from_config(cls, cfg):
        parts = list(cfg.MODEL.DISTILL.STUDENT_INIT_FROM_TEACHER)
        needs_teacher = bool(cfg.MODEL.DISTILL.METHODS or parts)
        if needs_teacher:
            require_teacher_weights(cfg)  # before building anything (e.g. on a missing GPU)
        student = build_detector(cfg)
        student.input_format = cfg.INPUT.FORMAT
        teacher = build_teacher(cfg, num_classes(cfg)) if needs_teacher else None
        if not cfg.MODEL.DISTILL.METHODS:
            logger.warning(
                "MODEL.DISTILL.METHODS is empty: the student trains alone (a baseline); "
                + (
                    "the teacher (MODEL.DISTILL.TEACHER.*) is not built and its weights are not "
                    "loaded"
                    if teacher is None
                    else "the teacher only initialises it (STUDENT_INIT_FROM_TEACHER)"
                )
            )
        for name, model in (("student", student), ("teacher", teacher)):
            if model is not None and model.input_format not in ("BGR", "RGB"):
                raise ValueError(f"the {name}'s INPUT.FORMAT must be BGR or RGB")
        teacher_shapes = teacher.backbone.output_shape() if teacher is not None else {}
        losses = build_distill_losses(cfg, student.backbone.output_shape(), teacher_shapes)
        hints = {name: get_method(name).HEAD_HINT for name in losses}
        if parts:
            init_student_from_teacher(student, teacher, parts)
        init_from_method_settings(cfg, student, teacher, parts)
        scale = cfg.MODEL.DISTILL.LOSS_SCALE
        LossScale.check_settings(scale.MODE, scale.TARGET, scale.WARMUP_ITERS)
        loss_scale = None
        if scale.MODE != "published" and losses:
            loss_scale = LossScale(list(losses), scale.MODE, scale.TARGET, scale.WARMUP_ITERS)
        sched = cfg.MODEL.DISTILL.SCHEDULE
        schedule = DistillSchedule.from_settings(
            sched.START_ITER, sched.RAMP_ITERS, cfg.SOLVER.WARMUP_ITERS
        )
        return {
            "student": student,
            "teacher": teacher,
            "losses": losses,
            "head_hints": hints,
            "loss_scale": loss_scale,
            "schedule": schedule if losses else None,
        }

    @property
    def teacher(self) -> Optional[nn.Module]:
        return self._teacher[0]

    @property
    def device(self) -> torch.device:
        return self.student.device

    def _apply(self, fn, *args, **kwargs):
        if self.teacher is not None:
            self.teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def _prefix_plain_detector_keys(self, state_dict, prefix, *args, **kwargs):
        """Let a plain detector checkpoint (keys ``backbone.*``, ...) initialise the student."""
        own = (prefix + "student.", prefix + "distill_losses.", prefix + "loss_scale.")
        keys = [k for k in state_dict if k.startswith(prefix)]
        if keys and not any(k.startswith(own) for k in keys):
            for k in keys:
                state_dict[prefix + "student." + k[len(prefix) :]] = state_dict.pop(k)

    def teacher_features(self, batched_inputs: List[dict]) -> Dict[str, torch.Tensor]:
        """Teacher backbone+FPN features of a batch under ``torch.no_grad()``, with the teacher's
        own preprocessing: exactly what a training step computes.

        Returns:
            dict of (N, C_t, H_l, W_l) tensors by level name.
        """
        return self.teacher_recorder.features(batched_inputs)

    def student_features(
        self, batched_inputs: List[dict]
    ) -> Tuple[Dict[str, torch.Tensor], List[Tuple[int, int]]]:
        """Student backbone+FPN features of a batch with its own preprocessing, in any mode
        (gradients as the caller's context allows).

        Returns:
            (dict of (N, C_s, H_l, W_l) tensors by level name, each image's (h, w) before
            padding)
        """
        images = self.student.preprocess_image(batched_inputs)
        return self.student.backbone(images.tensor), list(images.image_sizes)

    def distill_batch(
        self, batched_inputs: List[dict]
    ) -> Tuple[Dict[str, torch.Tensor], DistillBatch]:
        """The student's training forward and everything the distillation losses read.

        Args:
            batched_inputs: a list of dicts from Detectron2's ``DatasetMapper`` (with
                ``"instances"``); the Distiller must be in training mode and have a method.

        Returns:
            (the student's own loss dict, the :class:`DistillBatch` of the step)
        """
        if not self.training or not self.distill_losses:
            raise RuntimeError("distill_batch needs a Distiller in training mode with a method")
        self.student_recorder.clear()
        losses = self.student(batched_inputs)
        student_features, image_shape, student_outputs = self.student_recorder.collect()
        teacher_features = self.teacher_features(batched_inputs)
        self._check_shapes(student_features, teacher_features)
        batch = DistillBatch(
            student_features=student_features,
            teacher_features=teacher_features,
            gt_instances=[x["instances"].to(self.device) for x in batched_inputs],
            image_shape=image_shape,
            student_outputs=student_outputs,
            teacher_outputs=self.teacher_recorder.head_outputs(teacher_features, student_outputs),
        )
        return losses, batch

    def distill_loss_terms(
        self, batch: DistillBatch, detection: Optional[Dict[str, torch.Tensor]] = None
    ) -> Dict[str, torch.Tensor]:
        """The ``loss_<method>_*`` terms of every method on a batch, as one flat dict.

        Args:
            batch: the step's :class:`DistillBatch`.
            detection: the student's own losses of the step; with a calibrated loss scale they
                are its yardstick, and the terms come out scaled (0 while it measures).

        Raises:
            KeyError: two methods return the same term.
        """
        per_method: Dict[str, Dict[str, torch.Tensor]] = {}
        seen = set()
        for name, module in self.distill_losses.items():
            per_method[name] = module(batch)
            for k in per_method[name]:
                if k in seen:
                    raise KeyError(f"distillation method {name} returned {k!r}, already a term")
                seen.add(k)
        if self.loss_scale is not None and detection is not None:
            terms = self.loss_scale(detection, per_method)
            self._log_loss_scale()
            return terms
        return {k: v for terms in per_method.values() for k, v in terms.items()}

    def _log_loss_scale(self) -> None:
        """``loss_scale/<method>`` into the event storage (metrics.json, TensorBoard)."""
        try:
            storage = get_event_storage()
        except AssertionError:  # outside a trainer: nothing to log into
            return
        factors = self.loss_scale.factor_dict() if self.loss_scale.is_fixed else {}
        for name, factor in factors.items():
            storage.put_scalar(SCALAR_PREFIX + name, factor, smoothing_hint=False)

    @staticmethod
    def _check_shapes(student_features, teacher_features):
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
        if not self.training or not self.distill_losses:
            return self.student(batched_inputs)
        losses, batch = self.distill_batch(batched_inputs)
        weight = 1.0 if self.schedule is None else self.schedule.current_factor()
        for k, v in self.distill_loss_terms(batch, detection=losses).items():
            if k in losses:
                raise KeyError(f"distillation term {k!r} is already one of the student's losses")
            losses[k] = v if weight == 1.0 else v * weight
        return losses
