"""Convert ImageNet classifier weights into checkpoints ``MODEL.WEIGHTS`` loads.

The output file holds ``{"model": {"backbone.bottom_up.<key>": tensor}, "imagenet_head":
{...}, "__author__": ...}``: the bottom-up keys are those of the CSGR mobile backbones (the FPN
and heads start from scratch, as with Detectron2's ImageNet ``.pkl`` files), and
``imagenet_head`` keeps the classifier (``ImageNetHead``) so the conversion can be checked by
classifying photographs (``imagenet_check``). Every source key must map to a model key of the
same shape and every model key must be filled; anything else is an error naming the keys.
"""

import os
import re
from typing import Dict, Tuple

import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from torch import nn

from ..config import add_csgr_config
from ..modeling.backbone import (
    ImageNetHead,
    build_efficientnet_lite_backbone,
    build_mobilenet_v2_backbone,
    efficientnet_lite_spec,
)
from ..modeling.backbone.efficientnet_lite import EFFICIENTNET_LITE_BN_EPS
from ..modeling.backbone.mobilenet_v2 import (
    MOBILENET_V2_BN_EPS,
    MOBILENET_V2_HEAD,
    MOBILENET_V2_STAGES,
)
from .sources import PretrainedSource

__all__ = ["build_imagenet_parts", "convert_state_dict", "save_converted", "BOTTOM_UP_PREFIX"]

BOTTOM_UP_PREFIX = "backbone.bottom_up."
StateDict = Dict[str, torch.Tensor]


def build_imagenet_parts(arch: str) -> Tuple[nn.Module, ImageNetHead]:
    """The FrozenBN bottom-up backbone (res2..res5, nothing frozen) and ImageNet head of
    ``arch`` ("mobilenet_v2" or "efficientnet_lite<k>"), randomly initialised."""
    cfg = get_cfg()
    add_csgr_config(cfg)
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    if arch == "mobilenet_v2":
        backbone, eps = build_mobilenet_v2_backbone(cfg, ShapeSpec(channels=3)), MOBILENET_V2_BN_EPS
    elif arch.startswith("efficientnet_lite"):
        cfg.MODEL.EFFICIENTNET_LITE.VARIANT = arch[len("efficientnet_") :]
        backbone = build_efficientnet_lite_backbone(cfg, ShapeSpec(channels=3))
        eps = EFFICIENTNET_LITE_BN_EPS
    else:
        raise ValueError(f"no ImageNet conversion for architecture {arch!r}")
    return backbone, ImageNetHead(backbone.output_shape()["res5"].channels, eps)


def _mobilenet_v2_key(key: str) -> Tuple[str, str]:
    """torchvision key -> ("backbone" | "head", new key)."""
    m = re.fullmatch(r"features\.(\d+)\.(.+)", key)
    if m:
        i, rest = int(m.group(1)), m.group(2)
        if i == MOBILENET_V2_HEAD["features"]:
            return "head", {"0.weight": "conv.weight"}.get(
                rest, rest.replace("1.", "conv.norm.", 1)
            )
        for part, ((a, b), _, _) in MOBILENET_V2_STAGES.items():
            if a <= i < b:
                return "backbone", f"{part}.{i - a}.{rest}"
    m = re.fullmatch(r"classifier\.1\.(weight|bias)", key)
    if m:
        return "head", f"fc.{m.group(1)}"
    raise KeyError(key)


