"""A DatasetMapper that names the image file it cannot read, and can skip such files.

Detectron2's ``DatasetMapper`` lets a missing, empty or corrupt image surface as whatever PIL
raises (often without the file name, e.g. "image file is truncated"). :class:`CheckedDatasetMapper`
raises :class:`BadImageError` naming the file instead, or, with ``DATALOADER.SKIP_BAD_IMAGES``,
logs the file, counts it and returns ``None``: Detectron2's ``MapDataset`` then puts another
random image in its place (training), and the test loader of :mod:`.loaders` drops it
(evaluation).
"""

import copy
import logging
import os

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.utils.file_io import PathManager

from ..config.reliability import SKIP_BAD_IMAGES_DEFAULT

__all__ = ["BadImageError", "CheckedDatasetMapper", "read_image_checked"]

logger = logging.getLogger(__name__)


class BadImageError(OSError):
    """An image file that is missing, empty or cannot be decoded. The message names the file."""


def _diagnose(file_name: str, error: Exception) -> str:
    try:
        if not PathManager.exists(file_name):
            return "does not exist"
        if os.path.isfile(file_name) and os.path.getsize(file_name) == 0:
            return "is empty (0 bytes)"
    except OSError:
        pass
    return f"cannot be decoded as an image ({type(error).__name__}: {error})"


def read_image_checked(file_name: str, format=None) -> np.ndarray:
    """:func:`detectron2.data.detection_utils.read_image`, with errors that name the file.

    Args:
        file_name: image path.
        format: as in ``read_image`` ("BGR", "RGB", ...).

    Returns:
        (H, W, C) uint8 array.

    Raises:
        BadImageError: the file does not exist, is empty or cannot be decoded.
    """
    try:
        return utils.read_image(file_name, format=format)
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ... on bad files
        raise BadImageError(f"Image file {file_name!r} {_diagnose(file_name, e)}") from e


class CheckedDatasetMapper(DatasetMapper):
    """``DatasetMapper`` with :func:`read_image_checked` and an opt-in skip of bad images.

    Attributes:
        skip_bad_images (bool): skip (return ``None``) instead of raising on a bad image file.
        num_skipped (int): bad images skipped so far by this mapper in this process (each data
            loader worker process counts its own; each evaluation builds a new test mapper). The
            log line says which loader and process it counts.
    """

    @configurable
    def __init__(self, is_train: bool, *, skip_bad_images: bool = False, **kwargs):
        """
        Args:
            is_train, kwargs: as :class:`detectron2.data.DatasetMapper`.
            skip_bad_images: see ``DATALOADER.SKIP_BAD_IMAGES``.
        """
        super().__init__(is_train, **kwargs)
        self.skip_bad_images = bool(skip_bad_images)
        self.num_skipped = 0

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        ret = super().from_config(cfg, is_train)
        ret["skip_bad_images"] = cfg.DATALOADER.get("SKIP_BAD_IMAGES", SKIP_BAD_IMAGES_DEFAULT)
        return ret

    def __call__(self, dataset_dict):
        """
        Args:
            dataset_dict (dict): metadata of one image, in Detectron2 Dataset format.

        Returns:
            dict: what Detectron2's models take, or ``None`` for a skipped bad image.

        Raises:
            BadImageError: a bad image file, when ``skip_bad_images`` is off.
        """
        dataset_dict = copy.deepcopy(dataset_dict)  # it will be modified by code below
        try:
            image = read_image_checked(dataset_dict["file_name"], format=self.image_format)
        except BadImageError as e:
            if not self.skip_bad_images:
                raise
            self.num_skipped += 1
            logger.warning(
                f"{e}: skipped (DATALOADER.SKIP_BAD_IMAGES=True; {self.num_skipped} bad "
                f"image(s) skipped so far by {self._counter_scope()})"
            )
            return None
        return self._map_image(dataset_dict, image)

    def _counter_scope(self) -> str:
        """What :attr:`num_skipped` counts: one data loader (a test loader is built for each
        evaluation), in one process (each worker counts its own)."""
        loader = "training data loader" if self.is_train else "test data loader (this evaluation)"
        worker = torch.utils.data.get_worker_info()
        if worker is None:
            return f"the {loader} in the main process, pid {os.getpid()}"
        return f"worker {worker.id} of the {loader}, pid {os.getpid()}"

    def _map_image(self, dataset_dict: dict, image: np.ndarray) -> dict:
        """The rest of ``DatasetMapper.__call__`` (Detectron2 v0.6+), once the image is read."""
        utils.check_image_size(dataset_dict, image)
        if "sem_seg_file_name" in dataset_dict:
            sem_seg_gt = read_image_checked(dataset_dict.pop("sem_seg_file_name"), "L").squeeze(2)
        else:
            sem_seg_gt = None

        aug_input = T.AugInput(image, sem_seg=sem_seg_gt)
        transforms = self.augmentations(aug_input)
        image, sem_seg_gt = aug_input.image, aug_input.sem_seg

        image_shape = image.shape[:2]  # h, w
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if sem_seg_gt is not None:
            dataset_dict["sem_seg"] = torch.as_tensor(sem_seg_gt.astype("long"))

        if self.proposal_topk is not None:
            utils.transform_proposals(
                dataset_dict, image_shape, transforms, proposal_topk=self.proposal_topk
            )

        if not self.is_train:
            dataset_dict.pop("annotations", None)
            dataset_dict.pop("sem_seg_file_name", None)
            return dataset_dict

        if "annotations" in dataset_dict:
            self._transform_annotations(dataset_dict, transforms, image_shape)
        return dataset_dict
