"""Building, strictly loading and freezing the teacher detector.

A teacher that silently keeps random weights is the failure distillation users report most, so
every mismatch between the teacher's weights file and its model is an error naming the file and
the keys.
"""

import logging
import os
from typing import List

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode
from torch import nn

from ..config import load_config, num_classes, resolve_path
from ..errors import MissingTeacherConfigError
from .build import build_detector
from .teacher_missing import require_teacher_weights

logger = logging.getLogger(__name__)

_MAX_KEYS_SHOWN = 20


def get_teacher_cfg(cfg: CfgNode) -> CfgNode:
    """The teacher's config: ``MODEL.DISTILL.TEACHER.CONFIG_FILE`` + ``TEACHER.OPTS``, on the
    student's device.

    Raises:
        MissingTeacherConfigError: naming the key and the path at fault.
    """
    path = cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE
    if not path:
        raise MissingTeacherConfigError(
            "MODEL.DISTILL.TEACHER.CONFIG_FILE is empty: the Distiller needs one"
        )
    resolved = resolve_path(path)
    if not os.path.isfile(resolved):
        raise MissingTeacherConfigError(
            f"MODEL.DISTILL.TEACHER.CONFIG_FILE: no such file {path!r} (looked in the working "
            f"directory {os.getcwd()}; a path in a config file is also looked up next to it)"
        )
    tcfg = load_config(resolved, cfg.MODEL.DISTILL.TEACHER.OPTS)
    tcfg.MODEL.DEVICE = cfg.MODEL.DEVICE
    tcfg.MODEL.WEIGHTS = ""
    tcfg.freeze()
    return tcfg


def _fmt(keys: List[str]) -> str:
    shown = ", ".join(keys[:_MAX_KEYS_SHOWN])
    more = len(keys) - _MAX_KEYS_SHOWN
    return shown + (f", ... ({more} more)" if more > 0 else "")


class StrictTeacherCheckpointer(DetectionCheckpointer):
    """Loads teacher weights and raises on any missing, unexpected or mis-shaped key.

    Accepts plain detector checkpoints, Detectron2 model-zoo files, and CSGR checkpoints (whose
    ``student.*`` weights are taken).
    """

    def _load_file(self, filename):
        try:
            loaded = super()._load_file(filename)
        except Exception as e:
            raise ValueError(
                f"Teacher weights {filename!r} (MODEL.DISTILL.TEACHER.WEIGHTS) cannot be read as a "
                f"checkpoint ({type(e).__name__}: {e})"
            ) from e
        if not isinstance(loaded.get("model"), dict):
            raise ValueError(
                f"Teacher weights {filename!r} (MODEL.DISTILL.TEACHER.WEIGHTS) hold no dict of "
                f"weights (found {type(loaded.get('model')).__name__})"
            )
        return loaded

    def _load_model(self, checkpoint):
        model = checkpoint["model"]
        if any(k.startswith("student.") for k in model):
            checkpoint["model"] = {
                k[len("student.") :]: v for k, v in model.items() if k.startswith("student.")
            }
        incompatible = super()._load_model(checkpoint)
        problems = []
        wrong = [
            f"{k} (file {tuple(a)}, model {tuple(b)})" for k, a, b in incompatible.incorrect_shapes
        ]
        if wrong:
            problems.append(f"keys with the wrong shape: {_fmt(wrong)}")
        reshaped = {k for k, _, _ in incompatible.incorrect_shapes}
        missing = [k for k in incompatible.missing_keys if k not in reshaped]
        if missing:
            problems.append(f"keys the model needs but the file lacks: {_fmt(missing)}")
        if incompatible.unexpected_keys:
            unexpected = _fmt(incompatible.unexpected_keys)
            problems.append(f"keys in the file the model does not have: {unexpected}")
        if problems:
            raise ValueError(
                f"Teacher weights {self._path!r} (MODEL.DISTILL.TEACHER.WEIGHTS) do not fit the "
                "teacher built from MODEL.DISTILL.TEACHER.CONFIG_FILE: " + "; ".join(problems)
            )
        return None  # nothing left to log

    def load(self, path, *args, **kwargs):
        self._path = path
        return super().load(path, *args, **kwargs)


def load_teacher_weights(model: nn.Module, path: str) -> None:
    """Load ``path`` into ``model`` strictly.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the path is empty, or keys are missing, unexpected or of the wrong shape;
            the message names the file and the keys.
    """
    if not path:
        raise ValueError(
            "MODEL.DISTILL.TEACHER.WEIGHTS is empty: a teacher with random weights would "
            "silently ruin distillation. Point it to the teacher's trained checkpoint."
        )
    resolved = resolve_path(path)
    if "://" not in resolved and not os.path.isfile(resolved):
        raise FileNotFoundError(
            f"MODEL.DISTILL.TEACHER.WEIGHTS: no such file {path!r} (looked in the working "
            f"directory {os.getcwd()}; a path in a config file is also looked up next to it)"
        )
    StrictTeacherCheckpointer(model).load(resolved, checkpointables=[])
    logger.info(f"Loaded teacher weights strictly from {resolved}")


def build_teacher(cfg: CfgNode, student_num_classes: int) -> nn.Module:
    """Build the frozen teacher of a Distiller config.

    Args:
        cfg: the distillation config.
        student_num_classes: the student's class count, which the teacher must share.

    Returns:
        The teacher in eval mode with ``requires_grad=False`` on every parameter.
    """
    tcfg = get_teacher_cfg(cfg)
    if num_classes(tcfg) != student_num_classes:
        raise ValueError(
            f"Teacher config {cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE!r} has {num_classes(tcfg)} "
            f"classes but the student has {student_num_classes} (MODEL.ROI_HEADS.NUM_CLASSES / "
            "MODEL.RETINANET.NUM_CLASSES must agree)"
        )
    require_teacher_weights(cfg)
    teacher = build_detector(tcfg)
    load_teacher_weights(teacher, cfg.MODEL.DISTILL.TEACHER.WEIGHTS)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    teacher.input_format = tcfg.INPUT.FORMAT
    return teacher
