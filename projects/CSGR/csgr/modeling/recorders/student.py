"""The student recorder: what the student computes during its own training forward, through
hooks.

The student runs once, as a plain detector; the distillation losses read what its backbone
(FPN) and heads produced on the way. :meth:`StudentRecorder.collect` returns the features, the
padded input size and the head outputs; keys of the head outputs (``DistillBatch.
student_outputs``), by requirement:

"dense_head" (RetinaNet):
    dense_in_features (list[str]): the head's levels, in order.
    dense_logits (N, R, K), dense_deltas (N, R, 4): the head's outputs of all R anchors of all
        levels, each level in (H, W, A) order, as RetinaNet's losses see them.
    dense_boxes (N, R, 4): ``dense_deltas`` decoded on the anchors (XYXY, padded-image pixels).
    anchors (Boxes): the (R, 4) anchors.

"roi_head" (GeneralizedRCNN with StandardROIHeads):
    roi_boxes (list[Boxes]): per image, the sampled proposal boxes the box head ran on.
    roi_logits (R, K + 1), roi_deltas (R, 4K or 4): the box predictor's outputs on them.
    roi_gt_classes (R,): their classes in [0, K] (K = background), from the sampled proposals.
"""

from typing import Any, Dict, Iterable, List, Tuple

import torch
from detectron2.modeling.meta_arch.dense_detector import permute_to_N_HWA_K
from detectron2.structures import Boxes
from torch import nn

__all__ = ["StudentRecorder", "flatten_dense", "decode_dense"]


def flatten_dense(predictions: List[torch.Tensor], dim: int) -> torch.Tensor:
    """Per-level (N, A * dim, H, W) head outputs -> (N, sum_l H_l * W_l * A, dim)."""
    return torch.cat([permute_to_N_HWA_K(x, dim) for x in predictions], dim=1)


def decode_dense(box2box_transform, deltas: torch.Tensor, anchors: Boxes) -> torch.Tensor:
    """Decode (N, R, 4) deltas on (R, 4) anchors into (N, R, 4) XYXY boxes (differentiable)."""
    n, r, _ = deltas.shape
    boxes = box2box_transform.apply_deltas(deltas.reshape(n * r, 4), anchors.tensor.repeat(n, 1))
    return boxes.view(n, r, 4)


class StudentRecorder:
    """Installs forward hooks on a student's backbone and heads and assembles what the losses
    read of it.

    Hooks record only while the student is in training mode.

    Args:
        student: the student detector.
        requires: the union of the losses' ``REQUIRES`` (empty: nothing is recorded).
    """

    def __init__(self, student: nn.Module, requires: Iterable[str]):
        self.student = student
        self.requires = set(requires)
        self._store: Dict[str, Any] = {}
        if self.requires:
            student.backbone.register_forward_hook(self._record_features)
        if "dense_head" in self.requires:
            student.head.register_forward_hook(self._record("dense"))
            student.anchor_generator.register_forward_hook(self._record("anchors"))
        if "roi_head" in self.requires:
            roi_heads = student.roi_heads
            roi_heads.box_pooler.register_forward_pre_hook(self._record_pooler_boxes)
            roi_heads.box_predictor.register_forward_hook(self._record("roi_predictions"))
            roi_heads.register_forward_hook(self._record("roi_heads"))

    def _record(self, key: str):
        def hook(module, inputs, output):
            if module.training:
                self._store[key] = output

        return hook

    def _record_features(self, module, inputs, output):
        if self.student.training:
            self._store["features"] = output
            self._store["image_shape"] = tuple(inputs[0].shape[-2:])

    def _record_pooler_boxes(self, module, inputs):
        if self.student.training:
            self._store["roi_boxes"] = inputs[1]

    def clear(self) -> None:
        self._store.clear()

    def collect(self) -> Tuple[Dict[str, torch.Tensor], Tuple[int, int], Dict[str, Any]]:
        """What the last training forward recorded, and forget it.

        Returns:
            features: backbone outputs by level name, each (N, C_s, H_l, W_l).
            image_shape: (H, W) of the padded batch tensor.
            outputs: the head outputs (keys in the module docstring).

        Raises:
            RuntimeError: the backbone or a required head did not run.
        """
        store, self._store = self._store, {}
        if "features" not in store:
            raise RuntimeError("the student's backbone did not run during a training forward")
        out: Dict[str, Any] = {}
        if "dense_head" in self.requires:
            if "dense" not in store or "anchors" not in store:
                raise RuntimeError("the student's dense head did not run during its forward")
            logits, deltas = store["dense"]
            student = self.student
            out["dense_in_features"] = list(student.head_in_features)
            out["dense_logits"] = flatten_dense(logits, student.num_classes)
            out["dense_deltas"] = flatten_dense(deltas, 4)
            out["anchors"] = Boxes.cat(store["anchors"])
            out["dense_boxes"] = decode_dense(
                student.box2box_transform, out["dense_deltas"], out["anchors"]
            )
        if "roi_head" in self.requires:
            if not {"roi_boxes", "roi_predictions", "roi_heads"} <= set(store):
                raise RuntimeError("the student's ROI box head did not run during its forward")
            proposals, _ = store["roi_heads"]
            scores, deltas = store["roi_predictions"]
            classes = torch.cat([p.gt_classes for p in proposals])
            boxes = list(store["roi_boxes"])
            if not (scores.shape[0] == classes.shape[0] == sum(len(b) for b in boxes)):
                raise RuntimeError(
                    f"ROI capture mismatch: {scores.shape[0]} logits, {classes.shape[0]} sampled "
                    f"proposals, {sum(len(b) for b in boxes)} pooled boxes"
                )
            out.update(roi_boxes=boxes, roi_logits=scores, roi_deltas=deltas)
            out["roi_gt_classes"] = classes
        return store["features"], store["image_shape"], out
