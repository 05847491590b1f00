"""IKD: the "improved knowledge distillation algorithm" of seed 003.

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
(:data:`IKD_AUTO_DEFAULTS`, ``MODEL.DISTILL.IKD``).
"""

import logging
from typing import Dict, Sequence

import torch
from torch import nn

from .attention import SpatialAttention
from .base import DISTILL_LOSS_REGISTRY, DistillBatch, DistillLoss, at_least_float32
from .dkd import decoupled_kd_terms, roi_logits_of
from .ikd_blocks import GenerationBlock, OneToManyAlignment, neighbour_targets
from .levels import ChannelAdapters, select_levels
from .mgd import random_position_mask

__all__ = ["IKDLoss", "IKD", "IKD_AUTO_DEFAULTS"]

logger = logging.getLogger(__name__)

# Values of the "-1 = auto" keys by student type: MGD's published detection settings
# (github.com/yzd-v/MGD, det/configs: one-stage alpha 2e-5 / lambda 0.65, two-stage 5e-7 / 0.45)
# for the feature term, half that weight for the alignment term.
IKD_AUTO_DEFAULTS = {
    "RetinaNet": {"FEAT_WEIGHT": 2e-5, "MASK_RATIO": 0.65, "ALIGN_WEIGHT": 1e-5},
    "GeneralizedRCNN": {"FEAT_WEIGHT": 5e-7, "MASK_RATIO": 0.45, "ALIGN_WEIGHT": 2.5e-7},
}


class IKDLoss(DistillLoss):
    """Feature resampling with spatial attention, decoupled ROI logit KD, one-to-many alignment.

    See the module docstring. ``REQUIRES`` is {"features", "roi_head"} when the logit term is on,
    {"features"} otherwise. Reads no config; see :func:`IKD`.

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
def IKD(cfg, student_shapes, teacher_shapes) -> IKDLoss:  # noqa: N802 (the method's name)
    """Build :class:`IKDLoss` from ``MODEL.DISTILL.IKD`` (registered as "IKD").

    With a RetinaNet student the logit term is disabled (logged); with a Faster R-CNN student the
    Distiller checks that the teacher has an ROI box head unless ``LOGIT_WEIGHT`` is 0.
    """
    ikd_cfg = cfg.MODEL.DISTILL.IKD
    arch = cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE
    auto = IKD_AUTO_DEFAULTS["RetinaNet" if arch == "RetinaNet" else "GeneralizedRCNN"]

    def value(key):
        v = ikd_cfg[key]
        return auto[key] if v < 0 else v

    levels = select_levels(ikd_cfg.IN_FEATURES, student_shapes, teacher_shapes, "IKD")
    logit_weight = ikd_cfg.LOGIT_WEIGHT
    if logit_weight and arch == "RetinaNet":
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
        feat_weight=value("FEAT_WEIGHT"),
        logit_weight=logit_weight,
        align_weight=value("ALIGN_WEIGHT"),
        mask_ratio=value("MASK_RATIO"),
        attention_kernel=ikd_cfg.ATTENTION_KERNEL,
        alpha=ikd_cfg.ALPHA,
        beta=ikd_cfg.BETA,
        temperature=ikd_cfg.TEMPERATURE,
        align_span=ikd_cfg.ALIGN_SPAN,
        neighbour_weight=ikd_cfg.ALIGN_NEIGHBOR_WEIGHT,
        learn_align_weights=ikd_cfg.ALIGN_LEARN_WEIGHTS,
        adapter_mode=cfg.MODEL.DISTILL.ADAPTER,
    )
