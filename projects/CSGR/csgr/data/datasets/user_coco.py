"""Registering a user's COCO-format dataset: Detectron2's ``register_coco_instances``, with the
class names read for the metadata (errors naming the file) and annotation tools' background
category left out.

Annotation tools write COCO files that Detectron2 loads but reads wrongly: labelme's
``labelme2coco.py`` writes a category ``_background_`` (id 0) that no box uses, which
``register_coco_instances`` makes class 0 of the model (``NUM_CLASSES`` must count it, a demo
may label a box with it). :func:`register_coco_dataset` leaves such categories out of the classes.
"""

import logging
from typing import Dict, List, Sequence

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json

from ...errors import DatasetFileError
from ..checks.coco_files import read_coco_json

__all__ = ["BACKGROUND_CATEGORIES", "class_categories", "register_coco_dataset"]

logger = logging.getLogger(__name__)

# Category names that annotation tools write for "no object" (labelme: "_background_").
BACKGROUND_CATEGORIES = ("_background_",)


def class_categories(coco: dict, skip: Sequence[str] = BACKGROUND_CATEGORIES) -> List[dict]:
    """The categories of a COCO dict that are classes, in id order: all but those named in
    ``skip`` that no annotation uses."""
    used = {a.get("category_id") for a in coco["annotations"] if isinstance(a, dict)}
    cats = sorted(coco["categories"], key=lambda c: c["id"])
    return [c for c in cats if c["name"] not in skip or c["id"] in used]


def _class_metadata(coco: dict, skip: Sequence[str]) -> Dict[str, object]:
    kept = class_categories(coco, skip)
    return {
        "thing_classes": [c["name"] for c in kept],
        "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(kept)},
    }


def _read(name: str, json_file: str) -> dict:
    try:
        return read_coco_json(json_file)
    except (OSError, ValueError) as e:
        raise DatasetFileError(f"Dataset '{name}': {e}") from e


def _load(name: str, json_file: str, image_root: str, skip: Sequence[str]) -> List[dict]:
    meta = MetadataCatalog.get(name)
    if "thing_classes" not in meta.as_dict():  # the file was missing or broken at registration
        meta.set(**_class_metadata(_read(name, json_file), skip))
    id_map = meta.thing_dataset_id_to_contiguous_id
    dicts = load_coco_json(json_file, image_root)  # no dataset name: the file's category ids
    for record in dicts:
        for ann in record.get("annotations", []):
            if ann["category_id"] not in id_map:
                raise DatasetFileError(
                    f"Dataset '{name}': {json_file}: an annotation of {record['file_name']} uses "
                    f"category id {ann['category_id']}, which is not one of its classes "
                    f"(ids {sorted(id_map)})"
                )
            ann["category_id"] = id_map[ann["category_id"]]
    return dicts


def register_coco_dataset(
    name: str,
    json_file: str,
    image_root: str,
    skip_categories: Sequence[str] = BACKGROUND_CATEGORIES,
    **metadata,
) -> None:
    """Register a COCO-format dataset as Detectron2's ``register_coco_instances`` does
    (``evaluator_type`` "coco", ``json_file``, ``image_root``), with ``thing_classes`` and
    ``thing_dataset_id_to_contiguous_id`` from the file's categories minus ``skip_categories``
    that no box uses.

    The file is read now when it exists, so that tools see the class names before loading the
    dataset; a missing or broken file is named when the dataset is loaded (a warning now).

    Args:
        name: the dataset name, e.g. "mydata_train".
        json_file: the COCO instances json.
        image_root: the folder that ``file_name`` of its images is relative to.
        skip_categories: category names that are not classes when no box uses them
            (labelme's "_background_").
        metadata: more metadata, e.g. ``thing_colors``.
    """
    skip = tuple(skip_categories)
    DatasetCatalog.register(name, lambda: _load(name, json_file, image_root, skip))
    meta = MetadataCatalog.get(name)
    meta.set(json_file=json_file, image_root=image_root, evaluator_type="coco", **metadata)
    try:
        coco = read_coco_json(json_file)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        logger.warning(f"Dataset '{name}': {e}; the dataset cannot be loaded until it is fixed")
        return
    if isinstance(coco, dict) and "categories" in coco and "annotations" in coco:
        meta.set(**_class_metadata(coco, skip))
