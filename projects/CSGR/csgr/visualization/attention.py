"""Pictures of what CSGR distils: category attention maps and criss-cross relations.

For one image, the trained Distiller's teacher and student FPN features (its public
``teacher_features`` / ``student_features``) go through the CSGR loss module's own layers
(channel adapter, per-channel normalisation, per-level 1x1 classifier, criss-cross attention),
exactly as in training, and are drawn side by side:

* ``category_<level>_<k>_<class>.png``: image | teacher | student attention ``softmax_HW`` of
  class k's logits (the weights of the class prototype), on the image;
* ``relation_<level>.png``: image | teacher | student criss-cross attention weights of one
  pixel over its row and column.

The maps are computed here from the modules' parameters; ``CSGRLoss`` and
``CrissCrossAttention`` are used as they are.
"""

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.data import transforms as T
from detectron2.modeling import build_model
from torch import nn

from ..layers import CrissCrossAttention, criss_cross_aggregate
from ..modeling.losses import DistillBatch
from ..modeling.losses.csgr import CSGRLoss
from ..modeling.losses.csgr_category import normalize_per_channel
from ..modeling.losses.feature_pairs import feature_pairs
from .drawing import imwrite, map_to_image, mark_pixel, overlay_heatmap, side_by_side

__all__ = [
    "load_distiller",
    "preprocess",
    "csgr_level_features",
    "category_attention",
    "criss_cross_relation",
    "class_names",
    "write_attention_pictures",
]


def load_distiller(cfg, weights: str) -> nn.Module:
    """Build the Distiller of a config (teacher loaded strictly) and load a checkpoint strictly.

    Args:
        cfg: a Distiller config.
        weights: a checkpoint of a distillation run (``student.*`` and ``distill_losses.*``).

    Returns:
        The Distiller in eval mode.

    Raises:
        ValueError: naming the file and the keys when the checkpoint does not fit.
    """
    if cfg.MODEL.META_ARCHITECTURE != "Distiller":
        raise ValueError(
            f"MODEL.META_ARCHITECTURE is {cfg.MODEL.META_ARCHITECTURE!r}: attention maps need "
            "the config of a distillation run (META_ARCHITECTURE: Distiller)"
        )
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"no such checkpoint {weights!r}")
    model = build_model(cfg)
    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    state = checkpoint.get("model", checkpoint)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{weights} does not fit the Distiller of this config (a distillation checkpoint "
            f"with the distill_losses.* weights is needed): missing {missing[:10]}, "
            f"unexpected {unexpected[:10]}"
        )
    return model.eval()


def preprocess(cfg, image_bgr: np.ndarray) -> List[dict]:
    """One Detectron2 model input, prepared as ``DefaultPredictor`` prepares it.

    Args:
        image_bgr: (H, W, 3) uint8 image in BGR order.

    Returns:
        ``[{"image": (3, h, w) float32 tensor in cfg.INPUT.FORMAT, "height": H, "width": W}]``
    """
    image = image_bgr[:, :, ::-1] if cfg.INPUT.FORMAT == "RGB" else image_bgr
    aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    resized = aug.get_transform(image).apply_image(image)
    tensor = torch.as_tensor(np.ascontiguousarray(resized.astype("float32").transpose(2, 0, 1)))
    return [{"image": tensor, "height": image.shape[0], "width": image.shape[1]}]


def _csgr_module(distiller: nn.Module) -> CSGRLoss:
    module = distiller.distill_losses["CSGR"] if "CSGR" in distiller.distill_losses else None
    if not isinstance(module, CSGRLoss):
        raise ValueError(
            "MODEL.DISTILL.METHODS has no 'CSGR': there are no category or relation maps to draw"
        )
    return module


@torch.no_grad()
def csgr_level_features(
    distiller: nn.Module, batched_inputs: List[dict]
) -> Tuple[Dict[str, Tuple[torch.Tensor, torch.Tensor]], Tuple[int, int]]:
    """Teacher and student features of each CSGR level, as the CSGR loss sees them.

    Args:
        distiller: a Distiller with a "CSGR" loss, in eval mode.
        batched_inputs: one image (see :func:`preprocess`).

    Returns:
        ({level: ((1, C_t, H_l, W_l) teacher, (1, C_t, H_l, W_l) adapted student)}, both
        normalised per channel; (h, w) of the resized input before padding)
    """
    module = _csgr_module(distiller)
    student_features, image_sizes = distiller.student_features(batched_inputs)
    batch = DistillBatch(student_features, distiller.teacher_features(batched_inputs))
    levels = {
        k: (normalize_per_channel(teacher), normalize_per_channel(student))
        for k, student, teacher in feature_pairs(batch, module.in_features, module.adapters, "CSGR")
    }
    return levels, tuple(image_sizes[0])


