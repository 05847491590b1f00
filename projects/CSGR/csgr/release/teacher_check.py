"""Evaluating the teacher of a distillation config alone, built exactly as the Distiller builds it.

A teacher whose weights did not load (or were trained on another dataset) ruins distillation
silently; its AP on the test set shows it in minutes.
"""

import logging
import math
import os
from typing import Dict, List, Optional, Tuple

from detectron2.config import CfgNode
from detectron2.data import DatasetMapper, build_detection_test_loader
from detectron2.evaluation import inference_on_dataset

from ..config import num_classes
from ..data.checks import named_load_errors
from ..evaluation import build_evaluator, evaluator_type
from ..modeling.teacher import build_teacher
from .student_config import is_distiller

__all__ = ["evaluate_teacher", "primary_ap", "check_teacher"]

logger = logging.getLogger(__name__)


def evaluate_teacher(cfg: CfgNode, output_dir: Optional[str] = None) -> Dict[str, dict]:
    """Evaluate the teacher of a Distiller config on each of ``cfg.DATASETS.TEST``.

    The teacher comes from :func:`csgr.modeling.teacher.build_teacher` (its config file + OPTS,
    its weights loaded strictly, eval mode), as in the Distiller. It sees the test images the way
    it sees them during distillation: resized by the student's INPUT settings, in its own
    channel order, normalised with its own pixel mean/std.

    Args:
        cfg: a Distiller config.
        output_dir: evaluator output folder (one sub-folder per dataset); None writes nothing.

    Returns:
        Evaluation results by dataset name (e.g. ``{"csgr_shapes_val": {"bbox": {"AP": ...}}}``).

    Raises:
        ValueError: the config is not a Distiller's, or has no test set.
    """
    if not is_distiller(cfg):
        raise ValueError(
            f"MODEL.META_ARCHITECTURE is {cfg.MODEL.META_ARCHITECTURE!r}: the teacher check needs "
            "a distillation config (META_ARCHITECTURE: Distiller, MODEL.DISTILL.TEACHER.*)"
        )
    if not cfg.DATASETS.TEST:
        raise ValueError("DATASETS.TEST is empty: nothing to evaluate the teacher on")
    teacher = build_teacher(cfg, num_classes(cfg))
    mapper = DatasetMapper(cfg, is_train=False, image_format=teacher.input_format)
    results = {}
    for dataset_name in cfg.DATASETS.TEST:
        with named_load_errors([dataset_name]):  # an annotation error names the file
            loader = build_detection_test_loader(cfg, dataset_name, mapper=mapper)
        folder = os.path.join(output_dir, dataset_name) if output_dir else None
        evaluator = build_evaluator(cfg, dataset_name, folder)
        results[dataset_name] = inference_on_dataset(teacher, loader, evaluator)
    return results


def primary_ap(results: dict, dataset_name: str) -> Tuple[str, float]:
    """("AP50", value) for PASCAL VOC test sets, ("AP", value) otherwise; NaN if missing."""
    metric = "AP50" if evaluator_type(dataset_name, guess=True) == "pascal_voc" else "AP"
    return metric, float(results.get("bbox", {}).get(metric, float("nan")))


def check_teacher(
    cfg: CfgNode, min_ap: float = 1.0, output_dir: Optional[str] = None
) -> Tuple[bool, List[str]]:
    """Evaluate the teacher and compare its AP (AP50 on VOC) with ``min_ap`` on every test set.

    An undefined AP (no detection at all) fails unless ``min_ap`` is negative, which disables
    the check.

    Returns:
        (whether every test set reaches ``min_ap``, report lines to print)
    """
    results = evaluate_teacher(cfg, output_dir)
    ok, lines = True, []
    weights = cfg.MODEL.DISTILL.TEACHER.WEIGHTS
    for dataset_name, result in results.items():
        metric, value = primary_ap(result, dataset_name)
        if value < min_ap or (math.isnan(value) and min_ap >= 0):
            ok = False
            shown = "undefined (no detection)" if math.isnan(value) else f"{value:.2f} <"
            lines.append(
                f"FAIL: teacher {metric} on {dataset_name} is {shown} --min-ap {min_ap}. "
                f"The teacher weights probably did not load or do not fit this dataset: check "
                f"MODEL.DISTILL.TEACHER.WEIGHTS={weights!r} and "
                f"MODEL.DISTILL.TEACHER.CONFIG_FILE={cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE!r}."
            )
        else:
            lines.append(f"OK: teacher {metric} on {dataset_name} is {value:.2f} >= {min_ap}")
    return ok, lines
