"""The dataset checks that run when training starts, before the first iteration.

A test set that the evaluator cannot read would otherwise fail at the first evaluation (at
``TEST.EVAL_PERIOD`` or after the last iteration), and a missing training image when it is first
drawn; both fail (or warn, with ``DATALOADER.SKIP_BAD_IMAGES``) before training instead.
"""

import logging
from typing import List

from ...errors import DatasetFileError, UserInputError
from ..mapper import BadImageError
from .report import DatasetReport, check_dataset, examples, missing_images

__all__ = ["MissingImageError", "check_before_training", "check_train_images"]

logger = logging.getLogger(__name__)


class MissingImageError(BadImageError, UserInputError):
    """Image files of the training set that do not exist, found before training."""


def check_train_images(dicts: List[dict], names, skip_bad_images: bool) -> None:
    """Before training: every image file of the training set exists.

    Raises:
        MissingImageError: naming the first missing file and the count, unless
            ``skip_bad_images`` (then a warning says how many will be skipped).
    """
    missing = missing_images(dicts)
    if not missing:
        return
    what = f"{len(missing)} image file(s) of the training set {list(names)} do not exist"
    if skip_bad_images:
        logger.warning(
            f"{what}; with DATALOADER.SKIP_BAD_IMAGES another image takes the place of each: "
            + examples(missing)
        )
        return
    raise MissingImageError(
        f"Image file {missing[0]!r} does not exist ({what}: {examples(missing)}); fix the paths "
        "or set DATALOADER.SKIP_BAD_IMAGES True to train without them"
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
        for warning in report.warnings:
            logger.warning(f"Test set '{name}': {warning}")
        logger.info(
            f"Test set '{name}' checked: {report.num_images} images, {report.num_boxes} boxes"
            + "".join(f"; {note}" for note in report.notes)
        )
        reports.append(report)
    return reports
