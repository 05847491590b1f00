"""Reading PASCAL VOC annotation files as both Detectron2 readers need them, naming every problem.

Detectron2 reads a VOC ``.xml`` twice: its loader (``load_voc_instances``: ``<size>`` as ints,
``<name>`` in the class list, box corners as floats) and its evaluator's parser
(``pascal_voc_evaluation.parse_rec``: ``<pose>``, ``<truncated>``, ``<difficult>`` and box
corners as ints). Files that annotation tools such as labelme write pass the first and break the
second: an empty ``<truncated/>`` or ``<difficult/>``, float corners (``191.0``). This module
reads a file once and returns

* ``error``: why the loader (or any reader) fails on it, naming the file; or
* the objects as the evaluator needs them, with ``tolerated``: what the evaluator's own parser
  would have failed on but :class:`csgr.evaluation.voc.TolerantPascalVOCEvaluator` accepts
  (an empty or missing ``<truncated>``/``<difficult>`` is 0, a missing ``<pose>`` is
  "Unspecified", a float corner is rounded to the nearest integer).
"""

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from detectron2.utils.file_io import PathManager

__all__ = [
    "VocObject",
    "VocFile",
    "read_voc_file",
    "voc_split_files",
    "unsafe_class_names",
    "EMPTY_TAG",
    "MISSING_POSE",
    "FLOAT_CORNERS",
]

EMPTY_TAG = "empty or missing <truncated>/<difficult> (read as 0)"
MISSING_POSE = "missing <pose> (read as 'Unspecified')"
FLOAT_CORNERS = "non-integer box corners (rounded)"
_CORNERS = ("xmin", "ymin", "xmax", "ymax")
_CLASSES_SHOWN = 30


@dataclass
class VocObject:
    """One ``<object>`` as the VOC evaluator reads it (corners as integers)."""

    name: str
    pose: str
    truncated: int
    difficult: int
    bbox: Tuple[int, int, int, int]


@dataclass
class VocFile:
    """One annotation file: its objects, or why it cannot be read (``error``)."""

    path: str
    objects: List[VocObject] = field(default_factory=list)
    error: str = ""
    tolerated: List[str] = field(default_factory=list)
    examples: Dict[str, str] = field(default_factory=dict)  # tolerated kind -> first instance


def voc_split_files(dirname: str, split: str) -> List[Tuple[str, str]]:
    """(image id, annotation path) of each line of ``ImageSets/Main/<split>.txt``, read as
    Detectron2's loader reads it."""
    with PathManager.open(os.path.join(dirname, "ImageSets", "Main", split + ".txt")) as f:
        ids = np.loadtxt(f, dtype=str, ndmin=1)
    return [(str(i), os.path.join(dirname, "Annotations", f"{i}.xml")) for i in ids]


def unsafe_class_names(class_names: Sequence[str]) -> List[str]:
    """Class names that cannot be a file name (``tv/monitor``): the VOC evaluator writes one
    result file per class, named after it."""
    return [
        n for n in class_names if not n or n in (".", "..") or "\0" in n or "/" in n or os.sep in n
    ]


def _text(node: Optional[ET.Element]) -> str:
    return (node.text or "").strip() if node is not None else ""


def _int_flag(obj: ET.Element, tag: str, tolerated: dict) -> int:
    text = _text(obj.find(tag))
    if not text:
        tolerated.setdefault(EMPTY_TAG, f"<{tag}/>")
        return 0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"<{tag}> is {text!r}, not 0 or 1")
    return int(value)


def _corners(obj: ET.Element, k: int, tolerated: dict) -> Tuple[int, int, int, int]:
    box = obj.find("bndbox")
    if box is None:
        raise ValueError(f"object {k} has no <bndbox>")
    values = []
    for tag in _CORNERS:
        text = _text(box.find(tag))
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"object {k}: <{tag}> is {text!r}, not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"object {k}: <{tag}> is {text!r}, not a finite number")
        if not text.lstrip("+-").isdigit():
            tolerated.setdefault(FLOAT_CORNERS, f"<{tag}>{text}</{tag}>")
        values.append(int(round(value)))
    return tuple(values)


def _classes_text(class_names: Sequence[str]) -> str:
    shown = list(class_names[:_CLASSES_SHOWN])
    return str(shown)[:-1] + (", ...]" if len(class_names) > _CLASSES_SHOWN else "]")


def read_voc_file(path: str, class_names: Sequence[str]) -> VocFile:
    """Read one VOC annotation file; never raises.

    Args:
        path: the ``.xml`` file.
        class_names: the dataset's ``thing_classes``.

    Returns:
        A :class:`VocFile`: ``error`` says why Detectron2's loader or evaluator cannot read it
        (empty when they can, possibly with ``tolerated`` deviations).
    """
    result = VocFile(path)
    if not os.path.isfile(path):
        result.error = "does not exist"
        return result
    try:
        tree = ET.parse(path)
    except ET.ParseError as e:
        result.error = f"is not valid XML ({e})"
        return result
    for tag in ("width", "height"):
        text = _text(tree.find(f"./size/{tag}"))
        if not text.isdigit():
            shown = f"is {text!r}" if text else "is missing"
            result.error = f"<size><{tag}> {shown}: Detectron2's VOC loader needs an integer"
            return result
    tolerated: Dict[str, str] = {}  # kind -> its first instance in the file
    for k, obj in enumerate(tree.findall("object"), 1):
        name = _text(obj.find("name"))
        try:
            if not name:
                raise ValueError(f"object {k} has no <name>")
            if name not in class_names:
                raise ValueError(
                    f"object {k}: class {name!r} is not one of the dataset's classes "
                    f"(thing_classes {_classes_text(class_names)})"
                )
            bbox = _corners(obj, k, tolerated)
            truncated = _int_flag(obj, "truncated", tolerated)
            difficult = _int_flag(obj, "difficult", tolerated)
        except ValueError as e:
            message = str(e)
            result.error = message if message.startswith("object") else f"object {k}: {message}"
            result.objects = []
            return result
        pose = _text(obj.find("pose"))
        if obj.find("pose") is None:
            tolerated.setdefault(MISSING_POSE, f"object {k}")
            pose = "Unspecified"
        result.objects.append(VocObject(name, pose, truncated, difficult, bbox))
    result.tolerated, result.examples = sorted(tolerated), tolerated
    return result
