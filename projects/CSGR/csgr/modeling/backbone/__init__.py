"""ImageNet-pretrainable mobile backbones (MobileNetV2, EfficientNet-Lite) with FPNs, registered
in Detectron2's ``BACKBONE_REGISTRY`` on import. Config keys: ``csgr.config.backbones``."""

from .efficientnet_lite import build_efficientnet_lite_backbone, efficientnet_lite_spec
from .fpn import (
    build_efficientnet_lite_fpn_backbone,
    build_mobilenet_v2_fpn_backbone,
    build_retinanet_efficientnet_lite_fpn_backbone,
    build_retinanet_mobilenet_v2_fpn_backbone,
)
from .imagenet_head import ImageNetHead
from .mobilenet_v2 import build_mobilenet_v2_backbone
from .staged import StagedBackbone

__all__ = [
    "ImageNetHead",
    "StagedBackbone",
    "build_efficientnet_lite_backbone",
    "build_efficientnet_lite_fpn_backbone",
    "build_mobilenet_v2_backbone",
    "build_mobilenet_v2_fpn_backbone",
    "build_retinanet_efficientnet_lite_fpn_backbone",
    "build_retinanet_mobilenet_v2_fpn_backbone",
    "efficientnet_lite_spec",
]
