"""FPN backbones over MobileNetV2 and EfficientNet-Lite, registered in ``BACKBONE_REGISTRY``.

Set ``MODEL.BACKBONE.NAME`` to one of:

    build_mobilenet_v2_fpn_backbone              Faster R-CNN: P2-P6 (P6 max-pooled from P5)
    build_retinanet_mobilenet_v2_fpn_backbone    RetinaNet: P3-P7 (LastLevelP6P7 on res5)
    build_efficientnet_lite_fpn_backbone         as above, EfficientNet-Lite
    build_retinanet_efficientnet_lite_fpn_backbone

``MODEL.FPN.IN_FEATURES`` names the bottom-up parts (``res2``..``res5``), as with ResNets; the
FPN output names (``p2``..``p7``), strides and ``MODEL.FPN.OUT_CHANNELS`` are Detectron2's, so
heads, teachers and the Distiller's level pairing work unchanged.
"""

from typing import Callable

from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool, LastLevelP6P7

from .efficientnet_lite import build_efficientnet_lite_backbone
from .mobilenet_v2 import build_mobilenet_v2_backbone

__all__ = [
    "build_efficientnet_lite_fpn_backbone",
    "build_mobilenet_v2_fpn_backbone",
    "build_retinanet_efficientnet_lite_fpn_backbone",
    "build_retinanet_mobilenet_v2_fpn_backbone",
]


def _fpn(cfg, bottom_up, top_block) -> FPN:
    missing = [f for f in cfg.MODEL.FPN.IN_FEATURES if f not in bottom_up.output_shape()]
    if missing:
        raise ValueError(
            f"MODEL.FPN.IN_FEATURES names {missing}, which the bottom-up backbone does not "
            f"output (it outputs {list(bottom_up.output_shape())}; set its OUT_FEATURES)"
        )
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=top_block,
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )


def _rcnn_fpn(build_bottom_up: Callable, cfg, input_shape: ShapeSpec) -> FPN:
    return _fpn(cfg, build_bottom_up(cfg, input_shape), LastLevelMaxPool())


def _retinanet_fpn(build_bottom_up: Callable, cfg, input_shape: ShapeSpec) -> FPN:
    bottom_up = build_bottom_up(cfg, input_shape)
    if "res5" not in bottom_up.output_shape():
        raise ValueError("RetinaNet's P6/P7 are computed from res5: add it to OUT_FEATURES")
    in_channels = bottom_up.output_shape()["res5"].channels
    top_block = LastLevelP6P7(in_channels, cfg.MODEL.FPN.OUT_CHANNELS, in_feature="res5")
    return _fpn(cfg, bottom_up, top_block)


@BACKBONE_REGISTRY.register()
def build_mobilenet_v2_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """MobileNetV2-FPN with P2-P6 (``LastLevelMaxPool``), for Faster R-CNN."""
    return _rcnn_fpn(build_mobilenet_v2_backbone, cfg, input_shape)


@BACKBONE_REGISTRY.register()
def build_retinanet_mobilenet_v2_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """MobileNetV2-FPN with P3-P7 (``LastLevelP6P7`` on res5), for RetinaNet."""
    return _retinanet_fpn(build_mobilenet_v2_backbone, cfg, input_shape)


@BACKBONE_REGISTRY.register()
def build_efficientnet_lite_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """EfficientNet-Lite-FPN with P2-P6 (``LastLevelMaxPool``), for Faster R-CNN."""
    return _rcnn_fpn(build_efficientnet_lite_backbone, cfg, input_shape)


@BACKBONE_REGISTRY.register()
def build_retinanet_efficientnet_lite_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """EfficientNet-Lite-FPN with P3-P7 (``LastLevelP6P7`` on res5), for RetinaNet."""
    return _retinanet_fpn(build_efficientnet_lite_backbone, cfg, input_shape)
