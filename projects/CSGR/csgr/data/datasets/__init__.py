"""Dataset registrations of CSGR (importing this package registers them) and the generator of
the offline shapes dataset. See datasets/README.md for the layout under $DETECTRON2_DATASETS."""

from . import builtin as _builtin  # noqa: F401  registers the datasets
from .catalog_utils import datasets_root
from .minicoco_sampling import sample_balanced_subset
from .shapes import (
    DEFAULT_SHAPES_PARAMS,
    SHAPES_DIRNAME,
    ensure_shapes_dataset,
    generate_shapes_dataset,
)
from .shapes_generate import SHAPES_CATEGORIES
from .user_coco import BACKGROUND_CATEGORIES, register_coco_dataset
from .user_voc import register_voc_dataset

__all__ = [
    "BACKGROUND_CATEGORIES",
    "DEFAULT_SHAPES_PARAMS",
    "SHAPES_CATEGORIES",
    "SHAPES_DIRNAME",
    "datasets_root",
    "ensure_shapes_dataset",
    "generate_shapes_dataset",
    "register_coco_dataset",
    "register_voc_dataset",
    "sample_balanced_subset",
]
