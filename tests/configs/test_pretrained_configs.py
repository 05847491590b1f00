"""The pretrained-regime configs (``configs/Coral``, ``configs/Shapes/*_pretrained``): the
regime as configured, each detector trains every trainable part, and each distillation config
pairs its teacher and student."""

import os

import pytest
import torch
from detectron2.layers import FrozenBatchNorm2d
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from tiny_models import ROOT, config_from_file, random_batch

from csgr.modeling import build_detector
from csgr.pretrained import get_source

CONFIGS = os.path.join(ROOT, "configs")
DETECTORS = {  # config -> pretrained network its MODEL.WEIGHTS names
    "Coral/faster_rcnn_MNv2_FPN.yaml": "mobilenet_v2",
    "Coral/faster_rcnn_EffLite2_FPN.yaml": "efficientnet_lite2",
    "Coral/retinanet_MNv2_FPN.yaml": "mobilenet_v2",
    "Coral/retinanet_EffLite2_FPN.yaml": "efficientnet_lite2",
    "Shapes/faster_rcnn_MNv2_FPN_pretrained.yaml": "mobilenet_v2",
    "Shapes/faster_rcnn_EffLite2_FPN_pretrained.yaml": "efficientnet_lite2",
    "Shapes/retinanet_MNv2_FPN_pretrained.yaml": "mobilenet_v2",
    "Shapes/retinanet_EffLite2_FPN_pretrained.yaml": "efficientnet_lite2",
}
DISTILLERS = [
    "Coral/csgr_frcnn_mnv2_efflite2.yaml",
    "Coral/csgr_retinanet_mnv2_efflite2.yaml",
    "Shapes/csgr_frcnn_mnv2_efflite2_pretrained.yaml",
    "Shapes/csgr_retinanet_mnv2_efflite2_pretrained.yaml",
]


def _num_classes(cfg):
    return (
        cfg.MODEL.RETINANET.NUM_CLASSES
        if "retinanet" in cfg.OUTPUT_DIR
        else cfg.MODEL.ROI_HEADS.NUM_CLASSES
    )


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_pretrained_regime_as_configured(name):
    cfg = config_from_file(os.path.join(CONFIGS, name))
    source = get_source(DETECTORS[name])
    assert cfg.MODEL.WEIGHTS == f"csgr-pretrained://{DETECTORS[name]}"
    assert cfg.INPUT.FORMAT == "RGB"
    assert tuple(cfg.MODEL.PIXEL_MEAN) == source.pixel_mean
    assert tuple(cfg.MODEL.PIXEL_STD) == source.pixel_std
    assert not cfg.SOLVER.CLIP_GRADIENTS.ENABLED
    assert cfg.MODEL.BACKBONE.FREEZE_AT == 2
    model = build_detector(cfg)
    bottom_up = model.backbone.bottom_up
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in bottom_up.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in bottom_up.modules())
    assert not any(p.requires_grad for p in bottom_up.stem.parameters())  # FREEZE_AT 2
    assert not any(p.requires_grad for p in bottom_up.res2.parameters())


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_coral_detector_trains_every_trainable_parameter(name):
    cfg = config_from_file(os.path.join(CONFIGS, name))
    torch.manual_seed(0)
    model = build_detector(cfg)
    model.train()
    with EventStorage():
        losses = model(random_batch(num_images=2, size=128, num_classes=_num_classes(cfg)))
    assert all(torch.isfinite(v) for v in losses.values()), losses
    sum(losses.values()).backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused


@pytest.mark.parametrize("name", DISTILLERS)
def test_distillation_config_pairs_teacher_and_student(tmp_path, name):
    cfg = config_from_file(os.path.join(CONFIGS, name))
    teacher_cfg = config_from_file(os.path.join(ROOT, cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE))
    torch.manual_seed(0)
    weights = tmp_path / "teacher.pth"  # a random teacher stands in for the trained one
    torch.save({"model": build_detector(teacher_cfg).state_dict()}, weights)
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = str(weights)
    model = build_model(cfg)
    model.train()
    teacher_levels = model.teacher.backbone.output_shape()
    assert list(teacher_levels) == list(model.student.backbone.output_shape())
    assert "efficientnet" in teacher_cfg.MODEL.BACKBONE.NAME
    assert "mobilenet_v2" in cfg.MODEL.BACKBONE.NAME
    with EventStorage(0):
        losses = model(random_batch(num_images=2, size=128, num_classes=_num_classes(cfg)))
    assert {"loss_csgr_cat", "loss_csgr_rel"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
