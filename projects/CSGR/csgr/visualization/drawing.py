"""Small OpenCV helpers to draw feature-level maps on images: upsampling, heat overlays, panels."""

from typing import Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    "imwrite",
    "map_to_image",
    "overlay_heatmap",
    "label_panel",
    "mark_pixel",
    "side_by_side",
]


def map_to_image(
    heat: np.ndarray,
    stride: int,
    resized_hw: Tuple[int, int],
    image_hw: Tuple[int, int],
    nearest: bool = False,
) -> np.ndarray:
    """Bring a feature-level map back onto the original image.

    Args:
        heat: (H_l, W_l) map over the padded input at stride ``stride``.
        stride: the level's stride, pixels of the resized input per cell.
        resized_hw: (h, w) of the resized input before padding.
        image_hw: (H, W) of the original image.
        nearest: nearest-neighbour interpolation (crisp cells) instead of bilinear.

    Returns:
        (H, W) float32 map.
    """
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    heat = np.ascontiguousarray(heat, dtype=np.float32)
    up = cv2.resize(
        heat, (heat.shape[1] * stride, heat.shape[0] * stride), interpolation=interpolation
    )
    up = up[: resized_hw[0], : resized_hw[1]]
    return cv2.resize(up, (image_hw[1], image_hw[0]), interpolation=interpolation)


def overlay_heatmap(image_bgr: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a JET-coloured map in [0, 1] over an image.

    Args:
        image_bgr: (H, W, 3) uint8.
        heat: (H, W) values in [0, 1] (clipped).

    Returns:
        (H, W, 3) uint8 BGR.
    """
    heat8 = (np.clip(heat, 0.0, 1.0) * 255).astype(np.uint8)
    colour = cv2.applyColorMap(heat8, cv2.COLORMAP_JET)
    return cv2.addWeighted(image_bgr, 1.0 - alpha, colour, alpha, 0.0)


def label_panel(panel: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in the top-left corner (white on a black outline), in place; returns it."""
    scale = max(0.3, panel.shape[1] / 500.0)
    thickness = max(1, int(round(scale * 2)))
    origin = (4, 4 + int(18 * scale))
    cv2.putText(panel, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2)
    cv2.putText(panel, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness)
    return panel


def mark_pixel(panel: np.ndarray, xy: Tuple[int, int]) -> np.ndarray:
    """Draw a white cross-hair circle at ``xy`` = (x, y), in place; returns it."""
    radius = max(3, panel.shape[1] // 60)
    cv2.circle(panel, (int(xy[0]), int(xy[1])), radius, (0, 0, 0), 3)
    cv2.circle(panel, (int(xy[0]), int(xy[1])), radius, (255, 255, 255), 1)
    return panel


def side_by_side(panels: Sequence[np.ndarray], titles: Sequence[str]) -> np.ndarray:
    """Panels of equal height, labelled, left to right.

    Returns:
        (H, sum of widths, 3) uint8 BGR.
    """
    return np.hstack([label_panel(p.copy(), t) for p, t in zip(panels, titles)])


def imwrite(path: str, image_bgr: np.ndarray) -> None:
    """``cv2.imwrite``, raising instead of returning False.

    Raises:
        OSError: naming the path (missing folder, unknown extension, ...).
    """
    if not cv2.imwrite(path, image_bgr):
        raise OSError(f"could not write the image {path}")
