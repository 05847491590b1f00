"""The pictures written at the end of an experiment: training curves of its runs overlaid, and
CSGR's category-attention and relation maps of one validation image, teacher vs student."""

import logging
import os
from typing import Dict, List, Optional

import cv2
from detectron2.data import DatasetCatalog

from ..config import load_config
from .attention import load_distiller, write_attention_pictures
from .curves import load_runs, plot_curves

__all__ = ["first_test_image", "write_job_pictures"]

logger = logging.getLogger(__name__)


def first_test_image(cfg) -> str:
    """The file of the first image of ``cfg.DATASETS.TEST[0]``.

    Raises:
        ValueError: the config names no test dataset, or it is empty.
    """
    if not cfg.DATASETS.TEST:
        raise ValueError("DATASETS.TEST is empty: no validation image to draw")
    name = cfg.DATASETS.TEST[0]
    records = DatasetCatalog.get(name)
    if not records:
        raise ValueError(f"dataset {name!r} has no image")
    return records[0]["file_name"]


def write_job_pictures(
    output_dir: str,
    runs: Dict[str, str],
    distill_run: Optional[str] = None,
    image: Optional[str] = None,
    smooth: int = 5,
) -> List[str]:
    """Write ``curves.png`` (every run's metrics.json overlaid) and, for a CSGR run, its
    attention pictures of one validation image into ``output_dir/attention``.

    Args:
        output_dir: folder for the pictures (created if needed).
        runs: label -> run folder (holding metrics.json), e.g. {"teacher": ..., "CSGR": ...}.
        distill_run: folder of a finished CSGR run (config.yaml and model_final.pth); None draws
            the curves only.
        image: image file to draw; default the first image of the run's first test dataset.
        smooth: moving-average window of the loss curves.

    Returns:
        The written PNG paths, curves first.
    """
    os.makedirs(output_dir, exist_ok=True)
    curves = os.path.join(output_dir, "curves.png")
    plot_curves(load_runs([f"{k}={v}" for k, v in runs.items()]), curves, smooth=smooth)
    written = [curves]
    if distill_run is None:
        return written
    cfg = load_config(os.path.join(distill_run, "config.yaml"))
    cfg.freeze()
    image = image or first_test_image(cfg)
    image_bgr = cv2.imread(image, cv2.IMREAD_COLOR)
    if image_bgr is None:
        raise FileNotFoundError(f"cannot read the image {image!r}")
    model = load_distiller(cfg, os.path.join(distill_run, "model_final.pth"))
    attention_dir = os.path.join(output_dir, "attention")
    written += write_attention_pictures(model, cfg, image_bgr, attention_dir)
    logger.info(f"attention pictures of {image} in {attention_dir}")
    return written
