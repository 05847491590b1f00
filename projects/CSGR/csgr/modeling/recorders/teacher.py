"""The teacher recorder: the frozen teacher's features and head outputs for the losses, computed
under ``torch.no_grad()`` with its own preprocessing and only as far as the losses need; and the
build-time check that student and teacher have the heads the chosen losses need.

Keys of :meth:`TeacherRecorder.head_outputs` (``DistillBatch.teacher_outputs``), by requirement:

"dense_head": dense_logits (N, R, K), dense_deltas (N, R, 4), dense_boxes (N, R, 4, decoded with
    the teacher's box transform on the student's anchors): the teacher's RetinaNet head on its own
    FPN features, same anchor layout as the student's (see :mod:`.student`).
"roi_head": roi_logits (R, K + 1), roi_deltas: the teacher's box pooler, box head and box
    predictor on the student's sampled proposal boxes (no teacher RPN).
"""

from typing import Dict, Iterable, List, Optional

import torch
from detectron2.modeling.roi_heads import CascadeROIHeads, StandardROIHeads
from torch import nn

from .student import decode_dense, flatten_dense

__all__ = ["RESPONSE_REQUIREMENTS", "TeacherRecorder", "check_head_requirements"]

RESPONSE_REQUIREMENTS = ("dense_head", "roi_head")
_DENSE_ATTRS = ("head", "anchor_generator", "box2box_transform", "head_in_features")


def _dense_problem(model: nn.Module) -> str:
    missing = [a for a in _DENSE_ATTRS if not hasattr(model, a)]
    if missing:
        return f"a {type(model).__name__}, which has no RetinaNet-style dense head ({missing})"
    return ""


def _roi_problem(model: nn.Module) -> str:
    roi_heads = getattr(model, "roi_heads", None)
    if roi_heads is None:
        return f"a {type(model).__name__}, which has no ROI heads"
    if not isinstance(roi_heads, StandardROIHeads) or isinstance(roi_heads, CascadeROIHeads):
        return (
            f"a {type(model).__name__} with {type(roi_heads).__name__}; only StandardROIHeads "
            "(one box pooler, box head and box predictor) is supported"
        )
    return ""


def _anchor_problem(student: nn.Module, teacher: nn.Module) -> str:
    s_gen, t_gen = student.anchor_generator, teacher.anchor_generator
    s_cells, t_cells = list(s_gen.cell_anchors), list(t_gen.cell_anchors)
    same = (
        len(student.head_in_features) == len(teacher.head_in_features)
        and list(s_gen.strides) == list(t_gen.strides)
        and s_gen.offset == t_gen.offset
        and len(s_cells) == len(t_cells)
        and all(a.shape == b.shape and torch.allclose(a, b) for a, b in zip(s_cells, t_cells))
    )
    if same:
        return ""
    return (
        f"student and teacher anchors differ (levels {list(student.head_in_features)} vs "
        f"{list(teacher.head_in_features)}, strides {list(s_gen.strides)} vs "
        f"{list(t_gen.strides)}); give both the same MODEL.ANCHOR_GENERATOR and "
        "MODEL.RETINANET.IN_FEATURES so that their anchors correspond one to one"
    )


