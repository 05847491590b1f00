"""Config keys of the feature-based methods FGD, MSE (FitNet), PKD, CWD and MGD, and their
published defaults per student detector type.

Keys whose published value depends on the detector type default to ``-1`` ("auto"): the
builder then takes the value of :data:`PUBLISHED_DEFAULTS` for
``MODEL.DISTILL.STUDENT_META_ARCHITECTURE`` ("RetinaNet" or "GeneralizedRCNN"). Any value
``>= 0`` is used as given.
"""

from typing import Sequence

from detectron2.config import CfgNode as CN

__all__ = ["add_feature_methods_config", "PUBLISHED_DEFAULTS", "published_value", "auto_levels"]

# Published hyper-parameters by method, student meta-architecture and key. Sources:
# FGD: github.com/yzd-v/FGD configs fgd_retina_rx101_64x4d_distill_retina_r50_fpn_2x_coco.py and
#   fgd_cascade_mask_rcnn_rx101_32x4d_distill_faster_rcnn_r50_fpn_2x_coco.py (arXiv:2111.11837).
# PKD: open-mmlab/mmrazor configs/distill/mmdet/pkd/pkd_fpn_retina_x101_retina_r50_2x_coco.py
#   (10) and pkd_fpn_frcnn_r101_frcnn_r50_2x_coco.py (6) (arXiv:2207.02039).
# CWD: tau=1 on FPN features; weight 5 for RetinaNet (pppppM/mmdetection-distiller
#   cwd_retina_rx101_64x4d_distill_retina_r50_fpn_2x_coco.py, 40.5 AP), 10 for Faster R-CNN
#   (open-mmlab/mmrazor cwd_fpn_frcnn_r101_frcnn_r50_1x_coco.py) (arXiv:2011.13256).
# MGD: github.com/yzd-v/MGD det/configs retina_rx101_64x4d_distill_retina_r50_fpn_2x_coco.py and
#   cascade_mask_rcnn_rx101_32x4d_distill_faster_rcnn_r50_fpn_2x_coco.py: one-stage
#   alpha=2e-5, mask ratio 0.65; two-stage alpha=5e-7, mask ratio 0.45 (arXiv:2205.01529).
PUBLISHED_DEFAULTS = {
    "FGD": {
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
    },
    "PKD": {"RetinaNet": {"WEIGHT": 10.0}, "GeneralizedRCNN": {"WEIGHT": 6.0}},
    "CWD": {"RetinaNet": {"WEIGHT": 5.0}, "GeneralizedRCNN": {"WEIGHT": 10.0}},
    "MGD": {
        "RetinaNet": {"ALPHA": 2e-5, "MASK_RATIO": 0.65},
        "GeneralizedRCNN": {"ALPHA": 5e-7, "MASK_RATIO": 0.45},
    },
}


def published_value(cfg, method: str, key: str) -> float:
    """``MODEL.DISTILL.<method>.<key>``, or its published default for the student type if < 0.

    Raises:
        ValueError: the key is "auto" and the student type has no published default.
    """
    value = float(cfg.MODEL.DISTILL[method][key])
    if value >= 0:
        return value
    arch = cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE
    table = PUBLISHED_DEFAULTS[method]
    if arch not in table:
        raise ValueError(
            f"MODEL.DISTILL.{method}.{key} is {value} (auto), but {method} has published defaults "
            f"only for students {sorted(table)}, not {arch!r}; set the key explicitly"
        )
    return float(table[arch][key])


def auto_levels(cfg, method: str) -> Sequence[str]:
    """The published levels of ``method`` for the student type ([] if it has none)."""
    arch = cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE
    return list(PUBLISHED_DEFAULTS[method].get(arch, {}).get("IN_FEATURES", []))


