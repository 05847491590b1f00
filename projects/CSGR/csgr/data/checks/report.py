"""Checking a registered dataset end to end: annotation files, classes, boxes, images, evaluator.

:func:`check_dataset` is what ``tools/check_dataset.py`` prints; :func:`check_before_training`
runs its cheap parts (no image decoding) on the test sets when training starts, so that a
dataset the evaluator cannot read fails before the first iteration, not at ``EVAL_PERIOD``.
"""

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.file_io import PathManager

from ..box_checks import _check_box, clip_reason
from ..mapper import BadImageError, read_image_checked
from .load import (
    annotation_notes,
    annotation_problems,
    dataset_format,
    dataset_source,
    named_load_errors,
    voc_files,
)
from .voc_files import VocFile, unsafe_class_names

__all__ = ["DatasetReport", "check_dataset", "empty_images", "missing_images", "examples"]

logger = logging.getLogger(__name__)

_EXAMPLES = 5
_VOC_YEARS = (2007, 2012)


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found. ``errors`` keep training or evaluation from working;
    ``warnings`` change what is trained or evaluated (dropped boxes, skipped images); ``notes``
    are handled deviations."""

    name: str
    source: str = ""
    evaluator_type: Optional[str] = None
    num_images: int = 0
    num_boxes: int = 0
    class_counts: Dict[str, int] = field(default_factory=dict)
    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """A few lines: source, counts, then each error, warning and note."""
        classes = ", ".join(f"{k}: {v}" for k, v in self.class_counts.items())
        lines = [
            f"Dataset '{self.name}' ({self.source or 'registered in code'}; evaluator_type "
            f"{self.evaluator_type!r}): {'OK' if self.ok else f'{len(self.errors)} error(s)'}",
            f"  {self.num_images} images, {self.num_boxes} boxes; boxes per class: {classes or '-'}",
        ]
        for title, items in (("ERROR", self.errors), ("warning", self.warnings)):
            lines += [f"  {title}: {item}" for item in items]
        lines += [f"  note: {item}" for item in self.notes]
        return "\n".join(lines)


def _id_order(category_id):
    """Integer ids in order, then anything else (None, strings) by its text."""
    is_int = isinstance(category_id, int)
    return (not is_int, category_id if is_int else 0, str(category_id))


def examples(items: List[str]) -> str:
    more = len(items) - _EXAMPLES
    return ", ".join(items[:_EXAMPLES]) + (f" and {more} more" if more > 0 else "")


def _check_voc_evaluation(report: DatasetReport, name: str, files: List[VocFile]) -> None:
    meta = MetadataCatalog.get(name)
    if meta.get("year", None) not in _VOC_YEARS:
        report.errors.append(
            f"metadata 'year' is {meta.get('year', None)!r}: the VOC evaluator needs 2007 (11-point "
            "AP) or 2012"
        )
    tolerated, example = Counter(), {}
    for f in files:
        tolerated.update(f.tolerated)
        for what, instance in f.examples.items():
            example.setdefault(what, f"{instance} in {f.path}")
    for what, count in sorted(tolerated.items()):
        report.notes.append(
            f"{count} annotation file(s) with {what}, e.g. {example[what]}: Detectron2's VOC "
            "evaluator parser fails on them; CSGR's evaluator accepts them"
        )
    unsafe = unsafe_class_names(list(meta.get("thing_classes", [])))
    if unsafe:
        report.notes.append(
            f"class names {unsafe} are not valid file names (Detectron2's VOC evaluator writes "
            "one file per class); CSGR's evaluator names its files by class index"
        )


def _check_records(report: DatasetReport, dicts: List[dict], name: str, num_classes) -> None:
    classes = list(MetadataCatalog.get(name).get("thing_classes", []))
    ids, boxes, dropped, clipped, empty = Counter(), Counter(), [], [], 0
    for record in dicts:
        anns = record.get("annotations", [])
        empty += not anns
        for ann in anns:
            ids[ann.get("category_id")] += 1
            reason, clip = _check_box(ann, record.get("width"), record.get("height"))
            boxes[reason or ("clipped" if clip else "ok")] += 1
            if reason:
                dropped.append(f"{record.get('file_name')}: {list(ann['bbox'])} ({reason})")
            elif clip:
                why = clip_reason(ann, record["width"], record["height"])
                clipped.append(f"{record.get('file_name')}: {list(ann['bbox'])} ({why})")
    report.num_images, report.num_boxes = len(dicts), sum(ids.values())
    limits = [(len(classes), f"{len(classes)} thing_classes")] if classes else []
    if num_classes is not None:
        limits.append((num_classes, f"the model's NUM_CLASSES {num_classes}"))
    for limit, what in limits:
        bad = sorted(
            (i for i in ids if not isinstance(i, int) or not 0 <= i < limit), key=_id_order
        )
        if bad:
            report.errors.append(f"category ids {bad} are outside [0, {limit}) ({what})")
    if num_classes is not None and classes and num_classes != len(classes):
        report.warnings.append(
            f"the model predicts {num_classes} classes but the dataset has {len(classes)}"
        )
    names = {i: (classes[i] if isinstance(i, int) and 0 <= i < len(classes) else i) for i in ids}
    report.class_counts = {str(names[i]): ids[i] for i in sorted(ids, key=_id_order)}
    if dropped:
        report.warnings.append(
            f"{len(dropped)} box(es) are dropped in training: {examples(dropped)}"
        )
    if clipped:
        report.notes.append(
            f"{len(clipped)} box(es) extend beyond their image (clipped): {examples(clipped)}"
        )
    if empty:
        report.notes.append(f"{empty} image(s) have no box")


def missing_images(dicts: List[dict]) -> List[str]:
    """The local ``file_name`` of the dataset dicts that are not files (remote paths are not
    checked)."""
    paths = (r.get("file_name", "") for r in dicts)
    return [p for p in paths if "://" not in p and not os.path.isfile(p)]


def empty_images(dicts: List[dict]) -> List[str]:
    """The local ``file_name`` of the dataset dicts that are files of 0 bytes."""
    paths = (r.get("file_name", "") for r in dicts)
    return [p for p in paths if "://" not in p and os.path.isfile(p) and not os.path.getsize(p)]


def _check_images(report: DatasetReport, dicts, read_images: bool, skip_bad: bool) -> None:
    bad = [f"{p} (does not exist)" for p in missing_images(dicts)]
    if not read_images:  # an empty file costs nothing to see
        bad += [f"{p} (empty file)" for p in empty_images(dicts)]
    for record in dicts if read_images else ():
        path = record["file_name"]
        try:
            image = read_image_checked(path)
        except BadImageError as e:
            if PathManager.exists(path):
                bad.append(str(e).replace("Image file ", "", 1))
            continue
        size = (record.get("height"), record.get("width"))
        if None not in size and tuple(image.shape[:2]) != size:
            bad.append(
                f"{path} is {image.shape[1]}x{image.shape[0]}, annotated {size[1]}x{size[0]}"
            )
    if bad:
        what = f"{len(bad)} image file(s) cannot be used: {examples(bad)}"
        if skip_bad:
            report.warnings.append(what + " (skipped: DATALOADER.SKIP_BAD_IMAGES)")
        else:
            report.errors.append(what)


def check_dataset(
    name: str,
    read_images: bool = True,
    num_classes: Optional[int] = None,
    skip_bad_images: bool = False,
) -> DatasetReport:
    """Check a registered dataset end to end; never raises on bad data.

    Args:
        name: the registered dataset.
        read_images: decode every image and compare its size with the annotation (else: only
            check that each file exists and is not empty).
        num_classes: the model's class count, to check the category ids against.
        skip_bad_images: report bad image files as warnings (``DATALOADER.SKIP_BAD_IMAGES``).

    Returns:
        The :class:`DatasetReport`.
    """
    report = DatasetReport(name)
    if name not in DatasetCatalog.list():
        report.errors.append(
            "not registered: import the module that registers it (--register my_datasets.py or "
            "$CSGR_REGISTER)"
        )
        return report
    try:  # first: loading may write the files (shapes) or point the metadata at them
        with named_load_errors([name]):
            dicts = DatasetCatalog.get(name)
    except Exception as e:  # a user's loader may raise anything; report it
        report.source = dataset_source(name)
        report.evaluator_type = MetadataCatalog.get(name).get("evaluator_type", None)
        report.errors += annotation_problems(name) or [f"loading failed: {type(e).__name__}: {e}"]
        return report
    report.source = dataset_source(name)
    report.evaluator_type = MetadataCatalog.get(name).get("evaluator_type", None)
    files = []  # a VOC split's files as the evaluator reads them
    if dataset_format(name) == "voc":
        files = voc_files(name)
        report.errors += [f"{f.path}: {f.error}" for f in files if f.error]
    else:
        report.errors += annotation_problems(name)  # what the loader tolerated, e.g. orphans
        report.notes += annotation_notes(name)
    _check_records(report, dicts, name, num_classes)
    _check_images(report, dicts, read_images, skip_bad_images)
    if report.evaluator_type not in ("coco", "pascal_voc"):
        report.warnings.append(
            f"evaluator_type is {report.evaluator_type!r}: CSGR evaluates 'coco' and 'pascal_voc' "
            f"datasets (set MetadataCatalog.get({name!r}).evaluator_type)"
        )
    elif report.evaluator_type == "pascal_voc" and dataset_format(name) == "voc":
        _check_voc_evaluation(report, name, files)
    return report
