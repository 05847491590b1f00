"""The offline shapes detectors (``configs/Shapes``) build as configured and train every part."""

import os

import pytest
import torch
from detectron2.utils.events import EventStorage
from tiny_models import ROOT, config_from_file, random_batch

from csgr.data.datasets import SHAPES_CATEGORIES
from csgr.modeling import build_detector

DETECTORS = [
    "faster_rcnn_R_18_FPN.yaml",
    "faster_rcnn_R_34_FPN.yaml",
    "retinanet_R_18_FPN.yaml",
    "retinanet_R_34_FPN.yaml",
]


def _shapes_cfg(name):
    return config_from_file(os.path.join(ROOT, "configs", "Shapes", name))


@pytest.mark.parametrize("name", DETECTORS)
def test_shapes_detector_trains_every_parameter(name):
    """One step on a 128 px batch reaches every parameter: DDP needs no find_unused_parameters."""
    cfg = _shapes_cfg(name)
    torch.manual_seed(0)
    model = build_detector(cfg)
    model.train()
    k = len(SHAPES_CATEGORIES)
    with EventStorage():
        losses = model(random_batch(num_images=2, size=128, num_classes=k))
    assert all(torch.isfinite(v) for v in losses.values()), losses
    sum(losses.values()).backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused


def test_shapes_retinanet_head_reads_every_level_with_anchors_4x_stride():
    cfg = _shapes_cfg("retinanet_R_18_FPN.yaml")
    model = build_detector(cfg)
    shapes = model.backbone.output_shape()
    levels = list(cfg.MODEL.RETINANET.IN_FEATURES)
    assert levels == sorted(shapes, key=lambda k: shapes[k].stride)
    assert levels[0] == "p2"  # stride 4: most shapes objects are 12-32 px
    smallest_anchor = [min(sizes) for sizes in cfg.MODEL.ANCHOR_GENERATOR.SIZES]
    assert smallest_anchor == [4 * shapes[k].stride for k in levels]
