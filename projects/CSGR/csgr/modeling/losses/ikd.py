"""IKD: the "improved knowledge distillation algorithm" of Yao et al. (CMC 2025).

Yao, Liu, Zhang, Hu, "An Improved Knowledge Distillation Algorithm and Its Application to Object
Detection", Computers, Materials & Continua 83(2), 2025, 2189-2205. Named "IKD" here.

**A reconstruction from the abstract**, which names four parts and no formulas or weights:

* ``loss_ikd_feat`` -- feature resampling + spatial attention (SAM). Per level, the student map
  ``S`` (through a 1x1 adapter where the widths differ) gets a CBAM spatial attention
  ``A = sigmoid(conv7x7([mean_c S, max_c S]))`` (N, 1, H, W); a random ``MASK_RATIO`` of its
  positions is zeroed ("resampling", so the student cannot merely copy, as in MGD) and a
  generation block ``G`` (conv3x3-ReLU-conv3x3) rebuilds the teacher map ``T`` from
  ``A * S * M``: ``sum_l sum(W * (G(A * S * M) - T)^2) / N`` with ``W = A / mean_HW(A)``
  detached (the attention highlights the positions it finds salient -- foreground -- and, being
  normalised to mean 1 per image and detached there, cannot shrink the loss by going to 0; it
  learns through the ``A * S`` path).
* ``loss_ikd_logit`` -- target / non-target class logit distillation on the ROI head's K + 1
  logits, i.e. DKD's ``alpha * TCKD + beta * NCKD`` (:func:`.dkd.decoupled_kd_terms`) on the
  student's sampled proposals. It needs an ROI head on both sides: with a RetinaNet student it
  is disabled (with a log message) and only the feature terms remain; a Faster R-CNN student
  with a RetinaNet teacher is refused when the Distiller is built (set ``LOGIT_WEIGHT`` to 0).
* ``loss_ikd_align`` -- one-to-many matching through a feature alignment module (FAM): every
  student level is aligned (1x1 conv + bilinear resize) to the teacher's same and neighbouring
  levels, errors mixed with softmax weights (:class:`.ikd_blocks.OneToManyAlignment`).

Left out (unknown from the abstract): the paper's exact resampling scheme, SAM placement, FAM
design and loss weights; the defaults here are MGD's and DKD's published detection settings
(``IKD.PUBLISHED``, ``MODEL.DISTILL.IKD``).
"""

import logging
from typing import Dict, Sequence

import torch
from torch import nn

from .attention import SpatialAttention
from .base import (
    DISTILL_LOSS_REGISTRY,
    DistillBatch,
    DistillLoss,
    DistillMethod,
    at_least_float32,
)
from .dkd import decoupled_kd_terms, roi_logits_of
from .ikd_blocks import GenerationBlock, OneToManyAlignment, neighbour_targets
from .levels import ChannelAdapters, select_levels
from .mgd import random_position_mask

__all__ = ["IKDLoss", "IKD"]

logger = logging.getLogger(__name__)