def _efficientnet_lite_key(key: str, block_prefixes) -> Tuple[str, str]:
    """lukemelas/EfficientNet-PyTorch (Lite) key -> ("backbone" | "head", new key)."""
    layer = {"_expand_conv": "expand", "_depthwise_conv": "depthwise", "_project_conv": "project"}
    norm = {"_bn0": "expand.norm", "_bn1": "depthwise.norm", "_bn2": "project.norm"}
    m = re.fullmatch(r"_blocks\.(\d+)\.(_\w+)\.(\w+)", key)
    if m:
        prefix, name, param = block_prefixes[int(m.group(1))], m.group(2), m.group(3)
        new = f"{layer[name]}.{param}" if name in layer else f"{norm[name]}.{param}"
        return "backbone", f"{prefix}.{new}"
    top = {"_conv_stem": ("backbone", "stem.0"), "_bn0": ("backbone", "stem.0.norm")}
    top.update({"_conv_head": ("head", "conv"), "_bn1": ("head", "conv.norm")})
    top["_fc"] = ("head", "fc")
    name, param = key.rsplit(".", 1)
    side, new = top[name]
    return side, f"{new}.{param}"


def _check_against(
    side: str, converted: StateDict, module: nn.Module, filename: str, arch: str
) -> None:
    expected = {k: v.shape for k, v in module.state_dict().items() if v is not None}
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    wrong = [
        f"{k} (file {tuple(converted[k].shape)}, model {tuple(expected[k])})"
        for k in sorted(set(expected) & set(converted))
        if converted[k].shape != expected[k]
    ]
    if missing or unexpected or wrong:
        raise ValueError(
            f"{filename}: converted {side} keys do not fit the {arch!r} model: missing {missing[:10]}, "
            f"unexpected {unexpected[:10]}, wrong shape {wrong[:10]}"
        )


def convert_state_dict(
    source_sd: StateDict, arch: str, filename: str = "<weights>"
) -> Tuple[StateDict, StateDict]:
    """Map an ImageNet state dict onto the CSGR backbone and ``ImageNetHead`` of ``arch``.

    Args:
        source_sd: torchvision's MobileNetV2 or EfficientNet-Lite-PyTorch's state dict.
        arch: "mobilenet_v2" or "efficientnet_lite<k>".
        filename: named in errors.

    Returns:
        (bottom-up state dict with the backbone's own keys, head state dict).

    Raises:
        ValueError: a key that maps nowhere, a model key left unfilled, or a shape mismatch.
    """
    if arch == "mobilenet_v2":
        rename = _mobilenet_v2_key
    else:
        prefixes, counts = [], {}
        for part, *_ in efficientnet_lite_spec(arch[len("efficientnet_") :]):
            counts[part] = counts.get(part, 1 if part == "stem" else 0) + 1
            prefixes.append(f"{part}.{counts[part] - 1}")
        rename = lambda k: _efficientnet_lite_key(k, prefixes)  # noqa: E731
    parts: Dict[str, StateDict] = {"backbone": {}, "head": {}}
    unmapped = []
    for key, value in source_sd.items():
        if key.endswith("num_batches_tracked"):
            continue
        try:
            side, new = rename(key)
        except (KeyError, IndexError):
            unmapped.append(key)
            continue
        parts[side][new] = value.detach().clone().float()
    if unmapped:
        raise ValueError(f"{filename}: keys not known for {arch}: {unmapped[:10]}")
    backbone, head = build_imagenet_parts(arch)
    _check_against("backbone", parts["backbone"], backbone, filename, arch)
    _check_against("head", parts["head"], head, filename, arch)
    return parts["backbone"], parts["head"]


def save_converted(raw_path: str, source: PretrainedSource, output_path: str) -> str:
    """Convert ``raw_path`` (a weights file of ``source``) and write a Detectron2 checkpoint.

    Returns:
        str: ``output_path``.
    """
    source_sd = torch.load(raw_path, map_location="cpu", weights_only=True)
    backbone, head = convert_state_dict(source_sd, source.arch, raw_path)
    checkpoint = {
        "model": {BOTTOM_UP_PREFIX + k: v for k, v in backbone.items()},
        "imagenet_head": head,
        "__author__": f"csgr.pretrained from {source.package}=={source.version}",
        "pixel_mean": list(source.pixel_mean),
        "pixel_std": list(source.pixel_std),
    }
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    tmp = output_path + ".tmp"
    torch.save(checkpoint, tmp)
    os.replace(tmp, output_path)
    return output_path
