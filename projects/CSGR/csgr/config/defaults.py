"""Config keys of CSGR. Every key lives under ``MODEL.DISTILL`` (or ``DATASETS.SHAPES`` for the
offline dataset) and is documented here with its meaning and unit."""

from detectron2.config import CfgNode as CN

from .methods_feature import add_feature_methods_config
from .methods_response import add_response_methods_config
from .reliability import add_reliability_config


def add_csgr_config(cfg):
    """Add CSGR's keys to a Detectron2 config, in place: ``MODEL.DISTILL`` with CSGR's keys
    (below) and those of the other methods and of the reliability features (sibling modules).

    Safe to call more than once (keys already present are left alone).

    Args:
        cfg (CfgNode): a config from :func:`detectron2.config.get_cfg`.
    """
    if "DISTILL" not in cfg.MODEL:
        _add_distill_config(cfg)
    add_feature_methods_config(cfg)
    add_response_methods_config(cfg)
    add_reliability_config(cfg)


def _add_distill_config(cfg):
    _C = cfg
    _C.MODEL.DISTILL = CN()
    # Meta-architecture of the student held by the "Distiller" meta-architecture:
    # "GeneralizedRCNN" (Faster R-CNN) or "RetinaNet". The student is built from this same config.
    _C.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = "GeneralizedRCNN"
    # Distillation methods to train with, by registered name (see DISTILL_LOSS_REGISTRY), e.g.
    # ["CSGR"] or ["CSGR", "PKD"]. Each has its own sub-node below with weights and levels.
    # An empty list trains the student alone (the baseline) while still holding the teacher.
    _C.MODEL.DISTILL.METHODS = ["CSGR"]
    # How a student FPN level of a different width than the teacher's is matched: "auto" adds a
    # learnable 1x1 conv adapter student->teacher channels only where the widths differ, "always"
    # adds one on every distilled level, "never" raises an error on a width mismatch.
    _C.MODEL.DISTILL.ADAPTER = "auto"

    _C.MODEL.DISTILL.TEACHER = CN()
    # Path of the teacher's Detectron2 YAML config (relative paths: to the working directory,
    # then to the repository root). Required for distillation.
    _C.MODEL.DISTILL.TEACHER.CONFIG_FILE = ""
    # Path of the teacher's weights (.pth/.pkl; a Detectron2 checkpoint, a model-zoo file, or a
    # CSGR checkpoint whose student was trained as teacher). Loaded strictly: any missing,
    # unexpected or mis-shaped key is an error.
    _C.MODEL.DISTILL.TEACHER.WEIGHTS = ""
    # Extra ["KEY", "VALUE", ...] overrides applied to the teacher config after CONFIG_FILE.
    _C.MODEL.DISTILL.TEACHER.OPTS = []

    # CSGR: Category Semantic and Global Relation distillation (see README, "Methods").
    _C.MODEL.DISTILL.CSGR = CN()
    # FPN levels to distil, by name (e.g. ["p2", "p3", "p4", "p5", "p6"]); [] means every level
    # that teacher and student both have.
    _C.MODEL.DISTILL.CSGR.IN_FEATURES = []
    # FPN levels of the global relation term (criss-cross attention); [] means the same as
    # IN_FEATURES. When set, IN_FEATURES names the category term's levels only. See README, "CSGR".
    _C.MODEL.DISTILL.CSGR.REL_IN_FEATURES = []
    # Weight of the category semantic term loss_csgr_cat (sum of squared prototype differences
    # over levels, divided by the batch size).
    _C.MODEL.DISTILL.CSGR.CAT_WEIGHT = 5e-4
    # Weight of the global relation term loss_csgr_rel (sum of squared differences of the
    # criss-cross attention outputs over levels, divided by the batch size).
    _C.MODEL.DISTILL.CSGR.REL_WEIGHT = 1e-5
    # Recurrence R of the criss-cross attention: 1 sees the row and column of each pixel, 2 the
    # whole image.
    _C.MODEL.DISTILL.CSGR.RECURRENCE = 1
    # Channel reduction of the criss-cross query/key projections (C -> C / REDUCTION).
    _C.MODEL.DISTILL.CSGR.REDUCTION = 8
