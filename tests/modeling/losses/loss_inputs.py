"""Inputs, configs and expected loss terms shared by the tests of the distillation losses.

Feature maps come at two levels of a 32 x 48 padded batch, with ground truth boxes on the
first image only. The method lists the tests run over come from the registry
(:func:`csgr.modeling.losses.method_names`), so a newly registered method is covered by them.
"""

import math

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.structures import Boxes, Instances
from method_lists import RETINA
from tiny_models import tiny_cfg

from csgr.config import add_csgr_config
from csgr.modeling.losses import DistillBatch, get_method, method_names
from csgr.modeling.losses.cwd import CWDLoss
from csgr.modeling.losses.fgd import FGDLoss
from csgr.modeling.losses.mgd import MGDLoss
from csgr.modeling.losses.mse import MSELoss
from csgr.modeling.losses.pkd import PKDLoss

SIZES = {"p3": (4, 6), "p4": (2, 3)}  # a 32 x 48 padded batch
IMAGE_SHAPE = (32, 48)
ALL_LEVELS = ["p2", "p3", "p4", "p5", "p6", "p7"]

# Known-value tests run the losses in float64 (they are dtype-generic): the hand computations
# are then exact to ~1e-15 and the comparison does not depend on float32 rounding, which differs
# between machines (AVX2 vs AVX-512 kernels).
F64 = torch.float64

# The feature losses built with unit weights (the registry's builders take the published ones).
UNIT_WEIGHTS = {
    "FGD": (FGDLoss, dict(alpha=1.0, beta=1.0, gamma=1.0, lambda_global=1.0)),
    "MSE": (MSELoss, dict(weight=1.0)),
    "PKD": (PKDLoss, dict(weight=1.0)),
    "CWD": (CWDLoss, dict(weight=1.0, tau=2.0)),
    "MGD": (MGDLoss, dict(alpha=1.0, mask_ratio=0.5)),
}


def cfg_for(arch, methods=()):
    """A config with every method's keys, for a student of meta-architecture ``arch``.

    Args:
        arch: ``MODEL.DISTILL.STUDENT_META_ARCHITECTURE``.
        methods: ``MODEL.DISTILL.METHODS``.
    """
    cfg = get_cfg()
    add_csgr_config(cfg)
    add_csgr_config(cfg)  # idempotent
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = arch
    cfg.MODEL.DISTILL.METHODS = list(methods)
    return cfg


def shapes(channels, levels=("p3", "p4", "p5")):
    """Backbone output shapes: ``channels`` wide at each of ``levels`` (named ``p<stride log>``)."""
    return {k: ShapeSpec(channels=channels, stride=2 ** int(k[1:])) for k in levels}


def build_from_registry(method, arch=RETINA, cs=8, ct=8, levels=tuple(SIZES)):
    """``method``'s loss as its registry entry builds it for an ``arch`` student, on ``levels``
    with ``cs`` student and ``ct`` teacher channels."""
    return get_method(method).build(cfg_for(arch, [method]), shapes(cs, levels), shapes(ct, levels))


def feature_methods(arch=RETINA):
    """The registered methods that apply to ``arch`` and whose loss, built for it, requires
    backbone features only (no head outputs), in registry order."""
    return [
        m
        for m in method_names()
        if get_method(m).applies_to(arch) and build_published(m, arch).REQUIRES == {"features"}
    ]


