"""Clipping and dropping bad ground-truth boxes of training dataset dicts, with a summary log.

Detectron2 clips boxes to the image and drops empty ones only *after* the augmentations, and
its transforms rebuild a box from the min/max of its corners: a box of negative width or height
(``x1 < x0``) thus silently becomes a valid box with swapped corners. :func:`sanitize_boxes`
runs when the training set is loaded, before any transform: it drops boxes that are non-finite
or of zero or negative width/height, clips the others to the image (``width``/``height`` of the
dataset dict) and drops those left empty, and logs one summary with counts and examples.
"""

import logging
import math
from collections import Counter
from typing import Dict, List, Sequence, Tuple

from detectron2.structures import BoxMode

__all__ = ["sanitize_boxes", "clip_reason"]

logger = logging.getLogger(__name__)

_EXAMPLES = 5
# Reasons a box is dropped, in the order they are checked.
NON_FINITE, DEGENERATE, OUTSIDE = "non-finite", "zero or negative width/height", "outside image"
_COUNT_KEYS = ("boxes", "clipped", "dropped", NON_FINITE, DEGENERATE, OUTSIDE, "images_removed")


def _check_box(ann: dict, width, height) -> Tuple[str, list]:
    """Returns (reason to drop or "", XYXY box clipped to the image or [] if unchanged)."""
    mode = ann.get("bbox_mode", BoxMode.XYWH_ABS)
    if len(ann["bbox"]) != 4 or mode not in (BoxMode.XYWH_ABS, BoxMode.XYXY_ABS):
        return "", []  # rotated or relative boxes are left to the user's pipeline
    x0, y0, x1, y1 = _xyxy(ann)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return NON_FINITE, []
    if x1 <= x0 or y1 <= y0:
        return DEGENERATE, []
    if not width or not height:
        return "", []
    clipped = [min(max(x0, 0.0), width), min(max(y0, 0.0), height)]
    clipped += [min(max(x1, 0.0), width), min(max(y1, 0.0), height)]
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        return OUTSIDE, []
    return "", clipped if clipped != [x0, y0, x1, y1] else []


def _xyxy(ann: dict) -> List[float]:
    mode = ann.get("bbox_mode", BoxMode.XYWH_ABS)
    return [float(v) for v in BoxMode.convert(list(ann["bbox"]), mode, BoxMode.XYXY_ABS)]


def clip_reason(ann: dict, width, height) -> str:
    """Why a box is clipped, in words: by how much it extends beyond its image, or for a corner
    at exactly -1, that a VOC file's corner 0 becomes -1 when Detectron2's VOC loader shifts
    the 1-based corners to 0-based ones (the box loses nothing).

    Args:
        ann: the annotation (``bbox``, ``bbox_mode``) before clipping.
        width / height: the image's size.
    """
    x0, y0, x1, y1 = _xyxy(ann)
    beyond = max(-x0, -y0, x1 - width, y1 - height)
    if -1.0 in (x0, y0) and beyond <= 1.0:
        return "a corner 0 of a 1-based VOC file, -1 after Detectron2's shift to 0-based"
    return f"{beyond:g} px beyond the {width}x{height} image"


def sanitize_boxes(
    dataset_dicts: List[dict], dataset_names: Sequence[str], filter_empty: bool = True
) -> Tuple[List[dict], Dict[str, int]]:
    """Drop bad boxes and clip the others to their image, without touching the input dicts.

    Args:
        dataset_dicts: Detectron2 dataset dicts (``annotations`` with ``bbox``/``bbox_mode``).
        dataset_names: the names they come from, for the log.
        filter_empty: also drop images that had boxes and are left with none (as
            ``DATALOADER.FILTER_EMPTY_ANNOTATIONS`` does for images without any).

    Returns:
        (dicts, counts): new dicts (unchanged ones shared with the input; a clipped box is
        stored as ``XYXY_ABS``), and counts "boxes", "clipped", "dropped", one per drop reason,
        and "images_removed".
    """
    counts = Counter({k: 0 for k in _COUNT_KEYS})
    examples = []
    out = []
    for record in dataset_dicts:
        anns = record.get("annotations")
        if not anns:
            out.append(record)
            continue
        kept, changed = [], False
        for ann in anns:
            counts["boxes"] += 1
            reason, clipped = _check_box(ann, record.get("width"), record.get("height"))
            if reason or clipped:
                changed = True
                what = f"dropped ({reason})" if reason else "clipped"
                if clipped:
                    what += f" ({clip_reason(ann, record['width'], record['height'])})"
                for key in ("dropped", reason) if reason else ("clipped",):
                    counts[key] += 1
                if len(examples) < _EXAMPLES:
                    examples.append(f"{record.get('file_name')}: box {list(ann['bbox'])} {what}")
            if clipped:
                kept.append(dict(ann, bbox=clipped, bbox_mode=BoxMode.XYXY_ABS))
            elif not reason:
                kept.append(ann)
        if not changed:
            out.append(record)
        elif kept or not filter_empty:
            out.append(dict(record, annotations=kept))
        else:
            counts["images_removed"] += 1
    if counts["clipped"] or counts["dropped"]:
        reasons = ", ".join(f"{counts[r]} {r}" for r in (NON_FINITE, DEGENERATE, OUTSIDE))
        logger.warning(
            f"Training set {list(dataset_names)}: of {counts['boxes']} boxes, {counts['clipped']} "
            f"extend beyond their image and were clipped to it, {counts['dropped']} were "
            f"dropped ({reasons}); {counts['images_removed']} image(s) left without a box were "
            "removed. Examples:\n  " + "\n  ".join(examples)
        )
    return out, dict(counts)
