"""Models and one-step callables for the speed benchmark of distillation.

Three kinds of work are timed on the same inputs:

* the student's own training step (forward, backward, optimizer step), as a plain detector;
* the teacher's backbone+FPN forward under ``torch.no_grad()``, with its own preprocessing,
  exactly as the Distiller runs it;
* the Distiller's training step with one method, and, isolated, that method's loss modules:
  their forward plus a backward of the distillation terms alone, down to leaf copies of the
  student tensors they read (so not through the student network).
"""

import dataclasses
import itertools
from typing import Callable, List, Optional

import torch
from detectron2.config import CfgNode
from detectron2.modeling import build_model
from detectron2.solver import build_optimizer
from torch import nn

from ..config import load_config, num_classes
from ..engine.loop import amp_dtype, build_train_loop
from ..modeling import DistillBatch, build_detector
from ..modeling.meta_arch.distiller import Distiller
from ..modeling.teacher import build_teacher, get_teacher_cfg

__all__ = [
    "load_distill_cfg",
    "save_random_teacher",
    "build_student",
    "build_distiller",
    "build_teacher_holder",
    "with_amp",
    "autocast",
    "make_train_step",
    "make_teacher_forward",
    "capture_distill_batch",
    "make_loss_step",
    "state_bytes",
]


def load_distill_cfg(config_file: str, opts: List[str], device: str) -> CfgNode:
    """A Distiller config from a file and ``KEY VALUE`` opts, on ``device``, with no student
    weights to load (the benchmark times random models).

    Raises:
        ValueError: the config is not a Distiller config.
    """
    cfg = load_config(config_file, opts)
    if cfg.MODEL.META_ARCHITECTURE != "Distiller":
        raise ValueError(f"{config_file} is not a Distiller config (MODEL.META_ARCHITECTURE)")
    cfg.MODEL.DEVICE = device
    cfg.MODEL.WEIGHTS = ""
    return cfg


def save_random_teacher(cfg: CfgNode, path: str, seed: int = 0) -> None:
    """Build the teacher of ``cfg`` with random weights and save them to ``path`` (a checkpoint
    that the Distiller's strict teacher loading accepts)."""
    tcfg = get_teacher_cfg(cfg).clone()
    tcfg.defrost()
    tcfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(seed)
    torch.save({"model": build_detector(tcfg).state_dict()}, path)


def build_student(cfg: CfgNode, seed: int = 0) -> nn.Module:
    """The plain student detector of a Distiller config, in training mode."""
    torch.manual_seed(seed)
    return build_detector(cfg).train()


def build_distiller(cfg: CfgNode, methods: List[str], seed: int = 0) -> nn.Module:
    """A Distiller with ``methods`` (its student initialised as :func:`build_student`'s).

    Raises:
        ValueError: a method does not apply to this student or teacher.
    """
    cfg = cfg.clone()
    cfg.MODEL.DISTILL.METHODS = list(methods)
    torch.manual_seed(seed)
    return build_model(cfg).train()


def build_teacher_holder(cfg: CfgNode, seed: int = 0) -> nn.Module:
    """A Distiller without losses that holds the config's teacher, for timing the teacher on
    the Distiller's own code path (``METHODS []`` builds no teacher)."""
    torch.manual_seed(seed)
    student = build_detector(cfg)
    student.input_format = cfg.INPUT.FORMAT
    teacher = build_teacher(cfg, num_classes(cfg))
    return Distiller(student=student, teacher=teacher, losses={}).train()


def with_amp(cfg: CfgNode, amp: bool) -> CfgNode:
    """A copy of ``cfg`` with ``SOLVER.AMP.ENABLED = amp`` (its ``SOLVER.AMP.PRECISION`` kept)."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.SOLVER.AMP.ENABLED = amp
    return cfg


def autocast(cfg: CfgNode):
    """The autocast context of a training step of ``cfg``: ``SOLVER.AMP.PRECISION`` on the
    device of ``MODEL.DEVICE`` when ``SOLVER.AMP.ENABLED``, else none (as the trainer's)."""
    dtype = amp_dtype(cfg)
    device_type = torch.device(cfg.MODEL.DEVICE).type
    return torch.autocast(device_type, dtype=dtype, enabled=dtype is not None)


def make_train_step(model: nn.Module, cfg: CfgNode, batch: List[dict]) -> Callable[[], None]:
    """One training step of ``model`` on ``batch``, exactly as training runs it: the trainer's
    :class:`~csgr.engine.loop.GuardedTrainer` step (forward under ``SOLVER.AMP``, the
    non-finite-loss guard, backward, metrics, optimizer step of Detectron2's
    ``build_optimizer``). Call it inside an ``EventStorage``."""
    optimizer = build_optimizer(cfg, model)
    loop = build_train_loop(cfg, model, itertools.repeat(batch), optimizer)

    def step():
        loop.run_step()
        loop.iter += 1

    step.optimizer = optimizer
    return step


def make_teacher_forward(distiller: nn.Module, cfg: CfgNode, batch: List[dict]):
    """The teacher's backbone+FPN forward under no_grad: the Distiller's own code path."""

    def forward():
        with autocast(cfg):
            return distiller.teacher_features(batch)

    return forward


def capture_distill_batch(distiller: nn.Module, cfg: CfgNode, batch: List[dict]) -> DistillBatch:
    """The :class:`DistillBatch` the Distiller gives its loss modules on ``batch`` (one
    training forward under no_grad)."""
    with torch.no_grad(), autocast(cfg):
        return distiller.distill_batch(batch)[1]


def _as_leaves(obj, leaves: List[torch.Tensor]):
    if torch.is_tensor(obj):
        if not obj.is_floating_point():
            return obj
        leaf = obj.detach().requires_grad_(True)
        leaves.append(leaf)
        return leaf
    if isinstance(obj, dict):
        return {k: _as_leaves(v, leaves) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_as_leaves(v, leaves) for v in obj)
    return obj


def make_loss_step(distiller: nn.Module, cfg: CfgNode, batch: List[dict]) -> Callable[[], None]:
    """Forward of the Distiller's loss modules plus a backward of their terms alone.

    The student's features and head outputs of one real step become leaf tensors, so the
    backward stops there: it covers the loss modules and their own parameters (adapters,
    attention blocks), not the student network (whose backward, in a real step, is shared with
    the detection losses). Terms without a gradient are only computed.
    """
    captured = capture_distill_batch(distiller, cfg, batch)
    leaves: List[torch.Tensor] = []
    leaf_batch = dataclasses.replace(
        captured,
        student_features=_as_leaves(captured.student_features, leaves),
        student_outputs=_as_leaves(captured.student_outputs, leaves),
    )
    modules = distiller.distill_losses

    def step():
        for t in leaves:
            t.grad = None
        modules.zero_grad(set_to_none=True)
        with autocast(cfg):
            terms = distiller.distill_loss_terms(leaf_batch)
        total = sum(terms.values())
        if total.requires_grad:
            total.backward()

    return step


def state_bytes(model: nn.Module, optimizer=None, teacher: Optional[nn.Module] = None) -> int:
    """Bytes of the tensors a training step keeps between steps: parameters, buffers, optimizer
    state, and the teacher's parameters and buffers (each storage counted once)."""
    tensors = list(model.parameters()) + list(model.buffers())
    if teacher is not None:
        tensors += list(teacher.parameters()) + list(teacher.buffers())
    if optimizer is not None:
        for state in optimizer.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
    seen, total = set(), 0
    for t in tensors:
        key = (t.device, t.untyped_storage().data_ptr())
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total