class IKDLoss(DistillLoss):
    """Feature resampling with spatial attention, decoupled ROI logit KD, one-to-many alignment.

    See the module docstring. ``REQUIRES`` is {"features", "roi_head"} when the logit term is on,
    {"features"} otherwise. Reads no config; see :class:`IKD`.

    Args:
        in_features: FPN level names, in stride order.
        student_channels / teacher_channels: channels by level name.
        feat_weight / logit_weight / align_weight: weights of the three terms (logit 0: off).
        mask_ratio: fraction of positions dropped before the generation block.
        attention_kernel: kernel size of the spatial attention.
        alpha / beta / temperature: DKD parameters of the logit term.
        align_span / neighbour_weight / learn_align_weights: see :class:`OneToManyAlignment`.
        adapter_mode: "auto", "always" or "never" (see :class:`ChannelAdapters`).
    """

    def __init__(
        self,
        in_features: Sequence[str],
        student_channels: Dict[str, int],
        teacher_channels: Dict[str, int],
        feat_weight: float = 2e-5,
        logit_weight: float = 1.0,
        align_weight: float = 1e-5,
        mask_ratio: float = 0.65,
        attention_kernel: int = 7,
        alpha: float = 1.0,
        beta: float = 0.25,
        temperature: float = 1.0,
        align_span: int = 1,
        neighbour_weight: float = 0.5,
        learn_align_weights: bool = False,
        adapter_mode: str = "auto",
    ):
        super().__init__()
        if not in_features:
            raise ValueError("IKD: in_features is empty")
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"IKD: mask_ratio must be in [0, 1), got {mask_ratio}")
        if temperature <= 0 or align_span < 0:
            raise ValueError("IKD: temperature must be > 0 and align_span >= 0")
        self.in_features = list(in_features)
        self.feat_weight = feat_weight
        self.logit_weight = logit_weight
        self.align_weight = align_weight
        self.mask_ratio = mask_ratio
        self.alpha, self.beta, self.temperature = alpha, beta, temperature
        self.REQUIRES = frozenset({"features", "roi_head"} if logit_weight else {"features"})
        self.adapters = ChannelAdapters(
            self.in_features, student_channels, teacher_channels, adapter_mode
        )
        self.attention = nn.ModuleDict(
            {k: SpatialAttention(attention_kernel) for k in self.in_features}
        )
        self.generators = nn.ModuleDict(
            {k: GenerationBlock(teacher_channels[k]) for k in self.in_features}
        )
        self.alignment = OneToManyAlignment(
            neighbour_targets(self.in_features, align_span),
            student_channels,
            teacher_channels,
            neighbour_weight,
            learn_align_weights,
        )

    def feature_term(self, level: str, student: torch.Tensor, teacher: torch.Tensor):
        """Attention-weighted generation error of one level.

        Args:
            level: level name.
            student: (N, C_s, H, W) student map.
            teacher: (N, C_t, H, W) teacher map (a constant).

        Returns:
            scalar ``sum(W * (G(A * S * M) - T)^2) / N``.
        """
        s = self.adapters(level, student)
        if s.shape != teacher.shape:
            raise ValueError(
                f"IKD: level {level} is {tuple(s.shape)} in the (adapted) student but "
                f"{tuple(teacher.shape)} in the teacher"
            )
        attention = self.attention[level](s)  # (N, 1, H, W)
        n, _, h, w = s.shape
        masked = (
            attention * s * random_position_mask(n, h, w, self.mask_ratio, s.device).to(s.dtype)
        )
        generated = self.generators[level](masked)
        weight = attention.detach()
        weight = weight / weight.mean(dim=(2, 3), keepdim=True).clamp(min=1e-6)
        return (weight * (generated - teacher).pow(2)).sum() / s.shape[0]

    def forward(self, batch: DistillBatch) -> Dict[str, torch.Tensor]:
        """
        Args:
            batch: uses the FPN features of ``in_features`` and, when the logit term is on,
                ``student_outputs["roi_logits"]`` (R, K+1), ``["roi_gt_classes"]`` (R,) and
                ``teacher_outputs["roi_logits"]`` (R, K+1).

        Returns:
            {"loss_ikd_feat", "loss_ikd_align"} and, when on, "loss_ikd_logit"; weighted float32.
        """
        missing = [
            k
            for k in self.in_features
            if k not in batch.student_features or k not in batch.teacher_features
        ]
        if missing:
            raise KeyError(f"IKD: levels {missing} are missing from the batch")
        device = batch.student_features[self.in_features[0]].device
        losses = {}
        with torch.autocast(device_type=device.type, enabled=False):
            student = {k: at_least_float32(batch.student_features[k]) for k in self.in_features}
            teacher = {
                k: at_least_float32(batch.teacher_features[k]).detach() for k in self.in_features
            }
            loss_feat = sum(self.feature_term(k, student[k], teacher[k]) for k in self.in_features)
            losses["loss_ikd_feat"] = self.feat_weight * loss_feat
            if "roi_head" in self.REQUIRES:
                s_logits, t_logits, target = roi_logits_of(batch, "IKD")
                tckd, nckd = decoupled_kd_terms(s_logits, t_logits, target, self.temperature)
                losses["loss_ikd_logit"] = self.logit_weight * (
                    self.alpha * tckd + self.beta * nckd
                )
            loss_align, _ = self.alignment(student, teacher)
            losses["loss_ikd_align"] = self.align_weight * loss_align
        return losses


