"""The dataset checks that run when training starts, before the first iteration.

A test set that the evaluator cannot read would otherwise fail at the first evaluation (at
``TEST.EVAL_PERIOD`` or after the last iteration), and a missing training image when it is first
drawn; both fail (or warn, with ``DATALOADER.SKIP_BAD_IMAGES``) before training instead.
"""

import logging
from typing import List, Optional, Sequence

from detectron2.data import MetadataCatalog

from ...config import num_classes, num_classes_key
from ...errors import DatasetFileError, UserInputError
from ..mapper import BadImageError
from .report import DatasetReport, check_dataset, empty_images, examples, missing_images

__all__ = [
    "ClassCountError",
    "MissingImageError",
    "check_before_training",
    "check_num_classes",
    "check_train_images",
]

logger = logging.getLogger(__name__)


class MissingImageError(BadImageError, UserInputError):
    """Image files of the training set that do not exist, found before training."""


class ClassCountError(UserInputError, ValueError):
    """A dataset has more classes than the model's ``NUM_CLASSES``."""


def check_num_classes(cfg, names: Sequence[str], role: str, dicts: Optional[List[dict]] = None):
    """Before training: the model predicts every class of the datasets ``names``.

    A smaller ``NUM_CLASSES`` would train the classes beyond it as background (and never
    predict them in evaluation) without a word.

    Args:
        cfg: the run's config (``MODEL.ROI_HEADS.NUM_CLASSES``, or ``MODEL.RETINANET.
            NUM_CLASSES`` for a RetinaNet detector or student).
        names: registered datasets (loaded: their metadata ``thing_classes`` is set).
        role: where they come from, e.g. "DATASETS.TRAIN".
        dicts: their loaded records, whose category ids are checked too.

    Raises:
        ClassCountError: naming the key, its value, the dataset and its classes.
    """
    limit, key = num_classes(cfg), num_classes_key(cfg)
    for name in names:
        classes = list(MetadataCatalog.get(name).get("thing_classes", []) or [])
        if len(classes) > limit:
            raise ClassCountError(
                f"{key} is {limit} but dataset '{name}' ({role}) has {len(classes)} classes "
                f"{classes}: classes {classes[limit:]} would be trained as background; set {key} "
                f"{len(classes)} (teacher and student alike)"
            )
    ids = {a.get("category_id") for r in dicts or () for a in r.get("annotations", [])}
    beyond = sorted(i for i in ids if isinstance(i, int) and i >= limit)
    if beyond:
        raise ClassCountError(
            f"{key} is {limit} but the datasets {list(names)} ({role}) use category ids "
            f"{beyond} (ids must be in [0, {limit})); set {key} to the number of classes"
        )


def check_train_images(dicts: List[dict], names, skip_bad_images: bool) -> None:
    """Before training: every image file of the training set exists and is not empty.

    Raises:
        MissingImageError: naming the first missing or empty file and the counts, unless
            ``skip_bad_images`` (then a warning says how many will be skipped).
    """
    missing, empty = missing_images(dicts), empty_images(dicts)
    if not missing and not empty:
        return
    what = ", ".join(
        f"{len(files)} image file(s) of the training set {list(names)} {verb}"
        for files, verb in ((missing, "do not exist"), (empty, "are empty (0 bytes)"))
        if files
    )
    bad = missing + empty
    if skip_bad_images:
        logger.warning(
            f"{what}; with DATALOADER.SKIP_BAD_IMAGES another image takes the place of each: "
            + examples(bad)
        )
        return
    first = f"{bad[0]!r} does not exist" if missing else f"{bad[0]!r} is empty"
    raise MissingImageError(
        f"Image file {first} ({what}: {examples(bad)}); fix the paths or set "
        "DATALOADER.SKIP_BAD_IMAGES True to train without them"
    )


def check_before_training(cfg) -> List[DatasetReport]:
    """The cheap part of :func:`check_dataset` (no image decoding) on ``DATASETS.TEST``, whose
    errors would otherwise surface at the first evaluation, after training.

    Raises:
        DatasetFileError: naming the dataset, the files and the reasons.
    """
    skip = bool(cfg.DATALOADER.get("SKIP_BAD_IMAGES", False))
    reports = []
    for name in cfg.DATASETS.TEST:
        # not against NUM_CLASSES: a model may be evaluated on a test set with other classes
        report = check_dataset(name, False, None, skip)
        if not report.ok:
            raise DatasetFileError(
                f"Test set '{name}' (DATASETS.TEST) cannot be evaluated: "
                + "; ".join(report.errors)
                + " (python tools/check_dataset.py NAME prints a full report)"
            )
        check_num_classes(cfg, [name], "DATASETS.TEST")
        for warning in report.warnings:
            logger.warning(f"Test set '{name}': {warning}")
        logger.info(
            f"Test set '{name}' checked: {report.num_images} images, {report.num_boxes} boxes"
            + "".join(f"; {note}" for note in report.notes)
        )
        reports.append(report)
    return reports