def add_feature_methods_config(cfg):
    """Add the sub-nodes FGD, MSE, PKD, CWD and MGD under ``MODEL.DISTILL``, in place.

    Call after :func:`add_csgr_config`. Safe to call more than once.

    Args:
        cfg (CfgNode): a config with ``MODEL.DISTILL``.
    """
    _D = cfg.MODEL.DISTILL

    if "FGD" not in _D:
        # FGD: Focal and Global Distillation (Yang et al., CVPR 2022, arXiv:2111.11837).
        _D.FGD = CN()
        # FPN levels to distil, by name. [] means the published levels for the student type
        # (RetinaNet: p3-p7; GeneralizedRCNN: p2-p5), restricted to those both sides have.
        _D.FGD.IN_FEATURES = []
        # Temperature T of the spatial and channel attentions (softmax of mean |F| / T).
        _D.FGD.TEMPERATURE = 0.5
        # Weight alpha of loss_fgd_fg, the foreground focal term (squared feature differences
        # weighted by the 1/area foreground mask and the teacher's attentions, summed, / N).
        # -1: published (RetinaNet 1e-3, GeneralizedRCNN 5e-5).
        _D.FGD.ALPHA_FG = -1.0
        # Weight beta of loss_fgd_bg, the background focal term (same with the normalised
        # background mask). -1: published (RetinaNet 5e-4, GeneralizedRCNN 2.5e-5).
        _D.FGD.BETA_BG = -1.0
        # Weight gamma of loss_fgd_mask, the attention term (L1 distance of student and teacher
        # channel + spatial attentions, summed, / N). -1: published (RetinaNet 5e-4,
        # GeneralizedRCNN 5e-5).
        _D.FGD.GAMMA_ATTENTION = -1.0
        # Weight lambda of loss_fgd_global (squared differences of the student's and teacher's
        # GcBlock outputs, summed, / N). -1: published (RetinaNet 5e-6, GeneralizedRCNN 5e-7).
        _D.FGD.LAMBDA_GLOBAL = -1.0

    if "MSE" not in _D:
        # MSE: FitNet-style hint loss (Romero et al., ICLR 2015, arXiv:1412.6550).
        _D.MSE = CN()
        # FPN levels to distil, by name; [] means every level teacher and student both have.
        _D.MSE.IN_FEATURES = []
        # Weight of loss_mse = WEIGHT * sum over levels of mean((adapted F_s - F_t)^2).
        _D.MSE.WEIGHT = 1.0

    if "PKD" not in _D:
        # PKD: Pearson correlation distillation (Cao et al., NeurIPS 2022, arXiv:2207.02039).
        _D.PKD = CN()
        # FPN levels to distil, by name; [] means every level teacher and student both have
        # (the published configs use p3-p6 for RetinaNet and p2-p5 for Faster R-CNN).
        _D.PKD.IN_FEATURES = []
        # Weight of loss_pkd = WEIGHT * sum over levels of MSE(norm F_s, norm F_t) / 2, i.e. of
        # the mean over channels of 1 - Pearson r. -1: published (RetinaNet 10,
        # GeneralizedRCNN 6).
        _D.PKD.WEIGHT = -1.0

    if "CWD" not in _D:
        # CWD: channel-wise distillation (Shu et al., ICCV 2021, arXiv:2011.13256).
        _D.CWD = CN()
        # FPN levels to distil, by name; [] means every level teacher and student both have.
        _D.CWD.IN_FEATURES = []
        # Temperature tau of the per-channel softmax over spatial positions (unitless; 1 for
        # detection FPN features, 4 in the paper's segmentation experiments).
        _D.CWD.TAU = 1.0
        # Weight of loss_cwd = WEIGHT * tau^2 * sum KL(teacher || student) / (N * C), summed over
        # levels. -1: published (RetinaNet 5, GeneralizedRCNN 10).
        _D.CWD.WEIGHT = -1.0

    if "MGD" not in _D:
        # MGD: Masked Generative Distillation (Yang et al., ECCV 2022, arXiv:2205.01529).
        _D.MGD = CN()
        # FPN levels to distil, by name; [] means every level teacher and student both have
        # (the published configs use p3-p7 for RetinaNet and p2-p5 for Faster R-CNN).
        _D.MGD.IN_FEATURES = []
        # Weight alpha of loss_mgd = alpha * sum over levels of
        # sum((G(mask * adapted F_s) - F_t)^2) / N. -1: published (RetinaNet 2e-5,
        # GeneralizedRCNN 5e-7).
        _D.MGD.ALPHA = -1.0
        # Fraction lambda of spatial positions of the (adapted) student map zeroed before the
        # generation block, drawn per image and step from torch's RNG (seeded by SEED).
        # -1: published (RetinaNet 0.65, GeneralizedRCNN 0.45).
        _D.MGD.MASK_RATIO = -1.0
