"""A bottom-up backbone made of a stem and four stages, with Detectron2's ResNet conventions.

Mobile networks (MobileNetV2, EfficientNet-Lite) are cut into the same five parts as a ResNet,
so that Detectron2's FPN, ``MODEL.BACKBONE.FREEZE_AT`` and the Distiller treat them alike:

    part    output stride   holds
    stem    2               the first conv and the first (stride-1) block group
    res2    4               the blocks up to stride 4
    res3    8
    res4    16
    res5    32
"""

from typing import Dict, List, Sequence, Tuple

import torch
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec, get_norm
from detectron2.modeling import Backbone
from torch import nn

STAGE_NAMES = ("stem", "res2", "res3", "res4", "res5")
NORMS = ("FrozenBN", "BN", "SyncBN", "nnSyncBN", "naiveSyncBN", "GN")

__all__ = ["STAGE_NAMES", "StagedBackbone", "make_norm"]


def make_norm(norm: str, channels: int, eps: float, key: str) -> nn.Module:
    """A normalisation layer as ``detectron2.layers.get_norm`` builds it, with the batch-norm
    epsilon the pretrained network was trained with (TensorFlow's EfficientNets use 1e-3).

    Args:
        norm: one of ``NORMS``.
        channels: number of channels.
        eps: epsilon of batch-norm layers (ignored by GN).
        key: the config key ``norm`` came from, for the error message.
    """
    if norm not in NORMS:
        raise ValueError(f"{key} must be one of {NORMS}, got {norm!r}")
    layer = get_norm(norm, channels)
    if isinstance(layer, (nn.modules.batchnorm._BatchNorm, FrozenBatchNorm2d)):
        layer.eps = eps
    return layer


class StagedBackbone(Backbone):
    """Runs ``stem, res2, ..., res5`` in order and returns the requested stage outputs.

    Args:
        stages: ``(name, module, stride, channels)`` for each of ``STAGE_NAMES``, in order.
        out_features: names among ``res2``..``res5`` to return (e.g. ``["res3", "res4",
            "res5"]`` for RetinaNet's P3-P7); stages after the last requested one are not run.
        freeze_at: as Detectron2's ResNet: 0 trains everything, 1 freezes the stem, 2 also
            res2, ..., 5 freezes everything. Frozen parts have ``requires_grad=False`` and
            their BatchNorms become ``FrozenBatchNorm2d``.
    """

    def __init__(
        self,
        stages: Sequence[Tuple[str, nn.Module, int, int]],
        out_features: Sequence[str],
        freeze_at: int = 0,
    ):
        super().__init__()
        names = tuple(s[0] for s in stages)
        if names != STAGE_NAMES:
            raise ValueError(f"stages must be named {STAGE_NAMES}, got {names}")
        unknown = [f for f in out_features if f not in STAGE_NAMES[1:]]
        if unknown or not out_features:
            raise ValueError(
                f"OUT_FEATURES {list(out_features)}: each must be one of {STAGE_NAMES[1:]}"
            )
        if not 0 <= freeze_at <= len(STAGE_NAMES):
            raise ValueError(f"MODEL.BACKBONE.FREEZE_AT must be in 0..5, got {freeze_at}")
        self._out_features = [n for n in STAGE_NAMES if n in out_features]
        last = STAGE_NAMES.index(self._out_features[-1])
        self.stage_names: List[str] = list(STAGE_NAMES[: last + 1])
        self._out_feature_strides: Dict[str, int] = {}
        self._out_feature_channels: Dict[str, int] = {}
        for name, module, stride, channels in stages[: last + 1]:
            self.add_module(name, module)
            self._out_feature_strides[name] = stride
            self._out_feature_channels[name] = channels
        self.freeze(freeze_at)

    def freeze(self, freeze_at: int = 0) -> "StagedBackbone":
        """Freeze the first ``freeze_at`` parts (stem = 1), as ``ResNet.freeze`` does."""
        for name in self.stage_names[:freeze_at]:
            module = getattr(self, name)
            for p in module.parameters():
                p.requires_grad_(False)
            setattr(self, name, FrozenBatchNorm2d.convert_frozen_batchnorm(module))
        return self

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """
        Args:
            x: (N, 3, H, W) normalised images, H and W divisible by 32.

        Returns:
            dict: ``{name: (N, C_name, H / stride, W / stride)}`` for each out feature.
        """
        if x.dim() != 4:
            raise ValueError(f"{type(self).__name__} takes (N, C, H, W) inputs, got {x.shape}")
        outputs = {}
        for name in self.stage_names:
            x = getattr(self, name)(x)
            if name in self._out_features:
                outputs[name] = x
        return outputs

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
        }
