"""Checking a COCO-format annotation json before Detectron2 loads it, naming the file.

Detectron2's ``load_coco_json`` reports a syntax error as ``JSONDecodeError: ... line 1 column
501`` and an unknown category as ``KeyError: category_id=99``, neither with the file's path.
:func:`coco_json_problems` lists every such problem of one file, each message starting with the
path.
"""

import json
import math
from collections import Counter
from typing import List, Optional

__all__ = ["read_coco_json", "coco_json_problems", "coco_json_notes"]

_SHOWN = 10


def read_coco_json(json_file: str):
    """The parsed json.

    Raises:
        ValueError: naming ``json_file``, the line, column and character of a syntax error.
    """
    with open(json_file) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(
                f"{json_file} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno} "
                f"(character {e.pos})"
            ) from e


def _shown(values) -> str:
    values = sorted(values, key=str)
    return str(values[:_SHOWN])[:-1] + (", ...]" if len(values) > _SHOWN else "]")


def _bad_box(bbox) -> bool:
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return True
    return not all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox)


def coco_json_problems(json_file: str, coco: Optional[dict] = None) -> List[str]:
    """Everything in a COCO instances file that keeps Detectron2 from loading it.

    Args:
        json_file: the file (named in every message).
        coco: its content if already read.

    Returns:
        One message per problem (empty if none): invalid JSON, missing top-level keys,
        annotations with category ids absent from ``categories`` (all listed) or image ids
        absent from ``images``, boxes that are not 4 finite numbers.
    """
    try:
        coco = read_coco_json(json_file) if coco is None else coco
    except ValueError as e:
        return [str(e)]
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(coco, dict)]
    missing = missing or [k for k in ("images", "annotations", "categories") if k not in coco]
    if missing:
        return [
            f"{json_file}: not a COCO instances file (missing key(s) {missing}; expected "
            "'images', 'annotations' and 'categories')"
        ]
    problems = []
    known = {c.get("id") for c in coco["categories"] if isinstance(c, dict)}
    anns = [a for a in coco["annotations"] if isinstance(a, dict)]
    unknown = Counter(a.get("category_id") for a in anns if a.get("category_id") not in known)
    if unknown:
        problems.append(
            f"{json_file}: {sum(unknown.values())} annotation(s) use category ids "
            f"{_shown(unknown)} that are not in its 'categories' (ids {_shown(known)})"
        )
    image_ids = {i.get("id") for i in coco["images"] if isinstance(i, dict)}
    orphans = {a.get("image_id") for a in anns} - image_ids
    if orphans:
        problems.append(
            f"{json_file}: annotations refer to image ids {_shown(orphans)} that are not in its "
            "'images'"
        )
    bad = [a.get("id") for a in anns if _bad_box(a.get("bbox"))]
    if bad:
        problems.append(
            f"{json_file}: {len(bad)} annotation(s) have a 'bbox' that is not 4 finite numbers "
            f"(annotation ids {_shown(bad)})"
        )
    return problems


def coco_json_notes(json_file: str, thing_classes: List[str], coco: Optional[dict] = None):
    """What in a loadable COCO instances file Detectron2 or pycocotools read differently from
    what the user meant, and how CSGR handles it.

    Args:
        json_file: the file (named in every message).
        thing_classes: the classes the dataset is registered with.
        coco: its content if already read.

    Returns:
        One message per finding: annotation id 0 (``labelme2coco.py`` numbers from 0), a
        background category (``_background_``) that is one of ``thing_classes`` with no box.
    """
    from ...evaluation.coco import has_zero_annotation_id  # the evaluator renumbers them
    from ..datasets.user_coco import BACKGROUND_CATEGORIES

    try:
        coco = read_coco_json(json_file) if coco is None else coco
    except ValueError:
        return []
    notes = []
    if has_zero_annotation_id(coco):
        notes.append(
            f"{json_file}: an annotation has id 0 (annotation tools such as labelme2coco.py "
            "number from 0): pycocotools takes id 0 for 'no match', so Detectron2's "
            "COCOEvaluator would count a detection of that box as a false positive; CSGR's "
            "evaluator renumbers the annotations 1..N"
        )
    used = {a.get("category_id") for a in coco["annotations"] if isinstance(a, dict)}
    for c in coco["categories"]:
        if c.get("name") in BACKGROUND_CATEGORIES and c["name"] in thing_classes:
            if c.get("id") not in used:
                notes.append(
                    f"{json_file}: category {c['name']!r} (id {c.get('id')}) has no box but is "
                    f"class {thing_classes.index(c['name'])} of the {len(thing_classes)} "
                    "thing_classes (NUM_CLASSES must count it; a demo may label a box with it): "
                    "register the dataset with csgr.data.register_coco_dataset, which leaves "
                    "it out (docs/WORKFLOW.md, section 2.1)"
                )
    return notes
