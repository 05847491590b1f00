"""CSGR's category term: per-class attention over positions (learned or from the ground-truth
boxes) and the per-class prototypes it averages, on per-channel normalised maps."""

import math
from typing import Dict, List, Sequence, Tuple

import torch
from detectron2.structures import Instances
from torch import nn

from .base import DistillBatch
from .box_cells import box_cells

__all__ = [
    "normalize_per_channel",
    "category_prototypes",
    "box_category_attention",
    "assign_box_levels",
    "category_ground_truth",
]


def normalize_per_channel(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean, unit variance per channel over the batch and the positions.

    Args:
        x: (N, C, H, W) features.
        eps: added to the (biased) variance.

    Returns:
        (N, C, H, W) ``(x - mean) / sqrt(var + eps)``, statistics over (N, H, W).
    """
    var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def category_prototypes(classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-class prototypes: features averaged with a softmax over positions of each class.

    Args:
        classifier: maps (N, C, H, W) to (N, K, H, W) per-class logits.
        x: (N, C, H, W) features.

    Returns:
        (N, K, C) prototypes ``P = A @ F^T`` where ``A = softmax_HW(classifier(x))`` is
        (N, K, HW) and ``F`` is ``x`` as (N, C, HW).
    """
    attention = classifier(x).flatten(2).softmax(dim=2)  # (N, K, HW)
    return torch.bmm(attention, x.flatten(2).transpose(1, 2))


def box_category_attention(
    gt_instances: List[Instances],
    num_classes: int,
    image_shape: Tuple[int, int],
    feature_shape: Tuple[int, int],
) -> torch.Tensor:
    """Per-class attention over the positions of one level, from the ground-truth boxes.

    Each box spreads a mass of 1 evenly over the cells it covers (:func:`box_cells`: boxes
    scaled to the level, ``floor(x0) .. ceil(x1)`` by ``floor(y0) .. ceil(y1)``); the attention
    of class k in an image is the mean of its boxes' maps, so it sums to 1 over the positions
    when the class is present (every box weighs the same, whatever its size) and is 0 when it is
    absent (whose prototype is then 0 for teacher and student alike).

    Args:
        gt_instances: per image, ``gt_boxes`` (XYXY pixels of the padded batch tensor) and
            ``gt_classes`` in [0, K).
        num_classes: K.
        image_shape: (H_pad, W_pad) of the padded batch tensor.
        feature_shape: (H, W) of the level.

    Returns:
        (N, K, H*W) float32 attention on the boxes' device.
    """
    if image_shape[0] <= 0 or image_shape[1] <= 0:
        raise ValueError(f"CSGR: the padded image shape {image_shape} is not set in the batch")
    h, w = feature_shape
    maps = []
    for inst in gt_instances:
        boxes = inst.gt_boxes.tensor
        attention = torch.zeros(num_classes, h * w, device=boxes.device)
        if boxes.numel():
            inside, _ = box_cells(boxes, image_shape, feature_shape)
            inside = inside.flatten(1).float()  # (M, HW)
            per_box = inside / inside.sum(dim=1, keepdim=True).clamp(min=1)
            classes = inst.gt_classes.to(boxes.device)
            attention.index_add_(0, classes, per_box)
            count = torch.bincount(classes, minlength=num_classes).clamp(min=1)
            attention = attention / count[:, None]
        maps.append(attention)
    return torch.stack(maps)


def assign_box_levels(
    gt_instances: List[Instances],
    level_ids: Sequence[int],
    canonical_box_size: float = 224.0,
    canonical_level: int = 4,
) -> List[torch.Tensor]:
    """The FPN level of each ground-truth box, by its size.

    FPN's rule (Lin et al., 2017, eq. 1; Detectron2's ROI pooler uses it with 224 px at level 4):
    ``floor(canonical_level + log2(sqrt(w * h) / canonical_box_size))``, then moved to the
    nearest of ``level_ids`` (the lower one at a tie).

    Args:
        gt_instances: per image, ``gt_boxes`` in pixels.
        level_ids: the available levels (2 for p2, ...).
        canonical_box_size / canonical_level: as in FPN.

    Returns:
        per image, (M_i,) long tensor of level ids, each one of ``level_ids``.
    """
    ids = torch.tensor(sorted(level_ids), dtype=torch.float32)
    out = []
    for inst in gt_instances:
        area = inst.gt_boxes.area().float().cpu()
        level = torch.floor(canonical_level + torch.log2(area.sqrt() / canonical_box_size + 1e-8))
        nearest = (level[:, None] - ids[None]).abs().argmin(dim=1)
        out.append(ids[nearest].long().to(inst.gt_boxes.tensor.device))
    return out


def category_ground_truth(
    batch: DistillBatch, in_features: Sequence[str], category_attention: str
) -> Dict[str, List[Instances]]:
    """The ground truth each category level compares.

    Args:
        batch: uses ``gt_instances``, ``image_shape`` and the student maps' sizes.
        in_features: the category term's levels.
        category_attention: "learned" (no ground truth: an empty dict), "gt" (every box on
            every level) or "gt_level" (each box on the level :func:`assign_box_levels` gives).

    Returns:
        per level name, the ``Instances`` of each image that level compares.
    """
    if category_attention == "learned":
        return {}
    n = batch.student_features[in_features[0]].shape[0]
    if len(batch.gt_instances) != n:
        raise ValueError(
            f"CSGR: CATEGORY_ATTENTION {category_attention!r} needs the ground truth of "
            f"each image; got {len(batch.gt_instances)} Instances for {n} images"
        )
    if category_attention == "gt":
        return {k: batch.gt_instances for k in in_features}
    pad_h = batch.image_shape[0]
    if pad_h <= 0:
        raise ValueError(f"CSGR: the padded image shape {batch.image_shape} is not set")
    ids = {  # the level of each map by its stride, log2(H_pad / H_l)
        k: round(math.log2(pad_h / batch.student_features[k].shape[-2])) for k in in_features
    }
    assigned = assign_box_levels(batch.gt_instances, sorted(set(ids.values())))
    return {
        k: [inst[a == level] for inst, a in zip(batch.gt_instances, assigned)]
        for k, level in ids.items()
    }
