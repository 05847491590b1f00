"""SODA10M (SSLAD-2D) labeled splits, in COCO format.

Layout under ``$DETECTRON2_DATASETS`` (see datasets/README.md)::

    SODA10M/SSLAD-2D/labeled/
        annotations/instance_{train,val,test}.json
        train/  val/  test/          # the images

The json category ids are 1..6; Detectron2 maps them to contiguous ids 0..5.
"""

import functools
import os
from typing import List

from .catalog_utils import datasets_root, load_coco_checked, register_once

__all__ = ["SODA10M_CATEGORIES", "SODA10M_SPLITS", "load_soda10m", "register_all_soda10m"]

# (json category id, name), as in the official SSLAD-2D annotation files.
SODA10M_CATEGORIES = [
    (1, "Pedestrian"),
    (2, "Cyclist"),
    (3, "Car"),
    (4, "Truck"),
    (5, "Tram"),
    (6, "Tricycle"),
]

_LABELED = os.path.join("SODA10M", "SSLAD-2D", "labeled")

# dataset name -> (json file, image folder), relative to $DETECTRON2_DATASETS
SODA10M_SPLITS = {
    f"soda10m_{split}": (
        os.path.join(_LABELED, "annotations", f"instance_{split}.json"),
        os.path.join(_LABELED, split),
    )
    for split in ("train", "val", "test")
}


def _metadata(json_rel: str, image_rel: str, root: str) -> dict:
    return {
        "thing_classes": [name for _, name in SODA10M_CATEGORIES],
        "thing_dataset_id_to_contiguous_id": {
            cid: i for i, (cid, _) in enumerate(SODA10M_CATEGORIES)
        },
        "json_file": os.path.join(root, json_rel),
        "image_root": os.path.join(root, image_rel),
        "evaluator_type": "coco",
    }


def load_soda10m(dataset_name: str) -> List[dict]:
    """
    Load one registered SODA10M split from the current ``$DETECTRON2_DATASETS``.

    Args:
        dataset_name (str): one of ``SODA10M_SPLITS``.

    Returns:
        list[dict]: Detectron2 dataset dicts (``bbox_mode`` XYWH_ABS, ``category_id`` 0..5).
    """
    json_rel, image_rel = SODA10M_SPLITS[dataset_name]
    root = datasets_root()
    return load_coco_checked(
        dataset_name, os.path.join(root, json_rel), os.path.join(root, image_rel)
    )


def register_all_soda10m() -> None:
    """Register ``soda10m_{train,val,test}``; touches no file."""
    root = datasets_root()
    for name, (json_rel, image_rel) in SODA10M_SPLITS.items():
        register_once(
            name, functools.partial(load_soda10m, name), **_metadata(json_rel, image_rel, root)
        )
