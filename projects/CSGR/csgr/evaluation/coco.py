"""Detectron2's COCO evaluator, right for any valid COCO json.

pycocotools' ``COCOeval`` records a match by the ground truth's annotation id and treats an id
of 0 as "unmatched": a detection matched to an annotation with id 0 counts as a false positive
and the annotation as missed. Annotation tools number from 0 (labelme's ``labelme2coco.py``
does), which lowers AP for no visible reason (fed its own ground truth, a 7-box dataset scores
78.2 AP instead of 100). :class:`CocoEvaluator` hands pycocotools a copy of the ground truth
whose annotations are numbered 1..N when an id is 0 (the file is not touched), and leaves out
the categories that the dataset's metadata does not map to a class and that have no box (such
as labelme's ``_background_``, see :func:`csgr.data.register_coco_dataset`), so that the
per-class table has one row per class.
"""

import contextlib
import io
import logging
from typing import List

from detectron2.evaluation import COCOEvaluator

__all__ = ["CocoEvaluator", "has_zero_annotation_id", "unmapped_empty_categories"]

logger = logging.getLogger(__name__)


def has_zero_annotation_id(coco: dict) -> bool:
    """Whether an annotation of a COCO instances dict has id 0 (which pycocotools' matcher
    takes for "no match")."""
    return any(a.get("id") == 0 for a in coco.get("annotations", []) if isinstance(a, dict))


def unmapped_empty_categories(coco: dict, id_map: dict) -> List[dict]:
    """The categories of ``coco`` that ``id_map`` (dataset id -> contiguous class id) leaves out
    and that no annotation uses."""
    used = {a.get("category_id") for a in coco.get("annotations", []) if isinstance(a, dict)}
    return [c for c in coco.get("categories", []) if c["id"] not in id_map and c["id"] not in used]


class CocoEvaluator(COCOEvaluator):
    """:class:`detectron2.evaluation.COCOEvaluator` (same arguments, same results) whose ground
    truth has no annotation id 0 and no category outside the dataset's classes (see the module
    docstring)."""

    def __init__(self, dataset_name: str, *args, **kwargs):
        super().__init__(dataset_name, *args, **kwargs)
        gt = self._coco_api.dataset
        changed = []
        if has_zero_annotation_id(gt):
            for i, ann in enumerate(gt["annotations"], start=1):
                ann["id"] = i
            changed.append("annotation ids renumbered 1..N (the file numbers them from 0)")
        id_map = self._metadata.get("thing_dataset_id_to_contiguous_id", None)
        if id_map:
            left_out = unmapped_empty_categories(gt, id_map)
            if left_out:
                gt["categories"] = [c for c in gt["categories"] if c not in left_out]
                names = [c.get("name") for c in left_out]
                changed.append(f"categories {names} left out (no class, no box)")
        if changed:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
                self._coco_api.createIndex()
            where = f"'{dataset_name}' ({self._metadata.json_file})"
            logger.info(f"Evaluating {where}: " + "; ".join(changed))
