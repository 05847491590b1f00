"""PASCAL VOC 2007/2012 through Detectron2's own dataset names.

Layout under ``$DETECTRON2_DATASETS`` (see datasets/README.md)::

    VOC2007/ and VOC2012/
        Annotations/*.xml
        ImageSets/Main/{train,val,trainval,test}.txt
        JPEGImages/*.jpg

Detectron2 already registers ``voc_{2007,2012}_{train,val,trainval}`` and ``voc_2007_test``
(20 classes, ``evaluator_type="pascal_voc"``); train on both years with
``DATASETS.TRAIN: ("voc_2007_trainval", "voc_2012_trainval")``. This module keeps those names
and their metadata, and only swaps their loaders for ones that read ``$DETECTRON2_DATASETS`` at
load time and name the missing path when a file or folder is absent.
"""

import functools
import os
from typing import List

from detectron2.data import MetadataCatalog
from detectron2.data.datasets.pascal_voc import CLASS_NAMES, load_voc_instances

from .catalog_utils import (
    datasets_root,
    rebind_lazy,
    refresh_metadata,
    register_once,
    require_dir,
    require_file,
)

__all__ = ["VOC_SPLITS", "load_voc", "register_all_pascal_voc"]

# dataset name -> (folder under $DETECTRON2_DATASETS, split), as in Detectron2's builtin.py
VOC_SPLITS = {
    "voc_2007_trainval": ("VOC2007", "trainval"),
    "voc_2007_train": ("VOC2007", "train"),
    "voc_2007_val": ("VOC2007", "val"),
    "voc_2007_test": ("VOC2007", "test"),
    "voc_2012_trainval": ("VOC2012", "trainval"),
    "voc_2012_train": ("VOC2012", "train"),
    "voc_2012_val": ("VOC2012", "val"),
}


def load_voc(dataset_name: str) -> List[dict]:
    """
    Load one VOC split from the current ``$DETECTRON2_DATASETS``.

    Args:
        dataset_name (str): one of ``VOC_SPLITS``.

    Returns:
        list[dict]: Detectron2 dataset dicts; boxes are ``XYXY_ABS`` with VOC's 1-based
        ``xmin``/``ymin`` shifted by -1, as ``load_voc_instances`` does.
    """
    dirname_rel, split = VOC_SPLITS[dataset_name]
    dirname = os.path.join(datasets_root(), dirname_rel)
    require_file(
        os.path.join(dirname, "ImageSets", "Main", split + ".txt"), dataset_name, "split list"
    )
    require_dir(os.path.join(dirname, "Annotations"), dataset_name, "annotation folder")
    require_dir(os.path.join(dirname, "JPEGImages"), dataset_name, "image folder")
    # PascalVOCDetectionEvaluator reads the annotations again from metadata.dirname.
    refresh_metadata(dataset_name, dirname=dirname)
    class_names = MetadataCatalog.get(dataset_name).get("thing_classes", list(CLASS_NAMES))
    return load_voc_instances(dirname, split, class_names)


def register_all_pascal_voc() -> None:
    """Make Detectron2's VOC names read the root at load time; touches no file."""
    root = datasets_root()
    for name, (dirname_rel, split) in VOC_SPLITS.items():
        loader = functools.partial(load_voc, name)
        if rebind_lazy(name, loader, "detectron2.data.datasets.pascal_voc"):
            continue
        register_once(
            name,
            loader,
            thing_classes=list(CLASS_NAMES),
            dirname=os.path.join(root, dirname_rel),
            year=int(dirname_rel[-4:]),
            split=split,
            evaluator_type="pascal_voc",
        )
