"""PCD: "Parallel-Circuitized" response distillation for dense detectors.

Song et al., "'Parallel-Circuitized' distillation for dense object detection", Displays 81
(2024) 102587, doi:10.1016/j.displa.2023.102587.

**A reconstruction from the abstract.** The paper distils the teacher's responses through two
parallel branches (classification and localisation, "like a parallel circuit"), adds a Soft
Distribution-Guided Quality Predictor (SDGQP) that predicts localisation quality from GFL-style
box-edge distributions, and a localisation quality distillation that bridges the
classification and regression branches. Detectron2's RetinaNet head predicts plain deltas, no
edge distributions, so here:

* ``loss_pcd_cls`` (classification branch): per anchor and class, the binary KL between the
  teacher's and the student's sigmoid scores at temperature T (times T^2), over *all* anchors.
  Each anchor is weighted by the teacher's quality ``q_t`` where the anchor is positive and by
  the teacher's confidence ``c_t = max_k sigmoid(z_t,k)`` elsewhere; the sum is divided by the
  sum of the weights.
* ``loss_pcd_loc`` (localisation branch, computed side by side): ``1 - GIoU`` between the
  student's and the teacher's decoded boxes (or L1 between their deltas) at every anchor,
  weighted by ``c_t`` and divided by the sum of the weights.
* ``loss_pcd_quality`` (localisation quality distillation): the teacher's quality is
  ``q_t = IoU(teacher box, matched GT box) * sigmoid(z_t, GT class)`` on positive anchors and 0
  on negative ones, anchors being matched to GT as RetinaNet does (IoU Matcher, low-quality
  matches allowed). A student quality branch (one 3x3 conv shared by the levels, on the student's
  FPN features, ``A`` outputs per position) learns ``q_t`` with a quality-focal binary KL
  ``|q_t - q_s|^gamma * KL(q_t || q_s)`` over the positive anchors, divided by their number.
  The branch belongs to this loss module and is dropped at export; it shapes the student's
  features, not its scores. Its predictions on negative anchors are never used, so by default
  they are not trained. **Departure from GFL**: ``quality_anchors="all"`` trains them towards 0
  as GFL's quality focal loss does (the sum over every non-ignored anchor, still divided by the
  positives: about 150k anchors over a few hundred positives on 320x320 images, P2-P6, 9 anchors
  per position), a step that can feed its own growth through the branch and the features it
  reads (docs/methods/pcd.md).

Left out: SDGQP's distribution statistics (no distribution head), any change of the student's
head or of its inference scores, and the paper's own loss weights (the abstract gives none; the
defaults here are ours). The branch weights are added, never multiplied ("parallel").
"""

import math
from typing import Dict, List, Optional

import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling.anchor_generator import build_anchor_generator
from detectron2.modeling.matcher import Matcher
from detectron2.modeling.meta_arch.dense_detector import permute_to_N_HWA_K
from detectron2.structures import Boxes, pairwise_iou
from detectron2.structures.boxes import matched_pairwise_iou
from fvcore.nn import giou_loss
from torch import nn
from torch.nn import functional as F

from .base import (
    DISTILL_LOSS_REGISTRY,
    DistillBatch,
    DistillLoss,
    DistillMethod,
    at_least_float32,
)

__all__ = ["PCDLoss", "PCD", "binary_kl_with_logits", "match_anchors"]

LOC_LOSS_TYPES = ("giou", "l1")
QUALITY_ANCHORS = ("all", "positive")


