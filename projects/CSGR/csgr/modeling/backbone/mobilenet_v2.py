"""MobileNetV2 (torchvision's definition) as a bottom-up backbone with ResNet-style stages.

The stages are slices of ``torchvision.models.mobilenet_v2().features``, whose module names are
kept under each stage, so torchvision's ImageNet file maps onto it by renaming prefixes only
(``csgr.pretrained.convert``):

    part   features  stride  channels
    stem   0-1       2       16
    res2   2-3       4       24
    res3   4-6       8       32
    res4   7-13      16      96
    res5   14-17     32      320

``features.18`` (1x1 conv to 1280) and the classifier belong to ImageNet classification only;
they are not part of the backbone (as in mmdetection's MobileNetV2 with out_indices up to 7).
"""

import functools
from typing import Dict, Tuple

from detectron2.layers import ShapeSpec
from torch import nn
from torchvision.models import mobilenet_v2

from .staged import StagedBackbone, make_norm

__all__ = ["MOBILENET_V2_STAGES", "build_mobilenet_v2_backbone"]

# part -> (first, last + 1) index into torchvision's ``features``, stride, channels
MOBILENET_V2_STAGES: Dict[str, Tuple[Tuple[int, int], int, int]] = {
    "stem": ((0, 2), 2, 16),
    "res2": ((2, 4), 4, 24),
    "res3": ((4, 7), 8, 32),
    "res4": ((7, 14), 16, 96),
    "res5": ((14, 18), 32, 320),
}
MOBILENET_V2_BN_EPS = 1e-5  # torchvision's BatchNorm2d default
MOBILENET_V2_HEAD = {"features": 18, "channels": 1280}


def build_mobilenet_v2_backbone(cfg, input_shape: ShapeSpec) -> StagedBackbone:
    """MobileNetV2 bottom-up from ``MODEL.MOBILENET_V2.*`` and ``MODEL.BACKBONE.FREEZE_AT``.

    Returns:
        StagedBackbone: outputs ``MODEL.MOBILENET_V2.OUT_FEATURES`` (subset of res2..res5).
    """
    if input_shape.channels != 3:
        raise ValueError(f"MobileNetV2 takes 3-channel images, got {input_shape.channels}")
    norm = functools.partial(
        make_norm,
        cfg.MODEL.MOBILENET_V2.NORM,
        eps=MOBILENET_V2_BN_EPS,
        key="MODEL.MOBILENET_V2.NORM",
    )
    features = mobilenet_v2(weights=None, norm_layer=lambda c: norm(c)).features
    stages = [
        (name, nn.Sequential(*features[a:b]), stride, channels)
        for name, ((a, b), stride, channels) in MOBILENET_V2_STAGES.items()
    ]
    return StagedBackbone(stages, cfg.MODEL.MOBILENET_V2.OUT_FEATURES, cfg.MODEL.BACKBONE.FREEZE_AT)
