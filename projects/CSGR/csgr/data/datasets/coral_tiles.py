"""Tiling a large labelled image into a detection dataset split by region (pure functions).

A region is a rectangle ``(x0, y0, x1, y1)`` of the image, in pixels; every tile of a split
lies inside that split's region, so tiles of regions that do not overlap never share a pixel.
A box is kept in a tile (clipped to it) when at least ``min_inside`` of its area lies inside;
a box with a smaller visible part is marked ``iscrowd`` so that COCO evaluation ignores
detections of it and training skips it (Detectron2's mapper drops crowd boxes).
"""

from typing import List, Sequence, Tuple

import numpy as np

__all__ = [
    "read_yolo_boxes",
    "tile_origins",
    "region_tiles",
    "boxes_in_tile",
    "split_regions",
    "interleaved_strips",
]

Box = Tuple[float, float, float, float]


def read_yolo_boxes(path: str, width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
    """Read a YOLO label file (``class cx cy w h`` per line, normalised to the image size).

    Returns:
        (classes (N,) int64, boxes (N, 4) float64 XYXY in pixels).

    Raises:
        ValueError: naming ``path`` and the line for a malformed line or out-of-range value.
    """
    classes, boxes = [], []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                c, cx, cy, w, h = int(fields[0]), *map(float, fields[1:5])
                if len(fields) != 5 or c < 0 or not all(0 <= v <= 1 for v in (cx, cy, w, h)):
                    raise ValueError
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: expected 'class cx cy w h' with values in [0, 1], "
                    f"got {line.strip()!r}"
                ) from None
            classes.append(c)
            boxes.append(
                [
                    (cx - w / 2) * width,
                    (cy - h / 2) * height,
                    (cx + w / 2) * width,
                    (cy + h / 2) * height,
                ]
            )
    return np.asarray(classes, dtype=np.int64), np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def tile_origins(length: int, tile: int, stride: int) -> List[int]:
    """Offsets of tiles of size ``tile`` every ``stride`` pixels covering ``[0, length)``; the
    last tile is aligned to the end. A length shorter than a tile gives one tile at 0."""
    if tile <= 0 or stride <= 0:
        raise ValueError(f"tile ({tile}) and stride ({stride}) must be positive")
    if length <= tile:
        return [0]
    origins = list(range(0, length - tile + 1, stride))
    if origins[-1] != length - tile:
        origins.append(length - tile)
    return origins


def region_tiles(region: Sequence[int], tile: int, stride: int) -> List[Tuple[int, int, int, int]]:
    """Tiles ``(x0, y0, x1, y1)`` of ``region`` (clipped to it when it is smaller than a tile)."""
    rx0, ry0, rx1, ry1 = region
    return [
        (rx0 + x, ry0 + y, min(rx0 + x + tile, rx1), min(ry0 + y + tile, ry1))
        for y in tile_origins(ry1 - ry0, tile, stride)
        for x in tile_origins(rx1 - rx0, tile, stride)
    ]


def split_regions(
    width: int, height: int, val_fraction: float
) -> Tuple[Tuple[int, int, int, int], Tuple[int, int, int, int]]:
    """Val = the top ``val_fraction`` of the rows, train = the rest.

    Returns:
        (train region, val region), each ``(x0, y0, x1, y1)``.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = int(round(height * val_fraction))
    return (0, cut, width, height), (0, 0, width, cut)


def interleaved_strips(
    region: Sequence[int], strips: int
) -> Tuple[List[Tuple[int, int, int, int]], List[Tuple[int, int, int, int]]]:
    """Cut ``region`` into ``strips`` vertical strips of equal width and deal them out in turn.

    Returns:
        (the 1st, 3rd, ... strips, the 2nd, 4th, ... strips), each strip ``(x0, y0, x1, y1)``;
        no strip shares a pixel with another.
    """
    x0, y0, x1, y1 = region
    if strips < 2 or x1 - x0 < strips:
        raise ValueError(f"cannot cut region {tuple(region)} into {strips} strips")
    xs = [x0 + round(i * (x1 - x0) / strips) for i in range(strips + 1)]
    cut = [(xs[i], y0, xs[i + 1], y1) for i in range(strips)]
    return cut[0::2], cut[1::2]


def boxes_in_tile(
    boxes: np.ndarray, tile: Sequence[int], min_inside: float = 0.5, min_size: float = 2.0
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes of one tile, in tile coordinates.

    Args:
        boxes: (N, 4) XYXY in image pixels.
        tile: ``(x0, y0, x1, y1)``.
        min_inside: fraction of a box's area that must be inside the tile to keep it.
        min_size: clipped boxes narrower or lower than this (px) are dropped.

    Returns:
        (indices (M,) into ``boxes``, clipped (M, 4) XYXY in tile pixels, crowd (M,) bool: True
        for boxes below ``min_inside``, which evaluation ignores).
    """
    x0, y0, x1, y1 = tile
    clipped = np.stack(
        [
            boxes[:, 0].clip(x0, x1),
            boxes[:, 1].clip(y0, y1),
            boxes[:, 2].clip(x0, x1),
            boxes[:, 3].clip(y0, y1),
        ],
        axis=1,
    ).reshape(-1, 4)
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    inside = cw * ch / np.maximum(area, 1e-9)
    visible = (cw >= min_size) & (ch >= min_size)
    idx = np.nonzero(visible)[0]
    return idx, clipped[idx] - np.array([x0, y0, x0, y0]), inside[idx] < min_inside
