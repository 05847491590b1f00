"""Registering a user's PASCAL VOC-format dataset: Detectron2's ``register_pascal_voc``, with the
class names read from the folder (as labelme's ``labelme2voc.py`` writes them) and the
``evaluator_type`` set.

``labelme2voc.py`` writes ``class_names.txt`` (one name a line, ``_background_`` first),
``Annotations/`` and ``JPEGImages/``, but no split list: ``ImageSets/Main/<split>.txt`` (one image
name a line, without extension) is the user's to write.
"""

import os
from typing import Optional, Sequence

from detectron2.data import MetadataCatalog
from detectron2.data.datasets import register_pascal_voc

from ...errors import DatasetFileError
from .user_coco import BACKGROUND_CATEGORIES

__all__ = ["CLASS_NAMES_FILE", "read_class_names", "register_voc_dataset"]

CLASS_NAMES_FILE = "class_names.txt"


def read_class_names(path: str, skip: Sequence[str] = BACKGROUND_CATEGORIES) -> list:
    """The class names of a ``class_names.txt``, one a line, without blank lines and ``skip``.

    Raises:
        DatasetFileError: naming the file when it does not exist or names no class.
    """
    if not os.path.isfile(path):
        raise DatasetFileError(
            f"{path} does not exist: pass class_names=[...] or write the names there, one a line"
        )
    with open(path) as f:
        names = [line.strip() for line in f if line.strip() and line.strip() not in skip]
    if not names:
        raise DatasetFileError(f"{path} names no class")
    return names


def register_voc_dataset(
    name: str,
    dirname: str,
    split: str,
    class_names: Optional[Sequence[str]] = None,
    year: int = 2007,
) -> None:
    """Register a VOC-format folder as Detectron2's ``register_pascal_voc`` does, evaluated with
    the VOC metric (``evaluator_type`` "pascal_voc"; ``year`` 2007: 11-point AP50, 2012: area).

    Args:
        name: the dataset name, e.g. "mydata_train".
        dirname: the folder with ``Annotations/``, ``JPEGImages/`` and
            ``ImageSets/Main/<split>.txt``.
        split: the split list's name, e.g. "train".
        class_names: the classes in id order; None: read from ``<dirname>/class_names.txt``
            (labelme's ``labelme2voc.py`` writes it), leaving out ``_background_``.
        year: 2007 or 2012.

    Raises:
        DatasetFileError: ``class_names`` is None and ``class_names.txt`` is missing or empty.
    """
    if class_names is None:
        class_names = read_class_names(os.path.join(dirname, CLASS_NAMES_FILE))
    register_pascal_voc(name, dirname, split, year, list(class_names))
    MetadataCatalog.get(name).evaluator_type = "pascal_voc"
