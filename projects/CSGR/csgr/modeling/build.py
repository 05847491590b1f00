"""Building the plain detector (GeneralizedRCNN, RetinaNet, ...) a config describes."""

import torch
from detectron2.config import CfgNode
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from ..config import detector_meta_arch

__all__ = ["build_detector"]


def build_detector(cfg: CfgNode) -> nn.Module:
    """Build the plain detector a config describes (the student of a Distiller config), on
    ``cfg.MODEL.DEVICE``."""
    model = META_ARCH_REGISTRY.get(detector_meta_arch(cfg))(cfg)
    return model.to(torch.device(cfg.MODEL.DEVICE))
