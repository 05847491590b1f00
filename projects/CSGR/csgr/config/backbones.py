"""Config keys of the mobile backbones (``csgr.modeling.backbone``)."""

from detectron2.config import CfgNode as CN

__all__ = ["add_mobile_backbones_config"]


def add_mobile_backbones_config(cfg):
    """Add ``MODEL.MOBILENET_V2`` and ``MODEL.EFFICIENTNET_LITE`` to ``cfg`` in place (keys
    already present are left alone). ``MODEL.BACKBONE.FREEZE_AT`` applies to both as to ResNets:
    0 trains everything, 1 freezes the stem (stride 2), 2 also res2, ..., 5 everything."""
    if "MOBILENET_V2" not in cfg.MODEL:
        cfg.MODEL.MOBILENET_V2 = CN()
        # Parts the bottom-up backbone outputs: "res2".."res5", strides 4..32, channels 24, 32,
        # 96, 320 (the Faster R-CNN FPN takes all four, RetinaNet's res3-res5).
        cfg.MODEL.MOBILENET_V2.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
        # Normalisation: "FrozenBN" (statistics and affine fixed, for ImageNet-initialised
        # networks), "BN", "SyncBN" or "GN" (from scratch). Frozen parts are FrozenBN anyway.
        cfg.MODEL.MOBILENET_V2.NORM = "FrozenBN"
    if "EFFICIENTNET_LITE" not in cfg.MODEL:
        cfg.MODEL.EFFICIENTNET_LITE = CN()
        # "lite0".."lite4" (width, depth multipliers 1.0/1.0 up to 1.4/1.8). Channels of
        # res2..res5: lite0 24, 40, 112, 320; lite2 24, 48, 120, 352.
        cfg.MODEL.EFFICIENTNET_LITE.VARIANT = "lite0"
        cfg.MODEL.EFFICIENTNET_LITE.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
        # As MODEL.MOBILENET_V2.NORM; batch-norm layers keep TensorFlow's epsilon 1e-3.
        cfg.MODEL.EFFICIENTNET_LITE.NORM = "FrozenBN"