def binary_kl_with_logits(
    student_logits: torch.Tensor, target: torch.Tensor, target_logits: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Elementwise ``KL(Bernoulli(target) || Bernoulli(sigmoid(student_logits)))``.

    Args:
        student_logits: (...) logits.
        target: (...) probabilities in [0, 1], treated as constants.
        target_logits: (...) logits of ``target`` if it has them; then the KL is computed as
            ``BCE(student_logits, target) - BCE(target_logits, target)``, exactly 0 where the
            logits are equal.

    Returns:
        (...) non-negative values.
    """
    cross = F.binary_cross_entropy_with_logits(student_logits, target, reduction="none")
    if target_logits is not None:
        entropy = F.binary_cross_entropy_with_logits(target_logits, target, reduction="none")
    else:
        entropy = -(torch.xlogy(target, target) + torch.xlogy(1 - target, 1 - target))
    return (cross - entropy).clamp(min=0)


@torch.no_grad()
def match_anchors(matcher: Matcher, anchors: Boxes, gt_instances: List) -> tuple:
    """Label the anchors of every image as RetinaNet does.

    Args:
        matcher: IoU matcher with labels 0 (negative), -1 (ignored), 1 (positive).
        anchors: (R, 4) anchors of all levels.
        gt_instances: per image, ``Instances`` with ``gt_boxes`` and ``gt_classes``.

    Returns:
        labels (N, R) in {-1, 0, 1}; matched GT boxes (N, R, 4) and classes (N, R), meaningful
        only where the label is 1 (zeros elsewhere when an image has no GT).
    """
    labels, boxes, classes = [], [], []
    for gt in gt_instances:
        matched_idxs, anchor_labels = matcher(pairwise_iou(gt.gt_boxes, anchors))
        if len(gt) > 0:
            boxes.append(gt.gt_boxes.tensor[matched_idxs])
            classes.append(gt.gt_classes[matched_idxs])
        else:
            boxes.append(torch.zeros_like(anchors.tensor))
            classes.append(torch.zeros_like(matched_idxs))
        labels.append(anchor_labels)
    return torch.stack(labels), torch.stack(boxes), torch.stack(classes)


class PCDLoss(DistillLoss):
    """Parallel classification / localisation response distillation with quality distillation.

    See the module docstring for the terms. Reads no config; see :class:`PCD`.

    Args:
        in_channels: channels of the student's head input levels (equal on every level).
        num_anchors: anchors per position A.
        matcher: the anchor matcher (RetinaNet's thresholds).
        cls_weight / loc_weight / quality_weight: weights of the three terms.
        loc_loss_type: "giou" (decoded boxes) or "l1" (deltas).
        quality_gamma: focal exponent of the quality term.
        quality_anchors: anchors of the quality term: "positive" (the positive anchors only)
            or "all" (every non-ignored anchor, the teacher's quality 0 on negatives, as GFL's
            quality focal loss); either way the sum is divided by the number of positives.
        temperature: temperature T of the classification term.
        prior_prob: initial quality prediction of the quality branch.
    """

    REQUIRES = frozenset({"dense_head"})

    def __init__(
        self,
        in_channels: int,
        num_anchors: int,
        matcher: Matcher,
        cls_weight: float = 1.0,
        loc_weight: float = 1.0,
        quality_weight: float = 1.0,
        loc_loss_type: str = "giou",
        quality_gamma: float = 2.0,
        quality_anchors: str = "positive",
        temperature: float = 1.0,
        prior_prob: float = 0.01,
    ):
        super().__init__()
        if loc_loss_type not in LOC_LOSS_TYPES:
            raise ValueError(f"PCD: loc_loss_type must be one of {LOC_LOSS_TYPES}")
        if quality_anchors not in QUALITY_ANCHORS:
            raise ValueError(
                f"PCD: quality_anchors must be one of {QUALITY_ANCHORS}, got {quality_anchors!r}"
            )
        if temperature <= 0:
            raise ValueError(f"PCD: temperature must be > 0, got {temperature}")
        self.matcher = matcher
        self.cls_weight = cls_weight
        self.loc_weight = loc_weight
        self.quality_weight = quality_weight
        self.loc_loss_type = loc_loss_type
        self.quality_gamma = quality_gamma
        self.quality_anchors = quality_anchors
        self.temperature = temperature
        self.quality_branch = nn.Conv2d(in_channels, num_anchors, kernel_size=3, padding=1)
        nn.init.normal_(self.quality_branch.weight, std=0.01)
        nn.init.constant_(self.quality_branch.bias, -math.log(1 / prior_prob - 1))

    def quality_logits(self, features: Dict[str, torch.Tensor], levels: List[str]):
        """Student quality logits (N, R) over the anchors of ``levels`` in head order."""
        return torch.cat(
            [
                permute_to_N_HWA_K(self.quality_branch(at_least_float32(features[k])), 1)
                for k in levels
            ],
            dim=1,
        ).squeeze(2)

    def forward(self, batch: DistillBatch) -> Dict[str, torch.Tensor]:
        """
        Args:
            batch: uses ``student_outputs`` / ``teacher_outputs`` keys "dense_logits" (N, R, K),
                "dense_boxes" (N, R, 4) and "dense_deltas" (N, R, 4); ``student_outputs``
                "anchors" (Boxes, (R, 4)) and "dense_in_features"; the student's FPN features
                of those levels and ``gt_instances``.

        Returns:
            {"loss_pcd_cls", "loss_pcd_loc", "loss_pcd_quality"}: weighted float32 scalars.
        """
        so, to = batch.student_outputs, batch.teacher_outputs
        keys = ("dense_logits", "dense_boxes", "dense_deltas")
        missing = [k for k in keys + ("anchors", "dense_in_features") if k not in so]
        missing += ["teacher " + k for k in keys if k not in to]
        if missing:
            raise KeyError(f"PCD: the batch lacks dense head outputs {missing}")
        device = so["dense_logits"].device
        with torch.autocast(device_type=device.type, enabled=False):
            s_logits, t_logits = (
                at_least_float32(so["dense_logits"]),
                at_least_float32(to["dense_logits"]).detach(),
            )
            labels, gt_boxes, gt_classes = match_anchors(
                self.matcher, so["anchors"], batch.gt_instances
            )
            pos = labels == 1
            t_prob = t_logits.sigmoid()
            t_conf = t_prob.max(dim=2).values
            t_boxes = at_least_float32(to["dense_boxes"]).detach()
            iou = matched_pairwise_iou(
                Boxes(t_boxes.reshape(-1, 4)), Boxes(gt_boxes.reshape(-1, 4))
            )
            iou = iou.nan_to_num(0.0)  # degenerate boxes
            gt_prob = t_prob.gather(2, gt_classes.clamp(min=0).unsqueeze(2)).squeeze(2)
            q_t = torch.where(pos, iou.view_as(gt_prob) * gt_prob, torch.zeros_like(gt_prob))

            # classification branch
            t = self.temperature
            t_scaled = t_logits / t
            kl = binary_kl_with_logits(s_logits / t, t_scaled.sigmoid(), t_scaled).sum(dim=2)
            w_cls = torch.where(pos, q_t, t_conf)
            loss_cls = (w_cls * kl).sum() / w_cls.sum().clamp(min=1.0) * (t * t)

            # localisation branch, side by side
            if self.loc_loss_type == "giou":
                s_boxes = at_least_float32(so["dense_boxes"])
                try:
                    dist = giou_loss(s_boxes.reshape(-1, 4), t_boxes.reshape(-1, 4))
                except AssertionError as e:  # fvcore's "bad box"; checked only when it fails
                    if torch.isfinite(s_boxes).all():
                        raise
                    raise FloatingPointError(
                        "Predicted boxes or scores contain Inf/NaN. Training has diverged. "
                        "(PCD: the student's decoded boxes)"
                    ) from e
                dist = dist.view_as(t_conf)
            else:
                diff = (
                    at_least_float32(so["dense_deltas"])
                    - at_least_float32(to["dense_deltas"]).detach()
                )
                dist = diff.abs().sum(dim=2)
            loss_loc = (t_conf * dist).sum() / t_conf.sum().clamp(min=1.0)

            # localisation quality distillation
            q_logits = self.quality_logits(batch.student_features, so["dense_in_features"])
            if q_logits.shape != q_t.shape:
                raise ValueError(
                    f"PCD: quality branch gives {tuple(q_logits.shape)} anchors but the head "
                    f"{tuple(q_t.shape)}; the anchors per position must match the head's"
                )
            q_kl = binary_kl_with_logits(q_logits, q_t)
            focal = (q_logits.sigmoid() - q_t).abs().pow(self.quality_gamma)
            valid = (labels >= 0 if self.quality_anchors == "all" else pos).float()
            loss_quality = (valid * focal * q_kl).sum() / pos.sum().clamp(min=1)
        return {
            "loss_pcd_cls": self.cls_weight * loss_cls,
            "loss_pcd_loc": self.loc_weight * loss_loc,
            "loss_pcd_quality": self.quality_weight * loss_quality,
        }


@DISTILL_LOSS_REGISTRY.register()
class PCD(DistillMethod):
    """PCD: "Parallel-Circuitized" response distillation for dense detectors (Song et al.,
    Displays 2024), reconstructed for a RetinaNet student and teacher with the same anchors;
    builds :class:`PCDLoss` from ``MODEL.DISTILL.PCD``. The Distiller checks the pair.
    """

    APPLIES_TO = ("RetinaNet",)
    NOT_APPLICABLE_REASON = (
        "PCD distils a dense (RetinaNet) head's per-anchor outputs (DKD is the Faster R-CNN "
        "counterpart)"
    )

    @staticmethod
    def add_config(_C):
        # Weight of loss_pcd_cls: per-anchor, per-class binary KL between the teacher's and the
        # student's sigmoid scores at TEMPERATURE (times T^2), weighted per anchor by the
        # teacher's quality (positive anchors) or confidence (all other anchors), normalised by
        # the weights' sum.
        _C.CLS_WEIGHT = 1.0
        # Weight of loss_pcd_loc: distance between the student's and the teacher's boxes at
        # every anchor, weighted by the teacher's confidence (max class probability),
        # normalised by the weights' sum.
        _C.LOC_WEIGHT = 1.0
        # Distance of loss_pcd_loc: "giou" (1 - GIoU of the decoded XYXY boxes) or "l1" (L1 of
        # the regression deltas, summed over the 4 coordinates).
        _C.LOC_LOSS_TYPE = "giou"
        # Weight of loss_pcd_quality: the student's quality branch (a 3x3 conv on its FPN
        # features, part of the loss module, dropped at export) learns the teacher's
        # localisation quality (IoU of the teacher's box with the matched GT box times its
        # GT-class probability) with a quality-focal binary KL, normalised by the number of
        # positive anchors.
        _C.QUALITY_WEIGHT = 1.0
        # Exponent gamma of the focal factor |q_t - q_s|^gamma of loss_pcd_quality (0: plain KL).
        _C.QUALITY_GAMMA = 2.0
        # Anchors of loss_pcd_quality: "positive" (positive anchors only) or "all" (every
        # non-ignored anchor, the teacher's quality 0 on negatives, as in GFL's quality focal
        # loss). "all" sums ~150k anchors over a few hundred positives, a step on the branch and
        # the features it reads that can run away (docs/methods/pcd.md).
        _C.QUALITY_ANCHORS = "positive"
        # Temperature T (> 0, unitless) dividing both sides' classification logits in
        # loss_pcd_cls.
        _C.TEMPERATURE = 1.0

    @classmethod
    def build(cls, cfg, student_shapes, teacher_shapes) -> PCDLoss:
        del teacher_shapes
        levels = list(cfg.MODEL.RETINANET.IN_FEATURES)
        shapes: List[ShapeSpec] = [student_shapes[k] for k in levels]
        channels = {s.channels for s in shapes}
        num_anchors = set(build_anchor_generator(cfg, shapes).num_cell_anchors)
        if len(channels) != 1 or len(num_anchors) != 1:
            raise ValueError(
                f"PCD: the head levels {levels} must share one width and one anchor count "
                f"(widths {sorted(channels)}, anchors per position {sorted(num_anchors)})"
            )
        pcd_cfg = cls.node(cfg)
        for key, allowed in (
            ("LOC_LOSS_TYPE", LOC_LOSS_TYPES),
            ("QUALITY_ANCHORS", QUALITY_ANCHORS),
        ):
            if pcd_cfg[key] not in allowed:
                raise ValueError(
                    f"MODEL.DISTILL.PCD.{key} must be one of {allowed}, got {pcd_cfg[key]!r}"
                )
        matcher = Matcher(
            cfg.MODEL.RETINANET.IOU_THRESHOLDS,
            cfg.MODEL.RETINANET.IOU_LABELS,
            allow_low_quality_matches=True,
        )
        return PCDLoss(
            in_channels=channels.pop(),
            num_anchors=num_anchors.pop(),
            matcher=matcher,
            cls_weight=cls.published(cfg, "CLS_WEIGHT"),
            loc_weight=cls.published(cfg, "LOC_WEIGHT"),
            quality_weight=cls.published(cfg, "QUALITY_WEIGHT"),
            loc_loss_type=pcd_cfg.LOC_LOSS_TYPE,
            quality_gamma=pcd_cfg.QUALITY_GAMMA,
            quality_anchors=pcd_cfg.QUALITY_ANCHORS,
            temperature=pcd_cfg.TEMPERATURE,
        )