def category_attention(classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """CSGR's category attention maps (the prototype weights of each class).

    Args:
        classifier: the level's 1x1 conv C -> K.
        x: (1, C, H, W) normalised features.

    Returns:
        (K, H, W), each class's softmax over the H*W positions.
    """
    logits = classifier(x)[0]  # (K, H, W)
    return logits.flatten(1).softmax(dim=1).view_as(logits)


def criss_cross_relation(
    module: CrissCrossAttention, x: torch.Tensor, row: int, col: int, step: int = 0
) -> torch.Tensor:
    """The criss-cross attention weights of pixel (row, col) over its row and column.

    Same energies and softmax as :func:`csgr.layers.criss_cross_aggregate`: one softmax over
    the H column and W row positions, the centre counted once (in the row).

    Args:
        module: the level's criss-cross attention block.
        x: (1, C, H, W) input of the block.
        row, col: the pixel, in cells of the level.
        step: which recurrence pass (0-based, < module.recurrence); earlier passes are applied.

    Returns:
        (H, W) weights, zero off the pixel's row and column, summing to 1.
    """
    if not 0 <= step < module.recurrence:
        raise ValueError(f"step must be in [0, {module.recurrence}), got {step}")
    for _ in range(step):
        aggregated = criss_cross_aggregate(
            module.query_conv(x), module.key_conv(x), module.value_conv(x)
        )
        x = module.residual(x, aggregated)
    q = module.query_conv(x)[0, :, row, col].float()  # (C',)
    k = module.key_conv(x)[0].float()  # (C', H, W)
    h, w = k.shape[1:]
    energy_col = torch.einsum("c,ch->h", q, k[:, :, col])
    energy_col[row] = float("-inf")  # the centre counts once, in the row
    energy_row = torch.einsum("c,cw->w", q, k[:, row, :])
    weights = torch.cat([energy_col, energy_row]).softmax(dim=0)
    relation = torch.zeros(h, w, device=x.device)
    relation[:, col] = weights[:h]
    relation[row, :] += weights[h:]
    return relation


def class_names(cfg, num_classes: int) -> List[str]:
    """thing_classes of the first registered test (else train) dataset, else "class<k>"."""
    for name in (*cfg.DATASETS.TEST, *cfg.DATASETS.TRAIN):
        if name in MetadataCatalog.list():
            names = MetadataCatalog.get(name).get("thing_classes", None)
            if names and len(names) == num_classes:
                return list(names)
    return [f"class{k}" for k in range(num_classes)]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _pair(teacher: np.ndarray, student: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Scale both maps by their common maximum, so that their colours compare."""
    top = max(float(teacher.max()), float(student.max()), 1e-12)
    return teacher / top, student / top


@torch.no_grad()
def write_attention_pictures(
    distiller: nn.Module,
    cfg,
    image_bgr: np.ndarray,
    output_dir: str,
    levels: Optional[Sequence[str]] = None,
    pixel: Optional[Tuple[int, int]] = None,
    step: int = 0,
) -> List[str]:
    """Write the category and relation pictures of one image.

    Args:
        distiller: a Distiller with a "CSGR" loss, trained weights loaded.
        cfg: its config (input size and format, dataset names for class names).
        image_bgr: (H, W, 3) uint8 BGR image.
        output_dir: created if needed.
        levels: FPN levels to draw; default the finest CSGR level.
        pixel: (x, y) in image pixels for the relation map; default the image centre.
        step: recurrence pass of the relation map.

    Returns:
        The written PNG paths; every picture is (H, 3 * W, 3). The category pictures are
        those of a learned attention (``CATEGORY_ATTENTION "learned"``); with ``"gt"`` the
        attention is the image's boxes, and only the relation pictures are written.
    """
    distiller.eval()
    module = _csgr_module(distiller)
    levels = list(levels) if levels else module.in_features[:1]
    unknown = [k for k in levels if k not in module.in_features]
    if unknown:
        raise ValueError(f"levels {unknown} are not distilled by CSGR ({module.in_features})")
    features, resized_hw = csgr_level_features(distiller, preprocess(cfg, image_bgr))
    image_hw = image_bgr.shape[:2]
    x, y = pixel if pixel is not None else (image_hw[1] // 2, image_hw[0] // 2)
    x, y = min(max(int(x), 0), image_hw[1] - 1), min(max(int(y), 0), image_hw[0] - 1)
    strides = {k: s.stride for k, s in distiller.student.backbone.output_shape().items()}
    names = class_names(cfg, module.num_classes)
    os.makedirs(output_dir, exist_ok=True)
    written = []

    def to_image(heat: torch.Tensor, stride: int, nearest: bool = False) -> np.ndarray:
        return map_to_image(heat.cpu().numpy(), stride, resized_hw, image_hw, nearest)

    for level in levels:
        teacher, student = features[level]
        stride = strides[level]
        classifier = module.classifiers[level] if level in module.classifiers else None
        att_t = category_attention(classifier, teacher) if classifier is not None else None
        att_s = category_attention(classifier, student) if classifier is not None else None
        for k, name in enumerate(names if classifier is not None else ()):  # (K, H_l, W_l) maps
            heat_t, heat_s = _pair(to_image(att_t[k], stride), to_image(att_s[k], stride))
            path = os.path.join(output_dir, f"category_{level}_{k:02d}_{_safe(name)}.png")
            written.append(_three_panels(path, image_bgr, heat_t, heat_s, f"{level} {name}"))

        # the pixel in cells of the level: original image -> resized input -> level grid
        row = min(int(y * resized_hw[0] / image_hw[0]) // stride, teacher.shape[2] - 1)
        col = min(int(x * resized_hw[1] / image_hw[1]) // stride, teacher.shape[3] - 1)
        relation = module.relations[level]
        rel_t = criss_cross_relation(relation, teacher, row, col, step)
        rel_s = criss_cross_relation(relation, student, row, col, step)
        heat_t, heat_s = _pair(to_image(rel_t, stride, True), to_image(rel_s, stride, True))
        path = os.path.join(output_dir, f"relation_{level}.png")
        title = f"{level} pixel ({x},{y})"
        written.append(_three_panels(path, image_bgr, heat_t, heat_s, title, pixel=(x, y)))
    return written


def _three_panels(path, image_bgr, heat_t, heat_s, title, pixel=None) -> str:
    """Write image | teacher map | student map (maps (H, W) in [0, 1]); returns ``path``."""
    panels = [
        image_bgr.copy(),
        overlay_heatmap(image_bgr, heat_t),
        overlay_heatmap(image_bgr, heat_s),
    ]
    if pixel is not None:
        panels = [mark_pixel(p, pixel) for p in panels]
    imwrite(path, side_by_side(panels, [title, "teacher", "student"]))
    return path
