"""The cells of an FPN level that ground-truth boxes cover (FGD's masks, CSGR's "gt" attention)."""

from typing import Tuple

import torch

__all__ = ["box_cells"]


def box_cells(
    boxes: torch.Tensor, image_shape: Tuple[int, int], feature_shape: Tuple[int, int]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The cells of a level that each box covers, as FGD's code counts them.

    Boxes are scaled from the padded batch frame to the level by ``(H / H_pad, W / W_pad)``; a
    box covers the cells ``floor(x0) .. ceil(x1)`` and ``floor(y0) .. ceil(y1)``, both ends
    included.

    Args:
        boxes: (M, 4) XYXY boxes in pixels of the padded batch tensor.
        image_shape: (H_pad, W_pad) of the padded batch tensor.
        feature_shape: (H, W) of the level.

    Returns:
        inside: (M, H, W) bool, the cells of each box (clipped to the map).
        area: (M,) float, each box's number of cells counted before clipping (at least 1).
    """
    (pad_h, pad_w), (h, w) = image_shape, feature_shape
    b = boxes.float()
    x0 = torch.floor(b[:, 0] * (w / pad_w))
    x1 = torch.ceil(b[:, 2] * (w / pad_w))
    y0 = torch.floor(b[:, 1] * (h / pad_h))
    y1 = torch.ceil(b[:, 3] * (h / pad_h))
    area = (y1 - y0 + 1).clamp(min=1) * (x1 - x0 + 1).clamp(min=1)
    rows = torch.arange(h, device=b.device)
    cols = torch.arange(w, device=b.device)
    in_rows = (rows[None] >= y0[:, None]) & (rows[None] <= y1[:, None])  # (M, H)
    in_cols = (cols[None] >= x0[:, None]) & (cols[None] <= x1[:, None])  # (M, W)
    return in_rows[:, :, None] & in_cols[:, None, :], area
