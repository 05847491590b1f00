"""Prove a converted checkpoint is right: classify photographs of known ImageNet classes.

The photographs ship with scikit-image (``skimage.data``): Chelsea the cat and a cup of
coffee. A conversion that maps a tensor to the wrong layer, permutes channels or breaks the
preprocessing loses the right class from the top 5.
"""

from typing import Dict, List, Tuple

import numpy as np
import torch
from PIL import Image

from .convert import BOTTOM_UP_PREFIX, build_imagenet_parts
from .sources import PretrainedSource

__all__ = ["PHOTOS", "check_imagenet_top5", "classify_photos", "load_converted"]

# skimage.data function -> ImageNet-1k class indices any of which is a right answer
PHOTOS: Dict[str, Dict[int, str]] = {
    "chelsea": {281: "tabby", 282: "tiger cat", 283: "Persian cat", 285: "Egyptian cat"},
    "coffee": {967: "espresso", 968: "cup", 504: "coffee mug"},
}


def _preprocess(image: np.ndarray, source: PretrainedSource) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, S, S) normalised, resized and centre-cropped as in ImageNet
    evaluation (short side to ``eval_size / crop_fraction``, bicubic)."""
    pil = Image.fromarray(image)
    short = round(source.eval_size / source.crop_fraction)
    w, h = pil.size
    scale = short / min(w, h)
    pil = pil.resize((round(w * scale), round(h * scale)), Image.BICUBIC)
    w, h = pil.size
    left, top = (w - source.eval_size) // 2, (h - source.eval_size) // 2
    pil = pil.crop((left, top, left + source.eval_size, top + source.eval_size))
    x = torch.from_numpy(np.asarray(pil, dtype=np.float32)).permute(2, 0, 1)
    mean = torch.tensor(source.pixel_mean).view(3, 1, 1)
    std = torch.tensor(source.pixel_std).view(3, 1, 1)
    return (x - mean) / std


def load_converted(checkpoint: dict, source: PretrainedSource):
    """Bottom-up backbone and ImageNet head of ``source.arch`` with a converted checkpoint's
    weights, loaded strictly, in eval mode."""
    backbone, head = build_imagenet_parts(source.arch)
    bottom_up = {
        k[len(BOTTOM_UP_PREFIX) :]: v
        for k, v in checkpoint["model"].items()
        if k.startswith(BOTTOM_UP_PREFIX)
    }
    backbone.load_state_dict(bottom_up, strict=True)
    head.load_state_dict(checkpoint["imagenet_head"], strict=True)
    return backbone.eval(), head.eval()


@torch.no_grad()
def classify_photos(checkpoint: dict, source: PretrainedSource, k: int = 5):
    """Top-``k`` ImageNet classes of each photo in ``PHOTOS``.

    Returns:
        dict: photo name -> list of (class index, probability), best first.
    """
    from skimage import data  # scikit-image ships the photographs

    backbone, head = load_converted(checkpoint, source)
    names = list(PHOTOS)
    batch = torch.stack([_preprocess(getattr(data, n)(), source) for n in names])
    probs = head(backbone(batch)["res5"]).softmax(dim=1)
    top = probs.topk(k, dim=1)
    return {
        n: [(int(i), float(p)) for p, i in zip(top.values[j], top.indices[j])]
        for j, n in enumerate(names)
    }


def check_imagenet_top5(checkpoint: dict, source: PretrainedSource, name: str = "") -> Dict:
    """Raise unless every photo's right class is in the top 5.

    Returns:
        dict: the top 5 of each photo (as ``classify_photos``).

    Raises:
        ValueError: naming the photo, its expected classes and the top 5 found.
    """
    tops: Dict[str, List[Tuple[int, float]]] = classify_photos(checkpoint, source)
    for photo, expected in PHOTOS.items():
        if not any(i in expected for i, _ in tops[photo]):
            found = ", ".join(f"{i} ({p:.2f})" for i, p in tops[photo])
            raise ValueError(
                f"converted {name or source.arch} weights fail the ImageNet check: the top 5 of "
                f"skimage.data.{photo}() is [{found}], none of {expected}: the conversion is wrong"
            )
    return tops
