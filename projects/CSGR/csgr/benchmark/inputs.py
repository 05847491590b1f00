"""Synthetic training inputs of a given size, in the format of Detectron2's ``DatasetMapper``."""

from typing import List

import torch
from detectron2.structures import Boxes, Instances

__all__ = ["synthetic_batch"]


def synthetic_batch(
    num_images: int,
    height: int,
    width: int,
    num_classes: int,
    boxes_per_image: int = 8,
    seed: int = 0,
) -> List[dict]:
    """Random uint8 images with random ground-truth boxes, the same for a given seed.

    Args:
        num_images: batch size.
        height, width: image size in pixels (the models pad it to their size divisibility).
        num_classes: classes are drawn from [0, num_classes).
        boxes_per_image: boxes per image, with sides of 5% to 45% of the image's.
        seed: fixes images and boxes.

    Returns:
        list[dict]: ``{"image": (3, H, W) uint8, "instances": Instances, "height", "width"}``.
    """
    g = torch.Generator().manual_seed(seed)
    size = torch.tensor([width, height], dtype=torch.float32)
    batch = []
    for _ in range(num_images):
        wh = size * (0.05 + 0.4 * torch.rand(boxes_per_image, 2, generator=g))
        xy = (size - wh) * torch.rand(boxes_per_image, 2, generator=g)
        inst = Instances((height, width))
        inst.gt_boxes = Boxes(torch.cat([xy, xy + wh], dim=1))
        inst.gt_classes = torch.randint(0, num_classes, (boxes_per_image,), generator=g)
        image = torch.randint(0, 256, (3, height, width), generator=g, dtype=torch.uint8)
        batch.append({"image": image, "instances": inst, "height": height, "width": width})
    return batch
