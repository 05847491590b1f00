"""Choosing a Detectron2 evaluator from a dataset's ``evaluator_type``."""

from detectron2.data import MetadataCatalog
from detectron2.evaluation import COCOEvaluator, DatasetEvaluator

from .voc import TolerantPascalVOCEvaluator


def build_evaluator(cfg, dataset_name: str, output_folder: str = None) -> DatasetEvaluator:
    """The evaluator for a registered dataset, by its metadata's ``evaluator_type``.

    "coco" uses :class:`COCOEvaluator` on boxes (through pycocotools when Detectron2 has no
    compiled ``_C``); "pascal_voc" uses Detectron2's :class:`PascalVOCDetectionEvaluator` through
    :class:`.voc.TolerantPascalVOCEvaluator` (VOC2007 11-point metric for 2007 splits, AP50
    reported as "AP50"; VOC files written by annotation tools accepted).

    Raises:
        ValueError: the dataset has no evaluator_type this project evaluates.
    """
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type", None)
    if evaluator_type == "coco":
        return COCOEvaluator(dataset_name, tasks=("bbox",), output_dir=output_folder)
    if evaluator_type == "pascal_voc":
        return TolerantPascalVOCEvaluator(dataset_name)
    raise ValueError(
        f"dataset {dataset_name!r} has evaluator_type {evaluator_type!r}; this project evaluates "
        "'coco' and 'pascal_voc' datasets (set MetadataCatalog.get(name).evaluator_type)"
    )