@DISTILL_LOSS_REGISTRY.register()
class IKD(DistillMethod):
    """IKD: the "improved knowledge distillation algorithm" of Yao et al. (CMC 2025), see the
    module docstring; builds :class:`IKDLoss` from ``MODEL.DISTILL.IKD``.

    With a RetinaNet student the logit term is disabled (logged); with a Faster R-CNN student the
    Distiller checks that the teacher has an ROI box head unless ``LOGIT_WEIGHT`` is 0.

    ``PUBLISHED`` holds MGD's published detection settings (github.com/yzd-v/MGD, det/configs:
    one-stage alpha 2e-5 / lambda 0.65, two-stage 5e-7 / 0.45) for the feature term and half that
    weight for the alignment term: the paper publishes none.
    """

    PUBLISHED = {
        "RetinaNet": {"FEAT_WEIGHT": 2e-5, "MASK_RATIO": 0.65, "ALIGN_WEIGHT": 1e-5},
        "GeneralizedRCNN": {"FEAT_WEIGHT": 5e-7, "MASK_RATIO": 0.45, "ALIGN_WEIGHT": 2.5e-7},
    }
    HEAD_HINT = "for IKD, MODEL.DISTILL.IKD.LOGIT_WEIGHT 0 turns the logit term off"

    @staticmethod
    def add_config(_C):
        # FPN levels to distil, by name; [] means every level that teacher and student both
        # have.
        _C.IN_FEATURES = []
        # Weight of loss_ikd_feat: sum over levels of the attention-weighted squared error
        # between the generation block's output and the teacher map, divided by the batch size.
        # -1: MGD's published alpha, 2e-5 for a RetinaNet student, 5e-7 for Faster R-CNN.
        _C.FEAT_WEIGHT = -1.0
        # Fraction of student feature positions zeroed at random before the generation block
        # (probability in [0, 1)). -1: MGD's published lambda, 0.65 for RetinaNet, 0.45 for
        # Faster R-CNN.
        _C.MASK_RATIO = -1.0
        # Kernel size (pixels of the feature map, odd) of the CBAM-style spatial attention conv.
        _C.ATTENTION_KERNEL = 7
        # Weight of loss_ikd_logit, the decoupled (TCKD/NCKD) ROI logit term; 0 disables it.
        # With a RetinaNet student the term does not exist and is disabled with a log message.
        _C.LOGIT_WEIGHT = 1.0
        # alpha (TCKD weight), beta (NCKD weight) and temperature T of loss_ikd_logit (as DKD).
        _C.ALPHA = 1.0
        _C.BETA = 0.25
        _C.TEMPERATURE = 1.0
        # Weight of loss_ikd_align: each student level is aligned (1x1 conv + bilinear resize)
        # to the teacher levels up to ALIGN_SPAN levels away; squared errors summed, divided by
        # the batch size, mixed per student level with softmax weights. -1: half the feature
        # weight (1e-5 for RetinaNet, 2.5e-7 for Faster R-CNN).
        _C.ALIGN_WEIGHT = -1.0
        # How many neighbouring levels (in stride order) on each side a student level aligns
        # to; 0 is one-to-one alignment.
        _C.ALIGN_SPAN = 1
        # Relative weight (> 0) of a neighbouring teacher level against the same level (1.0),
        # before the softmax normalisation; e.g. 0.5 with ALIGN_SPAN 1 gives the same level
        # 0.5 and each neighbour 0.25.
        _C.ALIGN_NEIGHBOR_WEIGHT = 0.5
        # Learn the mixing weights (softmax over learnable logits initialised from the fixed
        # ones) instead of keeping them fixed. Learned weights may drift to the easiest teacher
        # level.
        _C.ALIGN_LEARN_WEIGHTS = False

    @classmethod
    def build(cls, cfg, student_shapes, teacher_shapes) -> IKDLoss:
        ikd_cfg = cls.node(cfg)
        levels = select_levels(ikd_cfg.IN_FEATURES, student_shapes, teacher_shapes, "IKD")
        logit_weight = cls.published(cfg, "LOGIT_WEIGHT")
        if logit_weight and cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE == "RetinaNet":
            logger.warning(
                "IKD: the student is a RetinaNet, which has no ROI box classifier; the target / "
                "non-target logit term (loss_ikd_logit) is disabled and only loss_ikd_feat and "
                "loss_ikd_align are trained"
            )
            logit_weight = 0.0
        return IKDLoss(
            in_features=levels,
            student_channels={k: student_shapes[k].channels for k in levels},
            teacher_channels={k: teacher_shapes[k].channels for k in levels},
            feat_weight=cls.published(cfg, "FEAT_WEIGHT"),
            logit_weight=logit_weight,
            align_weight=cls.published(cfg, "ALIGN_WEIGHT"),
            mask_ratio=cls.published(cfg, "MASK_RATIO"),
            attention_kernel=ikd_cfg.ATTENTION_KERNEL,
            alpha=cls.published(cfg, "ALPHA"),
            beta=cls.published(cfg, "BETA"),
            temperature=ikd_cfg.TEMPERATURE,
            align_span=ikd_cfg.ALIGN_SPAN,
            neighbour_weight=ikd_cfg.ALIGN_NEIGHBOR_WEIGHT,
            learn_align_weights=ikd_cfg.ALIGN_LEARN_WEIGHTS,
            adapter_mode=cfg.MODEL.DISTILL.ADAPTER,
        )
