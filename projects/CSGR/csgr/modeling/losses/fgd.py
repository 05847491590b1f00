"""FGD: Focal and Global Distillation of FPN features (Yang et al., CVPR 2022, arXiv:2111.11837)."""

import logging
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

from .box_cells import box_cells
from .base import DISTILL_LOSS_REGISTRY, DistillBatch, DistillLoss, DistillMethod
from .feature_pairs import build_levels_and_channels, feature_pairs
from .gcblock import GcBlock
from .levels import ChannelAdapters

logger = logging.getLogger(__name__)

__all__ = ["FGDLoss", "FGD", "fgd_attention", "fgd_masks"]


def fgd_attention(x: torch.Tensor, temperature: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """FGD's spatial and channel attentions of a feature map.

    Args:
        x: (N, C, H, W) features.
        temperature: T.

    Returns:
        spatial: (N, H, W) ``H*W * softmax_HW(mean_C |x| / T)`` (sums to H*W per image).
        channel: (N, C) ``C * softmax_C(mean_HW |x| / T)`` (sums to C per image).
    """
    n, c, h, w = x.shape
    value = x.abs()
    spatial = (h * w) * (value.mean(dim=1).reshape(n, h * w) / temperature).softmax(dim=1)
    channel = c * (value.mean(dim=(2, 3)) / temperature).softmax(dim=1)
    return spatial.view(n, h, w), channel


def fgd_masks(
    boxes: List[torch.Tensor], image_shape: Tuple[int, int], feature_shape: Tuple[int, int]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """FGD's foreground and background masks of one level.

    Boxes are scaled from the padded batch frame to the level by ``(H / H_pad, W / W_pad)``,
    i.e. 1/stride where the padded size is a multiple of the stride (always for p2-p5 with
    Detectron2's FPN size_divisibility of 32; on p6/p7, whose sizes are rounded up, the ratio
    slightly exceeds 1/stride). FGD's code divides by the un-padded image size instead, which
    stretches boxes on padded batches. As in FGD's code, a box covers the cells
    ``floor(x0) .. ceil(x1)`` and ``floor(y0) .. ceil(y1)`` (both ends included) and has the
    value ``1 / area`` with ``area`` the number of those cells (counted before clipping to the
    map); where boxes overlap the mask keeps the largest value. (FGD's code indexes the mask
    [x, y]; rows here are y.)

    Args:
        boxes: per image, (M_i, 4) XYXY boxes in pixels of the padded batch tensor.
        image_shape: (H_pad, W_pad) of the padded batch tensor.
        feature_shape: (H, W) of the level.

    Returns:
        fg: (N, H, W) foreground mask (0 outside every box).
        bg: (N, H, W) 1 where fg is 0, divided by its sum per image (all zeros if every cell is
        foreground).
    """
    pad_h, pad_w = image_shape
    h, w = feature_shape
    if pad_h <= 0 or pad_w <= 0:
        raise ValueError(f"FGD: the padded image shape {image_shape} is not set in the batch")
    device = boxes[0].device if boxes else torch.device("cpu")
    fg = torch.zeros(len(boxes), h, w, device=device)
    for i, b in enumerate(boxes):
        if b.numel() == 0:
            continue
        inside, area = box_cells(b, image_shape, feature_shape)
        fg[i] = (inside * area.reciprocal()[:, None, None]).amax(dim=0)
    bg = (fg == 0).float()
    bg = bg / bg.sum(dim=(1, 2), keepdim=True).clamp(min=1)
    return fg, bg


class FGDLoss(DistillLoss):
    """Focal and global distillation, summed over FPN levels.

    Per level, with ``F_s`` the student map (through a 1x1 adapter where widths differ), ``F_t``
    the teacher map, ``S``/``C`` the attentions of :func:`fgd_attention` and ``M_fg``/``M_bg``
    the masks of :func:`fgd_masks` (broadcast over channels / positions as needed):

    * ``loss_fgd_fg = alpha * sum((F_s - F_t)^2 * M_fg * S_t * C_t) / N``
    * ``loss_fgd_bg = beta * sum((F_s - F_t)^2 * M_bg * S_t * C_t) / N``
    * ``loss_fgd_mask = gamma * (sum|C_s - C_t| + sum|S_s - S_t|) / N``
    * ``loss_fgd_global = lambda * sum((G_s(F_s) - G_t(F_t))^2) / N``, with separate
      :class:`GcBlock` ``G_s``, ``G_t`` for student and teacher (both learnable).

    Sums run over images, channels and positions, as in FGD's code (``MSELoss(reduction="sum")``
    and ``sum(abs(.))`` divided by the batch size). The teacher attentions carry no gradient.
    Computed in float32 (float64 for float64 inputs) with autocast disabled. The module reads
    no config; see :class:`FGD`.

    Args:
        in_features: FPN level names to distil.
        student_channels / teacher_channels: channels by level name.
        alpha, beta, gamma, lambda_global: weights of the four terms.
        temperature: T of the attentions.
        adapter_mode: "auto", "always" or "never" (see :class:`ChannelAdapters`).
    """

    REQUIRES = frozenset({"features"})

    def __init__(
        self,
        in_features: Sequence[str],
        student_channels: Dict[str, int],
        teacher_channels: Dict[str, int],
        alpha: float,
        beta: float,
        gamma: float,
        lambda_global: float,
        temperature: float = 0.5,
        adapter_mode: str = "auto",
    ):
        super().__init__()
        if not in_features:
            raise ValueError("FGD: in_features is empty")
        if temperature <= 0:
            raise ValueError(f"FGD: temperature must be > 0, got {temperature}")
        self.in_features = list(in_features)
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.lambda_global = lambda_global
        self.temperature = temperature
        self.adapters = ChannelAdapters(
            self.in_features, student_channels, teacher_channels, adapter_mode
        )
        self.student_gc = nn.ModuleDict({k: GcBlock(teacher_channels[k]) for k in in_features})
        self.teacher_gc = nn.ModuleDict({k: GcBlock(teacher_channels[k]) for k in in_features})

    def forward(self, batch: DistillBatch) -> Dict[str, torch.Tensor]:
        """
        Args:
            batch: uses ``student_features`` / ``teacher_features`` of ``in_features``,
                ``gt_instances`` (one per image, ``gt_boxes`` in the padded frame) and
                ``image_shape`` (the padded (H, W)).

        Returns:
            {"loss_fgd_fg", "loss_fgd_bg", "loss_fgd_mask", "loss_fgd_global"}: weighted float32
            scalars.
        """
        device = batch.student_features[self.in_features[0]].device
        n = batch.student_features[self.in_features[0]].shape[0]
        if len(batch.gt_instances) != n:
            raise ValueError(
                f"FGD: needs the ground truth of each image; got {len(batch.gt_instances)} "
                f"Instances for {n} images"
            )
        boxes = [inst.gt_boxes.tensor.to(device) for inst in batch.gt_instances]
        terms = {k: torch.zeros((), device=device) for k in ("fg", "bg", "mask", "global")}
        with torch.autocast(device_type=device.type, enabled=False):
            for k, student, teacher in feature_pairs(batch, self.in_features, self.adapters, "FGD"):
                fg, bg = fgd_masks(boxes, batch.image_shape, tuple(teacher.shape[-2:]))
                s_t, c_t = fgd_attention(teacher, self.temperature)
                s_s, c_s = fgd_attention(student, self.temperature)
                weighted = (student - teacher).pow(2) * s_t[:, None] * c_t[:, :, None, None]
                terms["fg"] = terms["fg"] + (weighted * fg[:, None]).sum() / n
                terms["bg"] = terms["bg"] + (weighted * bg[:, None]).sum() / n
                attention = (c_s - c_t).abs().sum() + (s_s - s_t).abs().sum()
                terms["mask"] = terms["mask"] + attention / n
                relation = self.student_gc[k](student) - self.teacher_gc[k](teacher)
                terms["global"] = terms["global"] + relation.pow(2).sum() / n
        return {
            "loss_fgd_fg": self.alpha * terms["fg"],
            "loss_fgd_bg": self.beta * terms["bg"],
            "loss_fgd_mask": self.gamma * terms["mask"],
            "loss_fgd_global": self.lambda_global * terms["global"],
        }


@DISTILL_LOSS_REGISTRY.register()
class FGD(DistillMethod):
    """FGD: Focal and Global Distillation (Yang et al., CVPR 2022, arXiv:2111.11837); builds
    :class:`FGDLoss` from ``MODEL.DISTILL.FGD``.

    Weights set to -1 take the published value for ``MODEL.DISTILL.STUDENT_META_ARCHITECTURE``;
    empty ``IN_FEATURES`` takes the published levels that both sides have, or every common level
    for other student types. Published values: github.com/yzd-v/FGD configs
    fgd_retina_rx101_64x4d_distill_retina_r50_fpn_2x_coco.py and
    fgd_cascade_mask_rcnn_rx101_32x4d_distill_faster_rcnn_r50_fpn_2x_coco.py.
    """

    PUBLISHED = {
        "RetinaNet": {
            "ALPHA_FG": 1e-3,
            "BETA_BG": 5e-4,
            "GAMMA_ATTENTION": 5e-4,
            "LAMBDA_GLOBAL": 5e-6,
            "IN_FEATURES": ["p3", "p4", "p5", "p6", "p7"],
        },
        "GeneralizedRCNN": {
            "ALPHA_FG": 5e-5,
            "BETA_BG": 2.5e-5,
            "GAMMA_ATTENTION": 5e-5,
            "LAMBDA_GLOBAL": 5e-7,
            "IN_FEATURES": ["p2", "p3", "p4", "p5"],
        },
    }

    @staticmethod
    def add_config(_C):
        # FPN levels to distil, by name. [] means the published levels for the student type
        # (RetinaNet: p3-p7; GeneralizedRCNN: p2-p5), restricted to those both sides have.
        _C.IN_FEATURES = []
        # Temperature T of the spatial and channel attentions (softmax of mean |F| / T).
        _C.TEMPERATURE = 0.5
        # Weight alpha of loss_fgd_fg, the foreground focal term (squared feature differences
        # weighted by the 1/area foreground mask and the teacher's attentions, summed, / N).
        # -1: published (RetinaNet 1e-3, GeneralizedRCNN 5e-5).
        _C.ALPHA_FG = -1.0
        # Weight beta of loss_fgd_bg, the background focal term (same with the normalised
        # background mask). -1: published (RetinaNet 5e-4, GeneralizedRCNN 2.5e-5).
        _C.BETA_BG = -1.0
        # Weight gamma of loss_fgd_mask, the attention term (L1 distance of student and teacher
        # channel + spatial attentions, summed, / N). -1: published (RetinaNet 5e-4,
        # GeneralizedRCNN 5e-5).
        _C.GAMMA_ATTENTION = -1.0
        # Weight lambda of loss_fgd_global (squared differences of the student's and teacher's
        # GcBlock outputs, summed, / N). -1: published (RetinaNet 5e-6, GeneralizedRCNN 5e-7).
        _C.LAMBDA_GLOBAL = -1.0

    @classmethod
    def build(cls, cfg, student_shapes, teacher_shapes) -> FGDLoss:
        levels, student_channels, teacher_channels = build_levels_and_channels(
            cls.levels(cfg, student_shapes, teacher_shapes), student_shapes, teacher_shapes, "FGD"
        )
        return FGDLoss(
            in_features=levels,
            student_channels=student_channels,
            teacher_channels=teacher_channels,
            alpha=cls.published(cfg, "ALPHA_FG"),
            beta=cls.published(cfg, "BETA_BG"),
            gamma=cls.published(cfg, "GAMMA_ATTENTION"),
            lambda_global=cls.published(cfg, "LAMBDA_GLOBAL"),
            temperature=cls.node(cfg).TEMPERATURE,
            adapter_mode=cfg.MODEL.DISTILL.ADAPTER,
        )