def features(channels, n=2, seed=0, requires_grad=False, dtype=torch.float32):
    """Random feature maps, ``channels`` wide, at the levels of :data:`SIZES`."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(n, channels, h, w, generator=g).to(dtype).requires_grad_(requires_grad)
        for k, (h, w) in SIZES.items()
    }


def instances(boxes):
    """Ground truth of class 0 with ``boxes`` (XYXY) on an image of :data:`IMAGE_SHAPE`."""
    inst = Instances(IMAGE_SHAPE)
    inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.gt_classes = torch.zeros(len(inst.gt_boxes), dtype=torch.int64)
    return inst


GT = [instances([[4, 3, 20, 14], [12, 8, 30, 30]]), instances([])]


def make_loss(method, cs=8, ct=8, **kwargs):
    """A feature loss at the levels of :data:`SIZES`, seeded: with unit weights (overridden by
    ``kwargs``) where :data:`UNIT_WEIGHTS` has the method, else as the registry builds it."""
    torch.manual_seed(0)
    if method not in UNIT_WEIGHTS:
        assert not kwargs, f"{method} is built from the registry, without arguments"
        return build_from_registry(method, cs=cs, ct=ct)
    loss_cls, weights = UNIT_WEIGHTS[method]
    args = (list(SIZES), {k: cs for k in SIZES}, {k: ct for k in SIZES})
    return loss_cls(*args, **{**weights, **kwargs})


def batch(student, teacher, gt=GT):
    """A :class:`DistillBatch` of features and ground truth on a :data:`IMAGE_SHAPE` batch."""
    return DistillBatch(student, teacher, gt_instances=gt, image_shape=IMAGE_SHAPE)


def sigmoid(x):
    """The logistic function of a float."""
    return 1 / (1 + math.exp(-x))


def build_published(method, arch, cfg=None):
    """``method``'s loss built from ``cfg`` (default: every key at its default) for an ``arch``
    student of 16 channels and a teacher of 32, both at every level p2 to p7."""
    cfg = cfg or cfg_for(arch, [method])
    return get_method(method).build(cfg, shapes(16, ALL_LEVELS), shapes(32, ALL_LEVELS))


def check_only_minus_one_means_published(method, key):
    """Check that ``MODEL.DISTILL.<method>.<key>`` at -0.5 is an error naming the key, and that
    -1 takes the published RetinaNet value, or is an error naming the key if there is none."""
    cfg = cfg_for(RETINA)
    s = shapes(16, ["p3", "p4"])
    cfg.MODEL.DISTILL[method][key] = -0.5
    with pytest.raises(ValueError, match=rf"MODEL\.DISTILL\.{method}\.{key} is -0\.5"):
        get_method(method).build(cfg, s, s)
    cfg.MODEL.DISTILL[method][key] = -1.0
    method_cls = get_method(method)
    if RETINA in method_cls.PUBLISHED:
        assert method_cls.published(cfg, key) == method_cls.PUBLISHED[RETINA][key]
    else:  # no published value: -1 is an error naming the key
        with pytest.raises(ValueError, match=rf"MODEL\.DISTILL\.{method}\.{key} is -1"):
            method_cls.published(cfg, key)


def check_negative_weight_is_error(arch, method, key):
    """Check that ``MODEL.DISTILL.<method>.<key>``, a key without a published value, is an error
    naming the key at -0.5 and at -1 when ``method``'s loss is built for an ``arch`` student."""
    cfg = tiny_cfg(arch)
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = arch
    s = shapes(32, ALL_LEVELS)
    for value, match in ((-0.5, "is -0.5"), (-1.0, "is -1")):  # no published value: -1 too
        cfg.MODEL.DISTILL[method][key] = value
        with pytest.raises(ValueError, match=rf"MODEL\.DISTILL\.{method}\.{key} {match}"):
            get_method(method).build(cfg, s, s)


def distill_cfg_with(teachers, method, student_arch, teacher_arch, num_classes=3):
    """A tiny Distiller config distilling ``method`` from the saved ``teachers[teacher_arch]``
    (config file, weights) into an ``student_arch`` student."""
    cfg = tiny_cfg(student_arch, num_classes=num_classes)
    cfg.MODEL.META_ARCHITECTURE = "Distiller"
    cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = student_arch
    cfg.MODEL.DISTILL.METHODS = [method]
    config_file, weights = teachers[teacher_arch]
    cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE = config_file
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = weights
    return cfg
