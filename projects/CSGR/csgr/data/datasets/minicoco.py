"""MiniCOCO: a class- and size-balanced 25k-image subset of COCO train2017, evaluated on val2017.

Layout under ``$DETECTRON2_DATASETS`` (see datasets/README.md)::

    coco/
        annotations/instances_train2017_minicoco.json   # datasets/prepare_minicoco.py
        annotations/instances_val2017.json
        train2017/  val2017/

``minicoco_train`` is registered here with COCO's 80-class metadata; evaluation uses
Detectron2's own ``coco_2017_val``, whose loader (like ``coco_2017_train``'s) is swapped for
one that reads ``$DETECTRON2_DATASETS`` at load time.
"""

import functools
import os
from typing import List

from detectron2.data.datasets.builtin import _PREDEFINED_SPLITS_COCO
from detectron2.data.datasets.builtin_meta import _get_builtin_metadata

from .catalog_utils import datasets_root, load_coco_checked, rebind_lazy, register_once

__all__ = ["MINICOCO_SPLITS", "load_coco_split", "register_all_minicoco"]

# dataset name -> (image folder, json file), relative to $DETECTRON2_DATASETS, as Detectron2.
MINICOCO_SPLITS = {
    "minicoco_train": ("coco/train2017", "coco/annotations/instances_train2017_minicoco.json"),
}

# Detectron2's own COCO splits used with MiniCOCO, rebound to a load-time root.
_REBOUND_COCO = ("coco_2017_train", "coco_2017_val")


def _paths(dataset_name: str):
    if dataset_name in MINICOCO_SPLITS:
        image_rel, json_rel = MINICOCO_SPLITS[dataset_name]
    else:
        image_rel, json_rel = _PREDEFINED_SPLITS_COCO["coco"][dataset_name]
    root = datasets_root()
    return os.path.join(root, json_rel), os.path.join(root, image_rel)


def load_coco_split(dataset_name: str) -> List[dict]:
    """
    Load ``minicoco_train``, ``coco_2017_train`` or ``coco_2017_val`` from the current root.

    Returns:
        list[dict]: Detectron2 dataset dicts (``bbox_mode`` XYWH_ABS, ``category_id`` 0..79).
    """
    json_file, image_root = _paths(dataset_name)
    return load_coco_checked(dataset_name, json_file, image_root)


def register_all_minicoco() -> None:
    """Register ``minicoco_train`` and rebind Detectron2's COCO 2017 splits; touches no file."""
    for name in MINICOCO_SPLITS:
        json_file, image_root = _paths(name)
        register_once(
            name,
            functools.partial(load_coco_split, name),
            json_file=json_file,
            image_root=image_root,
            evaluator_type="coco",
            **_get_builtin_metadata("coco"),
        )
    for name in _REBOUND_COCO:
        rebind_lazy(name, functools.partial(load_coco_split, name), "detectron2.data.datasets.coco")