def check_head_requirements(
    requires_by_method: Dict[str, Iterable[str]],
    student: nn.Module,
    teacher: nn.Module,
    hints: Optional[Dict[str, str]] = None,
) -> None:
    """Raise, when the Distiller is built, if a loss needs a head that student or teacher lacks.

    Args:
        requires_by_method: each method's ``REQUIRES``.
        student / teacher: the two detectors.
        hints: per method, text added to the error (e.g. how to turn the term off).

    Raises:
        ValueError: naming the method, the missing head, the model at fault and why.
    """
    for requirement, problem_of, what in (
        ("dense_head", _dense_problem, "a dense (RetinaNet) head's per-anchor outputs"),
        ("roi_head", _roi_problem, "the ROI box classifier's logits on sampled proposals"),
    ):
        methods = sorted(m for m, req in requires_by_method.items() if requirement in req)
        if not methods:
            continue
        for role, model in (("student", student), ("teacher", teacher)):
            problem = problem_of(model)
            if problem:
                hint = "".join(f" ({(hints or {})[m]})" for m in methods if (hints or {}).get(m))
                raise ValueError(
                    f"{', '.join(methods)} distil{'s' if len(methods) == 1 else ''} {what}, "
                    f"but the {role} is {problem}; this method needs a "
                    f"{'RetinaNet' if requirement == 'dense_head' else 'Faster R-CNN'} student "
                    f"and teacher{hint}"
                )
        if requirement == "dense_head":
            problem = _anchor_problem(student, teacher)
            if problem:
                raise ValueError(f"{', '.join(methods)}: {problem}")
    unknown = set().union(*requires_by_method.values()) - {"features", *RESPONSE_REQUIREMENTS}
    if unknown:
        raise ValueError(f"unknown distillation requirements {sorted(unknown)}")


class TeacherRecorder:
    """Runs the frozen teacher as far as the losses need.

    Args:
        teacher: the frozen teacher (eval mode), with an ``input_format`` attribute.
        student_input_format: the student's ``INPUT.FORMAT``; the teacher's input channels are
            flipped where the two differ (BGR vs RGB).
        requires: the union of the losses' ``REQUIRES``.
    """

    def __init__(self, teacher: nn.Module, student_input_format: str, requires: Iterable[str]):
        self.teacher = teacher
        self.flip_channels = teacher.input_format != student_input_format
        self.requires = set(requires)

    @torch.no_grad()
    def features(self, batched_inputs: List[dict]) -> Dict[str, torch.Tensor]:
        """Teacher backbone+FPN features, with the teacher's own channel order, pixel mean/std
        and padding.

        Args:
            batched_inputs: Detectron2 model inputs (``"image"``: (3, H, W) in the student's
                format).

        Returns:
            dict of (N, C_t, H_l, W_l) tensors by level name.
        """
        if self.flip_channels:
            batched_inputs = [{"image": x["image"].flip(0)} for x in batched_inputs]
        images = self.teacher.preprocess_image(batched_inputs)
        return self.teacher.backbone(images.tensor)

    @torch.no_grad()
    def head_outputs(
        self, teacher_features: Dict[str, torch.Tensor], student_outputs: Dict[str, object]
    ) -> Dict[str, object]:
        """Run the teacher's heads as far as ``requires`` needs (keys in the module docstring).

        Args:
            teacher_features: its FPN features by level name.
            student_outputs: the recorded student outputs (anchors, sampled proposal boxes).
        """
        teacher, requires = self.teacher, self.requires
        out: Dict[str, object] = {}
        if "dense_head" in requires:
            logits, deltas = teacher.head([teacher_features[f] for f in teacher.head_in_features])
            out["dense_logits"] = flatten_dense(logits, teacher.num_classes)
            out["dense_deltas"] = flatten_dense(deltas, 4)
            anchors = student_outputs["anchors"]
            if out["dense_logits"].shape[1] != len(anchors):
                raise ValueError(
                    f"teacher head gives {out['dense_logits'].shape[1]} anchors, the student "
                    f"{len(anchors)}; their padded input sizes or anchors differ"
                )
            out["dense_boxes"] = decode_dense(
                teacher.box2box_transform, out["dense_deltas"], anchors
            )
        if "roi_head" in requires:
            roi_heads = teacher.roi_heads
            boxes: List = student_outputs["roi_boxes"]
            features = [teacher_features[f] for f in roi_heads.box_in_features]
            box_features = roi_heads.box_head(roi_heads.box_pooler(features, boxes))
            out["roi_logits"], out["roi_deltas"] = roi_heads.box_predictor(box_features)
        return out
