"""DKD: Decoupled Knowledge Distillation of the ROI head's classification logits.

Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge Distillation", CVPR 2022
(https://arxiv.org/abs/2203.08679). The teacher's box head is run on the student's sampled
proposals, so that both sides classify the same regions (as in the authors' Detectron2 code).
"""

from typing import Dict, Tuple

import torch
from torch.nn import functional as F

from .base import (
    DISTILL_LOSS_REGISTRY,
    DistillBatch,
    DistillLoss,
    DistillMethod,
    at_least_float32,
)

__all__ = ["DKDLoss", "DKD", "decoupled_kd_terms", "roi_logits_of"]


def _kl(p_teacher: torch.Tensor, log_p_teacher: torch.Tensor, log_p_student: torch.Tensor):
    """Per-row ``sum_j p_t,j (log p_t,j - log p_s,j)``; zero-probability teacher entries add 0."""
    return (p_teacher * (log_p_teacher - log_p_student)).sum(dim=1)


def decoupled_kd_terms(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor,
    temperature: float = 1.0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Target-class (TCKD) and non-target-class (NCKD) KD terms, averaged over rows.

    With ``p = softmax(z / T)`` over the C classes and ``t`` the target class of a row:

    * ``TCKD = KL([p_t, 1 - p_t]_teacher || [p_t, 1 - p_t]_student)``, the binary
      target-vs-rest distribution;
    * ``NCKD = KL(p^_teacher || p^_student)`` with ``p^ = softmax`` over the C - 1 non-target
      classes only.

    Both are multiplied by ``T^2`` and averaged over the rows. Everything is computed in log
    space (``log(1 - p_t) = logsumexp(non-target) - logsumexp(all)``), so it stays finite for
    confident logits.

    Args:
        student_logits: (R, C) logits, C >= 2 (for an ROI head: K + 1 with background last).
        teacher_logits: (R, C) logits; treated as constants.
        target: (R,) int64 target class per row in [0, C).
        temperature: softmax temperature T > 0.

    Returns:
        (tckd, nckd): two scalars; zero when R == 0.
    """
    if student_logits.shape != teacher_logits.shape or student_logits.dim() != 2:
        raise ValueError(
            f"DKD: student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} must both be (R, C)"
        )
    if student_logits.shape[0] == 0:
        zero = student_logits.sum() * 0.0
        return zero, zero
    t = float(temperature)
    s = at_least_float32(student_logits) / t
    k = at_least_float32(teacher_logits).detach() / t
    target_mask = F.one_hot(target.long(), s.shape[1]).bool()

    def binary_log_probs(z):
        log_all = torch.logsumexp(z, dim=1)
        log_target = z[target_mask] - log_all
        log_rest = torch.logsumexp(z.masked_fill(target_mask, float("-inf")), dim=1) - log_all
        return torch.stack([log_target, log_rest], dim=1)

    log_b_s, log_b_t = binary_log_probs(s), binary_log_probs(k)
    tckd = _kl(log_b_t.exp(), log_b_t, log_b_s)

    # non-target distributions: the target column gets probability 0 on both sides and its
    # log-probability (-inf) is replaced by 0 so that 0 * (-inf) never appears.
    log_n_s = F.log_softmax(s.masked_fill(target_mask, float("-inf")), dim=1)
    log_n_t = F.log_softmax(k.masked_fill(target_mask, float("-inf")), dim=1)
    log_n_s = log_n_s.masked_fill(target_mask, 0.0)
    log_n_t = log_n_t.masked_fill(target_mask, 0.0)
    nckd = _kl(log_n_t.exp().masked_fill(target_mask, 0.0), log_n_t, log_n_s)
    scale = t * t
    return tckd.mean() * scale, nckd.mean() * scale


def roi_logits_of(batch: DistillBatch, method: str):
    """The (student logits, teacher logits, target classes) of the sampled proposals.

    Raises:
        KeyError: naming the missing keys, when the Distiller did not capture ROI outputs.
    """
    keys = ("roi_logits", "roi_gt_classes")
    missing = [k for k in keys if k not in batch.student_outputs]
    missing += ["teacher " + k for k in keys[:1] if k not in batch.teacher_outputs]
    if missing:
        raise KeyError(f"{method}: the batch lacks ROI head outputs {missing}")
    return (
        batch.student_outputs["roi_logits"],
        batch.teacher_outputs["roi_logits"],
        batch.student_outputs["roi_gt_classes"],
    )


class DKDLoss(DistillLoss):
    """``loss_dkd = alpha * TCKD + beta * NCKD`` on the ROI classification logits (K + 1).

    Rows are the student's sampled proposals (foreground and background), the target of each
    is its ``gt_classes`` (K = background), and the teacher's logits come from its own box head
    on the same boxes. See :func:`decoupled_kd_terms`. Reads no config; see :class:`DKD`.

    Args:
        alpha: weight of TCKD.
        beta: weight of NCKD.
        temperature: softmax temperature T.
    """

    REQUIRES = frozenset({"roi_head"})

    def __init__(self, alpha: float = 1.0, beta: float = 0.25, temperature: float = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"DKD: temperature must be > 0, got {temperature}")
        self.alpha = alpha
        self.beta = beta
        self.temperature = temperature

    def forward(self, batch: DistillBatch) -> Dict[str, torch.Tensor]:
        """
        Args:
            batch: uses ``student_outputs["roi_logits"]`` (R, K+1), ``["roi_gt_classes"]`` (R,)
                and ``teacher_outputs["roi_logits"]`` (R, K+1).

        Returns:
            {"loss_dkd": scalar}, float32.
        """
        student, teacher, target = roi_logits_of(batch, "DKD")
        with torch.autocast(device_type=student.device.type, enabled=False):
            tckd, nckd = decoupled_kd_terms(student, teacher, target, self.temperature)
        return {"loss_dkd": self.alpha * tckd + self.beta * nckd}


@DISTILL_LOSS_REGISTRY.register()
class DKD(DistillMethod):
    """DKD: Decoupled Knowledge Distillation of the ROI box classifier's K + 1 logits on the
    student's sampled proposals; builds :class:`DKDLoss` from ``MODEL.DISTILL.DKD``.

    Needs a Faster R-CNN (GeneralizedRCNN + StandardROIHeads) student and teacher; the Distiller
    checks the pair when it is built.
    """

    APPLIES_TO = ("GeneralizedRCNN",)
    NOT_APPLICABLE_REASON = (
        "DKD distils the ROI box classifier's logits, and a RetinaNet has no ROI box head "
        "(PCD is the RetinaNet counterpart)"
    )

    @staticmethod
    def add_config(_C):
        # Defaults: the authors' Detectron2 detection setting (mdistiller,
        # detection/model/config.py).
        # Weight alpha of TCKD, the KL of the binary target-vs-rest distributions.
        _C.ALPHA = 1.0
        # Weight beta of NCKD, the KL of the distributions over the non-target classes.
        _C.BETA = 0.25
        # Softmax temperature T (> 0, unitless); both terms are multiplied by T^2.
        _C.TEMPERATURE = 1.0

    @classmethod
    def build(cls, cfg, student_shapes, teacher_shapes) -> DKDLoss:
        del student_shapes, teacher_shapes
        dkd_cfg = cls.node(cfg)
        return DKDLoss(
            alpha=cls.published(cfg, "ALPHA"),
            beta=cls.published(cfg, "BETA"),
            temperature=dkd_cfg.TEMPERATURE,
        )
