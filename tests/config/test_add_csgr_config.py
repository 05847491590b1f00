"""add_csgr_config on a config that already has part of MODEL.DISTILL."""

from detectron2.config import CfgNode as CN
from detectron2.config import get_cfg

from csgr.config import add_csgr_config


def test_add_csgr_config_completes_an_existing_distill_node():
    cfg = get_cfg()
    cfg.MODEL.DISTILL = CN()
    cfg.MODEL.DISTILL.METHODS = ["PKD"]
    cfg.MODEL.DISTILL.PKD = CN()
    cfg.MODEL.DISTILL.PKD.WEIGHT = 2.0
    add_csgr_config(cfg)
    assert cfg.MODEL.DISTILL.METHODS == ["PKD"] and cfg.MODEL.DISTILL.PKD.WEIGHT == 2.0
    assert cfg.MODEL.DISTILL.PKD.IN_FEATURES == [] and cfg.MODEL.DISTILL.TEACHER.WEIGHTS == ""
    assert cfg.MODEL.DISTILL.MGD.ALPHA == -1.0
