"""Data of CSGR: importing this package registers the datasets (see ``csgr.data.datasets``)."""

from .datasets import (
    DEFAULT_SHAPES_PARAMS,
    SHAPES_CATEGORIES,
    datasets_root,
    ensure_shapes_dataset,
    generate_shapes_dataset,
    register_coco_dataset,
    register_voc_dataset,
    sample_balanced_subset,
)

__all__ = [
    "DEFAULT_SHAPES_PARAMS",
    "SHAPES_CATEGORIES",
    "datasets_root",
    "ensure_shapes_dataset",
    "generate_shapes_dataset",
    "register_coco_dataset",
    "register_voc_dataset",
    "sample_balanced_subset",
]
