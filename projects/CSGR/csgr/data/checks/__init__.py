"""Checks of registered datasets (COCO json, PASCAL VOC xml, any loader) that name the file at
fault: at load time (:func:`named_load_errors`), when training starts
(:func:`check_before_training`) and end to end (:func:`check_dataset`,
``tools/check_dataset.py``)."""

from .before_training import check_before_training, check_train_images
from .load import annotation_problems, dataset_format, dataset_source, named_load_errors
from .report import DatasetReport, check_dataset

__all__ = [
    "DatasetReport",
    "annotation_problems",
    "check_before_training",
    "check_dataset",
    "check_train_images",
    "dataset_format",
    "dataset_source",
    "named_load_errors",
]
