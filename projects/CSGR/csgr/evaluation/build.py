"""Choosing a Detectron2 evaluator from a dataset's ``evaluator_type``."""

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator

from .coco import CocoEvaluator
from .voc import TolerantPascalVOCEvaluator

__all__ = ["EVALUATOR_TYPES", "evaluator_type", "build_evaluator"]

EVALUATOR_TYPES = ("coco", "pascal_voc")


def evaluator_type(dataset_name: str, guess: bool = False) -> str:
    """The ``evaluator_type`` of a dataset's registered metadata ("coco" or "pascal_voc").

    Args:
        guess: for a dataset that is not registered or has no such type (e.g. a model-zoo
            table made where the dataset is not registered), guess from the name: "pascal_voc"
            for names starting with "voc", else "coco". Without it, return what is registered
            (None if nothing).
    """
    registered = None
    if dataset_name in MetadataCatalog.list():
        registered = MetadataCatalog.get(dataset_name).get("evaluator_type", None)
    if registered in EVALUATOR_TYPES or not guess:
        return registered
    return "pascal_voc" if dataset_name.lower().startswith("voc") else "coco"


def build_evaluator(cfg, dataset_name: str, output_folder: str = None) -> DatasetEvaluator:
    """The evaluator for a registered dataset, by its metadata's ``evaluator_type``.

    "coco" uses Detectron2's :class:`COCOEvaluator` on boxes (through pycocotools when Detectron2
    has no compiled ``_C``) through :class:`.coco.CocoEvaluator` (annotation id 0 and
    categories without a class or a box handled); "pascal_voc" uses Detectron2's :class:`PascalVOCDetectionEvaluator` through
    :class:`.voc.TolerantPascalVOCEvaluator` (VOC2007 11-point metric for 2007 splits, AP50
    reported as "AP50"; VOC files written by annotation tools accepted).

    Raises:
        ValueError: the dataset has no evaluator_type this project evaluates.
    """
    kind = evaluator_type(dataset_name)
    if kind == "coco":
        return CocoEvaluator(dataset_name, tasks=("bbox",), output_dir=output_folder)
    if kind == "pascal_voc":
        return TolerantPascalVOCEvaluator(dataset_name)
    raise ValueError(
        f"dataset {dataset_name!r} has evaluator_type {kind!r}; this project evaluates "
        "'coco' and 'pascal_voc' datasets (set MetadataCatalog.get(name).evaluator_type)"
    )
