"""Generator of the offline "shapes" detection dataset, written in COCO format.

Each image is a textured background with clutter (strokes, arcs, irregular blobs that are not
objects) and 2..8 objects from ``SHAPE_CLASSES`` of random colour, extent (log-uniform from
``min_extent`` px to half the image side), aspect and rotation, drawn one over the other.

Occlusion: objects drawn later hide earlier ones. A placement that would leave an earlier
object less than ``min_visible`` (30%) of its area visible is tried elsewhere (20 tries), then
the object is skipped, so every labelled object is at least 30% visible and nothing unlabelled
hides behind labelled objects. Boxes and areas are those of the *visible* pixels (modal, as in
COCO); ``segmentation`` is the visible mask as compressed RLE.

Image ``i`` of a split is drawn from ``np.random.default_rng([seed, split_code, i])``: the same
seed gives identical json and image bytes, and a smaller dataset is a prefix of a larger one.
"""

import json
import os
from typing import Dict, List, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_util

from .shapes_draw import (
    SHAPE_CLASSES,
    draw_clutter,
    noise,
    random_background,
    random_color,
    shape_mask,
)

__all__ = ["GENERATOR_VERSION", "SHAPES_CATEGORIES", "render_image", "write_split"]

GENERATOR_VERSION = 2  # 2: max_clutter, generator.json stamp
SHAPES_CATEGORIES = [{"id": i + 1, "name": n} for i, n in enumerate(SHAPE_CLASSES)]
_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
_MAX_TRIES = 20
_MIN_CONTRAST = 90.0  # min RGB distance between an object and the background under it


def _object_color(rng, img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    under = img[mask].mean(axis=0)
    best, best_dist = None, -1.0
    for _ in range(6):
        color = random_color(rng)
        dist = float(np.linalg.norm(color - under))
        if dist > best_dist:
            best, best_dist = color, dist
        if dist >= _MIN_CONTRAST:
            break
    return best


def _paint(rng, img: np.ndarray, mask: np.ndarray) -> None:
    """Fill ``mask`` with a colour, a linear shading and mild noise, in place."""
    color = _object_color(rng, img, mask)
    ys, xs = np.nonzero(mask)
    span = max(int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = ((xs - xs.mean()) * np.cos(theta) + (ys - ys.mean()) * np.sin(theta)) / span
    shade = rng.uniform(0, 60) * ramp[:, None]
    img[ys, xs] = color + shade + noise(rng, rng.uniform(0, 6), (len(xs), 3))


def _place(rng, size, name, extent, visible, full_areas, min_visible):
    """Sample a position whose mask keeps every earlier object ``min_visible`` visible."""
    aspect = float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
    angle = rng.uniform(0, 2 * np.pi)
    half = extent / 2 * np.sqrt(max(aspect, 1 / aspect))
    lo, hi = min(half, size / 2), max(size - half, size / 2)
    for _ in range(_MAX_TRIES):
        center = rng.uniform(lo, hi, 2)
        mask = shape_mask(name, size, center, extent, aspect, angle)
        if mask.sum() < 4:
            continue
        if all((vis & ~mask).sum() >= min_visible * area for vis, area in zip(visible, full_areas)):
            return mask
    return None


def render_image(
    rng: np.random.Generator,
    size: int,
    min_extent: float = 8.0,
    max_objects: int = 8,
    min_visible: float = 0.3,
    max_clutter: int = 8,
) -> Tuple[np.ndarray, List[Dict]]:
    """
    Draw one image and its objects.

    Args:
        rng: the generator that fixes every random choice.
        size (int): image side, pixels.
        min_extent (float): smallest object extent, pixels; the largest is ``size / 2``.
        max_objects (int): at most this many objects (at least 2 are attempted).
        min_visible (float): smallest visible fraction of an object's own area.
        max_clutter (int): at most this many distractors under the objects (0: none, and no
            thin strokes on top either).

    Returns:
        tuple: (uint8 RGB image of shape (size, size, 3), list of dicts with ``category_id``
        (1-based), ``mask`` ((size, size) bool, visible pixels)).
    """
    img = random_background(rng, size)
    if max_clutter > 0:
        draw_clutter(rng, img, int(rng.integers(min(2, max_clutter), max_clutter + 1)))
    names = list(SHAPE_CLASSES)
    visible, full_areas, labels = [], [], []
    for _ in range(int(rng.integers(2, max_objects + 1))):
        label = int(rng.integers(len(names)))
        extent = float(np.exp(rng.uniform(np.log(min_extent), np.log(size / 2))))
        mask = _place(rng, size, names[label], extent, visible, full_areas, min_visible)
        if mask is None:
            continue
        _paint(rng, img, mask)
        visible = [vis & ~mask for vis in visible] + [mask]
        full_areas.append(int(mask.sum()))
        labels.append(label + 1)
    if max_clutter > 0:
        draw_clutter(rng, img, int(rng.integers(0, 3)), thin_only=True)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.3, 0.8))
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img, [{"category_id": c, "mask": m} for c, m in zip(labels, visible)]


def _coco_annotation(obj: Dict, ann_id: int, image_id: int) -> Dict:
    mask = obj["mask"]
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": obj["category_id"],
        "bbox": [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0],
        "area": int(mask.sum()),
        "iscrowd": 0,
        "segmentation": rle,
    }


def write_split(
    out_dir: str,
    split: str,
    num_images: int,
    seed: int,
    size: int,
    image_format: str = "jpg",
    **render_kwargs,
) -> Dict:
    """
    Render ``num_images`` images into ``out_dir/split/`` and write
    ``out_dir/annotations/instances_{split}.json``.

    Args:
        split (str): "train", "val" or "test" (each selects an independent random stream).
        image_format (str): "jpg" (quality 95) or "png".
        render_kwargs: passed to :func:`render_image`.

    Returns:
        dict: the COCO json that was written.
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    os.makedirs(os.path.join(out_dir, split), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "annotations"), exist_ok=True)
    params = (cv2.IMWRITE_JPEG_QUALITY, 95) if image_format == "jpg" else ()
    images, annotations = [], []
    for i in range(num_images):
        rng = np.random.default_rng([seed, _SPLIT_CODES[split], i])
        img, objects = render_image(rng, size, **render_kwargs)
        file_name = f"{i:06d}.{image_format}"
        ok, buf = cv2.imencode("." + image_format, img[:, :, ::-1], params)
        assert ok, f"OpenCV could not encode {file_name}"
        with open(os.path.join(out_dir, split, file_name), "wb") as f:
            f.write(buf.tobytes())
        images.append({"id": i + 1, "file_name": file_name, "height": size, "width": size})
        for obj in objects:
            annotations.append(_coco_annotation(obj, len(annotations) + 1, i + 1))
    coco = {
        "info": {
            "description": "csgr_shapes: synthetic shapes for offline distillation runs",
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "split": split,
            "image_size": size,
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [dict(c, supercategory="shape") for c in SHAPES_CATEGORIES],
    }
    with open(os.path.join(out_dir, "annotations", f"instances_{split}.json"), "w") as f:
        json.dump(coco, f)
    return coco
