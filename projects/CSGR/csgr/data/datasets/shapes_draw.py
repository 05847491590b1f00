"""Drawing primitives of the offline "shapes" dataset: backgrounds, object masks and clutter.

Everything is vectorised numpy / OpenCV on small float32 RGB canvases (H, W, 3) with values in
[0, 255], and every random choice comes from the ``numpy.random.Generator`` passed in, so a
seed fixes every pixel.
"""

from typing import Callable, Dict

import cv2
import numpy as np

__all__ = [
    "SHAPE_CLASSES",
    "random_background",
    "shape_mask",
    "draw_clutter",
    "random_color",
    "noise",
]

_SHIFT = 4  # sub-pixel bits of cv2.fillPoly, so that 8-pixel objects keep their shape


def _regular(n: int, phase: float = 0.0) -> np.ndarray:
    t = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    outer = _regular(2 * points, -np.pi / 2)
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return outer * radii[:, None]


def _cross(arm: float = 0.34) -> np.ndarray:
    a = arm
    return np.array(
        [[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1], [-a, a]]
        + [[-1, a], [-1, -a], [-a, -a]],
        dtype=np.float64,
    ) / np.hypot(1, a)


# Each class is a list of (unit polygon, fill value): value 0 cuts a hole. The polygons fit in
# the unit circle, so an object of "extent" e (its circumscribed diameter) spans at most e px.
SHAPE_CLASSES: Dict[str, list] = {
    "circle": [(_regular(48), 1)],
    "square": [(_regular(4, np.pi / 4), 1)],
    "triangle": [(_regular(3, -np.pi / 2), 1)],
    "star": [(_star(), 1)],
    "ring": [(_regular(48), 1), (0.55 * _regular(48), 0)],
    "cross": [(_cross(), 1)],
    "hexagon": [(_regular(6), 1)],
    "crescent": [(_regular(48), 1), (0.8 * _regular(48) + [0.45, -0.1], 0)],
}


def shape_mask(
    name: str, size: int, center, extent: float, aspect: float, angle: float
) -> np.ndarray:
    """
    Rasterise one shape.

    Args:
        name (str): a key of ``SHAPE_CLASSES``.
        size (int): side of the square canvas, in pixels.
        center (tuple[float, float]): (x, y) of the shape centre, in pixels.
        extent (float): circumscribed diameter of the shape before the aspect stretch, pixels.
        aspect (float): width / height stretch (applied before the rotation).
        angle (float): rotation, radians.

    Returns:
        np.ndarray: (size, size) bool mask of the shape.
    """
    canvas = np.zeros((size, size), np.uint8)
    sx, sy = extent / 2 * np.sqrt(aspect), extent / 2 / np.sqrt(aspect)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    for poly, value in SHAPE_CLASSES[name]:
        pts = (poly * [sx, sy]) @ rot.T + center
        pts = np.round(pts * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(canvas, [pts], int(value), lineType=cv2.LINE_8, shift=_SHIFT)
    return canvas.astype(bool)


def random_color(rng: np.random.Generator) -> np.ndarray:
    """Returns: (3,) float32 RGB colour in [0, 255]."""
    return rng.uniform(0, 255, 3).astype(np.float32)


def noise(rng: np.random.Generator, sigma: float, shape) -> np.ndarray:
    """Gaussian noise, float32 (twice as fast as float64 at these sizes)."""
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)


def _grid(size: int, rng: np.random.Generator):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    theta = rng.uniform(0, np.pi)
    return xx * np.cos(theta) + yy * np.sin(theta), -xx * np.sin(theta) + yy * np.cos(theta)


def _blend(t: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    return c0 + (c1 - c0) * t[..., None]


def _bg_gradient(rng, size):
    u, _ = _grid(size, rng)
    t = (u - u.min()) / max(float(np.ptp(u)), 1e-6)
    return _blend(t, random_color(rng), random_color(rng))


def _bg_stripes(rng, size):
    u, _ = _grid(size, rng)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 12) * u + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.5:  # hard-edged stripes
        t = (t > 0.5).astype(np.float32)
    return _blend(t, random_color(rng), random_color(rng))


def _bg_checker(rng, size):
    u, v = _grid(size, rng)
    cells = rng.uniform(3, 14)
    t = ((np.floor(u * cells) + np.floor(v * cells)) % 2).astype(np.float32)
    return _blend(t, random_color(rng), random_color(rng))


def _bg_blobs(rng, size):
    low = rng.uniform(0, 255, (int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3))
    return cv2.resize(low.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)


def _bg_noise(rng, size):
    return random_color(rng) + noise(rng, rng.uniform(10, 40), (size, size, 3))


_BACKGROUNDS = [_bg_gradient, _bg_stripes, _bg_checker, _bg_blobs, _bg_noise]


def random_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """
    A textured background: one of gradient, stripes, checker, blurred blobs or noise, blended
    half the time with a second one, plus pixel noise.

    Returns:
        np.ndarray: (size, size, 3) float32 RGB image.
    """
    first, second = rng.choice(len(_BACKGROUNDS), 2, replace=False)
    img = _BACKGROUNDS[first](rng, size)
    if rng.random() < 0.5:
        alpha = rng.uniform(0.2, 0.6)
        img = (1 - alpha) * img + alpha * _BACKGROUNDS[second](rng, size)
    img = img + noise(rng, rng.uniform(0, 8), img.shape)
    return np.clip(img, 0, 255).astype(np.float32)


def _random_points(rng, size, n):
    return np.round(rng.uniform(0, size, (n, 2))).astype(np.int32)


def _stroke(rng, img):
    pts = _random_points(rng, img.shape[0], int(rng.integers(2, 6)))
    color = tuple(float(c) for c in random_color(rng))
    cv2.polylines(img, [pts], False, color, int(rng.integers(1, 3)), cv2.LINE_AA)


def _arc(rng, img):
    size = img.shape[0]
    center = tuple(int(c) for c in rng.integers(0, size, 2))
    axes = tuple(int(a) for a in rng.integers(4, size // 3 + 5, 2))
    start = float(rng.uniform(0, 360))
    color = tuple(float(c) for c in random_color(rng))
    cv2.ellipse(img, center, axes, 0, start, start + rng.uniform(40, 200), color, 1, cv2.LINE_AA)


def _blob(rng, img):
    """An irregular splat: a thresholded smooth random field, unlike any object class."""
    size = img.shape[0]
    side = int(rng.integers(6, max(size // 4, 8)))
    field = cv2.resize(rng.random((4, 4)).astype(np.float32), (side, side), cv2.INTER_CUBIC)
    mask = field > rng.uniform(0.5, 0.7)
    y, x = rng.integers(0, size - side + 1, 2)
    patch = img[y : y + side, x : x + side]
    alpha = rng.uniform(0.4, 1.0)
    patch[mask] = (1 - alpha) * patch[mask] + alpha * random_color(rng)


_CLUTTER: Dict[str, Callable] = {"stroke": _stroke, "arc": _arc, "blob": _blob}


def draw_clutter(rng: np.random.Generator, img: np.ndarray, count: int, thin_only: bool = False):
    """
    Draw ``count`` distractors (strokes, arcs, irregular blobs) in place; none is an object.

    Args:
        img (np.ndarray): (H, W, 3) float32 RGB image, modified in place.
        thin_only (bool): only 1-2 px strokes and arcs (used on top of the objects).
    """
    kinds = ["stroke", "arc"] if thin_only else list(_CLUTTER)
    for _ in range(count):
        _CLUTTER[kinds[int(rng.integers(len(kinds)))]](rng, img)
