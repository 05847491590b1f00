"""Training and test data loaders of CSGR's Trainer: Detectron2's, plus the robustness checks.

* Images: :class:`.mapper.CheckedDatasetMapper` (a bad image file is an error naming it, or a
  logged, counted skip with ``DATALOADER.SKIP_BAD_IMAGES``).
* Boxes of the training set: :func:`.box_checks.sanitize_boxes` (clip to the image, drop empty,
  degenerate and non-finite boxes; one summary log); its image files must exist.
* Annotation files: an error while loading a registered COCO or VOC dataset names the file
  (:func:`.checks.named_load_errors`).
* Resuming: with ``DATALOADER.SAMPLER_TRAIN = "TrainingSampler"`` (the default) the sampler is a
  :class:`.samplers.ResumableTrainingSampler`, exposed as the loader's ``resumable_sampler``.
"""

import logging

import torch.utils.data as torchdata
from detectron2.data import (
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.data.common import DatasetFromList, MapDataset, ToIterableDataset
from detectron2.data.samplers import InferenceSampler
from detectron2.utils import comm

from .box_checks import sanitize_boxes
from .checks.before_training import check_num_classes, check_train_images
from .checks.load import named_load_errors
from .mapper import CheckedDatasetMapper
from .samplers import ResumableTrainingSampler

__all__ = ["build_train_loader", "build_test_loader"]

logger = logging.getLogger(__name__)


def _train_dataset_dicts(cfg):
    with named_load_errors(cfg.DATASETS.TRAIN):
        dicts = get_detection_dataset_dicts(
            cfg.DATASETS.TRAIN,
            filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
            min_keypoints=(
                cfg.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE if cfg.MODEL.KEYPOINT_ON else 0
            ),
            proposal_files=cfg.DATASETS.PROPOSAL_FILES_TRAIN if cfg.MODEL.LOAD_PROPOSALS else None,
        )
    if isinstance(dicts, torchdata.Dataset):
        return dicts  # a user's torch Dataset: its boxes are its own business
    check_num_classes(cfg, cfg.DATASETS.TRAIN, "DATASETS.TRAIN", dicts)
    dicts, _ = sanitize_boxes(
        dicts, cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
    )
    if not dicts:
        raise ValueError(f"DATASETS.TRAIN {list(cfg.DATASETS.TRAIN)}: no image with a valid box")
    check_train_images(dicts, cfg.DATASETS.TRAIN, cfg.DATALOADER.get("SKIP_BAD_IMAGES", False))
    return dicts


def build_train_loader(cfg, mapper=None):
    """Detectron2's ``build_detection_train_loader`` with CSGR's mapper, box checks and sampler.

    Args:
        cfg (CfgNode): the run's config.
        mapper: a mapper to use instead of ``CheckedDatasetMapper(cfg, True)``.

    Returns:
        The loader; its ``resumable_sampler`` attribute is the
        :class:`ResumableTrainingSampler` it draws from, or ``None`` with another sampler.
    """
    dataset = _train_dataset_dicts(cfg)
    mapper = mapper if mapper is not None else CheckedDatasetMapper(cfg, True)
    sampler = None
    if cfg.DATALOADER.SAMPLER_TRAIN == "TrainingSampler" and not isinstance(
        dataset, torchdata.IterableDataset
    ):
        sampler = ResumableTrainingSampler(len(dataset))
    else:
        logger.info(
            f"DATALOADER.SAMPLER_TRAIN={cfg.DATALOADER.SAMPLER_TRAIN}: a resumed run restarts "
            "this sampler's stream (only TrainingSampler resumes where the run stopped)"
        )
    # a generator of its own keeps the loader from drawing from the global torch RNG (whose
    # state a checkpoint restores) when its iterator is created; it seeds the worker processes
    seed = (sampler.seed if sampler is not None else comm.shared_random_seed()) + comm.get_rank()
    loader = build_detection_train_loader(
        cfg, mapper=mapper, dataset=dataset, sampler=sampler, seed=seed % 2**31
    )
    loader.resumable_sampler = sampler
    return loader


def build_test_loader(cfg, dataset_name: str, mapper=None):
    """Detectron2's ``build_detection_test_loader`` with :class:`CheckedDatasetMapper`.

    With ``DATALOADER.SKIP_BAD_IMAGES`` a bad image is left out of the loader (instead of
    Detectron2's retry with a random other image, which would evaluate an image twice).
    """
    mapper = mapper if mapper is not None else CheckedDatasetMapper(cfg, False)
    if not getattr(mapper, "skip_bad_images", False):
        with named_load_errors([dataset_name]):
            return build_detection_test_loader(cfg, dataset_name, mapper=mapper)
    proposal_files = None
    if cfg.MODEL.LOAD_PROPOSALS:
        proposal_files = [
            cfg.DATASETS.PROPOSAL_FILES_TEST[list(cfg.DATASETS.TEST).index(dataset_name)]
        ]
    with named_load_errors([dataset_name]):
        dicts = get_detection_dataset_dicts(
            [dataset_name], filter_empty=False, proposal_files=proposal_files
        )
    # an iterable dataset: MapDataset skips the Nones of bad images and tries the next one
    iterable = ToIterableDataset(DatasetFromList(dicts, copy=False), InferenceSampler(len(dicts)))
    return build_detection_test_loader(
        MapDataset(iterable, mapper),
        mapper=None,
        sampler=None,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
    )
