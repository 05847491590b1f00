"""EfficientNet-Lite (Tan & Le, 2019; TensorFlow's ``efficientnet/lite``) as a bottom-up backbone.

Lite variants drop squeeze-and-excitation, use ReLU6, and keep the stem and head widths and
the first and last block groups' depths fixed when scaling. Stride-2 convs pad like
TensorFlow's "SAME" (more on the bottom/right), the padding the published weights were trained
with. Drop-connect is left out (fine-tuning a detector does not use it).

Block groups of lite0 (repeats, kernel, stride, expansion, in, out), scaled by the variant:

    stem: 3x3/2 conv 32        -> part "stem" with group 0: (1, 3, 1, 1, 32, 16)   stride 2
    group 1: (2, 3, 2, 6, 16, 24)                        -> "res2"                  stride 4
    group 2: (2, 5, 2, 6, 24, 40)                        -> "res3"                  stride 8
    groups 3, 4: (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112)   -> "res4"           stride 16
    groups 5, 6: (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320) -> "res5"          stride 32
"""

import functools
import math
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d, ShapeSpec
from torch import nn

from .staged import StagedBackbone, make_norm

__all__ = [
    "EFFICIENTNET_LITE_VARIANTS",
    "EfficientNetLiteSpec",
    "MBConvBlock",
    "build_efficientnet_lite_backbone",
    "efficientnet_lite_spec",
]

# variant -> (width multiplier, depth multiplier), as efficientnet_lite_builder.py
EFFICIENTNET_LITE_VARIANTS: Dict[str, Tuple[float, float]] = {
    "lite0": (1.0, 1.0),
    "lite1": (1.0, 1.1),
    "lite2": (1.1, 1.2),
    "lite3": (1.2, 1.4),
    "lite4": (1.4, 1.8),
}
EFFICIENTNET_LITE_BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280  # the 1x1 conv before ImageNet pooling (classification only)
# (repeats, kernel, stride, expansion, out channels) of lite0, and the part each group ends in
_GROUPS = (
    (1, 3, 1, 1, 16, "stem"),
    (2, 3, 2, 6, 24, "res2"),
    (2, 5, 2, 6, 40, "res3"),
    (3, 3, 2, 6, 80, "res4"),
    (3, 5, 1, 6, 112, "res4"),
    (4, 5, 2, 6, 192, "res5"),
    (1, 3, 1, 6, 320, "res5"),
)
_STRIDES = {"stem": 2, "res2": 4, "res3": 8, "res4": 16, "res5": 32}

# one block: (part, kernel, stride, expansion, in channels, out channels)
EfficientNetLiteSpec = List[Tuple[str, int, int, int, int, int]]


def _round_channels(channels: float, width: float, divisor: int = 8) -> int:
    """TensorFlow's ``round_filters``: scale, round to a multiple of 8, never 10% below."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def efficientnet_lite_spec(variant: str) -> EfficientNetLiteSpec:
    """Every MBConv block of ``variant``, in order (the order of the TensorFlow weights)."""
    if variant not in EFFICIENTNET_LITE_VARIANTS:
        raise ValueError(
            f"MODEL.EFFICIENTNET_LITE.VARIANT must be one of {sorted(EFFICIENTNET_LITE_VARIANTS)}"
            f", got {variant!r}"
        )
    width, depth = EFFICIENTNET_LITE_VARIANTS[variant]
    blocks, c_in = [], STEM_CHANNELS
    for i, (repeats, kernel, stride, expand, c_out, part) in enumerate(_GROUPS):
        fixed = i in (0, len(_GROUPS) - 1)  # lite: first and last groups keep their depth
        repeats = repeats if fixed else int(math.ceil(depth * repeats))
        c_out = _round_channels(c_out, width)
        for r in range(repeats):
            blocks.append((part, kernel, stride if r == 0 else 1, expand, c_in, c_out))
            c_in = c_out
    return blocks


class TFSameConv2d(Conv2d):
    """Detectron2's ``Conv2d`` (with norm and activation) padding like TensorFlow's "SAME"."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def conv_norm_act(
    c_in: int, c_out: int, kernel: int, stride: int, norm: Callable, groups: int = 1, act=True
) -> Conv2d:
    """Bias-free conv + norm (+ ReLU6), "SAME" padded."""
    cls = TFSameConv2d if stride > 1 else Conv2d
    return cls(
        c_in,
        c_out,
        kernel,
        stride=stride,
        padding=0 if stride > 1 else kernel // 2,
        groups=groups,
        bias=False,
        norm=norm(c_out),
        activation=nn.ReLU6(inplace=True) if act else None,
    )


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand (if expansion > 1), depthwise kxk, 1x1 project."""

    def __init__(self, kernel, stride, expand, c_in, c_out, norm: Callable):
        super().__init__()
        mid = c_in * expand
        self.expand = conv_norm_act(c_in, mid, 1, 1, norm) if expand != 1 else None
        self.depthwise = conv_norm_act(mid, mid, kernel, stride, norm, groups=mid)
        self.project = conv_norm_act(mid, c_out, 1, 1, norm, act=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


def build_efficientnet_lite_backbone(cfg, input_shape: ShapeSpec) -> StagedBackbone:
    """EfficientNet-Lite bottom-up from ``MODEL.EFFICIENTNET_LITE.*`` and
    ``MODEL.BACKBONE.FREEZE_AT``.

    Returns:
        StagedBackbone: outputs ``MODEL.EFFICIENTNET_LITE.OUT_FEATURES`` (subset of res2..res5).
    """
    if input_shape.channels != 3:
        raise ValueError(f"EfficientNet-Lite takes 3-channel images, got {input_shape.channels}")
    norm = functools.partial(
        make_norm,
        cfg.MODEL.EFFICIENTNET_LITE.NORM,
        eps=EFFICIENTNET_LITE_BN_EPS,
        key="MODEL.EFFICIENTNET_LITE.NORM",
    )
    parts = {"stem": [conv_norm_act(3, STEM_CHANNELS, 3, 2, norm)]}
    channels = {}
    for part, kernel, stride, expand, c_in, c_out in efficientnet_lite_spec(
        cfg.MODEL.EFFICIENTNET_LITE.VARIANT
    ):
        parts.setdefault(part, []).append(MBConvBlock(kernel, stride, expand, c_in, c_out, norm))
        channels[part] = c_out
    stages = [(p, nn.Sequential(*m), _STRIDES[p], channels[p]) for p, m in parts.items()]
    return StagedBackbone(
        stages, cfg.MODEL.EFFICIENTNET_LITE.OUT_FEATURES, cfg.MODEL.BACKBONE.FREEZE_AT
    )
