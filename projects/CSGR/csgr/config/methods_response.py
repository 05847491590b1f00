"""Config keys of the response-based and seed-003 methods: ``MODEL.DISTILL.{PCD, DKD, IKD}``.

Every key is documented with its meaning and unit. Call :func:`add_response_methods_config`
after ``add_csgr_config`` (which creates ``MODEL.DISTILL``).
"""

from detectron2.config import CfgNode as CN

__all__ = ["add_response_methods_config"]


def add_response_methods_config(cfg):
    """Add ``MODEL.DISTILL.PCD``, ``MODEL.DISTILL.DKD`` and ``MODEL.DISTILL.IKD``, in place.

    Safe to call more than once (an existing node is left alone).

    Args:
        cfg (CfgNode): a config that already has ``MODEL.DISTILL`` (see ``add_csgr_config``).

    Raises:
        KeyError: ``MODEL.DISTILL`` is missing.
    """
    if "DISTILL" not in cfg.MODEL:
        raise KeyError("add_response_methods_config: call add_csgr_config(cfg) first")
    _D = cfg.MODEL.DISTILL
    if "PCD" not in _D:
        _add_pcd(_D)
    if "DKD" not in _D:
        _add_dkd(_D)
    if "IKD" not in _D:
        _add_ikd(_D)


def _add_pcd(_D):
    # PCD: "Parallel-Circuitized" response distillation for dense detectors (seed 002),
    # reconstructed for a RetinaNet student and teacher with the same anchors (see losses/pcd.py).
    _D.PCD = CN()
    # Weight of loss_pcd_cls: per-anchor, per-class binary KL between the teacher's and the
    # student's sigmoid scores at TEMPERATURE (times T^2), weighted per anchor by the teacher's
    # quality (positive anchors) or confidence (all other anchors), normalised by the weights'
    # sum.
    _D.PCD.CLS_WEIGHT = 1.0
    # Weight of loss_pcd_loc: distance between the student's and the teacher's boxes at every
    # anchor, weighted by the teacher's confidence (max class probability), normalised by the
    # weights' sum.
    _D.PCD.LOC_WEIGHT = 1.0
    # Distance of loss_pcd_loc: "giou" (1 - GIoU of the decoded XYXY boxes) or "l1" (L1 of the
    # regression deltas, summed over the 4 coordinates).
    _D.PCD.LOC_LOSS_TYPE = "giou"
    # Weight of loss_pcd_quality: the student's quality branch (a 3x3 conv on its FPN features,
    # part of the loss module, dropped at export) learns the teacher's localisation quality
    # (IoU of the teacher's box with the matched GT box times its GT-class probability) with a
    # quality-focal binary KL, normalised by the number of positive anchors.
    _D.PCD.QUALITY_WEIGHT = 1.0
    # Exponent gamma of the focal factor |q_t - q_s|^gamma of loss_pcd_quality (0: plain KL).
    _D.PCD.QUALITY_GAMMA = 2.0
    # Temperature T (> 0, unitless) dividing both sides' classification logits in loss_pcd_cls.
    _D.PCD.TEMPERATURE = 1.0


def _add_dkd(_D):
    # DKD: Decoupled Knowledge Distillation (Zhao et al., CVPR 2022) of the ROI box classifier's
    # K + 1 logits on the student's sampled proposals. Faster R-CNN student and teacher only.
    # Defaults: the authors' Detectron2 detection setting (mdistiller, detection/model/config.py).
    _D.DKD = CN()
    # Weight alpha of TCKD, the KL of the binary target-vs-rest distributions.
    _D.DKD.ALPHA = 1.0
    # Weight beta of NCKD, the KL of the distributions over the non-target classes.
    _D.DKD.BETA = 0.25
    # Softmax temperature T (> 0, unitless); both terms are multiplied by T^2.
    _D.DKD.TEMPERATURE = 1.0


def _add_ikd(_D):
    # IKD: the "improved knowledge distillation algorithm" of Yao et al. (CMC 2025, seed 003):
    # feature resampling + spatial attention (loss_ikd_feat), decoupled target/non-target ROI
    # logit distillation (loss_ikd_logit), one-to-many feature alignment (loss_ikd_align).
    _D.IKD = CN()
    # FPN levels to distil, by name; [] means every level that teacher and student both have.
    _D.IKD.IN_FEATURES = []
    # Weight of loss_ikd_feat: sum over levels of the attention-weighted squared error between
    # the generation block's output and the teacher map, divided by the batch size.
    # -1 = auto: MGD's published alpha, 2e-5 for a RetinaNet student, 5e-7 for Faster R-CNN.
    _D.IKD.FEAT_WEIGHT = -1.0
    # Fraction of student feature positions zeroed at random before the generation block
    # (probability in [0, 1)). -1 = auto: MGD's published lambda, 0.65 for RetinaNet, 0.45 for
    # Faster R-CNN.
    _D.IKD.MASK_RATIO = -1.0
    # Kernel size (pixels of the feature map, odd) of the CBAM-style spatial attention conv.
    _D.IKD.ATTENTION_KERNEL = 7
    # Weight of loss_ikd_logit, the decoupled (TCKD/NCKD) ROI logit term; 0 disables it. With a
    # RetinaNet student the term does not exist and is disabled with a log message.
    _D.IKD.LOGIT_WEIGHT = 1.0
    # alpha (TCKD weight), beta (NCKD weight) and temperature T of loss_ikd_logit (as DKD).
    _D.IKD.ALPHA = 1.0
    _D.IKD.BETA = 0.25
    _D.IKD.TEMPERATURE = 1.0
    # Weight of loss_ikd_align: each student level is aligned (1x1 conv + bilinear resize) to
    # the teacher levels up to ALIGN_SPAN levels away; squared errors summed, divided by the
    # batch size, mixed per student level with softmax weights. -1 = auto: half the feature
    # weight (1e-5 for RetinaNet, 2.5e-7 for Faster R-CNN).
    _D.IKD.ALIGN_WEIGHT = -1.0
    # How many neighbouring levels (in stride order) on each side a student level aligns to;
    # 0 is one-to-one alignment.
    _D.IKD.ALIGN_SPAN = 1
    # Relative weight (> 0) of a neighbouring teacher level against the same level (1.0),
    # before the softmax normalisation; e.g. 0.5 with ALIGN_SPAN 1 gives the same level 0.5 and
    # each neighbour 0.25.
    _D.IKD.ALIGN_NEIGHBOR_WEIGHT = 0.5
    # Learn the mixing weights (softmax over learnable logits initialised from the fixed ones)
    # instead of keeping them fixed. Learned weights may drift to the easiest teacher level.
    _D.IKD.ALIGN_LEARN_WEIGHTS = False
